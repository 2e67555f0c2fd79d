"""One call, one record, whatever the layers: a patched client sending through another patched client (an
``httpx.AsyncClient`` whose transport is aiohttp, as LiteLLM's async path and the openai SDK's
``DefaultAioHttpClient`` do; a sync ``httpx.Client`` whose transport is a ``requests.Session``; the openai SDK
on top of either) records one span, one duration point, one set of token points, one cost point and one
spend-ledger entry, and the caller gets what an uninstrumented call gives.

Real clients and real transports (aiohttp, requests, openai's own aiohttp transport) against the local fake
provider; telemetry read back through in-memory exporters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import httpx
import httpx2
import openai
import pytest
import requests
from openai._vendor.httpx_aiohttp import AiohttpTransport as OpenAIAiohttpTransport
from opentelemetry import trace

import otel_llm
from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry
from .test_http_clients import normalised, the_one_model

MSG = [{"role": "user", "content": "Say in a few words what a span is"}]
BODY = {"model": "gpt-4.1", "messages": MSG}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


# --------------------------------------------------------------------------------------------------
# transports that send through another client library, as httpx-aiohttp and the like do


def aiohttp_transport(mod: Any) -> Any:
    """An ``AsyncBaseTransport`` of ``mod`` (httpx or httpx2) that sends with a real ``aiohttp.ClientSession``
    and answers with a response streaming aiohttp's body (what the ``httpx-aiohttp`` package does)."""

    class Body(mod.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, response: aiohttp.ClientResponse) -> None:
            self.response = response

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self.response.content.iter_chunked(16384):
                yield chunk

        async def aclose(self) -> None:
            self.response.release()

    class Transport(mod.AsyncBaseTransport):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.session: aiohttp.ClientSession | None = None

        async def handle_async_request(self, request: Any) -> Any:
            if self.session is None:
                self.session = aiohttp.ClientSession()
            response = await self.session.request(
                request.method,
                str(request.url),
                headers=list(request.headers.multi_items()),
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,  # the httpx response decodes, as it does its own transport's bodies
            )
            return mod.Response(response.status, headers=list(response.raw_headers), stream=Body(response))

        async def aclose(self) -> None:
            if self.session is not None:
                await self.session.close()

    return Transport()


def requests_transport(mod: Any) -> Any:
    """A ``BaseTransport`` of ``mod`` that sends with a real ``requests.Session``, streaming its raw body."""

    class Body(mod.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, response: requests.Response) -> None:
            self.response = response

        def __iter__(self) -> Iterator[bytes]:
            yield from self.response.raw.stream(16384, decode_content=False)

        def close(self) -> None:
            self.response.close()

    class Transport(mod.BaseTransport):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.session = requests.Session()

        def handle_request(self, request: Any) -> Any:
            response = self.session.request(
                request.method,
                str(request.url),
                headers=dict(request.headers),
                data=request.content,
                stream=True,
                allow_redirects=False,
                timeout=10,
            )
            headers = list(response.raw.headers.items())
            return mod.Response(response.status_code, headers=headers, stream=Body(response))

        def close(self) -> None:
            self.session.close()

    return Transport()


# --------------------------------------------------------------------------------------------------
# the calls: each returns what the caller got, as bytes to compare


async def _async_raw(mod: Any, transport: Any, url: str, stream: bool) -> bytes:
    async with mod.AsyncClient(transport=transport, timeout=10) as client:
        if not stream:
            return (await client.post(url, json=BODY)).content
        async with client.stream("POST", url, json=STREAM_BODY) as response:
            return b"".join([chunk async for chunk in response.aiter_bytes()])


def _sync_raw(mod: Any, transport: Any, url: str, stream: bool) -> bytes:
    with mod.Client(transport=transport, timeout=10) as client:
        if not stream:
            return client.post(url, json=BODY).content
        with client.stream("POST", url, json=STREAM_BODY) as response:
            return b"".join(response.iter_bytes())


USAGE: Any = {"include_usage": True}  # asked by the caller: the request is the same instrumented or not


def _dump(obj: Any) -> bytes:
    return obj.model_dump_json().encode()


async def _async_sdk(http_client: Any, base: str, stream: bool) -> bytes:
    async with openai.AsyncOpenAI(base_url=base, api_key="k", max_retries=0, http_client=http_client) as client:
        if not stream:
            return _dump(await client.chat.completions.create(model="gpt-4.1", messages=MSG))  # type: ignore[arg-type]
        chunks = await client.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, stream_options=USAGE)  # type: ignore[arg-type]
        return b"\n".join([_dump(c) async for c in chunks])


