"""A streamed chat: time to first chunk and per-chunk timing; usage is requested for you and hidden."""

from __future__ import annotations

import otel_llm

otel_llm.instrument()

import openai  # noqa: E402
from _common import MODEL  # noqa: E402


def main() -> None:
    stream = openai.OpenAI().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count from one to ten."}], stream=True
    )
    for chunk in stream:  # exactly the chunks you would see without otel-llm
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()


if __name__ == "__main__":
    main()
