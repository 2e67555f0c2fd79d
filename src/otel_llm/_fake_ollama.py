"""The fake provider's Ollama: ``POST /api/chat``, ``/api/generate``, ``/api/embed`` and ``/api/embeddings``.

Shaped as an Ollama server answers (compact JSON, as Go writes it): a whole answer is one object; a stream is
``application/x-ndjson``, one object per line, the last with ``"done": true``, ``done_reason``, the token counts
``prompt_eval_count`` / ``eval_count`` and the timings ``total_duration``, ``load_duration``,
``prompt_eval_duration``, ``eval_duration`` in nanoseconds. ``/api/chat`` and ``/api/generate`` stream unless
the request says ``"stream": false``. Errors are ``{"error": "message"}``. The timings follow from the token
counts (a millisecond to read ten prompt tokens, 20 ms per generated token, 2 ms to load), so tests can predict
them. The ``null-usage`` fault leaves the counts out, ``string-numbers`` sends them as strings.
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import datetime, timezone
from typing import Any

from . import fakeprovider as fp

CHAT = "ollama_chat"
GENERATE = "ollama_generate"
EMBED = "ollama_embed"
EMBEDDINGS = "ollama_embeddings"
APIS = frozenset((CHAT, GENERATE, EMBED, EMBEDDINGS))
EMBEDDING_APIS = frozenset((EMBED, EMBEDDINGS))
CONTENT_TYPE = "application/x-ndjson"
_ROUTES = (("/api/chat", CHAT), ("/api/generate", GENERATE), ("/api/embed", EMBED), ("/api/embeddings", EMBEDDINGS))
_DIMENSIONS = 768
LOAD_NS = 2_000_000
PROMPT_NS_PER_TOKEN = 100_000
EVAL_NS_PER_TOKEN = 20_000_000
OVERHEAD_NS = 500_000


def route(path: str) -> str | None:
    for suffix, api in _ROUTES:
        if path.endswith(suffix):
            return api
    return None


def streams(api: str, body: dict[str, Any]) -> bool:
    return api in (CHAT, GENERATE) and body.get("stream") is not False


def prompt_tokens(api: str, body: dict[str, Any]) -> int:
    """Prompt tokens of a chat or generate request; raises the fake provider's ``_InvalidRequest``."""
    if api == CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise fp._InvalidRequest("messages are required")
        return fp._tokens(sum(fp._words(m) for m in messages), len(messages))
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise fp._InvalidRequest("prompt is required")
    words, count = fp._words(prompt), 1
    if isinstance(body.get("system"), str):
        words, count = words + fp._words(body["system"]), 2
    return fp._tokens(words, count)


def embedding_inputs(api: str, body: dict[str, Any]) -> list[tuple[str, int]]:
    if api == EMBEDDINGS:
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise fp._InvalidRequest("prompt is required")
        return [(prompt, fp._tokens(fp._words(prompt)))]
    return fp._embedding_inputs(body)


