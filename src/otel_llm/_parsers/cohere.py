"""Cohere's v2 API (``/v2/chat``, ``/v2/embed``, ``/v2/rerank``): request parameters, answers, stream events and
message content.

Shapes, as the ``cohere`` client's v2 types declare them:

* chat answer: ``{"id", "finish_reason", "message": {"role", "tool_plan", "tool_calls", "content": [{"type": "text"
  | "thinking", ...}]}, "usage": {"billed_units": {...}, "tokens": {"input_tokens", "output_tokens"},
  "cached_tokens"}}``; no model name is sent back (the span's response model stays unset);
* chat stream: SSE events named by their ``type`` (``message-start``, ``content-start``, ``content-delta``,
  ``content-end``, ``tool-plan-delta``, ``tool-call-start``, ``tool-call-delta``, ``tool-call-end``,
  ``citation-start``, ``citation-end``, ``message-end``), the last one carrying ``delta.finish_reason`` and
  ``delta.usage``; no ``[DONE]`` marker;
* embed and rerank answers: ``{"id", ..., "meta": {"billed_units": {...}, "tokens": {...}}}``.

Tokens come from ``tokens`` (what the model saw); ``billed_units`` (what Cohere bills: its input excludes the
prompt template Cohere adds) are recorded as ``cohere.billed_units.*`` attributes and are what the call is priced
on. An embed answer that sends no ``tokens`` counts its billed input tokens; a rerank answer bills search units
only, which no price table prices per token: it is recorded, not priced. Counts follow the other parsers'
rule: a whole number from 0 to ``MAX_TOKENS``, else the usage is invalid.

Nothing here imports the other parsers (``messages``, ``response`` and ``sse`` import this module), and nothing
raises on a body of the wrong shape.
"""

from __future__ import annotations

import json
from typing import Any

from ._json import loads as _loads
from ._text import clean
from .routes import COHERE_CHAT, COHERE_EMBED
from .usage import MAX_TOKENS, Usage, invalid_usage, new_usage

__all__ = [
    "BILLED_INPUT",
    "BILLED_OUTPUT",
    "BILLED_SEARCH_UNITS",
    "CohereStream",
    "apply_cohere_body",
    "cohere_event",
    "cohere_request_attrs",
    "cohere_request_content",
    "cohere_response_messages",
]

BILLED_INPUT = "cohere.billed_units.input_tokens"
BILLED_OUTPUT = "cohere.billed_units.output_tokens"
BILLED_SEARCH_UNITS = "cohere.billed_units.search_units"
_BILLED_KEYS = (("input_tokens", BILLED_INPUT), ("output_tokens", BILLED_OUTPUT), ("search_units", BILLED_SEARCH_UNITS))

# (body key, attribute, python type) of a chat request
_CHAT_PARAMS = (
    ("temperature", "gen_ai.request.temperature", float),
    ("p", "gen_ai.request.top_p", float),
    ("k", "gen_ai.request.top_k", float),
    ("max_tokens", "gen_ai.request.max_tokens", int),
    ("seed", "gen_ai.request.seed", int),
    ("frequency_penalty", "gen_ai.request.frequency_penalty", float),
    ("presence_penalty", "gen_ai.request.presence_penalty", float),
)
_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
_OUTPUT_TYPE = "gen_ai.output.type"


class _Bad(Exception):
    """A count outside any real range: the usage it belongs to is invalid."""


def _count(v: Any) -> int | None:
    if v is None:
        return None
    if type(v) is int:
        if 0 <= v <= MAX_TOKENS:
            return v
        raise _Bad
    if type(v) is float and v.is_integer() and 0 <= v <= MAX_TOKENS:
        return int(v)
    raise _Bad


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


# --- requests ------------------------------------------------------------------------------------


