"""One benchmark measurement, in a fresh process of one variant's virtualenv.

    <venv>/bin/python benchmarks/worker.py --variant otel-llm --scenario sync_chat --n 2000 --url http://127.0.0.1:PORT

Sets up the same OpenTelemetry SDK for every variant (TracerProvider + BatchSpanProcessor to a
counting no-op exporter, MeterProvider + InMemoryMetricReader), applies the variant's
instrumentation with content capture off, warms up, then times ``n`` calls: CPU time of the whole
process (``time.process_time_ns``: every thread, so the span processor's export thread and the
garbage collector count too) divided by ``n``, and the median wall time of one call. It prints
one JSON object with those numbers and what the variant recorded (spans and metric points per
call), which ``run.py`` checks.

The fake provider runs in another process (started once by ``run.py``): its CPU is not counted.
Only the standard library, the openai SDK, httpx, requests and the variant's own packages are
imported here.
"""

from __future__ import annotations

# ruff: noqa: E402 (the heap pad below comes before every other import)
import os as _os

# a counted repeat's heap layout (run.py, CG_LAYOUT_STEP's note): small objects of 31 sizes, held for the process's
# life, allocated before anything else, so that every later object (the interned names among them) lands elsewhere
_HEAP_PAD = [bytes(16 * (1 + i % 31)) for i in range(37 * int(_os.environ.get("BENCH_HEAP_PAD") or 0))]

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

SCENARIOS = (
    "sync_chat",
    "async_chat",
    "stream_chat",
    "stream_chat_10",
    "embeddings",
    "raw_httpx",
    "raw_requests",
    "responses",
    "chat_cached",
    "chat_reasoning",
    "responses_reasoning",
    "chat_tool_call",
    "non_llm_get",
)
VARIANTS = (
    "baseline",
    "floor",
    "official-floor",
    "otel-llm",
    "genai-openai",
    "openllmetry",
    "openinference",
    "openlit",
)

CHAT_MODEL = "gpt-4.1-mini"
EMBED_MODEL = "text-embedding-3-small"
PROMPT = "Say something short about telemetry."
MESSAGES = [{"role": "user", "content": PROMPT}]
MAX_TOKENS = 64
STREAM_CHUNKS = 50
STREAM_TOKENS = (24, 40)  # the stream floor's token counts (see floor_stream)
SHORT_STREAM_CHUNKS = 10  # stream_chat_10: the per-chunk cost is the slope between the two stream lengths
# Counted runs pace the fake provider's stream events this far apart (its ``slow-chunks`` pacing, which changes
# nothing but the timing). Under valgrind the client runs ~50x slower than the provider: unpaced, the whole
# stream waits in the socket and the client reads it in a few large pieces, many events each, a grouping that
# moves from run to run (±0.1 M a 10-chunk stream) and that no client at native speed sees (it reads each event
# as it comes, as it does from a real provider, whose tokens arrive tens of ms apart). Paced, every variant
# reads one event a piece.
COUNTED_STREAM_GAP_S = 0.03
PACED_STREAMS = False  # set by --callgrind
# run.py's price of the usage event alone: "0" or "1" makes a stream scenario's call a bare read of the same stream's
# bytes through the openai client's own HTTP client, without or with ``stream_options.include_usage``: no SDK parsing,
# no instrumentation (the worker's variant is the baseline)
USAGE_READ = _os.environ.get("BENCH_USAGE_READ")


def usage_read_call(client: Any, base: str, headers: dict[str, str], usage: str) -> Callable[[], Any]:
    """One streamed chat call's bytes read where otel-llm's byte tap sits (the response's byte stream, below
    httpx's decoding and the SDK's SSE parsing), asking for the usage event or not: the difference between the two
    is what the HTTP stack alone pays for the event otel-llm asks for."""
    http = client._client  # the SDK's own HTTP client (httpx or httpx2, whichever this openai uses): its stack
    body: dict[str, Any] = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": True}
    if usage == "1":
        body["stream_options"] = {"include_usage": True}
    sent = dict(headers, authorization="Bearer sk-bench")

    def call() -> Any:
        reads = 0
        with http.stream("POST", base + "/v1/chat/completions", json=body, headers=sent) as response:
            for _ in response.stream:
                reads += 1
        return reads

    return call


# The calls production makes most, beyond the short prompt above (issue #31): an application with a long system
# prompt (the provider reports part of it as cache reads: the fake provider's gpt-4.1-mini caches 40% of a prompt
# of 16 tokens or more), a reasoning model (reasoning tokens inside the output tokens), and a tool-call turn.
SYSTEM_PROMPT = " ".join(
    f"Rule {i}: answer in plain English, cite the telemetry source, keep units, never invent a metric name."
    for i in range(1, 61)
)  # ~1,200 prompt tokens, as an application's instructions are
CACHED_MESSAGES = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": PROMPT}]
REASONING_MODEL = "o4-mini"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
TOOL_MESSAGES = [{"role": "user", "content": "What is the weather in Lisbon?"}]
TOOL_HEADERS = {"x-fake-answer": "tool_call"}
# scenario -> the chat.completions.create arguments (the Responses scenarios are made apart)
CHAT_CALLS: dict[str, dict[str, Any]] = {
    "sync_chat": {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS},
    "chat_cached": {"model": CHAT_MODEL, "messages": CACHED_MESSAGES, "max_tokens": MAX_TOKENS},
    "chat_reasoning": {
        "model": REASONING_MODEL,
        "messages": MESSAGES,
        "max_completion_tokens": 4 * MAX_TOKENS,
        "reasoning_effort": "low",
    },
    "chat_tool_call": {
        "model": CHAT_MODEL,
        "messages": TOOL_MESSAGES,
        "max_tokens": MAX_TOKENS,
        "tools": TOOLS,
        "extra_headers": TOOL_HEADERS,
    },
}
RESPONSES_CALLS: dict[str, dict[str, Any]] = {
    "responses": {"model": CHAT_MODEL, "input": PROMPT, "max_output_tokens": MAX_TOKENS},
    "responses_reasoning": {
        "model": REASONING_MODEL,
        "input": PROMPT,
        "max_output_tokens": 4 * MAX_TOKENS,
        "reasoning": {"effort": "low"},
    },
}

# Content capture off, for every variant, each by its own switch (set before any import).
CONTENT_OFF_ENV = {
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT",  # otel-llm, genai-openai
    "TRACELOOP_TRACE_CONTENT": "false",  # OpenLLMetry
    "OPENINFERENCE_HIDE_INPUTS": "true",  # OpenInference
    "OPENINFERENCE_HIDE_OUTPUTS": "true",
    "OTEL_SDK_DISABLED": "false",
}


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


# --------------------------------------------------------------------------------------------------
# the SDK, identical for every variant


