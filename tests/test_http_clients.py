"""Raw httpx, httpx2, requests and aiohttp calls against the local provider: one LLM-aware span and
one set of metric points per call, the body the application reads unchanged, and no double counting
under the openai and anthropic SDKs.

Every client runs through a small adapter (``Client``) that drives the real library the way an
application would: post JSON and read the whole answer, read a streamed answer piece by piece, stop
after one line, or drop the response. Sync libraries run inside the async tests unchanged.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import http.client
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import anthropic
import httpx
import httpx2
import openai
import pytest
import requests
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

CHUNKS = 6  # content events per streamed answer (x-fake-chunks)
PROMPT = "Summarise what the telemetry of every provider call shows engineers about latency tokens cost and errors"
MSG = [{"role": "user", "content": PROMPT}]


# --------------------------------------------------------------------------------------------------
# one adapter per client library


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


_COST_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning", "request")


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}


class Client:
    """A real HTTP client library, used the way an application uses it."""

    name = ""
    mod_name = ""

    async def post(
        self, url: str, body: Any, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        """POST JSON, read the whole answer."""
        raise NotImplementedError

    async def lines(self, url: str, body: Any, headers: dict[str, str] | None = None) -> list[bytes]:
        """POST JSON, read a streamed answer line by line to its end."""
        raise NotImplementedError

    async def stream(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        """POST JSON, read the answer piece by piece with the library's streaming API."""
        raise NotImplementedError

    async def first_line_then_close(self, url: str, body: Any, headers: dict[str, str]) -> bytes:
        """Read one line of a streamed answer, then close the response."""
        raise NotImplementedError

    async def first_line_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        """Read one line of a streamed answer, then let go of the response without closing it."""
        raise NotImplementedError

    async def open_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        """Open a streamed answer, read nothing, and let go of the response without closing it."""
        raise NotImplementedError

    async def get(self, url: str) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


_OPTS: dict[str, Any] = {"timeout": 10, "verify": False}  # plain HTTP on loopback: skip building a TLS context


