"""The one place that turns a call record into spans and metric points.

Patches never name a span, an attribute or a metric: they build an ``Invocation`` with
``Recorder.start`` and end it once. ``Invocation.end`` applies the response attributes, records
the metric points, prices the call, adds it to the in-process spend ledger and ends the span.
Nothing here raises into the user's call: the patches guard every call into this module.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry._logs import LogRecord as _LogRecord
from opentelemetry.metrics import Observation
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import _names as n
from ._errors import error_type_of
from ._parsers.headers import HeaderInfo
from ._parsers.messages import request_content
from ._parsers.request import RequestInfo
from ._parsers.response import ResponseInfo
from ._parsers.routes import CHAT, FETCH_RESPONSE, GENERATE_CONTENT, TEXT_COMPLETION, Route
from ._parsers.usage import Usage
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

    # Defaults live on the class: a call sets only what differs (no __slots__, so that creating one per
    # call does not store two dozen fields that mostly keep their default).
    headers: HeaderInfo | None = None
    server_address: str | None = None
    server_port: int | None = None
    layer = "http"
    span: Any = None
    start = 0.0
    ttfc: float | None = None
    stamps: list[float] | None = None  # perf_counter() at each chunk's arrival, from the first; None: no chunk yet
    attempts = 0
    status_code: int | None = None
    error_type: str | None = None
    outcome: str | None = None
    owned_by_stream = False
    hide_usage = False  # we added stream_options.include_usage: hide its extra chunk
    foreign = False  # the span belongs to someone else (a provider SDK's own GenAI span)
    from_result = False  # response data comes from the openai SDK's parsed result, not the body
    from_chunks = False  # ... from the openai SDK's parsed stream chunks, not the SSE events
    held = False  # an SDK stream is inside __next__: its own exception, if any, decides the end
    pending: str | None = None  # the end asked for while held
    _ended = False
    _metric_key: tuple | None = None
    active: list | None = None  # its calls-in-flight tally, [attributes, count]: taken off once, at its end
    start_attrs: dict[str, Any] | None = None  # events on: the span's start attributes, for the event
    content_in: tuple[list, list, list] | None = None  # event content on: (input, system instructions, tools)
    done_at: float | None = None  # perf_counter() when the answer was complete, for an end recorded later
    done_ns: int | None = None  # ... and the same moment as a span end time (time_ns())

    def __init__(self, recorder: Recorder, route: Route, request: RequestInfo, provider: str) -> None:
        self.recorder = recorder
        self.route = route
        self.request = request
        self.provider = provider
        self.info = ResponseInfo()

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

    def mark_done(self) -> None:
        """The answer is complete now, though the call is ended later (a patch that waits for the caller's own
        parse of the body): the duration and the span's end are taken from this moment."""
        self.done_at = time.perf_counter()
        self.done_ns = time.time_ns()

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
            if slot is not None:  # the one way out of every call: no longer in flight
                with self.recorder._tally_lock:
                    slot[1] -= 1

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
        self.token_detail = meter.create_counter(
            n.TOKEN_DETAIL, unit="{token}", description="Cache-read, cache-write and reasoning tokens (subsets)."
        )
        self.unpriced = meter.create_counter(
            n.UNPRICED, unit="{call}", description="Calls whose cost could not be computed."
        )
        self._tallies = _tallies_of(meter)
        self._tally_lock = self._tallies.lock
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
        self._attrs: dict[tuple, dict[str, Any]] = {}
        self._starts: dict[tuple, tuple[dict[str, Any], list]] = {}  # start key -> (fixed attrs, in-flight tally)
        self._sets: dict[tuple, tuple[dict, dict, dict]] = {}
        self._rl_attrs: dict[tuple, dict[str, Any]] = {}
        self._rl_last: dict[tuple, float] = {}
        self._rl_interval = config.rate_limit_interval
        self._models: set[str] = set()
        self._max_models = config.max_models

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
        provider = self.providers.resolve(host, port, route.api, request.model, url)
        inv = Invocation(self, route, request, provider)
        inv.layer = layer
        inv.server_address = host
        inv.server_port = port
        key = (route, provider, layer, request.model, host, port, request.stream)
        cached = self._starts.get(key)  # one lookup (hashing the key hashes the route's fields in Python)
        if cached is None:
            cached = self._start_entry(key)
        fixed, slot = cached
        attrs = fixed.copy()
        if request.attributes:
            attrs.update(request.attributes)
        if url is not None:
            attrs[n.URL_FULL] = url
        if self.capture and body is not None:
            self._capture_input(inv, attrs, route, body)
        if self.emit_event and route.operation in _EVENT_OPERATIONS:
            inv.start_attrs = attrs
        if foreign_span is not None:
            inv.span = foreign_span
            inv.foreign = True
        else:
            name = f"{route.operation} {request.model}" if request.model else route.operation
            inv.span = self.tracer.start_span(name, kind=_CLIENT, attributes=attrs)
        with self._tally_lock:
            slot[1] += 1
        inv.active = slot
        inv.start = time.perf_counter()
        return inv

    def _start_entry(self, key: tuple) -> tuple[dict[str, Any], list]:
        """A start key's fixed attributes and calls-in-flight tally, cached together (bounded)."""
        fixed = self._fixed_start_attrs(key)
        entry = (fixed, self._active_slot(fixed))
        if len(self._starts) < 20000:
            self._starts[key] = entry
        return entry

    def _active_slot(self, fixed: dict[str, Any]) -> list:
        """The calls-in-flight tally of a start key, shared by every key with the same (bounded) attributes."""
        active = {k: fixed[k] for k in n.ACTIVE_ATTRIBUTES if k in fixed}
        if n.REQUEST_MODEL in active:
            active[n.REQUEST_MODEL] = self._model_label(active[n.REQUEST_MODEL])
        return self._tallies.slot(self._tallies.active, tuple(active.items()), lambda: [active, 0])

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

    def _capture_input(self, inv: Invocation, attrs: dict[str, Any], route: Route, body: Any) -> None:
        """Input messages, system instructions and tool definitions: on the span (JSON, capped) and/or kept
        for the event, as the capture mode says. Only called on content opt-in."""
        content = request_content(route.api, body)
        _named(content[0])
        if self.event_content:
            inv.content_in = content
        if self.span_content:
            limit = self.config.content_max_length
            for key, value in zip(_INPUT_KEYS, content, strict=True):
                if value:
                    attrs[key] = cap_json(value, limit)

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
                        event[key] = cap_content(value, limit)
            if output:
                event[n.OUTPUT_MESSAGES] = cap_content(output, limit)
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
        return "_OTHER"

    def _key(self, inv: Invocation) -> tuple:
        key = inv._metric_key
        if key is None:
            models = self._models
            asked = inv.request.model
            if asked is not None and asked not in models:
                asked = self._model_label(asked)
            answered = inv.info.model
            if answered is not None and answered not in models:
                answered = self._model_label(answered)
            key = inv._metric_key = (
                inv.route.operation,
                inv.provider,
                asked,
                answered,
                inv.server_address,
                inv.server_port,
                inv.error_type,
            )
        return key

    def _metric_sets(self, inv: Invocation) -> tuple[dict, dict, dict]:
        """The attribute sets of a call's points: (all points, input tokens, output tokens), built once per series."""
        key = self._key(inv)
        sets = self._sets.get(key)
        if sets is None:
            sets = (
                self._metric_attrs(inv),
                self._metric_attrs(inv, n.TOKEN_TYPE, "input"),
                self._metric_attrs(inv, n.TOKEN_TYPE, "output"),
            )
            if len(self._sets) < 20000:
                self._sets[key] = sets
        return sets

    def _metric_attrs(self, inv: Invocation, extra_key: str | None = None, extra_val: str | None = None) -> dict:
        key = self._key(inv)
        full = key if extra_key is None else (*key, extra_key, extra_val)
        attrs = self._attrs.get(full)
        if attrs is None:
            attrs = {n.OPERATION: key[0], n.PROVIDER: key[1]}
            if key[2] is not None:
                attrs[n.REQUEST_MODEL] = key[2]
            if key[3] is not None:
                attrs[n.RESPONSE_MODEL] = key[3]
            if key[4] is not None:
                attrs[n.SERVER_ADDRESS] = key[4]
                if key[5] is not None:
                    attrs[n.SERVER_PORT] = key[5]
            if key[6] is not None:
                attrs[n.ERROR_TYPE] = key[6]
            if extra_key is not None:
                attrs[extra_key] = extra_val
            if len(self._attrs) < 20000:
                self._attrs[full] = attrs
        return attrs

    def _rate_limits(self, inv: Invocation, headers: HeaderInfo, now: float) -> None:
        """Headroom gauges per provider, model and endpoint: the last value reported, whatever the call's
        outcome (a 429's "0 left" is overwritten by the next answer). Set at most once a second per series
        (``rate_limit_interval``):
        scrapes see the latest value anyway, and each set costs as much as a histogram point."""
        key = inv._metric_key or (inv.route.operation, inv.provider)
        last = self._rl_last.get(key)
        if last is not None and now - last < self._rl_interval and inv.status_code != 429:
            return
        if len(self._rl_last) < 20000:
            self._rl_last[key] = now
        base = (key[0], key[1], key[2], key[4], key[5]) if len(key) == 7 else key  # no response model, error type
        for values, gauge in ((headers.remaining, self.rl_remaining), (headers.limit, self.rl_limit)):
            for res, v in values.items():
                full = (*base, res)
                attrs = self._rl_attrs.get(full)
                if attrs is None:
                    attrs = {k: v for k, v in self._metric_attrs(inv).items() if k not in _NOT_ON_GAUGES}
                    attrs[n.RATE_LIMIT_RESOURCE] = res
                    if len(self._rl_attrs) < 20000:
                        self._rl_attrs[full] = attrs
                gauge.set(v, attrs)

    def _finish(self, inv: Invocation) -> None:
        now = inv.done_at or time.perf_counter()
        span = inv.span
        info = inv.info
        outcome = inv.outcome
        # error classification: a failed HTTP status or an abandoned stream is never a plain success
        error = inv.error_type
        status = inv.status_code
        if status is not None and status >= 400:
            if error is None:
                code = info.error_code
                error = "insufficient_quota" if status == 429 and code == "insufficient_quota" else str(status)
                inv.error_type = error
            if outcome is not None:
                outcome = "failed"  # an error answer is a failed call however its body was read (as at the SDK layer)
        elif error is None and outcome is not None:
            if outcome == "abandoned":
                error = inv.error_type = "stream_abandoned"
            elif outcome == "failed":
                error = inv.error_type = "_OTHER"
        attrs: dict[str, Any] = {}
        if info.model:
            attrs[n.RESPONSE_MODEL] = info.model
        if info.id:
            attrs[n.RESPONSE_ID] = info.id
        if info.finish_reasons:
            attrs[n.FINISH_REASONS] = info.finish_reasons
        usage = info.usage
        fetch = inv.route.operation == FETCH_RESPONSE
        if fetch:  # a stored response fetched again: its usage (and cost) belong to the call that made it
            usage = None
            if info.status:
                attrs[n.RESPONSE_STATUS] = info.status
            if self.span_content and info.fetched is not None:  # the instructions and tools it was made with
                for key, value in zip(_INPUT_KEYS[1:], info.fetched, strict=True):
                    if value:
                        attrs[key] = cap_json(value, self.config.content_max_length)
        if usage is not None:
            if usage.input_tokens is not None:
                attrs[n.USAGE_INPUT] = usage.input_tokens
            if usage.output_tokens is not None:
                attrs[n.USAGE_OUTPUT] = usage.output_tokens
            if usage.cache_read_tokens:  # a zero is left out, as the official instrumentation does
                attrs[n.USAGE_CACHE_READ] = usage.cache_read_tokens
            if usage.cache_write_tokens:
                attrs[n.USAGE_CACHE_WRITE] = usage.cache_write_tokens
            if usage.reasoning_tokens:
                attrs[n.USAGE_REASONING] = usage.reasoning_tokens
        if info.compacted:
            attrs[n.CONVERSATION_COMPACTED] = True
        if info.system_fingerprint:
            attrs[n.OPENAI_SYSTEM_FINGERPRINT] = info.system_fingerprint
        if info.service_tier:
            attrs[n.OPENAI_RESPONSE_SERVICE_TIER] = info.service_tier
        if info.embedding_dimensions:
            attrs[n.EMBEDDINGS_DIMENSION] = info.embedding_dimensions
        if inv.status_code is not None:
            attrs[n.HTTP_STATUS] = inv.status_code
        if inv.attempts > 1:
            attrs[n.HTTP_RESEND_COUNT] = inv.attempts - 1
        if inv.ttfc is not None:
            attrs[n.TIME_TO_FIRST_CHUNK_ATTR] = inv.ttfc
        if inv.request.stream or inv.owned_by_stream:
            attrs[n.STREAM_OUTCOME] = outcome or "completed"
        headers = inv.headers
        if headers is not None:
            for res, v in headers.remaining.items():
                attrs[_RL_REMAINING.get(res) or f"{n.RATE_LIMIT_PREFIX}remaining_{res}"] = v
            if error is not None:  # budgets and reset times matter on the span of a refused or failed call
                for res, v in headers.limit.items():
                    attrs[f"{n.RATE_LIMIT_PREFIX}limit_{res}"] = v
                for res, text in headers.reset.items():
                    attrs[f"{n.RATE_LIMIT_PREFIX}reset_{res}"] = text
            if headers.retry_after is not None:
                attrs[n.RETRY_AFTER] = headers.retry_after
        output = None
        if self.capture:
            output = self._output_messages(inv, error)
            if output and self.span_content:
                attrs[n.OUTPUT_MESSAGES] = cap_json(output, self.config.content_max_length)

        # metrics
        mattrs, m_input, m_output = self._metric_sets(inv)
        self.duration.record(now - inv.start, mattrs)
        priced: Any = None
        if error is None:
            if usage is not None:
                if usage.input_tokens is not None:
                    self.tokens.record(usage.input_tokens, m_input)
                if usage.output_tokens is not None:
                    self.tokens.record(usage.output_tokens, m_output)
                if usage.cache_read_tokens:
                    self.token_detail.add(usage.cache_read_tokens, self._metric_attrs(inv, n.TOKEN_TYPE, "cache_read"))
                if usage.cache_write_tokens:
                    self.token_detail.add(
                        usage.cache_write_tokens, self._metric_attrs(inv, n.TOKEN_TYPE, "cache_write")
                    )
                if usage.reasoning_tokens:
                    self.token_detail.add(usage.reasoning_tokens, self._metric_attrs(inv, n.TOKEN_TYPE, "reasoning"))
            if not fetch:
                priced = self._price(inv, attrs, mattrs)
        if inv.ttfc is not None:
            self.ttfc.record(inv.ttfc, mattrs)
            stamps = inv.stamps
            if stamps is not None and len(stamps) > 1 and self.chunk_timing:  # one point per later chunk: its gap
                record = self.tpoc.record
                last = stamps[0]
                for stamp in stamps[1:]:
                    record(stamp - last, mattrs)
                    last = stamp
        if headers is not None and headers.rate_limited:
            set_at = self._rl_last.get(inv._metric_key or ())  # the series' last set (see _rate_limits), inline
            if set_at is None or now - set_at >= self._rl_interval or inv.status_code == 429:
                self._rate_limits(inv, headers, now)
        ledger = self.ledger
        if ledger is not None and not fetch:
            model = inv.request.model or info.model or "_unknown"
            ledger.add(inv.provider, model, usage, priced, error=error is not None)

        if inv.foreign:  # add what the owner's span lacks; its owner ends it
            if span.is_recording():
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
        span.end(inv.done_ns)

    def _price(self, inv: Invocation, attrs: dict[str, Any], mattrs: dict) -> float | None:
        prices = self.prices
        if prices is None:
            return None
        info = inv.info
        usage = info.usage
        relay = info.relay_cost
        if relay is None:
            headers = inv.headers
            if headers is not None:
                relay = headers.relay_cost
        if relay is None and (usage is None or (usage.input_tokens is None and usage.output_tokens is None)):
            self.unpriced.add(1, self._metric_attrs(inv, n.UNPRICED_REASON, "no_usage"))
            return None
        if usage is None:
            usage = Usage()
        asked = inv.request.model
        model = info.model or asked
        cost = prices.price(
            provider=inv.provider, model=model, server_address=inv.server_address, usage=usage, relay_cost=relay
        )
        if cost is None and asked and model != asked:  # an answering model the tables lack: the one asked for
            cost = prices.price(
                provider=inv.provider, model=asked, server_address=inv.server_address, usage=usage, relay_cost=relay
            )
        if cost is None:
            self.unpriced.add(1, self._metric_attrs(inv, n.UNPRICED_REASON, "unknown_model"))
            return None
        amount = cost.amount
        self.cost.record(amount, mattrs)
        origin = cost.origin
        attrs[n.COST_AMOUNT] = amount
        attrs[n.COST_CURRENCY] = "USD"
        attrs[n.COST_SOURCE] = "provider" if origin == "relay" else "local"
        attrs[n.COST_ORIGIN] = origin
        if cost.priced_model != model:
            attrs[n.COST_PRICED_MODEL] = cost.priced_model  # priced under another name (alias, glob, fallback)
        if cost.parts is not None or cost.list_amount is not None:
            self._cost_split(inv, attrs, mattrs, cost)
        return amount

    def _cost_split(self, inv: Invocation, attrs: dict[str, Any], mattrs: dict, cost: Any) -> None:
        """The cost's non-zero parts by token type; its list price, beside what was billed, where a relay or a
        multiplier made them differ (both counted, so that savings are list minus billed over the same calls).
        The metric totals are tallied in-process and read by observable counters at collection time."""
        key = self._key(inv)
        tallies = self._tallies
        parts = cost.parts
        if parts is not None:
            slot = tallies.parts.get(key)
            if slot is None:
                sets = tuple(self._metric_attrs(inv, n.TOKEN_TYPE, t) for t in n.COST_PART_TYPES)
                slot = tallies.slot(tallies.parts, key, lambda: [sets, [0.0] * len(sets)])
            totals = slot[1]
            names = n.COST_PART_ATTRIBUTES
            with self._tally_lock:
                for i, value in enumerate(parts):
                    if value:
                        totals[i] += value
                        attrs[names[i]] = value
        list_amount = cost.list_amount
        if list_amount is not None:
            attrs[n.COST_LIST_PRICE] = list_amount
            slot = tallies.listed.get(key)
            if slot is None:
                slot = tallies.slot(tallies.listed, key, lambda: [mattrs, 0.0, 0.0])
            with self._tally_lock:
                slot[1] += list_amount
                slot[2] += cost.amount