def setup_sdk() -> tuple[Any, Any, Any]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class CountingExporter(SpanExporter):
        """Exports nowhere; counts spans and remembers which instrumentation scopes made them."""

        def __init__(self) -> None:
            self.count = 0
            self.scopes: dict[str, int] = {}
            self.last: Any = None

        def export(self, spans: Any) -> Any:
            self.count += len(spans)
            self.last = spans[-1]  # its attribute keys are compared between the floor and otel-llm
            for s in spans:
                scope = s.instrumentation_scope.name if s.instrumentation_scope else "?"
                self.scopes[scope] = self.scopes.get(scope, 0) + 1
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    resource = Resource.create({"service.name": "otel-llm-bench"})
    exporter = CountingExporter()
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(BatchSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader], resource=resource)
    trace.set_tracer_provider(tp)  # peers that read the globals see the same providers
    metrics.set_meter_provider(mp)
    return tp, mp, (exporter, reader)


def metric_records(reader: Any) -> dict[str, int]:
    """Measurements per metric name: histogram counts, and one per counter/gauge point."""
    out: dict[str, int] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                n = 0
                for p in metric.data.data_points:
                    n += int(getattr(p, "count", 1) or 0)
                out[metric.name] = out.get(metric.name, 0) + n
    return out


# --------------------------------------------------------------------------------------------------
# variants


def instrument(variant: str, tp: Any, mp: Any, pricing_file: str | None) -> None:
    if variant in ("baseline", "floor", "official-floor"):
        return
    if variant == "otel-llm":
        from otel_llm import LLMInstrumentor

        LLMInstrumentor().instrument(tracer_provider=tp, meter_provider=mp, capture_content=False)
    elif variant == "genai-openai":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor as TraceloopInstrumentor

        TraceloopInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    elif variant == "openinference":
        from openinference.instrumentation import TraceConfig
        from openinference.instrumentation.openai import OpenAIInstrumentor as OIInstrumentor

        OIInstrumentor().instrument(tracer_provider=tp, config=TraceConfig(hide_inputs=True, hide_outputs=True))
    elif variant == "openlit":
        import openlit

        kwargs: dict[str, Any] = {
            "application_name": "otel-llm-bench",
            "tracer": tp.get_tracer("openlit"),
            "meter": mp.get_meter("openlit"),
            "pricing_json": pricing_file,  # a local file: openlit would otherwise fetch prices over the network
        }
        import inspect

        params = inspect.signature(openlit.init).parameters
        kwargs["capture_message_content" if "capture_message_content" in params else "trace_content"] = False
        openlit.init(**kwargs)
    else:
        raise SystemExit(f"unknown variant {variant!r}")


class Floor:
    """The bare SDK cost: one CLIENT span with ~12 attributes and the same metric points as otel-llm,
    done in-process around an uninstrumented call (no patching, no parsing, no context attach)."""

    def __init__(self, tp: Any, mp: Any, host: str, port: int) -> None:
        from opentelemetry.trace import SpanKind

        self.kind = SpanKind.CLIENT
        self.tracer = tp.get_tracer("bench.floor")
        meter = mp.get_meter("bench.floor")
        self.duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
        self.tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
        self.cost = meter.create_histogram("gen_ai.client.operation.cost", unit="USD")
        self.ttfc = meter.create_histogram("gen_ai.client.operation.time_to_first_chunk", unit="s")
        self.tpoc = meter.create_histogram("gen_ai.client.operation.time_per_output_chunk", unit="s")
        # otel-llm's rate-limit headroom gauges, set as it sets them: at most once a second per series
        self.rl_remaining = meter.create_gauge("gen_ai.client.rate_limit.remaining", unit="1")
        self.rl_limit = meter.create_gauge("gen_ai.client.rate_limit.limit", unit="1")
        self._rl_last: dict[tuple[str, str], float] = {}
        self._rl_interval = float(os.environ.get("OTEL_LLM_RATE_LIMIT_INTERVAL") or 1.0)  # otel-llm's option
        self._rl_attrs: dict[tuple[str, str], tuple[dict, dict]] = {}
        self.host = host
        self.port = port
        self._mattrs: dict[tuple[str, str, str], tuple[dict, dict, dict]] = {}

    def metric_attrs(self, operation: str, model: str, response_model: str) -> tuple[dict, dict, dict]:
        """The same attribute sets otel-llm puts on its points, built once per (operation, model, response model)."""
        key = (operation, model, response_model)
        hit = self._mattrs.get(key)
        if hit is None:
            base = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": model,
                "gen_ai.response.model": response_model,
                "server.address": self.host,
                "server.port": self.port,
            }
            hit = self._mattrs[key] = (
                base,
                dict(base, **{"gen_ai.token.type": "input"}),
                dict(base, **{"gen_ai.token.type": "output"}),
            )
        return hit

    def start(
        self,
        operation: str,
        model: str,
        stream: bool,
        http_url: str | None = None,
        api_type: str = "chat_completions",
        request: dict[str, Any] | None = None,
    ) -> Any:
        """A span with the attribute keys otel-llm's own span has at its start, for the same call."""
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openai",
            "otel_llm.layer": "sdk" if http_url is None else "http",
            "gen_ai.request.model": model,
            "server.address": self.host,
            "server.port": self.port,
        }
        if operation == "chat":
            attrs["openai.api.type"] = api_type
            limit = MAX_TOKENS
            if request is not None:  # max_tokens, max_completion_tokens or max_output_tokens, as sent
                limit = (
                    request.get("max_tokens")
                    or request.get("max_completion_tokens")
                    or request.get("max_output_tokens", MAX_TOKENS)
                )
            attrs["gen_ai.request.max_tokens"] = limit
        else:
            attrs["gen_ai.request.encoding_formats"] = ("base64",)
        if stream:
            attrs["gen_ai.request.stream"] = True
        if http_url is not None:
            attrs["url.full"] = http_url
        return self.tracer.start_span(f"{operation} {model}", kind=self.kind, attributes=attrs)

    def end(
        self,
        span: Any,
        t0: float,
        model: str,
        rid: str,
        reason: str,
        tin: int,
        tout: int | None,
        stream_gaps: Any = None,
        responses: bool = False,
        cached: int = 0,
        reasoning: int = 0,
    ) -> None:
        """The attribute keys otel-llm adds at the end (values from the SDK's object or constants: no
        parsing, no header lookups, no pricing), and the same metric points. Cache-read and reasoning token
        counts are span attributes (and a cost part for cache reads, which the model prices apart); their
        per-type totals are otel-llm's observable counters, tallied in-process and read at collection, so
        they add no measurement to a call (issue #31): the floor records none either."""
        dur = time.perf_counter() - t0
        operation = span.attributes["gen_ai.operation.name"]
        base, m_in, m_out = self.metric_attrs(operation, span.attributes["gen_ai.request.model"], model)
        attrs: dict[str, Any] = {
            "gen_ai.response.model": model,
            "gen_ai.usage.input_tokens": tin,
            "http.response.status_code": 200,
            "gen_ai.rate_limit.remaining_requests": 9999.0,
            "gen_ai.rate_limit.remaining_tokens": 3999926.0,
            "gen_ai.usage.cost.amount": 0.0001,
            "gen_ai.usage.cost.currency": "USD",
            "gen_ai.usage.cost.source": "local",
            "otel_llm.cost.origin": "genai_prices",
            "otel_llm.cost.input": 0.00008,  # the cost split by token type (its non-zero parts)
        }
        if tout is not None:  # chat (embeddings have input tokens only, and a dimension count instead)
            attrs["gen_ai.response.id"] = rid
            attrs["gen_ai.response.finish_reasons"] = (reason,)
            attrs["gen_ai.usage.output_tokens"] = tout
            attrs["openai.response.service_tier"] = "default"
            attrs["otel_llm.cost.output"] = 0.00002
            request_model = span.attributes["gen_ai.request.model"]
            if model != request_model:  # a dated response model is priced as the one asked for, and says so
                attrs["otel_llm.cost.model"] = request_model
            if not responses:  # the Responses API has no system fingerprint
                attrs["openai.response.system_fingerprint"] = "fp_1b5a0dfa74"
            if cached:
                attrs["gen_ai.usage.cache_read.input_tokens"] = cached
                attrs["otel_llm.cost.cache_read"] = 0.00001
            if reasoning:
                attrs["gen_ai.usage.reasoning.output_tokens"] = reasoning
        else:
            attrs["gen_ai.embeddings.dimension.count"] = 1536
        if stream_gaps is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = stream_gaps[0]
            attrs["otel_llm.stream.outcome"] = "completed"
        span.set_attributes(attrs)
        self.duration.record(dur, base)
        now = t0 + dur
        rl_key = (operation, span.attributes["gen_ai.request.model"])
        last = self._rl_last.get(rl_key)
        if last is None or now - last >= self._rl_interval:
            self._rl_last[rl_key] = now
            sets = self._rl_attrs.get(rl_key)
            if sets is None:
                gauge_base = {k: v for k, v in base.items() if k != "gen_ai.response.model"}
                sets = self._rl_attrs[rl_key] = (
                    dict(gauge_base, **{"gen_ai.rate_limit.resource": "requests"}),
                    dict(gauge_base, **{"gen_ai.rate_limit.resource": "tokens"}),
                )
            self.rl_remaining.set(9999.0, sets[0])
            self.rl_remaining.set(3999926.0, sets[1])
            self.rl_limit.set(10000.0, sets[0])
            self.rl_limit.set(4000000.0, sets[1])
        self.tokens.record(tin, m_in)
        if tout is not None:
            self.tokens.record(tout, m_out)
        self.cost.record(0.0001, base)
        if stream_gaps is not None:  # otel-llm's stream metrics: time to first chunk, time per chunk
            ttfc, gaps = stream_gaps
            self.ttfc.record(ttfc, base)
            record = self.tpoc.record
            for g in gaps:
                record(g, base)
        span.end()

    def end_chat(self, span: Any, t0: float, r: Any) -> None:
        """``end`` for a chat completion object: token counts and details as the SDK's object has them."""
        u = r.usage
        pd, cd = u.prompt_tokens_details, u.completion_tokens_details
        cached = (pd.cached_tokens or 0) if pd is not None else 0
        reasoning = (cd.reasoning_tokens or 0) if cd is not None else 0
        self.end(span, t0, r.model, r.id, r.choices[0].finish_reason, u.prompt_tokens, u.completion_tokens,
                 cached=cached, reasoning=reasoning)  # fmt: skip

    def end_responses(self, span: Any, t0: float, r: Any) -> None:
        """``end`` for a Responses API object."""
        u = r.usage
        idt, odt = u.input_tokens_details, u.output_tokens_details
        cached = (idt.cached_tokens or 0) if idt is not None else 0
        reasoning = (odt.reasoning_tokens or 0) if odt is not None else 0
        self.end(span, t0, r.model, r.id, r.status, u.input_tokens, u.output_tokens, responses=True,
                 cached=cached, reasoning=reasoning)  # fmt: skip


