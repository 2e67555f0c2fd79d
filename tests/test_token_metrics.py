"""Token metrics: the token-detail counter tallied in-process, the priced path of calls with cache, reasoning or
audio tokens, and the option ``token_metrics`` (the histogram, the GenAI repo's token counters, or both), read
back from real clients against the local provider."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider

from otel_llm import ConfigError, LLMInstrumentor
from otel_llm import _names as n
from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

DETAIL = "otel_llm.client.token.usage.detail"
COUNTERS = (
    n.INFERENCE_USAGE_INPUT,
    n.INFERENCE_USAGE_OUTPUT,
    n.INFERENCE_USAGE_CACHE_READ,
    n.INFERENCE_USAGE_CACHE_WRITE,
    n.INFERENCE_USAGE_REASONING,
)
LONG_SYSTEM = "You are a careful assistant who answers briefly. " * 12
AUDIO_USAGE = {
    "prompt_tokens_details": {"audio_tokens": 3, "cache_write_tokens": 2},
    "completion_tokens_details": {"audio_tokens": 11},
}


def _client(provider: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)


def _workload(provider: FakeProvider) -> None:
    """Two calls with cache reads, a reasoning model's, one with audio and cache-write tokens, a failed call and a
    plain one (the fake provider's token counts depend on the request only)."""
    c = _client(provider)
    for user in ("hi", "hello"):
        c.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": user}]
        )
    c.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "hi"}])
    c.chat.completions.create(
        model="gpt-4o-audio-preview",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-fake-usage": json.dumps(AUDIO_USAGE)},
    )
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-fake-fault": "500"}
        )
    c.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])


def _series(model: str, answered: str, port: int, **extra: Any) -> dict[str, Any]:
    attrs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": answered,
        "server.address": "127.0.0.1",
        "server.port": port,
    }
    attrs.update({k.replace("__", "."): v for k, v in extra.items()})
    return attrs


def _points(t: Telemetry, name: str) -> list[tuple[dict[str, Any], Any]]:
    return sorted(((dict(p.attributes), p.value) for p in t.points(name)), key=lambda r: sorted(r[0].items()))


def _metric(t: Telemetry, name: str) -> Any:
    data = t.reader.get_metrics_data()
    found = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name]
    assert len(found) == 1, name
    return found[0]


class _Measurements:
    """Every SDK measurement (histogram record, counter add) by instrument name but the rate-limit gauges'."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from opentelemetry.sdk.metrics._internal import measurement_consumer as mc

        self.counts: dict[str, int] = {}
        original = mc.SynchronousMeasurementConsumer.consume_measurement

        def counting(consumer: Any, measurement: Any) -> None:
            name = measurement.instrument.name
            if not name.startswith("gen_ai.client.rate_limit."):  # the provider's rate-limit headers: gauges
                self.counts[name] = self.counts.get(name, 0) + 1
            original(consumer, measurement)

        monkeypatch.setattr(mc.SynchronousMeasurementConsumer, "consume_measurement", counting)


# --- the token-detail counter, tallied in-process ---


def test_token_details_reach_the_reader_as_the_same_points_the_sdk_counter_made(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    """Written from the synchronous counter's output for the same calls: same name, unit, description, kind,
    points (values and attributes); a failed call adds none."""
    _workload(provider)
    port = provider.port
    assert _points(telemetry, DETAIL) == [
        (_series("gpt-4.1", "gpt-4.1-2025-04-14", port, gen_ai__token__type="cache_read"), 78),
        (_series("gpt-4o-audio-preview", "gpt-4o-audio-preview", port, gen_ai__token__type="audio_input"), 3),
        (_series("gpt-4o-audio-preview", "gpt-4o-audio-preview", port, gen_ai__token__type="audio_output"), 11),
        (_series("gpt-4o-audio-preview", "gpt-4o-audio-preview", port, gen_ai__token__type="cache_write"), 2),
        (_series("o4-mini", "o4-mini", port, gen_ai__token__type="reasoning"), 287),
    ]
    assert all(isinstance(p.value, int) for p in telemetry.points(DETAIL))
    metric = _metric(telemetry, DETAIL)
    assert metric.unit == "{token}" and metric.description == "Cache-read, cache-write and reasoning tokens (subsets)."
    assert type(metric.data).__name__ == "Sum" and metric.data.is_monotonic
    assert metric.data.aggregation_temporality.name == "CUMULATIVE"


def test_calls_with_cache_reasoning_and_audio_tokens_make_no_more_sdk_measurements_than_plain_ones(
    provider: FakeProvider, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Duration, input and output tokens, cost: four measurements per call, whatever details its usage has (the
    details are tallied in-process and read by the observable counter when a reader collects)."""
    measured = _Measurements(monkeypatch)
    _workload(provider)
    assert measured.counts == {
        "gen_ai.client.operation.duration": 6,
        "gen_ai.client.token.usage": 10,
        "gen_ai.client.operation.cost": 5,
    }
    assert len(telemetry.points(DETAIL)) == 5


