"""Settings shared by the examples: the same environment variables the openai SDK reads.

Against the demo provider:  otel-llm provider --port 8000 &  then
    OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=test python examples/chat_sdk.py
Against a real provider, set OPENAI_API_KEY (and OPENAI_BASE_URL for a relay) and LLM_MODEL.
"""

from __future__ import annotations

import os

BASE_URL = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
API_KEY = os.environ.get("OPENAI_API_KEY", "")
MODEL = os.environ.get("LLM_MODEL", "gpt-4.1-mini")
HEADERS = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}


def chat_body(prompt: str, **extra: object) -> dict[str, object]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], **extra}