# the official instrumentation's histogram buckets (the GenAI conventions' advisory boundaries)
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]


class OfficialFloor(Floor):
    """The bare SDK cost of the official instrumentation's (``genai-openai``) telemetry for the same call: its
    CLIENT span with the same attribute keys, its duration and token-usage histogram records (on a stream, which
    it asks no usage for: time to first chunk and one point per later chunk instead of token counts) with the
    same attribute sets (the response's service tier and system fingerprint included) and buckets, each in its
    span's context as genai-openai records them (so the SDK offers each an exemplar); nothing else. ``run.py``
    checks it against what genai-openai recorded, as it checks the floor against otel-llm."""

    def __init__(self, tp: Any, mp: Any, host: str, port: int) -> None:
        from opentelemetry.trace import SpanKind

        self.kind = SpanKind.CLIENT
        self.tracer = tp.get_tracer("bench.official_floor")
        meter = mp.get_meter("bench.official_floor")
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", explicit_bucket_boundaries_advisory=TOKEN_BUCKETS
        )
        self.ttfc = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tpoc = meter.create_histogram(
            "gen_ai.client.operation.time_per_output_chunk",
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        from opentelemetry.trace import set_span_in_context

        self.in_context = set_span_in_context  # genai-openai records every point in its span's context (exemplars)
        self.host = host
        self.port = port
        self._sets: dict[tuple[Any, ...], tuple[dict, dict, dict]] = {}

    def start(
        self,
        operation: str,
        model: str,
        stream: bool,
        http_url: str | None = None,
        api_type: str = "chat_completions",
        request: dict[str, Any] | None = None,
    ) -> Any:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "server.address": self.host,
            "server.port": self.port,
        }
        if operation == "chat":
            req = request or {}
            attrs["gen_ai.request.max_tokens"] = (
                req.get("max_tokens") or req.get("max_completion_tokens") or req.get("max_output_tokens", MAX_TOKENS)
            )
            if api_type == "responses":
                attrs["openai.api.type"] = "responses"
        if stream:
            attrs["gen_ai.request.stream"] = True
        return self.tracer.start_span(f"{operation} {model}", kind=self.kind, attributes=attrs)

    def _finish(self, span: Any, t0: float, model: str, tin: int, tout: int | None, end: dict[str, Any],
                tier: str | None, fingerprint: str | None) -> None:  # fmt: skip
        dur = time.perf_counter() - t0
        span.set_attributes(end)
        a = span.attributes
        key = (a["gen_ai.operation.name"], a["gen_ai.request.model"], model, tier, fingerprint)
        sets = self._sets.get(key)
        if sets is None:
            base = {
                "gen_ai.operation.name": key[0],
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": key[1],
                "server.address": self.host,
                "server.port": self.port,
                "gen_ai.response.model": model,
            }
            if tier is not None:
                base["openai.response.service_tier"] = tier
            if fingerprint is not None:
                base["openai.response.system_fingerprint"] = fingerprint
            sets = self._sets[key] = (
                base,
                dict(base, **{"gen_ai.token.type": "input"}),
                dict(base, **{"gen_ai.token.type": "output"}),
            )
        ctx = self.in_context(span)
        self.duration.record(dur, sets[0], ctx)
        self.tokens.record(tin, sets[1], ctx)
        if tout is not None:
            self.tokens.record(tout, sets[2], ctx)
        span.end()

    def _chat(self, span: Any, t0: float, model: str, rid: str, reason: str, tin: int, tout: int, cached: int,
              reasoning: int, tier: str | None, fingerprint: str | None,
              tier_on_points: bool = True) -> None:  # fmt: skip
        end: dict[str, Any] = {
            "gen_ai.response.id": rid,
            "gen_ai.response.model": model,
            "gen_ai.response.finish_reasons": (reason,),
            "gen_ai.usage.input_tokens": tin,
            "gen_ai.usage.output_tokens": tout,
        }
        if cached:
            end["gen_ai.usage.cache_read.input_tokens"] = cached
        if reasoning:
            end["gen_ai.usage.reasoning.output_tokens"] = reasoning
        if tier is not None:
            end["openai.response.service_tier"] = tier
        if fingerprint is not None:
            end["openai.response.system_fingerprint"] = fingerprint
        self._finish(span, t0, model, tin, tout, end, tier if tier_on_points else None, fingerprint)

    def end(self, span: Any, t0: float, model: str, rid: str, reason: str, tin: int, tout: int | None,
            stream_gaps: Any = None, responses: bool = False, cached: int = 0, reasoning: int = 0) -> None:  # fmt: skip
        if tout is None:  # embeddings
            end = {
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": tin,
                "gen_ai.embeddings.dimension.count": 1536,
            }
            self._finish(span, t0, model, tin, None, end, None, None)
            return
        self._chat(span, t0, model, rid, reason, tin, tout, cached, reasoning, None, None)

    def end_chat(self, span: Any, t0: float, r: Any) -> None:
        u = r.usage
        pd, cd = u.prompt_tokens_details, u.completion_tokens_details
        self._chat(span, t0, r.model, r.id, r.choices[0].finish_reason, u.prompt_tokens, u.completion_tokens,
                   (pd.cached_tokens or 0) if pd is not None else 0,
                   (cd.reasoning_tokens or 0) if cd is not None else 0,
                   r.service_tier, r.system_fingerprint)  # fmt: skip

    def end_responses(self, span: Any, t0: float, r: Any) -> None:
        u = r.usage
        idt, odt = u.input_tokens_details, u.output_tokens_details
        self._chat(
            span,
            t0,
            r.model,
            r.id,
            r.status,
            u.input_tokens,
            u.output_tokens,
            (idt.cached_tokens or 0) if idt is not None else 0,
            (odt.reasoning_tokens or 0) if odt is not None else 0,
            r.service_tier,
            None,
            tier_on_points=False,
        )  # fmt: skip  (its Responses points carry no service tier)

    def end_stream(self, span: Any, t0: float, model: str, rid: str, reason: str, tier: str | None, ttfc: float,
                   gaps: list[float]) -> None:  # fmt: skip
        """genai-openai's telemetry of a stream it did not ask usage for: no token counts, time to first chunk
        and one point per later chunk, each point with the span's context as it records them."""
        dur = time.perf_counter() - t0
        end: dict[str, Any] = {
            "gen_ai.response.id": rid,
            "gen_ai.response.model": model,
            "gen_ai.response.finish_reasons": (reason,),
            "gen_ai.response.time_to_first_chunk": ttfc,
        }
        if tier is not None:
            end["openai.response.service_tier"] = tier
        span.set_attributes(end)
        base = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": CHAT_MODEL,
            "server.address": self.host,
            "server.port": self.port,
            "gen_ai.response.model": model,
        }
        if tier is not None:
            base["openai.response.service_tier"] = tier
        ctx = self.in_context(span)
        self.ttfc.record(ttfc, base, ctx)
        record = self.tpoc.record
        for g in gaps:
            record(g, base, ctx)
        self.duration.record(dur, base, ctx)
        span.end()


