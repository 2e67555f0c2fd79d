"""openai SDK: ``SyncAPIClient.request`` / ``AsyncAPIClient.request``.

Every resource method (chat.completions.create/parse, completions, embeddings, responses, their
``with_raw_response`` and ``with_streaming_response`` forms) goes through ``request``, once per
logical call, around the SDK's own retry loop. Here the call's span starts and ends; the HTTP
patch underneath (httpx2 for openai 3.x, httpx before) sees each attempt's status, headers and
body bytes and fills the same call in (see ``_common.CURRENT``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from time import perf_counter as _perf_counter
from typing import TYPE_CHECKING, Any

import wrapt

from .._parsers.request import parse_fetch, parse_request
from .._parsers.response import apply_openai_later_chunk, apply_openai_object
from .._parsers.routes import (
    FETCH,
    OPENAI_CHAT,
    OPENAI_COMPLETIONS,
    OPENAI_EMBEDDINGS,
    OPENAI_RESPONSES,
    fetched_response_id,
)
from .._stream import UNASKED_USAGE
from ._common import CURRENT, attach, detach, signature_defaults

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

log = logging.getLogger("otel_llm")

__all__ = ["request_factory", "async_request_factory", "targets"]

_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


def targets(module_name: str) -> list[tuple[str, str, Any]]:
    return [
        (module_name, "SyncAPIClient.request", request_factory),
        (module_name, "AsyncAPIClient.request", async_request_factory),
    ]


STREAM_MANAGER_MODULES = ("openai.lib.streaming.responses._responses", "openai.lib.streaming.chat._completions")


def stream_manager_targets() -> list[tuple[str, str, Any]]:
    """``with client.responses.stream(...)`` / ``chat.completions.stream(...)``: the managers' exit sees an
    exception of the caller's code (which the stream inside never does)."""
    responses, chat = STREAM_MANAGER_MODULES
    return [
        (responses, "ResponseStreamManager.__exit__", manager_exit_factory),
        (responses, "AsyncResponseStreamManager.__aexit__", manager_exit_factory),
        (chat, "ChatCompletionStreamManager.__exit__", manager_exit_factory),
        (chat, "AsyncChatCompletionStreamManager.__aexit__", manager_exit_factory),
    ]