class _Tallies:
    """Cost parts, list-price and relay-billed cost, and calls in flight, tallied in-process per series and
    reported by observable instruments when a reader collects. Adding to a tally under a lock costs a small
    fraction of an SDK measurement (each of which re-validates and re-hashes its attributes, ~5 us), and
    these would be up to seven more per call. One per meter, so that a recorder made again for the same
    meter (uninstrument, instrument) goes on with the same totals, as synchronous instruments would."""

    def __init__(self, meter: Any) -> None:
        self.lock = threading.Lock()
        self.active: dict[tuple, list] = {}  # attribute items -> [attributes, calls in flight]
        self.parts: dict[tuple, list] = {}  # metric key -> [attributes per part type, USD totals per part type]
        self.listed: dict[tuple, list] = {}  # metric key -> [attributes, list-price USD, billed USD]
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

    def slot(self, table: dict[tuple, list], key: tuple, make: Any) -> list:
        with self.lock:
            slot = table.get(key)
            if slot is None:
                slot = table[key] = make()
            return slot

    def _observe_parts(self, options: Any) -> list[Observation]:
        with self.lock:
            rows = [(sets, list(totals)) for sets, totals in self.parts.values()]
        return [Observation(v, sets[i]) for sets, totals in rows for i, v in enumerate(totals) if v]

    def _observe_listed(self, index: int) -> Any:
        def observe(options: Any) -> list[Observation]:
            with self.lock:
                return [Observation(slot[index], slot[0]) for slot in self.listed.values()]

        return observe

    def _observe_active(self, options: Any) -> list[Observation]:
        with self.lock:
            return [Observation(count, attrs) for attrs, count in self.active.values()]


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