def official_floor_stream(floor: OfficialFloor, span: Any, t0: float, stream: Any) -> int:
    """The official floor's reading of an SDK stream, as genai-openai reads one: every chunk timed (it asks for
    no usage chunk), model, id, finish reason and service tier from the chunks."""
    n = 0
    gaps = []
    ttfc = last = 0.0
    model = rid = reason = ""
    tier = None
    for chunk in stream:
        now = time.perf_counter()
        if n == 0:
            ttfc = now - t0
            model, rid, tier = chunk.model, chunk.id, chunk.service_tier
        else:
            gaps.append(now - last)
        last = now
        n += 1
        if chunk.choices and chunk.choices[0].finish_reason:
            reason = chunk.choices[0].finish_reason
    floor.end_stream(span, t0, model, rid, reason, tier, ttfc, gaps)
    return n


def floor_stream(floor: Floor, span: Any, t0: float, stream: Any) -> int:
    """The floor's reading of an SDK stream: time to first chunk and each chunk's gap. It asks for no usage chunk:
    otel-llm reads the usage of the one it asks for out of the body's bytes, before the SDK would build a chunk
    object of it (``_stream.UsageCut``), so the SDK's cost of that chunk is no cost of otel-llm's telemetry; the
    token counts are constants (``STREAM_TOKENS``), as the cost values are. Returns the chunk count."""
    n = 0
    gaps = []
    ttfc = last = 0.0
    model = rid = reason = ""
    for chunk in stream:
        now = time.perf_counter()
        if n == 0:
            ttfc = now - t0
            model, rid = chunk.model, chunk.id
        else:
            gaps.append(now - last)
        last = now
        n += 1
        if chunk.choices and chunk.choices[0].finish_reason:
            reason = chunk.choices[0].finish_reason
    floor.end(span, t0, model, rid, reason, *STREAM_TOKENS, (ttfc, gaps))
    return n


# --------------------------------------------------------------------------------------------------
# scenarios: each returns a zero-argument call (sync) or coroutine function (async)


