"""The fake provider's Cohere v2 API: ``POST …/v2/chat`` (JSON, or its SSE stream), ``…/v2/embed`` and
``…/v2/rerank``, in the shapes the ``cohere`` client's v2 types read.

Token counts follow the fake provider's rules (a function of the request). Cohere reports two counts: ``tokens``
(what the model saw, including the prompt template Cohere adds: ``TEMPLATE_TOKENS`` more input tokens) and
``billed_units`` (what it bills: the caller's own prompt). An embed answer sends billed input tokens only; a rerank
answer bills one search unit per query and hundred documents. Errors are Cohere's ``{"id", "message"}`` bodies.
``x-fake-answer`` works as for the other formats (a tool call comes with Cohere's ``tool_plan``; ``reasoning``
sends a ``thinking`` content item before the text).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from . import fakeprovider as fp

__all__ = ["APIS", "TEMPLATE_TOKENS", "answer", "error_body", "frames", "prompt_tokens", "route"]

CHAT = "cohere.chat"
EMBED = "cohere.embed"
RERANK = "cohere.rerank"
APIS = frozenset((CHAT, EMBED, RERANK))
TEMPLATE_TOKENS = 60
"""Input tokens Cohere's prompt template adds to a chat: in ``usage.tokens``, not in ``usage.billed_units``."""

_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "tool_call": "TOOL_CALL"}
_HEX = "0123456789abcdef"


def route(path: str) -> str | None:
    """The Cohere API a POST path asks for, or None."""
    if path.endswith("/v2/chat"):
        return CHAT
    if path.endswith("/v2/embed"):
        return EMBED
    if path.endswith("/v2/rerank"):
        return RERANK
    return None


def _texts(body: dict[str, Any]) -> list[str]:
    """An embed request's inputs: ``texts``, or the text items of ``inputs``."""
    texts = body.get("texts")
    if isinstance(texts, list) and texts:
        return [t if isinstance(t, str) else json.dumps(t) for t in texts]
    out: list[str] = []
    for item in body.get("inputs") or ():
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
    if not out:
        raise fp._InvalidRequest("invalid request: one of texts, images or inputs must be specified.")
    return out


def _documents(body: dict[str, Any]) -> list[Any]:
    docs = body.get("documents")
    if not isinstance(docs, list) or not docs:
        raise fp._InvalidRequest("invalid request: list of documents must not be empty.")
    if not isinstance(body.get("query"), str):
        raise fp._InvalidRequest("invalid request: query must be a string.")
    return docs


def prompt_tokens(api: str, body: dict[str, Any]) -> int:
    """The caller's prompt tokens (what Cohere bills as input); raises ``_InvalidRequest``."""
    if api == CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise fp._InvalidRequest("invalid request: messages must not be empty.")
        return fp._tokens(sum(fp._words(m) for m in messages), len(messages))
    if api == EMBED:
        return sum(fp._tokens(fp._words(t)) for t in _texts(body))
    docs = _documents(body)
    return fp._tokens(fp._words(body["query"]) + sum(fp._words(d) for d in docs))


def has_tool_result(body: dict[str, Any]) -> bool:
    items = body.get("messages")
    return isinstance(items, list) and any(isinstance(m, dict) and m.get("role") == "tool" for m in items)


def _uuid(c: Any) -> str:
    h = c.rid("", 32, _HEX)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _usage(c: Any) -> tuple[dict[str, Any] | None, Any]:
    """A chat answer's ``usage`` and what it counts as sent."""
    if c.fault == "null-usage" and not c.stream:
        return None, None
    prompt, out = c.prompt_tokens, c.output_tokens
    usage: dict[str, Any] = {
        "billed_units": None if c.fault == "null-usage" else {"input_tokens": prompt, "output_tokens": out},
        "tokens": {"input_tokens": prompt + TEMPLATE_TOKENS, "output_tokens": out},
    }
    if c.cached_tokens:
        usage["cached_tokens"] = c.cached_tokens
    return fp._finish_usage(c, usage), fp._Sent(prompt + TEMPLATE_TOKENS, out, c.cached_tokens, 0)


def _meta(c: Any, billed: dict[str, Any]) -> dict[str, Any] | None:
    if c.fault == "null-usage":
        return None
    return {"api_version": {"version": "2"}, **fp._finish_usage(c, {"billed_units": billed})}


def _reason(c: Any) -> str:
    if c.answer == "tool_call":
        return "TOOL_CALL"
    return "MAX_TOKENS" if c.choices[0].truncated else "COMPLETE"


def _plan_text(c: Any) -> str:
    return f"I will call {fp._tool_name('chat', c.body)} to answer this."


def _tool_calls(c: Any) -> list[dict[str, Any]]:
    name = fp._tool_name("chat", c.body)
    return [
        {
            "id": name + "_" + c.rid("", 12, "abcdefghijklmnopqrstuvwxyz0123456789"),
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(fp._tool_args(c, n))},
        }
        for n in range(c.tool_calls)
    ]