def cohere_request_attrs(attrs: dict[str, Any], body: dict, api: str) -> None:
    """The span attributes of a chat or embed request's parameters (a rerank request has none beyond its model)."""
    if api == COHERE_CHAT:
        for key, attr, kind in _CHAT_PARAMS:
            v = body.get(key)
            if v is not None and not isinstance(v, bool) and isinstance(v, (int, float)):
                attrs[attr] = kind(v)
        stops = body.get("stop_sequences")
        if isinstance(stops, list) and stops:
            attrs[_STOP_SEQUENCES] = [clean(str(s)) for s in stops]
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and isinstance(fmt.get("type"), str) and fmt["type"]:
            attrs[_OUTPUT_TYPE] = "json" if fmt["type"] == "json_object" else clean(fmt["type"])
    elif api == COHERE_EMBED:
        kinds = body.get("embedding_types")
        if isinstance(kinds, list) and kinds:
            attrs[_ENCODING_FORMATS] = [clean(k) for k in kinds if isinstance(k, str)]


# --- answers -------------------------------------------------------------------------------------


def _usage(u: dict) -> tuple[Usage, Usage | None, dict[str, Any] | None]:
    """(tokens, billed tokens or None, billed-unit attributes or None) of a chat ``usage`` or an embed/rerank
    ``meta``. Raises ``_Bad``."""
    tokens = _dict(u.get("tokens"))
    billed = _dict(u.get("billed_units"))
    t_in = _count(tokens.get("input_tokens"))
    t_out = _count(tokens.get("output_tokens"))
    cached = _count(u.get("cached_tokens"))
    attrs: dict[str, Any] | None = None
    values: dict[str, int] = {}
    for key, attr in _BILLED_KEYS:
        v = _count(billed.get(key))
        if v is not None:
            values[key] = v
            if attrs is None:
                attrs = {}
            attrs[attr] = v
    b_in = values.get("input_tokens")
    b_out = values.get("output_tokens")
    if t_in is None and t_out is None:  # an embed answer without ``tokens``: its billed input is all it says
        t_in, t_out = b_in, b_out
    usage = new_usage(t_in, t_out, cached or None)
    priced = None
    if b_in is not None or b_out is not None:
        priced = new_usage(t_in if b_in is None else b_in, t_out if b_out is None else b_out)
    return usage, priced, attrs


def _take_usage(info: Any, u: Any) -> None:
    if not isinstance(u, dict):
        return
    try:
        usage, billed, attrs = _usage(u)
    except _Bad:
        info.usage = invalid_usage()
        info.billed = None
        return
    info.usage = usage
    info.billed = billed
    if attrs:
        info.provider_attrs = attrs


def _text(v: Any) -> str | None:
    return clean(v) or None if isinstance(v, str) else None


def _embedding_dimensions(embeddings: Any) -> int | None:
    """Dimensions of the first vector of an embed answer (``embeddings`` keyed by type; packed binary types hold
    eight dimensions per number)."""
    if isinstance(embeddings, list):  # the v1 "embeddings_floats" shape, a list of vectors
        embeddings = {"float": embeddings}
    for kind in ("float", "int8", "uint8", "binary", "ubinary"):
        vectors = _dict(embeddings).get(kind)
        if isinstance(vectors, list) and vectors and isinstance(vectors[0], list):
            size = len(vectors[0])
            return size * 8 if kind in ("binary", "ubinary") else size
    return None


def apply_cohere_body(info: Any, body: dict, api: str) -> None:
    """Fill a ``ResponseInfo`` from a decoded Cohere answer (an error body, ``{"id", "message": "..."}``, says
    nothing the span keeps: its id is the failed request's, not an answer's)."""
    if isinstance(body.get("message"), str):
        return
    rid = _text(body.get("id"))
    if rid:
        info.id = rid
    if api == COHERE_CHAT:
        reason = body.get("finish_reason")
        if isinstance(reason, str) and reason:
            info.finish_reasons.append(clean(reason))
        _take_usage(info, body.get("usage"))
        return
    if api == COHERE_EMBED:
        dims = _embedding_dimensions(body.get("embeddings"))
        if dims:
            info.embedding_dimensions = dims
    _take_usage(info, body.get("meta"))


