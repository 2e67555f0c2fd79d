"""A broken or hostile provider still gives valid telemetry.

Real clients (the openai SDK, raw httpx, requests) call the fake provider, which answers with lone surrogates
in its JSON (``x-fake-surrogates``) or with usage no provider bills (``x-fake-usage``); the telemetry is then
exported through the real OTLP protobuf encoders, which log and drop any attribute that is not valid UTF-8.
Also: cache writes and audio tokens recorded and priced as genai-prices prices them, and ``responses.retrieve``
attributed to the provider of its ``create``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import genai_prices
import httpx
import openai
import pytest
import requests
from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

import otel_llm
from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

KEY = "sk-test"
MSG = [{"role": "user", "content": "Tell me about telemetry spans, metrics and the collector in a few words please."}]
SAY = MSG[0]["content"]
REPLACEMENT = "\ufffd"


def _call(layer: str, url: str, api: str, stream: bool, headers: dict[str, str], model: str = "gpt-4.1") -> list[Any]:
    """One call through ``layer``, read to its end; what the caller got (for the surrogate checks)."""
    if layer == "openai":
        client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        try:
            if api == "chat":
                if not stream:
                    r = client.chat.completions.create(model=model, messages=MSG, extra_headers=headers)  # type: ignore[arg-type]
                    return [r.model, r.id, r.choices[0].message.content]
                return [
                    c.model
                    for c in client.chat.completions.create(
                        model=model,
                        messages=MSG,  # type: ignore[arg-type]
                        stream=True,
                        extra_headers=headers,
                    )
                ]
            if not stream:
                resp = client.responses.create(model=model, input=SAY, extra_headers=headers)
                return [resp.model, resp.id, resp.output_text]
            events = client.responses.create(model=model, input=SAY, stream=True, extra_headers=headers)
            return [e.response.model for e in events if e.type == "response.completed"]
        finally:
            client.close()
    if api == "chat":
        path = "/v1/chat/completions"
        body: dict[str, Any] = {"model": model, "messages": MSG}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
    else:
        path = "/v1/responses"
        body = {"model": model, "input": SAY}
        if stream:
            body["stream"] = True
    hdrs = {"authorization": f"Bearer {KEY}", **headers}
    if layer == "httpx":
        with httpx.Client() as c:
            if not stream:
                return [c.post(url + path, json=body, headers=hdrs).json()]
            with c.stream("POST", url + path, json=body, headers=hdrs) as r:
                return [b"".join(r.iter_bytes())]
    r2 = requests.post(url + path, json=body, headers=hdrs, stream=stream)
    return [r2.json()] if not stream else [b"".join(r2.iter_content(None))]


def _utf8_strings(value: Any) -> list[str]:
    """The strings of an attribute value that do not encode as UTF-8."""
    values = value if isinstance(value, (list, tuple)) else [value]
    bad = []
    for v in values:
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                bad.append(v)
    return bad


def _encode_all(t: Telemetry, caplog: pytest.LogCaptureFixture) -> None:
    """Export what was recorded through the real OTLP encoders: nothing logged, every attribute kept."""
    caplog.clear()
    spans = t.spans()
    encoded = encode_spans(spans)
    got = [s for rs in encoded.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(got) == len(spans)
    for span, pb in zip(spans, got, strict=True):
        assert [a.key for a in pb.attributes] == list(span.attributes or {}), span.name

    data = t.reader.get_metrics_data()
    assert data is not None
    points = 0
    for rm, pm in zip(data.resource_metrics, encode_metrics(data).resource_metrics, strict=True):
        for sm, psm in zip(rm.scope_metrics, pm.scope_metrics, strict=True):
            for metric, pmetric in zip(sm.metrics, psm.metrics, strict=True):
                kind = pmetric.WhichOneof("data")
                for dp, pdp in zip(metric.data.data_points, getattr(pmetric, kind).data_points, strict=True):
                    assert [a.key for a in pdp.attributes] == list(dp.attributes), metric.name
                    points += 1
    assert points > 0

    logs = t.log_exporter.get_finished_logs()
    for rec, plog in zip(
        logs,
        [r for rl in encode_logs(logs).resource_logs for sl in rl.scope_logs for r in sl.log_records],
        strict=True,
    ):
        assert len(plog.attributes) == len(rec.log_record.attributes or {})
    noise = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noise == []


FORMS = [
    pytest.param(layer, api, stream, id=f"{layer}-{api}-{'stream' if stream else 'whole'}")
    for layer in ("openai", "httpx", "requests")
    for api in ("chat", "responses")
    for stream in (False, True)
]


@pytest.mark.parametrize(("layer", "api", "stream"), FORMS)
def test_lone_surrogates_from_the_provider_reach_no_attribute_and_export_whole(
    layer: str,
    api: str,
    stream: bool,
    provider: FakeProvider,
    instrument: Callable[..., Telemetry],
    caplog: pytest.LogCaptureFixture,
) -> None:
    t = instrument(capture_content="SPAN_AND_EVENT")
    got = _call(layer, provider.url, api, stream, {"x-fake-surrogates": "1"})
    # the caller got the surrogates, decoded (a lone surrogate in a str) or as the JSON escape (in bytes)
    assert any(b"\\ud800" in x if isinstance(x, bytes) else "\\ud800" in json.dumps(x) for x in got), got

    span = t.span()
    a = dict(span.attributes or {})
    assert {k: v for k, v in a.items() if _utf8_strings(v)} == {}
    assert a["gen_ai.response.model"] == "gpt-4.1-2025-04-14" + REPLACEMENT
    assert a["gen_ai.response.id"].endswith(REPLACEMENT)
    if api == "chat":
        assert a["gen_ai.response.finish_reasons"] == ("stop" + REPLACEMENT,)
        assert a["openai.response.system_fingerprint"].endswith(REPLACEMENT)
    output = json.loads(a["gen_ai.output.messages"])
    assert REPLACEMENT in json.dumps(output, ensure_ascii=False)
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    model = t.point("gen_ai.client.operation.duration").attributes["gen_ai.response.model"]
    assert model == "gpt-4.1-2025-04-14" + REPLACEMENT
    for event in t.events():
        assert "\\ud800" not in json.dumps(dict(event.log_record.attributes or {}), default=str)
    _encode_all(t, caplog)


def test_lone_surrogates_in_the_request_model_and_header_values_are_cleaned(
    provider: FakeProvider, telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps({"model": "gpt-4.1\udfff", "messages": MSG, "stop": ["end\ud800"]})
    with httpx.Client() as c:
        r = c.post(
            provider.url + "/v1/chat/completions",
            content=body,
            headers={"authorization": f"Bearer {KEY}", "content-type": "application/json"},
        )
    assert r.status_code == 200 and r.json()["model"]
    a = dict(telemetry.span().attributes or {})
    assert a["gen_ai.request.model"] == "gpt-4.1" + REPLACEMENT
    assert a["gen_ai.request.stop_sequences"] == ("end" + REPLACEMENT,)
    assert telemetry.point("gen_ai.client.operation.duration").attributes["gen_ai.request.model"] == (
        "gpt-4.1" + REPLACEMENT
    )
    _encode_all(telemetry, caplog)


# --------------------------------------------------------------------------------------------------
# usage outside any real range

ABSURD = {"1e30": 10**30, "negative": -5, "fraction": 1.5, "string": "12", "bool": True, "above-1e9": 10**9 + 1}
ABSURD_FORMS = [
    ("openai", "chat", False),
    ("openai", "chat", True),
    ("openai", "responses", False),
    ("httpx", "chat", False),
    ("httpx", "chat", True),
    ("httpx", "responses", False),
    ("httpx", "responses", True),
    ("requests", "chat", True),
]
# The openai SDK validates its answer in pydantic's lax mode: it hands the caller "12" as 12 and true as 1, and
# the SDK layer records the usage the caller got (test below); at the HTTP layer those are not counts.
SDK_COERCED = ("string", "bool")


@pytest.mark.parametrize(
    ("layer", "api", "stream", "value"),
    [
        pytest.param(layer, api, stream, value, id=f"{layer}-{api}-{'stream' if stream else 'whole'}-{name}")
        for layer, api, stream in ABSURD_FORMS
        for name, value in ABSURD.items()
        if not (layer == "openai" and name in SDK_COERCED)
    ],
)
def test_an_absurd_usage_is_neither_counted_nor_priced_nor_spent_and_the_call_is_marked(
    layer: str,
    api: str,
    stream: bool,
    value: Any,
    provider: FakeProvider,
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "prompt_tokens" if api == "chat" else "input_tokens"
    _call(layer, provider.url, api, stream, {"x-fake-usage": json.dumps({key: value})})
    a = dict(telemetry.span().attributes or {})
    assert a.get("otel_llm.usage.invalid") is True
    assert [k for k in a if k.startswith("gen_ai.usage.")] == []  # no tokens, no cost
    assert telemetry.points("gen_ai.client.token.usage") == []
    assert telemetry.points("gen_ai.client.operation.cost") == []
    assert telemetry.points("otel_llm.client.token.usage.detail") == []
    assert telemetry.point("otel_llm.client.operation.unpriced", otel_llm__unpriced__reason="invalid_usage").value == 1
    spend = otel_llm.spend()
    assert (spend.total_usd, spend.calls, spend.unpriced_calls) == (0.0, 1, 1)
    assert (spend.models[0].input_tokens, spend.models[0].output_tokens) == (0, 0)
    _encode_all(telemetry, caplog)


@pytest.mark.parametrize(("value", "coerced"), [("12", 12), (True, 1)], ids=["string", "bool"])
def test_at_the_sdk_layer_a_count_the_sdk_coerced_is_recorded_as_the_caller_got_it(
    value: Any, coerced: int, provider: FakeProvider, telemetry: Telemetry
) -> None:
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key=KEY, max_retries=0)
    with client:
        r = client.chat.completions.create(
            model="gpt-4.1",
            messages=MSG,  # type: ignore[arg-type]
            extra_headers={"x-fake-usage": json.dumps({"prompt_tokens": value})},
        )
    assert r.usage is not None and r.usage.prompt_tokens == coerced
    a = dict(telemetry.span().attributes or {})
    assert a["gen_ai.usage.input_tokens"] == coerced and "otel_llm.usage.invalid" not in a


def test_an_absurd_detail_count_makes_the_whole_usage_invalid(provider: FakeProvider, telemetry: Telemetry) -> None:
    usage = {"prompt_tokens_details": {"cached_tokens": -1}}
    _call("openai", provider.url, "chat", False, {"x-fake-usage": json.dumps(usage)})
    a = dict(telemetry.span().attributes or {})
    assert a.get("otel_llm.usage.invalid") is True and "gen_ai.usage.input_tokens" not in a
    assert otel_llm.spend().total_usd == 0.0


def test_a_whole_number_sent_as_a_float_is_still_a_count(provider: FakeProvider, telemetry: Telemetry) -> None:
    _call("httpx", provider.url, "chat", False, {"x-fake-usage": json.dumps({"prompt_tokens": 40.0})})
    a = dict(telemetry.span().attributes or {})
    assert a["gen_ai.usage.input_tokens"] == 40 and "otel_llm.usage.invalid" not in a
    assert a["gen_ai.usage.cost.amount"] > 0


# --------------------------------------------------------------------------------------------------
# cache writes and audio tokens

DETAILS = {
    "chat": {
        "prompt_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 7, "audio_tokens": 5},
        "completion_tokens_details": {"audio_tokens": 3},
    },
    "responses": {
        "input_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 7, "audio_tokens": 5},
        "output_tokens_details": {"audio_tokens": 3},
    },
}


def _reference(model: str, provider_id: str, a: dict[str, Any]) -> float:
    """genai-prices' own price of the span's usage (no cached audio: see otel_llm.pricing)."""
    usage = genai_prices.Usage(
        input_tokens=a["gen_ai.usage.input_tokens"],
        output_tokens=a["gen_ai.usage.output_tokens"],
        cache_read_tokens=10,
        cache_write_tokens=7,
        input_audio_tokens=5,
        output_audio_tokens=3,
        cache_audio_read_tokens=0,
        cache_audio_write_tokens=0,
    )
    return float(genai_prices.calc_price(usage, model, provider_id=provider_id).total_price)


@pytest.mark.parametrize(
    ("model", "provider_id"),
    [
        pytest.param("gpt-realtime", "openai", id="gpt-realtime"),  # audio and cache reads at their own rates
        pytest.param("claude-sonnet-4-5", "anthropic", id="claude"),  # cache writes at their own rate
    ],
)
@pytest.mark.parametrize(("layer", "api", "stream"), [p for p in FORMS if p.values[0] != "requests"])
def test_cache_writes_and_audio_tokens_are_recorded_and_priced_as_genai_prices_prices_them(
    layer: str,
    api: str,
    stream: bool,
    model: str,
    provider_id: str,
    provider: FakeProvider,
    telemetry: Telemetry,
) -> None:
    _call(layer, provider.url, api, stream, {"x-fake-usage": json.dumps(DETAILS[api])}, model=model)
    a = dict(telemetry.span().attributes or {})
    assert a["gen_ai.usage.cache_read.input_tokens"] == 10
    assert a["gen_ai.usage.cache_write.input_tokens"] == 7
    assert a["gen_ai.usage.audio.input_tokens"] == 5
    assert a["gen_ai.usage.audio.output_tokens"] == 3
    detail = "otel_llm.client.token.usage.detail"
    for kind, count in (("cache_read", 10), ("cache_write", 7), ("audio_input", 5), ("audio_output", 3)):
        assert telemetry.point(detail, gen_ai__token__type=kind).value == count
    want = _reference(model, provider_id, a)
    assert a["gen_ai.usage.cost.amount"] == pytest.approx(want, rel=1e-12)
    assert telemetry.point("gen_ai.client.operation.cost").sum == pytest.approx(want, rel=1e-12)
    spend = otel_llm.spend()
    assert spend.total_usd == pytest.approx(want, rel=1e-12)
    m = spend.models[0]
    assert (m.cache_read_tokens, m.cache_write_tokens, m.audio_input_tokens, m.audio_output_tokens) == (10, 7, 5, 3)


def test_default_answers_carry_no_cache_writes_or_audio(provider: FakeProvider, telemetry: Telemetry) -> None:
    _call("openai", provider.url, "chat", False, {})
    a = dict(telemetry.span().attributes or {})
    assert not [k for k in a if "audio" in k or "cache_creation" in k]


# --------------------------------------------------------------------------------------------------
# responses.retrieve


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_retrieve_is_attributed_to_the_provider_of_its_create(
    stream: bool, provider: FakeProvider, telemetry: Telemetry
) -> None:
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key=KEY, max_retries=0)
    with client:
        created = client.responses.create(model="gpt-4.1", input=SAY)
        if stream:
            for _ in client.responses.retrieve(created.id, stream=True):
                pass
        else:
            client.responses.retrieve(created.id)
    create, fetch = telemetry.spans()
    assert fetch.attributes["gen_ai.operation.name"] == "fetch_response"
    assert create.attributes["gen_ai.provider.name"] == "openai"
    assert fetch.attributes["gen_ai.provider.name"] == create.attributes["gen_ai.provider.name"]
    assert fetch.attributes["server.address"] == create.attributes["server.address"]