def make_call(variant: str, scenario: str, url: str, floor: Floor | None) -> tuple[Callable[[], Any], bool]:
    base = url.rstrip("/")
    chat_body = {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS}
    if scenario in ("stream_chat", "stream_chat_10", "embeddings", *CHAT_CALLS, *RESPONSES_CALLS):
        import openai

        client = openai.OpenAI(base_url=base + "/v1", api_key="sk-bench", max_retries=0)
        if scenario in RESPONSES_CALLS:
            rkw = RESPONSES_CALLS[scenario]
            rmodel = rkw["model"]

            def call() -> Any:
                if floor is None:
                    return client.responses.create(**rkw)
                span = floor.start("chat", rmodel, False, api_type="responses", request=rkw)
                t0 = time.perf_counter()
                r = client.responses.create(**rkw)
                floor.end_responses(span, t0, r)
                return r

            return call, False
        if scenario in CHAT_CALLS:
            ckw = CHAT_CALLS[scenario]
            cmodel = ckw["model"]

            def call() -> Any:
                if floor is None:
                    return client.chat.completions.create(**ckw)
                span = floor.start("chat", cmodel, False, request=ckw)
                t0 = time.perf_counter()
                r = client.chat.completions.create(**ckw)
                floor.end_chat(span, t0, r)
                return r

            return call, False
        if scenario == "embeddings":

            def call() -> Any:
                if floor is None:
                    return client.embeddings.create(model=EMBED_MODEL, input="hello telemetry")
                span = floor.start("embeddings", EMBED_MODEL, False)
                t0 = time.perf_counter()
                r = client.embeddings.create(model=EMBED_MODEL, input="hello telemetry")
                floor.end(span, t0, r.model, "", "stop", r.usage.prompt_tokens, None)
                return r

            return call, False
        headers = {"x-fake-chunks": str(SHORT_STREAM_CHUNKS if scenario == "stream_chat_10" else STREAM_CHUNKS)}
        if PACED_STREAMS:
            headers.update({"x-fake-fault": "slow-chunks", "x-fake-delay": str(COUNTED_STREAM_GAP_S)})
        if USAGE_READ is not None and floor is None:
            return usage_read_call(client, base, headers, USAGE_READ), False

        def call() -> Any:
            if floor is None:
                stream = client.chat.completions.create(
                    model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True, extra_headers=headers
                )
                n = 0
                for _ in stream:
                    n += 1
                return n
            span = floor.start("chat", CHAT_MODEL, True)
            t0 = time.perf_counter()
            # neither floor asks for a usage chunk (genai-openai asks none; otel-llm's never reaches the SDK)
            stream = client.chat.completions.create(
                model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, stream=True, extra_headers=headers
            )
            if isinstance(floor, OfficialFloor):
                return official_floor_stream(floor, span, t0, stream)
            return floor_stream(floor, span, t0, stream)

        return call, False
    if scenario == "async_chat":
        import openai

        aclient = openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-bench", max_retries=0)

        async def acall() -> Any:
            if floor is None:
                return await aclient.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS)
            span = floor.start("chat", CHAT_MODEL, False, request=CHAT_CALLS["sync_chat"])
            t0 = time.perf_counter()
            r = await aclient.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS)
            floor.end_chat(span, t0, r)
            return r

        return acall, True
    if scenario in ("raw_httpx", "non_llm_get"):
        import httpx

        hclient = httpx.Client(timeout=30)
        if scenario == "non_llm_get":

            def call() -> Any:  # not LLM traffic: no variant records anything, the floor included
                return hclient.get(base + "/healthz").json()

            return call, False
        target = base + "/v1/chat/completions"

        def call() -> Any:
            if floor is None:
                return hclient.post(target, json=chat_body).json()
            span = floor.start("chat", CHAT_MODEL, False, http_url=target)
            t0 = time.perf_counter()
            d = hclient.post(target, json=chat_body).json()
            u = d["usage"]
            floor.end(span, t0, d["model"], d["id"], d["choices"][0]["finish_reason"], u["prompt_tokens"],
                      u["completion_tokens"])  # fmt: skip
            return d

        return call, False
    if scenario == "raw_requests":
        import requests

        session = requests.Session()
        target = base + "/v1/chat/completions"

        def call() -> Any:
            if floor is None:
                return session.post(target, json=chat_body, timeout=30).json()
            span = floor.start("chat", CHAT_MODEL, False, http_url=target)
            t0 = time.perf_counter()
            d = session.post(target, json=chat_body, timeout=30).json()
            u = d["usage"]
            floor.end(span, t0, d["model"], d["id"], d["choices"][0]["finish_reason"], u["prompt_tokens"],
                      u["completion_tokens"])  # fmt: skip
            return d

        return call, False
    raise SystemExit(f"unknown scenario {scenario!r}")


# --------------------------------------------------------------------------------------------------
# measuring


BLOCKS = 10  # the measured loop is timed in this many blocks; a block hit by a burst of noise is outvoted
CAL_EVERY_NS = 10_000_000  # a calibration slice after every ~10 ms of calls
CAL_UNITS = 8  # calibration units per slice

_CAL_TEXT = json.dumps(
    {
        "id": "chatcmpl-calibration",
        "object": "chat.completion",
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "word " * 40}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 40, "prompt_tokens_details": {"cached_tokens": 0}},
    }
)


class _CalObj:
    __slots__ = ("a", "b")


def _calibration_unit() -> int:
    """A fixed mix of what instrumentations and clients do (JSON, dicts, small objects, calls, strings)."""
    d = json.loads(_CAL_TEXT)
    total = 0
    for i in range(30):
        o = _CalObj()
        o.a = i
        o.b = d["usage"]
        total += len(f"{d['model']}:{o.a}") + o.b["prompt_tokens"] + len(dict(o.b))
    return total + len(json.dumps(d))


def _blocks(n: int) -> list[int]:
    k = min(BLOCKS, n)
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


class Meter:
    """Times blocks of calls in CPU ns, with calibration slices interleaved (every ~10 ms of calls).

    The machine is shared: its speed changes from minute to minute. The calibration unit's CPU cost,
    measured in the same block as the calls, tracks that; per-call cost / calibration-unit cost is
    far steadier than either (``run.py`` turns it back into µs at the run's median speed)."""

    def __init__(self, n: int) -> None:
        self.walls = [0] * n
        self.per_call: list[float] = []  # CPU ns per call, per block
        self.per_cal: list[float] = []  # CPU ns per calibration unit, per block
        self._i = 0

    def slice(self) -> int:
        cpu = time.process_time_ns
        c0 = cpu()
        for _ in range(CAL_UNITS):
            _calibration_unit()
        return cpu() - c0

    def block_done(self, size: int, work_ns: int, cal_ns: int, slices: int) -> None:
        self.per_call.append(work_ns / size)
        self.per_cal.append(cal_ns / (slices * CAL_UNITS))

    def result(self) -> dict[str, Any]:
        norm = [c / k for c, k in zip(self.per_call, self.per_cal, strict=True)]
        return {
            "cpu_us": statistics.median(self.per_call) / 1000,  # median over blocks
            "cpu_mean_us": sum(self.per_call) / len(self.per_call) / 1000,
            "cpu_blocks_us": [round(b / 1000, 2) for b in self.per_call],
            "cal_us": statistics.median(self.per_cal) / 1000,
            "cpu_norm": statistics.median(norm),  # per-call cost in calibration units
            "wall_median_us": statistics.median(self.walls) / 1000,
        }


