"""Tokens on every openai SDK stream, and the caller's chunks untouched.

Every way the SDK hands a stream over (``create(stream=True)``, ``with_raw_response`` + ``parse()``,
``with_streaming_response`` + ``parse()`` / ``iter_lines()`` / ``iter_bytes()``), sync and async, Chat
Completions and legacy Completions: the call's tokens and cost are the provider's usage, and the caller
receives exactly what an uninstrumented client receives from the same provider. Only the usage-only chunk
otel-llm itself asked for (``stream_options.include_usage``) is hidden; one the provider sends on its own (a
relay that always streams usage, a caller that asked) reaches the caller.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from otel_llm.fakeprovider import FakeConfig, FakeProvider

from .conftest import Telemetry

KEY = "sk-test-SECRET"
MSG = [{"role": "user", "content": "Count the stars in the sky, briefly, please."}]
APIS = {"chat": "gpt-4.1", "completions": "gpt-3.5-turbo-instruct"}
FORMS = (
    "create",
    "create-headers-midway",  # the stream's response looked at between two chunks
    "create-response-lines",  # create(stream=True), its body read raw through stream.response
    "raw-parse",
    "streaming-parse",
    "streaming-lines",
    "streaming-bytes",
)


@pytest.fixture(scope="module")
def plain() -> Iterator[FakeProvider]:
    with FakeProvider() as p:
        yield p


@pytest.fixture
def relay() -> Iterator[FakeProvider]:
    """A relay that ends every stream with the usage-only chunk, asked or not (a fresh server each test)."""
    with FakeProvider(config=FakeConfig(relay_usage=True)) as p:
        yield p


def _blank(value: Any, key: str = "") -> Any:
    """The answer's shape: the text and the token numbers depend on the exact request bytes (the fake provider
    draws them from a hash of the body, and otel-llm adds ``stream_options`` to it)."""
    if isinstance(value, dict):
        return {k: _blank(v, k) for k, v in value.items() if k not in ("id", "created")}  # drawn per answer
    if isinstance(value, list):
        return [_blank(v, key) for v in value]
    if key in ("content", "text") and isinstance(value, str):
        return "<text>"
    if isinstance(value, int) and not isinstance(value, bool):
        return 0 if key != "index" else value
    return value


def _canon_json(data: dict[str, Any]) -> str:
    return json.dumps(_blank(data), sort_keys=True)


def _canon_line(line: str) -> str:
    if line.startswith("data: {"):
        return "data: " + _canon_json(json.loads(line[6:]))
    return line


def _canon_chunk(chunk: Any) -> str:
    """The chunk's fields and which of them the JSON gave (``to_dict()`` and ``exclude_unset`` dumps show only those:
    a member that is null and one that is absent differ there, and only there)."""
    given = chunk.model_dump(mode="json", exclude_unset=True)
    return _canon_json(chunk.model_dump(mode="json")) + " given " + _canon_json(given)


def _resource(c: Any, api: str, variant: str | None) -> Any:
    res = c.chat.completions if api == "chat" else c.completions
    return res if variant is None else getattr(res, variant)


def _kwargs(api: str, extra: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"model": APIS[api], "stream": True, "extra_headers": {"x-fake-chunks": "4"}, **extra}
    if api == "chat":
        kw["messages"] = MSG
    else:
        kw["prompt"] = "Count the stars in the sky, briefly, please."
    return kw


def run_sync(url: str, api: str, form: str, **extra: Any) -> list[str]:
    """What the caller received, in order, each item made comparable across two answers."""
    kw = _kwargs(api, extra)
    with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as c:
        if form == "create":
            return [_canon_chunk(x) for x in _resource(c, api, None).create(**kw)]
        if form == "create-headers-midway":
            out = []
            with _resource(c, api, None).create(**kw) as stream:
                for x in stream:
                    out.append(_canon_chunk(x))
                    if len(out) == 2:
                        assert stream.response.headers["content-type"].startswith("text/event-stream")
            return out
        if form == "create-response-lines":
            with _resource(c, api, None).create(**kw) as stream:
                return [_canon_line(line) for line in stream.response.iter_lines()]
        if form == "raw-parse":
            return [_canon_chunk(x) for x in _resource(c, api, "with_raw_response").create(**kw).parse()]
        with _resource(c, api, "with_streaming_response").create(**kw) as response:
            if form == "streaming-parse":
                return [_canon_chunk(x) for x in response.parse()]
            if form == "streaming-lines":
                return [_canon_line(line) for line in response.iter_lines()]
            body = b"".join(response.iter_bytes()).decode()
            return [_canon_line(line) for line in body.split("\n")]


async def _run_async(url: str, api: str, form: str, **extra: Any) -> list[str]:
    kw = _kwargs(api, extra)
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as c:
        if form == "create":
            return [_canon_chunk(x) async for x in await _resource(c, api, None).create(**kw)]
        if form == "create-headers-midway":
            out = []
            async with await _resource(c, api, None).create(**kw) as stream:
                async for x in stream:
                    out.append(_canon_chunk(x))
                    if len(out) == 2:
                        assert stream.response.headers["content-type"].startswith("text/event-stream")
            return out
        if form == "create-response-lines":
            async with await _resource(c, api, None).create(**kw) as stream:
                return [_canon_line(line) async for line in stream.response.aiter_lines()]
        if form == "raw-parse":
            raw = await _resource(c, api, "with_raw_response").create(**kw)
            return [_canon_chunk(x) async for x in raw.parse()]
        async with _resource(c, api, "with_streaming_response").create(**kw) as response:
            if form == "streaming-parse":
                return [_canon_chunk(x) async for x in await response.parse()]
            if form == "streaming-lines":
                return [_canon_line(line) async for line in response.iter_lines()]
            body = b"".join([b async for b in response.iter_bytes()]).decode()
            return [_canon_line(line) for line in body.split("\n")]


def run_async(url: str, api: str, form: str, **extra: Any) -> list[str]:
    return asyncio.run(_run_async(url, api, form, **extra))


RUNNERS = {"sync": run_sync, "async": run_async}


def _usage_items(items: list[str]) -> int:
    return sum('"usage": {' in item for item in items)


def _check_usage(t: Telemetry, provider: FakeProvider, api: str) -> None:
    """Span and metrics carry exactly the usage the provider sent, and a cost."""
    totals = provider.totals()
    (model,) = totals
    sent = totals[model]
    assert sent["calls"] == 1
    a = t.span().attributes
    assert a["gen_ai.usage.input_tokens"] == sent["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == sent["output_tokens"]
    assert a["otel_llm.stream.outcome"] == "completed"
    assert t.point("gen_ai.client.token.usage", gen_ai__token__type="input").sum == sent["input_tokens"]
    assert t.point("gen_ai.client.token.usage", gen_ai__token__type="output").sum == sent["output_tokens"]
    cost = a["gen_ai.usage.cost.amount"]
    assert cost > 0
    assert t.point("gen_ai.client.operation.cost").sum == pytest.approx(cost)


def _compare(
    provider: FakeProvider,
    instrument: Callable[..., Telemetry],
    mode: str,
    api: str,
    form: str,
    **extra: Any,
) -> tuple[list[str], list[str], Telemetry]:
    run = RUNNERS[mode]
    provider.reset()
    bare = run(provider.url, api, form, **extra)  # not instrumented yet
    provider.reset()
    t = instrument()
    seen = run(provider.url, api, form, **extra)
    return bare, seen, t


@pytest.mark.parametrize("mode", RUNNERS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("form", FORMS)
def test_every_stream_form_gets_the_providers_tokens_and_the_callers_chunks_unchanged(
    plain: FakeProvider, instrument: Callable[..., Telemetry], mode: str, api: str, form: str
) -> None:
    bare, seen, t = _compare(plain, instrument, mode, api, form)
    assert _usage_items(bare) == 0  # nobody asked: the provider sends no usage to a bare client
    assert seen == bare  # read raw too: the usage event and each chunk's "usage":null are cut out of the bytes
    body = plain.requests[-1].json()
    assert body["stream_options"] == {"include_usage": True}  # what otel-llm asked for, hidden again
    _check_usage(t, plain, api)


def _teach(provider: FakeProvider, mode: str, api: str) -> None:
    """One stream whose caller says it wants no usage: the relay sends it all the same."""
    RUNNERS[mode](provider.url, api, "create", stream_options={"include_usage": False})


@pytest.mark.parametrize("mode", RUNNERS)
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("form", FORMS)
def test_a_relay_seen_streaming_usage_unasked_keeps_its_usage_chunk(
    relay: FakeProvider, instrument: Callable[..., Telemetry], mode: str, api: str, form: str
) -> None:
    relay.reset()
    bare = RUNNERS[mode](relay.url, api, form)  # not instrumented
    assert _usage_items(bare) == 1  # the relay's own usage chunk, unasked
    t = instrument()
    _teach(relay, mode, api)
    t.exporter.clear()
    t.reader.get_metrics_data()  # (cumulative: read the points of the lesson now, compare the rest below)
    relay.reset()
    points_before = {k: t.point("gen_ai.client.token.usage", gen_ai__token__type=k).sum for k in ("input", "output")}
    seen = RUNNERS[mode](relay.url, api, form)
    assert seen == bare  # every byte as the relay sent it, its usage event included
    assert "stream_options" not in relay.requests[-1].json()  # nothing asked of a server that sends it anyway
    sent = relay.totals()[APIS[api] if api == "completions" else "gpt-4.1-2025-04-14"]
    a = t.span().attributes
    assert a["gen_ai.usage.input_tokens"] == sent["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == sent["output_tokens"]
    assert a["gen_ai.usage.cost.amount"] > 0
    for kind, key in (("input", "input_tokens"), ("output", "output_tokens")):
        point = t.point("gen_ai.client.token.usage", gen_ai__token__type=kind)
        assert point.sum - points_before[kind] == sent[key]


@pytest.mark.parametrize("mode", RUNNERS)
@pytest.mark.parametrize("form", FORMS)
def test_a_caller_that_asks_for_usage_receives_the_usage_chunk(
    plain: FakeProvider, instrument: Callable[..., Telemetry], mode: str, form: str
) -> None:
    bare, seen, t = _compare(plain, instrument, mode, "chat", form, stream_options={"include_usage": True})
    assert _usage_items(bare) == 1
    assert seen == bare
    _check_usage(t, plain, "chat")


@pytest.mark.parametrize("read", ["parse", "lines", "bytes"])
def test_a_raw_stream_whose_usage_event_is_cut_hands_each_event_on_as_it_arrives(
    plain: FakeProvider, telemetry: Telemetry, read: str
) -> None:
    """The bytes of a ``with_streaming_response`` stream pass the cut as they come: the first event reaches the
    caller while the provider still waits before sending the next one."""
    gap = 0.6  # the provider waits this long before each event after the first
    headers = {"x-fake-fault": "slow-chunks", "x-fake-delay": str(gap), "x-fake-chunks": "3"}
    c = openai.OpenAI(base_url=plain.url + "/v1", api_key=KEY, max_retries=0)
    with (
        c,
        c.chat.completions.with_streaming_response.create(
            model="gpt-4.1", messages=MSG, stream=True, extra_headers=headers
        ) as response,
    ):
        if read == "parse":
            pieces: Iterator[Any] = iter(response.parse())
        elif read == "lines":
            pieces = response.iter_lines()
        else:
            pieces = response.iter_bytes()
        began = time.monotonic()
        first = next(pieces)
        waited = time.monotonic() - began
    assert first
    assert waited < gap / 2, waited  # not held back until a later event (or the end) arrived
    assert plain.requests[-1].json()["stream_options"] == {"include_usage": True}
    assert telemetry.span().attributes["otel_llm.stream.outcome"] == "closed_early"


class _Seen:
    """Records the bytes the openai SDK reads from a response body, between the SDK and whatever is below it."""

    def __init__(self, module: Any, inner: Any) -> None:
        self.pieces: list[bytes] = []
        seen = self.pieces

        class Sync(module.SyncByteStream):  # type: ignore[name-defined,misc]
            def __iter__(self) -> Iterator[bytes]:
                for piece in inner:
                    seen.append(piece)
                    yield piece

            def close(self) -> None:
                inner.close()

        class Async(module.AsyncByteStream):  # type: ignore[name-defined,misc]
            async def __aiter__(self) -> Any:
                async for piece in inner:
                    seen.append(piece)
                    yield piece

            async def aclose(self) -> None:
                await inner.aclose()

        self.stream = Sync() if isinstance(inner, module.SyncByteStream) else Async()


def _spy(response: Any) -> _Seen:
    import importlib

    module = importlib.import_module(type(response).__module__.split(".")[0])  # httpx or httpx2
    seen = _Seen(module, response.stream)
    response.stream = seen.stream
    return seen


@pytest.mark.parametrize("mode", RUNNERS)
def test_the_sdk_never_reads_the_usage_event_otel_llm_asked_for(
    plain: FakeProvider, telemetry: Telemetry, mode: str
) -> None:
    """``create(stream=True)``: the usage event otel-llm's ``include_usage`` brings is taken out of the bytes before
    the SDK decodes them (it would build a chunk object only to have it dropped), and its tokens are the call's."""
    plain.reset()
    kw = _kwargs("chat", {})
    if mode == "sync":
        with openai.OpenAI(base_url=plain.url + "/v1", api_key=KEY, max_retries=0) as c:
            stream = c.chat.completions.create(**kw)
            seen = _spy(stream.response)
            chunks = list(stream)
    else:

        async def read() -> tuple[_Seen, list[Any]]:
            async with openai.AsyncOpenAI(base_url=plain.url + "/v1", api_key=KEY, max_retries=0) as c:
                stream = await c.chat.completions.create(**kw)
                spied = _spy(stream.response)
                return spied, [x async for x in stream]

        seen, chunks = asyncio.run(read())
    body = b"".join(seen.pieces)
    assert plain.requests[-1].json()["stream_options"] == {"include_usage": True}
    assert b"data: [DONE]" in body  # the whole body went by
    assert b'"choices":[]' not in body and b'"choices": []' not in body
    assert all(chunk.choices for chunk in chunks)
    _check_usage(telemetry, plain, "chat")


