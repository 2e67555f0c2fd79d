"""Raw ``httpx``: a JSON call and a streamed call, sync and async."""

from __future__ import annotations

import asyncio

import otel_llm

otel_llm.instrument()

import httpx  # noqa: E402
from _common import BASE_URL, HEADERS, chat_body  # noqa: E402


def main() -> None:
    with httpx.Client(timeout=30) as client:
        r = client.post(f"{BASE_URL}/chat/completions", json=chat_body("One fact about Jaeger."), headers=HEADERS)
        print(r.json()["choices"][0]["message"]["content"])
        with client.stream(
            "POST",
            f"{BASE_URL}/chat/completions",
            json=chat_body("Stream a haiku.", stream=True, stream_options={"include_usage": True}),
            headers=HEADERS,
        ) as s:
            print(sum(1 for line in s.iter_lines() if line.startswith("data:")), "events")

    async def run() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(f"{BASE_URL}/chat/completions", json=chat_body("Async hello."), headers=HEADERS)
            print(r.json()["choices"][0]["message"]["content"])

    asyncio.run(run())


if __name__ == "__main__":
    main()