def measure_sync(call: Callable[[], Any], warmup: int, n: int) -> dict[str, Any]:
    for _ in range(warmup):
        call()
    gc.collect()
    m = Meter(n)
    walls = m.walls
    clock = time.perf_counter_ns
    cpu = time.process_time_ns
    i = 0
    for size in _blocks(n):
        first = m.slice()  # outside the block's timing
        inside = 0  # slices inside the block's timing
        slices = 1
        c0 = cpu()
        last = clock()
        for _ in range(size):
            t = clock()
            if t - last > CAL_EVERY_NS:
                inside += m.slice()
                slices += 1
                t = last = clock()
            call()
            walls[i] = clock() - t
            i += 1
        m.block_done(size, cpu() - c0 - inside, first + inside, slices)
    result = m.result()
    with MeasurementCounter() as counter:
        for _ in range(EXTRA_CALLS):
            call()
    result["measurements"] = counter.per_call(EXTRA_CALLS)
    return result


def measure_async(acall: Callable[[], Any], warmup: int, n: int) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        for _ in range(warmup):
            await acall()
        gc.collect()
        m = Meter(n)
        walls = m.walls
        clock = time.perf_counter_ns
        cpu = time.process_time_ns
        i = 0
        for size in _blocks(n):
            first = m.slice()  # outside the block's timing
            inside = 0  # slices inside the block's timing
            slices = 1
            c0 = cpu()
            last = clock()
            for _ in range(size):
                t = clock()
                if t - last > CAL_EVERY_NS:
                    inside += m.slice()
                    slices += 1
                    t = last = clock()
                await acall()
                walls[i] = clock() - t
                i += 1
            m.block_done(size, cpu() - c0 - inside, first + inside, slices)
        result = m.result()
        with MeasurementCounter() as counter:  # in this event loop: the client's connections belong to it
            for _ in range(EXTRA_CALLS):
                await acall()
        result["measurements"] = counter.per_call(EXTRA_CALLS)
        return result

    return asyncio.run(main())


class MeasurementCounter:
    """Counts metric measurements by instrument while active: every ``record``/``add``/``set``, which
    data points cannot tell for counters and gauges."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._cls: Any = None
        self._original: Any = None

    def __enter__(self) -> MeasurementCounter:
        from opentelemetry.sdk.metrics._internal import measurement_consumer as mc

        self._cls = cls = mc.SynchronousMeasurementConsumer
        self._original = original = cls.consume_measurement
        counts = self.counts

        def counting(consumer: Any, measurement: Any) -> None:
            name = measurement.instrument.name
            counts[name] = counts.get(name, 0) + 1
            original(consumer, measurement)

        cls.consume_measurement = counting
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cls.consume_measurement = self._original

    def per_call(self, calls: int) -> dict[str, float]:
        return {k: round(v / calls, 3) for k, v in sorted(self.counts.items())}


EXTRA_CALLS = 20  # counted calls after the timed loop


def memory_run(call: Callable[[], Any], warmup: int, n: int, every: int) -> dict[str, Any]:
    """RSS and live-object counts after warm-up and every ``every`` calls up to ``n``."""
    for _ in range(warmup):
        call()
    samples = []

    def sample(done: int) -> None:
        gc.collect()
        samples.append({"calls": done, "rss": _rss_bytes(), "objects": len(gc.get_objects())})

    sample(0)
    done = 0
    while done < n:
        for _ in range(min(every, n - done)):
            call()
        done += min(every, n - done)
        sample(done)
    return {"samples": samples}


def _ab(patched: Callable[[], Any], original: Callable[[], Any], blocks: int = 60, size: int = 5000) -> float:
    """CPU µs per call of ``patched`` over ``original``: alternating blocks, median of the paired differences."""
    clock = time.process_time_ns
    for _ in range(size):
        patched()
        original()
    diffs = []
    for i in range(blocks):
        times = []
        for fn in (patched, original) if i % 2 == 0 else (original, patched):
            t = clock()
            for _ in range(size):
                fn()
            times.append((clock() - t) / size)
        diffs.append(times[0] - times[1] if i % 2 == 0 else times[1] - times[0])
    return statistics.median(diffs) / 1000


def _patch_cost(cls: type, name: str, arg: Any) -> tuple[bool, float]:
    """What a variant's patch of ``cls.name`` adds to one call that is not an LLM call.

    The patch's wrapper (if the method is a wrapt wrapper, or otel-llm's plain-function patch) is put, the
    same way, around a method that returns at once, and that is timed against the bare method: the
    difference is the wrapper's dispatch plus its own checks, without the client's work around it (which would drown a
    sub-microsecond difference in noise)."""
    current = cls.__dict__[name]
    wrapper = getattr(current, "_self_wrapper", None)
    plain = False
    if wrapper is None and getattr(current, "__wrapped__", None) is not None and getattr(current, "__closure__", None):
        # otel-llm's plain-function patch (instrumentor._install_plain): the same wrapper, installed the same way
        cells = dict(zip(current.__code__.co_freevars, current.__closure__, strict=True))
        if "wrapper" in cells:
            wrapper, plain = cells["wrapper"].cell_contents, True
    if wrapper is None:
        return False, 0.0
    import wrapt

    class Bare:
        def send(self, request: Any, **kwargs: Any) -> Any:
            return request

    class Patched:
        def send(self, request: Any, **kwargs: Any) -> Any:
            return request

    if plain:
        from otel_llm.instrumentor import _install_plain

        _install_plain(Patched, "send", wrapper)
    else:
        wrapt.wrap_function_wrapper(Patched, "send", wrapper)
    bare, patched = Bare(), Patched()
    return True, _ab(lambda: patched.send(arg), lambda: bare.send(arg))


def micro(url: str) -> dict[str, Any]:
    """The patch's own cost on a non-LLM GET, for httpx and requests (see ``_patch_cost``)."""
    out: dict[str, Any] = {}
    target = url.rstrip("/") + "/healthz"
    import httpx

    request = httpx.Client().build_request("GET", target)
    out["httpx_patched"], out["httpx_send_us"] = _patch_cost(httpx.Client, "send", request)
    import requests

    prepared = requests.Session().prepare_request(requests.Request("GET", target))
    out["requests_patched"], out["requests_send_us"] = _patch_cost(requests.Session, "send", prepared)
    return out


_MISSING: Any = object()


