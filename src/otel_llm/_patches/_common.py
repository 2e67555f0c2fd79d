"""What every client patch shares: the call in progress, URL scrubbing, and starting/observing a call."""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
import weakref
from collections.abc import Iterable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context, trace

from .._errors import error_type_of
from .._parsers.headers import HeaderInfo, parse_header_list, parse_header_store, parse_headers
from .._parsers.request import parse_request, parse_request_bytes
from .._parsers.response import apply_body, parse_body_bytes
from .._parsers.routes import GEMINI, Route, gemini_model_from_path
from .._parsers.sse import StreamParser
from .._urls import URL_CACHE_SIZE, scrub_url

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

__all__ = [
    "URL_CACHE_SIZE",
    "CURRENT",
    "PENDING",
    "attach",
    "call_failed",
    "defer",
    "detach",
    "flush_pending",
    "json_factory",
    "sent_json",
    "observe_httpx_status",
    "observe_requests_status",
    "split_url",
    "observe_status",
    "parse_read_body",
    "path_of",
    "scrub_url",
    "start_http_call",
]

log = logging.getLogger("otel_llm")

CURRENT: ContextVar[Invocation | None] = ContextVar("otel_llm_current_call", default=None)
"""The SDK-level call in progress. The HTTP layer under it adds attempts and response data to it
instead of starting a second span (one call, one span)."""


def split_url(url: str) -> tuple[str, str, int | None, str]:
    """(scheme, lowercase host, port, path and query) of an absolute URL. The plain ``scheme://host[:port]/path``
    form is split by hand (this runs on every request); anything else (userinfo, IPv6, no path) by urllib."""
    i = url.find("://")
    j = url.find("/", i + 3) if i > 0 else -1
    if j > 0:
        netloc = url[i + 3 : j]
        if netloc and "@" not in netloc and "[" not in netloc and "?" not in netloc and "#" not in netloc:
            host, _, port = netloc.partition(":")
            path = url[j:]
            k = path.find("#")
            return url[:i].lower(), host.lower(), int(port) if port else None, path if k < 0 else path[:k]
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port, parts.path + ("?" + parts.query if parts.query else "")


def path_of(url: str) -> str:
    """The path+query of an absolute URL without parsing all of it (this runs on every request)."""
    i = url.find("//")
    j = url.find("/", i + 2 if i >= 0 else 0)
    return url[j:] if j >= 0 else "/"


def _foreign_genai_span() -> Any:
    """A recording GenAI span made by someone else (anthropic 2.x's own call span, another
    instrumentation) that this HTTP request belongs to, or None."""
    var = _VAR
    if var is not None and context._RUNTIME_CONTEXT is _RUNTIME:
        span = var.get().get(_SPAN_KEY)  # what trace.get_current_span() reads, without its three calls
        if span is None:
            return None
    else:
        span = trace.get_current_span()
    if not span.is_recording():
        return None
    attrs = getattr(span, "attributes", None)
    if attrs and "gen_ai.operation.name" in attrs:
        return span
    return None


def start_http_call(
    recorder: Recorder,
    route: Route,
    scheme: str,
    host: str,
    port: int | None,
    path: str,
    raw_body: bytes | None = None,
    json_body: Any = None,
    userinfo: bool = False,
) -> Invocation:
    if PENDING:  # earlier calls still open for their caller's .json(): end those that waited too long
        sweep()
    path_model = gemini_model_from_path(path) if route.api == GEMINI else None
    if json_body is not None:
        body = json_body
        request = parse_request(route, body, path_model)
    else:
        request = parse_request_bytes(route, raw_body, path_model)
        body = None
        if recorder.capture and raw_body:
            try:
                body = json.loads(raw_body)
            except (ValueError, TypeError):
                body = None
    url = scrub_url(scheme, host, port, path, userinfo)
    foreign = _foreign_genai_span()
    if foreign is not None:
        live = getattr(foreign, "_otel_llm_call", None)
        if live is not None and not live.ended:  # a retry inside the owner's call: the same call
            live.attempts += 1
            live.error_type = None
            live.status_code = None
            return live
    inv = recorder.start(route, request, host, port, "http", url=url, body=body, foreign_span=foreign)
    if foreign is not None:
        inv.attempts = 1
        _end_with_owner(foreign, inv)
    return inv


