"""Adversarial: every provider fault, through every client layer, streamed and not.

Each case runs twice against the same seeded local provider: once instrumented, once after
``uninstrument()``. The user must get exactly the same thing both times (same value, or same
exception type and message); the instrumented run must leave exactly one span, ended once, with an
honest ``error.type`` and ``otel_llm.stream.outcome``; and nothing of ours may raise, log a warning,
log a swallowed traceback, or print.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import httpx
import httpx2
import openai
import pytest
import requests

from otel_llm.fakeprovider import FakeConfig, FakeProvider

from .conftest import Telemetry

MSG = [{"role": "user", "content": "Say hello to the observability team, please, in a few words."}]
KEY = "sk-test-faults-key"

SDK = ("openai", "openai-async")
HTTP_SYNC = ("httpx", "httpx2", "requests")
HTTP_ASYNC = ("httpx-async", "httpx2-async", "aiohttp")
LAYERS = SDK + HTTP_SYNC + HTTP_ASYNC
ASYNC = ("openai-async", *HTTP_ASYNC)


@pytest.fixture(scope="module")
def seeded() -> Iterator[FakeProvider]:
    """A provider of our own: seeded, so that ``reset()`` makes the next answer repeat the same ids."""
    with FakeProvider(config=FakeConfig(seed=1234)) as p:
        yield p


# --------------------------------------------------------------------------------------------------
# the case table


@dataclass(frozen=True)
class Fault:
    """One adversarial situation: what the server does (``x-fake-fault``) and what the caller does."""

    name: str
    header: str | None = None
    streams: tuple[bool, ...] = (False, True)
    extra: dict[str, str] = field(default_factory=dict)
    action: str = "read"  # read | close-early | abandon | cancel
    timeout: float | None = None
    layers: tuple[str, ...] = LAYERS
    fmt: str = "chat"  # chat | messages | gemini (raw HTTP layers only)
    inject: bool = False  # SDK streams: the caller leaves stream_options out, so we add it and hide its chunk
    # the honest telemetry: error.type (None: no error) and, for streams, otel_llm.stream.outcome
    error: str | None = None
    outcome: str = "completed"
    # where a layer's user sees something else (the SDK raises on a body a raw client just returns):
    # {"sdk" or layer name: (error.type, outcome)}
    special: dict[str, tuple[str | None, str]] = field(default_factory=dict)

    def expected(self, layer: str) -> tuple[str | None, str]:
        hit = self.special.get(layer) or (self.special.get("sdk") if layer in SDK else None)
        return hit if hit is not None else (self.error, self.outcome)


_JSON_ERROR = ("json.decoder.JSONDecodeError", "failed")
_UTF8_ERROR = ("UnicodeDecodeError", "failed")
_HTTPX2_DROPPED = (None, "closed_early")

FAULTS: list[Fault] = [
    Fault("ok"),
    Fault("ok-messages", fmt="messages", layers=HTTP_SYNC + HTTP_ASYNC),
    Fault("ok-gemini", fmt="gemini", layers=HTTP_SYNC + HTTP_ASYNC),
    Fault("malformed-json", "malformed-json", streams=(False,), special={"sdk": _JSON_ERROR}),
    Fault("empty", "empty", streams=(False,), special={"sdk": _JSON_ERROR}),
    Fault("empty-sse", "empty", streams=(True,), error="stream_truncated"),  # 200, then not one event
    Fault("non-json", "non-json", streams=(False,)),
    Fault("html-502", "html-502", error="502", outcome="failed"),
    Fault("truncated-sse", "truncated-sse", streams=(True,), error="stream_truncated"),
    Fault(
        "truncated-sse-messages",
        "truncated-sse",
        streams=(True,),
        fmt="messages",
        layers=HTTP_SYNC + HTTP_ASYNC,
        error="stream_truncated",
    ),
    Fault("junk-sse", "junk-sse", streams=(True,), special={"sdk": _JSON_ERROR}),  # the SDK chokes on "data: garbage"
    Fault("junk-sse-messages", "junk-sse", streams=(True,), fmt="messages", layers=HTTP_SYNC + HTTP_ASYNC),
    Fault("non-utf8", "non-utf8", special={"sdk": _UTF8_ERROR}),
    Fault("null-usage", "null-usage"),
    Fault("string-numbers", "string-numbers"),
    Fault("huge", "huge", extra={"x-fake-size": "3000000"}),
    Fault("400", "400", error="400", outcome="failed"),
    Fault("401", "401", error="401", outcome="failed"),
    Fault("404", "404", error="404", outcome="failed"),
    Fault("429", "429", error="429", outcome="failed"),  # with retry-after and rate-limit headers
    Fault("429-quota", "429-quota", error="insufficient_quota", outcome="failed"),
    Fault("429-messages", "429", fmt="messages", layers=HTTP_SYNC + HTTP_ASYNC, error="429", outcome="failed"),
    Fault("429-gemini", "429", fmt="gemini", layers=HTTP_SYNC + HTTP_ASYNC, error="429", outcome="failed"),  # none
    Fault("500", "500", error="500", outcome="failed"),  # no rate-limit headers
    Fault("503", "503", error="503", outcome="failed"),
    Fault("reset", "reset", error="connection_error", outcome="failed"),
    Fault("timeout", "slow", extra={"x-fake-delay": "1.5"}, timeout=0.3, error="timeout", outcome="failed"),
    Fault(
        "timeout-mid-stream",
        "slow-chunks",
        streams=(True,),
        extra={"x-fake-delay": "1.5", "x-fake-chunks": "5"},
        timeout=0.3,
        error="timeout",
        outcome="failed",
    ),
    Fault("close-early", streams=(True,), extra={"x-fake-chunks": "40"}, action="close-early", outcome="closed_early"),
    # httpx2's own line iterator closes the response when it is dropped: that is a close, not a leak
    Fault(
        "abandon",
        streams=(True,),
        extra={"x-fake-chunks": "40"},
        action="abandon",
        error="stream_abandoned",
        outcome="abandoned",
        special={"httpx2": _HTTPX2_DROPPED, "httpx2-async": _HTTPX2_DROPPED},
    ),
    Fault(
        "cancel",
        "slow-chunks",
        streams=(True,),
        extra={"x-fake-delay": "0.3", "x-fake-chunks": "20"},
        action="cancel",
        layers=ASYNC,
        error="cancelled",
        outcome="failed",
    ),
]


INJECTED = (
    "ok",
    "truncated-sse",
    "junk-sse",
    "non-utf8",
    "null-usage",
    "string-numbers",
    "reset",
    "timeout-mid-stream",
    "close-early",
    "abandon",
    "cancel",
)


def _cases() -> list[Any]:
    out = []
    for fault in FAULTS:
        for layer in fault.layers:
            for stream in fault.streams:
                kind = "stream" if stream else "whole"
                out.append(pytest.param(layer, fault, stream, id=f"{layer}-{fault.name}-{kind}"))
    for fault in FAULTS:  # the SDK streams again, now with the usage chunk we ask for and hide
        if fault.name in INJECTED:
            injected = replace(fault, name=fault.name + "-injected", inject=True)
            for layer in (x for x in SDK if x in fault.layers):
                out.append(pytest.param(layer, injected, True, id=f"{layer}-{injected.name}-stream"))
    return out


# --------------------------------------------------------------------------------------------------
# calling the provider through each layer; every call returns something comparable


_CREATED = re.compile(rb'"created(?:_at)?": ?\d+')
_ADDR = re.compile(r" at 0x[0-9a-fA-F]+")


def _norm(data: Any) -> Any:
    """Server-clock fields (``created``) differ between two runs a second apart; nothing else may."""
    if not isinstance(data, (bytes, str)):
        return data
    if isinstance(data, str):
        return _CREATED.sub(b'"created":0', data.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")
    return _CREATED.sub(b'"created":0', data)


def _dump(obj: Any) -> Any:
    d = obj.model_dump() if hasattr(obj, "model_dump") else obj
    if isinstance(d, dict):
        d = {k: v for k, v in d.items() if k not in ("created", "created_at")}
    return d


def _exc(exc: BaseException) -> tuple[str, str, str]:
    return ("raised", f"{type(exc).__module__}.{type(exc).__qualname__}", _ADDR.sub("", str(exc)))


@dataclass
class Call:
    layer: str
    url: str
    fault: Fault
    stream: bool
    closers: list[Any] = field(default_factory=list)
    instrumented: bool = True

    @property
    def path(self) -> str:
        fmt = self.fault.fmt
        if fmt == "messages":
            return "/v1/messages"
        if fmt == "gemini":
            return "/v1beta/models/gemini-2.5-flash:" + (
                "streamGenerateContent?alt=sse" if self.stream else "generateContent"
            )
        return "/v1/chat/completions"

    def body(self) -> dict[str, Any]:
        fmt = self.fault.fmt
        if fmt == "gemini":
            return {"contents": [{"role": "user", "parts": [{"text": MSG[0]["content"]}]}]}
        if fmt == "messages":
            body: dict[str, Any] = {"model": "claude-sonnet-4.5", "max_tokens": 300, "messages": MSG}
        else:
            body = {"model": "gpt-4.1", "messages": MSG}
        if self.stream:
            body["stream"] = True
            # asked for by the caller, so that the SDK layer sends the very same request; or, for the
            # injected cases, only by the plain run (instrumented, we add it ourselves)
            if fmt == "chat" and not (self.fault.inject and self.instrumented):
                body["stream_options"] = {"include_usage": True}
        return body

    def headers(self) -> dict[str, str]:
        h = dict(self.fault.extra)
        if self.fault.header:
            h["x-fake-fault"] = self.fault.header
        return h

    def raw_headers(self) -> dict[str, str]:
        h = self.headers()
        if self.fault.fmt == "messages":
            h |= {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
        elif self.fault.fmt == "gemini":
            h["x-goog-api-key"] = KEY
        else:
            h["authorization"] = f"Bearer {KEY}"
        return h

    @property
    def timeout(self) -> float:
        return self.fault.timeout or 30.0

    def read_timeout(self, mod: Any) -> Any:
        """The case's timeout for reads only: connecting on a loaded machine may take longer than a timeout case's
        0.3 s, and a connect timeout in one run and a read timeout in the other is the machine, not otel-llm."""
        return mod.Timeout(self.timeout, connect=30.0)

    def _visible(self, chunks: list[Any]) -> list[Any]:
        """In an injected case the plain run asked for usage itself: drop the chunk we would hide."""
        if self.fault.inject and not self.instrumented:
            return [c for c in chunks if not (c.get("usage") and not c.get("choices"))]
        return chunks

    def run(self) -> Any:
        """What the user gets: a value or an exception, made comparable."""
        layer = self.layer
        self.closers = []
        try:
            if layer in ASYNC:
                return asyncio.run(self._run_async())
            return self._run_sync()
        except BaseException as exc:  # CancelledError included: it is a result here
            return _exc(exc)

    # -- sync layers

    def _run_sync(self) -> Any:
        if self.layer == "openai":
            return self._openai_sync()
        if self.layer == "requests":
            return self._requests()
        return self._httpx_sync(httpx if self.layer == "httpx" else httpx2)

    def _openai_sync(self) -> Any:
        client = openai.OpenAI(
            base_url=self.url + "/v1",
            api_key=KEY,
            max_retries=0,
            timeout=self.read_timeout(httpx),
            http_client=openai.DefaultHttpxClient(verify=False),  # no CA bundle to load: plain HTTP
        )
        body = self.body()
        create = client.chat.completions.create
        try:
            if not self.stream:
                return _dump(create(**body, extra_headers=self.headers()))
            action = self.fault.action
            if action == "abandon":

                def use() -> Any:
                    s = create(**body, extra_headers=self.headers())
                    return _dump(next(iter(s)))

                first = use()
                gc.collect()
                return _norm(first)
            s = create(**body, extra_headers=self.headers())
            if action == "close-early":
                first = _dump(next(iter(s)))
                s.close()
                return first
            return self._visible([_dump(c) for c in s])
        finally:
            client.close()

    def _httpx_sync(self, mod: Any) -> Any:
        url = self.url + self.path
        with mod.Client(timeout=self.read_timeout(mod), verify=False) as c:
            if not self.stream:
                r = c.post(url, json=self.body(), headers=self.raw_headers())
                return (r.status_code, r.headers.get("content-type"), _norm(r.content))
            action = self.fault.action
            if action == "abandon":

                def use() -> Any:
                    r = c.send(c.build_request("POST", url, json=self.body(), headers=self.raw_headers()), stream=True)
                    return next(r.iter_lines())

                first = use()
                gc.collect()
                return _norm(first)
            with c.stream("POST", url, json=self.body(), headers=self.raw_headers()) as r:
                if action == "close-early":
                    lines = r.iter_lines()
                    first = next(lines)
                    lines.close()  # the generator closed early, then the with block closes the response
                    return (r.status_code, _norm(first))
                return (r.status_code, _norm(b"".join(r.iter_bytes())))

    def _requests(self) -> Any:
        url = self.url + self.path
        with requests.Session() as s:
            if not self.stream:
                r = s.post(url, json=self.body(), headers=self.raw_headers(), timeout=(30.0, self.timeout))
                return (r.status_code, r.headers.get("content-type"), _norm(r.content))
            action = self.fault.action
            if action == "abandon":

                def use() -> Any:
                    r = s.post(
                        url, json=self.body(), headers=self.raw_headers(), timeout=(30.0, self.timeout), stream=True
                    )
                    return next(r.iter_lines())

                first = use()
                gc.collect()
                return _norm(first)
            r = s.post(url, json=self.body(), headers=self.raw_headers(), timeout=(30.0, self.timeout), stream=True)
            if action == "close-early":
                lines = r.iter_lines()
                first = next(lines)
                lines.close()
                r.close()
                return (r.status_code, _norm(first))
            with r:
                return (r.status_code, _norm(b"".join(r.iter_content(chunk_size=None))))

    # -- async layers

    async def _run_async(self) -> Any:
        if self.fault.action == "cancel":
            return await self._cancelled()
        if self.fault.action == "abandon":
            return await self._abandoned()
        return await self._consume(None)

    async def _cancelled(self) -> Any:
        started = asyncio.Event()
        task = asyncio.create_task(self._consume(started))
        await asyncio.wait_for(started.wait(), 10)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError as exc:
            gc.collect()
            return _exc(exc)
        return "not cancelled"

    async def _abandoned(self) -> Any:
        """Read the first piece in one task, drop the stream, collect it from another task."""
        first = await asyncio.create_task(self._consume(None, abandon=True))

        async def collect() -> None:
            gc.collect()

        await asyncio.create_task(collect())
        for close in self.closers:  # only after the stream was collected
            await close()
        return first

    async def _consume(self, started: asyncio.Event | None, abandon: bool = False) -> Any:
        if self.layer == "openai-async":
            return await self._openai_async(started, abandon)
        if self.layer == "aiohttp":
            return await self._aiohttp(started, abandon)
        return await self._httpx_async(httpx if self.layer == "httpx-async" else httpx2, started, abandon)

    async def _openai_async(self, started: asyncio.Event | None, abandon: bool) -> Any:
        client = openai.AsyncOpenAI(
            base_url=self.url + "/v1",
            api_key=KEY,
            max_retries=0,
            timeout=self.read_timeout(httpx),
            http_client=openai.DefaultAsyncHttpxClient(verify=False),
        )
        create = client.chat.completions.create
        try:
            if not self.stream:
                return _dump(await create(**self.body(), extra_headers=self.headers()))
            s = await create(**self.body(), extra_headers=self.headers())
            if abandon:
                first = await s.__anext__()
                return _dump(first)
            if self.fault.action == "close-early":
                first = await s.__anext__()
                await s.close()
                return _dump(first)
            out = []
            async for chunk in s:
                out.append(_dump(chunk))
                if started is not None:
                    started.set()
            return self._visible(out)
        finally:
            if abandon:
                self.closers.append(client.close)
            else:
                await client.close()

    async def _httpx_async(self, mod: Any, started: asyncio.Event | None, abandon: bool) -> Any:
        url = self.url + self.path
        c = mod.AsyncClient(timeout=self.read_timeout(mod), verify=False)
        try:
            if not self.stream:
                r = await c.post(url, json=self.body(), headers=self.raw_headers())
                return (r.status_code, r.headers.get("content-type"), _norm(r.content))
            req = c.build_request("POST", url, json=self.body(), headers=self.raw_headers())
            r = await c.send(req, stream=True)
            if abandon:
                return _norm(await r.aiter_lines().__anext__())
            try:
                if self.fault.action == "close-early":
                    lines = r.aiter_lines()
                    first = await lines.__anext__()
                    await lines.aclose()
                    return (r.status_code, _norm(first))
                parts = []
                async for piece in r.aiter_bytes():
                    parts.append(piece)
                    if started is not None:
                        started.set()
                return (r.status_code, _norm(b"".join(parts)))
            finally:
                await r.aclose()
        finally:
            if abandon:
                self.closers.append(c.aclose)
            else:
                await c.aclose()

    async def _aiohttp(self, started: asyncio.Event | None, abandon: bool) -> Any:
        url = self.url + self.path
        timeout = aiohttp.ClientTimeout(total=None, sock_read=self.timeout)
        session = aiohttp.ClientSession(timeout=timeout)
        try:
            if not self.stream:
                async with session.post(url, json=self.body(), headers=self.raw_headers()) as r:
                    return (r.status, r.headers.get("content-type"), _norm(await r.read()))
            r = await session.post(url, json=self.body(), headers=self.raw_headers())
            if abandon:
                return _norm(await r.content.readline())
            async with r:
                if self.fault.action == "close-early":
                    first = await r.content.readline()
                    r.release()
                    return (r.status, _norm(first))
                parts = []
                async for piece in r.content.iter_any():
                    parts.append(piece)
                    if started is not None:
                        started.set()
                return (r.status, _norm(b"".join(parts)))
        finally:
            if abandon:
                self.closers.append(session.close)
            else:
                await session.close()


# --------------------------------------------------------------------------------------------------
# nothing of ours may raise, warn, print or swallow a traceback


@dataclass
class Noise:
    unraisable: list[str] = field(default_factory=list)


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], None]]:
    caplog.set_level(logging.DEBUG, logger="otel_llm")
    caplog.set_level(logging.WARNING)
    noise = Noise()
    old = sys.unraisablehook

    def hook(args: Any) -> None:
        noise.unraisable.append(f"{args.exc_type!r} {args.exc_value!r} in {args.object!r}")

    sys.unraisablehook = hook

    def check() -> None:
        ours = [r for r in caplog.records if r.name.startswith("otel_llm")]
        assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING] == []
        assert [r.getMessage() for r in ours if r.exc_info] == [], "our code swallowed an exception"
        # the SDK warns when a span is ended twice or touched after its end
        sdk = [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= 30]
        assert sdk == []
        assert noise.unraisable == []
        err = capsys.readouterr().err
        assert "otel_llm" not in err and "Traceback" not in err, err

    try:
        yield check
    finally:
        sys.unraisablehook = old


# --------------------------------------------------------------------------------------------------
# the matrix


@pytest.mark.parametrize(("layer", "fault", "stream"), _cases())
def test_a_fault_gives_the_user_what_the_plain_client_gives_and_one_honest_span(
    layer: str,
    fault: Fault,
    stream: bool,
    seeded: FakeProvider,
    instrument: Callable[..., Telemetry],
    quiet: Callable[[], None],
) -> None:
    call = Call(layer, seeded.url, fault, stream)
    t = instrument()
    seeded.reset()
    got = call.run()
    assert call.instrumented
    if fault.action in ("abandon", "cancel"):
        t.wait_gc()
    spans = t.spans()
    t.instrumentor.uninstrument()
    seeded.reset()
    call.instrumented = False
    want = call.run()
    assert got == want

    assert len(spans) == 1, [s.name for s in spans]
    a = spans[0].attributes
    error, outcome = fault.expected(layer)
    assert a.get("error.type") == error, dict(a)
    assert spans[0].status.status_code.name == ("UNSET" if error is None else "ERROR")
    if stream:
        assert a.get("otel_llm.stream.outcome") == outcome, dict(a)
    else:  # a body read lazily (aiohttp) may say how its read ended
        assert a.get("otel_llm.stream.outcome", outcome) == outcome, dict(a)
    if fault.header in ("429", "429-quota"):  # the answer's rate-limit headers survive the failure
        assert a.get("gen_ai.rate_limit.retry_after") == 1.0, dict(a)
    assert t.point("gen_ai.client.operation.duration").count == 1
    assert t.in_flight() == 0  # whatever the way out: no longer in flight
    quiet()


# --------------------------------------------------------------------------------------------------
# a broken or missing telemetry backend never touches the calls

_APP = r"""
import json, os, sys, time

