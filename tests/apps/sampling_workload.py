"""Traffic for the tail-sampling gateway: normal, failing (500) and slow (10.5 s) calls, each its own trace.

Set up by env vars only (OTEL_TRACES_EXPORTER=otlp, OTEL_EXPORTER_OTLP_ENDPOINT=<gateway>). Prints one JSON
line {"normal": [trace ids], "error": [...], "slow": [...]} once every span has been exported.
Usage: sampling_workload.py NORMAL ERRORS SLOW
"""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import otel_llm

otel_llm.instrument()

import openai  # noqa: E402
from opentelemetry import trace  # noqa: E402

n_normal, n_error, n_slow = (int(x) for x in sys.argv[1:4])
client = openai.OpenAI(base_url=os.environ["PROVIDER_URL"] + "/v1", api_key="sk-e2e", max_retries=0, timeout=30)
tracer = trace.get_tracer("e2e.sampling")
msg = [{"role": "user", "content": "Name one prime number."}]
FAULTS = {"normal": {}, "error": {"x-fake-fault": "500"}, "slow": {"x-fake-fault": "slow", "x-fake-delay": "10.5"}}


def one(kind: str) -> str:
    with tracer.start_as_current_span("job") as span:
        try:
            client.chat.completions.create(model="gpt-4.1", messages=msg, extra_headers=FAULTS[kind])
        except openai.APIStatusError:
            pass
        return format(span.get_span_context().trace_id, "032x")


out: dict[str, list[str]] = {"normal": [], "error": [], "slow": []}
with ThreadPoolExecutor(max_workers=max(1, n_slow)) as pool:
    slow = [pool.submit(one, "slow") for _ in range(n_slow)]  # in parallel with the rest
    every = max(1, (n_normal + n_error) // max(1, n_error))  # errors spread through the normal calls
    for i in range(n_normal + n_error):
        kind = "error" if i % every == 0 and len(out["error"]) < n_error else "normal"
        out[kind].append(one(kind))
    out["slow"] = [f.result() for f in slow]
provider = trace.get_tracer_provider()
provider.force_flush()  # type: ignore[attr-defined]
print(json.dumps(out), flush=True)
