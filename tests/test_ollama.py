"""Ollama's native API through the real ``ollama`` client and raw httpx/requests/aiohttp, against the fake provider.

Every call: one span with provider ``ollama``, the operation of its endpoint, the exact token counts the server
sent (``prompt_eval_count`` / ``eval_count``), the server's timings in seconds, the finish reason; no cost unless the
user's price table prices the model (unpriced, not $0). Faults leave the caller's results and exceptions as an
uninstrumented client gets them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import ollama
import pytest
import requests

from otel_llm import _names as n
from otel_llm._fake_ollama import EVAL_NS_PER_TOKEN, LOAD_NS, OVERHEAD_NS, PROMPT_NS_PER_TOKEN
from otel_llm.fakeprovider import FakeConfig, FakeProvider

from .conftest import Telemetry

MSGS = [{"role": "user", "content": "Say hello to the observability team, please, in a few words."}]
MODEL = "llama3.2"


@pytest.fixture(scope="module")
def seeded() -> Iterator[FakeProvider]:
    with FakeProvider(config=FakeConfig(seed=4321)) as p:
        yield p


def _last_usage(p: FakeProvider) -> dict[str, int]:
    return p.totals()[MODEL]


def _check_timings(span: Any, prompt: int, output: int | None) -> None:
    attrs = span.attributes
    prompt_ns = prompt * PROMPT_NS_PER_TOKEN
    eval_ns = (output or 0) * EVAL_NS_PER_TOKEN
    assert attrs[n.OLLAMA_LOAD_DURATION] == LOAD_NS / 1e9
    assert attrs[n.OLLAMA_TOTAL_DURATION] == (LOAD_NS + prompt_ns + eval_ns + OVERHEAD_NS) / 1e9
    if output is not None:
        assert attrs[n.OLLAMA_PROMPT_EVAL_DURATION] == prompt_ns / 1e9
        assert attrs[n.OLLAMA_EVAL_DURATION] == eval_ns / 1e9


# --------------------------------------------------------------------------------------------------
# the ollama client: every operation, sync and async, streamed and not


def _client_calls(client: Any) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("chat", lambda: client.chat(model=MODEL, messages=MSGS)),
        ("chat-stream", lambda: list(client.chat(model=MODEL, messages=MSGS, stream=True))),
        ("generate", lambda: client.generate(model=MODEL, prompt="Write a haiku about spans.")),
        ("generate-stream", lambda: list(client.generate(model=MODEL, prompt="Write a haiku.", stream=True))),
        ("embed", lambda: client.embed(model=MODEL, input=["first text", "the second text"])),
        ("embeddings", lambda: client.embeddings(model=MODEL, prompt="one text")),
    ]


def _final(result: Any) -> Any:
    return result[-1] if isinstance(result, list) else result


@pytest.mark.parametrize("kind", ["chat", "chat-stream", "generate", "generate-stream", "embed", "embeddings"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_ollama_client_gives_one_span_with_exact_tokens_timings_and_no_price(
    provider: FakeProvider, telemetry: Telemetry, kind: str, mode: str
) -> None:
    provider.reset()
    if mode == "sync":
        call = dict(_client_calls(ollama.Client(host=provider.url)))[kind]
        result = call()
    else:
        aclient = ollama.AsyncClient(host=provider.url)

        async def run() -> Any:
            stream = kind.endswith("-stream")
            if kind.startswith("chat"):
                out = await aclient.chat(model=MODEL, messages=MSGS, stream=stream)
            elif kind.startswith("generate"):
                out = await aclient.generate(model=MODEL, prompt="Write a haiku.", stream=stream)
            elif kind == "embed":
                return await aclient.embed(model=MODEL, input=["first text", "the second text"])
            else:
                return await aclient.embeddings(model=MODEL, prompt="one text")
            return [x async for x in out] if stream else out

        result = asyncio.run(run())
    span = telemetry.span()
    attrs = span.attributes
    assert attrs[n.PROVIDER] == "ollama"
    assert attrs[n.REQUEST_MODEL] == MODEL
    op = {"chat": "chat", "generate": "text_completion"}.get(kind.split("-")[0], "embeddings")
    assert attrs[n.OPERATION] == op
    assert span.name == f"{op} {MODEL}"
    assert attrs.get(n.REQUEST_STREAM, False) is kind.endswith("-stream")
    last = _final(result)
    if kind == "embeddings":  # the older endpoint sends no counts and no timings
        assert n.USAGE_INPUT not in attrs and n.OLLAMA_TOTAL_DURATION not in attrs
        assert attrs[n.EMBEDDINGS_DIMENSION] == len(result.embedding)
        return
    assert attrs[n.RESPONSE_MODEL] == MODEL
    assert attrs[n.USAGE_INPUT] == last.prompt_eval_count == _last_usage(provider)["input_tokens"]
    if kind == "embed":
        assert n.USAGE_OUTPUT not in attrs
        assert attrs[n.EMBEDDINGS_DIMENSION] == len(result.embeddings[0])
        _check_timings(span, last.prompt_eval_count, None)
    else:
        assert attrs[n.USAGE_OUTPUT] == last.eval_count == _last_usage(provider)["output_tokens"]
        assert attrs[n.FINISH_REASONS] == (last.done_reason,) == ("stop",)
        _check_timings(span, last.prompt_eval_count, last.eval_count)
    assert n.COST_AMOUNT not in attrs  # a local model has no price: unpriced, not $0
    point = telemetry.point(n.UNPRICED, gen_ai__provider__name="ollama")
    assert point.value == 1 and point.attributes[n.UNPRICED_REASON] == "unknown_model"
    assert telemetry.in_flight() == 0


def test_a_users_price_table_prices_an_ollama_model_and_a_cloud_model_name_stays_unpriced(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(prices={"models": {MODEL: {"input": 3.0, "output": 5.0}}})
    client = ollama.Client(host=provider.url)
    r = client.chat(model=MODEL, messages=MSGS)
    client.chat(model="mistral-small", messages=MSGS)  # genai-prices knows this name, but Ollama bills nobody
    priced, local = t.spans()
    assert priced.attributes[n.COST_AMOUNT] == pytest.approx((r.prompt_eval_count * 3.0 + r.eval_count * 5.0) / 1e6)
    assert priced.attributes[n.COST_ORIGIN] == "user_table"
    assert local.attributes[n.PROVIDER] == "ollama" and n.COST_AMOUNT not in local.attributes


# --------------------------------------------------------------------------------------------------
# raw clients: Ollama streams when the request does not say "stream": false


def _raw_lines(layer: str, url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    if layer == "httpx":
        with httpx.Client() as c, c.stream("POST", url, json=body) as r:
            return [json.loads(line) for line in r.iter_lines() if line]
    if layer == "requests":
        with requests.post(url, json=body, stream=True) as r:
            return [json.loads(line) for line in r.iter_lines() if line]

    async def run() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as s, s.post(url, json=body) as r:
            return [json.loads(line) async for line in r.content if line.strip()]

    return asyncio.run(run())


@pytest.mark.parametrize("layer", ["httpx", "requests", "aiohttp"])
@pytest.mark.parametrize("path", ["/api/chat", "/api/generate"])
def test_raw_clients_streaming_ndjson_by_default_give_one_span_with_tokens_and_chunks(
    provider: FakeProvider, telemetry: Telemetry, layer: str, path: str
) -> None:
    body: dict[str, Any] = {"model": MODEL, "options": {"temperature": 0.2, "num_predict": 500, "stop": ["\n\n"]}}
    body |= {"messages": MSGS} if path == "/api/chat" else {"prompt": "Write a haiku about traces."}
    lines = _raw_lines(layer, provider.url + path, body)  # no "stream" key: Ollama streams
    assert lines[-1]["done"] is True and len(lines) > 2
    span = telemetry.span()
    attrs = span.attributes
    assert attrs[n.PROVIDER] == "ollama" and attrs[n.REQUEST_STREAM] is True
    assert attrs[n.REQUEST_TEMPERATURE] == 0.2 and attrs[n.REQUEST_MAX_TOKENS] == 500
    assert attrs[n.REQUEST_STOP_SEQUENCES] == ("\n\n",)
    assert attrs[n.USAGE_INPUT] == lines[-1]["prompt_eval_count"]
    assert attrs[n.USAGE_OUTPUT] == lines[-1]["eval_count"]
    assert attrs[n.STREAM_OUTCOME] == "completed"
    assert n.TIME_TO_FIRST_CHUNK_ATTR in attrs  # parsed as it arrives, not buffered to the end
    chunks = telemetry.points("gen_ai.client.operation.time_per_output_chunk")
    assert sum(p.count for p in chunks) == len(lines) - 2  # every content line after the first, once


# --------------------------------------------------------------------------------------------------
# content capture


@pytest.mark.parametrize("stream", [False, True])
def test_content_capture_records_ollama_messages_tools_and_answers_only_when_asked(
    provider: FakeProvider, instrument: Callable[..., Telemetry], stream: bool
) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {}}}]
    history = [
        {"role": "system", "content": "Be brief."},
        *MSGS,
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    off = instrument()
    client = ollama.Client(host=provider.url)
    list(client.chat(model=MODEL, messages=history, tools=tools, stream=True)) if stream else client.chat(
        model=MODEL, messages=history, tools=tools
    )
    assert not [k for k in off.span().attributes if k.startswith(("gen_ai.input", "gen_ai.output", "gen_ai.tool"))]
    off.instrumentor.uninstrument()
    on = instrument(capture_content="SPAN_ONLY")
    headers = {"x-fake-answer": "tool_call"}
    client = ollama.Client(host=provider.url, headers=headers)
    if stream:
        parts = list(client.chat(model=MODEL, messages=history, tools=tools, stream=True))
        call = next(p for p in parts if p.message.tool_calls).message.tool_calls[0]
    else:
        call = client.chat(model=MODEL, messages=history, tools=tools).message.tool_calls[0]
    attrs = on.span().attributes
    inputs = json.loads(attrs[n.INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["system", "user", "assistant", "tool"]
    assert inputs[3]["parts"] == [{"type": "tool_call_response", "id": None, "response": "sunny"}]
    assert json.loads(attrs[n.TOOL_DEFINITIONS])[0]["name"] == "get_weather"
    out = json.loads(attrs[n.OUTPUT_MESSAGES])
    assert out[0]["finish_reason"] == "stop"
    tool = [p for p in out[0]["parts"] if p["type"] == "tool_call"]
    assert tool == [
        {"type": "tool_call", "id": tool[0]["id"], "name": "get_weather", "arguments": dict(call.function.arguments)}
    ]
    assert tool[0]["id"].startswith("call_")  # the wire's id (the client's ToolCall model drops it)


def test_generate_content_capture_has_the_system_text_apart_and_the_streamed_answer_whole(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    parts = list(ollama.Client(host=provider.url).generate(model=MODEL, prompt="Hi", system="Be brief.", stream=True))
    attrs = t.span().attributes
    assert json.loads(attrs[n.SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(attrs[n.INPUT_MESSAGES])[0]["parts"] == [{"type": "text", "content": "Hi"}]
    out = json.loads(attrs[n.OUTPUT_MESSAGES])
    assert out[0]["parts"] == [{"type": "text", "content": "".join(p.response for p in parts)}]


# --------------------------------------------------------------------------------------------------
# faults: the caller gets what an uninstrumented client gets; one honest span


LAYERS = ("ollama", "ollama-async", "httpx", "requests", "aiohttp")
FAULTS = [
    ("404", False, "404"),
    ("500", True, "500"),
    ("malformed-json", False, None),
    ("truncated-sse", True, "stream_truncated"),
    ("reset", True, None),
    ("close-early", True, None),
    ("abandon", True, None),
]


def _strip(d: Any) -> Any:
    if hasattr(d, "model_dump"):
        d = d.model_dump()
    if isinstance(d, dict):
        return {k: v for k, v in d.items() if k != "created_at"}
    return d


def _run(layer: str, url: str, fault: str, stream: bool) -> Any:
    headers = {} if fault in ("close-early", "abandon") else {"x-fake-fault": fault}
    body = {"model": MODEL, "messages": MSGS, "stream": stream}
    early = fault in ("close-early", "abandon")
    try:
        if layer == "ollama":
            client = ollama.Client(host=url, headers=headers)
            if not stream:
                return _strip(client.chat(model=MODEL, messages=MSGS))
            it = client.chat(model=MODEL, messages=MSGS, stream=True)
            if early:
                first = _strip(next(it))
                if fault == "close-early":
                    it.close()
                del it
                gc.collect()
                return first
            return [_strip(x) for x in it]
        if layer == "ollama-async":

            async def run() -> Any:
                client = ollama.AsyncClient(host=url, headers=headers)
                if not stream:
                    return _strip(await client.chat(model=MODEL, messages=MSGS))
                it = await client.chat(model=MODEL, messages=MSGS, stream=True)
                if early:
                    first = _strip(await it.__anext__())
                    await it.aclose()  # an async generator abandoned is closed the same way by the loop
                    return first
                return [_strip(x) async for x in it]

            return asyncio.run(run())
        if layer == "httpx":
            with httpx.Client() as c, c.stream("POST", url + "/api/chat", json=body, headers=headers) as r:
                if early:
                    return (r.status_code, next(r.iter_lines()))
                return (
                    r.status_code,
                    [_strip(json.loads(x)) for x in r.iter_lines() if x]
                    if r.status_code < 400 and stream
                    else r.read(),
                )
        if layer == "requests":
            r = requests.post(url + "/api/chat", json=body, headers=headers, stream=True)
            if early:
                line = next(r.iter_lines())
                r.close()
                return (r.status_code, line)
            return (
                r.status_code,
                [_strip(json.loads(x)) for x in r.iter_lines() if x] if r.status_code < 400 and stream else r.content,
            )

        async def arun() -> Any:
            async with aiohttp.ClientSession() as s:
                r = await s.post(url + "/api/chat", json=body, headers=headers)
                if early:
                    line = await r.content.readline()
                    r.close()
                    return (r.status, line)
                data = await r.read()
                r.release()
                return (r.status, data)

        return asyncio.run(arun())
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc).split(" at 0x")[0])


_CREATED = re.compile(rb'"created_at":"[^"]*"')


def _norm(v: Any) -> Any:
    if isinstance(v, bytes):  # the server clock's created_at differs between two runs
        return _CREATED.sub(b'"created_at":""', v)
    if isinstance(v, str):
        return _CREATED.sub(b'"created_at":""', v.encode()).decode()
    if isinstance(v, tuple):
        return tuple(_norm(x) for x in v)
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize(("fault", "stream", "error"), FAULTS, ids=[f[0] for f in FAULTS])
def test_an_ollama_fault_gives_the_caller_what_the_plain_client_gives_and_one_span(
    seeded: FakeProvider, instrument: Callable[..., Telemetry], layer: str, fault: str, stream: bool, error: str | None
) -> None:
    t = instrument()
    seeded.reset()
    got = _run(layer, seeded.url, fault, stream)
    gc.collect()
    spans = t.spans()
    t.instrumentor.uninstrument()
    seeded.reset()
    plain = _run(layer, seeded.url, fault, stream)
    assert _norm(got) == _norm(plain)
    assert len(spans) == 1
    attrs = spans[0].attributes
    assert attrs[n.PROVIDER] == "ollama"
    if error is not None:
        assert attrs[n.ERROR_TYPE] == error
    if fault in ("close-early", "abandon"):
        assert attrs[n.STREAM_OUTCOME] in ("closed_early", "abandoned")
        assert n.USAGE_OUTPUT not in attrs  # the final line never came
    if fault == "reset":
        assert n.ERROR_TYPE in attrs
    assert t.in_flight() == 0
