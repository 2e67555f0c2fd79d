"""Wire-format parsing: pure functions over request/response bodies and SSE events. No OpenTelemetry here."""
