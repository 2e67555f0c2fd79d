"""AWS Bedrock through the real boto3 ``bedrock-runtime`` client (no stubbing of botocore) against the fake
provider, which speaks Converse JSON, the model families' InvokeModel bodies and the binary
``application/vnd.amazon.eventstream`` framing.

Every operation (Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream) and family (Anthropic,
Amazon Nova, Meta, Mistral): one span, the tokens the provider sent, the cost at genai-prices' Bedrock rates;
content capture on and off; the caller's results and exceptions the same as an uninstrumented client's;
streams that end every way end their span exactly once; no credential reaches any attribute.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from botocore.response import StreamingBody

from otel_llm._fake_bedrock import encode_event
from otel_llm.fakeprovider import FakeProvider
from otel_llm.pricing import PriceBook

from .conftest import Telemetry

ACCESS_KEY = "AKIAOTELLLMTESTKEY01"
SECRET_KEY = "otel-llm-test-secret-key-9f8e7d6c5b4a"
SESSION_TOKEN = "otel-llm-test-session-token-FwoGZXIvYXdzEJr"

FAMILIES = {
    "anthropic": (
        "anthropic.claude-3-haiku-20240307-v1:0",
        {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 300, "messages": [{"role": "user", "content": "Hi"}]},
    ),
    "nova": (
        "us.amazon.nova-lite-v1:0",
        {"schemaVersion": "messages-v1", "messages": [{"role": "user", "content": [{"text": "Hello there, model"}]}]},
    ),
    "meta": ("meta.llama3-1-8b-instruct-v1:0", {"prompt": "Tell me about spans.", "max_gen_len": 300}),
    "mistral": ("mistral.mistral-7b-instruct-v0:2", {"prompt": "<s>[INST] Spans? [/INST]", "max_tokens": 300}),
}
MESSAGES = [{"role": "user", "content": [{"text": "Say something about telemetry."}]}]
OPS = ("converse", "converse_stream", "invoke_model", "invoke_model_with_response_stream")


def _client(provider: FakeProvider, fault: str | None = None, attempts: int = 1, url: str | None = None) -> Any:
    client = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=url or provider.url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=SESSION_TOKEN,
        config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}, read_timeout=10),
    )
    if fault is not None:

        def add_fault(request: Any, **_: Any) -> None:
            request.headers["x-fake-fault"] = fault

        client.meta.events.register("before-send.bedrock-runtime", add_fault)
    return client


def _call(client: Any, op: str, model: str, body: dict[str, Any] | None = None, **extra: Any) -> Any:
    if op.startswith("converse"):
        return getattr(client, op)(modelId=model, messages=MESSAGES, **extra)
    return getattr(client, op)(modelId=model, body=json.dumps(body), **extra)


def _consume(op: str, response: dict[str, Any]) -> Any:
    """What the caller gets: the answer, its events, or its body's bytes (decoded)."""
    if op == "converse":
        return {k: v for k, v in response.items() if k not in ("ResponseMetadata", "metrics")}
    if op == "invoke_model":
        return json.loads(response["body"].read())
    events = list(response["stream" if op == "converse_stream" else "body"])
    return [json.loads(e["chunk"]["bytes"]) if "chunk" in e else e for e in events]


def _blank(value: Any) -> Any:
    """The answer without what is drawn per call (ids, latencies)."""
    if isinstance(value, dict):
        return {k: _blank(v) for k, v in value.items() if k not in ("id", "latencyMs", "invocationLatency")}
    if isinstance(value, list):
        return [_blank(v) for v in value]
    return value


def _rates(model: str) -> tuple[float, float]:
    entry = PriceBook.load(None).entry("aws.bedrock", model, None)
    assert entry is not None and entry.prices is not None
    return entry.prices.base.input, entry.prices.base.output


def _attrs(t: Telemetry) -> dict[str, Any]:
    return dict(t.span().attributes or {})


