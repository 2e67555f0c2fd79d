"""AWS Bedrock runtime (botocore's ``bedrock-runtime``): requests, answers and stream events -> call records.

Two wire formats: Converse (``Converse`` / ``ConverseStream``: one request shape for every model, answers with
``output.message``, ``stopReason`` and ``usage``) and InvokeModel (``InvokeModel`` /
``InvokeModelWithResponseStream``: the model family's own body). The InvokeModel families read here:

* Anthropic: a Messages body (``usage.input_tokens`` / ``output_tokens`` and cache counts); its stream chunks
  are the Messages stream events;
* Amazon Nova: ``output.message`` / ``stopReason`` / ``usage.inputTokens``; stream chunks ``messageStart``,
  ``contentBlockDelta``, ``messageStop``, ``metadata``;
* Meta Llama: ``generation``, ``prompt_token_count``, ``generation_token_count``, ``stop_reason``;
* Mistral: ``outputs[].text`` / ``stop_reason`` (or a chat ``choices`` body), no usage in the body.

The family is told by the body's shape, not the model id (an application inference profile's ARN names no
model). Every InvokeModel answer also carries its token counts in the ``X-Amzn-Bedrock-Input-Token-Count`` /
``-Output-Token-Count`` headers, and a stream's last chunk in ``amazon-bedrock-invocationMetrics``: those fill
in what the body does not say. Input counts include cache reads and writes (the project's ``Usage``).

Events arrive decoded by botocore (a Converse stream event is a dict such as ``{"contentBlockDelta": {...}}``, an
InvokeModel stream event ``{"chunk": {"bytes": b"..."}}``): nothing here reads the binary framing.
"""

from __future__ import annotations

import base64
from typing import Any

from .. import _names as n
from ._json import loads as _loads
from ._text import clean, clean_deep
from .messages import (
    _ANTHROPIC_FINISH,
    _IMAGE,
    Message,
    Part,
    StreamContent,
    _anthropic_request,
    _anthropic_response,
    _arguments,
    _blob,
    _chat_request,
    _chat_response,
    _function_definition,
    _message,
    _modality_of,
    _output,
    _reasoning,
    _text,
    _tool_call,
    _tool_response,
)
from .request import RequestInfo
from .response import ResponseInfo, _BadCount, _int, _merge_usage
from .routes import ANTHROPIC_MESSAGES, CHAT, TEXT_COMPLETION, Route
from .usage import invalid_usage, new_usage

__all__ = [
    "BEDROCK_APIS",
    "BEDROCK_CONVERSE",
    "BEDROCK_INVOKE",
    "CONVERSE",
    "INVOKE_CHAT",
    "INVOKE_TEXT",
    "ConverseStreamState",
    "InvokeStreamState",
    "apply_converse",
    "apply_invoke_body",
    "fill_usage",
    "converse_request",
    "invoke_request",
    "usage_from_headers",
]

BEDROCK_CONVERSE = "aws.bedrock.converse"
BEDROCK_INVOKE = "aws.bedrock.invoke"
BEDROCK_APIS = frozenset((BEDROCK_CONVERSE, BEDROCK_INVOKE))

CONVERSE = Route(CHAT, BEDROCK_CONVERSE)
INVOKE_CHAT = Route(CHAT, BEDROCK_INVOKE)
INVOKE_TEXT = Route(TEXT_COMPLETION, BEDROCK_INVOKE)  # a bare ``prompt`` body (Meta, Mistral)

_METRICS = "amazon-bedrock-invocationMetrics"
_METRICS_KEY = _METRICS.encode()
_MAX_STOPS = 16


# --------------------------------------------------------------------------------------------------
# requests


def _num(attrs: dict[str, Any], src: dict, key: str, attr: str, kind: type) -> None:
    v = src.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        attrs[attr] = kind(v)


def _stops(attrs: dict[str, Any], value: Any) -> None:
    if isinstance(value, str) and value:
        attrs[n.REQUEST_STOP_SEQUENCES] = [clean(value)]
    elif isinstance(value, list) and value:
        attrs[n.REQUEST_STOP_SEQUENCES] = [clean(str(s)) for s in value[:_MAX_STOPS]]