def answer(c: Any, inputs: list[tuple[str, int]]) -> tuple[dict[str, Any], Any]:
    """A whole answer of ``c.api`` and what it counts as sent."""
    if c.api == EMBED:
        return _embed_body(c), fp._Sent(c.prompt_tokens, 0, 0, 0) if c.fault != "null-usage" else None
    if c.api == RERANK:
        return _rerank_body(c), fp._Sent(0, 0, 0, 0)
    usage, sent = _usage(c)
    message: dict[str, Any] = {"role": "assistant"}
    if c.answer == "tool_call":
        message["tool_plan"] = _plan_text(c)
        message["tool_calls"] = _tool_calls(c)
    else:
        text = fp._REFUSAL if c.answer == "refusal" else c.choices[0].text
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if c.answer == "reasoning":
            content.insert(0, {"type": "thinking", "thinking": fp._THOUGHT})
        message["content"] = content
    return {"id": _uuid(c), "message": message, "finish_reason": _reason(c), "usage": usage}, sent


def _embed_body(c: Any) -> dict[str, Any]:
    body = c.body
    texts = _texts(body)
    dims = body.get("output_dimension")
    dims = dims if isinstance(dims, int) and 0 < dims <= 8192 else 1536
    kinds = body.get("embedding_types")
    kinds = [k for k in kinds if isinstance(k, str)] if isinstance(kinds, list) and kinds else ["float"]
    embeddings: dict[str, Any] = {}
    for kind in kinds:
        vectors = []
        for text in texts:
            rng = random.Random(text)
            if kind == "float":
                vectors.append([round(rng.uniform(-1, 1), 6) for _ in range(dims)])
            elif kind in ("int8", "uint8"):
                lo = -128 if kind == "int8" else 0
                vectors.append([rng.randint(lo, lo + 255) for _ in range(dims)])
            elif kind in ("binary", "ubinary"):
                lo = -128 if kind == "binary" else 0
                vectors.append([rng.randint(lo, lo + 255) for _ in range(dims // 8)])
            else:
                raise fp._InvalidRequest(f"invalid request: embedding type {kind!r} is not supported.")
        embeddings[kind] = vectors
    return {
        "id": _uuid(c),
        "embeddings": embeddings,
        "texts": texts,
        "meta": _meta(c, {"input_tokens": c.prompt_tokens}),
        "response_type": "embeddings_by_type",
    }


def _rerank_body(c: Any) -> dict[str, Any]:
    docs = _documents(c.body)
    rng = random.Random(json.dumps(c.body, sort_keys=True))
    scores = sorted(((round(rng.random(), 8), i) for i in range(len(docs))), reverse=True)
    top = c.body.get("top_n")
    if isinstance(top, int) and not isinstance(top, bool) and top > 0:
        scores = scores[:top]
    return {
        "id": _uuid(c),
        "results": [{"index": i, "relevance_score": s} for s, i in scores],
        "meta": _meta(c, {"search_units": math.ceil(len(docs) / 100)}),
    }


def _event(payload: dict[str, Any], kind: str = "meta", sent: Any = None) -> Any:
    return fp._sse(payload, payload["type"], kind, sent)


def frames(c: Any) -> list[Any]:
    """A chat stream's events, ``message-end`` last (Cohere sends no ``[DONE]``)."""
    start = {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}
    out = [_event({"id": _uuid(c), "type": "message-start", "delta": {"message": start}})]
    ch = c.choices[0]
    if c.answer == "tool_call":
        k = max(2, len(ch.deltas))
        out += [
            _event({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": p}}}, "content")
            for p in fp._pieces(_plan_text(c), k)
        ]
        for n, call in enumerate(_tool_calls(c)):
            head = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            out.append(_event({"type": "tool-call-start", "index": n, "delta": {"message": {"tool_calls": head}}}))
            for piece in fp._pieces(call["function"]["arguments"], k):
                delta = {"message": {"tool_calls": {"function": {"arguments": piece}}}}
                out.append(_event({"type": "tool-call-delta", "index": n, "delta": delta}, "content"))
            out.append(_event({"type": "tool-call-end", "index": n}))
    else:
        items: list[tuple[str, list[str]]] = []
        if c.answer == "reasoning":
            items.append(("thinking", fp._pieces(fp._THOUGHT, 4)))
        texts = fp._pieces(fp._REFUSAL, max(2, len(ch.deltas))) if c.answer == "refusal" else ch.deltas
        items.append(("text", texts))
        for index, (kind, pieces) in enumerate(items):
            first = {"message": {"content": {"type": kind, kind: ""}}}
            out.append(_event({"type": "content-start", "index": index, "delta": first}))
            out += [
                _event(
                    {"type": "content-delta", "index": index, "delta": {"message": {"content": {kind: p}}}}, "content"
                )
                for p in pieces
            ]
            out.append(_event({"type": "content-end", "index": index}))
    usage, sent = _usage(c)
    end = {"type": "message-end", "delta": {"finish_reason": _reason(c), "usage": usage}}
    out.append(_event(end, sent=sent))
    return out


def error_body(message: str, request_id: str) -> dict[str, Any]:
    return {"id": request_id, "message": message}
