"""The one place that turns a call record into spans and metric points.

Patches never name a span, an attribute or a metric: they build an ``Invocation`` with
``Recorder.start`` and end it once. ``Invocation.end`` applies the response attributes, records
the metric points, prices the call, adds it to the in-process spend ledger and ends the span.
Nothing here raises into the user's call: the patches guard every call into this module.
"""

from __future__ import annotations

import itertools
import logging
import time
from operator import sub as _sub
from typing import TYPE_CHECKING, Any

from opentelemetry import context as _otel_context
from opentelemetry import metrics, trace
from opentelemetry._logs import LogRecord as _LogRecord
from opentelemetry.metrics import Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _names as n
from ._content import cap_content, cap_json
from ._errors import error_type_of
from ._parsers.headers import HeaderInfo
from ._parsers.messages import request_content
from ._parsers.request import RequestInfo
from ._parsers.response import ResponseInfo, new_response_info
from ._parsers.routes import CHAT, FETCH_RESPONSE, GENERATE_CONTENT, TEXT_COMPLETION, Route
from ._parsers.usage import Usage
from ._scope import BAGGAGE_KEY
from ._scope import configure as configure_scope_baggage
from ._scope import current as _scope_current
from ._scope import from_baggage as _scope_from_baggage
from ._urls import configure as configure_urls
from .pricing import ORIGIN_RELAY, Cost, _parts, _relay_amount, charge
from .spend import LOCK as _LOCK
from .spend import OTHER
from .version import __version__

if TYPE_CHECKING:
    from .config import Config
    from .pricing import PriceBook
    from .spend import SpendLedger

__all__ = ["Invocation", "Recorder"]

log = logging.getLogger("otel_llm")

_CLIENT = SpanKind.CLIENT
# the operations that get a gen_ai.client.inference.operation.details event (not embeddings, not a fetch)
_EVENT_OPERATIONS = frozenset((CHAT, TEXT_COMPLETION, GENERATE_CONTENT))
_NOT_ON_GAUGES = (n.ERROR_TYPE, n.RESPONSE_MODEL)
_OK_OUTCOMES = ("completed", "closed_early")
_RL_REMAINING = {
    res: f"{n.RATE_LIMIT_PREFIX}remaining_{res}" for res in ("requests", "tokens", "input_tokens", "output_tokens")
}


class Invocation:
    """One logical LLM call: what was asked, what came back, and its span. Ends exactly once."""

    # Slots, all set by ``Recorder.start`` (the one maker, without an ``__init__``: on Python 3.11 a class call
    # whose ``__init__`` is Python code re-enters the interpreter from C). A slot is read and written by the
    # interpreter's specialised slot access; a default left on the class would be read through the generic
    # attribute lookup on every call that keeps it (most calls keep most of these).
    __slots__ = (
        "_ended",
        "active",
        "attempts",
        "content_in",
        "entry",
        "error_type",
        "foreign",
        "from_chunks",
        "from_result",
        "headers",
        "held",
        "hide_usage",
        "info",
        "outcome",
        "owned_by_stream",
        "pending",
        "recorder",
        "request",
        "route",
        "scope",
        "span",
        "stamps",
        "start",
        "start_attrs",
        "status_code",
        "tap",
        "ttfc",
    )

    recorder: Recorder
    route: Route
    request: RequestInfo
    entry: _Start  # what the calls of its route, provider, layer, model, server and stream flag share
    info: ResponseInfo
    span: Any
    start: float
    headers: HeaderInfo | None
    ttfc: float | None
    stamps: list[float] | None  # perf_counter() at each chunk's arrival, from the first; None: no chunk yet
    attempts: int
    status_code: int | None
    error_type: str | None
    outcome: str | None
    owned_by_stream: bool
    hide_usage: bool  # we added stream_options.include_usage: hide its extra chunk
    foreign: bool  # the span belongs to someone else (a provider SDK's own GenAI span)
    from_result: bool  # response data comes from the openai SDK's parsed result, not the body
    from_chunks: bool  # ... from the openai SDK's parsed stream chunks, not the SSE events
    held: bool  # an SDK stream is inside __next__: its own exception, if any, decides the end
    pending: str | None  # the end asked for while held
    _ended: bool
    active: _InFlight | None  # its calls-in-flight tally: taken off once, at its end
    start_attrs: dict[str, Any] | None  # events on: the span's start attributes, for the event
    content_in: tuple[list, list, list] | None  # event content on: (input, system instructions, tools)
    scope: Any  # the attribution scope in force when it started (_scope._Frame), or None
    tap: Any  # the tap on its response body (_stream.Tap), once there is one

    # --- stream progress (called by the stream tees) ---
    def chunks_arrived(self, count: int) -> None:
        stamps = self.stamps
        if stamps is not None and not self.recorder.chunk_timing:
            return  # no time-per-output-chunk points: only the first chunk's time matters
        now = time.perf_counter()
        if stamps is None:  # the first chunk
            self.ttfc = now - self.start
            stamps = self.stamps = []
        stamps.append(now)
        if count > 1:
            stamps.extend([now] * (count - 1))  # several events in one read arrived together: gaps of 0

    def fail(self, exc: BaseException) -> None:
        """End as failed with the user's exception (which the caller re-raises unchanged)."""
        if self._ended:
            return
        self.error_type = _error_type(exc)
        self.end("failed")

    def end(self, outcome: str | None = None) -> None:
        if self._ended:
            return
        if self.held:  # the SDK closes the body before its own exception reaches the caller: wait for it
            if self.pending is None:
                self.pending = outcome or self.outcome or "completed"
            return
        self._ended = True
        if outcome is not None:
            self.outcome = outcome
        try:
            self.recorder._finish(self)
        except Exception:
            log.debug("otel_llm: finishing a span failed", exc_info=True)
            try:  # whatever went wrong, the span still ends, once
                span = self.span
                if span is not None and not self.foreign and span.is_recording():
                    span.end()
            except Exception:
                pass
        finally:
            slot = self.active
            if slot is not None:  # _finish failed before it took the call off the in-flight tally
                self.active = None
                slot.leave()

    def release(self, exc: BaseException | None = None) -> None:
        """Leave the held state: end as the body said, or as failed with the exception the SDK raised."""
        self.held = False
        pending, self.pending = self.pending, None
        if self._ended:
            return
        if exc is not None:
            if pending is None or pending != "failed":
                self.error_type = _error_type(exc)
            self.end("failed")
        elif pending is not None:
            self.end(pending)

    @property
    def ended(self) -> bool:
        return self._ended