def _end_with_owner(span: Any, inv: Invocation) -> None:
    """A foreign span's owner decides when the call is over: our record is finished (and our attributes
    land on the span) just before the owner ends it, whichever way that happens."""
    owner_end = span.end

    def end(*args: Any, **kwargs: Any) -> Any:
        try:
            if not inv.ended:
                inv.end(("completed" if inv.info.finish_reasons else "closed_early") if inv.owned_by_stream else None)
        except Exception:
            log.debug("otel_llm: finishing a call failed", exc_info=True)
        return owner_end(*args, **kwargs)

    span._otel_llm_call = inv
    span.end = end


def call_failed(inv: Invocation, exc: BaseException) -> None:
    """The request raised. Our own call ends as failed; inside a foreign span the owner may retry,
    so only the error is noted and the owner's end finishes the call."""
    if inv.foreign:
        try:
            inv.error_type = error_type_of(exc)
        except Exception:  # never instead of the user's exception
            inv.error_type = "_OTHER"
    else:
        inv.fail(exc)


def observe_status(inv: Invocation, status: int, header_items: Iterable[tuple[str, str]]) -> None:
    inv.status_code = status
    inv.headers = parse_headers(header_items)


def observe_requests_status(inv: Invocation, status: int, headers: Any) -> HeaderInfo:
    """``observe_status`` for a requests ``CaseInsensitiveDict``: its lowercase-keyed store as is."""
    inv.status_code = status
    store = getattr(headers, "_store", None)
    info = parse_header_store(store) if isinstance(store, dict) else parse_headers(headers.items())
    inv.headers = info
    return info


def observe_httpx_status(inv: Invocation, status: int, headers: Any) -> HeaderInfo:
    """``observe_status`` for an httpx/httpx2 ``Headers``: reads its ``(raw, lower, value)`` byte list
    when it has one (no decoding of every header), else its decoded items."""
    inv.status_code = status
    raw = getattr(headers, "_list", None)
    if isinstance(raw, list) and (not raw or (isinstance(raw[0], tuple) and len(raw[0]) == 3)):
        info = parse_header_list(raw)
    else:
        info = parse_headers(headers.multi_items())
    inv.headers = info
    return info


def parse_read_body(inv: Invocation, raw: bytes | None) -> None:
    """A body the client already read whole (JSON, or an SSE stream read in one go)."""
    if not raw:
        return
    try:
        if not parse_body_bytes(inv.route, raw, inv.info, inv.recorder.capture):
            parser = StreamParser(inv.route, inv.info, inv.recorder.capture)
            parser.feed(raw)
            parser.flush()
    except Exception:
        log.debug("otel_llm: parsing a response body failed", exc_info=True)


def is_sse(inv: Invocation, content_type: str) -> bool:
    if "event-stream" in content_type:
        return True
    if "json" in content_type:
        return False
    return inv.request.stream and inv.route.api != GEMINI


def _runtime_var() -> tuple[Any, Any, Any, Any]:
    """(the SDK's runtime context, its ContextVar, ``Context``, the current-span key) when the runtime context is
    the SDK's own ``ContextVarsRuntimeContext`` (the default), else Nones: ``attach`` then sets that ContextVar
    itself, which is what ``context.attach(trace.set_span_in_context(span))`` comes down to there, without its
    five Python calls on every LLM call."""
    try:
        from opentelemetry.context.context import Context
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
        from opentelemetry.trace.propagation import _SPAN_KEY

        runtime = context._RUNTIME_CONTEXT
        var = getattr(runtime, "_current_context", None)
        if type(runtime) is ContextVarsRuntimeContext and isinstance(var, ContextVar) and isinstance(_SPAN_KEY, str):
            return runtime, var, Context, _SPAN_KEY
    except Exception:  # another API version's layout: the API's own calls
        pass
    return None, None, None, None


_RUNTIME, _VAR, _CONTEXT, _SPAN_KEY = _runtime_var()


def attach(inv: Invocation) -> object:
    """Make the call's span the current span (its token for ``detach``): HTTP spans and logs of the call nest
    under it, and the trace context sent on is its own."""
    var = _VAR
    if var is not None and context._RUNTIME_CONTEXT is _RUNTIME:
        values = var.get().copy()
        values[_SPAN_KEY] = inv.span
        return var.set(_CONTEXT(values))
    return context.attach(trace.set_span_in_context(inv.span))