if os.environ.get("APP_PLAIN") != "1":
    import otel_llm

    otel_llm.instrument()
import httpx
import openai

url, n = sys.argv[1], int(sys.argv[2])
client = openai.OpenAI(base_url=url + "/v1", api_key="k", max_retries=0)
out, slowest = [], 0.0
for i in range(n):
    messages = [{"role": "user", "content": f"call number {i}, in a few words"}]
    began = time.monotonic()
    if i % 3 == 0:
        r = client.chat.completions.create(model="gpt-4.1", messages=messages)
        out.append([r.choices[0].message.content, r.usage.prompt_tokens, r.usage.completion_tokens])
    elif i % 3 == 1:
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(
                model="gpt-4.1", messages=messages, stream=True, stream_options={"include_usage": True}
            )
            if c.choices
        )
        out.append([text])
    else:
        body = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-4.1", "messages": messages}).json()
        out.append([body["choices"][0]["message"]["content"], body["usage"]["prompt_tokens"]])
    slowest = max(slowest, time.monotonic() - began)
calls = None
if os.environ.get("APP_PLAIN") != "1":
    calls = sum(m.calls for m in otel_llm.spend().models)
print(json.dumps({"results": out, "slowest": slowest, "calls": calls, "done": time.time()}), flush=True)
"""

_EXPORT_ENV = {
    "OTEL_EXPORTER_OTLP_TIMEOUT": "1",  # seconds, as the Python exporters read it
    "OTEL_BSP_EXPORT_TIMEOUT": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
    "OTEL_METRIC_EXPORT_INTERVAL": "500",
    "OTEL_METRIC_EXPORT_TIMEOUT": "1000",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_dead_slow_or_taken_telemetry_backend_never_affects_the_calls(provider: FakeProvider, tmp_path: Any) -> None:
    app = tmp_path / "app.py"
    app.write_text(_APP)
    closed = _free_port()  # nothing listens here
    silent = socket.socket()  # accepts connections (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        quiet_port, taken_port = silent.getsockname()[1], taken.getsockname()[1]
        scenarios: dict[str, dict[str, str]] = {
            "plain": {"APP_PLAIN": "1"},
            "otlp-grpc-closed": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}"},
            "otlp-http-closed": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "otlp-grpc-silent": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{quiet_port}"},
            "otlp-http-silent": {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{quiet_port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            "prometheus-taken": {
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "prometheus",
                "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
                "OTEL_EXPORTER_PROMETHEUS_PORT": str(taken_port),
            },
        }
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "APP_"))}
        procs = {
            name: subprocess.Popen(
                [sys.executable, str(app), provider.url, "12"],
                env={**base, **_EXPORT_ENV, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, env in scenarios.items()
        }
        exited: dict[str, float] = {}
        deadline = time.time() + 90
        while len(exited) < len(procs) and time.time() < deadline:
            for name, proc in procs.items():
                if name not in exited and proc.poll() is not None:
                    exited[name] = time.time()
            time.sleep(0.02)
        outputs = {}
        for name, proc in procs.items():
            if name not in exited:
                proc.kill()
            out, err = proc.communicate()
            assert name in exited, f"{name}: did not exit\n{err}"
            outputs[name] = (proc.returncode, out, err, exited[name])
    finally:
        silent.close()
        taken.close()

    plain = json.loads(outputs["plain"][1])
    assert plain["calls"] is None and len(plain["results"]) == 12
    for name, (code, out, err, exit_time) in outputs.items():
        assert code == 0, (name, err)
        assert "Traceback" not in err and "otel_llm" not in err.replace("otel_llm: cannot serve Prometheus", ""), (
            name,
            err,
        )
        if name == "plain":
            continue
        got = json.loads(out)
        assert got["results"] == plain["results"], name  # same answers, byte for byte
        assert got["calls"] == 12, name  # and it was instrumented
        assert got["slowest"] < 2.0, (name, got["slowest"])  # no call waited on the exporter
        # shutdown gives up on the backend in bounded time (1 s export timeouts; the defaults would be 10 s+)
        assert exit_time - got["done"] < 8, (name, exit_time - got["done"])
    prom_err = outputs["prometheus-taken"][2]
    lines = [line for line in prom_err.splitlines() if "Prometheus" in line]
    assert len(lines) == 1 and f"127.0.0.1:{taken_port}" in lines[0], prom_err
    assert prom_err.strip() == lines[0], prom_err  # and nothing else


# --------------------------------------------------------------------------------------------------
# instrumenting is idempotent and reversible


def _one_call_per_layer(url: str) -> int:
    body = {"model": "gpt-4.1", "messages": MSG}
    client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
    client.chat.completions.create(**body)
    client.close()
    httpx.post(url + "/v1/chat/completions", json=body)
    httpx2.post(url + "/v1/chat/completions", json=body)
    requests.post(url + "/v1/chat/completions", json=body, timeout=10)

    async def aio() -> None:
        async with aiohttp.ClientSession() as s, s.post(url + "/v1/chat/completions", json=body) as r:
            await r.read()

    asyncio.run(aio())
    return 5


def test_instrumenting_twice_does_not_double_spans_or_points(
    provider: FakeProvider, instrument: Callable[..., Telemetry], caplog: pytest.LogCaptureFixture
) -> None:
    import otel_llm

    t = instrument()
    again = otel_llm.instrument(tracer_provider=t.tracer_provider, meter_provider=object())  # already on: a no-op
    assert again is t.instrumentor
    t.instrumentor.instrument(tracer_provider=t.tracer_provider)  # the base class refuses, with a warning
    n = _one_call_per_layer(provider.url)
    assert len(t.spans()) == n
    assert t.point("gen_ai.client.operation.duration").count == n


def test_uninstrument_then_instrument_again_records_exactly_once_into_the_new_providers(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    first = instrument()
    first.instrumentor.uninstrument()
    _one_call_per_layer(provider.url)
    assert first.spans() == [] and first.points("gen_ai.client.operation.duration") == []
    second = instrument()
    n = _one_call_per_layer(provider.url)
    assert first.spans() == []
    assert len(second.spans()) == n
    assert second.point("gen_ai.client.operation.duration").count == n
    second.instrumentor.uninstrument()
    _one_call_per_layer(provider.url)
    assert len(second.spans()) == n


# --------------------------------------------------------------------------------------------------
# even a bug of ours never reaches the caller


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("otel_llm test sabotage")


def _resolve(dotted: str) -> Any:
    """``otel_llm.recorder.Recorder`` -> the class; ``otel_llm._stream`` -> the module."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