def _new_request(model: str | None, stream: bool) -> RequestInfo:
    info = RequestInfo(stream)
    info.model = model
    return info


def converse_request(model: str | None, body: Any, stream: bool) -> RequestInfo:
    """A Converse request (its decoded JSON body): ``inferenceConfig``'s parameters, ``top_k`` given through
    ``additionalModelRequestFields``."""
    info = _new_request(model, stream)
    if not isinstance(body, dict):
        return info
    attrs = info.attributes
    cfg = body.get("inferenceConfig")
    if isinstance(cfg, dict):
        _num(attrs, cfg, "maxTokens", n.REQUEST_MAX_TOKENS, int)
        _num(attrs, cfg, "temperature", n.REQUEST_TEMPERATURE, float)
        _num(attrs, cfg, "topP", n.REQUEST_TOP_P, float)
        _stops(attrs, cfg.get("stopSequences"))
    extra = body.get("additionalModelRequestFields")
    if isinstance(extra, dict):
        _num(attrs, extra, "top_k", n.REQUEST_TOP_K, float)
    return info


def invoke_request(model: str | None, body: Any, stream: bool) -> tuple[Route, RequestInfo]:
    """An InvokeModel request (its decoded JSON body, None when it is not JSON): the route (a bare ``prompt`` is a
    text completion) and the family's parameters."""
    info = _new_request(model, stream)
    if not isinstance(body, dict):
        return INVOKE_CHAT, info
    attrs = info.attributes
    route = INVOKE_TEXT if isinstance(body.get("prompt"), str) and "messages" not in body else INVOKE_CHAT
    cfg = body.get("inferenceConfig")
    if isinstance(cfg, dict):  # Amazon Nova
        _num(attrs, cfg, "max_new_tokens", n.REQUEST_MAX_TOKENS, int)
        _num(attrs, cfg, "maxTokens", n.REQUEST_MAX_TOKENS, int)
        _num(attrs, cfg, "temperature", n.REQUEST_TEMPERATURE, float)
        _num(attrs, cfg, "topP", n.REQUEST_TOP_P, float)
        _num(attrs, cfg, "topK", n.REQUEST_TOP_K, float)
        _stops(attrs, cfg.get("stopSequences"))
        return route, info
    _num(attrs, body, "max_tokens", n.REQUEST_MAX_TOKENS, int)  # Anthropic, Mistral
    _num(attrs, body, "max_gen_len", n.REQUEST_MAX_TOKENS, int)  # Meta
    _num(attrs, body, "temperature", n.REQUEST_TEMPERATURE, float)
    _num(attrs, body, "top_p", n.REQUEST_TOP_P, float)
    _num(attrs, body, "top_k", n.REQUEST_TOP_K, float)
    _stops(attrs, body.get("stop_sequences") if "stop_sequences" in body else body.get("stop"))
    return route, info


# --------------------------------------------------------------------------------------------------
# usage


def _usage(inp: Any, out: Any, read: Any = None, write: Any = None) -> Any:
    """A usage from counts whose input excludes cache reads and writes (Converse, Nova); invalid on a bad count."""
    try:
        base, output, cr, cw = _int(inp), _int(out), _int(read), _int(write)
    except _BadCount:
        return invalid_usage()
    total = None if base is None else base + (cr or 0) + (cw or 0)
    return new_usage(total, output, cr or None, cw or None)


def _token_usage(u: Any) -> Any:
    """Converse's ``TokenUsage`` (and Nova's ``usage``)."""
    if not isinstance(u, dict):
        return None
    read = u.get("cacheReadInputTokens", u.get("cacheReadInputTokenCount"))
    write = u.get("cacheWriteInputTokens", u.get("cacheWriteInputTokenCount"))
    return _usage(u.get("inputTokens"), u.get("outputTokens"), read, write)


def _fill_usage(info: ResponseInfo, usage: Any) -> None:
    """Counts the answer did not give itself (header or invocation-metrics counts): never over the body's."""
    if usage is None:
        return
    cur = info.usage
    if cur is None:
        info.usage = usage
    elif not cur.invalid and not usage.invalid:
        if cur.input_tokens is None:
            cur.input_tokens = usage.input_tokens
        if cur.output_tokens is None:
            cur.output_tokens = usage.output_tokens


