"""Incremental Server-Sent Events parsing over the bytes the user's code pulls.

``StreamParser.feed(data)`` sees each piece of the body exactly as the user's client hands it on.
It keeps only the unfinished tail of the current event (never the body), and decodes JSON only
for the few events that carry what telemetry needs (the first one, usage, finish reasons, errors),
found with ``bytes.find``: per-chunk cost stays a few substring searches.
"""

from __future__ import annotations

from typing import Any

from ._json import first_loads as _first_loads
from ._json import loads as _loads
from ._text import clean
from .cohere import cohere_event
from .messages import StreamContent
from .ollama import NdjsonParser
from .response import ResponseInfo, apply_body, apply_openai_choices, usage_from
from .routes import ANTHROPIC_MESSAGES, COHERE_CHAT, GEMINI, OLLAMA_APIS, OPENAI_RESPONSES, Route

__all__ = ["StreamParser", "stream_parser"]

_MAX_TAIL = 1 << 20  # an "event" longer than 1 MiB without a boundary is not SSE: stop parsing


def _nonnull(data: bytes, key: bytes) -> bool:
    """True if JSON text ``data`` has ``key`` (quoted, with colon) followed by something other than null."""
    i = data.find(key)
    while i >= 0:
        j = i + len(key)
        end = len(data)
        while j < end and data[j] in b" \t\r\n":
            j += 1
        if j < end and data[j] != 0x6E:  # not "n"ull
            return True
        i = data.find(key, j)
    return False


_USAGE = b'"usage":'
_FINISH = b'"finish_reason":'
_ERROR = b'"error":'


class StreamParser:
    """Parses one SSE response body incrementally into a ``ResponseInfo``.

    ``feed`` returns the number of content chunks completed by that piece of bytes (for time to first
    chunk and time per output chunk); ``done`` is True once the provider signalled the end.
    """

    __slots__ = ("_api", "_fast", "_first", "_tail", "broken", "capture", "content", "done", "info", "route")

    def __init__(self, route: Route, info: ResponseInfo, capture: bool = False) -> None:
        self.route = route
        self._api = route.api
        self.info = info
        self.capture = capture
        self.content: StreamContent | None = None
        if capture:  # every event goes to the content assembler too
            self.content = info.output = StreamContent(route.api)
        self._tail = b""
        self._first = True
        # OpenAI chat/completions without content capture: most events need no decoding at all
        self._fast = not capture and route.api not in (ANTHROPIC_MESSAGES, OPENAI_RESPONSES, GEMINI, COHERE_CHAT)
        self.done = False
        self.broken = False

    def feed(self, data: bytes) -> int:
        if self.broken or not data:
            return 0
        tail = self._tail
        buf = tail + data if tail else data
        if buf.find(b"\r") >= 0:
            if buf.endswith(b"\r"):  # a CRLF split across reads: keep the CR for next time
                self._tail = buf
                return 0
            buf = buf.replace(b"\r\n", b"\n")
        start = 0
        count = 0
        fast = self._fast and not self._first
        find = buf.find
        end = find(b"\n\n")
        while end >= 0:
            if end > start:
                ev = buf[start:end]
                # a plain content chunk, decided without decoding it: this runs for every chunk (``find``, not
                # ``in``: on bytes, ``in`` first tries its operand as an integer, and that failure costs ~1,000
                # instructions a test, counted)
                if (
                    fast
                    and ev.startswith(b"data: {")
                    and (evf := ev.find)(b'"finish_reason":"') < 0
                    and evf(b'"usage":{') < 0
                    and evf(b'"error":') < 0
                    and evf(b'"choices":[]') < 0
                    and evf(b"\n") < 0
                    and (  # the spaced spellings each contain '": ': compact JSON (OpenAI's) skips their searches
                        evf(b'": ') < 0
                        or (evf(b'"finish_reason": "') < 0 and evf(b'"usage": {') < 0 and evf(b'"choices": []') < 0)
                    )
                ):
                    count += 1
                else:  # the first event, the end marker, anything carrying what telemetry needs, other APIs
                    count += self._event(ev)
                    fast = self._fast and not self._first
            start = end + 2
            end = find(b"\n\n", start)
        if start == len(buf):
            self._tail = b""
        else:
            tail = self._tail = buf[start:] if start else buf
            if len(tail) > _MAX_TAIL:
                self.broken = True
                self._tail = b""
        return count

    def flush(self) -> int:
        """End of body: an event without its trailing blank line still counts."""
        if self._tail and not self.broken:
            tail, self._tail = self._tail.rstrip(b"\r\n"), b""
            if tail:
                return self._event(tail)
        return 0

    def _event(self, block: bytes) -> int:
        name: bytes | None = None
        data: bytes | None = None
        if block.startswith(b"data:") and block.find(b"\n") < 0:  # the common one-line event
            data = block[5:]
            if data[:1] == b" ":
                data = data[1:]
        else:
            parts: list[bytes] = []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    v = line[5:]
                    parts.append(v[1:] if v[:1] == b" " else v)
                elif line.startswith(b"event:"):
                    name = line[6:].strip()
            if not parts:
                return 0
            data = b"\n".join(parts)
        if not data:
            return 0
        try:
            return self._handle(name, data)
        except Exception:
            return 0

    def _load(self, data: bytes) -> Any:
        try:
            return _first_loads(data)
        except ValueError:  # orjson refuses what json.loads may take (see _json): the full loads decides
            try:
                return _loads(data)
            except (ValueError, TypeError):
                return None
        except TypeError:
            return None

    def _handle(self, name: bytes | None, data: bytes) -> int:
        api = self._api
        info = self.info
        content = self.content
        if content is not None:
            ev = self._load(data)
            if ev is not None:
                content.feed(ev)
        if api == COHERE_CHAT:
            return cohere_event(self, name, data)
        if api == ANTHROPIC_MESSAGES:
            if name is None:
                name = _type_of(data)
            if name == b"content_block_delta":
                return 1
            if name in (b"message_start", b"message_delta", b"error"):
                ev = self._load(data)
                if isinstance(ev, dict):
                    if name == b"message_start":
                        apply_body(self.route, ev.get("message"), info)
                    elif name == b"message_delta":
                        reason = ev.get("delta", {}).get("stop_reason") if isinstance(ev.get("delta"), dict) else None
                        if isinstance(reason, str):
                            info.finish_reasons.append(clean(reason))
                        usage = usage_from(api, ev.get("usage"))
                        if usage is not None and info.usage is not None and not info.usage.invalid:
                            if usage.invalid:
                                info.usage = usage
                            elif usage.output_tokens is not None:
                                info.usage.output_tokens = usage.output_tokens
                        elif usage is not None and info.usage is None:
                            info.usage = usage
                    else:
                        apply_body(self.route, ev, info)
            elif name == b"message_stop":
                self.done = True
            return 0
        if api == OPENAI_RESPONSES:
            if name is None:
                name = _type_of(data)
            if name is not None and name.endswith(b".delta"):
                return 1
            if name in (b"response.output_item.added", b"response.output_item.done"):
                if b'"compaction"' in data:  # recorded as it arrives: a stream cut short has no final response
                    ev = self._load(data)
                    if isinstance(ev, dict) and isinstance(ev.get("item"), dict):
                        info.compacted = info.compacted or ev["item"].get("type") == "compaction"
                return 0
            if name in (b"response.created", b"response.completed", b"response.failed", b"response.incomplete"):
                ev = self._load(data)
                if isinstance(ev, dict):
                    apply_body(self.route, ev.get("response"), info)
                if name != b"response.created":
                    self.done = True
            elif name == b"error":
                ev = self._load(data)
                if isinstance(ev, dict):
                    code = ev.get("code")
                    if isinstance(code, str):
                        info.error_code = clean(code)
                    elif isinstance(ev.get("error"), dict):
                        apply_body(self.route, ev, info)
            return 0
        if api == GEMINI:
            apply_body(self.route, self._load(data), info)
            return 1
        # OpenAI chat / legacy completions (and every OpenAI-compatible relay)
        if data == b"[DONE]":
            self.done = True
            return 0
        usage_only = data.find(b'"choices":[]') >= 0 or data.find(b'"choices": []') >= 0
        if self._first or _nonnull(data, _USAGE) or _nonnull(data, _FINISH) or _nonnull(data, _ERROR):
            self._first = False
            ev = self._load(data)
            if isinstance(ev, dict):
                _apply_chunk(self.route, ev, info)
        return 0 if usage_only else 1


