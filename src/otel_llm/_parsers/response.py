"""Response bodies (JSON) of every supported wire format -> model, id, finish reasons, usage, relay cost.

Works on decoded JSON (dicts and lists). Every field is optional: a body of the wrong shape leaves
the info partial, never raises. Token counts must be whole JSON numbers from 0 to ``MAX_TOKENS``: any
other value where a count belongs (a string, a boolean, a fraction, a negative or absurd number) makes
the call's usage invalid (``Usage.invalid``), never guessed. Every string taken from a body goes through
``clean`` (a lone surrogate from a JSON escape becomes U+FFFD) before it can reach an attribute.
"""

from __future__ import annotations

from typing import Any

from ._json import first_loads as _first_loads
from ._json import loads as _loads
from ._text import clean
from .cohere import apply_cohere_body
from .messages import StreamContent, request_content, response_messages
from .ollama import apply_ollama
from .routes import (
    ANTHROPIC_MESSAGES,
    COHERE_APIS,
    FETCH_RESPONSE,
    GEMINI,
    OLLAMA_APIS,
    OPENAI_CHAT,
    OPENAI_COMPLETIONS,
    OPENAI_EMBEDDINGS,
    OPENAI_RESPONSES,
    Route,
)
from .usage import MAX_TOKENS, Usage, invalid_usage, new_usage

__all__ = [
    "ResponseInfo",
    "apply_body",
    "apply_openai_later_chunk",
    "apply_openai_object",
    "capture_output",
    "new_response_info",
    "parse_body_bytes",
    "usage_from",
]


class ResponseInfo:
    """What a response said, filled in by the non-stream parser or incrementally by the stream parser.
    Compares by its fields. One per call: slots, read and written by the interpreter's specialised slot access
    (defaults left on the class would be read through the generic lookup on every call); the per-call maker is
    ``new_response_info``, without the keyword ``__init__``."""

    __slots__ = (
        "billed",
        "compacted",
        "embedding_dimensions",
        "error_code",
        "fetched",
        "finish_reasons",
        "id",
        "model",
        "output",
        "provider_attrs",
        "relay_cost",
        "service_tier",
        "status",
        "system_fingerprint",
        "usage",
    )

    model: str | None
    id: str | None
    finish_reasons: list[str]
    usage: Usage | None
    relay_cost: float | None
    error_code: str | None  # provider error code from the body, e.g. "insufficient_quota"
    system_fingerprint: str | None
    service_tier: str | None
    embedding_dimensions: int | None
    status: str | None  # a Responses answer's status
    compacted: bool  # a Responses answer carries a compaction item
    fetched: tuple[list, list] | None  # content capture, fetch_response: (instructions, tool definitions)
    # content capture only: the output messages of a whole body (a list), or a stream's StreamContent
    output: Any
    billed: Usage | None  # the tokens the provider bills, when they differ from those used (Cohere's billed_units)
    # span attributes only one provider's answers carry (Cohere's billed units, Ollama's server timings)
    provider_attrs: dict[str, Any] | None

    def __init__(self, **fields: Any) -> None:
        _defaults(self)
        for name, value in fields.items():
            if name not in _INFO_FIELDS:
                raise TypeError(f"ResponseInfo has no field {name!r}")
            setattr(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResponseInfo):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in _INFO_FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "ResponseInfo(" + ", ".join(f"{f}={getattr(self, f)!r}" for f in _INFO_FIELDS) + ")"


def _defaults(info: ResponseInfo) -> ResponseInfo:
    info.model = info.id = info.usage = info.relay_cost = info.error_code = info.system_fingerprint = None
    info.service_tier = info.embedding_dimensions = info.status = info.fetched = info.output = None
    info.billed = info.provider_attrs = None
    info.compacted = False
    info.finish_reasons = []
    return info


def new_response_info() -> ResponseInfo:
    """``ResponseInfo()`` without its Python ``__init__`` (a re-entry from C on Python 3.11): one per call
    (``_defaults``' work in this frame)."""
    info = _new(ResponseInfo)
    info.model = info.id = info.usage = info.relay_cost = info.error_code = info.system_fingerprint = None
    info.service_tier = info.embedding_dimensions = info.status = info.fetched = info.output = None
    info.billed = info.provider_attrs = None
    info.compacted = False
    info.finish_reasons = []
    return info