@pytest.fixture
def fresh() -> Iterator[FakeProvider]:
    with FakeProvider() as p:
        yield p


def _request_for(op: str, family: str) -> tuple[str, dict[str, Any] | None]:
    model, body = FAMILIES[family]
    return model, (None if op.startswith("converse") else body)


CASES = [(op, fam) for op in OPS for fam in FAMILIES if not (op.startswith("converse") and fam != "nova")] + [
    ("converse", "anthropic"),
    ("converse_stream", "meta"),
]


@pytest.mark.parametrize("capture", [False, True])
@pytest.mark.parametrize(("op", "family"), CASES)
def test_each_operation_one_span_exact_tokens_cost_and_the_same_answer(
    fresh: FakeProvider, instrument: Callable[..., Telemetry], op: str, family: str, capture: bool
) -> None:
    model, body = _request_for(op, family)
    plain = _consume(op, _call(_client(fresh), op, model, body))  # not instrumented yet: the reference
    fresh.reset()
    t = instrument(capture_content=capture)
    got = _consume(op, _call(_client(fresh), op, model, body))
    assert _blank(got) == _blank(plain)
    a = _attrs(t)
    sent = fresh.totals()[model]
    assert a["gen_ai.provider.name"] == "aws.bedrock"
    assert a["gen_ai.request.model"] == model
    assert a["otel_llm.layer"] == "sdk"
    assert a["gen_ai.operation.name"] == (
        "text_completion" if family in ("meta", "mistral") and op.startswith("invoke") else "chat"
    )
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
        sent["input_tokens"],
        sent["output_tokens"],
    )
    r_in, r_out = _rates(model)
    assert a["gen_ai.usage.cost.amount"] == pytest.approx(
        (sent["input_tokens"] * r_in + sent["output_tokens"] * r_out) / 1e6
    )
    assert a["http.response.status_code"] == 200 and "error.type" not in a
    assert a["gen_ai.response.finish_reasons"]
    streamed = op.endswith("stream")
    assert a.get("gen_ai.request.stream", False) is streamed
    if streamed:
        assert a["otel_llm.stream.outcome"] == "completed"
        assert a["gen_ai.response.time_to_first_chunk"] > 0
    point = t.point("gen_ai.client.token.usage", gen_ai__token__type="input", gen_ai__provider__name="aws.bedrock")
    assert point.sum == sent["input_tokens"]
    if capture:
        out = json.loads(a["gen_ai.output.messages"])
        text = "".join(p["content"] for p in out[0]["parts"] if p["type"] == "text")
        assert len(text.split()) >= 1 and text.split()[0].lower() in json.dumps(got).lower()
        assert json.loads(a["gen_ai.input.messages"])[0]["parts"][0]["type"] == "text"
    else:
        assert "gen_ai.output.messages" not in a and "gen_ai.input.messages" not in a
    assert t.in_flight() == 0


def test_converse_tool_call_and_tool_definitions_are_captured(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(capture_content=True)
    client = _client(provider)

    def answer_with_tool(request: Any, **_: Any) -> None:
        request.headers["x-fake-answer"] = "tool_call"

    client.meta.events.register("before-send.bedrock-runtime", answer_with_tool)
    spec = {"name": "get_weather", "description": "Weather", "inputSchema": {"json": {"type": "object"}}}
    tools = {"tools": [{"toolSpec": spec}]}
    response = client.converse_stream(
        modelId="amazon.nova-pro-v1:0", messages=MESSAGES, toolConfig=tools, system=[{"text": "Be brief."}]
    )
    events = list(response["stream"])
    a = _attrs(t)
    assert a["gen_ai.response.finish_reasons"] == ("tool_use",)
    [msg] = json.loads(a["gen_ai.output.messages"])
    [part] = msg["parts"]
    sent = json.loads(
        "".join(e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e)
    )
    assert part == {"type": "tool_call", "id": part["id"], "name": "get_weather", "arguments": sent}
    assert msg["finish_reason"] == "tool_call"
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "get_weather"
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]