class _Kept(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def test_a_force_flush_right_after_a_call_exports_its_detail_tokens(provider: FakeProvider) -> None:
    exporter = _Kept()
    mp = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)])
    inst = LLMInstrumentor()
    inst.instrument(tracer_provider=TracerProvider(), meter_provider=mp)
    try:
        result = _client(provider).chat.completions.create(
            model="o4-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert mp.force_flush()
    finally:
        inst.uninstrument()
        mp.shutdown()
    reasoning = result.usage.completion_tokens_details.reasoning_tokens  # type: ignore[union-attr]
    assert reasoning > 0
    points = [
        p
        for batch in exporter.batches[:1]
        for rm in batch.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == DETAIL
        for p in m.data.data_points
    ]
    assert [(p.attributes["gen_ai.token.type"], p.value) for p in points] == [("reasoning", reasoning)]


# --- the priced path of calls with details ---


def test_calls_with_details_are_charged_inline_after_their_first_and_cost_what_the_price_book_says(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    """A model's first call resolves its price entry through the price book; its later calls, with cache reads,
    reasoning or audio tokens as much as without, are charged inline (no ``charge``, ``_cost`` or ``_cost_attrs``)
    and their cost attributes are exactly what ``PriceBook.price`` gives for their tokens."""
    from otel_llm import pricing, recorder
    from otel_llm._parsers.usage import Usage

    c = _client(provider)
    cached = {
        "model": "gpt-4.1",
        "messages": [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "hi"}],
    }
    reasoning = {"model": "o4-mini", "messages": [{"role": "user", "content": "hi"}]}
    audio = {"model": "gpt-4o-audio-preview", "messages": [{"role": "user", "content": "hi"}],
             "extra_headers": {"x-fake-usage": json.dumps(AUDIO_USAGE)}}  # fmt: skip
    for kw in (cached, reasoning, audio):
        c.chat.completions.create(**kw)  # type: ignore[call-overload]
    slow = {pricing.charge.__code__, recorder.Recorder._cost.__code__, recorder.Recorder._cost_attrs.__code__}
    entered: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in slow:
            entered.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        for kw in (cached, reasoning, audio, cached):
            c.chat.completions.create(**kw)  # type: ignore[call-overload]
    finally:
        sys.setprofile(None)
    assert entered == []

    book = pricing.PriceBook.load(env={})
    spans = telemetry.spans()
    assert len(spans) == 7
    for sp in spans:
        a = sp.attributes
        usage = Usage(
            a["gen_ai.usage.input_tokens"],
            a["gen_ai.usage.output_tokens"],
            a.get("gen_ai.usage.cache_read.input_tokens"),
            a.get("gen_ai.usage.cache_write.input_tokens"),
            a.get("gen_ai.usage.reasoning.output_tokens"),
            a.get("gen_ai.usage.audio.input_tokens"),
            a.get("gen_ai.usage.audio.output_tokens"),
        )
        want = book.price(provider="openai", model=a["gen_ai.response.model"], server_address="127.0.0.1", usage=usage)
        if want is None:
            want = book.price(
                provider="openai", model=a["gen_ai.request.model"], server_address="127.0.0.1", usage=usage
            )
        assert want is not None and want.parts is not None
        assert a["gen_ai.usage.cost.amount"] == want.amount and a["otel_llm.cost.origin"] == want.origin
        parts = {name: v for name, v in zip(n.COST_PART_ATTRIBUTES, want.parts, strict=True) if v}
        assert {k: v for k, v in a.items() if k in n.COST_PART_ATTRIBUTES} == parts
        assert (a.get(n.COST_PRICED_MODEL), n.COST_LIST_PRICE in a) == (
            None if want.priced_model == a["gen_ai.response.model"] else want.priced_model,
            False,
        )
    with_details = {sp.attributes["gen_ai.request.model"] for sp in spans if "otel_llm.cost.input" in sp.attributes}
    assert with_details == {"gpt-4.1", "o4-mini", "gpt-4o-audio-preview"}
    assert {sp.attributes["gen_ai.request.model"] for sp in spans if "otel_llm.cost.cache_read" in sp.attributes} == {
        "gpt-4.1"
    }


# --- token_metrics: histogram | counters | both ---


def _by_counter(t: Telemetry) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    return {name: _points(t, name) for name in COUNTERS}


def _counters_expected(port: int) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """The token counters for ``_workload``: the failed call adds 0 with modality unknown to input and output."""
    g41 = ("gpt-4.1", "gpt-4.1-2025-04-14", port)
    audio = ("gpt-4o-audio-preview", "gpt-4o-audio-preview", port)
    o4 = ("o4-mini", "o4-mini", port)
    failed = ("gpt-4.1", None, port)

    def s(key: tuple[str, str | None, int], modality: str, **extra: Any) -> dict[str, Any]:
        attrs = _series(key[0], key[1] or "", key[2], gen_ai__token__modality=modality, **extra)
        if key[1] is None:
            del attrs["gen_ai.response.model"]
        return attrs

    return {
        n.INFERENCE_USAGE_INPUT: sorted(
            [
                (s(g41, "text"), None),
                (s(failed, "unknown", error__type="500"), 0),
                (s(audio, "audio"), 3),
                (s(audio, "text"), None),
                (s(o4, "text"), None),
            ],
            key=lambda r: sorted(r[0].items()),
        ),
        n.INFERENCE_USAGE_OUTPUT: sorted(
            [
                (s(g41, "text"), None),
                (s(failed, "unknown", error__type="500"), 0),
                (s(audio, "audio"), 11),
                (s(audio, "text"), None),
                (s(o4, "text"), None),
            ],
            key=lambda r: sorted(r[0].items()),
        ),
        n.INFERENCE_USAGE_CACHE_READ: [(s(g41, "text"), 78)],
        n.INFERENCE_USAGE_CACHE_WRITE: [(s(audio, "text"), 2)],
        n.INFERENCE_USAGE_REASONING: [(s(o4, "text"), 287)],
    }


def _check_counters(t: Telemetry, port: int) -> None:
    got = _by_counter(t)
    want = _counters_expected(port)
    # input and output totals per series: what the spans say (the fake provider's answer decides them)
    totals: dict[tuple[str, str], int] = {}
    for sp in t.spans():
        a = sp.attributes
        if "error.type" not in a:
            for key in ("input", "output"):
                k = (a["gen_ai.request.model"], key)
                totals[k] = totals.get(k, 0) + a[f"gen_ai.usage.{key}_tokens"]
    totals["gpt-4o-audio-preview", "input"] -= 3  # the audio parts
    totals["gpt-4o-audio-preview", "output"] -= 11
    for name, key in ((n.INFERENCE_USAGE_INPUT, "input"), (n.INFERENCE_USAGE_OUTPUT, "output")):
        want[name] = [
            (attrs, totals[attrs["gen_ai.request.model"], key] if v is None else v) for attrs, v in want[name]
        ]
    assert got == want
    for name in COUNTERS:
        metric = _metric(t, name)
        assert metric.unit == "{token}" and type(metric.data).__name__ == "Sum" and metric.data.is_monotonic
        assert all(isinstance(p.value, int) for p in metric.data.data_points)


def test_token_metrics_counters_gives_the_conventions_counters_by_modality_and_no_histogram(
    provider: FakeProvider, instrument: Callable[..., Telemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    t = instrument(token_metrics="counters")
    measured = _Measurements(monkeypatch)
    _workload(provider)
    _check_counters(t, provider.port)
    spans = t.spans()
    assert sum(sp.attributes.get("gen_ai.usage.input_tokens", 0) for sp in spans) == sum(
        v for _, v in _points(t, n.INFERENCE_USAGE_INPUT)
    )
    assert t.points("gen_ai.client.token.usage") == []
    assert len(t.points(DETAIL)) == 5  # the details counter is not a token_metrics form: always there
    # no SDK measurement per token count: the counters cost less than the histogram
    assert measured.counts == {"gen_ai.client.operation.duration": 6, "gen_ai.client.operation.cost": 5}


def test_token_metrics_both_gives_the_histogram_and_the_counters_with_the_same_totals(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(token_metrics="both")
    _workload(provider)
    _check_counters(t, provider.port)
    for token_type, counter in (("input", n.INFERENCE_USAGE_INPUT), ("output", n.INFERENCE_USAGE_OUTPUT)):
        hist = sum(
            p.sum for p in t.points("gen_ai.client.token.usage") if p.attributes["gen_ai.token.type"] == token_type
        )
        assert hist == sum(v for _, v in _points(t, counter)) > 0


def test_token_metrics_histogram_is_the_default_and_has_no_counters(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    _workload(provider)
    assert all(t.points(name) == [] for name in COUNTERS)
    assert len(t.points("gen_ai.client.token.usage")) == 6  # input and output of three series
    names = {
        m.name for rm in t.reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    assert not names & set(COUNTERS)


def test_token_counters_count_streams_async_calls_and_raw_clients(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    """A stream with usage counts its tokens, one without usage and a refused call count 0 with modality
    unknown; async and raw httpx calls count like the openai client's; an embedding counts its input only."""
    import asyncio

    t = instrument(token_metrics="counters", include_usage=False)
    c = _client(provider)
    msgs = [{"role": "user", "content": "Say hello to the team."}]
    for _ in c.chat.completions.create(model="gpt-4.1-mini", messages=msgs, stream=True):  # type: ignore[arg-type]
        pass  # include_usage off: the stream carries no usage
    streamed = c.chat.completions.create(
        model="gpt-4.1",
        messages=msgs,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    usage = next(chunk.usage for chunk in list(streamed) if chunk.usage is not None)

    async def acall() -> Any:
        a = openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
        return await a.chat.completions.create(model="gpt-4.1", messages=msgs)  # type: ignore[arg-type]

    aresult = asyncio.run(acall())
    raw = httpx.post(
        provider.url + "/v1/chat/completions",
        json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "raw"}]},
        headers={"authorization": "Bearer sk-test", "x-fake-fault": "429"},
    )
    assert raw.status_code == 429
    embedded = c.embeddings.create(model="text-embedding-3-small", input="hello")
    port = provider.port
    points = {name: _points(t, name) for name in COUNTERS}
    mini = _series("gpt-4.1-mini", "gpt-4.1-mini-2025-04-14", port, gen_ai__token__modality="unknown")
    g41 = _series("gpt-4.1", "gpt-4.1-2025-04-14", port, gen_ai__token__modality="text")
    refused = _series("gpt-4.1", "", port, gen_ai__token__modality="unknown", error__type="429")
    del refused["gen_ai.response.model"]
    for name, total in ((n.INFERENCE_USAGE_INPUT, "prompt_tokens"), (n.INFERENCE_USAGE_OUTPUT, "completion_tokens")):
        assert (mini, 0) in points[name] and (refused, 0) in points[name], points[name]
        assert (g41, getattr(usage, total) + getattr(aresult.usage, total)) in points[name], points[name]
    embeddings = [(a, v) for a, v in points[n.INFERENCE_USAGE_INPUT] if a["gen_ai.operation.name"] == "embeddings"]
    assert [(a[n.TOKEN_MODALITY], v) for a, v in embeddings] == [("text", embedded.usage.prompt_tokens)]
    assert len(points[n.INFERENCE_USAGE_INPUT]) == 4  # an embedding has no output tokens: no output point
    assert len(points[n.INFERENCE_USAGE_OUTPUT]) == 3


def test_the_prometheus_exporter_names_the_token_counters_as_the_dashboards_expect(provider: FakeProvider) -> None:
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    registry = CollectorRegistry()
    mp = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])  # type: ignore[call-arg]
    inst = LLMInstrumentor()
    inst.instrument(tracer_provider=TracerProvider(), meter_provider=mp, token_metrics="both")
    try:
        _workload(provider)
        text = generate_latest(registry).decode()
    finally:
        inst.uninstrument()
        mp.shutdown()
    samples = {s.name: s for fam in text_string_to_metric_families(text) for s in fam.samples}
    for series in (
        n.PROM_INFERENCE_USAGE_INPUT,
        n.PROM_INFERENCE_USAGE_OUTPUT,
        n.PROM_INFERENCE_USAGE_CACHE_READ,
        n.PROM_INFERENCE_USAGE_CACHE_WRITE,
        n.PROM_INFERENCE_USAGE_REASONING,
        n.PROM_TOKEN_DETAIL,
        f"{n.PROM_TOKEN_USAGE}_sum",
    ):
        assert series in samples, (series, sorted(samples))
    label = n.PROM_LABELS[n.TOKEN_MODALITY]
    reads = [
        s
        for s in text_string_to_metric_families(text)
        for s in s.samples
        if s.name == n.PROM_INFERENCE_USAGE_CACHE_READ
    ]
    assert [(s.labels[label], s.value) for s in reads] == [("text", 78.0)]
    assert samples[n.PROM_TOKEN_DETAIL].labels[n.PROM_LABELS[n.TOKEN_TYPE]] in n.DETAIL_TOKEN_TYPES


def test_a_bad_token_metrics_value_is_a_config_error_at_instrument(
    monkeypatch: pytest.MonkeyPatch, provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    inst = LLMInstrumentor()
    with pytest.raises(ConfigError, match="token_metrics='counter'"):
        inst.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(), token_metrics="counter")
    monkeypatch.setenv("OTEL_LLM_TOKEN_METRICS", "histograms")
    with pytest.raises(ConfigError, match="OTEL_LLM_TOKEN_METRICS='histograms'"):
        LLMInstrumentor().instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
    monkeypatch.setenv("OTEL_LLM_TOKEN_METRICS", " Counters ")
    t = instrument()
    _client(provider).chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert t.points("gen_ai.client.token.usage") == [] and len(t.points(n.INFERENCE_USAGE_INPUT)) == 1