_new = object.__new__
_INFO_FIELDS = tuple(ResponseInfo.__annotations__)


class _BadCount(Exception):
    """A token count outside any real range: the usage it belongs to is invalid (caught by the usage readers)."""


def _int(v: Any) -> int | None:
    """A token count: ``None`` when absent (null); raises ``_BadCount`` for anything but a whole number from 0 to
    ``MAX_TOKENS`` (a string, a boolean, a fraction, a negative or absurd number)."""
    if v is None:
        return None
    if type(v) is int:  # the common case first (bool is not int here)
        if 0 <= v <= MAX_TOKENS:
            return v
        raise _BadCount
    if isinstance(v, bool):
        raise _BadCount
    if isinstance(v, int):
        if 0 <= v <= MAX_TOKENS:
            return int(v)
        raise _BadCount
    if isinstance(v, float) and v.is_integer() and 0 <= v <= MAX_TOKENS:
        return int(v)
    raise _BadCount


def _usage(i: Any, o: Any, cr: Any = None, cw: Any = None, rs: Any = None, ai: Any = None, ao: Any = None) -> Usage:
    """``new_usage`` over token counts: each count as it is when ``None`` or a whole ``int`` from 0 to
    ``MAX_TOKENS``, else each through ``_int`` (raises ``_BadCount``; converts ``12.0``). A bool's type is not
    ``int``: it goes through ``_int`` and is refused. (``set(map(type, ...))`` and ``min``/``max`` over ``filter``
    cost three times as many instructions as a loop, counted. A test holds it to ``new_usage``.)"""
    m = MAX_TOKENS
    if (  # (unrolled: ~1,000 instructions a call fewer than a loop over the seven, counted)
        (i is None or (type(i) is int and 0 <= i <= m))
        and (o is None or (type(o) is int and 0 <= o <= m))
        and (cr is None or (type(cr) is int and 0 <= cr <= m))
        and (cw is None or (type(cw) is int and 0 <= cw <= m))
        and (rs is None or (type(rs) is int and 0 <= rs <= m))
        and (ai is None or (type(ai) is int and 0 <= ai <= m))
        and (ao is None or (type(ao) is int and 0 <= ao <= m))
    ):
        return new_usage(i, o, cr, cw, rs, ai, ao)
    return new_usage(_int(i), _int(o), _int(cr), _int(cw), _int(rs), _int(ai), _int(ao))


def _text(v: Any) -> str | None:
    """A non-empty string from the wire, cleaned; ``None`` for anything else."""
    if type(v) is str:
        if v.isascii():
            return v or None
        return clean(v)
    return clean(v) or None if isinstance(v, str) else None


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


_EMPTY: dict = {}


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


_str = _text


def _cost(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        return None
    return float(v)


def usage_from(api: str, u: Any) -> Usage | None:
    """Normalise one provider usage object (input includes cache and audio tokens; output includes reasoning
    and audio); an invalid usage (see ``_int``) if a count is outside any real range."""
    if not isinstance(u, dict):
        return None
    try:
        return _usage_from(api, u)
    except _BadCount:
        return invalid_usage()


def _usage_from(api: str, u: dict) -> Usage:
    if api == ANTHROPIC_MESSAGES:
        base = _int(u.get("input_tokens"))
        read = _int(u.get("cache_read_input_tokens"))
        write = _int(u.get("cache_creation_input_tokens"))
        total = None if base is None else base + (read or 0) + (write or 0)
        return new_usage(total, _int(u.get("output_tokens")), read, write, None)
    if api == GEMINI:
        out = _int(u.get("candidatesTokenCount"))
        thoughts = _int(u.get("thoughtsTokenCount"))
        if out is not None and thoughts is not None:
            out += thoughts
        elif out is None:
            out = thoughts
        return new_usage(_int(u.get("promptTokenCount")), out, _int(u.get("cachedContentTokenCount")), None, thoughts)
    if api == OPENAI_RESPONSES:
        din = _dict(u.get("input_tokens_details"))
        dout = _dict(u.get("output_tokens_details"))
        return _usage(
            u.get("input_tokens"),
            u.get("output_tokens"),
            din.get("cached_tokens"),
            din.get("cache_write_tokens"),
            dout.get("reasoning_tokens"),
            din.get("audio_tokens"),
            dout.get("audio_tokens"),
        )
    return _chat_usage(u, _dict(u.get("prompt_tokens_details")), _dict(u.get("completion_tokens_details")))


def _chat_usage(u: dict, din: dict, dout: dict) -> Usage:
    """Chat and completions usage (the body's, or the SDK's ``CompletionUsage`` fields) with its details' fields.
    Raises ``_BadCount``."""
    cached = din.get("cached_tokens")
    if cached is None:
        cached = u.get("prompt_cache_hit_tokens")  # DeepSeek
    return _usage(
        u.get("prompt_tokens"),
        u.get("completion_tokens"),  # (embeddings: none)
        cached,
        din.get("cache_write_tokens"),
        dout.get("reasoning_tokens"),
        din.get("audio_tokens"),
        dout.get("audio_tokens"),
    )


def _take_usage(info: ResponseInfo, usage: Usage | None, relay_cost: Any) -> None:
    """An answer's usage (merged into what earlier events of the same answer gave) and the cost a relay
    reported beside it (OpenRouter's ``usage.cost``)."""
    _merge_usage(info, usage)
    if relay_cost is not None:
        cost = _cost(relay_cost)
        if cost is not None:
            info.relay_cost = cost


def _merge_usage(info: ResponseInfo, usage: Usage | None) -> None:
    if usage is None:
        return
    if info.usage is None:
        info.usage = usage
        return
    cur = info.usage  # streams report usage in pieces (Anthropic: input at start, output at the end)
    if cur.invalid:
        return
    if usage.invalid:
        info.usage = usage
        return
    for name in _USAGE_COUNTS:
        v = getattr(usage, name)
        if v is not None:
            setattr(cur, name, v)


_USAGE_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
)