class Recorder:
    """Owns the tracer, the instruments, the price book and the spend ledger."""

    def __init__(
        self,
        config: Config,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        prices: PriceBook | None = None,
        ledger: SpendLedger | None = None,
        logger_provider: Any = None,
    ) -> None:
        from ._parsers.routes import Router
        from ._provider import ProviderResolver

        self.config = config
        self.capture = config.capture_content  # any content recorded: the parsers read messages
        self.chunk_timing = config.chunk_timing
        self.span_content = config.content_on_span
        self.event_content = config.content_on_event
        self.emit_event = config.emit_event
        self.logger: Any = None
        if config.emit_event:
            from opentelemetry import _logs

            self.logger = _logs.get_logger(
                n.SCOPE_NAME, __version__, logger_provider=logger_provider, schema_url=n.SCHEMA_URL
            )
        self.router = Router(dict(config.extra_paths))
        self.providers = ProviderResolver(config.provider_map)
        self.prices = prices
        self.ledger = ledger
        # the price table versions are the same for every span: once on the scope, not on each span
        scope = {n.COST_PRICE_VERSION: ", ".join(prices.versions)} if prices is not None else None
        self.tracer = trace.get_tracer(
            n.SCOPE_NAME, __version__, tracer_provider=tracer_provider, schema_url=n.SCHEMA_URL, attributes=scope
        )
        meter = metrics.get_meter(n.SCOPE_NAME, __version__, meter_provider=meter_provider, schema_url=n.SCHEMA_URL)
        d = list(n.DURATION_BUCKETS)
        self.duration = meter.create_histogram(
            n.DURATION, unit="s", description="GenAI operation duration.", explicit_bucket_boundaries_advisory=d
        )
        self.tokens = meter.create_histogram(
            n.TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(n.TOKEN_BUCKETS),
        )
        self.ttfc = meter.create_histogram(
            n.TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=d,
        )
        self.tpoc = meter.create_histogram(
            n.TIME_PER_OUTPUT_CHUNK,
            unit="s",
            description="Time between consecutive chunks of a streamed response.",
            explicit_bucket_boundaries_advisory=d,
        )
        self.cost = meter.create_histogram(
            n.COST,
            unit="USD",
            description="Cost of a GenAI operation in US dollars (provisional, semantic-conventions-genai PR #443).",
            explicit_bucket_boundaries_advisory=list(n.COST_BUCKETS),
        )
        self.unpriced = meter.create_counter(
            n.UNPRICED, unit="{call}", description="Calls whose cost could not be computed."
        )
        self._tallies = _tallies_of(meter)
        self._series = self._tallies.series  # metric key -> its attribute sets and tallies
        # token_metrics: the gen_ai.client.token.usage histogram, the GenAI repo's token counters (tallied), or both
        self._histogram = config.token_metrics != "counters"
        self._counters = config.token_metrics != "histogram"
        if self._counters:
            self._tallies.add_usage_counters()
        self.rl_remaining = meter.create_gauge(
            n.RATE_LIMIT_REMAINING,
            unit="{request_or_token}",
            description="Rate-limit budget left, as the provider reports it.",
        )
        self.rl_limit = meter.create_gauge(
            n.RATE_LIMIT_LIMIT,
            unit="{request_or_token}",
            description="Rate-limit budget per window, as the provider reports it.",
        )
        # start key -> what its calls share: only keys whose model and server are metric labels of their own
        # (not "_OTHER"), and at most _MAX_STARTS of them
        self._starts: dict[tuple, _Start] = {}
        self._rl_interval = config.rate_limit_interval
        self._models: set[str] = set()
        self._max_models = config.max_models
        self._servers: set[tuple[str, int | None]] = set()
        self._max_servers = config.max_servers
        configure_urls(config.redact_query_params)
        # attribution scopes: the keys that label metrics, each key's distinct label values (bounded)
        self._label_keys = tuple((key, n.SCOPE_PREFIX + key) for key in config.scope_labels)
        self._max_scope_values = config.max_scope_values
        self._scope_values: dict[str, set[str]] = {}
        self._baggage = bool(config.scope_baggage) and BAGGAGE_KEY is not None
        configure_scope_baggage(config.scope_baggage)

    # --- start ---
    def start(
        self,
        route: Route,
        request: RequestInfo,
        host: str | None,
        port: int | None,
        layer: str,
        url: str | None = None,
        body: Any = None,
        foreign_span: Any = None,
    ) -> Invocation:
        model = request.model
        key = (id(route), layer, model, host, port, request.stream)  # a Route's own hash runs in Python
        entry = self._starts.get(key)
        if entry is None or entry.route is not route or self.providers.by_url:
            entry = self._start_entry(key, route, request, host, port, layer, url)
        inv = _new(Invocation)  # every slot set here (see Invocation)
        inv.recorder = self
        inv.route = route
        inv.request = request
        inv.entry = entry
        inv.info = new_response_info()
        inv.headers = inv.ttfc = inv.stamps = inv.status_code = inv.error_type = inv.outcome = inv.pending = None
        inv.tap = None
        inv.content_in = None
        inv.owned_by_stream = inv.hide_usage = inv.from_result = inv.from_chunks = inv.held = inv._ended = False
        inv.attempts = 0
        frame = _scope_current()  # one ContextVar.get; without a scope, one look at the baggage
        if frame is None and self._baggage and _context_now().get(_BAGGAGE_KEY):
            frame = _scope_from_baggage()
        inv.scope = frame
        if frame is None:
            attrs = {**entry.fixed, **request.attributes}
        else:  # the request's own values (a conversation id it names) win over the scope's
            attrs = {**entry.fixed, **frame.span_attrs, **request.attributes}
            if foreign_span is not None:
                foreign_span.set_attributes(frame.span_attrs)
        if url is not None:
            attrs[n.URL_FULL] = url
        inv.start_attrs = None
        if self.capture and body is not None:
            self._capture_input(inv, attrs, route, body, foreign_span)
        if self.emit_event and route.operation in _EVENT_OPERATIONS:
            inv.start_attrs = attrs
        if foreign_span is not None:
            inv.span = foreign_span
            inv.foreign = True
        else:
            inv.span = self.tracer.start_span(entry.name, kind=_CLIENT, attributes=attrs)
            inv.foreign = False
        slot = inv.active = entry.active
        slot.enter()
        inv.start = time.perf_counter()
        return inv

    def _start_entry(
        self, key: tuple, route: Route, request: RequestInfo, host: str | None, port: int | None, layer: str, url: Any
    ) -> _Start:
        """What every call with this start key shares: made once, cached (bounded), except when providers are
        told apart by URL (``provider_map`` URL prefixes), which the key does not hold."""
        model = request.model
        provider = self.providers.resolve(host, port, route.api, model, url)
        fixed = self._fixed_start_attrs((route, provider, layer, model, host, port, request.stream))
        asked = self._model_label(model)
        server = self._server_label(host, port)
        prices = self.prices
        # a server past max_servers is priced as its provider's (the price book's cache stays bounded), unless
        # the price table names it
        price_host = host if server[0] is not _OTHER or (prices is not None and prices.names_server(host)) else None
        entry = _Start(route, provider, fixed, self._active_slot(fixed, asked, server), asked, server, price_host)
        entry.name = f"{route.operation} {model}" if model else route.operation
        if asked is not _OTHER and server[0] is not _OTHER and not self.providers.by_url:
            starts = self._starts  # bounded by the labels' product, and by _MAX_STARTS: the oldest key goes first
            if len(starts) >= _MAX_STARTS:
                try:
                    del starts[next(iter(starts))]
                except (StopIteration, KeyError, RuntimeError):  # another thread changed it meanwhile
                    starts.clear()
            starts[key] = entry
        return entry

    def _server_label(self, host: str | None, port: int | None) -> tuple[str | None, int | None]:
        """(server.address, server.port) as metric labels: the first ``max_servers`` servers as they are, any
        later one ``("_OTHER", None)`` (spans keep the real values)."""
        if host is None:
            return None, None
        server = (host, port)
        if server in self._servers:
            return server
        if len(self._servers) < self._max_servers:
            self._servers.add(server)
            return server
        return _OTHER, None

    def _active_slot(
        self, fixed: dict[str, Any], asked: str | None, server: tuple[str | None, int | None]
    ) -> _InFlight:
        """The calls-in-flight tally of a start key, shared by every key with the same (bounded) labels."""
        active = {k: fixed[k] for k in n.ACTIVE_ATTRIBUTES if k in fixed}
        if n.REQUEST_MODEL in active:
            active[n.REQUEST_MODEL] = asked
        if n.SERVER_ADDRESS in active:
            active[n.SERVER_ADDRESS] = server[0]
            if server[1] is None:
                active.pop(n.SERVER_PORT, None)
            else:
                active[n.SERVER_PORT] = server[1]
        return self._tallies.slot(self._tallies.active, tuple(active.items()), lambda: _InFlight(active))

    def _fixed_start_attrs(self, key: tuple) -> dict[str, Any]:
        """A span's start attributes that depend only on the route, provider, layer, model, server and
        stream flag: built once per such combination (the cache is bounded like the metric ones)."""
        route, provider, layer, model, host, port, stream = key
        attrs: dict[str, Any] = {n.OPERATION: route.operation, n.PROVIDER: provider, n.INSTRUMENTED_LAYER: layer}
        if model:
            attrs[n.REQUEST_MODEL] = model
        if host:
            attrs[n.SERVER_ADDRESS] = host
            if port:
                attrs[n.SERVER_PORT] = port
        if stream and route.operation != FETCH_RESPONSE:  # a fetch asks for no generation, streamed or not
            attrs[n.REQUEST_STREAM] = True
        api_type = route.openai_api_type
        if api_type is not None:
            attrs[n.OPENAI_API_TYPE] = api_type
        return attrs

    def _capture_input(
        self, inv: Invocation, attrs: dict[str, Any], route: Route, body: Any, foreign_span: Any = None
    ) -> None:
        """Input messages, system instructions and tool definitions: on the span (JSON, capped) and/or kept
        for the event, as the capture mode says. Only called on content opt-in. A foreign span (a provider
        SDK's own) gets them now, as ours does at its start, unless its owner recorded them itself."""
        content = request_content(route.api, body)
        _named(content[0])
        if self.event_content:
            inv.content_in = content
        if self.span_content:
            limit = self.config.content_max_length
            owned = (getattr(foreign_span, "attributes", None) or ()) if foreign_span is not None else ()
            for key, value in zip(_INPUT_KEYS, content, strict=True):
                if value:
                    text = cap_json(value, limit, key == _HISTORY)
                    if text is not None:
                        attrs[key] = text
                        if foreign_span is not None and key not in owned:
                            foreign_span.set_attribute(key, text)

    def _output_messages(self, inv: Invocation, error: str | None) -> list[dict[str, Any]]:
        """The call's output messages in the conventions' shape (content opt-in only)."""
        out = inv.info.output
        if out is None:
            return []
        if not isinstance(out, list):  # a stream's content, assembled from its events
            out = out.messages()
        _named(out)
        if error is not None:
            for msg in out:
                if not msg.get("finish_reason"):
                    msg["finish_reason"] = "error"
        return out

    def _emit(self, inv: Invocation, attrs: dict[str, Any], output: list[dict[str, Any]] | None) -> None:
        """One ``gen_ai.client.inference.operation.details`` log record for the call, in the span's context
        (so trace and span ids correlate): the span's attributes, with content as structured values (not JSON
        text) when the mode puts content on events, capped like the span's."""
        event: dict[str, Any] = dict(inv.start_attrs or ())
        for key, value in attrs.items():
            if key not in _CONTENT_KEYS:
                event[key] = value
        if self.event_content:
            limit = self.config.content_max_length
            content = inv.content_in
            if content is not None:
                for key, value in zip(_INPUT_KEYS, content, strict=True):
                    if value:
                        capped = cap_content(value, limit, key == _HISTORY)
                        if capped is not None:
                            event[key] = capped
            if output:
                capped = cap_content(output, limit)
                if capped is not None:
                    event[n.OUTPUT_MESSAGES] = capped
        elif self.span_content:  # content on the span only: none of it on the event
            for key in _INPUT_KEYS:
                event.pop(key, None)
        span = inv.span
        ctx = trace.set_span_in_context(span) if span is not None else None
        try:  # whatever the logger provider does, the span still gets its attributes and ends
            self.logger.emit(_LogRecord(event_name=n.EVENT_INFERENCE_DETAILS, attributes=event, context=ctx))
        except Exception:
            log.debug("otel_llm: emitting an event failed", exc_info=True)

    # --- finish ---
    def _model_label(self, model: str | None) -> str | None:
        if model is None or model in self._models:
            return model
        if len(self._models) < self._max_models:
            self._models.add(model)
            return model
        return _OTHER

    def _leaf(self, inv: Invocation, model: str | None, error: str | None, dims: tuple | None = None) -> _Leaf:
        """The calls of a start entry that answered ``model`` and ended with ``error`` (and, inside a scope, with
        its bounded dimensions ``dims``, see ``_scope_dims``): their series (made once per metric key, bounded),
        price entries and ledger slots (resolved on first use)."""
        entry = inv.entry
        answered = self._model_label(model)
        host, port = entry.server
        key: tuple = (inv.route.operation, entry.provider, entry.asked, answered, host, port, error)
        if dims is not None and dims[0]:
            labels = dims[0]  # the scope's metric labels: each key bounded, their combinations bounded here
            if len(self._series) >= _MAX_SCOPED_SERIES and (*key, labels) not in self._series:
                labels = tuple((name, _OTHER) for name, _ in labels)
            key = (*key, labels)
        series = self._series.get(key)
        if series is None:
            with _LOCK:  # the table is the meter's (see _Tallies): another recorder may add to it
                series = self._series.get(key)
                if series is None:  # bounded by the model, server and scope labels, and errors
                    series = self._series[key] = _Series(key)
        leaf = _Leaf(series)
        ledger = self.ledger
        if ledger is not None and inv.route.operation != FETCH_RESPONSE:
            name = inv.request.model or model or "_unknown"
            slot = ledger.slot(entry.provider, name)
            if dims is not None and (dims[1] is not None or dims[2] is not None):
                leaf.slots = (slot, ledger.scoped_slot(dims[1], dims[2], entry.provider, name))
            else:
                leaf.slots = (slot,)
        if answered is not _OTHER:
            if dims is None:
                if len(entry.leaves) < _MAX_LEAVES:
                    entry.leaves[(model, error)] = leaf
            elif len(entry.scoped) < _MAX_SCOPED_LEAVES:
                entry.scoped[(model, error, dims)] = leaf
        return leaf

    def _scoped_leaf(self, inv: Invocation, frame: Any, model: str | None, error: str | None) -> _Leaf:
        """The leaf of a call made inside a scope: by its bounded dimensions (the plain leaf when it has none)."""
        made = frame.dims
        dims = made[1] if made is not None and made[0] is self else self._scope_dims(frame)
        if dims is _NO_DIMS:
            leaf = inv.entry.leaves.get((model, error))
            return leaf if leaf is not None else self._leaf(inv, model, error)
        leaf = inv.entry.scoped.get((model, error, dims))
        return leaf if leaf is not None else self._leaf(inv, model, error, dims)

    def _scope_dims(self, frame: Any) -> tuple:
        """A scope's bounded dimensions, once per scope frame and recorder: (its metric labels, as
        ((otel_llm.scope.<key>, value), ...) over ``scope_labels``; its tenant; its feature), each value past
        the first ``max_scope_values`` of its key ``_OTHER`` (spans keep the real value)."""
        values = frame.values
        labels = tuple((name, self._scope_value(key, values[key])) for key, name in self._label_keys if key in values)
        tenant = values.get("tenant")
        feature = values.get("feature")
        dims = (
            labels,
            None if tenant is None else self._scope_value("tenant", tenant),
            None if feature is None else self._scope_value("feature", feature),
        )
        if dims == _NO_DIMS:
            dims = _NO_DIMS
        frame.dims = (self, dims)
        return dims

    def _scope_value(self, key: str, value: str) -> str:
        """``value`` while ``key`` has fewer than ``max_scope_values`` distinct values (or already has it), else
        ``_OTHER``."""
        with _LOCK:
            seen = self._scope_values.get(key)
            if seen is None:
                seen = self._scope_values[key] = set()
            if value in seen:
                return value
            if len(seen) < self._max_scope_values:
                seen.add(value)
                return value
        return _OTHER

    def _rate_limits(self, series: _Series, headers: HeaderInfo, now: float) -> None:
        """Headroom gauges per provider, model and endpoint: the last value reported, whatever the call's
        outcome (a 429's "0 left" is overwritten by the next answer). Set at most once a second per series
        (``rate_limit_interval``; the caller checks): scrapes see the latest value anyway, and each set costs
        as much as a histogram point."""
        series.rl_last = now
        for values, gauge in ((headers.remaining, self.rl_remaining), (headers.limit, self.rl_limit)):
            for res, v in values.items():
                gauge.set(v, series.gauge_attrs(res))

    def _finish(self, inv: Invocation) -> None:
        """A call's end, in the order a reader can follow: what went wrong, what the answer says (span attributes),
        its content (opt-in), its metric points and cost, the in-process tallies, and the span's end."""
        now = time.perf_counter()
        error = inv.error_type
        outcome = inv.outcome
        status = inv.status_code
        if (status is not None and status >= 400) or (error is None and outcome is not None):
            error, outcome = self._classify(inv)  # (else what it returns is what was read)
        model = inv.info.model
        frame = inv.scope
        if frame is None:
            leaf = inv.entry.leaves.get((model, error))
            if leaf is None:
                leaf = self._leaf(inv, model, error)
        else:
            leaf = self._scoped_leaf(inv, frame, model, error)
        attrs, usage, details = self._answer_attrs(inv, error, outcome)
        output = self._output_content(inv, error, attrs) if self.capture else None
        charged = self._record_points(inv, leaf, attrs, usage, details, error, now)
        active = inv.active
        if active is not None:  # the one way out of every call: no longer in flight
            inv.active = None
            active.leave()
        self._tally(leaf, usage, details, error, charged, self._counters and inv.route.operation != FETCH_RESPONSE)
        self._end_span(inv, attrs, error, output)
        if frame is not None and frame.rollups and inv.route.operation != FETCH_RESPONSE:
            _roll_up(frame.rollups, usage, error, charged)

    @staticmethod
    def _classify(inv: Invocation) -> tuple[str | None, str | None]:
        """(error type, outcome): a failed HTTP status or an abandoned stream is never a plain success."""
        outcome = inv.outcome
        error = inv.error_type
        status = inv.status_code
        if status is not None and status >= 400:
            if error is None:
                code = inv.info.error_code
                error = "insufficient_quota" if status == 429 and code == "insufficient_quota" else str(status)
                inv.error_type = error
            if outcome is not None:
                outcome = "failed"  # an error answer is a failed call however its body was read (as at the SDK layer)
        elif error is None and outcome is not None:
            if outcome == "abandoned":
                error = inv.error_type = "stream_abandoned"
            elif outcome == "failed":
                error = inv.error_type = "_OTHER"
        return error, outcome

    def _answer_attrs(
        self, inv: Invocation, error: str | None, outcome: str | None
    ) -> tuple[dict[str, Any], Usage | None, bool]:
        """The span attributes the answer gives (model, id, finish reasons, usage, HTTP status, rate limits, stream
        outcome); the usage to count and price: None for a fetch (its usage belongs to the call that made it)
        and for a usage outside any real range (marked ``otel_llm.usage.invalid`` instead); and whether that usage
        has details (cache, reasoning or audio tokens)."""
        info = inv.info
        attrs: dict[str, Any] = {}
        if info.model:
            attrs[n.RESPONSE_MODEL] = info.model
        if info.id:
            attrs[n.RESPONSE_ID] = info.id
        if info.finish_reasons:
            attrs[n.FINISH_REASONS] = info.finish_reasons
        usage = info.usage
        if inv.route.operation == FETCH_RESPONSE:
            usage = None
            if info.status:
                attrs[n.RESPONSE_STATUS] = info.status
            if self.span_content and info.fetched is not None:  # the instructions and tools it was made with
                for key, value in zip(_INPUT_KEYS[1:], info.fetched, strict=True):
                    text = cap_json(value, self.config.content_max_length) if value else None
                    if text is not None:
                        attrs[key] = text
        details = False
        if usage is not None:
            if usage.invalid:
                attrs[n.USAGE_INVALID] = True
                usage = None
            else:
                details = _usage_attrs(usage, attrs)
        if info.compacted:
            attrs[n.CONVERSATION_COMPACTED] = True
        if info.system_fingerprint:
            attrs[n.OPENAI_SYSTEM_FINGERPRINT] = info.system_fingerprint
        if info.service_tier:
            attrs[n.OPENAI_RESPONSE_SERVICE_TIER] = info.service_tier
        if info.embedding_dimensions:
            attrs[n.EMBEDDINGS_DIMENSION] = info.embedding_dimensions
        if info.provider_attrs:
            attrs.update(info.provider_attrs)
        if inv.status_code is not None:
            attrs[n.HTTP_STATUS] = inv.status_code
        if inv.attempts > 1:
            attrs[n.HTTP_RESEND_COUNT] = inv.attempts - 1
        if inv.ttfc is not None:
            attrs[n.TIME_TO_FIRST_CHUNK_ATTR] = inv.ttfc
        if inv.request.stream:  # a stream's outcome (a whole answer read through a stream by the client is no stream)
            attrs[n.STREAM_OUTCOME] = outcome or "completed"
        headers = inv.headers
        if headers is not None:
            if headers.remaining_attrs:
                attrs.update(headers.remaining_attrs)
            if error is not None:  # budgets and reset times matter on the span of a refused or failed call
                for res, v in headers.limit.items():
                    attrs[f"{n.RATE_LIMIT_PREFIX}limit_{res}"] = v
                for res, text in headers.reset.items():
                    attrs[f"{n.RATE_LIMIT_PREFIX}reset_{res}"] = text
            if headers.retry_after is not None:
                attrs[n.RETRY_AFTER] = headers.retry_after
        return attrs, usage, details

    def _output_content(self, inv: Invocation, error: str | None, attrs: dict[str, Any]) -> list[dict[str, Any]]:
        """Content opt-in: the output messages, on the span (capped JSON) when the mode puts content there."""
        output = self._output_messages(inv, error)
        if output and self.span_content:
            text = cap_json(output, self.config.content_max_length)
            if text is not None:
                attrs[n.OUTPUT_MESSAGES] = text
        return output

    def _record_points(
        self,
        inv: Invocation,
        leaf: _Leaf,
        attrs: dict[str, Any],
        usage: Usage | None,
        details: bool,
        error: str | None,
        now: float,
    ) -> tuple[float, tuple[float, ...] | None, float | None] | None:
        """The call's metric points: duration; for a call without error its tokens and its cost (the cost also as span
        attributes), or an unpriced count with its reason; time to first chunk and per output chunk; the rate-limit
        gauges when due. Returns what was charged, (USD, parts by token type, list price), or None."""
        series = leaf.series
        mattrs = series.attrs
        self.duration.record(now - inv.start, mattrs)
        charged = None
        if error is None:
            invalid = n.USAGE_INVALID in attrs
            if usage is not None and self._histogram:
                if usage.input_tokens is not None:
                    self.tokens.record(usage.input_tokens, series.m_in)
                if usage.output_tokens is not None:
                    self.tokens.record(usage.output_tokens, series.m_out)
            if self.prices is not None and inv.route.operation != FETCH_RESPONSE:
                if invalid:  # not priced, even from a relay's reported cost: its usage says it is broken
                    self.unpriced.add(1, series.extra(n.UNPRICED_REASON, n.INVALID_USAGE))
                else:
                    charged = self._charge(inv, leaf, attrs, usage, details)
        ttfc = inv.ttfc
        if ttfc is not None:
            mattrs = series.plain  # timing, not spend: no scope labels
            self.ttfc.record(ttfc, mattrs)
            stamps = inv.stamps
            if stamps is not None and len(stamps) > 1 and self.chunk_timing:  # one point per later chunk: its gap
                record = self.tpoc.record
                for gap in map(_sub, stamps[1:], stamps):
                    record(gap, mattrs)
        headers = inv.headers
        if headers is not None and headers.rate_limited:
            set_at = series.rl_last
            if set_at is None or now - set_at >= self._rl_interval or inv.status_code == 429:
                self._rate_limits(series, headers, now)
        return charged

    def _charge(
        self, inv: Invocation, leaf: _Leaf, attrs: dict[str, Any], usage: Usage | None, details: bool
    ) -> tuple[float, tuple[float, ...] | None, float | None] | None:
        """Price the call: its cost point and span attributes, or an unpriced count with its reason (no usage, a
        model the price tables lack). A model priced at fixed list rates is charged inline after its first call
        (``_fast_rates``: the same arithmetic as ``pricing.charge``; a usage with cache, reasoning or audio tokens
        split by ``pricing._parts`` itself)."""
        series = leaf.series
        relay = inv.info.relay_cost
        if relay is None and inv.headers is not None:
            relay = inv.headers.relay_cost
        if inv.info.billed is not None:  # what the provider bills (Cohere's billed_units) is what is priced
            usage = inv.info.billed
            details = False
        tin = usage.input_tokens if usage is not None else None
        tout = usage.output_tokens if usage is not None else None
        fast = leaf.fast
        if fast is not None and relay is None and (tin is not None or tout is not None):
            r_in, r_out, fee, const, fixed = fast
            if details:  # cache, reasoning or audio tokens: pricing's own split (_parts), without the rest of charge
                parts = _parts(fixed, usage)  # type: ignore[arg-type]
                amount = sum(parts)
                attrs[n.COST_AMOUNT] = amount
                attrs.update(const)
                _part_attrs(parts, attrs)
                self.cost.record(amount, series.attrs)
                return amount, parts, None
            p_in = tin * r_in / 1_000_000 if tin else 0.0
            p_out = tout * r_out / 1_000_000 if tout else 0.0
            amount = p_in + p_out + fee
            attrs[n.COST_AMOUNT] = amount
            attrs.update(const)
            parts = (p_in, p_out, 0.0, 0.0, 0.0, fee)
            _part_attrs(parts, attrs)
            self.cost.record(amount, series.attrs)
            return amount, parts, None
        if tin is None and tout is None and relay is None:
            self.unpriced.add(1, series.extra(n.UNPRICED_REASON, n.NO_USAGE))
            return None
        cost = self._cost(inv, leaf, usage, relay)
        if cost is None:
            self.unpriced.add(1, series.extra(n.UNPRICED_REASON, n.UNKNOWN_MODEL))
            return None
        self._cost_attrs(cost, attrs, inv.info.model or inv.request.model)
        self.cost.record(cost.amount, series.attrs)
        return cost.amount, cost.parts, cost.list_amount

    @staticmethod
    def _tally(
        leaf: _Leaf,
        usage: Usage | None,
        details: bool,
        error: str | None,
        charged: tuple[float, tuple[float, ...] | None, float | None] | None,
        counters: bool = False,
    ) -> None:
        """The in-process tallies: cost parts and list prices, token details and (``counters``: token_metrics
        counters or both, not a fetch) the token counters, all read by the observable counters; and the spend
        ledger. Under one lock (taken and released by its bound methods: a ``with`` block costs about twice as
        much on every call)."""
        series = leaf.series
        _acquire()
        try:
            if details:  # each read once, added where not zero (by n.DETAIL_TOKEN_TYPES' index)
                cr = usage.cache_read_tokens  # type: ignore[union-attr]
                cw = usage.cache_write_tokens  # type: ignore[union-attr]
                rs = usage.reasoning_tokens  # type: ignore[union-attr]
                ain = usage.audio_input_tokens  # type: ignore[union-attr]
                aout = usage.audio_output_tokens  # type: ignore[union-attr]
                if error is None:  # a failed call's details are not counted (as its tokens are not)
                    totals_d = series.details
                    if totals_d is None:
                        totals_d = series.details = [0, 0, 0, 0, 0]
                    if cr:
                        totals_d[0] += cr
                    if cw:
                        totals_d[1] += cw
                    if rs:
                        totals_d[2] += rs
                    if ain:
                        totals_d[3] += ain
                    if aout:
                        totals_d[4] += aout
            if counters:
                _count_tokens(series, usage, details)
            if charged is not None:
                amount, parts, list_amount = charged
                if parts is not None:
                    totals = series.part_totals
                    totals[0] += parts[0]
                    totals[1] += parts[1]
                    if parts[2] or parts[3] or parts[4] or parts[5]:
                        for i in range(2, 6):
                            if parts[i]:
                                totals[i] += parts[i]
                if list_amount is not None:
                    listed = series.listed
                    if listed is None:
                        listed = series.listed = [0.0, 0.0]
                    listed[0] += list_amount
                    listed[1] += amount
            for slot in leaf.slots:
                slot.calls += 1
                if error is not None:
                    slot.errors += 1
                if charged is not None:
                    slot.cost += charged[0]
                elif error is None:
                    slot.unpriced += 1
                if usage is not None:
                    if usage.input_tokens:
                        slot.input += usage.input_tokens
                    if usage.output_tokens:
                        slot.output += usage.output_tokens
                    if details:
                        if cr:
                            slot.cache_read += cr
                        if cw:
                            slot.cache_write += cw
                        if rs:
                            slot.reasoning += rs
                        if ain:
                            slot.audio_input += ain
                        if aout:
                            slot.audio_output += aout
        finally:
            _release()

    def _end_span(self, inv: Invocation, attrs: dict[str, Any], error: str | None, output: Any) -> None:
        """The span gets its attributes (and the event is emitted in its context) and ends. A foreign span (a
        provider SDK's own) only gets what it lacks: its owner sets its status and ends it."""
        span = inv.span
        if inv.foreign:
            if span.is_recording():
                if n.OUTPUT_MESSAGES in attrs and n.OUTPUT_MESSAGES in (getattr(span, "attributes", None) or ()):
                    del attrs[n.OUTPUT_MESSAGES]  # the owner recorded its own content
                span.set_attributes(attrs)
            if inv.start_attrs is not None:
                self._emit(inv, attrs, output)
            return
        if error is not None:
            attrs[n.ERROR_TYPE] = error
            span.set_status(Status(StatusCode.ERROR, error))
        span.set_attributes(attrs)
        if inv.start_attrs is not None:  # events on, and an inference call
            self._emit(inv, attrs, output)
        span.end()

    def _cost(self, inv: Invocation, leaf: _Leaf, usage: Usage | None, relay: float | None) -> Cost | None:
        """The call's cost: priced as the model that answered, else as the one asked for (an answering model
        the tables lack); a relay-reported cost is what was billed. The price entries are kept on the leaf."""
        if relay is not None:
            relay = _relay_amount(relay)
        asked = inv.request.model
        model = inv.info.model or asked
        if usage is None or (usage.input_tokens is None and usage.output_tokens is None) or not model:
            return None if relay is None else Cost(relay, ORIGIN_RELAY, model or "", ORIGIN_RELAY)
        prices: PriceBook = self.prices  # type: ignore[assignment]
        entry = leaf.price
        if entry is _UNRESOLVED:
            entry = leaf.price = prices.entry(inv.entry.provider, model, inv.entry.price_host, relay is None)
        cost = charge(entry, model, usage, relay)
        if cost is None and asked and model != asked:
            entry = leaf.asked_price
            if entry is _UNRESOLVED:
                entry = leaf.asked_price = prices.entry(inv.entry.provider, asked, inv.entry.price_host)
            cost = charge(entry, asked, usage, relay)
        if cost is not None and relay is None and leaf.fast is None and entry is not None:
            leaf.fast = _fast_rates(entry, cost, inv.info.model or asked)
        return cost

    @staticmethod
    def _cost_attrs(cost: Cost, attrs: dict[str, Any], model: str | None) -> None:
        """The cost's span attributes: amount, currency, source and origin, the model it was priced as (when
        another name: alias, glob, fallback), its non-zero parts by token type, and its list price."""
        origin = cost.origin
        attrs[n.COST_AMOUNT] = cost.amount
        attrs[n.COST_CURRENCY] = "USD"
        attrs[n.COST_SOURCE] = "provider" if origin == ORIGIN_RELAY else "local"
        attrs[n.COST_ORIGIN] = origin
        if cost.priced_model != model:
            attrs[n.COST_PRICED_MODEL] = cost.priced_model
        if cost.parts is not None:
            _part_attrs(cost.parts, attrs)
        if cost.list_amount is not None:
            attrs[n.COST_LIST_PRICE] = cost.list_amount