class HttpxSync(Client):
    def __init__(self, module: Any) -> None:
        self.mod = module
        self.mod_name = module.__name__
        self.name = f"{module.__name__}-sync"

    async def post(
        self, url: str, body: Any, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        with self.mod.Client(**_OPTS, follow_redirects=True) as c:
            r = c.post(url, json=body, headers=headers, params=params)
            return Reply(r.status_code, _lower(r.headers.items()), r.content)

    async def lines(self, url: str, body: Any, headers: dict[str, str] | None = None) -> list[bytes]:
        with self.mod.Client(**_OPTS) as c, c.stream("POST", url, json=body, headers=headers) as r:
            return [line.encode() for line in r.iter_lines()]

    async def stream(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        with self.mod.Client(**_OPTS) as c, c.stream("POST", url, json=body, headers=headers) as r:
            return Reply(r.status_code, _lower(r.headers.items()), b"".join(r.iter_bytes()))

    async def first_line_then_close(self, url: str, body: Any, headers: dict[str, str]) -> bytes:
        with self.mod.Client(**_OPTS) as c:
            r = c.send(c.build_request("POST", url, json=body, headers=headers), stream=True)
            line = next(r.iter_lines())
            r.close()
            return line.encode()

    async def first_line_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        c = self.mod.Client(**_OPTS)
        r = c.send(c.build_request("POST", url, json=body, headers=headers), stream=True)
        assert next(r.iter_lines())

    async def open_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        c = self.mod.Client(**_OPTS)
        r = c.send(c.build_request("POST", url, json=body, headers=headers), stream=True)
        assert r.status_code == 200

    async def get(self, url: str) -> int:
        with self.mod.Client(**_OPTS) as c:
            return c.get(url).status_code


class HttpxAsync(Client):
    def __init__(self, module: Any) -> None:
        self.mod = module
        self.mod_name = module.__name__
        self.name = f"{module.__name__}-async"

    async def post(
        self, url: str, body: Any, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        async with self.mod.AsyncClient(**_OPTS, follow_redirects=True) as c:
            r = await c.post(url, json=body, headers=headers, params=params)
            return Reply(r.status_code, _lower(r.headers.items()), r.content)

    async def lines(self, url: str, body: Any, headers: dict[str, str] | None = None) -> list[bytes]:
        async with self.mod.AsyncClient(**_OPTS) as c, c.stream("POST", url, json=body, headers=headers) as r:
            return [line.encode() async for line in r.aiter_lines()]

    async def stream(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        async with self.mod.AsyncClient(**_OPTS) as c, c.stream("POST", url, json=body, headers=headers) as r:
            return Reply(r.status_code, _lower(r.headers.items()), b"".join([b async for b in r.aiter_bytes()]))

    async def first_line_then_close(self, url: str, body: Any, headers: dict[str, str]) -> bytes:
        async with self.mod.AsyncClient(**_OPTS) as c:
            r = await c.send(c.build_request("POST", url, json=body, headers=headers), stream=True)
            lines = r.aiter_lines()
            line = await lines.__anext__()
            await r.aclose()
            await lines.aclose()
            return line.encode()

    async def first_line_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        c = self.mod.AsyncClient(**_OPTS)
        r = await c.send(c.build_request("POST", url, json=body, headers=headers), stream=True)
        assert await r.aiter_lines().__anext__()

    async def open_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        c = self.mod.AsyncClient(**_OPTS)
        r = await c.send(c.build_request("POST", url, json=body, headers=headers), stream=True)
        assert r.status_code == 200

    async def get(self, url: str) -> int:
        async with self.mod.AsyncClient(**_OPTS) as c:
            return (await c.get(url)).status_code


class Requests(Client):
    name = "requests"

    async def post(
        self, url: str, body: Any, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        with requests.Session() as s:
            r = s.post(url, json=body, headers=headers, params=params, timeout=10)
            return Reply(r.status_code, _lower(r.headers.items()), r.content)

    async def lines(self, url: str, body: Any, headers: dict[str, str] | None = None) -> list[bytes]:
        with requests.Session() as s, s.post(url, json=body, headers=headers, stream=True, timeout=10) as r:
            return list(r.iter_lines())

    async def stream(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        with requests.Session() as s, s.post(url, json=body, headers=headers, stream=True, timeout=10) as r:
            return Reply(r.status_code, _lower(r.headers.items()), b"".join(r.iter_content(chunk_size=None)))

    async def first_line_then_close(self, url: str, body: Any, headers: dict[str, str]) -> bytes:
        with requests.Session() as s:
            r = s.post(url, json=body, headers=headers, stream=True, timeout=10)
            line = next(r.iter_lines())
            r.close()
            return line

    async def first_line_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        s = requests.Session()
        r = s.post(url, json=body, headers=headers, stream=True, timeout=10)
        assert next(r.iter_lines())

    async def open_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        s = requests.Session()
        r = s.post(url, json=body, headers=headers, stream=True, timeout=10)
        assert r.status_code == 200

    async def get(self, url: str) -> int:
        with requests.Session() as s:
            return s.get(url, timeout=10).status_code


class Aiohttp(Client):
    name = "aiohttp"

    async def post(
        self, url: str, body: Any, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
    ) -> Reply:
        async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers, params=params) as r:
            return Reply(r.status, _lower(r.headers.items()), await r.read())

    async def lines(self, url: str, body: Any, headers: dict[str, str] | None = None) -> list[bytes]:
        async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
            return [line.rstrip(b"\r\n") async for line in r.content]

    async def stream(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Reply:
        async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
            return Reply(r.status, _lower(r.headers.items()), b"".join([b async for b in r.content.iter_any()]))

    async def first_line_then_close(self, url: str, body: Any, headers: dict[str, str]) -> bytes:
        async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
            async for line in r.content:
                return line
        raise AssertionError("no line")

    async def first_line_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        s = aiohttp.ClientSession()
        r = await s.post(url, json=body, headers=headers)
        assert await r.content.readline()
        del r
        gc.collect()
        await s.close()

    async def open_then_drop(self, url: str, body: Any, headers: dict[str, str]) -> None:
        s = aiohttp.ClientSession()
        r = await s.post(url, json=body, headers=headers)
        assert r.status == 200
        del r
        gc.collect()
        await s.close()

    async def get(self, url: str) -> int:
        async with aiohttp.ClientSession() as s, s.get(url) as r:
            await r.read()
            return r.status


CLIENTS = [
    HttpxSync(httpx),
    HttpxAsync(httpx),
    HttpxSync(httpx2),
    HttpxAsync(httpx2),
    Requests(),
    Aiohttp(),
]
each_client = pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.name)


# --------------------------------------------------------------------------------------------------
# helpers


def our_points(t: Telemetry) -> list[Any]:
    """Every metric point otel_llm recorded."""
    data = t.reader.get_metrics_data()
    if data is None:
        return []
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        if sm.scope.name == "otel_llm"
        for m in sm.metrics
        for p in m.data.data_points
    ]


@pytest.fixture(scope="module", autouse=True)
def _quick_gc() -> Any:
    """Move what the imports made out of the collector's sight, so each ``gc.collect()`` here is quick."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


async def collect_garbage() -> None:
    """Collect, and let the loop run the finalisers of dropped async generators, then collect again."""
    for _ in range(2):
        gc.collect()
        await asyncio.sleep(0.01)


_VOLATILE = re.compile(rb'"(id|item_id|responseId|created|created_at)":\s*("[^"]*"|\d+)')


def normalised(body: bytes) -> bytes:
    """A body without what the provider draws per call (ids, timestamps): equal for equal requests."""
    return _VOLATILE.sub(rb'"\1":_', body)


def the_one_model(provider: FakeProvider) -> tuple[str, dict[str, int]]:
    totals = provider.totals()
    assert len(totals) == 1, totals
    model, counts = next(iter(totals.items()))
    assert counts["calls"] == 1, counts
    return model, counts


# --------------------------------------------------------------------------------------------------
# 1. every wire format, every client


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: dict[str, Any]
    operation: str
    provider: str
    model: str
    finish: tuple[str, ...]
    details: tuple[str, ...] = ()  # usage details the wire format reports: cache_read, cache_write, reasoning
    nonzero: tuple[str, ...] = ()  # of those, the ones this answer has (reasoning asked for, a cacheable prompt)
    stream: bool = False
    chunk_events: int = 0  # stream: events counted as output chunks (time to first chunk + one gap per other)
    url: str = ""  # path and query as telemetry shows them; default: ``path``
    api_type: str | None = None
    output_tokens: bool = True
    headers: dict[str, str] = field(default_factory=lambda: {"x-fake-chunks": str(CHUNKS)})

    def __str__(self) -> str:
        return self.id


_GEMINI_BODY = {
    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
    "generationConfig": {"temperature": 0.2, "thinkingConfig": {"thinkingBudget": 256}},
}
CASES = [
    Case(
        "chat",
        "/v1/chat/completions",
        {"model": "gpt-4.1", "messages": MSG, "reasoning_effort": "low"},
        "chat",
        "openai",
        "gpt-4.1",
        ("stop",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read", "reasoning"),
        api_type="chat_completions",
    ),
    Case(
        "chat-sse",
        "/v1/chat/completions",
        {
            "model": "gpt-4.1",
            "messages": MSG,
            "reasoning_effort": "low",
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        "chat",
        "openai",
        "gpt-4.1",
        ("stop",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read", "reasoning"),
        stream=True,
        chunk_events=1 + CHUNKS + 1,  # role chunk, content, finish chunk (the usage-only chunk is no output)
        api_type="chat_completions",
    ),
    Case(
        "completions",
        "/v1/completions",
        {"model": "gpt-3.5-turbo-instruct", "prompt": PROMPT},
        "text_completion",
        "openai",
        "gpt-3.5-turbo-instruct",
        ("stop",),
        ("cache_read", "reasoning"),
    ),
    Case(
        "embeddings",
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": ["a b c", "d e"]},
        "embeddings",
        "openai",
        "text-embedding-3-small",
        (),
        output_tokens=False,
    ),
    Case(
        "responses",
        "/v1/responses",
        {"model": "gpt-4.1", "input": PROMPT, "reasoning": {"effort": "low"}},
        "chat",
        "openai",
        "gpt-4.1",
        ("stop",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read", "reasoning"),
        api_type="responses",
    ),
    Case(
        "responses-sse",
        "/v1/responses",
        {"model": "gpt-4.1", "input": PROMPT, "stream": True, "reasoning": {"effort": "low"}},
        "chat",
        "openai",
        "gpt-4.1",
        ("stop",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read", "reasoning"),
        stream=True,
        chunk_events=CHUNKS,
        api_type="responses",
    ),
    Case(
        "messages",
        "/v1/messages",
        {"model": "claude-sonnet-4.5", "max_tokens": 2048, "messages": MSG},
        "chat",
        "anthropic",
        "claude-sonnet-4.5",
        ("end_turn",),
        ("cache_read", "cache_write"),
        nonzero=("cache_read",),
    ),
    Case(
        "messages-sse",
        "/v1/messages",
        {"model": "claude-sonnet-4.5", "max_tokens": 2048, "messages": MSG, "stream": True},
        "chat",
        "anthropic",
        "claude-sonnet-4.5",
        ("end_turn",),
        ("cache_read", "cache_write"),
        nonzero=("cache_read",),
        stream=True,
        chunk_events=CHUNKS,
    ),
    Case(
        "gemini",
        "/v1beta/models/gemini-2.5-flash:generateContent?key=SECRET",
        _GEMINI_BODY,
        "generate_content",
        "gcp.gemini",
        "gemini-2.5-flash",
        ("STOP",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read", "reasoning"),
        url="/v1beta/models/gemini-2.5-flash:generateContent?key=REDACTED",
    ),
    Case(
        "gemini-sse",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=SECRET&alt=sse",
        _GEMINI_BODY,
        "generate_content",
        "gcp.gemini",
        "gemini-2.5-flash",
        ("STOP",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read", "reasoning"),
        stream=True,
        chunk_events=CHUNKS,
        url="/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=REDACTED&alt=sse",
    ),
    Case(
        "relay-claude",
        "/relay/v1/chat/completions",
        {"model": "claude-sonnet-4.5", "messages": MSG},
        "chat",
        "anthropic",
        "claude-sonnet-4.5",
        ("stop",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read",),
        api_type="chat_completions",
    ),
    Case(
        "relay-deepseek",
        "/relay/v1/chat/completions",
        {"model": "deepseek-v3.2", "messages": MSG},
        "chat",
        "deepseek",
        "deepseek-v3.2",
        ("stop",),
        ("cache_read", "reasoning"),
        nonzero=("cache_read",),
        api_type="chat_completions",
    ),
]

_DETAIL_ATTRS = {
    "cache_read": ("gen_ai.usage.cache_read.input_tokens", "cached_tokens"),
    "cache_write": ("gen_ai.usage.cache_write.input_tokens", None),  # the provider writes no cache: 0, left out
    "reasoning": ("gen_ai.usage.reasoning.output_tokens", "reasoning_tokens"),
}


async def _call(client: Client, provider: FakeProvider, case: Case) -> Reply:
    url = provider.url + case.path
    if case.stream:
        return await client.stream(url, case.body, case.headers)
    return await client.post(url, case.body, case.headers)


@each_client
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_each_wire_format_gives_one_span_with_usage_metrics_and_cost_and_an_unchanged_body(
    client: Client, case: Case, provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.reset()
    reply = await _call(client, provider, case)
    assert reply.status == 200, reply.body[:300]
    answered_as, sent = the_one_model(provider)

    span = telemetry.span()
    a = span.attributes
    assert span.name == f"{case.operation} {case.model}" and span.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == case.operation and a["gen_ai.provider.name"] == case.provider
    assert a["gen_ai.request.model"] == case.model and a["gen_ai.response.model"] == answered_as
    assert a["otel_llm.layer"] == "http" and a["http.response.status_code"] == 200
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == provider.port
    assert a["url.full"] == provider.url + (case.url or case.path)
    assert "SECRET" not in repr(dict(a)) and ("key=" not in a["url.full"] or "key=REDACTED" in a["url.full"])
    assert a.get("openai.api.type") == case.api_type
    assert "error.type" not in a and span.status.status_code is StatusCode.UNSET
    assert tuple(a.get("gen_ai.response.finish_reasons", ())) == case.finish
    if case.id == "gemini":
        assert a["gen_ai.request.temperature"] == 0.2
    if case.id == "embeddings":
        assert a["gen_ai.embeddings.dimension.count"] == 1536

    # usage: what the provider says it sent, in the conventions' shape
    assert a["gen_ai.usage.input_tokens"] == sent["input_tokens"] > 0
    if case.output_tokens:
        assert a["gen_ai.usage.output_tokens"] == sent["output_tokens"] > 0
    else:
        assert "gen_ai.usage.output_tokens" not in a
    for name, (attr, key) in _DETAIL_ATTRS.items():
        if name in case.details and (sent[key] if key else 0):
            assert a[attr] == sent[key], attr
        else:  # not in the answer, or zero: left out, as the official instrumentation does
            assert attr not in a, attr
    for name in case.nonzero:
        assert a[_DETAIL_ATTRS[name][0]] > 0, name
    if "cache_read" in case.nonzero:
        assert (
            telemetry.point("otel_llm.client.token.usage.detail", gen_ai__token__type="cache_read").value
            == sent["cached_tokens"]
        )

    # metrics
    duration = telemetry.point("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.attributes["gen_ai.provider.name"] == case.provider
    assert duration.attributes["gen_ai.response.model"] == answered_as and "error.type" not in duration.attributes
    assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="input").sum == sent["input_tokens"]
    if case.output_tokens:
        assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="output").sum == sent["output_tokens"]

    # cost
    assert a["gen_ai.usage.cost.amount"] > 0 and a["gen_ai.usage.cost.currency"] == "USD"
    cost = telemetry.point("gen_ai.client.operation.cost")
    assert cost.count == 1 and cost.sum == pytest.approx(a["gen_ai.usage.cost.amount"])
    assert telemetry.points("otel_llm.client.operation.unpriced") == []
    # its split by token type adds up to it (to the last bit on the span), list price only when a relay priced it
    parts = {t: a[f"otel_llm.cost.{t}"] for t in _COST_TYPES if f"otel_llm.cost.{t}" in a}
    assert "input" in parts and sum(a.get(f"otel_llm.cost.{t}", 0.0) for t in _COST_TYPES) == cost.sum
    by_type = {p.attributes["gen_ai.token.type"]: p.value for p in telemetry.points("otel_llm.client.token.cost")}
    assert by_type == parts and "otel_llm.cost.list_price" not in a
    assert telemetry.points("otel_llm.client.operation.cost.list_price") == []
    assert telemetry.points("otel_llm.client.operation.cost.relay_billed") == []
    # and it is no longer in flight
    assert telemetry.in_flight() == 0 and len(telemetry.points("otel_llm.client.active_operations")) == 1

    # streams: time to first chunk and one gap per further chunk
    if case.stream:
        assert a["gen_ai.request.stream"] is True and a["otel_llm.stream.outcome"] == "completed"
        assert a["gen_ai.response.time_to_first_chunk"] > 0
        assert telemetry.point("gen_ai.client.operation.time_to_first_chunk").count == 1
        assert telemetry.point("gen_ai.client.operation.time_per_output_chunk").count == case.chunk_events - 1
    else:
        # a body read through a tap (aiohttp always; httpx/requests when streamed) says how its reading ended
        assert a.get("otel_llm.stream.outcome", "completed") == "completed"
        assert "gen_ai.request.stream" not in a and "gen_ai.response.time_to_first_chunk" not in a
        assert telemetry.points("gen_ai.client.operation.time_to_first_chunk") == []

    # the application reads what an uninstrumented client reads
    telemetry.instrumentor.uninstrument()
    provider.reset()
    plain = await _call(client, provider, case)
    assert normalised(reply.body) == normalised(plain.body)
    assert len(reply.body) > 0 and telemetry.spans() == [span]


# --------------------------------------------------------------------------------------------------
# 1b. the same call, spelled as applications spell it


@each_client
async def test_an_api_key_given_as_a_query_parameter_never_reaches_telemetry(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    reply = await client.post(provider.url + path, _GEMINI_BODY, params={"key": "SECRET", "alt": "json"})
    assert reply.status == 200 and provider.requests[-1].query["key"] == "SECRET"
    a = telemetry.span().attributes
    assert a["url.full"] == provider.url + path + "?key=REDACTED&alt=json"
    assert a["gen_ai.request.model"] == "gemini-2.5-flash" and a["gen_ai.usage.input_tokens"] > 0
    dump = repr([dict(s.attributes) for s in telemetry.exporter.get_finished_spans()]) + repr(
        [dict(p.attributes) for p in our_points(telemetry)]
    )
    assert "SECRET" not in dump


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def redirector(provider: FakeProvider) -> Iterator[str]:
    """A server that answers every POST with a 307 to the same path on the provider."""

    class Handler(_Quiet):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(307)
            self.send_header("location", provider.url + self.path)
            self.send_header("content-length", "0")
            self.end_headers()

    yield from _serve(Handler)


@pytest.fixture(scope="module")
def gzipping(provider: FakeProvider) -> Iterator[str]:
    """A proxy in front of the provider that gzips every answer, streams included (as a CDN may)."""

    class Handler(_Quiet):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            forward = {k: v for k, v in self.headers.items() if k.lower().startswith("x-fake-")}
            conn = http.client.HTTPConnection("127.0.0.1", provider.port, timeout=10)  # not instrumented
            try:
                conn.request("POST", self.path, body, {"content-type": "application/json", **forward})
                upstream = conn.getresponse()
                data = gzip.compress(upstream.read())
                self.send_response(upstream.status)
                self.send_header("content-type", upstream.getheader("content-type") or "application/json")
            finally:
                conn.close()
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    yield from _serve(Handler)


@each_client
@pytest.mark.parametrize("case", [c for c in CASES if c.id in ("chat", "chat-sse", "messages-sse")], ids=str)
async def test_a_gzipped_answer_is_parsed_as_the_application_reads_it(
    client: Client, case: Case, gzipping: str, provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.reset()
    read = client.stream if case.stream else client.post
    reply = await read(gzipping + case.path, case.body, case.headers)
    assert reply.status == 200 and reply.headers["content-encoding"] == "gzip"
    assert reply.body.startswith(b"{" if not case.stream else b"data: " if case.id == "chat-sse" else b"event: ")
    _, sent = the_one_model(provider)
    a = telemetry.span().attributes
    assert a["gen_ai.usage.input_tokens"] == sent["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == sent["output_tokens"]
    assert tuple(a["gen_ai.response.finish_reasons"]) == case.finish and a["gen_ai.usage.cost.amount"] > 0
    if case.stream:
        assert a["otel_llm.stream.outcome"] == "completed" and "error.type" not in a


@each_client
async def test_a_redirected_call_is_one_call(
    client: Client, redirector: str, provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.reset()
    reply = await client.post(redirector + "/v1/chat/completions", {"model": "gpt-4.1", "messages": MSG})
    assert reply.status == 200
    _, sent = the_one_model(provider)
    a = telemetry.span().attributes
    assert a["http.response.status_code"] == 200 and a["gen_ai.usage.input_tokens"] == sent["input_tokens"]
    assert [p.count for p in telemetry.points("gen_ai.client.operation.duration")] == [1]
    assert [p.sum for p in telemetry.points("gen_ai.client.token.usage")] == [
        sent["input_tokens"],
        sent["output_tokens"],
    ]
    assert [p.count for p in telemetry.points("gen_ai.client.operation.cost")] == [1]


@pytest.mark.parametrize(
    ("base_url", "path"),
    [("", "/v1/chat/completions"), ("/v1/", "chat/completions")],
    ids=["absolute-path", "relative-path"],
)
@pytest.mark.parametrize("library", ["httpx", "httpx2", "aiohttp"])
async def test_a_client_with_a_base_url_is_recorded_at_the_url_it_called(
    library: str, base_url: str, path: str, provider: FakeProvider, telemetry: Telemetry
) -> None:
    body = {"model": "gpt-4.1", "messages": MSG}
    if library == "aiohttp":
        async with aiohttp.ClientSession(base_url=provider.url + base_url) as s, s.post(path, json=body) as r:
            assert r.status == 200 and await r.json()
    else:
        module = httpx if library == "httpx" else httpx2
        async with module.AsyncClient(base_url=provider.url + base_url, **_OPTS) as c:
            assert (await c.post(path, json=body)).status_code == 200
    assert provider.requests[-1].path == "/v1/chat/completions"
    a = telemetry.span().attributes
    assert a["url.full"] == provider.url + "/v1/chat/completions" and a["gen_ai.usage.output_tokens"] > 0


# --------------------------------------------------------------------------------------------------
# 2. not an LLM call


@each_client
async def test_a_non_llm_request_gives_no_span_and_no_metric_point(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    assert await client.get(provider.url + "/v1/models") == 200
    assert await client.get(provider.url + "/v1/chat/completions") == 200  # not a POST
    reply = await client.post(provider.url + "/other", {"model": "gpt-4.1", "messages": MSG})
    assert reply.status == 200 and reply.body == b'{"ok":true}'
    assert telemetry.exporter.get_finished_spans() == ()
    assert our_points(telemetry) == []


# --------------------------------------------------------------------------------------------------
# 3. stream lifecycle


_SLOW_STREAM = {"x-fake-chunks": "30", "x-fake-fault": "slow-chunks", "x-fake-delay": "0.05"}
_CHAT_STREAM = {"model": "gpt-4.1", "messages": MSG, "stream": True, "stream_options": {"include_usage": True}}


@each_client
async def test_a_stream_read_to_the_end_is_completed(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    lines = await client.lines(provider.url + "/v1/chat/completions", _CHAT_STREAM, {"x-fake-chunks": "3"})
    events = [line for line in lines if line.startswith(b"data: {")]
    assert lines[-2:] == [b"data: [DONE]", b""] and len(events) == 1 + 3 + 1 + 1
    a = telemetry.span().attributes
    assert a["otel_llm.stream.outcome"] == "completed" and "error.type" not in a
    assert a["gen_ai.usage.output_tokens"] > 0 and a["gen_ai.response.finish_reasons"] == ("stop",)
    assert telemetry.point("gen_ai.client.operation.time_per_output_chunk").count == 1 + 3 + 1 - 1
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


@each_client
async def test_a_stream_closed_after_one_line_is_closed_early_and_no_error(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    line = await client.first_line_then_close(provider.url + "/v1/chat/completions", _CHAT_STREAM, _SLOW_STREAM)
    assert line.startswith(b"data: {")
    span = telemetry.span()
    assert span.attributes["otel_llm.stream.outcome"] == "closed_early"
    assert "error.type" not in span.attributes and span.status.status_code is StatusCode.UNSET
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


@each_client
@pytest.mark.parametrize("read_a_line", [False, True], ids=["unread", "one-line-read"])
async def test_an_abandoned_stream_ends_as_abandoned_when_collected(
    client: Client, read_a_line: bool, provider: FakeProvider, telemetry: Telemetry
) -> None:
    drop = client.first_line_then_drop if read_a_line else client.open_then_drop
    await drop(provider.url + "/v1/chat/completions", _CHAT_STREAM, _SLOW_STREAM)
    await collect_garbage()
    span = telemetry.span()
    if read_a_line and client.mod_name == "httpx2":
        # httpx2 closes a response whose byte iterator is finalised (``iter_raw``'s ``finally:
        # self.close()``): dropping the line iterator is a close by the library, not a leak.
        assert span.attributes["otel_llm.stream.outcome"] == "closed_early"
        assert "error.type" not in span.attributes
        return
    assert span.attributes["otel_llm.stream.outcome"] == "abandoned"
    assert span.attributes["error.type"] == "stream_abandoned" and span.status.status_code is StatusCode.ERROR
    duration = telemetry.point("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.attributes["error.type"] == "stream_abandoned"


@each_client
async def test_a_connection_reset_mid_stream_fails_the_call_once(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    with pytest.raises(Exception) as info:
        await client.stream(provider.url + "/v1/chat/completions", _CHAT_STREAM, {"x-fake-fault": "reset"})
    assert not isinstance(info.value, AssertionError)
    span = telemetry.span()
    assert span.attributes["otel_llm.stream.outcome"] == "failed"
    assert span.attributes["error.type"] == "connection_error" and span.status.status_code is StatusCode.ERROR
    assert telemetry.point("gen_ai.client.operation.duration", error__type="connection_error").count == 1


@each_client
async def test_a_connection_reset_mid_json_body_fails_the_call_once(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    with pytest.raises(Exception) as info:
        await client.post(
            provider.url + "/v1/chat/completions", {"model": "gpt-4.1", "messages": MSG}, {"x-fake-fault": "reset"}
        )
    assert not isinstance(info.value, AssertionError)
    span = telemetry.span()
    assert span.attributes["error.type"] == "connection_error" and span.status.status_code is StatusCode.ERROR
    assert "otel_llm.stream.outcome" not in span.attributes or span.attributes["otel_llm.stream.outcome"] == "failed"
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


@pytest.mark.parametrize("stop_after", [None, 2], ids=["read-to-the-end", "left-after-two-events"])
def test_httpx2s_event_source_helper_is_one_call_that_ends_with_the_block(
    stop_after: int | None, provider: FakeProvider, telemetry: Telemetry
) -> None:
    url = provider.url + "/v1/chat/completions"
    headers = _SLOW_STREAM if stop_after else None
    with httpx2.Client(**_OPTS) as c, c.sse(url, method="POST", json=_CHAT_STREAM, headers=headers) as source:
        data = []
        for event in source:
            data.append(event.data)
            if len(data) == stop_after:
                break
    a = telemetry.span().attributes
    if stop_after:
        assert a["otel_llm.stream.outcome"] == "closed_early" and "error.type" not in a
    else:
        assert data[-1] == "[DONE]" and a["otel_llm.stream.outcome"] == "completed"
        assert a["gen_ai.usage.output_tokens"] > 0 and a["gen_ai.usage.cost.amount"] > 0


# --------------------------------------------------------------------------------------------------
# 4. rate limits and 429s


@each_client
@pytest.mark.parametrize(
    ("path", "body", "prefix"),
    [
        ("/v1/chat/completions", {"model": "gpt-4.1", "messages": MSG}, "x-ratelimit-{kind}-{res}"),
        (
            "/v1/messages",
            {"model": "claude-sonnet-4.5", "max_tokens": 64, "messages": MSG},
            "anthropic-ratelimit-{res}-{kind}",
        ),
    ],
    ids=["openai-headers", "anthropic-headers"],
)
async def test_rate_limit_headers_become_span_attributes_and_gauges(
    client: Client, path: str, body: Any, prefix: str, provider: FakeProvider, telemetry: Telemetry
) -> None:
    reply = await client.post(provider.url + path, body)
    assert reply.status == 200
    a = telemetry.span().attributes
    for res in ("requests", "tokens"):
        remaining = float(reply.headers[prefix.format(kind="remaining", res=res)])
        limit = float(reply.headers[prefix.format(kind="limit", res=res)])
        assert a[f"gen_ai.rate_limit.remaining_{res}"] == remaining
        # budgets and reset times go on the span only when the call failed (see the 429 test); the gauge has them
        assert f"gen_ai.rate_limit.limit_{res}" not in a and f"gen_ai.rate_limit.reset_{res}" not in a
        assert telemetry.point("gen_ai.client.rate_limit.limit", gen_ai__rate_limit__resource=res).value == limit
        assert 0 < remaining < limit
        assert (
            telemetry.point("gen_ai.client.rate_limit.remaining", gen_ai__rate_limit__resource=res).value == remaining
        )
        assert telemetry.point("gen_ai.client.rate_limit.limit", gen_ai__rate_limit__resource=res).value == limit
    gauge = telemetry.point("gen_ai.client.rate_limit.remaining", gen_ai__rate_limit__resource="requests")
    assert gauge.attributes["gen_ai.request.model"] == body["model"]
    assert "gen_ai.rate_limit.retry_after" not in a


@each_client
@pytest.mark.parametrize(("fault", "error_type"), [("429", "429"), ("429-quota", "insufficient_quota")])
async def test_a_429_is_an_error_with_its_rate_limit_state_and_quota_is_told_apart(
    client: Client, fault: str, error_type: str, provider: FakeProvider, telemetry: Telemetry
) -> None:
    reply = await client.post(
        provider.url + "/v1/chat/completions", {"model": "gpt-4.1", "messages": MSG}, {"x-fake-fault": fault}
    )
    assert reply.status == 429 and b'"error"' in reply.body
    span = telemetry.span()
    a = span.attributes
    assert a["error.type"] == error_type and span.status.status_code is StatusCode.ERROR
    assert a["http.response.status_code"] == 429 and a["gen_ai.rate_limit.retry_after"] == 1
    assert a["gen_ai.rate_limit.remaining_requests"] == 0
    # a refused call's span carries the budget and when it resets
    assert a["gen_ai.rate_limit.limit_requests"] > 0 and a["gen_ai.rate_limit.reset_requests"]
    assert "gen_ai.usage.cost.amount" not in a and "gen_ai.usage.input_tokens" not in a
    assert telemetry.point("gen_ai.client.operation.duration", error__type=error_type).count == 1
    # headroom gauges carry no error.type: the next answer overwrites a 429's "0 left" in the same series
    gauge = telemetry.point("gen_ai.client.rate_limit.remaining", gen_ai__rate_limit__resource="requests")
    assert gauge.value == 0 and "error.type" not in gauge.attributes
    assert telemetry.points("gen_ai.client.operation.cost") == []
    assert telemetry.points("gen_ai.client.token.usage") == []


async def test_an_aiohttp_session_that_raises_for_status_records_the_status_not_the_exception(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    async with aiohttp.ClientSession(raise_for_status=True) as s:
        with pytest.raises(aiohttp.ClientResponseError) as info:
            await s.post(
                provider.url + "/v1/chat/completions",
                json={"model": "gpt-4.1", "messages": MSG},
                headers={"x-fake-fault": "429"},
            )
    assert info.value.status == 429
    span = telemetry.span()
    a = span.attributes
    assert a["error.type"] == "429" and span.status.status_code is StatusCode.ERROR
    assert a["http.response.status_code"] == 429 and a["gen_ai.rate_limit.remaining_requests"] == 0
    assert a["gen_ai.rate_limit.retry_after"] == 1
    assert telemetry.point("gen_ai.client.operation.duration", error__type="429").count == 1


# --------------------------------------------------------------------------------------------------
# 5. no double counting under the SDKs


def _openai(provider: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test-SECRET", max_retries=0)


def _assert_one_sdk_call(telemetry: Telemetry) -> None:
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1, [s.name for s in spans]
    a = spans[0].attributes
    assert a["otel_llm.layer"] == "sdk" and a["http.response.status_code"] == 200  # filled in by the httpx2 layer
    assert a["gen_ai.rate_limit.remaining_requests"] > 0 and a["gen_ai.usage.cost.amount"] > 0
    assert telemetry.point("gen_ai.client.operation.duration").count == 1
    assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="input").count == 1
    assert telemetry.point("gen_ai.client.operation.cost").count == 1


def test_the_openai_sdk_over_httpx2_is_one_span_and_one_duration_point(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    _openai(provider).chat.completions.create(model="gpt-4.1", messages=MSG)  # type: ignore[arg-type]
    _assert_one_sdk_call(telemetry)


async def test_the_async_openai_sdk_over_httpx2_is_one_span_and_one_duration_point(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    c = openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test-SECRET", max_retries=0)
    await c.chat.completions.create(model="gpt-4.1", messages=MSG)  # type: ignore[arg-type]
    _assert_one_sdk_call(telemetry)


def test_a_streamed_openai_sdk_call_is_one_span_and_one_duration_point(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    chunks = list(_openai(provider).chat.completions.create(model="gpt-4.1", messages=MSG, stream=True))  # type: ignore[arg-type]
    assert chunks
    _assert_one_sdk_call(telemetry)
    assert telemetry.spans()[0].attributes["otel_llm.stream.outcome"] == "completed"
    assert telemetry.point("gen_ai.client.operation.time_to_first_chunk").count == 1


def _anthropic(provider: FakeProvider, telemetry: Telemetry, max_retries: int = 0) -> anthropic.Anthropic:
    options = {"tracer_provider": telemetry.tracer_provider}
    return anthropic.Anthropic(
        base_url=provider.url, api_key="sk-ant-SECRET", max_retries=max_retries, open_telemetry=options
    )


def _anthropic_span(telemetry: Telemetry) -> Any:
    """The one span of the call: anthropic's own, with nothing from us beside it."""
    spans = telemetry.exporter.get_finished_spans()
    assert [s.instrumentation_scope.name for s in spans] == ["com.anthropic.sdk.python"], [s.name for s in spans]
    return spans[0]


def _assert_our_metrics_on_anthropic_call(telemetry: Telemetry, span: Any, sent: dict[str, int]) -> None:
    a = span.attributes
    assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.operation.name"] == "chat"
    # ours, added to anthropic's span
    assert a["gen_ai.usage.cost.amount"] > 0 and a["otel_llm.cost.model"] == "claude-sonnet-4-5"
    assert a["gen_ai.rate_limit.remaining_requests"] > 0 and a["http.response.status_code"] == 200
    assert "otel_llm.layer" not in a  # we did not start (or re-label) this span
    duration = telemetry.point("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.attributes["gen_ai.provider.name"] == "anthropic"
    assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="input").sum == sent["input_tokens"]
    assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="output").sum == sent["output_tokens"]
    cost = telemetry.point("gen_ai.client.operation.cost")
    assert cost.count == 1 and cost.sum == pytest.approx(a["gen_ai.usage.cost.amount"])
    assert sum(a.get(f"otel_llm.cost.{t}", 0.0) for t in _COST_TYPES) == a["gen_ai.usage.cost.amount"]
    assert telemetry.in_flight() == 0  # its own span, our in-flight count: balanced all the same


def test_an_anthropic_sdk_call_keeps_its_own_span_and_gets_our_metrics_and_cost(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.reset()
    message = _anthropic(provider, telemetry).messages.create(
        model="claude-sonnet-4.5",
        max_tokens=2048,
        messages=MSG,  # type: ignore[arg-type]
    )
    _, sent = the_one_model(provider)
    span = _anthropic_span(telemetry)
    _assert_our_metrics_on_anthropic_call(telemetry, span, sent)
    assert span.attributes["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert "otel_llm.stream.outcome" not in span.attributes


def test_a_streamed_anthropic_sdk_call_keeps_its_own_span_and_gets_our_metrics_and_cost(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.reset()
    stream = _anthropic(provider, telemetry).messages.create(
        model="claude-sonnet-4.5",
        max_tokens=2048,
        messages=MSG,  # type: ignore[arg-type]
        stream=True,
        extra_headers={"x-fake-chunks": str(CHUNKS)},
    )
    events = list(stream)
    assert events[-1].type == "message_stop"
    _, sent = the_one_model(provider)
    span = _anthropic_span(telemetry)
    _assert_our_metrics_on_anthropic_call(telemetry, span, sent)
    assert span.attributes["otel_llm.stream.outcome"] == "completed"
    assert telemetry.point("gen_ai.client.operation.time_per_output_chunk").count == CHUNKS - 1


async def test_an_async_streamed_anthropic_helper_keeps_its_own_span_and_gets_our_metrics(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.reset()
    c = anthropic.AsyncAnthropic(
        base_url=provider.url,
        api_key="sk-ant-SECRET",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    async with c.messages.stream(model="claude-sonnet-4.5", max_tokens=2048, messages=MSG) as stream:  # type: ignore[arg-type]
        message = await stream.get_final_message()
    _, sent = the_one_model(provider)
    span = _anthropic_span(telemetry)
    _assert_our_metrics_on_anthropic_call(telemetry, span, sent)
    assert message.usage.output_tokens == sent["output_tokens"]


def test_an_anthropic_stream_closed_early_still_gets_our_attributes(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    stream = _anthropic(provider, telemetry).messages.create(
        model="claude-sonnet-4.5",
        max_tokens=2048,
        messages=MSG,  # type: ignore[arg-type]
        stream=True,
        extra_headers=_SLOW_STREAM,
    )
    for _ in stream:
        break
    stream.close()
    assert telemetry.point("gen_ai.client.operation.duration").count == 1
    span = _anthropic_span(telemetry)
    assert span.attributes["otel_llm.stream.outcome"] == "closed_early"


def test_an_anthropic_sdk_retry_is_one_call_in_the_metrics(provider: FakeProvider, telemetry: Telemetry) -> None:
    c = _anthropic(provider, telemetry, max_retries=1)
    with pytest.raises(anthropic.InternalServerError):
        c.messages.create(
            model="claude-sonnet-4.5",
            max_tokens=64,
            messages=MSG,  # type: ignore[arg-type]
            extra_headers={"x-fake-fault": "500"},
        )
    assert _anthropic_span(telemetry).attributes["http.request.resend_count"] == 1
    assert telemetry.point("gen_ai.client.operation.duration", error__type="500").count == 1


def test_an_anthropic_sdk_without_its_own_spans_gets_one_span_from_us(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    c = anthropic.Anthropic(base_url=provider.url, api_key="sk-ant-SECRET", max_retries=0, open_telemetry=False)
    c.messages.create(model="claude-sonnet-4.5", max_tokens=64, messages=MSG)  # type: ignore[arg-type]
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1 and spans[0].instrumentation_scope.name == "otel_llm"
    a = spans[0].attributes
    assert a["otel_llm.layer"] == "http" and a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.usage.cost.amount"] > 0
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


@each_client
async def test_a_raw_call_inside_someone_elses_genai_span_adds_to_it_instead_of_making_a_second(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("my-framework")
    with tracer.start_as_current_span("my chat", attributes={"gen_ai.operation.name": "chat"}):
        reply = await client.post(provider.url + "/v1/chat/completions", {"model": "gpt-4.1", "messages": MSG})
    assert reply.status == 200
    spans = telemetry.exporter.get_finished_spans()
    assert [s.name for s in spans] == ["my chat"]
    a = spans[0].attributes
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.cost.amount"] > 0
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


@each_client
async def test_a_raw_call_inside_a_plain_span_gets_its_own_child_span(
    client: Client, provider: FakeProvider, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("my-app")
    with tracer.start_as_current_span("handle request") as parent:
        await client.post(provider.url + "/v1/chat/completions", {"model": "gpt-4.1", "messages": MSG})
    ours = telemetry.span()
    assert ours.parent is not None and ours.parent.span_id == parent.get_span_context().span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # our context attach/detach left nothing behind


# --------------------------------------------------------------------------------------------------
# 6. options


@each_client
async def test_http_false_leaves_raw_calls_alone(
    client: Client, provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(http=False)
    reply = await client.post(provider.url + "/v1/chat/completions", {"model": "gpt-4.1", "messages": MSG})
    assert reply.status == 200
    streamed = await client.stream(provider.url + "/v1/chat/completions", _CHAT_STREAM)
    assert streamed.body.endswith(b"data: [DONE]\n\n")
    assert t.exporter.get_finished_spans() == ()
    assert our_points(t) == []


def test_http_false_still_records_openai_sdk_calls(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(http=False)
    result = _openai(provider).chat.completions.create(model="gpt-4.1", messages=MSG)  # type: ignore[arg-type]
    a = t.span().attributes
    assert a["otel_llm.layer"] == "sdk" and a["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert a["http.response.status_code"] == 200  # the httpx2 layer still fills the SDK's call in
    assert t.point("gen_ai.client.operation.duration").count == 1


@each_client
async def test_extra_paths_make_a_custom_endpoint_count(
    client: Client, provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(extra_paths={"/v1/generate": "openai.chat"})
    reply = await client.post(provider.url + "/v1/generate", {"model": "gpt-4.1", "messages": MSG})
    assert reply.status == 200
    span = t.span()
    a = span.attributes
    assert span.name == "chat gpt-4.1" and a["gen_ai.provider.name"] == "openai"
    assert a["url.full"] == provider.url + "/v1/generate" and a["otel_llm.layer"] == "http"
    assert t.point("gen_ai.client.operation.duration").count == 1


# --------------------------------------------------------------------------------------------------
# URLs remembered per process: bounded, and the same answer past the bound


def test_requests_urls_remembered_are_still_told_apart_and_scrubbed(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    from otel_llm._patches import _common

    body = {"model": "gpt-4.1", "messages": MSG, "max_tokens": 5}
    urls = []
    for i in range(5):  # each URL twice: once to learn it, once from memory
        urls += [f"{provider.url}/v1/chat/completions?n={i}&key=sk-secret-{i}", f"{provider.url}/healthz/{i}"]
    with requests.Session() as s:
        for url in urls + urls:
            assert s.post(url, json=body, timeout=10).status_code == 200
    spans = telemetry.spans()
    assert len(spans) == 10  # the chat URLs, each posted twice; never the others
    full = sorted(str(sp.attributes["url.full"]) for sp in spans)
    assert full == sorted(f"{provider.url}/v1/chat/completions?n={i}&key=REDACTED" for i in range(5) for _ in range(2))
    assert all(sp.attributes["gen_ai.request.model"] == "gpt-4.1" for sp in spans)
    info = _common.scrub_url.cache_info()
    assert info.hits >= 5 and info.currsize <= info.maxsize == _common.URL_CACHE_SIZE


# --------------------------------------------------------------------------------------------------
# relay prices: the cost split and the list price beside what was billed


def _relay_call(provider: FakeProvider, headers: dict[str, str] | None = None) -> None:
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-relay", max_retries=0)
    client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hello relay"}], extra_headers=headers or {}
    )


def test_a_relay_reported_cost_is_split_by_token_type_and_keeps_the_list_price_beside_it(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    _relay_call(provider, {"x-fake-relay-cost": "0.0000123"})
    a = telemetry.span().attributes
    assert a["gen_ai.usage.cost.amount"] == 0.0000123 and a["gen_ai.usage.cost.source"] == "provider"
    assert sum(a.get(f"otel_llm.cost.{t}", 0.0) for t in _COST_TYPES) == 0.0000123
    listed = a["otel_llm.cost.list_price"]
    # gpt-4.1 at list price: $2 / $8 per million input / output tokens
    assert listed == pytest.approx((a["gen_ai.usage.input_tokens"] * 2 + a["gen_ai.usage.output_tokens"] * 8) / 1e6)
    assert a["otel_llm.cost.input"] / a["otel_llm.cost.output"] == pytest.approx(
        a["gen_ai.usage.input_tokens"] * 2 / (a["gen_ai.usage.output_tokens"] * 8)
    )
    assert telemetry.point("otel_llm.client.operation.cost.list_price").value == listed
    assert telemetry.point("otel_llm.client.operation.cost.relay_billed").value == 0.0000123
    assert sum(p.value for p in telemetry.points("otel_llm.client.token.cost")) == pytest.approx(0.0000123)


def test_a_price_multiplier_scales_every_part_and_records_the_list_price(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(prices={"multiplier": 0.25})
    _relay_call(provider)
    a = t.span().attributes
    listed = a["otel_llm.cost.list_price"]
    assert a["gen_ai.usage.cost.amount"] == pytest.approx(0.25 * listed, rel=1e-12)
    assert sum(a.get(f"otel_llm.cost.{k}", 0.0) for k in _COST_TYPES) == a["gen_ai.usage.cost.amount"]
    assert t.point("otel_llm.client.operation.cost.list_price").value == listed
    assert t.point("otel_llm.client.operation.cost.relay_billed").value == a["gen_ai.usage.cost.amount"]
    assert t.point("gen_ai.client.operation.cost").sum == a["gen_ai.usage.cost.amount"]


def test_instrumenting_again_on_the_same_meter_provider_goes_on_with_the_same_cost_and_in_flight_totals(
    provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otel_llm import LLMInstrumentor

    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])

    def points(name: str) -> list[Any]:
        data = reader.get_metrics_data()
        return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == name
                for p in m.data.data_points]  # fmt: skip

    inst = LLMInstrumentor()
    for _ in range(2):
        inst.instrument(meter_provider=mp, prices={"multiplier": 0.5})
        _relay_call(provider)
        inst.uninstrument()
    cost = sum(p.sum for p in points("gen_ai.client.operation.cost"))
    assert sum(p.value for p in points("otel_llm.client.token.cost")) == pytest.approx(cost, rel=1e-12)
    assert sum(p.value for p in points("otel_llm.client.operation.cost.relay_billed")) == pytest.approx(cost)
    assert sum(p.value for p in points("otel_llm.client.operation.cost.list_price")) == pytest.approx(2 * cost)
    assert [p.value for p in points("otel_llm.client.active_operations")] == [0]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_every_call_of_a_model_is_charged_as_the_price_book_prices_it_from_its_first_call_on(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    """After a model's first call its fixed rates are charged inline (the leaf's fast path); calls with cache
    tokens take the price book's own path. Every span's cost is what ``PriceBook.price`` says for its tokens,
    and the ledger, the cost histogram and the cost by token type add up to the spans'."""
    from otel_llm._parsers.usage import Usage
    from otel_llm.pricing import PriceBook
    from otel_llm.spend import LEDGER

    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
    long_prompt = "Explain every metric of a GenAI dashboard in detail, one by one, with examples. " * 4
    for prompt in (PROMPT, PROMPT, long_prompt, PROMPT):
        client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": prompt}])
    for text in ("one", "two words", long_prompt):  # input tokens only
        client.embeddings.create(model="text-embedding-3-small", input=text)
    spans = telemetry.spans()
    assert len(spans) == 7
    book = PriceBook.load(env={})
    total = 0.0
    for sp in spans:
        a = sp.attributes
        asked = a["gen_ai.request.model"]
        usage = Usage(
            a["gen_ai.usage.input_tokens"],
            a.get("gen_ai.usage.output_tokens"),
            a.get("gen_ai.usage.cache_read.input_tokens"),
            None,
            a.get("gen_ai.usage.reasoning.output_tokens"),
        )
        want = book.price(provider="openai", model=a["gen_ai.response.model"], server_address="127.0.0.1", usage=usage)
        if want is None:  # a dated response model the tables lack: priced as the model asked for
            want = book.price(provider="openai", model=asked, server_address="127.0.0.1", usage=usage)
        assert want is not None and want.parts is not None
        assert a["gen_ai.usage.cost.amount"] == want.amount
        assert a["otel_llm.cost.origin"] == want.origin and a["gen_ai.usage.cost.source"] == "local"
        parts = {f"otel_llm.cost.{t}": v for t, v in zip(_COST_TYPES, want.parts, strict=True) if v}
        assert {k: v for k, v in a.items() if k.startswith("otel_llm.cost.") and k[14:] in _COST_TYPES} == parts
        total += want.amount
    assert any("gen_ai.usage.cache_read.input_tokens" in sp.attributes for sp in spans)  # the slow path ran too
    assert sum(p.sum for p in telemetry.points("gen_ai.client.operation.cost")) == pytest.approx(total, rel=1e-12)
    assert sum(p.value for p in telemetry.points("otel_llm.client.token.cost")) == pytest.approx(total, rel=1e-12)
    ledger = LEDGER.snapshot()
    assert ledger.calls == 7 and ledger.total_usd == pytest.approx(total, rel=1e-12)


def test_a_ledger_reset_keeps_the_recorders_slots_adding(provider: FakeProvider, telemetry: Telemetry) -> None:
    """The recorder keeps each series' ledger slot; a reset zeroes the slots in place, so later calls still count
    and a model with no call since the reset is left out."""
    from otel_llm.spend import LEDGER

    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4.1", messages=MSG)
    client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert LEDGER.snapshot().calls == 2
    LEDGER.reset()
    assert LEDGER.snapshot().calls == 0 and LEDGER.snapshot().models == ()
    client.chat.completions.create(model="gpt-4.1", messages=MSG)
    snap = LEDGER.snapshot()
    assert snap.calls == 1 and [m.model for m in snap.models] == ["gpt-4.1"] and snap.total_usd > 0


@pytest.mark.parametrize("module_name", ["httpx", "httpx2"])
def test_the_url_parts_read_at_once_are_the_ones_httpxs_properties_give(module_name: str) -> None:
    mod = pytest.importorskip(module_name)
    from otel_llm._patches.httpx import _url_parts

    for text in (
        "http://127.0.0.1:8080/v1/chat/completions",
        "https://api.openai.com/v1/chat/completions?api-version=2024-10-21&key=SECRET",
        "https://user:p%40ss@relay.example.com:443/v1/embeddings",
        "http://[::1]:9000/v1/responses",
        "http://[fe80::1%25en0]:8080/v1/chat/completions",  # an IPv6 zone id
        "https://sk-live-SECRET@relay.example.com/v1/chat/completions",  # a key as the userinfo
        "https://xn--fiqs8s.icom.museum/v1/chat/completions",
        "https://\u4e2d\u56fd.icom.museum/v1/chat/completions",
        "HTTPS://API.EXAMPLE.COM/V1/Chat/Completions?q=%E2%82%AC#frag",
        "http://localhost",
        "http://localhost/?",
        "http://h/%ZZ/\u00e9t\u00e9?x=\ud800",
    ):
        try:
            url = mod.URL(text)
        except Exception:
            continue  # a URL httpx itself refuses never reaches a send
        assert _url_parts(url) == (url.scheme, url.host, url.port, bool(url.userinfo)), text