# what breaks -> the attributes to replace with _boom
SABOTAGE: dict[str, list[tuple[str, str]]] = {
    "start": [("otel_llm.recorder.Recorder", "start")],
    "headers": [("otel_llm._patches._common", "parse_headers"), ("otel_llm._patches._common", "parse_header_list")],
    "parsers": [
        ("otel_llm._parsers.sse.StreamParser", "feed"),
        ("otel_llm._parsers.sse.StreamParser", "flush"),
        ("otel_llm._stream", "parse_body_bytes"),
        ("otel_llm._patches._common", "parse_body_bytes"),
        ("otel_llm._patches.openai", "apply_openai_object"),  # the openai SDK's own results and chunks
        ("otel_llm._patches.openai", "apply_openai_later_chunk"),
        ("otel_llm._stream", "apply_body"),  # the usage event cut from a stream's bytes
    ],
    "error-type": [("otel_llm.recorder", "error_type_of")],
    "finish": [("otel_llm.recorder.Recorder", "_finish")],
    "metrics": [("otel_llm.recorder.Recorder", "_leaf")],
}
# what breaks -> the (fault, streamed) cases that reach it, on every layer
_SABOTAGED: dict[str, list[tuple[str, bool]]] = {
    "start": [("ok", False), ("ok", True)],
    "headers": [("ok", False), ("ok", True), ("429", False)],
    "parsers": [("ok", False), ("ok", True), ("junk-sse", True)],
    "error-type": [("reset", False), ("reset", True), ("429", False), ("junk-sse", True)],
    "finish": [("ok", False), ("ok", True), ("reset", True)],
    "metrics": [("ok", True)],
}


