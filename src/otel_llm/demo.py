"""``otel-llm demo``: a multi-model workload, instrumented, against the embedded fake provider.

A small router sends simple prompts to cheap models and complex ones to strong models, fails over
on 429s, 5xx and timeouts, and downgrades to cheap models once the in-process spend
(``otel_llm.spend()``) nears its budget. OpenAI and Anthropic models are priced as a relay bills them
(:data:`RELAY_PRICES`), so the report shows relay savings; calls in flight are sampled five times a
second for the peak-concurrency column and chart. Calls go through the openai SDK (sync, async, streamed)
and raw httpx (Anthropic Messages), aiohttp (Gemini generateContent) and requests, like a real
application that mixes clients. Metrics are served for Prometheus while it runs.

Each logical call is one ``demo.route`` span whose children are the LLM calls the router made for it
(one per fallback attempt). Traces and metrics go over OTLP to ``--otlp``, or, configured like any app
by the standard variables, where ``OTEL_TRACES_EXPORTER=otlp`` / ``OTEL_METRICS_EXPORTER=otlp`` and
``OTEL_EXPORTER_OTLP_*`` point (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` and
``OTEL_METRIC_EXPORT_INTERVAL`` apply too).
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .fakeprovider import FakeConfig, FakeProvider

__all__ = ["DemoOptions", "DemoResult", "run_demo", "BEDROCK_MODEL", "CHEAP", "LOCAL_MODEL", "STRONG"]

log = logging.getLogger("otel_llm.demo")

CHEAP = ("gemini-2.5-flash", "deepseek-v3.2")
STRONG = ("gpt-4.1", "claude-sonnet-4.5")
LOCAL_MODEL = "llama3.2"
"""A local model the demo calls on Ollama's native API (``/api/chat``, raw httpx, NDJSON when streamed): it has no
list price, so its row is unpriced, not $0."""
BEDROCK_MODEL = "us.amazon.nova-pro-v1:0"
"""A cheap model the demo calls through boto3's ``bedrock-runtime`` client (Converse, ConverseStream), when boto3 is
installed."""

RELAY_PRICES = {"providers": {"openai": {"multiplier": 0.3}, "anthropic": {"multiplier": 0.45}}}
"""The demo's relay price table: its OpenAI and Anthropic models come through a relay billing 30% and 45%
of list price (the report shows what that saved); Gemini, DeepSeek and Bedrock are billed at list price."""

_SIMPLE = (
    "Translate 'good morning' to French.",
    "What is the capital of Australia?",
    "Give me a synonym for 'fast'.",
    "Summarise in one line: the meeting moved to Thursday.",
    "Is 17 a prime number?",
)
_COMPLEX = (
    "Design a rollout plan for migrating a payments service from a monolith to event-driven services, "
    "with rollback criteria, data consistency checks and a timeline for three teams.",
    "Review this incident: p95 latency doubled after a cache change; list hypotheses, the evidence that "
    "would confirm each, and the order in which to test them.",
    "Write a careful comparison of three vector database designs for 50M embeddings, covering recall, "
    "memory, write amplification and operational cost, and recommend one for a small team.",
)


@dataclass
class DemoOptions:
    duration: float = 20.0
    rate: float = 8.0
    error_rate: float = 0.06
    budget: float = 0.25
    otlp: str | None = None
    keep_serving: bool = False
    metrics_port: int = 9464
    metrics_host: str = "localhost"
    html: str | None = None
    seed: int = 7
    concurrency: int = 24


@dataclass
class DemoResult:
    calls: int = 0
    attempts: int = 0
    failovers: int = 0
    downgraded: int = 0
    failed: int = 0
    spans: int = 0
    provider_url: str = ""
    metrics_url: str | None = None
    report: Any = None
    spend_samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    in_flight_samples: list[tuple[float, dict[tuple[str, str], float]]] = field(default_factory=list)


def _span_counter() -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    class SpanCounter(SpanProcessor):
        """Counts ended LLM spans: what the demo shows when no trace backend is configured."""

        def __init__(self) -> None:
            self.count = 0
            self._lock = threading.Lock()

        def on_end(self, span: Any) -> None:
            if span.instrumentation_scope is None or span.instrumentation_scope.name != "otel_llm":
                return
            with self._lock:
                self.count += 1

    return SpanCounter()


class _Retryable(Exception):
    """An answer worth failing over on: 429, 5xx, timeout, connection error."""


def _providers(opts: DemoOptions, result: DemoResult) -> tuple[Any, Any, Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from ._setup import (
        _METRIC_EXPORTERS,
        _TRACE_EXPORTERS,
        _names,
        _otlp_metric_exporter,
        _otlp_span_exporter,
        _protocol,
    )

    env = os.environ
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "").strip() or "otel-llm-demo"})
    counter = _span_counter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(counter)
    memory = InMemoryMetricReader()
    readers: list[Any] = [memory]
    if opts.otlp:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=opts.otlp, insecure=True)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=opts.otlp, insecure=True), 5000))
    else:  # the standard variables, only where set: the demo sends nothing anywhere by default
        if env.get("OTEL_TRACES_EXPORTER") and "otlp" in _names(env, "OTEL_TRACES_EXPORTER", _TRACE_EXPORTERS):
            span_exporter = _otlp_span_exporter(_protocol(env, "TRACES"))
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        if env.get("OTEL_METRICS_EXPORTER") and "otlp" in _names(env, "OTEL_METRICS_EXPORTER", _METRIC_EXPORTERS):
            interval = None if env.get("OTEL_METRIC_EXPORT_INTERVAL") else 5000
            metric_exporter = _otlp_metric_exporter(_protocol(env, "METRICS"))
            readers.append(PeriodicExportingMetricReader(metric_exporter, interval))
    if opts.metrics_port:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import start_http_server

        try:
            start_http_server(port=opts.metrics_port, addr=opts.metrics_host)
            readers.append(PrometheusMetricReader())
            result.metrics_url = f"http://{opts.metrics_host}:{opts.metrics_port}/metrics"
        except OSError as exc:
            log.warning("cannot serve Prometheus metrics on port %s (%s); continuing without", opts.metrics_port, exc)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    return tracer_provider, meter_provider, memory, counter


def _pick(rng: random.Random, complex_prompt: bool, over_budget: bool) -> list[str]:
    """The router: an ordered failover chain for one prompt."""
    if complex_prompt and not over_budget:
        first = list(STRONG)
        rng.shuffle(first)
        return [*first, *_cheap()]
    cheap = list(_cheap())
    rng.shuffle(cheap)
    return cheap if over_budget else [*cheap, STRONG[0]]


def _cheap() -> tuple[str, ...]:
    bedrock = (BEDROCK_MODEL,) if importlib.util.find_spec("boto3") is not None else ()
    return (*CHEAP, LOCAL_MODEL, *bedrock)


class _Clients:
    """One instance of each client, all pointed at the fake provider."""

    def __init__(self, base: str) -> None:
        import httpx
        import openai
        import requests

        timeout = 4.0
        self.base = base
        self.sdk = openai.OpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0, timeout=timeout)
        self.async_sdk = openai.AsyncOpenAI(base_url=base + "/v1", api_key="sk-demo", max_retries=0, timeout=timeout)
        self.httpx = httpx.Client(timeout=timeout)
        self.requests = requests.Session()
        self.timeout = timeout
        self._aiohttp: Any = None
        self.bedrock: Any = None
        if BEDROCK_MODEL in _cheap():
            import boto3
            from botocore.config import Config

            self.bedrock = boto3.client(
                "bedrock-runtime",
                region_name="us-east-1",
                endpoint_url=base,
                aws_access_key_id="AKIADEMO",
                aws_secret_access_key="demo-secret",
                config=Config(
                    retries={"total_max_attempts": 1}, read_timeout=timeout, connect_timeout=timeout,
                    max_pool_connections=64,
                ),
            )  # fmt: skip

    def ollama(self, prompt: str, stream: bool) -> None:
        """One chat call on Ollama's native API with raw httpx (streamed: NDJSON lines read as they come)."""
        body = {"model": LOCAL_MODEL, "messages": _messages(prompt), "stream": stream}
        if stream:
            with self.httpx.stream("POST", self.base + "/api/chat", json=body) as r:
                for _ in r.iter_lines():
                    pass
                _check(r.status_code)
        else:
            _answer(self.httpx.post(self.base + "/api/chat", json=body))

    def converse(self, prompt: str, stream: bool) -> None:
        """One Bedrock call through boto3 (streamed: every event read)."""
        messages = [{"role": "user", "content": [{"text": prompt}]}]
        system = [{"text": "You are a concise assistant."}]
        if stream:
            response = self.bedrock.converse_stream(modelId=BEDROCK_MODEL, messages=messages, system=system)
            for _ in response["stream"]:
                pass
        else:
            self.bedrock.converse(modelId=BEDROCK_MODEL, messages=messages, system=system)

    async def aiohttp_session(self) -> Any:
        import aiohttp

        if self._aiohttp is None:
            self._aiohttp = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._aiohttp

    async def aclose(self) -> None:
        self.httpx.close()
        self.requests.close()
        await self.async_sdk.close()
        if self._aiohttp is not None:
            await self._aiohttp.close()