_FastRates = tuple[float, float, float, dict[str, Any], Any]  # see _fast_rates
_UNRESOLVED: Any = object()
_BAGGAGE_KEY: Any = BAGGAGE_KEY
# the current OpenTelemetry context, one Python frame fewer than opentelemetry.context.get_current
_context_now = (
    getattr(getattr(_otel_context, "_RUNTIME_CONTEXT", None), "get_current", None) or _otel_context.get_current
)
_NO_DIMS: tuple = ((), None, None)  # a scope with no label key, tenant or feature: the plain leaves
# metric series past which a new combination of scope label values (tenant x feature x model x server ...) is
# labelled _OTHER: each label's values are bounded by max_scope_values, their product is bounded here
_MAX_SCOPED_SERIES = 20_000
_MAX_SCOPED_LEAVES = 1024  # leaves of calls inside scopes kept per start key (by bounded scope dimensions)
_OTHER = OTHER  # the metric label of a model or server past its bound (compared by identity)
_MAX_STARTS = 4096  # start keys kept (see Recorder._starts)
_MAX_LEAVES = 16  # (answering model, error type) leaves kept per start key
_acquire = _LOCK.acquire
_release = _LOCK.release
_new = object.__new__
_PART_IN, _PART_OUT, _PART_CACHE_READ, _PART_CACHE_WRITE, _PART_REASONING, _PART_FEE = n.COST_PART_ATTRIBUTES