def stream_parser(route: Route, info: ResponseInfo, capture: bool = False) -> StreamParser | NdjsonParser:
    """The incremental parser of a streamed answer in the route's framing: SSE, or Ollama's NDJSON lines."""
    if route.api in OLLAMA_APIS:
        return NdjsonParser(route, info, capture)
    return StreamParser(route, info, capture)


def _apply_chunk(route: Route, ev: dict, info: ResponseInfo) -> None:
    # like apply_body, without the content walk
    if isinstance(ev.get("model"), str) and ev["model"]:
        info.model = clean(ev["model"])
    if isinstance(ev.get("id"), str) and ev["id"]:
        info.id = clean(ev["id"])
    apply_openai_choices(info, ev.get("choices"))
    if isinstance(ev.get("system_fingerprint"), str):
        info.system_fingerprint = clean(ev["system_fingerprint"])
    if isinstance(ev.get("service_tier"), str):
        info.service_tier = clean(ev["service_tier"])
    if ev.get("error"):
        apply_body(route, {"error": ev["error"]}, info)
    u = ev.get("usage")
    if isinstance(u, dict):
        info.usage = usage_from(route.api, u)
        cost = u.get("cost")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and cost >= 0:
            info.relay_cost = float(cost)


def _type_of(data: bytes) -> bytes | None:
    """The ``"type"`` of a JSON event, read without decoding it (Anthropic and Responses events carry one)."""
    i = data.find(b'"type":')
    if i < 0:
        return None
    j = data.find(b'"', i + 7)
    if j < 0:
        return None
    k = data.find(b'"', j + 1)
    return data[j + 1 : k] if k > j else None