class Patches:
    """What a variant's instrumentation replaced, found by comparing the client libraries' classes and
    modules before and after it instrumented; ``off()`` puts the originals back and ``on()`` the
    instrumentation's wrappers again. The instrumentation's own state (providers, instruments, caches)
    is never rebuilt, so toggling costs nothing inside the timed blocks, and it is the same mechanism
    for every variant (all of them patch with wrapt or plain attribute replacement)."""

    def __init__(self) -> None:
        self._owners = self._scan()
        self._before = self._snapshot()
        self.changed: list[tuple[Any, str, Any, Any]] = []

    @staticmethod
    def _scan() -> list[Any]:
        import importlib
        import inspect
        import pkgutil

        modules: list[Any] = []
        names = ["openai", "openai._base_client", "openai._client", "openai._streaming", "httpx", "httpx2"]
        names += ["requests", "requests.sessions", "requests.adapters"]
        try:
            import openai.resources

            names += [i.name for i in pkgutil.walk_packages(openai.resources.__path__, "openai.resources.")]
        except ImportError:
            pass
        for name in names:
            try:
                modules.append(importlib.import_module(name))
            except BaseException:
                continue
        owners: list[Any] = []
        seen: set[int] = set()
        for mod in modules:
            for obj in [mod, *vars(mod).values()]:
                if (obj is mod or inspect.isclass(obj)) and id(obj) not in seen:
                    seen.add(id(obj))
                    owners.append(obj)
        return owners

    def _snapshot(self) -> dict[tuple[int, str], Any]:
        return {(id(o), k): v for o in self._owners for k, v in list(vars(o).items())}

    def capture(self) -> int:
        """After instrumenting: remember every attribute that changed. Returns how many."""
        after = self._snapshot()
        by_id = {id(o): o for o in self._owners}
        for (oid, name), new in after.items():
            old = self._before.get((oid, name), _MISSING)
            if old is new or not callable(new):
                continue
            if old is _MISSING and not hasattr(new, "__wrapped__"):
                continue  # a module attribute that appeared with a late import, not a patch
            self.changed.append((by_id[oid], name, old, new))
        return len(self.changed)

    def off(self) -> None:
        for owner, name, old, _ in self.changed:
            if old is _MISSING:
                if name in vars(owner):
                    delattr(owner, name)
            else:
                setattr(owner, name, old)

    def on(self) -> None:
        for owner, name, _, new in self.changed:
            setattr(owner, name, new)


def measure_paired(
    on_call: Callable[[], Any], off_call: Callable[[], Any], is_async: bool, on: Callable[[], None],
    off: Callable[[], None], warmup: int, blocks: int, size: int,
) -> dict[str, Any]:  # fmt: skip
    """CPU per call with the instrumentation on and off, in alternating blocks of one process (the order
    flips every pair). The paired differences, each normalized by a calibration workload timed right
    before its pair, give the overhead: machine-speed changes between processes and rounds cancel out."""
    cpu = time.process_time_ns
    loop = asyncio.new_event_loop() if is_async else None

    def run(fn: Callable[[], Any], k: int) -> int:
        if loop is not None:

            async def many() -> int:
                c0 = cpu()
                for _ in range(k):
                    await fn()
                return cpu() - c0

            return loop.run_until_complete(many())
        c0 = cpu()
        for _ in range(k):
            fn()
        return cpu() - c0

    def cal() -> float:
        c0 = cpu()
        for _ in range(CAL_UNITS * 4):
            _calibration_unit()
        return (cpu() - c0) / (CAL_UNITS * 4)

    try:
        on()
        run(on_call, warmup)
        off()
        run(off_call, warmup)
        gc.collect()
        diffs: list[float] = []
        norm: list[float] = []
        cals: list[float] = []
        for b in range(blocks):
            unit = cal()
            order = (True, False) if b % 2 == 0 else (False, True)
            t: dict[bool, float] = {}
            for state in order:
                if state:
                    on()
                    run(on_call, 2)  # the first calls after a switch are not timed
                    t[state] = run(on_call, size) / size
                else:
                    off()
                    run(off_call, 2)
                    t[state] = run(off_call, size) / size
            diffs.append((t[True] - t[False]) / 1000)
            norm.append((t[True] - t[False]) / unit)
            cals.append(unit / 1000)
        on()
    finally:
        if loop is not None:
            loop.close()
    return {
        "paired_overhead_us": statistics.median(diffs),
        "paired_norm": statistics.median(norm),
        "paired_cal_us": statistics.median(cals),
        "paired_blocks_us": [round(d, 1) for d in diffs],
    }


_INSTRUMENTATION_PATHS = (
    "/otel_llm/",
    "site-packages/openlit/",
    "site-packages/openinference/",
    "site-packages/opentelemetry/instrumentation/",
    "site-packages/opentelemetry/util/genai/",
    "site-packages/wrapt/",
)


def _bucket(filename: str) -> str:
    """Where a code object lives: an instrumentation (any variant's), the OpenTelemetry API/SDK, or the rest."""
    f = filename.replace("\\", "/")
    if any(p in f for p in _INSTRUMENTATION_PATHS):
        return "instrumentation"
    if "site-packages/opentelemetry/" in f:
        return "opentelemetry"
    return "other"


def opcount(call: Callable[[], Any], is_async: bool, warmup: int, n: int) -> dict[str, Any]:
    """Python bytecode instructions executed per call, by where they run: the deterministic part of the
    cost (noise-free, unlike CPU time), counted with ``sys.settrace`` opcode events on this thread.
    Work done in C (JSON scanning, locks, wrapt) counts as the one instruction that called it."""
    counts: dict[str, int] = {}
    cache: dict[Any, str] = {}

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        bucket = cache.get(code)
        if bucket is None:
            bucket = cache[code] = _bucket(code.co_filename)
        frame.f_trace_opcodes = True
        frame.f_trace_lines = False

        def local(frame: Any, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[bucket] = counts.get(bucket, 0) + 1
            return local

        return local

    async def arun(k: int) -> None:
        for _ in range(k):
            await call()

    def run(k: int) -> None:
        if is_async:
            loop.run_until_complete(arun(k))
        else:
            for _ in range(k):
                call()

    loop = asyncio.new_event_loop() if is_async else None
    try:
        run(warmup)
        sys.settrace(tracer)
        try:
            run(n)
        finally:
            sys.settrace(None)
    finally:
        if loop is not None:
            loop.close()
    per = {k: v / n for k, v in counts.items()}
    return {"ops_per_call": sum(per.values()), "ops_by_place": {k: round(v, 1) for k, v in sorted(per.items())}}


CHECK_CALLS = 2  # --callgrind: calls after the counted ones, with their metric measurements counted


def counted_run(call: Callable[[], Any], is_async: bool, warmup: int, n: int, toggle: bool) -> dict[str, Any]:
    """The counted mode's calls (``run.py`` runs this worker under valgrind's callgrind, twice, with two
    values of ``n``): warm-up calls, then callgrind's instrumentation switched on for the whole process
    (every thread: the span processor's export thread and the garbage collector count), ``n`` calls,
    CHECK_CALLS calls with their measurements counted, and the span flush. Everything but the ``n`` calls
    is the same in both runs, so it cancels in (Ir(n2) - Ir(n1)) / (n2 - n1)."""

    def switch_on() -> None:
        if toggle:  # callgrind_control stops this process in a syscall (the wait below) and switches it on
            import subprocess

            subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], capture_output=True, check=False)

    if is_async:

        async def amain() -> dict[str, float]:
            for _ in range(warmup):
                await call()
            gc.collect()
            switch_on()
            for _ in range(n):
                await call()
            with MeasurementCounter() as counter:
                for _ in range(CHECK_CALLS):
                    await call()
            return counter.per_call(CHECK_CALLS)

        measurements = asyncio.run(amain())
    else:
        for _ in range(warmup):
            call()
        gc.collect()
        switch_on()
        for _ in range(n):
            call()
        with MeasurementCounter() as counter:
            for _ in range(CHECK_CALLS):
                call()
        measurements = counter.per_call(CHECK_CALLS)
    return {"measurements": measurements, "measurements_per_call": round(sum(measurements.values()), 3)}


