"""Load, memory and cardinality: many concurrent calls lose nothing, leave nothing behind, stay bounded.

* 1,000 concurrent async streamed calls and 16 threads of sync calls: exactly one span per call,
  each under the caller's own parent span; token and cost totals from the metrics equal what the
  provider says it sent, and the in-process spend ledger agrees with the cost metric.
* Streams held open at 1, 7 and 48 at once: the calls-in-flight counter reads exactly that, per model,
  and zero again once they are consumed, closed early, cancelled or abandoned.
* Thousands of real calls over keep-alive, and 100,000 calls straight through the recorder and the
  stream tap, leave no per-call state behind (tracemalloc, after a warm-up).
* 500 random model names with ``max_models=20`` give at most 20 model label values plus ``_OTHER``.
"""

from __future__ import annotations

import asyncio
import gc
import random
import string
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

import otel_llm
from otel_llm import LLMInstrumentor
from otel_llm.config import Config
from otel_llm.fakeprovider import FakeProvider
from otel_llm.recorder import Recorder
from otel_llm.spend import SpendLedger

from .conftest import Telemetry

KEY = "sk-load"


@pytest.fixture
def own_provider() -> Iterator[FakeProvider]:
    """A provider of our own, so that its totals are this test's calls only."""
    with FakeProvider() as p:
        yield p


def _sum(t: Telemetry, name: str, **attrs: str) -> float:
    want = {k.replace("__", "."): v for k, v in attrs.items()}
    return sum(p.sum for p in t.points(name) if all(p.attributes.get(k) == v for k, v in want.items()))


def _sum_counter(t: Telemetry, name: str, **attrs: str) -> float:
    want = {k.replace("__", "."): v for k, v in attrs.items()}
    return sum(p.value for p in t.points(name) if all(p.attributes.get(k) == v for k, v in want.items()))


def _check_totals(t: Telemetry, provider: FakeProvider, calls: int) -> None:
    """Tokens from our metrics == tokens the provider sent; cost metric == spend ledger."""
    totals = provider.totals()
    assert sum(m["calls"] for m in totals.values()) == calls
    assert _sum(t, "gen_ai.client.token.usage", gen_ai__token__type="input") == sum(
        m["input_tokens"] for m in totals.values()
    )
    assert _sum(t, "gen_ai.client.token.usage", gen_ai__token__type="output") == sum(
        m["output_tokens"] for m in totals.values()
    )
    assert _sum_counter(t, "otel_llm.client.token.usage.detail", gen_ai__token__type="cache_read") == sum(
        m["cached_tokens"] for m in totals.values()
    )
    spend = otel_llm.spend()
    assert sum(m.calls for m in spend.models) == calls and sum(m.errors for m in spend.models) == 0
    assert sum(m.input_tokens for m in spend.models) == sum(m["input_tokens"] for m in totals.values())
    cost = t.points("gen_ai.client.operation.cost")
    assert sum(p.count for p in cost) == calls
    assert spend.total_usd > 0
    # the same numbers added in the same order: equal to the last bit in one thread; threads may
    # interleave the two additions differently, so there only to float rounding
    assert sum(p.sum for p in cost) == pytest.approx(spend.total_usd, rel=1e-12, abs=0)


