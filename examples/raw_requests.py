"""Plain ``requests`` to an OpenAI-compatible endpoint (a relay, a gateway): still one GenAI span."""

from __future__ import annotations

import otel_llm

otel_llm.instrument()

import requests  # noqa: E402
from _common import BASE_URL, HEADERS, chat_body  # noqa: E402


def main() -> None:
    r = requests.post(
        f"{BASE_URL}/chat/completions", json=chat_body("What is OpenTelemetry?"), headers=HEADERS, timeout=30
    )
    r.raise_for_status()
    print(r.json()["choices"][0]["message"]["content"])
    # streamed: read as the server sends it
    with requests.post(
        f"{BASE_URL}/chat/completions",
        json=chat_body("Stream please.", stream=True, stream_options={"include_usage": True}),
        headers=HEADERS,
        stream=True,
        timeout=30,
    ) as s:
        lines = [line for line in s.iter_lines() if line]
    print(f"{len(lines)} SSE lines")


if __name__ == "__main__":
    main()
