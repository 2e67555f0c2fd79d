"""``requests.Session.send``: every ``requests.get/post`` and session call passes through it."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from .._stream import RequestsRawTap, Tap
from .._urls import CACHED_URL_MAX, has_userinfo
from ._common import (
    CURRENT,
    URL_CACHE_SIZE,
    attach,
    call_failed,
    defer,
    detach,
    is_sse,
    json_factory,
    note_json,
    observe_requests_status,
    parse_read_body,
    path_of,
    sent_json,
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
        ("requests.models", "Response.json", json_factory),
        ("requests.models", "PreparedRequest.prepare_body", prepare_body_factory),
    ]


def prepare_body_factory(recorder: Recorder, module: Any) -> Any:
    """``PreparedRequest.prepare_body(data, files, json)``: notes the caller's ``json=`` object beside the body
    made from it (see ``_common.sent_json``)."""
    if recorder.capture or not recorder.config.http:  # content capture reads the request from its bytes
        return lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs)

    def prepare_body(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        result = wrapped(*args, **kwargs)
        try:
            obj = args[2] if len(args) > 2 else kwargs.get("json")
            if obj is not None:
                data = args[0] if args else kwargs.get("data")
                files = args[1] if len(args) > 1 else kwargs.get("files")
                if not data and not files:  # as requests decides: the body was made from json=
                    note_json(instance.body, obj)
        except Exception:
            pass
        return result

    return prepare_body


def _start(recorder: Recorder, parts: tuple[Any, str, str, int | None, str, bool], request: Any) -> Invocation:
    route, scheme, host, port, path, userinfo = parts
    body = request.body
    obj = sent_json(body)  # the caller's json= object, when this body was made from one
    if obj is not None:
        return start_http_call(recorder, route, scheme, host, port, path, json_body=obj, userinfo=userinfo)
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
            if not isinstance(content, bytes):
                content = None
            elif (
                content
                and not inv.foreign
                and not inv.recorder.capture
                and "json" in info.content_type
                and defer(inv, response, content)
            ):
                return  # ended by the caller's own response.json(), or from these bytes (see _common.defer)
            parse_read_body(inv, content)
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
        if not enabled or CURRENT.get() is not None:
            return wrapped(*args, **kwargs)  # inside an LLM call already
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
        current = CURRENT.set(inv)  # requests sends each redirect hop through Session.send again: same call
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            call_failed(inv, exc)
            raise
        finally:
            CURRENT.reset(current)
            detach(token)
        _observe(inv, response, bool(kwargs.get("stream")))
        return response

    send.passes = _not_a_post  # type: ignore[attr-defined]
    send.after_passes = post  # type: ignore[attr-defined]
    return send
