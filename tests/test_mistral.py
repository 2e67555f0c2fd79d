"""Mistral through the real ``mistralai`` client (and the openai SDK sent to ``api.mistral.ai``), against the fake
provider answering as Mistral does (``server_url`` under ``/mistral``, or a transport that carries requests for
``api.mistral.ai`` to it with their ``Host`` header): provider ``mistral_ai``, usage read whole and streamed, and
``stream_options`` never sent (Mistral refuses it with a 422; its streams carry usage on their own)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest
from mistralai.client import Mistral

from otel_llm import _names as n
from otel_llm.fakeprovider import FakeConfig, FakeProvider

from .conftest import Telemetry

MSGS = [{"role": "user", "content": "Say hello to the observability team, please, in a few words."}]
MODEL = "mistral-small-latest"


def _sent_bodies(provider: FakeProvider) -> list[Any]:
    return [r.json() for r in provider.requests if r.method == "POST"]


@pytest.mark.parametrize("kind", ["chat", "chat-stream", "embed"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_mistral_client_gives_one_span_with_its_usage_and_never_sends_stream_options(
    provider: FakeProvider, telemetry: Telemetry, kind: str, mode: str
) -> None:
    provider.reset()
    client = Mistral(api_key="sk-mistral-test", server_url=provider.url + "/mistral")

    async def run_async() -> Any:
        if kind == "chat":
            return await client.chat.complete_async(model=MODEL, messages=MSGS)
        if kind == "embed":
            return await client.embeddings.create_async(model="mistral-embed", inputs=["one text", "two texts"])
        return [e async for e in await client.chat.stream_async(model=MODEL, messages=MSGS)]

    if mode == "async":
        result = asyncio.run(run_async())
    elif kind == "chat":
        result = client.chat.complete(model=MODEL, messages=MSGS)
    elif kind == "embed":
        result = client.embeddings.create(model="mistral-embed", inputs=["one text", "two texts"])
    else:
        result = list(client.chat.stream(model=MODEL, messages=MSGS))
    (body,) = _sent_bodies(provider)
    assert "stream_options" not in body  # the http layer adds nothing to the request
    span = telemetry.span()
    attrs = span.attributes
    assert attrs[n.PROVIDER] == "mistral_ai"
    usage = result[-1].data.usage if kind == "chat-stream" else result.usage
    assert attrs[n.USAGE_INPUT] == usage.prompt_tokens
    if kind == "embed":
        assert attrs[n.EMBEDDINGS_DIMENSION] == len(result.data[0].embedding) == 1024
    else:
        assert attrs[n.USAGE_OUTPUT] == usage.completion_tokens
        assert attrs[n.FINISH_REASONS] == ("stop",)
    if kind == "chat-stream":
        assert attrs[n.STREAM_OUTCOME] == "completed"
    assert n.COST_AMOUNT in attrs  # genai-prices prices Mistral's models


class _ToFake(httpx.HTTPTransport):
    """Sends a request for any host to the fake provider, its ``Host`` header (api.mistral.ai) kept."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        return super().handle_request(request)