def _sync_sdk(http_client: Any, base: str, stream: bool) -> bytes:
    with openai.OpenAI(base_url=base, api_key="k", max_retries=0, http_client=http_client) as client:
        if not stream:
            return _dump(client.chat.completions.create(model="gpt-4.1", messages=MSG))  # type: ignore[arg-type]
        chunks = client.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, stream_options=USAGE)  # type: ignore[arg-type]
        return b"\n".join(_dump(c) for c in chunks)


CHAT = "/v1/chat/completions"

LAYERS: dict[str, Callable[[FakeProvider, bool], bytes]] = {
    # (a) an httpx/httpx2 AsyncClient sending through aiohttp
    "httpx-async/aiohttp": lambda p, s: asyncio.run(_async_raw(httpx, aiohttp_transport(httpx), p.url + CHAT, s)),
    "httpx2-async/aiohttp": lambda p, s: asyncio.run(_async_raw(httpx2, aiohttp_transport(httpx2), p.url + CHAT, s)),
    "httpx2-async/openai-aiohttp-transport": lambda p, s: asyncio.run(
        _async_raw(httpx2, OpenAIAiohttpTransport(), p.url + CHAT, s)
    ),
    # (b) a sync httpx/httpx2 Client sending through requests
    "httpx-sync/requests": lambda p, s: _sync_raw(httpx, requests_transport(httpx), p.url + CHAT, s),
    "httpx2-sync/requests": lambda p, s: _sync_raw(httpx2, requests_transport(httpx2), p.url + CHAT, s),
    # (c) the openai SDK over either
    "openai-async/DefaultAioHttpClient": lambda p, s: asyncio.run(
        _async_sdk(openai.DefaultAioHttpClient(), p.url + "/v1", s)
    ),
    "openai-async/httpx2-aiohttp": lambda p, s: asyncio.run(
        _async_sdk(httpx2.AsyncClient(transport=aiohttp_transport(httpx2)), p.url + "/v1", s)
    ),
    "openai-sync/httpx2-requests": lambda p, s: _sync_sdk(
        httpx2.Client(transport=requests_transport(httpx2)), p.url + "/v1", s
    ),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("call", list(LAYERS.values()), ids=list(LAYERS))
def test_a_call_through_two_patched_clients_is_recorded_once(
    call: Callable[[FakeProvider, bool], bytes], stream: bool, provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.reset()
    got = call(provider, stream)
    model, sent = the_one_model(provider)

    spans = telemetry.spans()
    assert len(spans) == 1, [(s.name, dict(s.attributes or {})) for s in spans]
    a = spans[0].attributes
    assert a["gen_ai.response.model"] == model
    assert a["gen_ai.usage.input_tokens"] == sent["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == sent["output_tokens"]
    assert a["http.response.status_code"] == 200
    if stream:
        assert a["otel_llm.stream.outcome"] == "completed"
    assert telemetry.point("gen_ai.client.operation.duration").count == 1
    assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="input").sum == sent["input_tokens"]
    assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="output").sum == sent["output_tokens"]
    cost = telemetry.point("gen_ai.client.operation.cost")
    assert cost.count == 1 and cost.sum == pytest.approx(a["gen_ai.usage.cost.amount"])
    spend = otel_llm.spend()
    assert spend.calls == 1 and spend.total_usd == pytest.approx(a["gen_ai.usage.cost.amount"])
    assert telemetry.in_flight() == 0

    # the caller got what an uninstrumented call gives
    telemetry.instrumentor.uninstrument()
    provider.reset()
    plain = call(provider, stream)
    assert len(got) > 0 and normalised(got) == normalised(plain)


def test_a_span_of_otel_llm_is_never_taken_for_a_foreign_genai_span(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    """A raw call made while a GenAI span of otel-llm's own is current is a call of its own, under that span:
    its data is not poured into the current span as if that span were another instrumentation's."""
    outer = telemetry.instrumentor.recorder.tracer.start_span(
        "chat outer", attributes={"gen_ai.operation.name": "chat"}
    )
    with trace.use_span(outer, end_on_exit=True), httpx.Client(timeout=10) as client:
        got = client.post(provider.url + CHAT, json=BODY).json()
    spans = {s.name: s for s in telemetry.spans()}
    assert sorted(spans) == ["chat gpt-4.1", "chat outer"]
    inner = spans["chat gpt-4.1"]
    assert inner.parent is not None and inner.parent.span_id == outer.get_span_context().span_id
    assert inner.attributes["gen_ai.usage.output_tokens"] == got["usage"]["completion_tokens"]
    assert "gen_ai.usage.output_tokens" not in spans["chat outer"].attributes
    assert telemetry.point("gen_ai.client.operation.duration").count == 1
    assert otel_llm.spend().calls == 1