@pytest.mark.parametrize("fault", ["400", "401", "404", "429", "500", "503"])
@pytest.mark.parametrize("op", OPS)
def test_error_statuses_raise_the_same_exception_and_one_failed_span(
    provider: FakeProvider, instrument: Callable[..., Telemetry], op: str, fault: str
) -> None:
    model, body = _request_for(op, "nova")

    def raised(client: Any) -> botocore.exceptions.ClientError:
        with pytest.raises(botocore.exceptions.ClientError) as info:
            _call(client, op, model, body)
        return info.value

    plain = raised(_client(provider, fault))
    t = instrument()
    got = raised(_client(provider, fault))
    assert type(got) is type(plain) and str(got) == str(plain)
    assert got.response["Error"] == plain.response["Error"]
    a = _attrs(t)
    status = plain.response["ResponseMetadata"]["HTTPStatusCode"]
    assert a["error.type"] == str(status) and a["http.response.status_code"] == status
    assert "gen_ai.usage.input_tokens" not in a and "gen_ai.usage.cost.amount" not in a
    assert t.in_flight() == 0


def test_retried_call_is_one_span_with_its_resend_count(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    client = _client(provider, "503", attempts=2)
    with pytest.raises(botocore.exceptions.ClientError):
        client.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    a = _attrs(t)
    assert a["http.request.resend_count"] == 1 and a["error.type"] == "503"


def test_connection_error_fails_the_span_with_the_user_exception_unchanged(
    instrument: Callable[..., Telemetry],
) -> None:
    with FakeProvider() as gone:
        url = gone.url
    t = instrument()
    client = _client(gone, url=url)
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    a = _attrs(t)
    assert a["error.type"] == "connection_error"
    assert t.in_flight() == 0


@pytest.mark.parametrize("op", ["converse_stream", "invoke_model_with_response_stream"])
def test_truncated_stream_gives_the_caller_the_same_events_and_is_marked(
    provider: FakeProvider, instrument: Callable[..., Telemetry], op: str
) -> None:
    model, body = _request_for(op, "meta")
    plain = _consume(op, _call(_client(provider, "truncated-sse"), op, model, body))
    t = instrument()
    got = _consume(op, _call(_client(provider, "truncated-sse"), op, model, body))
    assert _blank(got) == _blank(plain) and plain
    a = _attrs(t)
    assert a["error.type"] == "stream_truncated" and a["otel_llm.stream.outcome"] == "completed"


@pytest.mark.parametrize("op", ["converse_stream", "invoke_model_with_response_stream"])
def test_an_exception_event_mid_stream_raises_unchanged_and_fails_the_span(
    provider: FakeProvider, instrument: Callable[..., Telemetry], op: str
) -> None:
    model, body = _request_for(op, "anthropic")

    def run(client: Any) -> tuple[int, BaseException]:
        response = _call(client, op, model, body)
        seen = 0
        with pytest.raises(botocore.exceptions.EventStreamError) as info:
            for _ in response["stream" if op == "converse_stream" else "body"]:
                seen += 1
        return seen, info.value

    plain_seen, plain = run(_client(provider, "stream-exception"))
    t = instrument()
    seen, got = run(_client(provider, "stream-exception"))
    assert seen == plain_seen > 0 and str(got) == str(plain) and type(got) is type(plain)
    a = _attrs(t)
    assert a["error.type"] == "modelStreamErrorException" and a["otel_llm.stream.outcome"] == "failed"
    assert t.in_flight() == 0


def test_a_reset_mid_stream_raises_unchanged_and_fails_the_span(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    def run(client: Any) -> type:
        response = client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
        with pytest.raises(Exception) as info:
            for _ in response["stream"]:
                pass
        return type(info.value)

    plain = run(_client(provider, "reset"))
    t = instrument()
    assert run(_client(provider, "reset")) is plain
    a = _attrs(t)
    assert a["otel_llm.stream.outcome"] == "failed" and a["error.type"] == "connection_error"


@pytest.mark.parametrize("op", ["converse_stream", "invoke_model_with_response_stream"])
def test_stream_closed_early_or_abandoned_ends_the_span_once(
    provider: FakeProvider, instrument: Callable[..., Telemetry], op: str
) -> None:
    t = instrument()
    client = _client(provider)
    model, body = _request_for(op, "nova")
    key = "stream" if op == "converse_stream" else "body"
    stream = _call(client, op, model, body)[key]
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    stream.close()
    a = _attrs(t)
    assert a["otel_llm.stream.outcome"] == "closed_early" and "error.type" not in a
    t.exporter.clear()
    stream = _call(client, op, model, body)[key]
    for i, _ in enumerate(stream):
        if i == 2:
            break
    del stream, _
    t.wait_gc()
    a = _attrs(t)
    assert a["otel_llm.stream.outcome"] == "abandoned" and a["error.type"] == "stream_abandoned"
    assert t.in_flight() == 0


def test_closing_after_the_last_event_is_a_completed_stream(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    response = _client(provider).converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    for event in response["stream"]:
        if "metadata" in event:
            break
    response["stream"].close()
    assert _attrs(t)["otel_llm.stream.outcome"] == "completed"


def test_invoke_model_body_read_in_chunks_closed_unread_or_cut(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    client = _client(provider)
    model, body = FAMILIES["anthropic"]
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    assert isinstance(response["body"], StreamingBody)
    data = b"".join(response["body"].iter_chunks(7))
    assert json.loads(data)["type"] == "message"
    a = _attrs(t)
    assert (
        a["gen_ai.response.finish_reasons"] == ("end_turn",) and a["gen_ai.response.model"] == "claude-3-haiku-20240307"
    )
    t.exporter.clear()
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    response["body"].close()  # unread: the headers' counts still price it
    a = _attrs(t)
    sent = provider.totals()[model]
    assert a["gen_ai.usage.output_tokens"] and "error.type" not in a
    assert sent["calls"] == 2
    assert t.in_flight() == 0


def test_invoke_model_body_cut_mid_read_raises_unchanged_and_fails_the_span(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    model, body = FAMILIES["meta"]

    def cut(client: Any) -> BaseException:
        response = client.invoke_model(modelId=model, body=json.dumps(body))
        with pytest.raises(botocore.exceptions.BotoCoreError) as info:
            response["body"].read()
        return info.value

    plain = cut(_client(provider, "reset"))
    t = instrument()
    got = cut(_client(provider, "reset"))
    assert type(got) is type(plain)
    a = _attrs(t)
    assert a["error.type"] == type(got).__module__ + "." + type(got).__qualname__
    assert t.in_flight() == 0


def test_arn_and_inference_profile_ids_stay_the_request_model_and_are_priced(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    client = _client(provider)
    arn = "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-opus-4-5-20251101-v1:0"
    client.converse(modelId=arn, messages=MESSAGES)
    a = _attrs(t)
    assert a["gen_ai.request.model"] == arn and a["gen_ai.usage.cost.amount"] > 0
    assert a["otel_llm.cost.model"].endswith("claude-opus-4-5-v1:0")
    t.exporter.clear()
    profile = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
    with pytest.raises(botocore.exceptions.ClientError):  # the fake knows no model behind it
        client.converse(modelId=profile, messages=MESSAGES)
    assert _attrs(t)["gen_ai.request.model"] == profile


def test_no_credential_reaches_any_attribute_metric_or_event(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(capture_content=True, emit_event=True)
    client = _client(provider)
    for op in OPS:
        model, body = _request_for(op, "nova")
        _consume(op, _call(client, op, model, body))
    auth = provider.requests[-1].headers["authorization"]
    signature = auth.rpartition("Signature=")[2]
    assert provider.requests[-1].headers["x-amz-security-token"] == SESSION_TOKEN and signature
    secrets = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, signature)
    texts = [json.dumps(dict(s.attributes or {}), default=str) for s in t.spans()]
    texts += [
        json.dumps(dict(p.attributes), default=str)
        for name in ("gen_ai.client.operation.duration",)
        for p in t.points(name)
    ]
    texts += [json.dumps(dict(r.log_record.attributes or {}), default=str) for r in t.events()]
    assert len(t.spans()) == 4 and texts
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_recorded_once_with_the_http_layers_patched(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    import requests

    t = instrument()
    assert hasattr(requests.Session.send, "__wrapped__")
    _client(provider).converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    assert len(t.spans()) == 1 and t.span().attributes["otel_llm.layer"] == "sdk"


def test_uninstrument_leaves_existing_clients_silent(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    client = _client(provider)
    t.instrumentor.uninstrument()
    client.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    assert t.spans() == []
    t.instrumentor.instrument(tracer_provider=t.tracer_provider)  # on again: the same client records again
    client.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
    assert len(t.spans()) == 1


def test_botocore_is_patched_when_imported_and_never_imported_by_us(provider: FakeProvider) -> None:
    code = f"""
import json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from otel_llm import LLMInstrumentor
exporter = InMemorySpanExporter()
tp = TracerProvider()
tp.add_span_processor(SimpleSpanProcessor(exporter))
LLMInstrumentor().instrument(tracer_provider=tp, meter_provider=MeterProvider())
before = "botocore" in sys.modules
import botocore.exceptions  # the package alone (as a library catching its errors would): its session is not loaded
session = "botocore.session" in sys.modules
import boto3
client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url="{provider.url}",
                      aws_access_key_id="AKIA", aws_secret_access_key="x")
client.converse(modelId="amazon.nova-lite-v1:0", messages=[{{"role": "user", "content": [{{"text": "hi"}}]}}])
print(json.dumps({{"before": before, "session": session, "spans": [s.name for s in exporter.get_finished_spans()]}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"before": False, "session": False, "spans": ["chat amazon.nova-lite-v1:0"]}


def test_event_stream_encoder_round_trips_through_botocore() -> None:
    from botocore.eventstream import EventStreamBuffer

    data = encode_event([(":event-type", "chunk"), (":message-type", "event")], b'{"bytes":"e30="}')
    buffer = EventStreamBuffer()
    buffer.add_data(data[:5])
    assert list(buffer) == []
    buffer.add_data(data[5:])
    [message] = list(buffer)
    assert message.headers == {":event-type": "chunk", ":message-type": "event"}
    assert message.payload == b'{"bytes":"e30="}'


def test_an_exception_botocore_never_reports_still_ends_the_span_once(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    client = _client(provider)

    def interrupt(**_: Any) -> None:
        raise KeyboardInterrupt  # a BaseException: botocore's after-call-error handlers never see it

    client.meta.events.register("before-send.bedrock-runtime", interrupt)
    gc.disable()  # ended when the method raises, not when a collection frees botocore's request context
    try:
        with pytest.raises(KeyboardInterrupt):
            client.converse(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
        a = _attrs(t)
        assert a["error.type"] == "KeyboardInterrupt" and t.in_flight() == 0
    finally:
        gc.enable()


def test_invoke_model_body_dropped_half_read_is_abandoned_and_whole_is_complete(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument()
    client = _client(provider)
    model, body = FAMILIES["nova"]
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    response["body"].read(10)
    del response
    t.wait_gc()
    assert _attrs(t)["error.type"] == "stream_abandoned"
    t.exporter.clear()
    response = client.invoke_model(modelId=model, body=json.dumps(body))
    size = int(response["ResponseMetadata"]["HTTPHeaders"]["content-length"])
    assert json.loads(response["body"].read(size))["stopReason"]  # all of it, without reading to the end
    del response
    t.wait_gc()
    a = _attrs(t)
    assert "error.type" not in a and a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert t.in_flight() == 0