def _answer(r: Any) -> Any:
    """A raw answer read as an application reads it (its JSON), then checked."""
    try:
        body = r.json()
    except ValueError:
        body = None
    _check(r.status_code)
    return body


def _check(status: int) -> None:
    if status == 429 or status >= 500:
        raise _Retryable(str(status))


def _messages(prompt: str) -> Any:
    return [{"role": "system", "content": "You are a concise assistant."}, {"role": "user", "content": prompt}]


async def _call(c: _Clients, kind: int, model: str, prompt: str) -> None:
    """One attempt with one model through one of the client paths; raises _Retryable to fail over."""
    import openai

    try:
        if model == BEDROCK_MODEL:
            await asyncio.to_thread(c.converse, prompt, kind in (2, 3))
        elif model == LOCAL_MODEL:
            await asyncio.to_thread(c.ollama, prompt, kind in (2, 3))
        elif kind == 0:
            await asyncio.to_thread(c.sdk.chat.completions.create, model=model, messages=_messages(prompt))
        elif kind == 1:
            await c.async_sdk.chat.completions.create(model=model, messages=_messages(prompt))
        elif kind == 2:
            stream: Any = await c.async_sdk.chat.completions.create(
                model=model, messages=_messages(prompt), stream=True
            )
            async for _ in stream:
                pass
        elif kind == 3:

            def consume() -> None:
                for _ in c.sdk.chat.completions.create(model=model, messages=_messages(prompt), stream=True):
                    pass

            await asyncio.to_thread(consume)
        elif kind == 4 and model.startswith("claude"):
            body = {"model": model, "max_tokens": 512, "messages": [{"role": "user", "content": prompt}]}
            headers = {"x-api-key": "sk-ant-demo", "anthropic-version": "2023-06-01"}
            r = await asyncio.to_thread(c.httpx.post, c.base + "/v1/messages", json=body, headers=headers)
            _answer(r)
        elif kind == 5 and model.startswith("gemini"):
            session = await c.aiohttp_session()
            url = f"{c.base}/v1beta/models/{model}:generateContent"
            body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
            async with session.post(url, json=body, headers={"x-goog-api-key": "demo-key"}) as resp:
                await resp.read()
                _check(resp.status)
        else:
            chat: Any = {"model": model, "messages": _messages(prompt)}

            def post() -> Any:
                headers = {"authorization": "Bearer sk-demo"}
                return c.requests.post(c.base + "/v1/chat/completions", json=chat, timeout=c.timeout, headers=headers)

            r = await asyncio.to_thread(post)
            _answer(r)
    except (
        openai.RateLimitError,
        openai.InternalServerError,
        openai.APITimeoutError,
        openai.APIConnectionError,
    ) as exc:
        raise _Retryable(type(exc).__name__) from exc
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("httpx", "requests", "aiohttp", "urllib3", "botocore") or isinstance(
            exc, (TimeoutError, asyncio.TimeoutError, ConnectionError)
        ):
            raise _Retryable(type(exc).__name__) from exc
        raise