def sdk_costs(tp: Any, mp: Any) -> dict[str, float]:
    """CPU µs of the SDK operations instrumentations are made of, on this machine, right now: the unit
    costs behind every overhead in the tables (a span with its attributes, one metric measurement)."""
    from opentelemetry.trace import SpanKind

    tracer = tp.get_tracer("bench.units")
    meter = mp.get_meter("bench.units")
    hist = meter.create_histogram("bench.units.histogram")
    gauge = meter.create_gauge("bench.units.gauge")
    m6 = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": CHAT_MODEL,
        "gen_ai.response.model": CHAT_MODEL + "-2025-04-14",
        "server.address": "127.0.0.1",
        "server.port": 8000,
    }
    start = {k: m6[k] for k in ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
                                "server.address", "server.port")}  # fmt: skip
    end = {
        "gen_ai.response.model": "m",
        "gen_ai.response.id": "chatcmpl-1",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 40,
        "gen_ai.usage.cost": 0.0001,
        "http.response.status_code": 200,
    }

    def span12() -> None:
        span = tracer.start_span("chat m", kind=SpanKind.CLIENT, attributes=start)
        span.set_attributes(end)
        span.end()

    def timed(fn: Callable[[], Any], n: int = 3000) -> float:
        cpu = time.process_time_ns
        runs = []
        for _ in range(7):
            c0 = cpu()
            for _ in range(n):
                fn()
            runs.append((cpu() - c0) / n / 1000)
        return statistics.median(runs)

    def call() -> None:
        pass

    return {
        "span_12_attrs_us": timed(span12),
        "histogram_record_6_attrs_us": timed(lambda: hist.record(1.0, m6)),
        "gauge_set_6_attrs_us": timed(lambda: gauge.set(1.0, m6)),
        "python_noop_call_us": timed(call, 100_000),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--variant", required=True, choices=VARIANTS)
    ap.add_argument("--scenario", required=True, choices=SCENARIOS)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=None, help="default: n/10, at least 50")
    ap.add_argument("--url", required=True, help="the fake provider, e.g. http://127.0.0.1:8000")
    ap.add_argument("--pricing-file", default=None, help="local price table for openlit")
    ap.add_argument("--memory", action="store_true", help="memory-growth run instead of timing")
    ap.add_argument("--every", type=int, default=10_000, help="memory sample interval (calls)")
    ap.add_argument("--profile", default=None, help="write a cProfile of the measured loop to this file")
    ap.add_argument("--micro", action="store_true", help="only the in-process patch cost on non-LLM requests")
    ap.add_argument("--sdk-costs", action="store_true", help="only the unit costs of SDK spans and measurements")
    ap.add_argument("--opcount", action="store_true", help="only count Python instructions per call (see opcount)")
    ap.add_argument("--paired", action="store_true", help="only the in-process on/off paired overhead")
    ap.add_argument("--callgrind", action="store_true", help="the counted mode's calls (see counted_run)")
    ap.add_argument("--cg-toggle", action="store_true", help="--callgrind: switch callgrind's instrumentation on")
    ap.add_argument("--blocks", type=int, default=20, help="--paired: on/off block pairs")
    args = ap.parse_args(argv)
    for k, v in CONTENT_OFF_ENV.items():
        os.environ.setdefault(k, v)

    from urllib.parse import urlsplit

    parts = urlsplit(args.url)
    tp, mp, (exporter, reader) = setup_sdk()
    patches = Patches() if args.paired and args.variant not in ("baseline", "floor", "official-floor") else None
    instrument(args.variant, tp, mp, args.pricing_file)
    if patches is not None:
        patches.capture()
    if args.micro:
        print(json.dumps({"variant": args.variant, **micro(args.url)}))
        return 0
    if args.sdk_costs:
        print(json.dumps({"variant": args.variant, **sdk_costs(tp, mp)}))
        return 0
    floor: Floor | None = None
    if args.variant == "floor":
        floor = Floor(tp, mp, parts.hostname or "", parts.port or 80)
    elif args.variant == "official-floor":
        floor = OfficialFloor(tp, mp, parts.hostname or "", parts.port or 80)
    global PACED_STREAMS
    PACED_STREAMS = bool(args.callgrind)
    call, is_async = make_call(args.variant, args.scenario, args.url, floor)
    warmup = args.warmup if args.warmup is not None else max(50, args.n // 10)
    out: dict[str, Any] = {"variant": args.variant, "scenario": args.scenario, "n": args.n, "warmup": warmup}

    if args.paired:
        if args.variant in ("floor", "official-floor"):
            off_call, _ = make_call(args.variant, args.scenario, args.url, None)
            switch_on = switch_off = lambda: None
        elif patches is not None:
            off_call = call
            switch_on, switch_off = patches.on, patches.off
            out["patched_attributes"] = len(patches.changed)
        else:
            raise SystemExit("--paired needs an instrumented variant or the floor")
        size = max(5, args.n // args.blocks)
        out.update(measure_paired(call, off_call, is_async, switch_on, switch_off, warmup, args.blocks, size))
        out["block_size"] = size
        tp.force_flush()
        out["spans"] = exporter.count
        print(json.dumps(out))
        return 0
    if args.callgrind:
        out.update(counted_run(call, is_async, warmup, args.n, args.cg_toggle))
        tp.force_flush()
        calls = warmup + args.n + CHECK_CALLS
        out["spans_per_call"] = exporter.count / calls
        last = exporter.last
        out["span_keys"] = sorted(last.attributes) if last is not None and last.attributes else []
        out["span_name"] = last.name if last is not None else None
        print(json.dumps(out))
        sys.stdout.flush()
        os._exit(0)  # the same exit for every n: no shutdown work after the last counted instruction matters
    if args.opcount:
        out.update(opcount(call, is_async, warmup, args.n))
        tp.force_flush()
        out["spans_per_call"] = exporter.count / (warmup + args.n)
        print(json.dumps(out))
        return 0
    if args.memory:
        if is_async:
            raise SystemExit("--memory supports sync scenarios only")
        out.update(memory_run(call, warmup, args.n, args.every))
        calls = warmup + args.n
    else:
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        out.update((measure_async if is_async else measure_sync)(call, warmup, args.n))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        out["measurements_per_call"] = round(sum(out["measurements"].values()), 3)
        calls = warmup + args.n + EXTRA_CALLS
    tp.force_flush()
    records = metric_records(reader)
    out["spans_per_call"] = exporter.count / calls
    out["span_scopes"] = exporter.scopes
    out["metric_records_per_call"] = sum(records.values()) / calls
    out["metrics"] = {k: round(v / calls, 3) for k, v in sorted(records.items())}
    out["python"] = sys.version.split()[0]
    print(json.dumps(out))
    sys.stdout.flush()
    tp.shutdown()
    mp.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
