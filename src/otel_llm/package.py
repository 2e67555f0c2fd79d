"""Which client libraries otel-llm can patch. Each is optional: one that is not installed is skipped."""

_instruments: tuple[str, ...] = ()
"""Hard requirements checked by ``instrument()``: none, every client library is probed at run time."""

_instruments_any = ("openai >= 1.26.0", "httpx", "httpx2", "aiohttp", "requests", "boto3 >= 1.34.116")
"""Auto-instrumentation loads us when any one of these is installed."""

_supports_metrics = True