def max_tokens(body: dict[str, Any]) -> int | None:
    options = body.get("options")
    value = options.get("num_predict") if isinstance(options, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def wants_reasoning(body: dict[str, Any]) -> bool:
    return body.get("think") not in (None, False)


def error_body(message: str) -> dict[str, Any]:
    return {"error": message}


def _created_at(c: Any) -> str:
    return datetime.fromtimestamp(c.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _final(c: Any, prompt: int, output: int | None) -> tuple[dict[str, Any], Any]:
    """The closing fields: reason, counts, timings; and what they report as sent."""
    prompt_ns = prompt * PROMPT_NS_PER_TOKEN
    eval_ns = (output or 0) * EVAL_NS_PER_TOKEN
    out: dict[str, Any] = {"done": True}
    if output is not None:
        out["done_reason"] = "length" if any(ch.truncated for ch in c.choices) else "stop"
    out["total_duration"] = LOAD_NS + prompt_ns + eval_ns + OVERHEAD_NS
    out["load_duration"] = LOAD_NS
    sent = None
    if c.fault != "null-usage":
        out["prompt_eval_count"] = prompt
        sent = fp._Sent(prompt, output or 0, 0, 0)
    out["prompt_eval_duration"] = prompt_ns
    if output is not None:
        if c.fault != "null-usage":
            out["eval_count"] = output
        out["eval_duration"] = eval_ns
    if c.fault == "string-numbers":
        out = {k: str(v) if k.endswith("_count") else v for k, v in out.items()}
    if c.usage_extra is not None:
        out = fp._merged(out, c.usage_extra)
    return out, sent


def _tool_calls(c: Any) -> list[dict[str, Any]]:
    name = fp._tool_name("chat", c.body)
    return [
        {
            "id": c.rid("call_", 8, "0123456789abcdefghijklmnopqrstuvwxyz"),
            "function": {"index": i, "name": name, "arguments": fp._tool_args(c, i)},
        }
        for i in range(c.tool_calls)
    ]


def _text(c: Any) -> str:
    return fp._REFUSAL if c.answer == "refusal" else c.choices[0].text


def body(c: Any, inputs: list[tuple[str, int]]) -> tuple[dict[str, Any], Any]:
    """A whole (non-stream) answer."""
    if c.api in EMBEDDING_APIS:
        vectors = [_vector(text) for text, _ in inputs]
        if c.api == EMBEDDINGS:
            return {"embedding": vectors[0]}, None  # the older endpoint reports no counts
        tokens = sum(t for _, t in inputs)
        closing, sent = _final(c, tokens, None)
        closing.pop("done")
        closing.pop("prompt_eval_duration", None)
        return {"model": c.model, "embeddings": vectors, **closing}, sent
    closing, sent = _final(c, c.prompt_tokens, c.output_tokens)
    head: dict[str, Any] = {"model": c.model, "created_at": _created_at(c)}
    thinking = fp._THOUGHT if c.answer == "reasoning" else None
    if c.api == CHAT:
        msg: dict[str, Any] = {"role": "assistant", "content": "" if c.answer == "tool_call" else _text(c)}
        if thinking:
            msg["thinking"] = thinking
        if c.answer == "tool_call":
            msg["tool_calls"] = _tool_calls(c)
        return {**head, "message": msg, **closing}, sent
    out = {**head, "response": _text(c)}
    if thinking:
        out["thinking"] = thinking
    closing["context"] = list(range(1, 9))
    return {**out, **closing}, sent


def frames(c: Any) -> list[Any]:
    """A streamed chat or generate answer, one NDJSON line per frame."""
    head: dict[str, Any] = {"model": c.model, "created_at": _created_at(c)}
    out: list[Any] = []

    def line(kind: str, sent: Any = None, **fields: Any) -> Any:
        return fp._Frame(fp._dumps({**head, **fields}) + b"\n", kind, sent)

    def piece(text: str, field: str = "content") -> Any:
        if c.api == CHAT:
            return line("content", message={"role": "assistant", field: text}, done=False)
        return line("content", **{"response" if field == "content" else field: text}, done=False)

    if c.answer == "reasoning":
        out += [piece(p, "thinking") for p in fp._pieces(fp._THOUGHT, 4)]
    if c.answer == "tool_call" and c.api == CHAT:
        out.append(
            line("content", message={"role": "assistant", "content": "", "tool_calls": _tool_calls(c)}, done=False)
        )
    elif c.answer == "refusal":
        out += [piece(p) for p in fp._pieces(fp._REFUSAL, max(2, len(c.choices[0].deltas)))]
    else:
        out += [piece(d) for d in c.choices[0].deltas]
    closing, sent = _final(c, c.prompt_tokens, c.output_tokens)
    last = {"message": {"role": "assistant", "content": ""}} if c.api == CHAT else {"response": ""}
    if c.api == GENERATE:
        closing["context"] = list(range(1, 9))
    out.append(line("meta", sent, **last, **closing))
    return out


def _vector(text: str, dims: int = _DIMENSIONS) -> list[float]:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    vector = [rng.random() * 2.0 - 1.0 for _ in range(dims)]
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]
