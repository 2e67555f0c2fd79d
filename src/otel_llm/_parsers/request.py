"""Request bodies of every supported wire format -> model, stream flag and request attributes."""

from __future__ import annotations

from typing import Any

from .. import _names as n
from ._json import first_loads as _first_loads
from ._json import loads as _loads
from ._text import clean
from .cohere import cohere_request_attrs
from .ollama import ollama_request
from .routes import ANTHROPIC_MESSAGES, COHERE_APIS, GEMINI, OLLAMA_APIS, OPENAI_EMBEDDINGS, OPENAI_RESPONSES, Route

__all__ = ["RequestInfo", "parse_fetch", "parse_request", "parse_request_bytes"]


class RequestInfo:
    """What a request asked for. One per call (``parse_request`` makes it without the Python ``__init__`` and sets
    every slot)."""

    __slots__ = ("attributes", "include_usage", "model", "stream")

    model: str | None
    stream: bool
    include_usage: bool  # the caller asked for stream usage itself
    attributes: dict[str, Any]  # span attributes of the request's parameters

    def __init__(self, stream: bool = False, attributes: dict[str, Any] | None = None) -> None:
        self.attributes = {} if attributes is None else attributes
        self.stream = stream
        self.model = None
        self.include_usage = False

    def __repr__(self) -> str:
        return (
            f"RequestInfo(model={self.model!r}, stream={self.stream!r}, include_usage={self.include_usage!r}, "
            f"attributes={self.attributes!r})"
        )


# (body key, attribute, expected python type)
_OPENAI_PARAMS = (
    ("temperature", n.REQUEST_TEMPERATURE, float),
    ("top_p", n.REQUEST_TOP_P, float),
    ("frequency_penalty", n.REQUEST_FREQUENCY_PENALTY, float),
    ("presence_penalty", n.REQUEST_PRESENCE_PENALTY, float),
    ("max_tokens", n.REQUEST_MAX_TOKENS, int),
    ("max_completion_tokens", n.REQUEST_MAX_TOKENS, int),
    ("max_output_tokens", n.REQUEST_MAX_TOKENS, int),
    ("seed", n.REQUEST_SEED, int),
    ("top_k", n.REQUEST_TOP_K, float),
)
_GEMINI_PARAMS = (
    ("temperature", n.REQUEST_TEMPERATURE, float),
    ("topP", n.REQUEST_TOP_P, float),
    ("topK", n.REQUEST_TOP_K, float),
    ("maxOutputTokens", n.REQUEST_MAX_TOKENS, int),
    ("seed", n.REQUEST_SEED, int),
    ("frequencyPenalty", n.REQUEST_FREQUENCY_PENALTY, float),
    ("presencePenalty", n.REQUEST_PRESENCE_PENALTY, float),
)


_new = object.__new__


def _num(value: Any, kind: type) -> float | int | None:
    # bool is an int subclass: never a temperature
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)


_OPENAI_KEYS = frozenset(k for k, _, _ in _OPENAI_PARAMS)
# the optional keys looked at below for chat, completions and Responses requests
_CHAT_KEYS = frozenset({"stop", "n", "service_tier", "response_format", "conversation", "stream_options", "text"})
_BY_KEY = {k: (attr, kind) for k, attr, kind in _OPENAI_PARAMS + _GEMINI_PARAMS}
_GEMINI_KEYS = frozenset(k for k, _, _ in _GEMINI_PARAMS)


def _params(attrs: dict[str, Any], src: dict, table: tuple, keys: frozenset[str]) -> None:
    hits = keys.intersection(src)  # most requests set one or two of these, many none
    if not hits:
        return
    if len(hits) == 1:
        for key in hits:
            attr, kind = _BY_KEY[key]
            v = src[key]
            t = type(v)
            if t is int or t is float:  # _num's common case, without the call
                attrs[attr] = kind(v)
            else:
                v = _num(v, kind)
                if v is not None:
                    attrs[attr] = v
        return
    for key, attr, kind in table:  # in table order: of max_tokens / max_completion_tokens, the last one wins
        if key in src:
            v = _num(src[key], kind)
            if v is not None:
                attrs[attr] = v


def _has_compaction(items: list) -> bool:
    """A Responses item list carries a ``compaction`` item (the conversation was compacted)."""
    return any(type(item) is dict and item.get("type") == "compaction" for item in items)


def _output_type(attrs: dict[str, Any], fmt: Any) -> None:
    """``gen_ai.output.type`` of a chat ``response_format`` or a Responses ``text.format`` (a JSON schema,
    as ``parse`` sends, or a JSON object is ``json``; another named format is given as named)."""
    kind = fmt.get("type") if isinstance(fmt, dict) else fmt
    if isinstance(kind, str) and kind:
        attrs[n.OUTPUT_TYPE] = "json" if kind in ("json_object", "json_schema") else clean(kind)


