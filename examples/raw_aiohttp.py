"""Raw ``aiohttp``: concurrent calls, one streamed, each its own span."""

from __future__ import annotations

import asyncio

import otel_llm

otel_llm.instrument()

import aiohttp  # noqa: E402
from _common import BASE_URL, HEADERS, chat_body  # noqa: E402


async def ask(session: aiohttp.ClientSession, prompt: str) -> str:
    async with session.post(f"{BASE_URL}/chat/completions", json=chat_body(prompt), headers=HEADERS) as resp:
        data = await resp.json()
        return str(data["choices"][0]["message"]["content"])


async def main() -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        answers = await asyncio.gather(*(ask(session, f"Question {i}?") for i in range(3)))
        print(*answers, sep="\n")
        async with session.post(
            f"{BASE_URL}/chat/completions",
            json=chat_body("Stream!", stream=True, stream_options={"include_usage": True}),
            headers=HEADERS,
        ) as resp:
            events = [line async for line in resp.content if line.startswith(b"data:")]
        print(len(events), "events")


if __name__ == "__main__":
    asyncio.run(main())