def _sabotage_cases() -> list[Any]:
    by_name = {f.name: f for f in FAULTS}
    out = []
    for what, cases in _SABOTAGED.items():
        for layer in LAYERS:
            for name, stream in cases:
                kind = "stream" if stream else "whole"
                out.append(pytest.param(what, layer, by_name[name], stream, id=f"{what}-{layer}-{name}-{kind}"))
    return out


@pytest.mark.parametrize(("what", "layer", "fault", "stream"), _sabotage_cases())
def test_an_exception_inside_otel_llm_never_reaches_the_caller(
    what: str,
    layer: str,
    fault: Fault,
    stream: bool,
    seeded: FakeProvider,
    instrument: Callable[..., Telemetry],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG, logger="otel_llm")
    call = Call(layer, seeded.url, fault, stream)
    t = instrument()
    for target, attr in SABOTAGE[what]:
        monkeypatch.setattr(_resolve(target), attr, _boom)
    seeded.reset()
    got = call.run()
    if fault.action in ("abandon", "cancel"):
        t.wait_gc()
    spans = t.spans()
    in_flight = t.in_flight()
    monkeypatch.undo()
    t.instrumentor.uninstrument()
    call.instrumented = False
    seeded.reset()
    want = call.run()
    assert got == want
    # the span is still ended exactly once, unless the call could not even be started
    assert len(spans) == (0 if what == "start" else 1)
    assert in_flight == 0
    ours = [r for r in caplog.records if r.name.startswith("otel_llm")]
    assert [r.getMessage() for r in ours if r.levelno >= logging.WARNING] == []
    assert [r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= logging.WARNING] == []
    err = capsys.readouterr().err
    assert "sabotage" not in err and "Traceback" not in err, err


