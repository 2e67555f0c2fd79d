"""The openai SDK, sync and async: each call is one span plus duration, token and cost metrics."""

from __future__ import annotations

import asyncio

import otel_llm

otel_llm.instrument()  # before the first call; providers come from OTEL_* env vars

import openai  # noqa: E402
from _common import MODEL  # noqa: E402


def main() -> None:
    client = openai.OpenAI()
    reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hi in 3 words."}])
    print("sync:", reply.choices[0].message.content)

    async def run() -> None:
        aclient = openai.AsyncOpenAI()
        reply = await aclient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "And async?"}])
        print("async:", reply.choices[0].message.content)
        await aclient.close()

    asyncio.run(run())
    print("spend so far:", otel_llm.spend().as_dict())


if __name__ == "__main__":
    main()