def _type_of(data: bytes) -> bytes | None:
    i = data.find(b'"type":')
    if i < 0:
        return None
    j = data.find(b'"', i + 7)
    k = data.find(b'"', j + 1) if j >= 0 else -1
    return data[j + 1 : k] if k > j else None


_CHUNK_EVENTS = frozenset((b"content-delta", b"tool-call-delta", b"tool-plan-delta"))


def cohere_event(parser: Any, name: bytes | None, data: bytes) -> int:
    """One SSE event of a chat stream (``parser`` is the ``StreamParser``): the number of content chunks it
    completes. Only ``message-start`` (the answer's id) and ``message-end`` (finish reason, usage) are decoded."""
    if name is None:
        name = _type_of(data)
    if name in _CHUNK_EVENTS:
        return 1
    if name == b"message-start" or name == b"message-end":
        try:
            ev = _loads(data)
        except (ValueError, TypeError):
            return 0
        if not isinstance(ev, dict):
            return 0
        info = parser.info
        rid = _text(ev.get("id"))
        if rid:
            info.id = rid
        if name == b"message-end":
            parser.done = True
            delta = _dict(ev.get("delta"))
            reason = delta.get("finish_reason")
            if isinstance(reason, str) and reason:
                info.finish_reasons.append(clean(reason))
            _take_usage(info, delta.get("usage"))
    return 0


# --- content -------------------------------------------------------------------------------------

Part = dict[str, Any]
Message = dict[str, Any]

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_call",
    "ERROR": "error",
    "TIMEOUT": "error",
}


def _finish(reason: Any) -> str:
    if not isinstance(reason, str) or not reason:
        return "error"
    return _FINISH.get(reason, reason.lower())


def _arguments(raw: Any) -> Any:
    """Tool-call arguments: the JSON value of a valid JSON string, else the string itself (as the other formats)."""
    if not isinstance(raw, str):
        return raw
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw


def _tool_call(call: Any) -> Part | None:
    if not isinstance(call, dict):
        return None
    fn = _dict(call.get("function"))
    return {
        "type": "tool_call",
        "id": call.get("id") if isinstance(call.get("id"), str) else None,
        "name": fn.get("name") if isinstance(fn.get("name"), str) else "",
        "arguments": _arguments(fn.get("arguments")),
    }


def _url_part(url: str) -> Part:
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        return {"type": "blob", "mime_type": header.split(";", 1)[0] or None, "modality": "image", "content": payload}
    return {"type": "uri", "mime_type": None, "modality": "image", "uri": url}


def _parts(content: Any) -> list[Part]:
    """A message's content: a string, or a list of ``text``, ``thinking``, ``image_url`` and ``document`` items."""
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[Part] = []
    for item in _list(content):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "text" and isinstance(item.get("text"), str):
            parts.append({"type": "text", "content": item["text"]})
        elif kind == "thinking" and isinstance(item.get("thinking"), str):
            parts.append({"type": "reasoning", "content": item["thinking"]})
        elif kind == "image_url":
            url = item.get("image_url")
            url = url.get("url") if isinstance(url, dict) else url
            if isinstance(url, str) and url:
                parts.append(_url_part(url))
        elif kind == "document" and isinstance(item.get("document"), dict):
            data = item["document"].get("data")
            parts.append({"type": "text", "content": data if isinstance(data, str) else json.dumps(data)})
    return parts


def _assistant_parts(msg: dict) -> list[Part]:
    parts: list[Part] = []
    plan = msg.get("tool_plan")
    if isinstance(plan, str) and plan:
        parts.append({"type": "reasoning", "content": plan})
    parts += _parts(msg.get("content"))
    for call in _list(msg.get("tool_calls")):
        part = _tool_call(call)
        if part is not None:
            parts.append(part)
    return parts