def _part_attrs(parts: tuple[float, ...], attrs: dict[str, Any]) -> None:
    """A cost's non-zero parts by token type as span attributes (no zip with keywords: a C call per cost)."""
    p_in, p_out, p_cr, p_cw, p_rs, fee = parts
    if p_in:
        attrs[_PART_IN] = p_in
    if p_out:
        attrs[_PART_OUT] = p_out
    if p_cr:
        attrs[_PART_CACHE_READ] = p_cr
    if p_cw:
        attrs[_PART_CACHE_WRITE] = p_cw
    if p_rs:
        attrs[_PART_REASONING] = p_rs
    if fee:
        attrs[_PART_FEE] = fee


def _roll_up(
    rollups: tuple[Any, ...],
    usage: Usage | None,
    error: str | None,
    charged: tuple[float, tuple[float, ...] | None, float | None] | None,
) -> None:
    """A call finished inside scopes: add it to each level's roll-up (whatever fails here, the call is done)."""
    tin = (usage.input_tokens or 0) if usage is not None else 0
    tout = (usage.output_tokens or 0) if usage is not None else 0
    cost = charged[0] if charged is not None else None
    failed = error is not None
    for rollup in rollups:
        try:
            rollup.add(failed, cost, tin, tout)
        except Exception:
            log.debug("otel_llm: rolling a call up onto its scope's span failed", exc_info=True)