def detach(token: object) -> None:
    try:
        if type(token) is Token and token.var is _VAR:
            _VAR.reset(token)
        else:
            context.detach(token)  # type: ignore[arg-type]
    except Exception:
        pass


# --------------------------------------------------------------------------------------------------
# Raw calls ended by the caller's own parse of the body.
#
# A raw JSON answer (``httpx``'s or ``requests``' ``post(...)`` read whole) is almost always decoded by the
# caller right away with ``response.json()``. Decoding its bytes ourselves as well would double the CPU
# the caller spends on the body. So the call is left open, its answer's time noted (``mark_done``), and
# the ``.json()`` wrapper below fills it in from the object the caller got. A caller that never calls
# ``.json()`` still has its call ended from the bytes: when the response is freed (a weak reference's
# callback), else at the next call once it waited ~1 s or too many are open, else at exit.

MAX_PENDING = 64  # calls left open at once; past this the oldest is ended from its bytes
MAX_WAIT = 1.0  # seconds a call stays open for the caller's .json() before the next call ends it
SWEEP_EVERY = 1.0  # seconds between the sweeper thread's looks, while calls are open and no call comes


class _Pending(weakref.ref):
    """A weak reference to a response whose call waits for the caller's ``.json()``."""

    __slots__ = ("inv", "key", "raw")

    inv: Invocation
    key: int
    raw: bytes


PENDING: dict[int, _Pending] = {}
"""``id(response)`` -> its open call, oldest first. An entry is taken out (``dict.pop``, atomic) by
whoever ends the call: the caller's ``.json()``, the response's freeing, the bound, or the exit flush."""

_exit_hook: list[bool] = []


def defer(inv: Invocation, response: Any, raw: bytes) -> bool:
    """Leave an own call with a whole JSON body open until the caller parses the body (see above).
    False: the response cannot be weakly referenced, end it now."""
    inv.mark_done()
    try:
        ref = _Pending(response, _freed)
    except TypeError:
        return False
    ref.inv = inv
    ref.raw = raw
    ref.key = key = id(response)
    if not _exit_hook:  # registered once, when the first call is left open: after the SDK's providers
        _exit_hook.append(True)  # were made, so that it runs before their own exit shutdown (atexit is LIFO)
        atexit.register(flush_pending)
    if not _sweeper:
        _start_sweeper()
    old = PENDING.setdefault(key, ref)
    if old is not ref:  # not expected (one send per response): the earlier call ends from its bytes
        PENDING[key] = ref
        _end_from_bytes(old)
    if len(PENDING) > MAX_PENDING:
        sweep()
    return True


_sweeper: list[threading.Thread] = []
_sweeper_lock = threading.Lock()


def _start_sweeper() -> None:
    """A daemon thread that ends, from their bytes, the calls that waited ``MAX_WAIT`` for their caller's
    ``.json()`` while no other raw call came to do it (a last call, then a pause): every call ends within
    about ``MAX_WAIT + SWEEP_EVERY`` of its answer. It exits once nothing is left open, and is started again by the next
    call left open."""
    with _sweeper_lock:
        if _sweeper and _sweeper[0].is_alive():
            return
        _sweeper.clear()
        thread = threading.Thread(target=_sweep_while_open, name="otel-llm-sweeper", daemon=True)
        _sweeper.append(thread)
        thread.start()


def _sweep_while_open() -> None:
    try:
        while True:
            time.sleep(SWEEP_EVERY)
            try:
                sweep()
            except Exception:
                log.debug("otel_llm: ending waiting calls failed", exc_info=True)
            with _sweeper_lock:
                if not PENDING:
                    _sweeper.clear()  # the next call left open starts a new one
                    return
    except BaseException:  # interpreter shutdown: the exit flush ends what is left
        with _sweeper_lock:
            _sweeper.clear()


def _claim(key: int, ref: _Pending | None = None) -> _Pending | None:
    """Take a call out of ``PENDING`` to end it: the one caller that gets it ends it."""
    got = PENDING.pop(key, None)
    if got is None or ref is None or got is ref:
        return got
    PENDING.setdefault(key, got)  # another response's entry under a reused id: put back
    return None


