"""``requests.Session.send``: every ``requests.get/post`` and session call passes through it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .._stream import RequestsRawTap, Tap
from ._common import (
    CURRENT,
    attach,
    call_failed,
    detach,
    is_sse,
    observe_status,
    parse_read_body,
    path_of,
    start_http_call,
)

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

log = logging.getLogger("otel_llm")

__all__ = ["send_factory", "targets"]


def targets(module_name: str) -> list[tuple[str, str, Any]]:
    return [(module_name, "Session.send", send_factory)]


def _start(recorder: Recorder, route: Any, request: Any) -> Invocation:
    parts = urlsplit(request.url)
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8", "replace")
    elif not isinstance(body, (bytes, bytearray)):
        body = None
    path = parts.path + ("?" + parts.query if parts.query else "")
    return start_http_call(recorder, route, parts.scheme, parts.hostname or "", parts.port, path, raw_body=body)


def _observe(inv: Invocation, response: Any, streamed: bool) -> None:
    try:
        observe_status(inv, response.status_code, response.headers.items())
        if not streamed:
            parse_read_body(inv, response._content if isinstance(response._content, bytes) else None)
        else:
            tap = Tap(inv, is_sse(inv, response.headers.get("content-type", "")))
            response.raw = RequestsRawTap(response.raw, tap)
            return
    except Exception:
        log.debug("otel_llm: reading a requests response failed", exc_info=True)
    if not inv.owned_by_stream and not inv.foreign:
        inv.end()


def send_factory(recorder: Recorder, module: Any) -> Any:
    enabled = recorder.config.http
    router = recorder.router

    def send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not enabled or CURRENT.get() is not None:
            return wrapped(*args, **kwargs)
        try:
            request = args[0] if args else kwargs["request"]
            route = router.match(path_of(request.url)) if request.method == "POST" else None
            inv = _start(recorder, route, request) if route is not None else None
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

    return send