def _usage_stream(padded: bool = False) -> list[tuple[bytes, bytes]]:
    """A chat stream as OpenAI sends it when asked for usage: each event's bytes, and what a cut leaves of them.
    ``padded``: as OpenAI has sent it since 2025-08, every chunk's last member its ``obfuscation`` padding (here
    letters and digits, empty, and other characters), after ``usage``."""
    head = {"id": "c1", "model": "gpt-4.1-2025-04-14"}
    text = 'Hi, "usage":null} \\' + (',"usage":null,"obfuscation":"x"}' if padded else "")
    chunks = [
        dict(head, choices=[{"index": 0, "delta": {"content": text}}]),
        dict(head, choices=[{"index": 0, "delta": {"content": "!"}}]),
        dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    ]
    pads = ["Ab3xQ9", "", "x-y_z."]
    events = []
    for i, chunk in enumerate(chunks):
        cut = json.dumps(chunk, separators=(",", ":")).encode()[:-1]
        pad = b',"obfuscation":' + json.dumps(pads[i]).encode() if padded else b""
        events.append((b"data: " + cut + b',"usage":null' + pad + b"}\n\n", b"data: " + cut + pad + b"}\n\n"))
    usage = dict(head, choices=[], usage={"prompt_tokens": 12, "completion_tokens": 3})
    if padded:
        usage["obfuscation"] = "k"
    events.append((b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n", b""))
    events.append((b"data: [DONE]\n\n", b"data: [DONE]\n\n"))
    return events


@pytest.mark.parametrize("padded", [False, True])
def test_a_usage_cut_given_a_call_reads_the_usage_of_the_event_it_takes_at_every_split(padded: bool) -> None:
    """Every way a body can be split in two reads: the bytes handed on are the body less the usage event and less
    each chunk's ``"usage":null`` member, but for a line the split falls inside, which passes uncut (a usage event
    so passed is dropped from the SDK's chunks by the openai layer); the call gets the event's usage exactly when
    the event was cut."""
    from types import SimpleNamespace

    from otel_llm._parsers.response import ResponseInfo
    from otel_llm._parsers.routes import Router
    from otel_llm._stream import UsageCut

    events = _usage_stream(padded)
    body = b"".join(sent for sent, _ in events)
    route = Router().match("/v1/chat/completions")
    for split in range(len(body) + 1):
        inv = SimpleNamespace(route=route, info=ResponseInfo())
        cut = UsageCut(inv)
        out = b"".join(cut(piece) for piece in (body[:split], body[split:]) if piece)
        expected = []
        at = 0
        usage_cut = True
        for sent, left in events:
            line_end = at + sent.index(b"\n") + 1
            if at < split < line_end:  # the split falls inside this event's line: it passes as sent
                expected.append(sent)
                usage_cut = usage_cut and left != b""
            else:
                expected.append(left)
            at += len(sent)
        assert out == b"".join(expected), split
        if usage_cut:
            assert (inv.info.usage.input_tokens, inv.info.usage.output_tokens) == (12, 3), split
        else:
            assert inv.info.usage is None, split


@pytest.mark.parametrize("padded", [False, True])
def test_a_usage_cut_given_one_event_a_read_takes_the_usage_event_whole_and_hands_on_any_other_event(
    padded: bool,
) -> None:
    """One event a read, as a client reading a paced stream gets it: every chunk loses its member, the usage event
    goes whole and its usage is read, and a one-line event that is neither (an event from a server that sends no
    member, a comment-free error event) passes as sent, the next chunk still cut."""
    from types import SimpleNamespace

    from otel_llm._parsers.response import ResponseInfo
    from otel_llm._parsers.routes import Router
    from otel_llm._stream import UsageCut

    events = _usage_stream(padded)
    other = b'data: {"id":"x","choices":[{"index":0,"delta":{},"finish_reason":null}]}\n\n'
    events = [*events[:1], (other, other), *events[1:]]
    inv = SimpleNamespace(route=Router().match("/v1/chat/completions"), info=ResponseInfo())
    cut = UsageCut(inv)
    out = [cut(sent) if not cut.done else sent for sent, _ in events]
    assert out == [left for _, left in events]
    assert (inv.info.usage.input_tokens, inv.info.usage.output_tokens) == (12, 3)
    assert cut.done
    plain = UsageCut()  # no call given: the event is still taken whole
    assert [plain(sent) if not plain.done else sent for sent, _ in events] == out


@pytest.mark.parametrize(
    "line",
    [
        b'data: {"choices":[],"usage":{"prompt_tokens":1e400,"completion_tokens":"3"}}\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":"\\ud800","completion_tokens":-1}}\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2},"model":"\\udfff"}\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":99999999999999999999999}}\n',
        b'data: {"choices":[],"usage":{}, "model": "\xff\xfe"}\n',
    ],
)
def test_a_usage_cut_takes_hostile_usage_events_without_raising(line: bytes) -> None:
    from types import SimpleNamespace

    from otel_llm._parsers.response import ResponseInfo
    from otel_llm._parsers.routes import Router
    from otel_llm._stream import UsageCut

    inv = SimpleNamespace(route=Router().match("/v1/chat/completions"), info=ResponseInfo())
    cut = UsageCut(inv)
    out = cut(line + b"\n" + b"data: [DONE]\n\n")
    assert out in (b"data: [DONE]\n\n", line + b"\n" + b"data: [DONE]\n\n")  # taken whole, or (not JSON) passed on
    alone = SimpleNamespace(route=inv.route, info=ResponseInfo())
    assert UsageCut(alone)(line + b"\n") in (b"", line + b"\n")  # the event read alone: the same, whole
    assert (alone.info.usage is None) == (inv.info.usage is None)
    usage = inv.info.usage
    assert (
        usage is None
        or usage.invalid
        or all(v is None or (isinstance(v, int) and 0 <= v <= 10**9) for v in (usage.input_tokens, usage.output_tokens))
    )


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_a_usage_cut_over_thousands_of_events_in_reads_of_any_size_hands_on_each_event_cut_or_as_sent(
    seed: int, padded: bool
) -> None:
    """2,000 chunks and the usage event, in one read or in reads of random sizes (1 byte to 64 kB): each event
    reaches the caller cut or exactly as sent, in order; the usage event is gone exactly when its usage was read."""
    import random
    from types import SimpleNamespace

    from otel_llm._parsers.response import ResponseInfo
    from otel_llm._parsers.routes import Router
    from otel_llm._stream import UsageCut

    head, tail = _usage_stream(padded)[0], _usage_stream(padded)[3:]
    events = [head] * 2000 + tail
    body = b"".join(sent for sent, _ in events)
    rng = random.Random(seed)
    pieces = []
    at = 0
    while at < len(body):
        size = len(body) if seed == 0 else rng.choice((1, 7, 64, 333, 4096, 65536))
        pieces.append(body[at : at + size])
        at += size
    inv = SimpleNamespace(route=Router().match("/v1/chat/completions"), info=ResponseInfo())
    cut = UsageCut(inv)
    out = b"".join(cut(piece) for piece in pieces)
    got = [e + b"\n\n" for e in out.split(b"\n\n")[:-1]]
    usage_sent, _ = tail[0]
    taken = usage_sent not in got
    want = [pair for pair in events if not (taken and pair[0] == usage_sent)]
    assert len(got) == len(want)
    assert all(g in pair for g, pair in zip(got, want, strict=True))
    assert (inv.info.usage is not None) == taken
    if seed == 0:  # one read: everything cut
        assert got == [left for _, left in events if left]


class _PiecesServer:
    """A chat stream sent as the given pieces, each in its own write a pause apart: the client reads them apart."""

    def __init__(self, pieces: list[bytes]) -> None:
        import http.server
        import threading

        self.requests: list[dict] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                requests.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                for piece in pieces:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _split_usage_server(padded: bool) -> _PiecesServer:
    """A chat stream whose usage event's line is sent in two writes, a pause apart: the client reads them apart, so
    the cut of the bytes passes that line on uncut (it cannot tell it apart before its end) and the SDK builds its
    chunk; the openai layer drops that chunk from the caller's chunks and reads its usage."""
    events = _usage_stream(padded)
    usage_sent = events[3][0]
    half = len(usage_sent) // 2
    chunks = [sent for sent, _ in events[:3]]
    return _PiecesServer([*chunks, usage_sent[:half], usage_sent[half:], events[4][0]])


def _stream_chunks(server: _PiecesServer, mode: str) -> list[Any]:
    kw = {"model": "gpt-4.1", "messages": MSG, "stream": True}
    try:
        if mode == "sync":
            with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as c:
                return list(c.chat.completions.create(**kw))

        async def read() -> list[Any]:
            async with openai.AsyncOpenAI(base_url=server.url, api_key=KEY, max_retries=0) as c:
                return [x async for x in await c.chat.completions.create(**kw)]

        return asyncio.run(read())
    finally:
        server.close()


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("mode", RUNNERS)
def test_a_usage_event_split_over_two_reads_is_dropped_from_the_sdks_chunks(
    telemetry: Telemetry, mode: str, padded: bool
) -> None:
    server = _split_usage_server(padded)
    chunks = _stream_chunks(server, mode)
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    assert len(chunks) == 3 and all(chunk.choices for chunk in chunks)  # the usage chunk never reaches the caller
    assert all("usage" not in chunk.model_fields_set for chunk in chunks)  # and the chunks' "usage":null was cut
    a = telemetry.span().attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (12, 3)
    assert a["otel_llm.stream.outcome"] == "completed"


def _event(choices: list[dict]) -> bytes:
    """One chat chunk event as OpenAI sends it when asked for usage (``"usage":null`` its last member)."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4.1-2025-04-14", "choices": choices}
    return b"data: " + json.dumps(chunk, separators=(",", ":")).encode()[:-1] + b',"usage":null}\n\n'


def _choice(index: int, delta: dict, reason: str | None = None) -> dict:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}


@pytest.mark.parametrize("mode", RUNNERS)
def test_a_finish_reason_beside_an_unfinished_choice_or_read_with_a_middle_chunk_is_recorded(
    telemetry: Telemetry, mode: str
) -> None:
    """The openai layer skips the fields of a middle chunk (one choice, no finish reason, no usage). A chunk whose
    last choice is unfinished but whose first one finished, and a finish chunk that arrives in one read with a
    middle one, are still read for their finish reasons; every chunk after the first counts for time per output
    chunk; the caller gets each chunk as sent, less the member otel-llm's ``include_usage`` added."""
    tokens = {"prompt_tokens": 9, "completion_tokens": 4}
    usage = {"id": "c1", "model": "gpt-4.1-2025-04-14", "choices": [], "usage": tokens}
    pieces = [
        _event([_choice(0, {"role": "assistant", "content": ""})]),  # the first chunk
        _event([_choice(0, {"content": "a"})]),  # a middle chunk
        _event([_choice(0, {}, "stop"), _choice(1, {"content": "b"})]),  # ends unfinished, the first choice done
        _event([_choice(1, {"content": "c"})]),
        _event([_choice(1, {"content": "d"})]) + _event([_choice(1, {}, "length")]),  # two events, one read
        b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n",
        b"data: [DONE]\n\n",
    ]
    server = _PiecesServer(pieces)
    chunks = _stream_chunks(server, mode)
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    assert [[(c.index, c.delta.content, c.finish_reason) for c in chunk.choices] for chunk in chunks] == [
        [(0, "", None)],
        [(0, "a", None)],
        [(0, None, "stop"), (1, "b", None)],
        [(1, "c", None)],
        [(1, "d", None)],
        [(1, None, "length")],
    ]
    assert all("usage" not in chunk.model_fields_set for chunk in chunks)
    a = telemetry.span().attributes
    assert a["gen_ai.response.finish_reasons"] == ("stop", "length")
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (9, 4)
    assert a["otel_llm.stream.outcome"] == "completed"
    (point,) = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert point.count == 5


_LAYOUTS = {
    # each write of the server, as indexes into _usage_stream's events (a float: that event's first or second half)
    "one event a write": [[0], [1], [2], [3], [4]],
    "a middle chunk in two writes": [[0], [1.0], [1.5], [2], [3], [4]],
    "the finish with the usage event's first half": [[0], [1], [2, 3.0], [3.5], [4]],
    "the finish with the whole usage event": [[0], [1], [2, 3], [4]],
    "the usage event with the end marker": [[0], [1], [2], [3, 4]],
    "the finish, the usage event and the end marker together": [[0], [1], [2, 3, 4]],
}


def _layout_pieces(events: list[bytes], layout: list[list[float]]) -> list[bytes]:
    pieces = []
    for write in layout:
        piece = b""
        for at in write:
            sent = events[int(at)]
            half = len(sent) // 2
            piece += sent if type(at) is int else sent[:half] if at == int(at) else sent[half:]
        pieces.append(piece)
    return pieces


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("mode", RUNNERS)
@pytest.mark.parametrize("layout", _LAYOUTS)
def test_a_stream_read_only_through_the_sdks_chunks_is_cut_from_its_finish_on(
    telemetry: Telemetry, mode: str, layout: str, padded: bool
) -> None:
    """Read only through the SDK's chunks, the bytes before the finish chunk pass uncut (the SDK reads them, not the
    caller) and the openai layer unsets the ``usage`` member on the SDK's chunk objects; from the finish chunk on,
    the bytes are cut: a usage event that starts a read of its own is taken before the SDK reads it, and so is one
    in a read that ends with the end marker (a server writing its last events together); one that shares a read
    with the finish otherwise, whole or in part, reaches the SDK and is dropped from the caller's chunks. Either
    way the caller gets the chunks of a stream nobody asked usage of, and the call the stream's tokens."""
    sent = _usage_stream(padded)
    events = [raw for raw, _ in sent]
    server = _PiecesServer(_layout_pieces(events, _LAYOUTS[layout]))
    kw = {"model": "gpt-4.1", "messages": MSG, "stream": True}
    try:
        if mode == "sync":
            with openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0) as c:
                stream = c.chat.completions.create(**kw)
                seen = _spy(stream.__wrapped__.response)  # (the proxy's ``response`` would have the bytes cut)
                chunks = list(stream)
        else:

            async def read() -> tuple[_Seen, list[Any]]:
                async with openai.AsyncOpenAI(base_url=server.url, api_key=KEY, max_retries=0) as c:
                    stream = await c.chat.completions.create(**kw)
                    spied = _spy(stream.__wrapped__.response)
                    return spied, [x async for x in stream]

            seen, chunks = asyncio.run(read())
    finally:
        server.close()
    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    assert len(chunks) == 3 and all(chunk.choices for chunk in chunks)
    assert all("usage" not in chunk.model_fields_set for chunk in chunks)
    sdk_read = b"".join(seen.pieces)
    assert sdk_read.startswith(events[0] + events[1])  # the chunks before the finish: uncut
    taken = layout not in ("the finish with the usage event's first half", "the finish with the whole usage event")
    assert (events[3] not in sdk_read) == taken
    if taken:  # the finish chunk as read before the cut was armed, or cut with the read that ends the stream
        finish = sent[2][1] if layout == "the finish, the usage event and the end marker together" else events[2]
        assert sdk_read.endswith(finish + sent[4][1])
    a = telemetry.span().attributes
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (12, 3)
    assert a["otel_llm.stream.outcome"] == "completed"


@pytest.mark.parametrize(
    ("last", "start", "mid"),
    [
        (b"data: {}\n\n", True, False),
        (b"x\r\n\r\n", True, False),
        (b"event: x\n", False, False),
        (b"data: {", False, True),
    ],
)
def test_a_lazy_usage_cut_armed_after_uncut_reads_resumes_where_the_last_read_ended(
    last: bytes, start: bool, mid: bool
) -> None:
    """Armed after reads it handed on uncut, a lazy cut starts its line state where the last of them ended: at an
    event's start, inside an event after a line, or inside a line (whose end then passes uncut)."""
    from otel_llm._stream import UsageCut

    cut = UsageCut(None, lazy=True)
    assert cut.done  # nothing to cut before it is armed
    cut.arm()
    assert not cut.done and cut.resync
    cut.resume(last)
    assert (cut.start, cut.mid, cut.resync) == (start, mid, False)
    usage = b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n'
    assert cut(usage) == (b"" if start else usage)  # the usage event: taken only when it starts an event
    assert UsageCut(None).lazy is False


@pytest.mark.parametrize(
    ("pad", "cut"),
    [
        (b"A" * 1_000_000, True),  # a million letters: one pass, cut
        (b"\xff\xfe", True),  # not UTF-8 (the SDK's decoding says what it says): still a plain string, cut
        (b"", True),
        (b'a\\"b', False),  # an escaped quote: where the string ends is a parser's call, so handed on as sent
        (b"\\ud800", False),  # an escape (a lone surrogate): the same
        (b'x"}', False),  # not the last member after all (invalid JSON): as sent
    ],
)
def test_a_padded_chunk_loses_only_its_usage_member_and_an_unusual_padding_passes_as_sent(
    pad: bytes, cut: bool
) -> None:
    """The padding OpenAI ends each chunk with, hostile: a chunk read alone (the cut's fast path) and inside a read
    of two events (its line loop) is cut exactly when its padding is a plain string, else handed on as sent."""
    from otel_llm._stream import UsageCut

    body = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]'
    sent = body + b',"usage":null,"obfuscation":"' + pad + b'"}\n\n'
    left = body + b',"obfuscation":"' + pad + b'"}\n\n' if cut else sent
    assert UsageCut()(sent) == left
    assert UsageCut()(sent + sent) == left + left
    nested = b'data: {"id":"c","x":{"usage":null,"obfuscation":"' + pad + b'"},"choices":[]}\n\n'
    assert UsageCut()(nested) == nested  # not the chunk's own member