def test_the_openai_sdk_sent_to_api_mistral_ai_does_not_get_include_usage_and_still_records_the_streams_usage(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(include_usage=True)
    provider.reset()
    http = httpx.Client(transport=_ToFake(provider.port))
    client = openai.OpenAI(base_url="https://api.mistral.ai/v1", api_key="sk-test", http_client=http)
    chunks = list(client.chat.completions.create(model=MODEL, messages=MSGS, stream=True))  # type: ignore[arg-type]
    (body,) = _sent_bodies(provider)
    assert "stream_options" not in body  # a 422 from Mistral otherwise
    attrs = t.span().attributes
    assert attrs[n.PROVIDER] == "mistral_ai" and attrs[n.SERVER_ADDRESS] == "api.mistral.ai"
    assert chunks[-1].usage is not None  # Mistral's own usage, on its last chunk, reaches the caller
    assert attrs[n.USAGE_INPUT] == chunks[-1].usage.prompt_tokens
    assert attrs[n.USAGE_OUTPUT] == chunks[-1].usage.completion_tokens


def test_the_fake_mistral_refuses_stream_options_as_mistral_does(provider: FakeProvider) -> None:
    r = httpx.post(
        provider.url + "/mistral/v1/chat/completions",
        json={"model": MODEL, "messages": MSGS, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "stream_options"]


def test_the_mistral_client_through_the_transport_to_api_mistral_ai_is_mistral_by_host(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    client = Mistral(api_key="sk-test", client=httpx.Client(transport=_ToFake(provider.port)))
    events = list(client.chat.stream(model="open-mixtral-8x7b", messages=MSGS))
    attrs = telemetry.span().attributes
    assert attrs[n.PROVIDER] == "mistral_ai" and attrs[n.SERVER_ADDRESS] == "api.mistral.ai"
    assert attrs[n.USAGE_OUTPUT] == events[-1].data.usage.completion_tokens


def _outcome(call: Callable[[], Any]) -> tuple[str, str]:
    """What the caller gets: the answer (its JSON) or the exception (its type and message)."""
    try:
        result = call()
    except Exception as exc:  # the caller's own exception, compared as such
        return type(exc).__qualname__, _timeless(str(exc))
    if isinstance(result, list):
        return "events", _timeless(repr([e.model_dump_json() for e in result]))
    return "answer", _timeless(result.model_dump_json())


def _timeless(text: str) -> str:
    """The fake provider's ``created`` is the second it answered: the same answer a second later differs there."""
    out = []
    for part in text.split('"created":')[1:]:
        out.append(part.lstrip("0123456789"))
    return text.split('"created":')[0] + "".join('"created":0' + p for p in out)


@pytest.mark.parametrize(
    "fault",
    ["400", "401", "429", "500", "503", "html-502", "malformed-json", "empty", "reset", "truncated-sse", "junk-sse"],
)
@pytest.mark.parametrize("kind", ["chat", "chat-stream"])
def test_a_mistral_fault_gives_the_caller_what_the_plain_client_gives_and_one_span(
    instrument: Callable[..., Telemetry], kind: str, fault: str
) -> None:
    """The fault matrix through the real mistralai client: the same answer or exception as without otel-llm,
    one span per call, ended once, failed with the status or marked by its stream outcome."""
    if fault.endswith("-sse") and kind == "chat":
        pytest.skip("a stream fault")
    provider = FakeProvider(config=FakeConfig(seed=4321)).start()  # seeded: the same ids in both runs
    client = Mistral(api_key="sk-mistral-test", server_url=provider.url + "/mistral", retry_config=None)
    headers = {"x-fake-fault": fault}

    def call() -> Any:
        if kind == "chat":
            return client.chat.complete(model=MODEL, messages=MSGS, http_headers=headers)
        return list(client.chat.stream(model=MODEL, messages=MSGS, http_headers=headers))

    try:
        provider.reset()
        plain = _outcome(call)
        telemetry = instrument()
        provider.reset()
        seen = _outcome(call)
    finally:
        provider.stop()
    assert seen == plain
    telemetry.wait_gc()
    (span,) = telemetry.exporter.get_finished_spans()
    attrs = span.attributes or {}
    assert attrs[n.PROVIDER] == "mistral_ai"
    if fault.isdigit() or fault == "html-502":  # an error status: the span failed with it
        assert attrs[n.ERROR_TYPE] == ("502" if fault == "html-502" else fault)
    if fault == "reset":
        assert attrs[n.ERROR_TYPE] == "connection_error"
    # a body the client cannot parse (malformed, empty, junk) came with a 200: the HTTP layer records the answer
    # it saw, and the client's own exception reaches the caller unchanged (compared above)
    assert telemetry.in_flight() == 0