def _end_from_bytes(ref: _Pending) -> None:
    inv = ref.inv
    try:
        parse_read_body(inv, ref.raw)
        inv.end()
    except Exception:
        log.debug("otel_llm: ending a call failed", exc_info=True)


def _freed(ref: Any) -> None:
    """The response was freed before its ``.json()`` was called: end its call from the bytes."""
    try:
        if _claim(ref.key, ref) is not None:
            _end_from_bytes(ref)
    except Exception:
        pass


def sweep() -> None:
    """End, from their bytes and oldest first, the open calls that waited ``MAX_WAIT`` or are too many.
    Runs at each new raw call while some are open; looks at the oldest one only unless it is due."""
    now = time.perf_counter()
    for _ in range(MAX_PENDING + 8):
        try:
            key = next(iter(PENDING))
        except (StopIteration, RuntimeError):  # none left, or changed by another thread meanwhile
            return
        ref = PENDING.get(key)
        if ref is None:
            continue
        if len(PENDING) <= MAX_PENDING and now - (ref.inv.done_at or 0.0) < MAX_WAIT:
            return
        if _claim(key, ref) is not None:
            _end_from_bytes(ref)


def flush_pending() -> None:
    """End every open call from its bytes (at exit, and when instrumentation is removed)."""
    while PENDING:
        try:
            key = next(iter(PENDING))
        except (StopIteration, RuntimeError):
            continue
        ref = _claim(key)
        if ref is not None:
            _end_from_bytes(ref)


def json_factory(recorder: Recorder, module: Any) -> Any:
    """``Response.json`` of httpx, httpx2 and requests: the caller's own parse of a body whose call is open
    ends that call, from the object the caller gets (returned as is, never altered). On any other
    response it costs one dict lookup, none while no call is open."""

    def json(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not PENDING:
            return wrapped(*args, **kwargs)
        ref = PENDING.pop(id(instance), None)  # taken: this .json() ends the call (a second one finds none)
        if ref is None:
            return wrapped(*args, **kwargs)
        if ref() is not instance:  # not expected while the response is alive: not ours after all
            PENDING.setdefault(ref.key, ref)
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException:
            _end_from_bytes(ref)  # not JSON after all (an SSE body, an HTML error page): as the bytes say
            raise
        if args or kwargs:  # parse_float=Decimal and the like: numbers we would not read; the bytes say it
            _end_from_bytes(ref)
            return result
        inv = ref.inv
        try:
            apply_body(inv.route, result, inv.info)
            inv.end()
        except Exception:
            log.debug("otel_llm: ending a call failed", exc_info=True)
        return result

    json.idle = PENDING  # type: ignore[attr-defined]  # none waiting: the plain .json() (see instrumentor._install_plain)
    return json


# --------------------------------------------------------------------------------------------------
# The caller's own ``json=`` object of a request, so that the bytes the client encoded from it are not
# decoded again. The client's JSON encoder (httpx/httpx2) or body preparation (requests) notes, per
# thread, the body it made and the object it made it from; the send that follows finds its own body
# there by identity. Anything else (another body, a body replaced since, content capture on) takes the
# bytes.

_BUILT = threading.local()


def note_json(body: Any, obj: Any) -> None:
    """The client just encoded ``obj`` into ``body`` (its byte stream or bytes) for a request of this thread."""
    _BUILT.last = (body, obj)


def sent_json(body: Any) -> Any:
    """The object the caller gave as ``json=`` for the request whose body is ``body``, or None. Only a plain
    dict with a plain string model and no tuple values: parsed as the client's JSON of it would be."""
    last = getattr(_BUILT, "last", None)
    if last is None:
        return None
    _BUILT.last = None  # holds no caller's object past its send
    obj = last[1]
    if last[0] is not body or type(obj) is not dict or type(obj.get("model", "")) is not str:
        return None
    if tuple in map(type, obj.values()):  # a tuple is a JSON list in the bytes, not a list to the parser
        return None
    return obj


def encode_json_factory(recorder: Recorder, module: Any) -> Any:
    """httpx's and httpx2's ``_content.encode_json(json)`` -> (headers, ByteStream): every ``json=`` request."""
    if recorder.capture or not recorder.config.http:  # content capture reads the request from its bytes
        return lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs)

    def encode_json(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            note_json(result[1], args[0] if args else kwargs["json"])
        except Exception:
            pass
        return result

    return encode_json