_TENANTS = ("acme", "globex", "acme", "initech", "acme", "globex")  # acme sends half the traffic
_FEATURES = ("chat", "search")


async def _workload(
    opts: DemoOptions,
    c: _Clients,
    result: DemoResult,
    on_done: Callable[[], None],
    spend: Callable[[], float],
    tracer: Any,
) -> None:
    from opentelemetry.trace import Status, StatusCode

    import otel_llm

    rng = random.Random(opts.seed)
    total = max(1, int(opts.duration * opts.rate))
    sem = asyncio.Semaphore(opts.concurrency)
    kinds = itertools.cycle(range(7))
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(kind: int, prompt: str, complex_prompt: bool, tenant: str) -> None:
        async with sem:
            over = spend() >= 0.8 * opts.budget
            if complex_prompt and over:
                result.downgraded += 1
            chain = _pick(rng, complex_prompt, over)
            # one span per logical call; the LLM spans of its attempts are its children, attributed to a tenant
            # and a feature (the span gets the roll-up of its calls' tokens and cost)
            feature = "summarise" if complex_prompt else _FEATURES[kind % len(_FEATURES)]
            with (
                tracer.start_as_current_span("demo.route", attributes={"demo.complex": complex_prompt}) as span,
                otel_llm.scope(tenant=tenant, feature=feature),
            ):
                for attempt, model in enumerate(chain):
                    result.attempts += 1
                    try:
                        await _call(c, kind, model, prompt)
                        span.set_attributes({"demo.answered_by": model, "demo.attempts": attempt + 1})
                        break
                    except _Retryable:
                        if attempt + 1 < len(chain):
                            result.failovers += 1
                        else:
                            result.failed += 1
                            span.set_attributes({"demo.attempts": attempt + 1})
                            span.set_status(Status(StatusCode.ERROR, "every model failed"))
            result.calls += 1
            on_done()

    tasks = []
    for i in range(total):
        delay = start + i / opts.rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        complex_prompt = rng.random() < 0.35
        prompt = rng.choice(_COMPLEX if complex_prompt else _SIMPLE)
        tenant = _TENANTS[i % len(_TENANTS)]
        tasks.append(asyncio.create_task(one(next(kinds), prompt, complex_prompt, tenant)))
    await asyncio.gather(*tasks)


