"""An app with no otel-llm code at all: run under ``opentelemetry-instrument``."""

import os

import openai

client = openai.OpenAI(base_url=os.environ["PROVIDER_URL"] + "/v1", api_key="sk-test")
reply = client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hello there"}])
print("reply:", reply.choices[0].message.content[:20])