def test_a_thousand_concurrent_async_streams_are_a_thousand_spans_under_their_own_parents(
    own_provider: FakeProvider, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    n = 1000
    parents: dict[str, int] = {}  # response id -> parent span id

    async def main() -> None:
        client = openai.AsyncOpenAI(
            base_url=own_provider.url + "/v1",
            api_key=KEY,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(verify=False),
        )
        gate = asyncio.Semaphore(64)  # the provider is a thread-per-connection server

        async def one(i: int) -> None:
            async with gate:
                with tracer.start_as_current_span(f"task {i}") as parent:
                    stream = await client.chat.completions.create(
                        model="gpt-4.1",
                        messages=[{"role": "user", "content": f"task number {i} says hello to everyone here"}],
                        stream=True,
                        extra_headers={"x-fake-chunks": "4"},
                    )
                    ids = {chunk.id async for chunk in stream}
                    assert len(ids) == 1
                    parents[ids.pop()] = parent.get_span_context().span_id

        try:
            await asyncio.gather(*(one(i) for i in range(n)))
        finally:
            await client.close()

    began = time.monotonic()
    asyncio.run(main())
    elapsed = time.monotonic() - began
    spans = telemetry.spans()
    assert len(spans) == n and len(parents) == n
    for span in spans:
        a = span.attributes
        assert span.parent is not None and span.parent.span_id == parents[a["gen_ai.response.id"]]
        assert a["otel_llm.stream.outcome"] == "completed" and "error.type" not in a
    assert telemetry.point("gen_ai.client.operation.duration").count == n
    _check_totals(telemetry, own_provider, n)
    assert telemetry.in_flight() == 0
    assert elapsed < 60, elapsed


def test_sixteen_threads_of_sync_calls_lose_nothing(own_provider: FakeProvider, telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("test")
    threads, per_thread = 16, 24
    parents: dict[str, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(k: int) -> None:
        try:
            client = openai.OpenAI(
                base_url=own_provider.url + "/v1",
                api_key=KEY,
                max_retries=0,
                http_client=openai.DefaultHttpxClient(verify=False),
            )
            raw = httpx.Client(verify=False)
            start.wait()
            with tracer.start_as_current_span(f"thread {k}") as parent:
                mine = parent.get_span_context().span_id
                for i in range(per_thread):
                    messages = [{"role": "user", "content": f"thread {k} call {i} asks a question"}]
                    if i % 3 == 0:
                        rid = client.chat.completions.create(model="gpt-4.1-mini", messages=messages).id
                    elif i % 3 == 1:
                        chunks = list(
                            client.chat.completions.create(model="gpt-4.1-mini", messages=messages, stream=True)
                        )
                        rid = chunks[0].id
                    else:
                        body = {"model": "gpt-4.1-mini", "messages": messages}
                        rid = raw.post(own_provider.url + "/v1/chat/completions", json=body).json()["id"]
                    with lock:
                        parents[rid] = mine
            client.close()
            raw.close()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(60)
    assert errors == []
    n = threads * per_thread
    spans = telemetry.spans()
    assert len(spans) == n and len(parents) == n
    for span in spans:
        assert span.parent is not None and span.parent.span_id == parents[span.attributes["gen_ai.response.id"]]
    assert telemetry.point("gen_ai.client.operation.duration").count == n
    _check_totals(telemetry, own_provider, n)
    assert telemetry.in_flight() == 0


def test_calls_in_flight_are_the_concurrency_driven_and_back_to_zero_after_every_way_out(
    own_provider: FakeProvider, telemetry: Telemetry
) -> None:
    """Streams held open after their first chunk: the up-down counter reads exactly how many, per model;
    once they are consumed, closed early, cancelled or abandoned it reads zero again."""

    def in_flight_by_model() -> dict[str, int]:
        out: dict[str, int] = {}
        for p in telemetry.points("otel_llm.client.active_operations"):
            model = p.attributes["gen_ai.request.model"]
            out[model] = out.get(model, 0) + int(p.value)
        return {m: v for m, v in out.items() if v}

    async def drive(level: int) -> tuple[dict[str, int], int]:
        client = openai.AsyncOpenAI(
            base_url=own_provider.url + "/v1",
            api_key=KEY,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(verify=False),
        )
        all_open = asyncio.Event()
        go_on = asyncio.Event()
        opened = 0
        kept: list[Any] = []

        async def one(i: int) -> None:
            nonlocal opened
            model = ("gpt-4.1", "gpt-4.1-mini", "o4-mini")[i % 3]
            stream = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": f"stream {i} of {level}"}],
                stream=True,
                extra_headers={"x-fake-chunks": "6"},
            )
            await stream.__anext__()
            opened += 1
            if opened == level:
                all_open.set()
            await go_on.wait()
            way = i % 4
            if way == 0:
                async for _ in stream:
                    pass
            elif way == 1:
                await stream.close()
            elif way == 2:
                kept.append(stream)  # abandoned below, never closed
            else:
                raise asyncio.CancelledError  # the task is cancelled mid-stream

        tasks = [asyncio.create_task(one(i)) for i in range(level)]
        await asyncio.wait_for(all_open.wait(), 30)
        during = in_flight_by_model()
        go_on.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        kept.clear()
        await asyncio.sleep(0)
        await client.close()
        return during, level

    for level in (1, 7, 48):
        during, driven = asyncio.run(drive(level))
        telemetry.wait_gc()
        expected: dict[str, int] = {}
        for i in range(driven):
            model = ("gpt-4.1", "gpt-4.1-mini", "o4-mini")[i % 3]
            expected[model] = expected.get(model, 0) + 1
        assert during == expected, (level, during)
        assert telemetry.in_flight() == 0, level
    assert len(telemetry.spans()) == 1 + 7 + 48


# --------------------------------------------------------------------------------------------------
# memory


class _Count(SpanProcessor):
    """Counts ended spans and keeps none of them."""

    def __init__(self) -> None:
        self.ended = 0

    def on_end(self, span: Any) -> None:
        self.ended += 1


_SERVER = """
import sys
from otel_llm.fakeprovider import FakeProvider

with FakeProvider() as p:
    print(p.url, flush=True)
    sys.stdin.read()
"""


def _leftovers(loop: Callable[[int], None], warm: int, counted: int, traced: int) -> tuple[int, int]:
    """What ``counted`` more iterations (after ``warm`` of them) leave allocated: Python memory blocks
    (``sys.getallocatedblocks``: exact and cheap, for the big counts), and bytes per tracemalloc for a
    ``traced`` run on top (tracemalloc slows every allocation down a few times)."""
    loop(warm)
    gc.collect()
    before = sys.getallocatedblocks()
    loop(counted)
    gc.collect()
    blocks = sys.getallocatedblocks() - before
    tracemalloc.start()
    try:
        loop(warm // 4)
        gc.collect()
        start = tracemalloc.get_traced_memory()[0]
        loop(traced)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    return blocks, grown


def test_thousands_of_real_calls_over_keep_alive_leave_nothing_behind() -> None:
    # the provider runs in another process: only the client side is measured
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    counter = _Count()
    tp = TracerProvider()
    tp.add_span_processor(counter)
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    inst = LLMInstrumentor()
    inst.instrument(tracer_provider=tp, meter_provider=mp)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip() + "/v1/chat/completions"
        body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "a question"}]}
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        with httpx.Client(verify=False) as client:

            def loop(n: int) -> None:
                for i in range(n):
                    if i % 2:
                        client.post(url, json=body).read()
                    else:
                        with client.stream("POST", url, json=streamed, headers={"x-fake-chunks": "4"}) as r:
                            for _ in r.iter_bytes():
                                pass

            calls, traced = 6000, 1500
            blocks, grown = _leftovers(loop, 400, calls, traced)
    finally:
        inst.uninstrument()
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    assert counter.ended == 400 + calls + 100 + traced
    print(f"real calls: {calls} -> {blocks} blocks left; {traced} traced -> {grown} bytes left")
    assert blocks < 500, blocks  # one object kept per call would be 6,000
    assert grown < 64 * 1024, grown  # httpx fills its own caches a little; one object a call would show