def run_demo(opts: DemoOptions, progress: Callable[[int, int], None] | None = None) -> DemoResult:
    """Run the whole demo; ``progress(done, total)`` is called after every logical call."""
    import otel_llm
    from otel_llm import LLMInstrumentor

    from .report import add_in_flight, from_metrics, in_flight

    if opts.rate <= 0 or opts.duration <= 0:
        raise ValueError("--rate and --duration must be positive")
    if not 0 <= opts.error_rate <= 0.9:
        raise ValueError("--error-rate must be between 0 and 0.9")
    result = DemoResult()
    fake = FakeConfig(
        latency_scale=1.0,
        rate_limit_rate=opts.error_rate * 0.6,
        error_rate=opts.error_rate * 0.3,
        timeout_rate=opts.error_rate * 0.1,
        stall_s=5.0,
        seed=opts.seed,
    )
    tracer_provider, meter_provider, memory, counter = _providers(opts, result)
    instrumentor = LLMInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider, prices=RELAY_PRICES)
    from .spend import LEDGER

    LEDGER.reset()  # the budget guard reads this run's spend only
    total = max(1, int(opts.duration * opts.rate))
    done = 0
    lock = threading.Lock()

    def on_done() -> None:
        nonlocal done
        with lock:
            done += 1
            if progress is not None:
                progress(done, total)

    stop_sampling = threading.Event()

    def sample() -> None:
        ticks = 0
        while not stop_sampling.wait(0.2):  # calls in flight five times a second, spend every second
            result.in_flight_samples.append((time.time(), in_flight(memory.get_metrics_data())))
            ticks += 1
            if ticks % 5 == 0:
                snap = otel_llm.spend()
                result.spend_samples.append((time.time(), {m.model: m.cost_usd for m in snap.models}))

    provider = FakeProvider(config=fake).start()
    result.provider_url = provider.url
    sampler = threading.Thread(target=sample, name="otel-llm-demo-spend", daemon=True)
    sampler.start()
    clients = _Clients(provider.url)
    try:

        async def main() -> None:
            asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(opts.concurrency + 4))
            try:
                tracer = tracer_provider.get_tracer("otel_llm.demo")
                await _workload(opts, clients, result, on_done, lambda: otel_llm.spend().total_usd, tracer)
            finally:
                await clients.aclose()

        asyncio.run(main())
        stop_sampling.set()
        sampler.join(timeout=2)
        result.in_flight_samples.append((time.time(), in_flight(memory.get_metrics_data())))  # all ended: 0
        tracer_provider.force_flush()
        result.spans = counter.count
        report = from_metrics(memory.get_metrics_data(), source="otel-llm demo (in-process metrics)")
        report.spend_over_time = _series(result.spend_samples)
        add_in_flight(report, result.in_flight_samples)
        result.report = report
        if opts.keep_serving:
            print(f"Serving: provider {provider.url}, metrics {result.metrics_url or '(off)'}. Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        stop_sampling.set()
        instrumentor.uninstrument()
        provider.stop()
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return result


def _series(samples: list[tuple[float, dict[str, float]]]) -> dict[str, list[tuple[float, float]]]:
    """Per-second spend increments per model from cumulative ledger samples."""
    out: dict[str, list[tuple[float, float]]] = {}
    last: dict[str, float] = {}
    for t, by_model in samples:
        for model, total in by_model.items():
            out.setdefault(model, []).append((t, max(0.0, total - last.get(model, 0.0))))
            last[model] = total
    return out
