"""``aiohttp.ClientSession._request``: the one seam every ``session.post/get/request`` goes through."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._stream import AiohttpContentTap, Tap
from ._common import CURRENT, IN_HTTP, attach, call_failed, detach, is_sse, observe_status, path_of, start_http_call

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

log = logging.getLogger("otel_llm")

__all__ = ["request_factory", "targets"]


def targets(module_name: str) -> list[tuple[str, str, Any]]:
    return [(module_name, "ClientSession._request", request_factory)]


def _start(recorder: Recorder, instance: Any, method: str, url: Any, kwargs: dict) -> Invocation | None:
    from yarl import URL

    if isinstance(url, str):
        if "://" in url and recorder.router.match(path_of(url)) is None:
            return None  # the common case, decided without parsing the URL
        full = URL(url)
    elif isinstance(url, URL):
        full = url
    else:
        return None
    if not full.is_absolute():
        base = getattr(instance, "_base_url", None)
        if base is None:
            return None
        full = base.join(full)
    path = full.raw_path + ("?" + full.raw_query_string if full.raw_query_string else "")
    route = recorder.router.match(path)
    if route is None:
        return None
    params = kwargs.get("params")
    if params:  # a ?key=... given as params never reaches telemetry: scrubbed like the URL's own query
        from urllib.parse import urlencode

        try:
            extra = urlencode(list(params.items()) if hasattr(params, "items") else list(params))
            path += ("&" if "?" in path else "?") + extra
        except Exception:
            pass
    data = kwargs.get("data")
    raw = bytes(data) if isinstance(data, (bytes, bytearray)) else (data.encode() if isinstance(data, str) else None)
    return start_http_call(
        recorder,
        route,
        full.scheme,
        full.host or "",
        full.explicit_port if full.explicit_port is not None else None,
        path,
        raw_body=raw,
        json_body=kwargs.get("json"),
        userinfo=full.raw_user is not None or full.raw_password is not None,
    )


def _raised_for_status(inv: Invocation, exc: BaseException) -> bool:
    """A ``raise_for_status`` session raised for the answer's status: end the call as that status (with
    its rate-limit headers), not as the exception's class name. The body is gone; False if not that."""
    status = getattr(exc, "status", None)
    if not (isinstance(status, int) and status >= 400 and hasattr(exc, "request_info")):
        return False
    try:
        headers = getattr(exc, "headers", None)
        observe_status(inv, status, headers.items() if headers is not None else ())
    except Exception:
        inv.status_code = status
    inv.end()
    return True


def request_factory(recorder: Recorder, module: Any) -> Any:
    enabled = recorder.config.http

    async def request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if not enabled or IN_HTTP.get() or CURRENT.get() is not None:
            return await wrapped(*args, **kwargs)  # the transport of a patched client (httpx-aiohttp): it records
        try:
            method = args[0] if args else kwargs.get("method")
            url = args[1] if len(args) > 1 else kwargs.get("str_or_url")
            inv = (
                _start(recorder, instance, method, url, kwargs)
                if isinstance(method, str) and method.upper() == "POST"
                else None
            )
        except Exception:
            log.debug("otel_llm: starting an aiohttp call failed", exc_info=True)
            inv = None
        if inv is None:
            return await wrapped(*args, **kwargs)
        token = attach(inv)
        held = IN_HTTP.set(True)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            if not _raised_for_status(inv, exc):
                call_failed(inv, exc)
            raise
        finally:
            IN_HTTP.reset(held)
            detach(token)
        try:
            observe_status(inv, response.status, response.headers.items())
            tap = Tap(inv, is_sse(inv, response.headers.get("Content-Type", "")))
            response.content = AiohttpContentTap(response.content, tap)
        except Exception:
            log.debug("otel_llm: reading an aiohttp response failed", exc_info=True)
            if not inv.owned_by_stream:
                inv.end()
        return response

    return request
