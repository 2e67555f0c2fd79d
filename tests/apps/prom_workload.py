"""A bounded instrumented workload for the Prometheus end-to-end test; then serves metrics until killed.

It ends with three streams held open together for a few scrapes: the peak of calls in flight is 3.
Some calls are made inside scopes of three tenants (two with budgets
in collector/config.yaml, one without); the rest, outside any scope, carry no tenant or feature label.

Set up by env vars only (OTEL_METRICS_EXPORTER=prometheus, OTEL_EXPORTER_PROMETHEUS_HOST/PORT), like a user.
"""

import os
import sys
import time

import otel_llm

otel_llm.instrument()

import threading  # noqa: E402

import httpx  # noqa: E402
import openai  # noqa: E402

base = os.environ["PROVIDER_URL"]
client = openai.OpenAI(base_url=base + "/v1", api_key="sk-e2e", max_retries=0)
print("ready", flush=True)
sys.stdin.readline()  # the test says go once Prometheus scrapes us, so that rates see the traffic
msg = [{"role": "user", "content": "Explain the difference between latency and throughput for a service team."}]
for _round in range(4):
    time.sleep(1.5)
    for model in ("gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2", "claude-sonnet-4.5"):
        client.chat.completions.create(model=model, messages=msg)
        for _ in client.chat.completions.create(model=model, messages=msg, stream=True):
            pass
    for fault in ("429", "500"):
        try:
            client.chat.completions.create(model="gpt-4.1", messages=msg, extra_headers={"x-fake-fault": fault})
        except openai.APIStatusError:
            pass
    client.chat.completions.create(model="acme-unknown-model", messages=msg)
    httpx.post(
        base + "/v1/messages",
        json={"model": "claude-sonnet-4.5", "max_tokens": 100, "messages": msg},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    for tenant, feature in (("acme", "search"), ("globex", "chat"), ("initech", "search")):
        with otel_llm.scope(tenant=tenant, feature=feature):
            client.chat.completions.create(model="gpt-4.1", messages=msg)
    # billed by a relay: a reported cost below list price, so list price and savings are recorded
    client.chat.completions.create(model="gpt-4.1", messages=msg, extra_headers={"x-fake-relay-cost": "0.000001"})


def held(gate: threading.Barrier) -> None:
    stream = client.chat.completions.create(model="gpt-4.1", messages=msg, stream=True)
    next(iter(stream))
    gate.wait()  # all three in flight at once ...
    time.sleep(2.5)  # ... across a few scrapes
    for _ in stream:
        pass


gate = threading.Barrier(3)
threads = [threading.Thread(target=held, args=(gate,)) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done", flush=True)
deadline = time.time() + float(sys.argv[1] if len(sys.argv) > 1 else 300)
while time.time() < deadline:
    time.sleep(0.5)