def _set_error(info: ResponseInfo, body: dict) -> None:
    err = body.get("error")
    if isinstance(err, dict):
        code = err.get("code")
        if not isinstance(code, str):
            code = err.get("type") if isinstance(err.get("type"), str) else err.get("status")
        if isinstance(code, str) and code:
            info.error_code = clean(code)


def apply_openai_choices(info: ResponseInfo, choices: Any) -> None:
    if not isinstance(choices, list):
        return
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            info.finish_reasons.append(reason if reason.isascii() else clean(reason))


_INCOMPLETE_REASONS = {"max_output_tokens": "length"}  # the chat spelling, as the official instrumentation maps it
_TOOL_CALL_ITEMS = frozenset({"function_call", "custom_tool_call", "computer_call"})


def _responses_reasons(output: Any) -> list[str]:
    """Finish reasons of a completed Responses answer, one per kind of ending: ``tool_calls`` for a finished
    client-side tool call, ``stop`` for a completed message; ``stop`` when the output has neither."""
    reasons: list[str] = []
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict):
            kind = item.get("type")
            status = item.get("status")
        else:  # an output item of the SDK's parsed Response
            kind = getattr(item, "type", None)
            status = getattr(item, "status", None)
        if kind in _TOOL_CALL_ITEMS:
            reason = "tool_calls" if status is None or status in ("completed", "incomplete") else None
        elif kind == "message":
            reason = "stop" if status == "completed" else None
        else:
            continue
        if reason is not None and reason not in reasons:
            reasons.append(reason)
    return reasons or ["stop"]


def capture_output(api: str, body: Any, info: ResponseInfo, fetch: bool = False) -> None:
    """Content capture: the output messages of a whole decoded body (a Gemini JSON array is a stream)."""
    if isinstance(body, list):
        stream = StreamContent(api)
        for item in body:
            stream.feed(item)
        info.output = stream
    else:
        info.output = response_messages(api, body)
        if fetch and isinstance(body, dict):  # the instructions and tools the fetched response was made with
            given = {"instructions": body.get("instructions"), "tools": body.get("tools")}
            _, system, tools = request_content(api, given)
            info.fetched = (system, tools)