def test_a_chunk_that_is_no_pydantic_2_model_has_its_usage_unset_or_the_cut_armed() -> None:
    """The openai layer unsets the member on the SDK's chunk object while the bytes pass uncut (a lazy cut). A
    pydantic 1 chunk (``__fields_set__``) has it unset there; a chunk it cannot unset it on (no set of fields, or a
    usage that is not null) arms the cut of the bytes from the next read on instead."""
    from types import SimpleNamespace

    from otel_llm._patches.openai import _unset_usage
    from otel_llm._stream import UsageCut

    def call() -> Any:
        return SimpleNamespace(tap=SimpleNamespace(cut=UsageCut(None, lazy=True)))

    inv = call()
    v1 = SimpleNamespace(usage=None, __fields_set__={"id", "choices", "usage"})
    _unset_usage(inv, v1)
    assert v1.__fields_set__ == {"id", "choices"} and inv.tap.cut.done  # unset; the cut still waits
    for chunk in (SimpleNamespace(usage=None), SimpleNamespace(), {"usage": None}, SimpleNamespace(usage={"x": 1})):
        inv = call()
        _unset_usage(inv, chunk)
        assert not inv.tap.cut.done and inv.tap.cut.resync  # armed
    _unset_usage(SimpleNamespace(tap=None), SimpleNamespace())  # no tap: nothing to arm, nothing raised