def _usage_attrs(usage: Usage, attrs: dict[str, Any]) -> bool:
    """A valid usage's span attributes: input and output tokens, and the non-zero details (a zero is left out,
    as the official instrumentation does). True if it has details (cache, reasoning or audio tokens)."""
    if usage.input_tokens is not None:
        attrs[n.USAGE_INPUT] = usage.input_tokens
    if usage.output_tokens is not None:
        attrs[n.USAGE_OUTPUT] = usage.output_tokens
    cr = usage.cache_read_tokens
    cw = usage.cache_write_tokens
    rs = usage.reasoning_tokens
    ain = usage.audio_input_tokens
    aout = usage.audio_output_tokens
    if not (cr or cw or rs or ain or aout):
        return False
    if cr:
        attrs[n.USAGE_CACHE_READ] = cr
    if cw:
        attrs[n.USAGE_CACHE_WRITE] = cw
    if rs:
        attrs[n.USAGE_REASONING] = rs
    if ain:
        attrs[n.USAGE_AUDIO_INPUT] = ain
    if aout:
        attrs[n.USAGE_AUDIO_OUTPUT] = aout
    return True


# The points of the token counters (token_metrics counters or both): (counter, gen_ai.token.modality), by index.
_USAGE_POINTS = (
    (0, "text"),
    (0, "audio"),
    (0, "unknown"),
    (1, "text"),
    (1, "audio"),
    (1, "unknown"),
    (2, "text"),
    (3, "text"),
    (4, "text"),
)
_IN_TEXT, _IN_AUDIO, _IN_UNKNOWN, _OUT_TEXT, _OUT_AUDIO, _OUT_UNKNOWN, _CACHE_READ, _CACHE_WRITE, _REASONING = range(9)
_USAGE_COUNTERS = (
    n.INFERENCE_USAGE_INPUT,
    n.INFERENCE_USAGE_OUTPUT,
    n.INFERENCE_USAGE_CACHE_READ,
    n.INFERENCE_USAGE_CACHE_WRITE,
    n.INFERENCE_USAGE_REASONING,
)


