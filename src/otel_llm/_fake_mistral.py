"""The fake provider's Mistral: Chat Completions and embeddings answered as ``api.mistral.ai`` answers them.

A request is Mistral's when its path is under ``/mistral/`` (a client's ``server_url`` of
``{provider.url}/mistral``) or its ``Host`` header is ``api.mistral.ai`` (a client whose transport sends to the
fake provider). Mistral differs from OpenAI where instrumentation can notice: its streams always end with the
usage, on the chunk that carries the finish reason (no ``stream_options`` needed), and it refuses a
``stream_options`` key (422, the client's ``HTTPValidationError`` shape); its answers carry no system
fingerprint or service tier; an assistant message has ``tool_calls`` and ``prefix``; embeddings have an id and
1024 dimensions.
"""

from __future__ import annotations

import json
from typing import Any

from . import fakeprovider as fp

HOST = "api.mistral.ai"
PREFIX = "/mistral/"
_DIMENSIONS = 1024


def is_mistral(path: str, headers: dict[str, str]) -> bool:
    return path.startswith(PREFIX) or headers.get("host", "").split(":", 1)[0].lower() == HOST


def extra_forbidden(key: str) -> dict[str, Any]:
    return {
        "detail": [
            {"type": "extra_forbidden", "loc": ["body", key], "msg": "Extra inputs are not permitted", "input": {}}
        ]
    }


def _usage(c: Any, tokens_out: int) -> tuple[dict[str, Any] | None, Any]:
    if c.fault == "null-usage":
        return None, None
    usage: dict[str, Any] = {
        "prompt_tokens": c.prompt_tokens,
        "total_tokens": c.prompt_tokens + tokens_out,
        "completion_tokens": tokens_out,
    }
    if c.fault == "string-numbers":
        usage = fp._stringify(usage)
    if c.usage_extra is not None:
        usage = fp._merged(usage, c.usage_extra)
    return usage, fp._Sent(c.prompt_tokens, tokens_out, 0, 0)


def _tool_calls(c: Any) -> list[dict[str, Any]]:
    name = fp._tool_name("chat", c.body)
    return [
        {
            "id": c.rid("", 9),
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(fp._tool_args(c, i))},
            "index": i,
        }
        for i in range(c.tool_calls)
    ]


def _reason(c: Any, choice: Any) -> str:
    if c.answer == "tool_call":
        return "tool_calls"
    return "length" if choice.truncated else "stop"


def body(c: Any, inputs: list[tuple[str, int]]) -> tuple[dict[str, Any], Any]:
    """A whole chat or embeddings answer."""
    if c.api == "embeddings":
        usage, sent = _usage(c, 0)
        data = [
            {"object": "embedding", "embedding": fp._fake_ollama._vector(text, _DIMENSIONS), "index": i}
            for i, (text, _) in enumerate(inputs)
        ]
        if usage is not None:
            sent = fp._Sent(c.prompt_tokens, 0, 0, 0)
        return {
            "id": c.rid("", 32, "0123456789abcdef"),
            "object": "list",
            "data": data,
            "model": c.model,
            "usage": usage,
        }, sent
    usage, sent = _usage(c, c.output_tokens)
    choices = []
    for i, ch in enumerate(c.choices):
        msg: dict[str, Any] = {"role": "assistant", "tool_calls": None, "content": ch.text, "prefix": False}
        if c.answer == "tool_call":
            msg["content"] = ""
            msg["tool_calls"] = _tool_calls(c)
        choices.append({"index": i, "message": msg, "finish_reason": _reason(c, ch)})
    out = {
        "id": c.rid("", 32, "0123456789abcdef"),
        "created": c.created,
        "model": c.model,
        "usage": usage,
        "object": "chat.completion",
        "choices": choices,
    }
    return out, sent


def chat_frames(c: Any) -> list[Any]:
    """A chat stream: a role chunk, the content chunks, then the finish reason with the usage, then ``[DONE]``."""
    base = {
        "id": c.rid("", 32, "0123456789abcdef"),
        "object": "chat.completion.chunk",
        "created": c.created,
        "model": c.model,
    }

    def chunk(kind: str, delta: dict[str, Any], finish: str | None = None, index: int = 0, **extra: Any) -> Any:
        payload = {**base, "choices": [{"index": index, "delta": delta, "finish_reason": finish}], **extra}
        return fp._Frame(b"data: " + fp._dumps(payload) + b"\n\n", kind)

    frames = [chunk("meta", {"role": "assistant", "content": ""}, index=i) for i in range(len(c.choices))]
    if c.answer == "tool_call":
        frames.append(chunk("content", {"tool_calls": _tool_calls(c)}))
    else:
        for i, ch in enumerate(c.choices):
            frames += [chunk("content", {"content": d}, index=i) for d in ch.deltas]
    usage, sent = _usage(c, c.output_tokens)
    for i, ch in enumerate(c.choices):
        last = i == len(c.choices) - 1
        extra: dict[str, Any] = {"usage": usage} if last and usage is not None else {}
        frame = chunk("meta", {"content": ""}, _reason(c, ch), index=i, **extra)
        if last:
            frame.sent = sent
        frames.append(frame)
    frames.append(fp._Frame(b"data: [DONE]\n\n"))
    return frames