_SSE = b"".join(
    [
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","model":"gpt-4.1-2025-04-14",'
        b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
        *(
            b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,'
            b'"delta":{"content":"word "},"finish_reason":null}]}\n\n'
            for _ in range(4)
        ),
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},'
        b'"finish_reason":"stop"}]}\n\n',
        b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,'
        b'"completion_tokens":9,"prompt_tokens_details":{"cached_tokens":0}}}\n\n',
        b"data: [DONE]\n\n",
    ]
)
_JSON = (
    b'{"id":"chatcmpl-2","object":"chat.completion","model":"gpt-4.1-2025-04-14","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,'
    b'"completion_tokens":2}}'
)


def test_a_hundred_thousand_recorder_calls_leave_nothing_behind() -> None:
    from otel_llm._parsers.request import parse_request
    from otel_llm._patches._common import observe_status
    from otel_llm._stream import Tap

    counter = _Count()
    tp = TracerProvider()
    tp.add_span_processor(counter)
    recorder = Recorder(
        Config(), tp, MeterProvider(metric_readers=[InMemoryMetricReader()]), prices=None, ledger=SpendLedger()
    )
    route = recorder.router.match("/v1/chat/completions")
    assert route is not None
    headers = [("content-type", "text/event-stream"), ("x-ratelimit-remaining-requests", "99")]
    stream_body = {"model": "gpt-4.1", "messages": [], "stream": True}
    plain_body = {"model": "gpt-4.1", "messages": []}

    def loop(n: int) -> None:
        for i in range(n):
            kind = i % 4
            if kind == 0:  # a stream read to the end
                inv = recorder.start(route, parse_request(route, stream_body), "127.0.0.1", 8000, "http")
                observe_status(inv, 200, headers)
                tap = Tap(inv, True)
                for k in range(0, len(_SSE), 97):
                    tap.feed(_SSE[k : k + 97])
                tap.finish("completed")
            elif kind == 1:  # a whole answer
                inv = recorder.start(route, parse_request(route, plain_body), "127.0.0.1", 8000, "http")
                observe_status(inv, 200, headers)
                tap = Tap(inv, False)
                tap.feed(_JSON)
                tap.finish("completed")
            elif kind == 2:  # a stream given up half way
                inv = recorder.start(route, parse_request(route, stream_body), "127.0.0.1", 8000, "http")
                observe_status(inv, 200, headers)
                tap = Tap(inv, True)
                tap.feed(_SSE[:300])
                tap.finish("abandoned")
            else:  # a failure
                inv = recorder.start(route, parse_request(route, plain_body), "127.0.0.1", 8000, "http")
                inv.fail(TimeoutError("timed out"))

    calls, traced = 100_000, 10_000
    blocks, grown = _leftovers(loop, 2000, calls, traced)
    assert counter.ended == 2000 + calls + 500 + traced
    print(f"recorder calls: {calls} -> {blocks} blocks left; {traced} traced -> {grown} bytes left")
    assert blocks < 500, blocks  # one object kept per call would be 100,000
    assert grown < 32 * 1024, grown  # about 3 bytes a call: nothing per call


