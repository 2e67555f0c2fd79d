"""botocore (boto3's ``bedrock-runtime`` client): ``Converse``, ``ConverseStream``, ``InvokeModel`` and
``InvokeModelWithResponseStream``, seen through botocore's own event system.

``Session.create_client`` (public, what ``boto3.client`` and ``boto3.Session.client`` call) is wrapped: every
``bedrock-runtime`` client it makes gets three handlers on its event emitter (``client.meta.events``, the
client's own copy), registered with fixed unique ids so that a client never gets them twice:

* ``before-call`` (once per API call, after parameter validation and serialization, before the request and its
  retries): the call starts; its record waits in the request context botocore hands to the next two;
* ``after-call`` (the final answer, success or error status): a whole answer ends the call; a streamed one hands
  it to a tap on the object the caller reads (``parsed["stream"]`` / ``parsed["body"]``): the ``EventStream``
  behind a transparent proxy, the ``StreamingBody`` as a subclass of it over the same raw response;
* ``after-call-error`` (the request raised: connection error, timeout): the call fails with that exception.

A call that leaves by another way (an exception no handler sees, such as a ``KeyboardInterrupt`` or an error in
another handler) fails with that exception when the client's API method returns: the four operation methods of
each hooked client are wrapped on the instance, and a call they made whose record no handler took is failed there.
botocore sends with urllib3 directly: none of our HTTP-layer patches sees these requests, so the call is
recorded once. Signing happens after ``before-call``, on the request object botocore sends, which is never
read here: no SigV4 header, session token or presigned query parameter reaches a record (``url.full`` is scrubbed
like every URL). Handlers record into the instrumentation that is on when the call is made (none after
``uninstrument()``). Clients made before ``instrument()`` are not seen (their event emitter was copied before).
"""

from __future__ import annotations

import functools
import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import wrapt

from .._errors import error_type_of
from .._parsers import bedrock as br
from .._parsers._json import loads as _loads
from .._parsers._text import clean
from ._common import scrub_url, split_url

if TYPE_CHECKING:
    from ..recorder import Invocation, Recorder

log = logging.getLogger("otel_llm")

__all__ = ["SESSION_MODULE", "create_client_factory", "targets"]

SESSION_MODULE = "botocore.session"

SERVICE = "bedrock-runtime"
_CONVERSE = "Converse"
_CONVERSE_STREAM = "ConverseStream"
_INVOKE = "InvokeModel"
_INVOKE_STREAM = "InvokeModelWithResponseStream"
_OPERATIONS = frozenset((_CONVERSE, _CONVERSE_STREAM, _INVOKE, _INVOKE_STREAM))
_KEY = "otel_llm.call"  # the request-context key of a call's record
# the client API methods of the four operations (wrapped on each hooked client instance)
_METHODS = ("converse", "converse_stream", "invoke_model", "invoke_model_with_response_stream")
# the records started inside the current API method call (see _api_call); None outside one
_IN_CALL: ContextVar[list[Any] | None] = ContextVar("otel_llm_botocore_call", default=None)
_MAX_JSON = 16 << 20  # past this an InvokeModel body is not kept for parsing
_MAX_URLS = 256


def targets(module_name: str) -> list[tuple[str, str, Any]]:
    return [(module_name, "Session.create_client", create_client_factory)]


_INSTRUMENTOR: Any = None  # the LLMInstrumentor class (imported on first use: it imports this module's package)


def _live_recorder() -> Recorder | None:
    """The recorder of the instrumentation that is on now, or None."""
    global _INSTRUMENTOR
    cls = _INSTRUMENTOR
    if cls is None:
        from ..instrumentor import LLMInstrumentor

        cls = _INSTRUMENTOR = LLMInstrumentor
    inst = cls._instance
    return inst.recorder if inst is not None else None


class _Pending:
    """A started call's record in botocore's request context, until ``after-call`` takes it. The API method's
    wrapper fails a record still held when the method raises; dropped with the context while still holding it
    (a call made without the wrapper, e.g. botocore's private ``_make_api_call`` called directly), it ends as
    failed."""

    __slots__ = ("inv",)

    def __init__(self, inv: Invocation) -> None:
        self.inv: Invocation | None = inv

    def take(self) -> Invocation | None:
        inv, self.inv = self.inv, None
        return inv

    def __del__(self) -> None:
        inv = self.inv
        if inv is not None and not inv.ended:
            try:
                inv.error_type = inv.error_type or "_OTHER"
                inv.end("failed" if inv.request.stream else None)
            except Exception:
                pass