def _count_tokens(series: _Series, usage: Usage | None, details: bool) -> None:
    """Add a call's tokens to its series' token-counter totals (called with the lock held). Input and output by
    modality: audio from the usage's audio details, the rest text (a count the usage lacks, such as an embedding's
    output, adds nothing); a call without usage (failed, an invalid usage, a stream without usage) adds 0 with
    modality unknown to both. Cache reads, cache writes and reasoning (text) only when reported."""
    counts = series.counts
    if counts is None:
        counts = series.counts = {}
    get = counts.get
    if usage is None:
        counts[_IN_UNKNOWN] = get(_IN_UNKNOWN, 0)
        counts[_OUT_UNKNOWN] = get(_OUT_UNKNOWN, 0)
        return
    tin = usage.input_tokens
    tout = usage.output_tokens
    if not details:  # the common call: text only
        if tin is not None:
            counts[_IN_TEXT] = get(_IN_TEXT, 0) + tin
        if tout is not None:
            counts[_OUT_TEXT] = get(_OUT_TEXT, 0) + tout
        return
    for total, audio, i_text, i_audio in (
        (tin, usage.audio_input_tokens, _IN_TEXT, _IN_AUDIO),
        (tout, usage.audio_output_tokens, _OUT_TEXT, _OUT_AUDIO),
    ):
        if total is None:
            continue
        if audio and total > 0:
            audio = audio if audio < total else total  # a part of the total, never more than it
            counts[i_audio] = get(i_audio, 0) + audio
            total -= audio
            if not total:
                continue
        counts[i_text] = get(i_text, 0) + total
    if usage.cache_read_tokens:
        counts[_CACHE_READ] = get(_CACHE_READ, 0) + usage.cache_read_tokens
    if usage.cache_write_tokens:
        counts[_CACHE_WRITE] = get(_CACHE_WRITE, 0) + usage.cache_write_tokens
    if usage.reasoning_tokens:
        counts[_REASONING] = get(_REASONING, 0) + usage.reasoning_tokens