def parse_request(route: Route, body: Any, path_model: str | None = None) -> RequestInfo:
    """Parse a decoded JSON request body. Anything unexpected leaves fields unset; never raises."""
    info = _new(RequestInfo)  # RequestInfo() without its __init__ (a Python __init__ is a re-entry from C)
    info.attributes = {}
    info.model = None
    info.stream = info.include_usage = False
    if not isinstance(body, dict):
        info.model = path_model
        info.stream = route.stream
        return info
    attrs = info.attributes
    api = route.api
    if api in OLLAMA_APIS:
        ollama_request(api, body, info)
        return info
    if api == GEMINI:
        info.model = path_model
        info.stream = route.stream
        cfg = body.get("generationConfig")
        if isinstance(cfg, dict):
            _params(attrs, cfg, _GEMINI_PARAMS, _GEMINI_KEYS)
            stops = cfg.get("stopSequences")
            if isinstance(stops, list) and stops:
                attrs[n.REQUEST_STOP_SEQUENCES] = [clean(str(s)) for s in stops]
            count = cfg.get("candidateCount")
            if isinstance(count, int) and not isinstance(count, bool) and count != 1:
                attrs[n.REQUEST_CHOICE_COUNT] = count
        return info

    model = body.get("model")
    if isinstance(model, str):
        info.model = model if model.isascii() else clean(model)
    info.stream = body.get("stream") is True
    if api in COHERE_APIS:
        cohere_request_attrs(attrs, body, api)
        return info
    _params(attrs, body, _OPENAI_PARAMS, _OPENAI_KEYS)
    if api == OPENAI_EMBEDDINGS:
        fmt = body.get("encoding_format")
        attrs[n.REQUEST_ENCODING_FORMATS] = [clean(fmt) if isinstance(fmt, str) else "float"]
        return info
    if api == ANTHROPIC_MESSAGES:
        stops = body.get("stop_sequences")
        if isinstance(stops, list) and stops:
            attrs[n.REQUEST_STOP_SEQUENCES] = [clean(str(s)) for s in stops]
        return info
    if api == OPENAI_RESPONSES:
        inp = body.get("input")
        if type(inp) is list and _has_compaction(inp):
            attrs[n.CONVERSATION_COMPACTED] = True
    if _CHAT_KEYS.isdisjoint(body):  # the common request: model, messages and a parameter or two
        return info
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs[n.REQUEST_STOP_SEQUENCES] = [clean(stop)]
    elif isinstance(stop, list) and stop:
        attrs[n.REQUEST_STOP_SEQUENCES] = [clean(str(s)) for s in stop]
    count = body.get("n")
    if isinstance(count, int) and not isinstance(count, bool) and count != 1:
        attrs[n.REQUEST_CHOICE_COUNT] = count
    tier = body.get("service_tier")
    if isinstance(tier, str) and tier != "auto":
        attrs[n.OPENAI_REQUEST_SERVICE_TIER] = clean(tier)
    fmt = body.get("response_format")
    if fmt is not None:
        _output_type(attrs, fmt)
    if api == OPENAI_RESPONSES:
        text = body.get("text")
        if isinstance(text, dict) and text.get("format") is not None:
            _output_type(attrs, text["format"])
        conv = body.get("conversation")
        if isinstance(conv, str):
            attrs[n.CONVERSATION_ID] = clean(conv)
        elif isinstance(conv, dict) and isinstance(conv.get("id"), str):
            attrs[n.CONVERSATION_ID] = clean(conv["id"])
        return info
    opts = body.get("stream_options")
    if isinstance(opts, dict) and opts.get("include_usage") is True:
        info.include_usage = True
    return info


def parse_request_bytes(route: Route, raw: bytes | None, path_model: str | None = None) -> RequestInfo:
    """Parse a raw request body; a body that is not JSON gives an info with only what the path says."""
    body: Any = None
    if raw:
        try:
            body = _first_loads(raw)
        except ValueError:  # orjson refuses what json.loads may take (see _json): the full loads decides
            try:
                body = _loads(raw)
            except (ValueError, TypeError):
                body = None
        except TypeError:
            body = None
    return parse_request(route, body, path_model)


def parse_fetch(response_id: str, params: Any, stream: bool) -> RequestInfo:
    """A ``responses.retrieve`` call: no model asked for; the fetched response's id is known from the start,
    and a streamed fetch may resume after a given event (``starting_after``)."""
    attrs: dict[str, Any] = {n.RESPONSE_ID: clean(response_id)}
    if isinstance(params, dict):
        cursor = params.get("starting_after")
        if isinstance(cursor, (int, str)) and not isinstance(cursor, bool):
            attrs[n.REQUEST_STREAM_CURSOR] = clean(str(cursor))
    return RequestInfo(stream=stream, attributes=attrs)