def usage_from_headers(headers: Any) -> Any:
    """An InvokeModel answer's ``X-Amzn-Bedrock-{Input,Output}-Token-Count`` headers (botocore's lower-cased
    header dict), or None."""
    try:
        inp = headers.get("x-amzn-bedrock-input-token-count")
        out = headers.get("x-amzn-bedrock-output-token-count")
    except Exception:
        return None
    if inp is None and out is None:
        return None
    try:
        counts = [None if v is None else int(v) for v in (inp, out)]
    except (TypeError, ValueError):
        return invalid_usage()
    read = headers.get("x-amzn-bedrock-cache-read-input-token-count")
    write = headers.get("x-amzn-bedrock-cache-write-input-token-count")
    try:
        cr = int(read) if read is not None else None
        cw = int(write) if write is not None else None
    except (TypeError, ValueError):
        cr = cw = None
    return _usage(counts[0], counts[1], cr, cw)


def _metrics_usage(metrics: Any) -> Any:
    if not isinstance(metrics, dict):
        return None
    return _usage(metrics.get("inputTokenCount"), metrics.get("outputTokenCount"))


# --------------------------------------------------------------------------------------------------
# content in the conventions' shapes

_FINISH = {
    **_ANTHROPIC_FINISH,
    "end_turn": "stop",
    "stop_sequence": "stop",
    "stop": "stop",
    "max_tokens": "length",
    "length": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}


def _finish(reason: Any) -> str:
    if not isinstance(reason, str) or not reason:
        return "error"
    return _FINISH.get(reason, reason)


def _b64(value: Any) -> str | None:
    if isinstance(value, str):
        return value  # already base64, as the JSON request carries it
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return None


def _media(kind: str, block: Any) -> list[Part]:
    if not isinstance(block, dict):
        return []
    fmt = block.get("format")
    mime = None
    if isinstance(fmt, str):
        mime = f"{kind}/{fmt}" if kind in (_IMAGE, "video") else f"application/{fmt}"
    source = block.get("source")
    data = _b64(source.get("bytes")) if isinstance(source, dict) else None
    if data is None:
        return []
    return [_blob(mime, _modality_of(mime) if kind != "document" else "document", data)]


def _converse_block(block: Any) -> list[Part]:
    if not isinstance(block, dict):
        return []
    if "text" in block and isinstance(block["text"], str):
        return [_text(block["text"])]
    if "toolUse" in block:
        use = block["toolUse"] if isinstance(block["toolUse"], dict) else {}
        return [_tool_call(use.get("toolUseId"), use.get("name"), use.get("input"))]
    if "toolResult" in block:
        res = block["toolResult"] if isinstance(block["toolResult"], dict) else {}
        return [_tool_response(res.get("toolUseId"), res.get("content"))]
    if "reasoningContent" in block:
        rc = block["reasoningContent"] if isinstance(block["reasoningContent"], dict) else {}
        rt = rc.get("reasoningText")
        text = rt.get("text") if isinstance(rt, dict) else None
        return [_reasoning(text)] if isinstance(text, str) else []
    for kind in ("image", "document", "video"):
        if kind in block:
            return _media(kind, block[kind])
    return []  # guard content, cache points: no readable content


def _converse_parts(content: Any) -> list[Part]:
    parts: list[Part] = []
    for block in content if isinstance(content, list) else ():
        parts += _converse_block(block)
    return parts


def _converse_content(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    messages: list[Message] = []
    for msg in body.get("messages") or ():
        if isinstance(msg, dict):
            parts = _converse_parts(msg.get("content"))
            if parts:
                messages.append(_message(msg.get("role"), parts))
    system = [p for p in _converse_parts(body.get("system")) if p["type"] == "text"]
    tools: list[dict] = []
    cfg = body.get("toolConfig")
    for tool in (cfg.get("tools") or ()) if isinstance(cfg, dict) else ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict):
            schema = spec.get("inputSchema")
            schema = schema.get("json") if isinstance(schema, dict) else None
            tools.append(_function_definition(spec.get("name"), spec.get("description"), schema))
    return messages, system, tools