_URLS: dict[str, tuple[str, str, int | None, str, str | None]] = {}


def _parse_url(url: str) -> tuple[str, str, int | None, str, str | None]:
    """(scheme, host, port, scrubbed URL, model id) of a request URL ``.../model/{modelId}/{action}``."""
    hit = _URLS.get(url)
    if hit is not None:
        return hit
    scheme, host, port, path = split_url(url)
    q = path.find("?")
    bare = path if q < 0 else path[:q]
    model = None
    i = bare.find("/model/")
    if i >= 0:
        model = unquote(bare[i + 7 : bare.rfind("/")]) or None
        if model is not None:
            model = clean(model)
    userinfo = "@" in url.partition("://")[2].partition("/")[0]
    out = (scheme, host, port, scrub_url(scheme, host, port, path, userinfo), model)
    if len(_URLS) >= _MAX_URLS:
        _URLS.clear()
    _URLS[url] = out
    return out


def _decode(body: Any) -> Any:
    """A request body that is JSON text (bytes or str); a file-like body is left unread."""
    if isinstance(body, (bytes, bytearray, str)) and body:
        try:
            return _loads(body.encode() if isinstance(body, str) else bytes(body))
        except (ValueError, TypeError):
            return None
    return None


def _before_call(model: Any = None, params: Any = None, context: Any = None, **_: Any) -> None:
    try:
        name = model.name
        if name not in _OPERATIONS or not isinstance(context, dict):
            return
        recorder = _live_recorder()
        if recorder is None:
            return
        _scheme, host, port, url, model_id = _parse_url(params["url"])
        body = _decode(params.get("body"))
        stream = name in (_CONVERSE_STREAM, _INVOKE_STREAM)
        if name in (_CONVERSE, _CONVERSE_STREAM):
            route = br.CONVERSE
            request = br.converse_request(model_id, body, stream)
        else:
            route, request = br.invoke_request(model_id, body, stream)
        inv = recorder.start(route, request, host, port, "sdk", url=url, body=body if recorder.capture else None)
        inv.attempts = 1
        pending = context[_KEY] = _Pending(inv)
        started = _IN_CALL.get()
        if started is not None:
            started.append(pending)
    except Exception:
        log.debug("otel_llm: starting a Bedrock call failed", exc_info=True)


def _take(context: Any) -> Invocation | None:
    pending = context.pop(_KEY, None) if isinstance(context, dict) else None
    return pending.take() if isinstance(pending, _Pending) else None


def _after_call(
    http_response: Any = None, parsed: Any = None, model: Any = None, context: Any = None, **_: Any
) -> None:
    inv = _take(context)
    if inv is None:
        return
    try:
        status = http_response.status_code
        inv.status_code = status
        meta = parsed.get("ResponseMetadata") if isinstance(parsed, dict) else None
        retries = meta.get("RetryAttempts") if isinstance(meta, dict) else None
        if isinstance(retries, int) and retries > 0:
            inv.attempts = retries + 1
        if status >= 300 or not isinstance(parsed, dict):
            err = parsed.get("Error") if isinstance(parsed, dict) else None
            code = err.get("Code") if isinstance(err, dict) else None
            if isinstance(code, str) and code:
                inv.info.error_code = clean(code)
            inv.end()
            return
        name = model.name
        capture = inv.recorder.capture
        if name == _CONVERSE:
            br.apply_converse(inv.info, parsed, capture)
            inv.end()
        elif name == _INVOKE:
            br.fill_usage(inv.info, br.usage_from_headers(http_response.headers))
            body = parsed.get("body")
            raw = getattr(http_response, "raw", None)
            if body is None or raw is None:
                inv.end()
                return
            length = http_response.headers.get("content-length")
            parsed["body"] = _body_class(type(body))(raw, length, _BodyTap(inv))
        else:
            key = "stream" if name == _CONVERSE_STREAM else "body"
            events = parsed.get(key)
            if events is None:
                inv.end()
                return
            state: Any = (
                br.ConverseStreamState(inv.info, capture)
                if name == _CONVERSE_STREAM
                else br.InvokeStreamState(inv.info, capture)
            )
            inv.owned_by_stream = True
            parsed[key] = EventStreamTap(events, _StreamTap(inv, state))
    except Exception:
        log.debug("otel_llm: reading a Bedrock answer failed", exc_info=True)
        if not inv.owned_by_stream:
            inv.end()