def cohere_request_content(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    """(input messages, system instructions, tool definitions) of a chat request. System messages stay in the
    history, as for OpenAI chat."""
    messages: list[Message] = []
    for msg in _list(body.get("messages")):
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role == "assistant":
            parts = _assistant_parts(msg)
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            parts = [
                {
                    "type": "tool_call_response",
                    "id": call_id if isinstance(call_id, str) else None,
                    "response": msg.get("content"),
                }
            ]
        else:
            parts = _parts(msg.get("content"))
        if parts:
            messages.append({"role": role if isinstance(role, str) and role else "user", "parts": parts})
    tools: list[dict] = []
    for tool in _list(body.get("tools")):
        if not isinstance(tool, dict):
            continue
        fn = _dict(tool.get("function"))
        tools.append(
            {
                "type": "function",
                "name": fn.get("name") if isinstance(fn.get("name"), str) else "",
                "description": fn.get("description") if isinstance(fn.get("description"), str) else None,
                "parameters": fn.get("parameters"),
            }
        )
    return messages, [], tools


def cohere_response_messages(body: dict) -> list[Message]:
    msg = body.get("message")
    if not isinstance(msg, dict):
        return []
    return [{"role": "assistant", "parts": _assistant_parts(msg), "finish_reason": _finish(body.get("finish_reason"))}]


class CohereStream:
    """The output message of a chat stream, from its decoded events (text fragments joined at the end)."""

    __slots__ = ("content", "plan", "reason", "tools")

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.content: dict[int, tuple[str, list[str]]] = {}  # index -> (part type, fragments)
        self.tools: dict[int, tuple[Any, Any, list[str]]] = {}  # index -> (id, name, argument fragments)
        self.reason: Any = None

    def feed(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        index = event.get("index")
        index = index if isinstance(index, int) else 0
        message = _dict(_dict(event.get("delta")).get("message"))
        if kind == "content-start" or kind == "content-delta":
            item = _dict(message.get("content"))
            slot = self.content.get(index)
            if slot is None:
                part = "reasoning" if item.get("type") == "thinking" or "thinking" in item else "text"
                slot = self.content[index] = (part, [])
            piece = item.get("thinking") if slot[0] == "reasoning" else item.get("text")
            if isinstance(piece, str) and piece:
                slot[1].append(piece)
        elif kind == "tool-plan-delta":
            piece = message.get("tool_plan")
            if isinstance(piece, str):
                self.plan.append(piece)
        elif kind == "tool-call-start":
            call = _dict(message.get("tool_calls"))
            fn = _dict(call.get("function"))
            args = fn.get("arguments")
            self.tools[index] = (call.get("id"), fn.get("name"), [args] if isinstance(args, str) and args else [])
        elif kind == "tool-call-delta":
            piece = _dict(_dict(message.get("tool_calls")).get("function")).get("arguments")
            tool = self.tools.get(index)
            if tool is not None and isinstance(piece, str):
                tool[2].append(piece)
        elif kind == "message-end":
            self.reason = _dict(event.get("delta")).get("finish_reason")

    def messages(self) -> list[Message]:
        parts: list[Part] = []
        if self.plan:
            parts.append({"type": "reasoning", "content": "".join(self.plan)})
        for index in sorted(self.content):
            part, pieces = self.content[index]
            parts.append({"type": part, "content": "".join(pieces)})
        for index in sorted(self.tools):
            call_id, name, pieces = self.tools[index]
            call = {"id": call_id, "function": {"name": name, "arguments": "".join(pieces)}}
            tool = _tool_call(call)
            if tool is not None:
                parts.append(tool)
        if not parts and self.reason is None:
            return []
        return [{"role": "assistant", "parts": parts, "finish_reason": _finish(self.reason)}]