# --------------------------------------------------------------------------------------------------
# a stream is handed on as it arrives: no read-ahead, no buffering


async def _first_piece_async(layer: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> float:
    if layer == "openai-async":
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
        stream = await client.chat.completions.create(**body, extra_headers=headers)
        began = time.monotonic()
        await stream.__anext__()
        waited = time.monotonic() - began
        await stream.close()
        await client.close()
        return waited
    if layer == "aiohttp":
        async with aiohttp.ClientSession() as s, s.post(url + "/v1/chat/completions", json=body, headers=headers) as r:
            began = time.monotonic()
            await r.content.readline()
            return time.monotonic() - began
    mod = httpx if layer == "httpx-async" else httpx2
    async with (
        mod.AsyncClient(verify=False) as c,
        c.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r,
    ):
        began = time.monotonic()
        await r.aiter_lines().__anext__()
        return time.monotonic() - began


def _first_piece(layer: str, url: str, body: dict[str, Any], headers: dict[str, str]) -> float:
    """Seconds from the response (headers) being handed over to its first piece reaching the caller."""
    if layer in ASYNC:
        return asyncio.run(_first_piece_async(layer, url, body, headers))
    if layer == "openai":
        with openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0) as client:
            stream = client.chat.completions.create(**body, extra_headers=headers)
            began = time.monotonic()
            next(iter(stream))
            waited = time.monotonic() - began
            stream.close()
            return waited
    if layer == "requests":
        with requests.post(url + "/v1/chat/completions", json=body, headers=headers, stream=True, timeout=10) as r:
            began = time.monotonic()
            next(r.iter_lines())
            return time.monotonic() - began
    mod = httpx if layer == "httpx" else httpx2
    with mod.Client(verify=False) as c, c.stream("POST", url + "/v1/chat/completions", json=body, headers=headers) as r:
        began = time.monotonic()
        next(r.iter_lines())
        return time.monotonic() - began


@pytest.mark.parametrize("layer", LAYERS)
def test_each_stream_event_reaches_the_caller_before_the_next_one_is_even_sent(
    layer: str, provider: FakeProvider, telemetry: Telemetry
) -> None:
    gap = 0.6  # the provider waits this long before each event after the first
    body = {"model": "gpt-4.1", "messages": MSG, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"x-fake-fault": "slow-chunks", "x-fake-delay": str(gap), "x-fake-chunks": "3"}
    waited = _first_piece(layer, provider.url, body, headers)
    assert waited < gap / 2, waited  # not held back until a later event (or the end) arrived
    span = telemetry.span()
    assert span.attributes["otel_llm.stream.outcome"] == "closed_early"