def _prompt_content(prompt: str) -> tuple[list[Message], list[Part], list[dict]]:
    return [_message("user", [_text(prompt)])], [], []


def request_content(api: str, body: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """(input messages, system instructions, tool definitions) of a Converse or InvokeModel request body."""
    if not isinstance(body, dict):
        return [], [], []
    try:
        if api == BEDROCK_CONVERSE or "schemaVersion" in body or "inferenceConfig" in body:
            return clean_deep(_converse_content(body))
        if "anthropic_version" in body:
            return clean_deep(_anthropic_request(body))
        if isinstance(body.get("prompt"), str):
            return clean_deep(_prompt_content(body["prompt"]))
        if isinstance(body.get("messages"), list):
            msgs = body["messages"]
            if msgs and isinstance(msgs[0], dict) and isinstance(msgs[0].get("content"), list):
                first = msgs[0]["content"]
                if first and isinstance(first[0], dict) and "type" not in first[0]:
                    return clean_deep(_converse_content(body))
            return clean_deep(_chat_request(body))
    except Exception:
        pass
    return [], [], []


def _converse_output(body: dict) -> list[Message]:
    out = body.get("output")
    msg = out.get("message") if isinstance(out, dict) else None
    if not isinstance(msg, dict):
        return []
    return [_output(msg.get("role"), _converse_parts(msg.get("content")), _finish(body.get("stopReason")))]


# --------------------------------------------------------------------------------------------------
# answers


def _reason(info: ResponseInfo, reason: Any) -> None:
    if isinstance(reason, str) and reason:
        info.finish_reasons.append(clean(reason))


def apply_converse(info: ResponseInfo, parsed: Any, capture: bool) -> None:
    """A Converse answer as botocore parsed it."""
    if not isinstance(parsed, dict):
        return
    _reason(info, parsed.get("stopReason"))
    usage = _token_usage(parsed.get("usage"))
    if usage is not None:
        info.usage = usage
    if capture:
        try:
            info.output = clean_deep(_converse_output(parsed))
        except Exception:
            info.output = None


def apply_invoke_body(info: ResponseInfo, raw: bytes, capture: bool) -> bool:
    """A whole InvokeModel answer body in its family's format. False when it is not JSON."""
    try:
        body = _loads(raw)
    except (ValueError, TypeError):
        return False
    if not isinstance(body, dict):
        return True
    output: list[Message] | None = None
    if body.get("type") == "message" or ("stop_reason" in body and "content" in body):  # Anthropic
        model = body.get("model")
        if isinstance(model, str) and model:
            info.model = clean(model)
        rid = body.get("id")
        if isinstance(rid, str) and rid:
            info.id = clean(rid)
        _reason(info, body.get("stop_reason"))
        u = body.get("usage")
        if isinstance(u, dict):
            _merge_usage(
                info,
                _usage(u.get("input_tokens"), u.get("output_tokens"), u.get("cache_read_input_tokens"),
                       u.get("cache_creation_input_tokens")),
            )  # fmt: skip
        if capture:
            output = _anthropic_response(body)
    elif "output" in body and "stopReason" in body:  # Amazon Nova
        _reason(info, body.get("stopReason"))
        _merge_usage(info, _token_usage(body.get("usage")))
        if capture:
            output = _converse_output(body)
    elif "generation" in body:  # Meta Llama
        _reason(info, body.get("stop_reason"))
        _merge_usage(info, _usage(body.get("prompt_token_count"), body.get("generation_token_count")))
        if capture and isinstance(body["generation"], str):
            output = [_output("assistant", [_text(body["generation"])], _finish(body.get("stop_reason")))]
    elif isinstance(body.get("outputs"), list):  # Mistral text completion
        parts: list[Part] = []
        reason = None
        for item in body["outputs"]:
            if isinstance(item, dict):
                _reason(info, item.get("stop_reason"))
                reason = item.get("stop_reason")
                if isinstance(item.get("text"), str):
                    parts.append(_text(item["text"]))
        if capture:
            output = [_output("assistant", parts, _finish(reason))]
    elif isinstance(body.get("choices"), list):  # Mistral chat
        for choice in body["choices"]:
            if isinstance(choice, dict):
                _reason(info, choice.get("stop_reason") or choice.get("finish_reason"))
        if capture:
            output = _chat_response(body)
    metrics = _metrics_usage(body.get(_METRICS))
    if metrics is not None:
        _fill_usage(info, metrics)
    if capture and output is not None:
        info.output = clean_deep(output)
    return True


def fill_usage(info: ResponseInfo, usage: Any) -> None:
    """Header counts: what the body does not say."""
    _fill_usage(info, usage)


class _TextStream:
    """Output content of a stream whose chunks carry plain text (Meta, Mistral, Converse and Nova text blocks),
    tool calls and reasoning by content block (Converse, Nova)."""

    __slots__ = ("blocks", "reason")

    def __init__(self) -> None:
        self.blocks: dict[int, list[Any]] = {}  # index -> [kind, parts of text, tool id, tool name]
        self.reason: Any = None

    def block(self, index: Any, kind: str = "text") -> list[Any]:
        i = index if isinstance(index, int) else 0
        b = self.blocks.get(i)
        if b is None:
            b = self.blocks[i] = [kind, [], None, None]
        return b

    def messages(self) -> list[Message]:
        parts: list[Part] = []
        for _, (kind, pieces, tid, name) in sorted(self.blocks.items()):
            text = "".join(pieces)
            if kind == "tool":
                parts.append(_tool_call(tid, name, _arguments(text, {})))
            elif kind == "reasoning":
                parts.append(_reasoning(text))
            else:
                parts.append(_text(text))
        return clean_deep([_output("assistant", parts, _finish(self.reason))])


def _converse_event(info: ResponseInfo, content: _TextStream | None, event: dict) -> tuple[int, bool]:
    """One Converse-shaped stream event (ConverseStream, or a Nova InvokeModel chunk): (content chunks, the end)."""
    delta_ev = event.get("contentBlockDelta")
    if delta_ev is not None:
        if content is not None and isinstance(delta_ev, dict):
            delta = delta_ev.get("delta")
            if isinstance(delta, dict):
                if isinstance(delta.get("text"), str):
                    content.block(delta_ev.get("contentBlockIndex"))[1].append(delta["text"])
                elif isinstance(delta.get("toolUse"), dict):
                    piece = delta["toolUse"].get("input")
                    if isinstance(piece, str):
                        content.block(delta_ev.get("contentBlockIndex"), "tool")[1].append(piece)
                elif isinstance(delta.get("reasoningContent"), dict):
                    piece = delta["reasoningContent"].get("text")
                    if isinstance(piece, str):
                        content.block(delta_ev.get("contentBlockIndex"), "reasoning")[1].append(piece)
        return 1, False
    start = event.get("contentBlockStart")
    if start is not None:
        if content is not None and isinstance(start, dict):
            use = start.get("start", {}).get("toolUse") if isinstance(start.get("start"), dict) else None
            if isinstance(use, dict):
                b = content.block(start.get("contentBlockIndex"), "tool")
                b[0], b[2], b[3] = "tool", use.get("toolUseId"), use.get("name")
        return 0, False
    stop = event.get("messageStop")
    if stop is not None:
        if isinstance(stop, dict):
            _reason(info, stop.get("stopReason"))
            if content is not None:
                content.reason = stop.get("stopReason")
        return 0, False
    meta = event.get("metadata")
    if meta is not None:
        if isinstance(meta, dict):
            usage = _token_usage(meta.get("usage"))
            if usage is not None:
                info.usage = usage
        return 0, True
    return 0, False


class ConverseStreamState:
    """A ConverseStream's events as botocore hands them to the caller; ``done`` once ``metadata`` (its last
    event, with the usage) arrived."""

    __slots__ = ("content", "done", "info")

    def __init__(self, info: ResponseInfo, capture: bool) -> None:
        self.info = info
        self.done = False
        self.content: _TextStream | None = None
        if capture:
            self.content = _TextStream()
            info.output = self.content

    def feed(self, event: Any) -> int:
        if not isinstance(event, dict):
            return 0
        count, end = _converse_event(self.info, self.content, event)
        if end:
            self.done = True
        return count


class InvokeStreamState:
    """An InvokeModelWithResponseStream's ``chunk`` events: each one's ``bytes`` is one JSON chunk of the model
    family's stream. ``done`` once the family's last chunk (the one with ``amazon-bedrock-invocationMetrics``, or
    Anthropic's ``message_stop``, Nova's ``metadata``) arrived."""

    __slots__ = ("capture", "content", "done", "info")

    def __init__(self, info: ResponseInfo, capture: bool) -> None:
        self.info = info
        self.capture = capture
        self.done = False
        self.content: Any = None

    def feed(self, event: Any) -> int:
        chunk = event.get("chunk") if isinstance(event, dict) else None
        data = chunk.get("bytes") if isinstance(chunk, dict) else None
        if not isinstance(data, (bytes, bytearray)):
            return 0
        if (
            not self.capture
            and (b'"content_block_delta"' in data or b'"contentBlockDelta"' in data)
            and _METRICS_KEY not in data
        ):
            return 1  # a plain content chunk: nothing to decode
        try:
            ev = _loads(bytes(data))
        except (ValueError, TypeError):
            return 0
        if not isinstance(ev, dict):
            return 0
        info = self.info
        count = 0
        kind = ev.get("type")
        if isinstance(kind, str):  # Anthropic Messages stream events
            if self.capture:
                if self.content is None:
                    self.content = info.output = StreamContent(ANTHROPIC_MESSAGES)
                self.content.feed(ev)
            if kind == "content_block_delta":
                count = 1
            elif kind == "message_start":
                msg = ev.get("message")
                if isinstance(msg, dict):
                    if isinstance(msg.get("model"), str) and msg["model"]:
                        info.model = clean(msg["model"])
                    if isinstance(msg.get("id"), str) and msg["id"]:
                        info.id = clean(msg["id"])
                    u = msg.get("usage")
                    if isinstance(u, dict):
                        _merge_usage(
                            info,
                            _usage(u.get("input_tokens"), None, u.get("cache_read_input_tokens"),
                                   u.get("cache_creation_input_tokens")),
                        )  # fmt: skip
            elif kind == "message_delta":
                delta = ev.get("delta")
                if isinstance(delta, dict):
                    _reason(info, delta.get("stop_reason"))
                u = ev.get("usage")
                if isinstance(u, dict):
                    _merge_usage(info, _usage(None, u.get("output_tokens")))
            elif kind == "message_stop":
                self.done = True
        elif "generation" in ev:  # Meta Llama
            count = 1
            if self.capture:
                self._text(ev.get("generation"), ev.get("stop_reason"))
            _reason(info, ev.get("stop_reason"))
            prompt, gen = ev.get("prompt_token_count"), ev.get("generation_token_count")
            if prompt is not None or gen is not None:
                _merge_usage(info, _usage(prompt, gen))
        elif "outputs" in ev or "choices" in ev:  # Mistral
            for item in ev.get("outputs") or ev.get("choices") or ():
                if isinstance(item, dict):
                    count = 1
                    reason = item.get("stop_reason") or item.get("finish_reason")
                    _reason(info, reason)
                    if self.capture:
                        text = item.get("text")
                        if text is None and isinstance(item.get("message"), dict):
                            text = item["message"].get("content")
                        self._text(text, reason)
        else:  # Amazon Nova: Converse-shaped chunks
            if self.capture and self.content is None:
                self.content = info.output = _TextStream()
            count, end = _converse_event(info, self.content, ev)
            if end:
                self.done = True
        metrics = ev.get(_METRICS)
        if metrics is not None:
            _fill_usage(info, _metrics_usage(metrics))
            self.done = True
        return count

    def _text(self, text: Any, reason: Any) -> None:
        if self.content is None:
            self.content = self.info.output = _TextStream()
        if isinstance(text, str):
            self.content.block(0)[1].append(text)
        if isinstance(reason, str) and reason:
            self.content.reason = reason


def _register() -> None:
    """Content capture of the recorder reads request bodies through ``messages.request_content``."""
    from . import messages

    messages._REQUESTS[BEDROCK_CONVERSE] = _converse_content
    messages._REQUESTS[BEDROCK_INVOKE] = _invoke_content


def _invoke_content(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    return request_content(BEDROCK_INVOKE, body)


_register()
