"""``requests.Session.send``: every ``requests.get/post`` and session call passes through it."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from .._stream import RequestsRawTap, Tap
from .._urls import CACHED_URL_MAX, has_userinfo
from ._common import (
    CURRENT,
    IN_HTTP,
    URL_CACHE_SIZE,
    attach,
    call_failed,
    detach,
    is_sse,
    observe_requests_status,
    parse_read_body,
    path_of,
    split_url,
    start_http_call,
)

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

log = logging.getLogger("otel_llm")

__all__ = ["send_factory", "targets"]


def targets(module_name: str) -> list[tuple[str, str, Any]]:
    return [
        (module_name, "Session.send", send_factory),
    ]


def _start(recorder: Recorder, parts: tuple[Any, str, str, int | None, str, bool], request: Any) -> Invocation:
    route, scheme, host, port, path, userinfo = parts
    body = request.body  # the bytes requests made of json= or data= (a str or a file-like object left as is)
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    elif not isinstance(body, (bytes, bytearray)):
        body = None
    return start_http_call(recorder, route, scheme, host, port, path, raw_body=body, userinfo=userinfo)


def _observe(inv: Invocation, response: Any, streamed: bool) -> None:
    try:
        info = observe_requests_status(inv, response.status_code, response.headers)
        if not streamed:
            content = response._content
            parse_read_body(inv, content if isinstance(content, bytes) else None)
        else:
            tap = Tap(inv, is_sse(inv, info.content_type))
            response.raw = RequestsRawTap(response.raw, tap)
            return
    except Exception:
        log.debug("otel_llm: reading a requests response failed", exc_info=True)
    if not inv.owned_by_stream and not inv.foreign:
        inv.end()


def _not_a_post(args: Any, kwargs: Any) -> bool:
    """Not an LLM call (every one we know is a POST): the plain ``send`` (see ``instrumentor._install_plain``)."""
    request = args[0] if args else kwargs.get("request")
    return getattr(request, "method", None) != "POST"


def send_factory(recorder: Recorder, module: Any) -> Any:
    enabled = recorder.config.http
    router = recorder.router

    def classify_url(url: str) -> tuple[Any, str, str, int | None, str, bool] | None:
        """(route, scheme, host, port, path, has userinfo) of a request URL, or None: not an LLM API path."""
        route = router.match(path_of(url))
        return None if route is None else (route, *split_url(url), has_userinfo(url))

    cached = functools.lru_cache(maxsize=URL_CACHE_SIZE)(classify_url)

    def classify(url: str) -> tuple[Any, str, str, int | None, str, bool] | None:
        # remembered per URL, except a huge one: the cache's memory stays bounded
        return cached(url) if len(url) <= CACHED_URL_MAX else classify_url(url)

    def send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _not_a_post(args, kwargs):
            return wrapped(*args, **kwargs)  # not an LLM call
        return post(wrapped, instance, args, kwargs)

    def post(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not enabled or IN_HTTP.get() or CURRENT.get() is not None:
            return wrapped(*args, **kwargs)  # another layer of ours records this request (or its redirect hop)
        request = args[0] if args else kwargs.get("request")
        try:
            parts = classify(request.url)
            inv = _start(recorder, parts, request) if parts is not None else None
        except Exception:
            log.debug("otel_llm: starting a requests call failed", exc_info=True)
            inv = None
        if inv is None:
            return wrapped(*args, **kwargs)
        token = attach(inv)
        held = IN_HTTP.set(True)  # requests sends each redirect hop through Session.send again: the same call
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            call_failed(inv, exc)
            raise
        finally:
            IN_HTTP.reset(held)
            detach(token)
        _observe(inv, response, bool(kwargs.get("stream")))
        return response

    send.passes = _not_a_post  # type: ignore[attr-defined]
    send.after_passes = post  # type: ignore[attr-defined]
    return send