def _fast_rates(entry: Any, cost: Cost, model: str | None) -> _FastRates | None:
    """(input rate, output rate, per-call fee, the cost's constant span attributes, the fixed prices) of a price
    entry whose calls ``_finish`` may charge inline: fixed rates (not time-dependent), no context tiers, no
    multiplier."""
    prices = entry.prices
    if prices is None or prices.tiers or entry.multiplier != 1.0 or cost.origin == ORIGIN_RELAY:
        return None
    rates = prices.base
    const: dict[str, Any] = {n.COST_CURRENCY: "USD", n.COST_SOURCE: "local", n.COST_ORIGIN: cost.origin}
    if cost.priced_model != model:
        const[n.COST_PRICED_MODEL] = cost.priced_model
    return rates.input, rates.output, rates.request, const, prices


class _Start:
    """What every call with the same route, provider, layer, model, server and stream flag shares: the span's
    fixed start attributes and name, the in-flight tally, and per (answering model, error type) a leaf."""

    __slots__ = ("active", "asked", "fixed", "leaves", "name", "price_host", "provider", "route", "scoped", "server")

    def __init__(
        self,
        route: Route,
        provider: str,
        fixed: dict[str, Any],
        active: _InFlight,
        asked: str | None,
        server: tuple[str | None, int | None],
        price_host: str | None,
    ) -> None:
        self.route = route
        self.provider = provider
        self.fixed = fixed
        self.active = active
        self.asked = asked  # the model asked for, as a (bounded) metric label
        self.server = server  # (server.address, server.port) as (bounded) metric labels
        self.price_host = price_host  # the server the price book is asked about
        self.name = ""
        self.leaves: dict[tuple, _Leaf] = {}
        self.scoped: dict[tuple, _Leaf] = {}  # (answering model, error type, scope dimensions) -> leaf


class _InFlight:
    """The calls in flight of one attribute set: two ``itertools.count`` (calls started, calls done), whose
    ``next`` is one C call, atomic under the GIL, where a locked ``+= 1`` costs a lock's enter and exit on every
    call. Their difference is read when a reader collects."""

    __slots__ = ("_done", "_started", "attrs", "enter", "leave")

    def __init__(self, attrs: dict[str, Any]) -> None:
        self.attrs = attrs
        self._started = itertools.count()
        self._done = itertools.count()
        self.enter = self._started.__next__  # a call started
        self.leave = self._done.__next__  # a call ended

    def count(self) -> int:
        """Calls in flight now (a count's repr is ``count(n)``: its next value, read without taking it). The done
        count is read first: every call left after it started, so calls going on meanwhile never make this
        negative."""
        done = _next_value(self._done)
        return _next_value(self._started) - done


def _next_value(counter: Any) -> int:
    return int(repr(counter)[6:-1])


class _Leaf:
    """Calls of one start entry that answered one model with one error type: their series, the price entries
    of the answering and the asked model (resolved on first use), and their spend-ledger slot."""

    __slots__ = ("asked_price", "fast", "price", "series", "slots")

    def __init__(self, series: _Series) -> None:
        self.series = series
        self.fast: _FastRates | None = None  # see _fast_rates
        self.price: Any = _UNRESOLVED
        self.asked_price: Any = _UNRESOLVED
        # the spend-ledger slots each call adds to: its (provider, model) one and, inside a scope, its (tenant,
        # feature, provider, model) one
        self.slots: tuple = ()


