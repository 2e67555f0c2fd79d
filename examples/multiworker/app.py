"""One LLM call per HTTP request, served by several worker processes: a WSGI app for gunicorn and an ASGI app
for uvicorn, with no instrumentation in the code (see ``app_instrumented.py`` for the one-line form).

    opentelemetry-instrument gunicorn --workers 4 --bind 127.0.0.1:8080 app:wsgi
    opentelemetry-instrument uvicorn --workers 4 --port 8080 app:asgi

with ``OTEL_METRICS_EXPORTER=otlp`` (the default) and a Collector at ``OTEL_EXPORTER_OTLP_ENDPOINT``. Each worker
is its own SDK and its own ``service.instance.id`` (the SDK regenerates it after a fork; uvicorn's workers are
fresh interpreters), so the Collector's series add up across workers. The in-process Prometheus exporter does
not fit pre-fork servers: only one process can serve its port (see the README's "Multi-worker servers").

``GET /`` makes one chat call to ``OPENAI_BASE_URL`` and answers ``{"pid": ..., "tokens": ...}``. The client is
made once per process: an HTTP connection pool must not be shared across a fork.
"""

from __future__ import annotations

import json
import os
from typing import Any

import openai

MODEL = os.environ.get("LLM_MODEL", "gpt-4.1-mini")
PROMPT = [{"role": "user", "content": "Say hi in 3 words."}]

_clients: dict[int, Any] = {}


def _client(kind: type) -> Any:
    key = os.getpid() * 2 + (kind is openai.AsyncOpenAI)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = kind()
    return client


def _answer(tokens: int) -> bytes:
    return json.dumps({"pid": os.getpid(), "tokens": tokens}).encode()


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    reply = _client(openai.OpenAI).chat.completions.create(model=MODEL, messages=PROMPT)
    body = _answer(reply.usage.total_tokens if reply.usage else 0)
    start_response("200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))])
    return [body]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    reply = await _client(openai.AsyncOpenAI).chat.completions.create(model=MODEL, messages=PROMPT)
    body = _answer(reply.usage.total_tokens if reply.usage else 0)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
