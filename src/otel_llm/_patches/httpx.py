"""httpx and httpx2 (the openai 3.x and anthropic 2.x transport): ``Client.send`` and ``AsyncClient.send``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._stream import Tap, tap_httpx_classes
from ._common import (
    CURRENT,
    IN_HTTP,
    attach,
    call_failed,
    detach,
    is_sse,
    observe_httpx_status,
    parse_read_body,
    signature_defaults,
    start_http_call,
)

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

log = logging.getLogger("otel_llm")

__all__ = ["send_factory", "async_send_factory", "targets"]


def targets(module_name: str) -> list[tuple[str, str, Any]]:
    return [
        (module_name, "Client.send", send_factory),
        (module_name, "AsyncClient.send", async_send_factory),
    ]


def _begin(recorder: Recorder, request: Any) -> Invocation | None:
    """The call a POST outside any SDK call starts, when its path is an LLM route; else None."""
    try:
        raw_path = request.url.raw_path
        route = recorder.router.match_bytes(raw_path)
        return _start(recorder, route, request, raw_path) if route is not None else None
    except Exception:
        log.debug("otel_llm: starting an httpx call failed", exc_info=True)
        return None


def _start(recorder: Recorder, route: Any, request: Any, raw_path: bytes) -> Invocation:
    url = request.url
    path = raw_path.decode("ascii", "replace")
    try:
        raw = request.content  # bytes (a json= or content= body) unless a stream the caller has not read
    except Exception:
        raw = None
    scheme, host, port, userinfo = _url_parts(url)
    return start_http_call(recorder, route, scheme, host, port, path, raw_body=raw, userinfo=userinfo)


def _url_parts(url: Any) -> tuple[str, str, int | None, bool]:
    """(scheme, host, port, has userinfo) as httpx's properties give them, from the URL's parsed form read once:
    ~2,700 instructions, the four properties ~5,600 (counted in isolation). (``raw_path`` stays the property: its
    own work is most of its cost.)"""
    try:
        ref = url._uri_reference
        scheme, host, port, userinfo = ref.scheme, ref.host, ref.port, ref.userinfo
    except AttributeError:  # an httpx whose URL keeps another form: its properties
        return url.scheme, url.host, url.port, bool(url.userinfo)
    if "xn--" in host:  # an IDNA host: the property decodes it (as each httpx version does)
        host = url.host
    return scheme, host, port, bool(userinfo)


def _observe(inv: Invocation, response: Any, tap_cls: type, own: bool) -> None:
    """Status, headers and body of one response. Ends an own call unless a tap now owns its end."""
    try:
        headers = response.headers
        info = observe_httpx_status(inv, response.status_code, headers)
        if inv.from_result and response.status_code < 400:
            return  # the openai SDK layer reads what it needs from the SDK's own parsed result
        content = getattr(response, "_content", None)
        if content is not None or response.is_stream_consumed:
            inv.from_chunks = False  # already read whole: its bytes say it all, now (and an own call ends here)
            parse_read_body(inv, content)
        elif response.status_code < 400 or own:
            tap = Tap(inv, is_sse(inv, info.content_type), True)
            response.stream = tap_cls(response.stream, tap, info.content_encoding)
            return
    except Exception:
        log.debug("otel_llm: reading an httpx response failed", exc_info=True)
    if own and not inv.owned_by_stream:
        inv.end()


def _not_a_post(args: Any, kwargs: Any) -> bool:
    """Not an LLM call (all but an SDK's ``responses.retrieve`` are POSTs; that one runs inside an SDK call):
    the plain ``send`` (see ``instrumentor._install_plain``)."""
    request = args[0] if args else kwargs.get("request")
    return getattr(request, "method", None) != "POST" and CURRENT.get() is None


def send_factory(recorder: Recorder, module: Any) -> Any:
    sync_tap, _ = tap_httpx_classes(module)
    enabled = recorder.config.http

    def send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _not_a_post(args, kwargs):
            return wrapped(*args, **kwargs)
        return post(wrapped, instance, args, kwargs)

    def post(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if IN_HTTP.get():  # a transport of another patched client sends through this one: that one records
            return wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        sdk = CURRENT.get()
        if sdk is not None:
            sdk.attempts += 1
            held = IN_HTTP.set(True)
            try:
                response = wrapped(*args, **kwargs)
            finally:
                IN_HTTP.reset(held)
            _observe(sdk, response, sync_tap, own=False)
            return response
        inv = _begin(recorder, request) if enabled else None
        if inv is None:
            return wrapped(*args, **kwargs)
        token = attach(inv)
        held = IN_HTTP.set(True)
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            call_failed(inv, exc)
            raise
        finally:
            IN_HTTP.reset(held)
            detach(token)
        _observe(inv, response, sync_tap, own=not inv.foreign)
        return response

    def exact(original: Any) -> Any:
        """``send`` with httpx's own signature (see ``signature_defaults``), or None: an attempt of an SDK call is
        read here, any other POST goes through ``post``, the rest straight to httpx."""
        defaults = signature_defaults(original, _SEND_POSITIONAL, _SEND_KEYWORD)
        if defaults is None:
            return None
        d_stream, d_auth, d_follow = defaults

        def send(
            self: Any, request: Any, *, stream: Any = d_stream, auth: Any = d_auth, follow_redirects: Any = d_follow
        ) -> Any:
            sdk = CURRENT.get()
            if sdk is None or IN_HTTP.get():
                # a POST outside an SDK call: ``post``'s work, inline (26 opcodes and a keyword-unpacking call fewer)
                if sdk is not None or not enabled or getattr(request, "method", None) != "POST" or IN_HTTP.get():
                    return original(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)
                inv = _begin(recorder, request)
                if inv is None:
                    return original(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)
                token = attach(inv)
                held = IN_HTTP.set(True)
                try:
                    response = original(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)
                except BaseException as exc:
                    call_failed(inv, exc)
                    raise
                finally:
                    IN_HTTP.reset(held)
                    detach(token)
                _observe(inv, response, sync_tap, own=not inv.foreign)
                return response
            sdk.attempts += 1
            held = IN_HTTP.set(True)
            try:
                response = original(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)
            finally:
                IN_HTTP.reset(held)
            _observe(sdk, response, sync_tap, own=False)
            return response

        return send

    send.passes = _not_a_post  # type: ignore[attr-defined]
    send.after_passes = post  # type: ignore[attr-defined]
    send.exact = exact  # type: ignore[attr-defined]
    return send


def async_send_factory(recorder: Recorder, module: Any) -> Any:
    _, async_tap = tap_httpx_classes(module)
    enabled = recorder.config.http

    async def send(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if _not_a_post(args, kwargs) or IN_HTTP.get():  # not an LLM call; or another patched client's transport
            return await wrapped(*args, **kwargs)
        request = args[0] if args else kwargs.get("request")
        sdk = CURRENT.get()
        if sdk is not None:
            sdk.attempts += 1
            held = IN_HTTP.set(True)
            try:
                response = await wrapped(*args, **kwargs)
            finally:
                IN_HTTP.reset(held)
            _observe(sdk, response, async_tap, own=False)
            return response
        inv = _begin(recorder, request) if enabled else None
        if inv is None:
            return await wrapped(*args, **kwargs)
        token = attach(inv)
        held = IN_HTTP.set(True)
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            call_failed(inv, exc)
            raise
        finally:
            IN_HTTP.reset(held)
            detach(token)
        _observe(inv, response, async_tap, own=not inv.foreign)
        return response

    def exact(original: Any) -> Any:
        """The async ``send`` with httpx's own signature, or None (see the sync one)."""
        defaults = signature_defaults(original, _SEND_POSITIONAL, _SEND_KEYWORD, coroutine=True)
        if defaults is None:
            return None
        d_stream, d_auth, d_follow = defaults

        async def send(
            self: Any, request: Any, *, stream: Any = d_stream, auth: Any = d_auth, follow_redirects: Any = d_follow
        ) -> Any:
            sdk = CURRENT.get()
            if sdk is None or IN_HTTP.get():
                # a POST outside an SDK call (the generic layer's work, inline)
                if sdk is not None or not enabled or getattr(request, "method", None) != "POST" or IN_HTTP.get():
                    return await original(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)
                inv = _begin(recorder, request)
                if inv is None:
                    return await original(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)
                token = attach(inv)
                held = IN_HTTP.set(True)
                try:
                    response = await original(
                        self, request, stream=stream, auth=auth, follow_redirects=follow_redirects
                    )
                except BaseException as exc:
                    call_failed(inv, exc)
                    raise
                finally:
                    IN_HTTP.reset(held)
                    detach(token)
                _observe(inv, response, async_tap, own=not inv.foreign)
                return response
            sdk.attempts += 1
            held = IN_HTTP.set(True)
            try:
                response = await original(self, request, stream=stream, auth=auth, follow_redirects=follow_redirects)
            finally:
                IN_HTTP.reset(held)
            _observe(sdk, response, async_tap, own=False)
            return response

        return send

    send.exact = exact  # type: ignore[attr-defined]
    return send


_SEND_POSITIONAL = ("self", "request")
_SEND_KEYWORD = ("stream", "auth", "follow_redirects")
