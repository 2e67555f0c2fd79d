"""One chat call with content captured on its event, exported over OTLP (traces and logs) as a user would.

Set up by env vars only (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=EVENT_ONLY,
PROVIDER_URL). Prints the call's trace id (32 hex digits) once every span and event has been exported.
Usage: events_app.py PROMPT
"""

import os
import sys

import otel_llm

otel_llm.instrument()

import openai  # noqa: E402
from opentelemetry import _logs, trace  # noqa: E402

client = openai.OpenAI(base_url=os.environ["PROVIDER_URL"] + "/v1", api_key="sk-e2e", max_retries=0, timeout=30)
with trace.get_tracer("e2e.events").start_as_current_span("ask") as span:
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": sys.argv[1]}])
    trace_id = format(span.get_span_context().trace_id, "032x")
trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
_logs.get_logger_provider().force_flush()  # type: ignore[attr-defined]
print(trace_id, flush=True)