class _Series:
    """One metric series (operation, provider, models, server, error type): the attribute sets of its points,
    made once, and its in-process cost tallies (read by the observable counters, see ``_Tallies``)."""

    __slots__ = ("_extra", "attrs", "counts", "details", "listed", "m_in", "m_out", "part_totals", "plain", "rl_last")

    def __init__(self, key: tuple) -> None:
        operation, provider, asked, answered, host, port, error = key[:7]
        attrs: dict[str, Any] = {n.OPERATION: operation, n.PROVIDER: provider}
        if asked is not None:
            attrs[n.REQUEST_MODEL] = asked
        if answered is not None:
            attrs[n.RESPONSE_MODEL] = answered
        if host is not None:
            attrs[n.SERVER_ADDRESS] = host
            if port is not None:
                attrs[n.SERVER_PORT] = port
        if error is not None:
            attrs[n.ERROR_TYPE] = error
        self.plain = attrs  # without scope labels: the timing histograms' and rate-limit gauges'
        if len(key) > 7:  # the scope's bounded labels (spend-related metrics)
            attrs = {**attrs, **dict(key[7])}
        self.attrs = attrs
        self.m_in = {**attrs, n.TOKEN_TYPE: "input"}
        self.m_out = {**attrs, n.TOKEN_TYPE: "output"}
        self._extra: dict[tuple[str, str], dict[str, Any]] = {}
        self.part_totals = [0.0] * len(n.COST_PART_TYPES)  # USD per token type
        # [list-price USD, billed USD] of its calls billed by a relay or at a multiplied price (None: none yet)
        self.listed: list[float] | None = None
        self.rl_last: float | None = None  # when its rate-limit gauges were last set
        self.details: list[int] | None = None  # tokens by n.DETAIL_TOKEN_TYPES of its calls without error
        self.counts: dict[int, int] | None = None  # token-counter totals by _USAGE_POINTS index (token_metrics)

    def extra(self, key: str, value: str) -> dict[str, Any]:
        """The series' attributes plus one (a token type, an unpriced reason), made once."""
        attrs = self._extra.get((key, value))
        if attrs is None:
            attrs = self._extra[(key, value)] = {**self.attrs, key: value}
        return attrs

    def gauge_attrs(self, resource: str) -> dict[str, Any]:
        """A rate-limit gauge's attributes: the series' without response model and error type, plus the resource."""
        attrs = self._extra.get((n.RATE_LIMIT_RESOURCE, resource))
        if attrs is None:
            attrs = {k: v for k, v in self.plain.items() if k not in _NOT_ON_GAUGES}
            attrs[n.RATE_LIMIT_RESOURCE] = resource
            self._extra[(n.RATE_LIMIT_RESOURCE, resource)] = attrs
        return attrs


class _Tallies:
    """Cost parts, list-price and relay-billed cost, and calls in flight, tallied in-process per series and
    reported by observable instruments when a reader collects. Adding to a tally under a lock costs a small
    fraction of an SDK measurement (each of which re-validates and re-hashes its attributes, ~5 us), and
    these would be up to seven more per call. One per meter, so that a recorder made again for the same
    meter (uninstrument, instrument) goes on with the same totals, as synchronous instruments would."""

    def __init__(self, meter: Any) -> None:
        self.lock = _LOCK
        self.active: dict[tuple, _InFlight] = {}  # attribute items -> its calls in flight
        self.series: dict[tuple, _Series] = {}  # metric key -> its series, which holds its cost tallies
        meter.create_observable_counter(
            n.TOKEN_COST,
            callbacks=[self._observe_parts],
            unit="USD",
            description="Cost of GenAI operations by what it paid for (gen_ai.token.type).",
        )
        meter.create_observable_counter(
            n.LIST_COST,
            callbacks=[self._observe_listed(1)],
            unit="USD",
            description="List-price cost of operations billed by a relay or at a multiplied price.",
        )
        meter.create_observable_counter(
            n.RELAY_BILLED_COST,
            callbacks=[self._observe_listed(2)],
            unit="USD",
            description="Billed cost of operations billed by a relay or at a multiplied price.",
        )
        meter.create_observable_up_down_counter(
            n.ACTIVE_OPERATIONS,
            callbacks=[self._observe_active],
            unit="{operation}",
            description="GenAI operations in progress (streams until they end).",
        )
        meter.create_observable_counter(
            n.TOKEN_DETAIL,
            callbacks=[self._observe_details],
            unit="{token}",
            description="Cache-read, cache-write and reasoning tokens (subsets).",
        )
        self._meter = meter
        self._usage_counters = False

    def add_usage_counters(self) -> None:
        """The GenAI repo's token counters (token_metrics counters or both), made once per meter."""
        with self.lock:
            if self._usage_counters:
                return
            self._usage_counters = True
        descriptions = (
            "Input tokens used (cache reads and writes included).",
            "Output tokens used (reasoning included).",
            "Input tokens read from the provider's cache.",
            "Input tokens written to the provider's cache.",
            "Output tokens spent on reasoning.",
        )
        for i, (name, description) in enumerate(zip(_USAGE_COUNTERS, descriptions, strict=True)):
            self._meter.create_observable_counter(
                name, callbacks=[self._observe_usage(i)], unit="{token}", description=description
            )

    def slot(self, table: dict[tuple, Any], key: tuple, make: Any) -> Any:
        with self.lock:
            slot = table.get(key)
            if slot is None:
                slot = table[key] = make()
            return slot

    def _observe_parts(self, options: Any) -> list[Observation]:
        with self.lock:
            rows = [(series, list(series.part_totals)) for series in self.series.values() if any(series.part_totals)]
        types = n.COST_PART_TYPES
        return [
            Observation(v, series.extra(n.TOKEN_TYPE, types[i]))
            for series, totals in rows
            for i, v in enumerate(totals)
            if v
        ]

    def _observe_details(self, options: Any) -> list[Observation]:
        with self.lock:
            rows = [(series, list(series.details)) for series in self.series.values() if series.details is not None]
        types = n.DETAIL_TOKEN_TYPES
        return [
            Observation(v, series.extra(n.TOKEN_TYPE, types[i]))
            for series, totals in rows
            for i, v in enumerate(totals)
            if v
        ]

    def _observe_usage(self, counter: int) -> Any:
        points = [i for i, (c, _) in enumerate(_USAGE_POINTS) if c == counter]

        def observe(options: Any) -> list[Observation]:
            with self.lock:
                rows = [
                    (series, i, counts[i])
                    for series in self.series.values()
                    if (counts := series.counts) is not None
                    for i in points
                    if i in counts
                ]
            return [Observation(v, series.extra(n.TOKEN_MODALITY, _USAGE_POINTS[i][1])) for series, i, v in rows]

        return observe

    def _observe_listed(self, index: int) -> Any:
        def observe(options: Any) -> list[Observation]:
            with self.lock:
                rows = [(s.attrs, s.listed[index - 1]) for s in self.series.values() if s.listed is not None]
            return [Observation(v, attrs) for attrs, v in rows]

        return observe

    def _observe_active(self, options: Any) -> list[Observation]:
        with self.lock:
            slots = list(self.active.values())
        return [Observation(slot.count(), slot.attrs) for slot in slots]


def _tallies_of(meter: Any) -> _Tallies:
    """The meter's tallies, made (with their observable instruments) on first use."""
    tallies = getattr(meter, "_otel_llm_tallies", None)
    if isinstance(tallies, _Tallies):
        return tallies
    tallies = _Tallies(meter)
    try:
        meter._otel_llm_tallies = tallies
    except Exception:  # a meter that takes no attributes: these tallies are this recorder's own
        pass
    return tallies


def _error_type(exc: BaseException) -> str:
    """``error_type_of``, which must never replace the user's exception with one of ours."""
    try:
        return error_type_of(exc)
    except Exception:
        log.debug("otel_llm: classifying an exception failed", exc_info=True)
        return "_OTHER"


def _named(messages: list[dict[str, Any]]) -> None:
    """Every message carries ``name`` (null when the wire gave none), as the official instrumentation writes it."""
    for msg in messages:
        if "name" not in msg:
            msg["name"] = None


_HISTORY = n.INPUT_MESSAGES  # capped as a chat history: the middle goes first
_INPUT_KEYS = (_HISTORY, n.SYSTEM_INSTRUCTIONS, n.TOOL_DEFINITIONS)
_CONTENT_KEYS = frozenset((*_INPUT_KEYS, n.OUTPUT_MESSAGES))
