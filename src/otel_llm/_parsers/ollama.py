"""Ollama's native API (``/api/chat``, ``/api/generate``, ``/api/embed``, ``/api/embeddings``): requests, answers
and NDJSON streams.

Ollama streams one JSON object per line (``application/x-ndjson``); the last one has ``"done": true`` and carries
``done_reason``, the token counts (``prompt_eval_count``: prompt tokens, ``eval_count``: generated tokens) and the
server's own timings in nanoseconds (recorded in seconds, see ``_names.OLLAMA_*_DURATION``). A whole answer is
that same last object with the whole text. ``/api/chat`` and ``/api/generate`` stream unless the request says
``"stream": false``. An error is ``{"error": "message"}``, as a whole body or as a line of a stream.

Like the other parsers: every field is optional, nothing raises, strings from the wire go through ``clean``, and
a token count outside any real range makes the call's usage invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _names as n
from ._json import loads as _loads
from ._text import clean
from .messages import StreamContent
from .routes import OLLAMA_CHAT, OLLAMA_EMBED, OLLAMA_EMBEDDINGS, OLLAMA_GENERATE, Route
from .usage import MAX_TOKENS, invalid_usage, new_usage

if TYPE_CHECKING:
    from .request import RequestInfo
    from .response import ResponseInfo

__all__ = ["NdjsonParser", "apply_ollama", "ollama_request"]

# ``options`` keys -> (attribute, type)
_OPTIONS = {
    "temperature": (n.REQUEST_TEMPERATURE, float),
    "top_p": (n.REQUEST_TOP_P, float),
    "top_k": (n.REQUEST_TOP_K, float),
    "num_predict": (n.REQUEST_MAX_TOKENS, int),
    "seed": (n.REQUEST_SEED, int),
    "frequency_penalty": (n.REQUEST_FREQUENCY_PENALTY, float),
    "presence_penalty": (n.REQUEST_PRESENCE_PENALTY, float),
}
_DURATIONS = (
    ("total_duration", n.OLLAMA_TOTAL_DURATION),
    ("load_duration", n.OLLAMA_LOAD_DURATION),
    ("prompt_eval_duration", n.OLLAMA_PROMPT_EVAL_DURATION),
    ("eval_duration", n.OLLAMA_EVAL_DURATION),
)
_STREAMED = (OLLAMA_CHAT, OLLAMA_GENERATE)
_MAX_LINE = 1 << 24  # a "line" of 16 MiB without a newline is not NDJSON: stop parsing


def ollama_request(api: str, body: dict, info: RequestInfo) -> None:
    """Model, stream flag and parameters of an Ollama request body (``info`` fresh from ``parse_request``)."""
    model = body.get("model")
    if isinstance(model, str) and model:
        info.model = model if model.isascii() else clean(model)
    info.stream = api in _STREAMED and body.get("stream") is not False  # Ollama streams unless told not to
    attrs = info.attributes
    options = body.get("options")
    if isinstance(options, dict) and options:
        for key, (attr, kind) in _OPTIONS.items():
            v = options.get(key)
            if v is not None and not isinstance(v, bool) and isinstance(v, (int, float)):
                attrs[attr] = kind(v)
        stop = options.get("stop")
        if isinstance(stop, str):
            attrs[n.REQUEST_STOP_SEQUENCES] = [clean(stop)]
        elif isinstance(stop, list) and stop:
            attrs[n.REQUEST_STOP_SEQUENCES] = [clean(str(s)) for s in stop]
    fmt = body.get("format")
    if fmt == "json" or isinstance(fmt, dict):  # "json", or a JSON schema the answer must follow
        attrs[n.OUTPUT_TYPE] = "json"


class _BadCount(Exception):
    pass


def _count(v: Any) -> int | None:
    if v is None:
        return None
    if type(v) is int and 0 <= v <= MAX_TOKENS:
        return v
    if isinstance(v, float) and v.is_integer() and 0 <= v <= MAX_TOKENS:
        return int(v)
    raise _BadCount


def apply_ollama(api: str, body: dict, info: ResponseInfo) -> None:
    """Fill ``info`` from one decoded Ollama answer (a whole body, or one line of a stream)."""
    model = body.get("model")
    if isinstance(model, str) and model:
        info.model = model if model.isascii() else clean(model)
    reason = body.get("done_reason")
    if isinstance(reason, str) and reason:
        info.finish_reasons.append(reason if reason.isascii() else clean(reason))
    if api == OLLAMA_EMBEDDINGS:
        emb = body.get("embedding")
        if isinstance(emb, list) and emb:
            info.embedding_dimensions = len(emb)
    elif api == OLLAMA_EMBED:
        embs = body.get("embeddings")
        if isinstance(embs, list) and embs and isinstance(embs[0], list):
            info.embedding_dimensions = len(embs[0])
    prompt = body.get("prompt_eval_count")
    output = body.get("eval_count")
    if prompt is not None or output is not None:
        try:
            info.usage = new_usage(_count(prompt), _count(output))
        except _BadCount:
            info.usage = invalid_usage()
    extra = None
    for key, attr in _DURATIONS:
        v = body.get(key)
        if type(v) is int and v >= 0:
            if extra is None:
                extra = {}
            extra[attr] = v / 1e9
    if extra is not None:
        info.provider_attrs = extra


def _load(line: bytes) -> Any:
    try:
        return _loads(line)
    except (ValueError, TypeError):
        return None


class NdjsonParser:
    """Parses an Ollama NDJSON stream incrementally into a ``ResponseInfo``: ``StreamParser``'s interface.

    Only the unfinished last line is kept. Without content capture a content line (``"done":false``) is counted
    without decoding it; the first line (the model) and the last one (``"done":true``: reason, usage, timings)
    are decoded."""

    __slots__ = ("_api", "_first", "_tail", "broken", "capture", "content", "done", "info", "route")

    def __init__(self, route: Route, info: ResponseInfo, capture: bool = False) -> None:
        self.route = route
        self._api = route.api
        self.info = info
        self.capture = capture
        self.content: StreamContent | None = None
        if capture:
            self.content = info.output = StreamContent(route.api)
        self._tail = b""
        self._first = True
        self.done = False
        self.broken = False

    def feed(self, data: bytes) -> int:
        if self.broken or not data:
            return 0
        tail = self._tail
        buf = tail + data if tail else data
        count = 0
        start = 0
        end = buf.find(b"\n")
        while end >= 0:
            if end > start:
                count += self._line(buf[start:end])
            start = end + 1
            end = buf.find(b"\n", start)
        if start == len(buf):
            self._tail = b""
        else:
            tail = self._tail = buf[start:] if start else buf
            if len(tail) > _MAX_LINE:
                self.broken = True
                self._tail = b""
        return count

    def flush(self) -> int:
        """End of body: a last line without its newline still counts."""
        if self._tail and not self.broken:
            tail, self._tail = self._tail, b""
            return self._line(tail)
        return 0

    def _line(self, line: bytes) -> int:
        if (
            self.content is None
            and not self._first
            and (b'"done":false' in line or b'"done": false' in line)
            and b'"error"' not in line
        ):
            return 1  # a content line: nothing in it telemetry needs
        try:
            ev = _load(line.strip())
            if not isinstance(ev, dict):
                return 0
            self._first = False
            if self.content is not None:
                self.content.feed(ev)
            if ev.get("done") is True:
                self.done = True
                apply_ollama(self._api, ev, self.info)
                return 0
            if "error" in ev:
                return 0
            model = ev.get("model")
            if isinstance(model, str) and model:
                self.info.model = model if model.isascii() else clean(model)
            return 1
        except Exception:
            return 0