def apply_body(route: Route, body: Any, info: ResponseInfo) -> None:
    """Fill ``info`` from one decoded non-stream response body (or one decoded stream event object)."""
    if isinstance(body, list):  # Gemini without alt=sse streams a JSON array of chunks
        for item in body:
            apply_body(route, item, info)
        return
    if not isinstance(body, dict):
        return
    api = route.api
    if api in (OPENAI_CHAT, OPENAI_COMPLETIONS):  # the most common answers (and chat stream events), first
        _apply_chat_body(body, info)
        return
    if api in COHERE_APIS:
        apply_cohere_body(info, body, api)
        return
    if body.get("error"):
        _set_error(info, body)
    if api in OLLAMA_APIS:
        apply_ollama(api, body, info)
        return
    if api == GEMINI:
        info.model = _str(body.get("modelVersion")) or info.model
        info.id = _str(body.get("responseId")) or info.id
        cands = body.get("candidates")
        for cand in cands if isinstance(cands, list) else ():
            if not isinstance(cand, dict):
                continue
            reason = cand.get("finishReason")
            if isinstance(reason, str):
                info.finish_reasons.append(clean(reason))
        usage = usage_from(api, body.get("usageMetadata"))
        if usage is not None:
            info.usage = usage  # cumulative in every chunk: the last one wins
        return
    model = body.get("model")
    if type(model) is str and model and model.isascii():
        info.model = model
    elif model is not None:
        info.model = _str(model) or info.model
    rid = body.get("id")
    if type(rid) is str and rid and rid.isascii():
        info.id = rid
    elif rid is not None:
        info.id = _str(rid) or info.id
    if api == ANTHROPIC_MESSAGES:
        reason = body.get("stop_reason")
        if isinstance(reason, str):
            info.finish_reasons.append(clean(reason))
        _merge_usage(info, usage_from(api, body.get("usage")))
        return
    if api == OPENAI_RESPONSES:
        status = body.get("status")
        if isinstance(status, str):
            info.status = clean(status)
        output = body.get("output")
        if type(output) is list and not info.compacted:
            info.compacted = any(type(item) is dict and item.get("type") == "compaction" for item in output)
        if status == "completed":
            info.finish_reasons.extend(_responses_reasons(output))
        elif status == "incomplete":
            reason = _dict(body.get("incomplete_details")).get("reason")
            reason = clean(reason) if isinstance(reason, str) else "incomplete"
            info.finish_reasons.append(_INCOMPLETE_REASONS.get(reason, reason))
        elif status in ("failed", "cancelled"):
            info.finish_reasons.append("error")
            err = body.get("error")
            if isinstance(err, dict) and isinstance(err.get("code"), str):
                info.error_code = clean(err["code"])
        tier = body.get("service_tier")
        if isinstance(tier, str):
            info.service_tier = clean(tier)
        _merge_usage(info, usage_from(api, body.get("usage")))
        return
    if api == OPENAI_EMBEDDINGS:
        data = body.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            emb = data[0].get("embedding")
            if isinstance(emb, list):
                info.embedding_dimensions = len(emb)
            elif isinstance(emb, str):  # base64 float32
                info.embedding_dimensions = (len(emb) * 3 // 4 - emb.count("=", -2)) // 4
    usage_obj = body.get("usage")
    if isinstance(usage_obj, dict):
        _take_usage(info, usage_from(api, usage_obj), usage_obj.get("cost"))


def _apply_chat_body(body: dict, info: ResponseInfo) -> None:
    """``apply_body`` for a chat or text completion, or one chunk of their streams, with the helpers' common cases
    in this frame (a test holds it to a reading made of those helpers)."""
    get = body.get
    if get("error"):
        _set_error(info, body)
    model = get("model")
    if type(model) is str and model and model.isascii():
        info.model = model
    elif model is not None:
        info.model = _str(model) or info.model
    rid = get("id")
    if type(rid) is str and rid and rid.isascii():
        info.id = rid
    elif rid is not None:
        info.id = _str(rid) or info.id
    choices = get("choices")
    if type(choices) is list:
        reasons = info.finish_reasons
        for choice in choices:
            if type(choice) is dict or isinstance(choice, dict):
                reason = choice.get("finish_reason")
                if type(reason) is str and reason.isascii():
                    reasons.append(reason)
                elif isinstance(reason, str):
                    reasons.append(clean(reason))
    elif isinstance(choices, list):
        apply_openai_choices(info, choices)
    fp = get("system_fingerprint")
    if type(fp) is str and fp.isascii():
        info.system_fingerprint = fp
    elif isinstance(fp, str):
        info.system_fingerprint = clean(fp)
    tier = get("service_tier")
    if type(tier) is str and tier.isascii():
        info.service_tier = tier
    elif isinstance(tier, str):
        info.service_tier = clean(tier)
    u = get("usage")
    if type(u) is not dict:
        if isinstance(u, dict):
            _take_usage(info, usage_from(OPENAI_CHAT, u), u.get("cost"))
        return
    din = u.get("prompt_tokens_details")  # (_dict's work, in this frame)
    if type(din) is not dict and not isinstance(din, dict):
        din = _EMPTY
    dout = u.get("completion_tokens_details")
    if type(dout) is not dict and not isinstance(dout, dict):
        dout = _EMPTY
    try:
        usage = _chat_usage(u, din, dout)
    except _BadCount:
        usage = invalid_usage()
    cost = u.get("cost")
    if cost is None and info.usage is None:  # (_take_usage's work without its two calls)
        info.usage = usage
    else:
        _take_usage(info, usage, cost)


def _fields(obj: Any) -> dict | None:
    """A pydantic model's fields and extra fields: the JSON object it was built from, one level deep."""
    if isinstance(obj, dict):
        return obj
    d = getattr(obj, "__dict__", None)
    if not isinstance(d, dict):
        return None
    extra = getattr(obj, "__pydantic_extra__", None)
    return {**d, **extra} if extra else d


def _sub(fields: dict, key: str) -> Any:
    v = fields.get(key)
    if v is None or isinstance(v, dict):
        return v
    return _fields(v)


def apply_openai_object(route: Route, obj: Any, info: ResponseInfo) -> None:
    """Fill ``info`` from the openai SDK's own parsed result of a chat, completions, embeddings or
    Responses call (or one chunk of a chat or completions stream): what ``apply_body`` reads from the
    JSON body, read from the pydantic model the SDK built from that body (its fields, and extra fields
    such as a relay's ``usage.cost``), so the body is not decoded a second time. Same result as
    ``apply_body`` on the body (a test holds the two together). Content capture and every other API
    take the body path."""
    body = _fields(obj)
    if body is None:
        return
    if body is obj:  # a plain dict
        apply_body(route, obj, info)
        return
    get = body.get
    model = get("model")
    if isinstance(model, str) and model:
        info.model = model if model.isascii() else clean(model)
    rid = get("id")
    if isinstance(rid, str) and rid:
        info.id = rid if rid.isascii() else clean(rid)
    if get("error"):
        _set_error(info, {"error": _sub(body, "error")})
    api = route.api
    if api == OPENAI_RESPONSES:
        _apply_responses_object(body, info)
        return
    if api == OPENAI_EMBEDDINGS:
        data = get("data")
        if isinstance(data, list) and data:
            emb = getattr(data[0], "embedding", None)
            if isinstance(emb, list):
                info.embedding_dimensions = len(emb)
            elif isinstance(emb, str):  # base64 float32, when the caller asked for it
                info.embedding_dimensions = (len(emb) * 3 // 4 - emb.count("=", -2)) // 4
    else:
        choices = get("choices")
        if isinstance(choices, list):
            reasons = info.finish_reasons
            for choice in choices:
                reason = getattr(choice, "finish_reason", None)
                if isinstance(reason, str):
                    reasons.append(reason if reason.isascii() else clean(reason))
        fp = get("system_fingerprint")
        if type(fp) is str:
            info.system_fingerprint = fp if fp.isascii() else clean(fp)
        elif isinstance(fp, str):
            info.system_fingerprint = clean(fp)
        tier = get("service_tier")
        if type(tier) is str:
            info.service_tier = tier if tier.isascii() else clean(tier)
        elif isinstance(tier, str):
            info.service_tier = clean(tier)
    u = get("usage")
    if u is None:
        return
    if type(u) is not dict:  # its fields and extra fields (a relay's cost, DeepSeek's cache hits) as one dict
        u = _fields(u)
        if u is None:
            return
    try:
        usage = _object_usage(u)
    except _BadCount:
        usage = invalid_usage()
    cost = u.get("cost")
    if cost is None and info.usage is None:  # the common answer: _take_usage's work without its two calls
        info.usage = usage
    else:
        _take_usage(info, usage, cost)


def apply_openai_later_chunk(route: Route, obj: Any, info: ResponseInfo) -> None:
    """``apply_openai_object`` for a chunk of an SDK stream after the first one: when its model, id, fingerprint
    and service tier are those already read and it has no usage or error (a finish chunk, most often), only its
    finish reasons are new, and only they are read; any other chunk goes through ``apply_openai_object``. (The
    same result either way: those fields would be set to what they are.)"""
    d = getattr(obj, "__dict__", None)
    if (
        type(d) is dict
        and d.get("usage") is None
        and not d.get("error")
        and d.get("model") == info.model
        and d.get("id") == info.id
        and d.get("system_fingerprint") == info.system_fingerprint
        and d.get("service_tier") == info.service_tier
        and not getattr(obj, "__pydantic_extra__", None)
    ):
        choices = d.get("choices")
        if type(choices) is list:
            reasons = info.finish_reasons
            for choice in choices:
                reason = getattr(choice, "finish_reason", None)
                if type(reason) is str and reason.isascii():
                    reasons.append(reason)
                elif isinstance(reason, str):
                    reasons.append(clean(reason))
            return
    apply_openai_object(route, obj, info)


def _object_usage(u: dict) -> Usage:
    """``usage_from``'s chat and completions branch, over the fields of the SDK's ``CompletionUsage`` (its details
    are models: their fields and extra fields, such as ``cache_write_tokens``, read as one dict). Raises
    ``_BadCount``."""
    din = u.get("prompt_tokens_details")
    din = _EMPTY if din is None else _model_fields(din)
    dout = u.get("completion_tokens_details")
    dout = _EMPTY if dout is None else _model_fields(dout)
    return _chat_usage(u, din, dout)


def _model_fields(obj: Any) -> dict:
    """``_fields(obj) or _EMPTY`` for a usage's details: a pydantic model's own dict when it has no extra fields
    (the common case, read in this frame), else through ``_fields``."""
    d = getattr(obj, "__dict__", None)
    if type(d) is dict and not getattr(obj, "__pydantic_extra__", None):
        return d
    return _fields(obj) or _EMPTY


def _apply_responses_object(body: dict, info: ResponseInfo) -> None:
    """``apply_body``'s Responses branch (without content), read from the SDK's ``Response`` object."""
    get = body.get
    status = get("status")
    if type(status) is str and status.isascii():
        info.status = status
    elif isinstance(status, str):
        info.status = clean(status)
    output = get("output")
    if type(output) is list and not info.compacted:
        for item in output:  # (a loop: a generator in any() resumes once an item)
            if getattr(item, "type", None) == "compaction":
                info.compacted = True
                break
    if status == "completed":
        info.finish_reasons.extend(_responses_reasons(output))
    elif status == "incomplete":
        details = _sub(body, "incomplete_details")
        reason = details.get("reason") if details is not None else None
        reason = clean(reason) if isinstance(reason, str) else "incomplete"
        info.finish_reasons.append(_INCOMPLETE_REASONS.get(reason, reason))
    elif status in ("failed", "cancelled"):
        info.finish_reasons.append("error")
        err = _sub(body, "error")
        if err is not None and isinstance(err.get("code"), str):
            info.error_code = clean(err["code"])
    tier = get("service_tier")
    if type(tier) is str and tier.isascii():
        info.service_tier = tier
    elif isinstance(tier, str):
        info.service_tier = clean(tier)
    u = get("usage")
    if u is None:
        return
    if type(u) is not dict:  # (_sub's work, in this frame)
        u = _fields(u)
        if u is None:
            return
    get = u.get
    try:
        din = get("input_tokens_details")
        din = _EMPTY if din is None else _model_fields(din)
        dout = get("output_tokens_details")
        dout = _EMPTY if dout is None else _model_fields(dout)
        usage = _usage(
            get("input_tokens"),
            get("output_tokens"),
            din.get("cached_tokens"),
            din.get("cache_write_tokens"),
            dout.get("reasoning_tokens"),
            din.get("audio_tokens"),
            dout.get("audio_tokens"),
        )
    except _BadCount:
        usage = invalid_usage()
    if info.usage is None:
        info.usage = usage
    else:
        _merge_usage(info, usage)


def parse_body_bytes(route: Route, raw: bytes, info: ResponseInfo, capture: bool = False) -> bool:
    """Parse a whole JSON body. Returns False when it is not JSON (the caller may try SSE)."""
    try:
        body = _first_loads(raw)
    except ValueError:  # orjson refuses what json.loads may take (see _json): the full loads decides
        try:
            body = _loads(raw)
        except (ValueError, TypeError):
            return False
    except TypeError:
        return False
    if capture:
        capture_output(route.api, body, info, route.operation == FETCH_RESPONSE)
    apply_body(route, body, info)
    return True