_INPUT_KEYS = (n.INPUT_MESSAGES, n.SYSTEM_INSTRUCTIONS, n.TOOL_DEFINITIONS)
_CONTENT_KEYS = frozenset((*_INPUT_KEYS, n.OUTPUT_MESSAGES))
_MARK = "…[truncated]"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


_SHORT = 32  # strings this short (roles, part types, ids, mime types) are never cut: the shape stays readable


def _strings(value: Any, out: list[tuple[Any, Any, int]]) -> None:
    """Every string leaf longer than ``_SHORT`` of a JSON structure, as (container, key, length)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                if len(v) > _SHORT:
                    out.append((value, k, len(v)))
            elif isinstance(v, (dict, list)):
                _strings(v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                if len(v) > _SHORT:
                    out.append((value, i, len(v)))
            elif isinstance(v, (dict, list)):
                _strings(v, out)


def _shorten(value: Any, text: str, limit: int) -> tuple[Any, str]:
    """(structure, its JSON) within ``limit`` characters, still valid JSON: the longest strings (a base64
    image, a long prompt) are cut first, down to a common length, each marked; what still does not fit
    (very many small items) loses items from the end. Works on a copy: the caller's lists are kept."""
    value = json.loads(text)  # a private deep copy, plain JSON types only
    for _ in range(4):  # escaping makes characters and JSON length differ a little: re-measure
        excess = len(text) - limit
        if excess <= 0:
            return value, text
        leaves: list[tuple[Any, Any, int]] = []
        _strings(value, leaves)
        if not leaves:
            break
        lengths = sorted((size for _, _, size in leaves), reverse=True)
        need = excess + len(_MARK) * len(lengths) + 16
        # the largest common length T with sum(max(0, size - T)) >= need
        keep = 0
        cut = 0
        for i, size in enumerate(lengths):
            nxt = lengths[i + 1] if i + 1 < len(lengths) else 0
            cut += (size - nxt) * (i + 1)
            if cut >= need:
                keep = nxt + (cut - need) // (i + 1)
                break
        for container, key, size in leaves:
            if size > keep:
                container[key] = container[key][:keep] + _MARK
        text = _dumps(value)
    while len(text) > limit and isinstance(value, list) and value:
        value.pop()
        text = _dumps(value)
    if len(text) > limit:
        value, text = [], "[]"
    return value, text


def cap_json(value: Any, limit: int) -> str:
    """Content as JSON text for a span attribute, at most ``limit`` characters and always valid JSON."""
    text = _dumps(value)
    if len(text) <= limit:
        return text
    return _shorten(value, text, limit)[1]


def cap_content(value: Any, limit: int) -> Any:
    """Content as a structured value for an event attribute, its JSON at most ``limit`` characters."""
    text = _dumps(value)
    if len(text) <= limit:
        return value
    return _shorten(value, text, limit)[0]
