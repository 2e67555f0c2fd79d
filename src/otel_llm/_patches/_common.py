"""What every client patch shares: the call in progress, URL scrubbing, and starting/observing a call."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context, trace

from .._errors import error_type_of
from .._names import SCOPE_NAME
from .._parsers.headers import HeaderInfo, parse_header_list, parse_header_store, parse_headers
from .._parsers.request import parse_request, parse_request_bytes
from .._parsers.response import parse_body_bytes
from .._parsers.routes import GEMINI, Route, gemini_model_from_path
from .._parsers.sse import stream_parser
from .._urls import URL_CACHE_SIZE, scrub_url

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

__all__ = [
    "CO_ASYNC",
    "CO_COROUTINE",
    "URL_CACHE_SIZE",
    "signature_defaults",
    "CURRENT",
    "IN_HTTP",
    "attach",
    "call_failed",
    "detach",
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

IN_HTTP: ContextVar[bool] = ContextVar("otel_llm_in_http", default=False)
"""One of our HTTP layers is sending this request now, for its own call or an SDK call's: set by the outermost
HTTP layer around the send it wraps. A patched client under it (an httpx transport that sends through aiohttp
or ``requests``, as ``httpx-aiohttp``, LiteLLM and the openai SDK's ``DefaultAioHttpClient`` do; a redirect hop
``requests`` sends through ``Session.send`` again) calls its original untouched: one call, one record."""


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
    instrumentation) that this HTTP request belongs to, or None. A span of ours is never foreign."""
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
        scope = getattr(span, "instrumentation_scope", None)
        if scope is not None and getattr(scope, "name", None) == SCOPE_NAME:
            return None  # our own call's span: this request is not part of someone else's call
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
            parser = stream_parser(inv.route, inv.info, inv.recorder.capture)
            parser.feed(raw)
            parser.flush()
    except Exception:
        log.debug("otel_llm: parsing a response body failed", exc_info=True)


def is_sse(inv: Invocation, content_type: str) -> bool:
    if "event-stream" in content_type:
        return True
    if "json" in content_type:
        return "ndjson" in content_type  # Ollama's stream: one JSON object per line

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
_dict_set = dict.__setitem__


def attach(inv: Invocation) -> object:
    """Make the call's span the current span (its token for ``detach``): HTTP spans and logs of the call nest
    under it, and the trace context sent on is its own."""
    var = _VAR
    if var is not None and context._RUNTIME_CONTEXT is _RUNTIME:
        values = _CONTEXT(var.get())  # one copy (Context is a dict whose own item setter refuses)
        _dict_set(values, _SPAN_KEY, inv.span)
        return var.set(values)
    return context.attach(trace.set_span_in_context(inv.span))


def detach(token: object) -> None:
    try:
        if type(token) is Token and token.var is _VAR:
            _VAR.reset(token)
        else:
            context.detach(token)  # type: ignore[arg-type]
    except Exception:
        pass


# a code object's flags (``inspect`` is not imported for them)
_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08
CO_COROUTINE = 0x80
CO_ASYNC = 0x80 | 0x100 | 0x200  # coroutine, iterable coroutine, async generator


def signature_defaults(
    original: Any, positional: tuple[str, ...], keyword_only: tuple[str, ...], coroutine: bool = False
) -> tuple | None:
    """The keyword-only parameters' defaults of ``original`` if its parameters are exactly ``positional`` (no
    default, positional or keyword) then ``keyword_only`` (each with a default), nothing else, and it is a
    coroutine function exactly when ``coroutine``; else None. A layer with the original's own signature (see
    ``instrumentor._install_plain``) takes its arguments as the original does: no
    ``*args``/``**kwargs`` made and unpacked again on every call (~4,000 instructions a layer, counted in
    isolation, against ~350)."""
    code = getattr(original, "__code__", None)
    if code is None or code.co_flags & (_CO_VARARGS | _CO_VARKEYWORDS) or code.co_posonlyargcount:
        return None
    if (code.co_flags & CO_ASYNC) != (CO_COROUTINE if coroutine else 0):
        return None
    names = positional + keyword_only
    if code.co_argcount != len(positional) or code.co_kwonlyargcount != len(keyword_only):
        return None
    if code.co_varnames[: len(names)] != names or original.__defaults__:
        return None
    given = original.__kwdefaults__ or {}
    if len(given) != len(keyword_only) or any(k not in given for k in keyword_only):
        return None
    return tuple(given[k] for k in keyword_only)