def manager_exit_factory(recorder: Recorder, module: Any) -> Any:
    def exit_(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if len(args) > 1 and args[1] is not None:  # leaving the with-block on an exception
            try:
                for key, value in vars(instance).items():  # the manager's private __stream
                    if key.endswith("__stream"):
                        inv = getattr(getattr(value, "_raw_stream", None), "_self_inv", None)
                        if inv is not None:
                            _caller_failed(inv, args[1])
            except Exception:
                log.debug("otel_llm: reading a stream manager failed", exc_info=True)
        return wrapped(*args, **kwargs)  # __aexit__: its coroutine, awaited by the caller

    return exit_


def _begin(
    recorder: Recorder, instance: Any, cast_to: Any, options: Any, stream: Any
) -> tuple[Invocation, Any, tuple[dict, Any, Any] | None] | None:
    """Start the call, and add ``stream_options.include_usage`` when the caller did not set it: (the call, the
    options to send, the body swap) or None (not a call of ours).

    Every form of the call gets it (``create``, ``with_raw_response``, ``with_streaming_response``): the usage
    event it makes the server send is taken out again, from the body's bytes before the SDK reads them
    (``_stream.UsageCut``, which reads its usage too), or, when the bytes cannot be cut (a compressed body, the
    event's line split over two reads), from the SDK's chunks (``_SdkStream``), so the caller gets what it would
    have got without us. A server seen sending
    usage unasked (``_stream.UNASKED_USAGE``) does not get it: its usage event is its own and reaches the
    caller."""
    if options is None:
        return None
    if options.method != "post":
        return _begin_fetch(recorder, instance, options, stream) if options.method == "get" else None
    route = recorder.router.match(options.url)
    if route is None:
        return None
    body = options.json_data
    sent = body
    extra = options.extra_json  # ``extra_body``: sent merged into the body, so read as part of it
    if isinstance(extra, dict) and extra and isinstance(body, dict):  # (NotGiven's truth is a Python call)
        sent = {**body, **extra}
    request = parse_request(route, sent)
    host, port = _server(instance)
    hide_usage = False
    swap = None
    config = recorder.config
    if (
        request.stream
        and not request.include_usage
        and route.api in (OPENAI_CHAT, OPENAI_COMPLETIONS)
        and config.include_usage
        and isinstance(body, dict)
        and "stream_options" not in body
        and host not in config.include_usage_skip_hosts
        and UNASKED_USAGE.get((host, port)) is not recorder
    ):
        new_body = dict(body)
        new_body["stream_options"] = {"include_usage": True}
        fields = getattr(options, "__dict__", None)
        if type(fields) is dict and fields.get("json_data") is body:
            # the body is swapped in the options object for the length of the call (see request_factory): the
            # SDK copies the options it is given before it reads them, and this object is the one its own
            # ``post`` made for this call (a copy of the pydantic model was ~20,000 instructions a stream)
            swap = (fields, new_body, body)
        else:
            options = copy.copy(options)
            options.json_data = new_body
        hide_usage = True
    inv = recorder.start(route, request, host, port, "sdk", body=sent if recorder.capture else None)
    inv.hide_usage = hide_usage
    if not recorder.capture and route.api in _OBJECT_APIS:
        headers = options.headers  # (_raw_response's common case in this frame)
        if not (_RAW_RESPONSE_HEADER in headers if type(headers) is dict else _raw_response(options)):
            if not request.stream:
                # read the SDK's parsed result instead of the body (see _after)
                known = _model_classes.get(cast_to)
                inv.from_result = known if known is not None else _is_model_class(cast_to)
            elif stream is True and route.api in _CHUNK_APIS:
                inv.from_chunks = True  # read the SDK's parsed chunks instead of the SSE events (see _SdkStream)
    return inv, options, swap


def _begin_fetch(recorder: Recorder, instance: Any, options: Any, stream: Any) -> tuple[Invocation, Any, None] | None:
    """``responses.retrieve``: a stored response fetched by id (``fetch_response``), streamed or not."""
    url = options.url
    if not isinstance(url, str) or "/responses/" not in url:
        return None
    rid = fetched_response_id(url)
    if rid is None:
        return None
    params = options.params
    stream = stream is True or (isinstance(params, dict) and params.get("stream") is True)
    host, port = _server(instance)
    inv = recorder.start(FETCH, parse_fetch(rid, params, stream), host, port, "sdk")
    return inv, options, None


_SERVERS: dict[int, tuple[Any, str, int | None]] = {}  # id(a client's base URL) -> (that URL, host, port)


def _server(instance: Any) -> tuple[str, int | None]:
    """(host, port) of an SDK client's base URL, remembered per URL object. The client's ``base_url`` property
    returns its ``_base_url`` (openai 1.x and 2.x), in 3.x its ``_configured_base_url`` through an import inside
    the property (read directly: ~12,000 instructions a call less), and the URL's ``host`` is a property too: those
    ran on every call."""
    url = getattr(instance, "_configured_base_url", None)  # openai 3.x: behind two properties and an import
    if url is None:
        url = getattr(instance, "_base_url", None)
        if url is None:
            url = instance.base_url
    hit = _SERVERS.get(id(url))
    if hit is not None and hit[0] is url:  # the same object (held by the entry, so its id is not reused)
        return hit[1], hit[2]
    host, port = url.host, url.port
    if len(_SERVERS) >= 64:  # clients made and dropped by the hundred: start over, never grow
        _SERVERS.clear()
    _SERVERS[id(url)] = (url, host, port)
    return host, port


_OBJECT_APIS = (OPENAI_CHAT, OPENAI_COMPLETIONS, OPENAI_EMBEDDINGS, OPENAI_RESPONSES)
_CHUNK_APIS = (OPENAI_CHAT, OPENAI_COMPLETIONS)  # streams whose chunks _observe_chunk reads (Responses: events)
_model_classes: dict[Any, bool] = {}


def _is_model_class(cast_to: Any) -> bool:
    """True if the SDK will hand back an instance of this pydantic model (v1 or v2) class."""
    hit = _model_classes.get(cast_to)
    if hit is None:
        try:
            hit = isinstance(cast_to, type) and (hasattr(cast_to, "model_fields") or hasattr(cast_to, "__fields__"))
        except Exception:
            hit = False
        if len(_model_classes) < 256:
            try:
                _model_classes[cast_to] = hit
            except TypeError:  # unhashable
                pass
    return hit


# the SDK's "no value" markers (falsy, each with a ``__bool__`` in Python): no headers
_NO_HEADERS = frozenset(("NotGiven", "Omit"))


def _raw_response(options: Any) -> bool:
    headers = options.headers
    if type(headers) is dict:  # the common case
        return _RAW_RESPONSE_HEADER in headers
    if headers is None or type(headers).__name__ in _NO_HEADERS:  # (without the marker's truth, a Python call)
        return False
    return bool(headers) and not isinstance(headers, type) and _RAW_RESPONSE_HEADER in headers


def _after(inv: Invocation, result: Any) -> Any:
    try:
        if inv.from_result and not inv.owned_by_stream:
            try:
                apply_openai_object(inv.route, result, inv.info)
            except Exception:
                log.debug("otel_llm: reading an openai result failed", exc_info=True)
            inv.end()
        elif not inv.owned_by_stream:
            inv.end()
        else:  # the body tap ends the call; the SDK's own errors while iterating are seen here
            return _wrap_stream(result, inv)
    except Exception:
        log.debug("otel_llm: finishing an openai call failed", exc_info=True)
    return result


_State = tuple  # (the call, the options to send, the body swap, CURRENT's token, the context's token)


def _enter(recorder: Recorder, instance: Any, cast_to: Any, options: Any, stream: Any) -> _State | None:
    """A call of ours begins (see ``_begin``): it is the current one, its span the current span, and its body swap
    (if any) made; None if it is not ours, or if starting it failed (the call then goes on untouched)."""
    try:
        begun = _begin(recorder, instance, cast_to, options, stream)
    except Exception:
        log.debug("otel_llm: starting an openai call failed", exc_info=True)
        return None
    if begun is None:
        return None
    inv, options, swap = begun
    token = CURRENT.set(inv)
    ctx = attach(inv)
    if swap is not None:  # the body with stream_options, for this call only
        swap[0]["json_data"] = swap[1]
    return inv, options, swap, token, ctx


def _leave(state: _State) -> None:
    """``_enter`` undone, once the SDK's call returned or raised."""
    swap = state[2]
    if swap is not None:
        swap[0]["json_data"] = swap[2]
    detach(state[4])
    CURRENT.reset(state[3])


def _args(args: Any, kwargs: Any) -> tuple[Any, Any, Any]:
    """(cast_to, options, stream) from the SDK's ``request(cast_to, options, ..., stream=...)`` arguments."""
    options = args[1] if len(args) > 1 else kwargs.get("options")
    return args[0] if args else kwargs.get("cast_to"), options, kwargs.get("stream")


def _with_options(args: Any, kwargs: Any, options: Any) -> tuple[Any, Any]:
    """The arguments with another options object (a copy with ``stream_options``, see ``_begin``)."""
    if len(args) > 1:
        return (args[0], options, *args[2:]), kwargs
    return args, dict(kwargs, options=options)


_REQUEST_POSITIONAL = ("self", "cast_to", "options")
_REQUEST_KEYWORD = ("stream", "stream_cls")


def request_factory(recorder: Recorder, module: Any) -> Any:
    def request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if CURRENT.get() is not None:
            return wrapped(*args, **kwargs)
        cast_to, options, stream = _args(args, kwargs)
        state = _enter(recorder, instance, cast_to, options, stream)
        if state is None:
            return wrapped(*args, **kwargs)
        if state[1] is not options:
            args, kwargs = _with_options(args, kwargs, state[1])
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            state[0].fail(exc)
            raise
        finally:
            _leave(state)
        return _after(state[0], result)

    def exact(original: Any) -> Any:
        """``request`` with the SDK's own signature (2.x and 3.x; see ``signature_defaults``), or None."""
        defaults = signature_defaults(original, _REQUEST_POSITIONAL, _REQUEST_KEYWORD)
        if defaults is None:
            return None
        d_stream, d_cls = defaults

        def request(self: Any, cast_to: Any, options: Any, *, stream: Any = d_stream, stream_cls: Any = d_cls) -> Any:
            state = _enter(recorder, self, cast_to, options, stream) if CURRENT.get() is None else None
            if state is None:
                return original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
            try:
                result = original(self, cast_to, state[1], stream=stream, stream_cls=stream_cls)
            except BaseException as exc:
                state[0].fail(exc)
                raise
            finally:
                _leave(state)
            return _after(state[0], result)

        return request

    request.exact = exact  # type: ignore[attr-defined]
    return request


def async_request_factory(recorder: Recorder, module: Any) -> Any:
    async def request(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if CURRENT.get() is not None:
            return await wrapped(*args, **kwargs)
        cast_to, options, stream = _args(args, kwargs)
        state = _enter(recorder, instance, cast_to, options, stream)
        if state is None:
            return await wrapped(*args, **kwargs)
        if state[1] is not options:
            args, kwargs = _with_options(args, kwargs, state[1])
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            state[0].fail(exc)
            raise
        finally:
            _leave(state)
        return _after(state[0], result)

    def exact(original: Any) -> Any:
        """The async ``request`` with the SDK's own signature, or None (see the sync one)."""
        defaults = signature_defaults(original, _REQUEST_POSITIONAL, _REQUEST_KEYWORD, coroutine=True)
        if defaults is None:
            return None
        d_stream, d_cls = defaults

        async def request(
            self: Any, cast_to: Any, options: Any, *, stream: Any = d_stream, stream_cls: Any = d_cls
        ) -> Any:
            state = _enter(recorder, self, cast_to, options, stream) if CURRENT.get() is None else None
            if state is None:
                return await original(self, cast_to, options, stream=stream, stream_cls=stream_cls)
            try:
                result = await original(self, cast_to, state[1], stream=stream, stream_cls=stream_cls)
            except BaseException as exc:
                state[0].fail(exc)
                raise
            finally:
                _leave(state)
            return _after(state[0], result)

        return request

    request.exact = exact  # type: ignore[attr-defined]
    return request


def _stopped(inv: Invocation) -> None:
    """The SDK's stream ended by itself. It closes the body right after the end marker: reading the SDK's
    chunks (no SSE parser to see the marker), that close is the stream completing, not an early close."""
    if inv.from_chunks:
        if inv.pending == "closed_early":
            inv.pending = "completed"
        elif (
            inv.pending == "completed"
            and inv.stamps is None
            and not inv.info.finish_reasons
            and (inv.status_code or 0) < 400
        ):  # the body ran out before a single chunk or the end marker (with chunks, the tap says so)
            inv.error_type = inv.error_type or "stream_truncated"
    inv.release()


def _observe_chunk(inv: Invocation, chunk: Any) -> None:
    """A chunk of an SDK stream read from the SDK's own object (``inv.from_chunks``) that is not a middle one
    (the first, one with a finish reason, usage, an error, several choices): what telemetry needs goes
    through ``apply_openai_object``. Every chunk with choices counts for time to first chunk and per output
    chunk."""
    try:
        if inv.hide_usage:
            _unset_usage(inv, chunk)
        choices = getattr(chunk, "choices", None)
        wanted = inv.ttfc is None or getattr(chunk, "usage", None) is not None
        if not wanted and choices:
            for choice in choices:
                if getattr(choice, "finish_reason", None) is not None:
                    wanted = True
                    break
        if wanted:
            if inv.ttfc is None:
                apply_openai_object(inv.route, chunk, inv.info)
            else:  # a later chunk: a finish chunk, most often, whose other fields the first one gave
                apply_openai_later_chunk(inv.route, chunk, inv.info)
            if inv.info.finish_reasons:  # the usage event is next: cut from the bytes, the SDK never reads it
                _arm(inv)
        if choices:
            inv.chunks_arrived(1)
    except Exception:
        log.debug("otel_llm: reading an openai stream chunk failed", exc_info=True)


def _unset_usage(inv: Invocation, chunk: Any) -> None:
    """The ``"usage": null`` our ``include_usage`` made the server add to a chunk, unset on the SDK's chunk object
    (its set fields as if the member was never sent: what ``to_json()`` and ``model_dump(exclude_unset=True)``
    show) while the bytes are not cut (``_stream.UsageCut.lazy``); a chunk that is no pydantic model gets the
    bytes cut from the next read on instead."""
    if getattr(chunk, "usage", True) is None:
        fields = getattr(chunk, "__pydantic_fields_set__", None)
        if fields is None:  # pydantic 1
            fields = getattr(chunk, "__fields_set__", None)
        if type(fields) is set:
            fields.discard("usage")
            return
    _arm(inv)


def _arm(inv: Invocation) -> None:
    """The bytes are cut from the next read on (``_stream.UsageCut.arm``)."""
    tap = inv.tap
    cut = tap.cut if tap is not None else None
    if cut is not None:
        cut.arm()


def _raw_body_wanted(inv: Invocation) -> None:
    """The caller reached for the SDK stream's raw response (``_stream.Tap.raw_reader``)."""
    tap = inv.tap
    if tap is not None:
        try:
            tap.raw_reader()
        except Exception:
            log.debug("otel_llm: preparing a raw read of an openai stream failed", exc_info=True)


def _caller_failed(inv: Invocation, exc: BaseException | None) -> None:
    """The caller's own code raised inside ``with stream:``: the call ends failed with that exception's type
    (as the official instrumentation records it), before the SDK closes the body."""
    if exc is None or inv.ended or not isinstance(exc, Exception):
        return
    try:
        inv.fail(exc)
    except Exception:
        log.debug("otel_llm: ending a stream failed", exc_info=True)


# The chunk loops. While the SDK works inside its ``__next__`` the call is held: a body closed because the SDK
# raised (bad JSON, bad UTF-8, an error event) ends as failed with that exception, not as closed early; a
# close that comes meanwhile (the SDK closes the body after the end marker) takes effect once the SDK is
# done. Between chunks nothing is held: a close, an exit or the collection of an abandoned stream ends the
# call at once. A middle chunk costs one check, the ``usage`` member we asked for unset on it (when the bytes
# were not cut: ``_stream.UsageCut.lazy``) and, with chunk timing on, one ``append(perf_counter())``: no call
# of ours, no attribute read of a proxy (the sync loop is a generator, resumed per chunk).


def _chunks(inv: Invocation, items: Iterator[Any]) -> Iterator[Any]:
    """The SDK stream's chunks as the SDK hands them on, minus the usage-only chunk when we asked for it."""
    step = items.__next__
    observe = inv.from_chunks
    timing = inv.recorder.chunk_timing
    unset = inv.hide_usage  # unset the member we asked for on each chunk (see _unset_usage)
    stamps = None  # inv.stamps once the first chunk was seen (only when reading the chunks)
    while True:
        inv.held = True
        try:
            chunk = step()
            while True:
                if stamps is not None:  # a middle chunk: one choice, no finish reason, no usage
                    try:
                        choices = chunk.choices
                        if choices:
                            (choice,) = choices
                            if choice.finish_reason is None and chunk.usage is None:
                                if unset:  # (a pydantic 2 chunk: _unset_usage's work, without its call)
                                    chunk.__pydantic_fields_set__.discard("usage")
                                if timing:
                                    stamps.append(_perf_counter())
                                break
                    except Exception:  # several choices, or not the SDK's chunk type: the careful path
                        pass
                if observe:
                    _observe_chunk(inv, chunk)
                    stamps = inv.stamps
                # (the usage-only chunk we asked for, when it got past the cut of the bytes, is dropped)
                if not inv.hide_usage or getattr(chunk, "choices", True) or getattr(chunk, "usage", None) is None:
                    break
                chunk = step()
        except StopIteration:
            _stopped(inv)
            return
        except GeneratorExit:
            inv.release()
            raise
        except BaseException as exc:
            inv.release(exc)
            raise
        if inv.pending is None:  # what release() does when nothing asked to end meanwhile, without the call
            inv.held = False
        else:
            inv.release()
        yield chunk


class _SdkStream(wrapt.ObjectProxy):
    """The SDK's own Stream (isinstance still passes), read through ``_chunks``: ``for chunk in stream`` gets
    that generator itself (as the SDK's ``__iter__`` gives a generator); ``next(stream)`` goes through it too."""

    def __init__(self, wrapped: Any, inv: Invocation) -> None:
        super().__init__(wrapped)
        self._self_inv = inv
        self._self_chunks = _chunks(inv, iter(wrapped))

    def __iter__(self) -> Any:
        return self._self_chunks

    def __next__(self) -> Any:
        return self._self_chunks.__next__()

    @property
    def response(self) -> Any:
        """The SDK stream's HTTP response: its body may be read raw from now on (``_raw_body_wanted``)."""
        _raw_body_wanted(self._self_inv)
        return self.__wrapped__.response

    @response.setter
    def response(self, value: Any) -> None:
        self.__wrapped__.response = value

    def __enter__(self) -> Any:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        _caller_failed(self._self_inv, exc[1] if len(exc) > 1 else None)
        return self.__wrapped__.__exit__(*exc)


class _AsyncSdkStream(wrapt.ObjectProxy):
    """``_SdkStream`` for the SDK's ``AsyncStream``. Its ``__anext__`` is a coroutine of the proxy (not an async
    generator of ours: one would be closed by the event loop's finalizer when the stream is dropped, a loop
    turn after the caller let go, and keep the stream alive until then); the loop is ``_chunks``' loop."""

    def __init__(self, wrapped: Any, inv: Invocation) -> None:
        super().__init__(wrapped)
        self._self_inv = inv
        # what each chunk needs, read from the proxy at once: (call, the SDK's __anext__, reading its chunks,
        # chunk timing, unsetting the usage member we asked for)
        self._self_step = (inv, wrapped.__anext__, inv.from_chunks, inv.recorder.chunk_timing, inv.hide_usage)

    def __aiter__(self) -> Any:
        return self

    @property
    def response(self) -> Any:
        """The SDK stream's HTTP response: its body may be read raw from now on (``_raw_body_wanted``)."""
        _raw_body_wanted(self._self_inv)
        step = self._self_step
        if step[2] and not self._self_inv.from_chunks:  # its bytes are parsed instead of the SDK's chunks read
            self._self_step = (step[0], step[1], False, step[3], step[4])
        return self.__wrapped__.response

    @response.setter
    def response(self, value: Any) -> None:
        self.__wrapped__.response = value

    async def __anext__(self) -> Any:
        inv, step, observe, timing, unset = self._self_step
        inv.held = True
        try:
            chunk = await step()
            while True:
                if observe:
                    stamps = inv.stamps
                    if stamps is not None:  # a middle chunk: one choice, no finish reason, no usage
                        try:
                            choices = chunk.choices
                            if choices:
                                (choice,) = choices
                                if choice.finish_reason is None and chunk.usage is None:
                                    if unset:  # (see _chunks)
                                        chunk.__pydantic_fields_set__.discard("usage")
                                    if timing:
                                        stamps.append(_perf_counter())
                                    break
                        except Exception:  # several choices, or not the SDK's chunk type: the careful path
                            pass
                    _observe_chunk(inv, chunk)
                # (the usage-only chunk we asked for, when it got past the cut of the bytes, is dropped)
                if not inv.hide_usage or getattr(chunk, "choices", True) or getattr(chunk, "usage", None) is None:
                    break
                chunk = await step()
        except StopAsyncIteration:
            _stopped(inv)
            raise
        except GeneratorExit:
            inv.release()
            raise
        except BaseException as exc:
            inv.release(exc)
            raise
        if inv.pending is None:  # what release() does when nothing asked to end meanwhile, without the call
            inv.held = False
        else:
            inv.release()
        return chunk

    async def __aenter__(self) -> Any:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        _caller_failed(self._self_inv, exc[1] if len(exc) > 1 else None)
        return await self.__wrapped__.__aexit__(*exc)


def _wrap_stream(result: Any, inv: Invocation) -> Any:
    try:
        if hasattr(result, "__anext__"):
            return _AsyncSdkStream(result, inv)
        if hasattr(result, "__next__") and hasattr(result, "__iter__"):
            return _SdkStream(result, inv)
    except Exception:  # not iterable after all: the body tap alone ends the call
        log.debug("otel_llm: wrapping an openai stream failed", exc_info=True)
    return result
