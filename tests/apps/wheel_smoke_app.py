"""The installed wheel's smoke app (scripts/wheel-smoke.sh): no otel-llm code but the wheel's own fake provider.

Run under ``opentelemetry-instrument`` with the console exporters: one chat call through the openai SDK and
one raw httpx call must come out as spans and metrics.
"""

import httpx
import openai

import otel_llm
from otel_llm.fakeprovider import FakeProvider

print("otel_llm from:", otel_llm.__file__)
with FakeProvider() as provider:
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-smoke")
    reply = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hello there"}])
    print("sdk reply:", reply.choices[0].message.content[:20])
    raw = httpx.post(
        provider.url + "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "hello there"},
        headers={"authorization": "Bearer sk-smoke"},
    )
    print("raw status:", raw.status_code)