def _after_call_error(exception: Any = None, context: Any = None, **_: Any) -> None:
    inv = _take(context)
    if inv is not None:
        inv.fail(exception)


def _error_type(exc: BaseException) -> str:
    """An error event of a stream (botocore's ``EventStreamError``, a ``ClientError``): its code
    (``modelStreamErrorException``, ``throttlingException``), else the usual classification."""
    response = getattr(exc, "response", None)
    err = response.get("Error") if isinstance(response, dict) else None
    code = err.get("Code") if isinstance(err, dict) else None
    if isinstance(code, str) and code:
        return clean(code)
    try:
        return error_type_of(exc)
    except Exception:
        return "_OTHER"


def _fail(inv: Invocation, exc: BaseException) -> None:
    inv.error_type = _error_type(exc)
    inv.end("failed")


class _StreamTap:
    """A streamed answer's events as the caller takes them; ends the call once."""

    __slots__ = ("done", "inv", "state")

    def __init__(self, inv: Invocation, state: Any) -> None:
        self.inv = inv
        self.state = state
        self.done = False

    def event(self, event: Any) -> None:
        if self.done:
            return
        try:
            count = self.state.feed(event)
            if count:
                self.inv.chunks_arrived(count)
        except Exception:
            log.debug("otel_llm: reading a Bedrock stream event failed", exc_info=True)

    def finish(self, outcome: str, exc: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        inv = self.inv
        try:
            if exc is not None:
                _fail(inv, exc)
                return
            if self.state.done and outcome == "closed_early":
                outcome = "completed"  # the last event arrived: closing after it is the normal end
            elif outcome == "completed" and not self.state.done and not inv.info.finish_reasons:
                inv.error_type = inv.error_type or "stream_truncated"
            inv.end(outcome)
        except Exception:
            log.debug("otel_llm: ending a Bedrock stream failed", exc_info=True)


class EventStreamTap(wrapt.ObjectProxy):
    """Stands in for botocore's ``EventStream`` of a streamed Bedrock answer: the same object to the caller
    (attributes, ``isinstance``), each event handed on as botocore parsed it, at once."""

    def __init__(self, stream: Any, tap: _StreamTap) -> None:
        super().__init__(stream)
        self._self_tap = tap

    def __iter__(self) -> Any:
        tap = self._self_tap
        try:
            for event in self.__wrapped__:
                tap.event(event)
                yield event
        except GeneratorExit:
            raise  # the caller stopped; close() or garbage collection will say how
        except BaseException as exc:
            tap.finish("failed", exc)
            raise
        tap.finish("completed")

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_tap.finish("closed_early")

    def __del__(self) -> None:
        tap = getattr(self, "_self_tap", None)
        if tap is not None and not tap.done:
            try:
                tap.finish("abandoned")
            except Exception:
                pass


class _BodyTap:
    """An InvokeModel answer body's bytes as the caller reads them (kept, up to a bound, to parse at the end)."""

    __slots__ = ("buf", "done", "inv", "size")

    def __init__(self, inv: Invocation) -> None:
        self.inv = inv
        self.buf: list[bytes] | None = []
        self.size = 0
        self.done = False
        inv.owned_by_stream = True

    def feed(self, data: Any) -> None:
        buf = self.buf
        if buf is None or self.done or not data:
            return
        self.size += len(data)
        if self.size > _MAX_JSON:
            self.buf = None
        else:
            buf.append(bytes(data))

    def finish(self, outcome: str, exc: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        inv = self.inv
        try:
            if exc is not None:
                _fail(inv, exc)
                return
            if self.buf:
                whole = br.apply_invoke_body(inv.info, b"".join(self.buf), inv.recorder.capture)
                if whole and outcome in ("closed_early", "abandoned"):
                    outcome = "completed"  # the whole document was read
            self.buf = None
            inv.end(None if outcome == "completed" else outcome)
        except Exception:
            log.debug("otel_llm: ending a Bedrock call failed", exc_info=True)
            inv.end(outcome)


_BODY_CLASSES: dict[type, type] = {}


def _body_class(base: type) -> Any:
    """A subclass of botocore's ``StreamingBody`` whose reads also go to the call's tap (every read path of it,
    iteration, lines and chunks included, comes down to ``read``, ``readinto`` or ``readlines``)."""
    cls = _BODY_CLASSES.get(base)
    if cls is not None:
        return cls

    class TappedBody(base):
        def __init__(self, raw: Any, length: Any, tap: _BodyTap) -> None:
            super().__init__(raw, length)
            self._otel_llm_tap = tap

        def read(self, amt: int | None = None) -> bytes:
            tap = self._otel_llm_tap
            try:
                chunk = super().read(amt)
            except BaseException as exc:
                tap.finish("failed", exc)
                raise
            tap.feed(chunk)
            if amt is None or (not chunk and amt > 0):
                tap.finish("completed")
            return chunk

        def readinto(self, b: Any) -> int:
            tap = self._otel_llm_tap
            try:
                count = super().readinto(b)
            except BaseException as exc:
                tap.finish("failed", exc)
                raise
            if count:
                tap.feed(memoryview(b)[:count])
            elif len(b) > 0:
                tap.finish("completed")
            return count

        def readlines(self) -> list[bytes]:
            tap = self._otel_llm_tap
            try:
                lines = super().readlines()
            except BaseException as exc:
                tap.finish("failed", exc)
                raise
            for line in lines:
                tap.feed(line)
            tap.finish("completed")
            return lines

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._otel_llm_tap.finish("closed_early")

        def __del__(self) -> None:
            tap = getattr(self, "_otel_llm_tap", None)
            if tap is not None and not tap.done:
                try:
                    tap.finish("abandoned")
                except Exception:
                    pass

    TappedBody.__name__ = TappedBody.__qualname__ = base.__name__
    TappedBody.__module__ = base.__module__
    if len(_BODY_CLASSES) < 8:
        _BODY_CLASSES[base] = TappedBody
    return TappedBody


_HANDLERS = (
    (f"before-call.{SERVICE}", _before_call, "otel_llm.before-call"),
    (f"after-call.{SERVICE}", _after_call, "otel_llm.after-call"),
    (f"after-call-error.{SERVICE}", _after_call_error, "otel_llm.after-call-error"),
)


def _api_call(method: Any) -> Any:
    """A client's API method, so that a call no handler ended (its exception bypassed them) fails when the method
    raises, not later."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        started: list[Any] = []
        token = _IN_CALL.set(started)
        try:
            return method(*args, **kwargs)
        except BaseException as exc:
            for pending in started:
                inv = pending.take()
                if inv is not None and not inv.ended:
                    try:
                        inv.fail(exc)
                    except Exception:
                        log.debug("otel_llm: failing a Bedrock call failed", exc_info=True)
            raise
        finally:
            _IN_CALL.reset(token)

    call._otel_llm_api_call = True  # type: ignore[attr-defined]
    return call


def _hook(client: Any) -> None:
    """Register the handlers on a new client's event emitter, and wrap its four operation methods on the
    instance, if it is a ``bedrock-runtime`` client."""
    try:
        meta = client.meta
        if meta.service_model.service_name != SERVICE:
            return
        events = meta.events
        for event, handler, uid in _HANDLERS:
            events.register(event, handler, unique_id=uid)
        for name in _METHODS:
            method = getattr(client, name, None)
            if callable(method) and not getattr(method, "_otel_llm_api_call", False):
                setattr(client, name, _api_call(method))
    except Exception:
        log.debug("otel_llm: hooking a botocore client failed", exc_info=True)


def create_client_factory(recorder: Recorder, module: Any) -> Any:
    """The handlers record into whichever instrumentation is on when a call is made (``_live_recorder``), not
    this ``recorder``: a client outlives ``uninstrument()`` and a later ``instrument()``."""

    def create_client(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        client = wrapped(*args, **kwargs)
        _hook(client)
        return client

    return create_client