# --------------------------------------------------------------------------------------------------
# cardinality


def test_random_model_names_are_bounded_on_metrics_but_kept_on_spans(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(max_models=20)
    rng = random.Random(5)
    names = {"m-" + "".join(rng.choices(string.ascii_lowercase, k=10)) for _ in range(500)}
    with httpx.Client(verify=False) as client:
        for name in names:
            body = {"model": name, "messages": [{"role": "user", "content": "hi"}]}
            assert client.post(provider.url + "/v1/chat/completions", json=body).status_code == 200
    assert len(t.spans()) == len(names)
    assert {s.attributes["gen_ai.request.model"] for s in t.spans()} == names
    data = t.reader.get_metrics_data()
    labels: dict[str, set[str]] = {"gen_ai.request.model": set(), "gen_ai.response.model": set()}
    series = 0
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    series += 1
                    for key, values in labels.items():
                        if key in point.attributes:
                            values.add(point.attributes[key])
    for key, values in labels.items():
        assert "_OTHER" in values, key
        assert len(values - {"_OTHER"}) <= 20, (key, len(values))
    assert series <= 21 * 2 * 5, series  # per model label: a handful of series (and at most 21 labels each)


def test_in_flight_tally_counts_exactly_across_threads() -> None:
    """The in-flight tally takes no lock per call (two counters, started and done): threads entering and
    leaving at once lose no step, and a count read meanwhile is never negative."""
    from otel_llm.recorder import _InFlight

    slot = _InFlight({"gen_ai.request.model": "m"})
    assert slot.count() == 0
    slot.enter()
    slot.enter()
    slot.leave()
    assert slot.count() == 1
    seen: list[int] = []

    def work() -> None:
        for i in range(20_000):
            slot.enter()
            if i % 1000 == 0:
                seen.append(slot.count())
            slot.leave()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert slot.count() == 1 and min(seen) >= 1


class _LastServer(SpanProcessor):
    """Keeps the server attributes of the last span ended (and nothing else)."""

    def __init__(self) -> None:
        self.last: tuple[Any, Any] = (None, None)

    def on_end(self, span: Any) -> None:
        attrs = span.attributes
        self.last = (attrs.get("server.address"), attrs.get("server.port"))


def test_ten_thousand_distinct_servers_keep_memory_and_metric_series_flat() -> None:
    """Calls to 10,000 distinct servers (per-tenant endpoints, pod addresses): every span keeps its real
    server, metric labels name at most ``max_servers`` of them (the rest are ``_OTHER``), and no table grows
    per server: traced memory after 10,000 servers is within a small constant of that after the first 1,000."""
    from otel_llm._parsers.request import parse_request
    from otel_llm._patches._common import observe_status
    from otel_llm._stream import Tap
    from otel_llm.pricing import PriceBook

    last = _LastServer()
    tp = TracerProvider()
    tp.add_span_processor(last)
    reader = InMemoryMetricReader()
    ledger = SpendLedger()
    recorder = Recorder(Config(), tp, MeterProvider(metric_readers=[reader]), prices=PriceBook(), ledger=ledger)
    route = recorder.router.match("/v1/chat/completions")
    assert route is not None
    headers = [("content-type", "application/json"), ("x-ratelimit-remaining-requests", "99")]
    sse_headers = [("content-type", "text/event-stream"), ("x-ratelimit-remaining-tokens", "900")]
    plain = parse_request(route, {"model": "gpt-4.1", "messages": []})
    streamed = parse_request(route, {"model": "gpt-4.1", "messages": [], "stream": True})

    def servers(first: int, end: int) -> None:
        for i in range(first, end):  # one call a server: a whole answer, a stream, or an error answer
            host, port = f"tenant-{i}.llm.example", 8000 + i % 1000
            url = f"https://{host}:{port}/v1/chat/completions"
            kind = i % 3
            inv = recorder.start(route, streamed if kind == 1 else plain, host, port, "http", url=url)
            if kind == 0:
                observe_status(inv, 200, headers)
                tap = Tap(inv, False)
                tap.feed(_JSON)
                tap.finish("completed")
            elif kind == 1:
                observe_status(inv, 200, sse_headers)
                tap = Tap(inv, True)
                tap.feed(_SSE)
                tap.finish("completed")
            else:
                observe_status(inv, 503, headers)
                inv.end()
            assert last.last == (host, port)  # the span keeps the real server

    servers(0, 1000)
    gc.collect()
    tracemalloc.start()  # what is allocated from here on and still held: the growth (an upper bound)
    try:
        servers(1000, 5500)
        gc.collect()
        half = tracemalloc.get_traced_memory()[0]
        servers(5500, 10_000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    print(f"4,500 more servers -> {half} bytes left, 9,000 more -> {grown}")
    # bounded caches replacing their oldest keys count in full the first time round (their old keys were
    # made before tracing started); a table entry per server would be megabytes (~5 MiB per 1,000 before)
    assert grown < 512 * 1024, grown
    assert grown - half < 16 * 1024, (half, grown)  # flat

    data = reader.get_metrics_data()
    addresses: set[Any] = set()
    series = 0
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points = metric.data.data_points
                series += len(points)
                assert len(points) <= 2 * (256 + 1) * 2, (metric.name, len(points))
                addresses.update(p.attributes.get("server.address") for p in points)
    addresses.discard(None)
    assert "_OTHER" in addresses and len(addresses) == 256 + 1, len(addresses)
    assert series <= 12 * 2 * (256 + 1) * 2, series
    spend = ledger.snapshot()
    assert spend.calls == 10_000 and spend.by_model("gpt-4.1").calls == 10_000  # type: ignore[union-attr]


def test_real_calls_to_six_hundred_servers_name_at_most_max_servers_on_metrics(
    instrument: Callable[..., Telemetry],
) -> None:
    """Real httpx and requests calls to 600 distinct servers (loopback ports bound by this test and never
    listening: each call is refused, so no other process is reached): every span keeps its server, metric
    labels name 40 servers (``max_servers``) and ``_OTHER``, and the recorder's start table stays bounded."""
    import socket

    import requests

    t = instrument(max_servers=40)
    socks: list[socket.socket] = []
    try:
        for _ in range(600):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ports = [int(s.getsockname()[1]) for s in socks]
        body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client() as client, requests.Session() as session:
            for i, port in enumerate(ports):
                url = f"http://127.0.0.1:{port}/v1/chat/completions?key=SECRET{i}"
                if i % 2:
                    with pytest.raises(requests.ConnectionError):
                        session.post(url, json=body, timeout=10)
                else:
                    with pytest.raises(httpx.ConnectError):
                        client.post(url, json=body)
    finally:
        for s in socks:
            s.close()
    spans = t.spans()
    assert len(spans) == 600
    assert sorted(s.attributes["server.port"] for s in spans) == sorted(ports)
    assert all(s.attributes["error.type"] == "connection_error" for s in spans)
    servers: set[tuple[Any, Any]] = set()
    for name in ("gen_ai.client.operation.duration", "otel_llm.client.active_operations"):
        points = t.points(name)
        servers.update((p.attributes.get("server.address"), p.attributes.get("server.port")) for p in points)
    assert ("_OTHER", None) in servers and len(servers) == 41, len(servers)
    assert len(t.instrumentor.recorder._starts) <= 40  # one start key per labelled server (one route, layer...)
