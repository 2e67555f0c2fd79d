"""The frameworks users build on, for real, against the local provider: langchain-openai, LiteLLM (its OpenAI and
its Anthropic provider), openai-agents, pydantic-ai and the anthropic SDK (with and without its own spans).

Each scenario runs twice on a seeded provider: first without otel-llm, then instrumented (without content, and
with ``SPAN_AND_EVENT`` content). The second run must give the framework the very same result (text, tool calls,
usage object) and make the same number of LLM calls, and otel-llm must record exactly those calls: one GenAI span
and one duration point per call, token sums equal to the usage the provider sent, and the cost the price book gives
for that usage."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM's import would fetch its price map online

import agents
import anthropic
import httpx
import litellm
import openai
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_openai import ChatOpenAI
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.messages import ToolCallPart
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from otel_llm._parsers.usage import Usage
from otel_llm.fakeprovider import FakeConfig, FakeProvider
from otel_llm.pricing import PriceBook

from .conftest import Telemetry

Instrument = Callable[..., Telemetry]

agents.set_tracing_disabled(True)  # openai-agents would export its own traces to OpenAI otherwise

KEY = "sk-test-SECRET"
ANT_KEY = "sk-ant-SECRET"
GPT = "gpt-4.1"
CLAUDE = "claude-sonnet-4.5"
PROMPT = "Say hello to the observability team, please, in a few words."
WEATHER = "What is the weather like in Lisbon today?"
INSTRUCTIONS = "Answer briefly."
TOOL_CALL = {"x-fake-answer": "tool_call"}
AGENT_LOOP = {"x-fake-answer": "tool_then_text"}  # a tool call, then text once the tool's result is sent
LLM_PATHS = ("/chat/completions", "/completions", "/embeddings", "/responses", "/messages")
ANTHROPIC_SCOPE = "com.anthropic.sdk.python"


@pytest.fixture(scope="module")
def seeded() -> Iterator[FakeProvider]:
    """A provider whose ids follow from a seed: after ``reset()`` the same calls get the same answers, ids
    included, so an agent's second request (which carries the first answer's call id) is the same too."""
    with FakeProvider(config=FakeConfig(seed=27)) as p:
        yield p


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for every async scenario, as an application has: the frameworks keep their async HTTP
    clients between calls (langchain-openai and LiteLLM cache them), bound to the loop that made them."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load(env={})


# --------------------------------------------------------------------------------------------------
# the scenarios: each returns what the framework gave its caller, as plain data


def get_weather(location: str, unit: str) -> str:
    """Current weather of a city."""
    return f"Sunny in {location}, 21 degrees {unit}."


def _lc_message(m: AIMessage | AIMessageChunk) -> dict[str, Any]:
    meta = {k: v for k, v in m.response_metadata.items() if k not in ("created", "created_at")}
    return {"content": m.content, "tool_calls": m.tool_calls, "usage": m.usage_metadata, "metadata": meta}


def _lc(provider: FakeProvider, **kw: Any) -> ChatOpenAI:
    return ChatOpenAI(model=GPT, base_url=provider.url + "/v1", api_key=KEY, max_retries=0, **kw)  # type: ignore[arg-type]


def _lc_join(chunks: list[AIMessageChunk]) -> dict[str, Any]:
    assert len(chunks) > 2  # it really streamed
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    return {**_lc_message(total), "chunks": len(chunks)}


def lc_invoke(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _lc_message(_lc(provider).invoke(PROMPT))


def lc_tools(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    result = _lc(provider, default_headers=TOOL_CALL).bind_tools([get_weather]).invoke(WEATHER)
    assert result.tool_calls and result.tool_calls[0]["name"] == "get_weather"
    return _lc_message(result)


def lc_stream(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _lc_join(list(_lc(provider, stream_usage=True).stream(PROMPT)))


async def lc_ainvoke(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _lc_message(await _lc(provider).ainvoke(PROMPT))


async def lc_astream(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _lc_join([c async for c in _lc(provider).astream(PROMPT)])


def _litellm_response(r: Any) -> dict[str, Any]:
    m = r.choices[0].message
    calls = [(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or []]
    return {
        "id": r.id,
        "model": r.model,
        "text": m.content,
        "tool_calls": calls,
        "finish": r.choices[0].finish_reason,
        "usage": r.usage.model_dump(),
    }


def _litellm_chunks(chunks: list[Any]) -> dict[str, Any]:
    assert len(chunks) > 2
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    usage = [u.model_dump() for c in chunks if (u := getattr(c, "usage", None)) is not None]
    return {"ids": sorted({c.id for c in chunks}), "text": text, "finish": finish, "usage": usage, "n": len(chunks)}


def _litellm_openai(provider: FakeProvider) -> dict[str, Any]:
    return {"model": "openai/" + GPT, "api_base": provider.url + "/v1", "api_key": KEY, "max_retries": 0}


def _litellm_anthropic(provider: FakeProvider) -> dict[str, Any]:
    return {"model": "anthropic/" + CLAUDE, "api_base": provider.url, "api_key": ANT_KEY, "max_tokens": 1024}


MSG = [{"role": "user", "content": PROMPT}]


def litellm_completion(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _litellm_response(litellm.completion(messages=MSG, **_litellm_openai(provider)))


def litellm_stream(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _litellm_chunks(list(litellm.completion(messages=MSG, stream=True, **_litellm_openai(provider))))


async def litellm_acompletion(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _litellm_response(await litellm.acompletion(messages=MSG, **_litellm_openai(provider)))


async def litellm_astream(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    stream = await litellm.acompletion(
        messages=MSG, stream=True, stream_options={"include_usage": True}, **_litellm_openai(provider)
    )
    return _litellm_chunks([c async for c in stream])


# LiteLLM answers an Anthropic call with an id of its own making (a fresh UUID): not part of what must match


def litellm_anthropic(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    result = _litellm_response(litellm.completion(messages=MSG, **_litellm_anthropic(provider)))
    return {**result, "id": None}


def litellm_anthropic_stream(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    result = _litellm_chunks(list(litellm.completion(messages=MSG, stream=True, **_litellm_anthropic(provider))))
    return {**result, "ids": len(result["ids"])}


async def litellm_anthropic_acompletion(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    result = _litellm_response(await litellm.acompletion(messages=MSG, **_litellm_anthropic(provider)))
    return {**result, "id": None}


async def litellm_anthropic_astream(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    stream = await litellm.acompletion(messages=MSG, stream=True, **_litellm_anthropic(provider))
    result = _litellm_chunks([c async for c in stream])
    return {**result, "ids": len(result["ids"])}


def _agent(provider: FakeProvider) -> Agent:
    client = openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key=KEY, max_retries=0, default_headers=AGENT_LOOP)
    model = OpenAIResponsesModel(model=GPT, openai_client=client)
    return Agent(name="weather", instructions=INSTRUCTIONS, tools=[function_tool(get_weather)], model=model)


def _agent_result(result: Any) -> dict[str, Any]:
    items = [(type(i).__name__, i.raw_item if isinstance(i.raw_item, dict) else i.raw_item.model_dump())
             for i in result.new_items]  # fmt: skip
    usage = result.context_wrapper.usage
    return {
        "output": result.final_output,
        "items": items,
        "responses": [(r.response_id, r.usage.input_tokens, r.usage.output_tokens) for r in result.raw_responses],
        "usage": (usage.requests, usage.input_tokens, usage.output_tokens, usage.total_tokens),
    }


async def agents_run(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    return _agent_result(await Runner.run(_agent(provider), WEATHER))


async def agents_run_streamed(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    result = Runner.run_streamed(_agent(provider), WEATHER)
    kinds = [e.type async for e in result.stream_events()]
    assert kinds.count("raw_response_event") > 4  # it really streamed
    return {**_agent_result(result), "events": len(kinds)}


def _pydantic_agent(provider: FakeProvider) -> PydanticAgent[None, str]:
    client = openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key=KEY, max_retries=0, default_headers=AGENT_LOOP)
    model = OpenAIChatModel(GPT, provider=OpenAIProvider(openai_client=client))
    agent = PydanticAgent(model, instructions=INSTRUCTIONS)
    agent.tool_plain(get_weather)
    return agent


def _pydantic_calls(messages: list[Any]) -> list[tuple[str, Any, str]]:
    return [
        (p.tool_name, p.args, p.tool_call_id)
        for m in messages
        for p in getattr(m, "parts", ())
        if isinstance(p, ToolCallPart)
    ]


async def pydantic_ai_run(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    result = await _pydantic_agent(provider).run(WEATHER)
    messages = result.all_messages()
    assert _pydantic_calls(messages)
    return {"output": result.output, "calls": _pydantic_calls(messages), "usage": dataclasses.asdict(result.usage)}


async def pydantic_ai_run_stream(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
    async with _pydantic_agent(provider).run_stream(WEATHER) as stream:
        pieces = [text async for text in stream.stream_text(delta=True, debounce_by=None)]
        usage = dataclasses.asdict(stream.usage)
        calls = _pydantic_calls(stream.all_messages())
    assert len(pieces) > 2 and calls
    return {"output": "".join(pieces), "calls": calls, "usage": usage}


def _anthropic(provider: FakeProvider, tp: TracerProvider, own_spans: bool) -> anthropic.Anthropic:
    telemetry: Any = {"tracer_provider": tp} if own_spans else False
    return anthropic.Anthropic(base_url=provider.url, api_key=ANT_KEY, max_retries=0, open_telemetry=telemetry)


def _anthropic_create(own_spans: bool) -> Callable[[FakeProvider, TracerProvider], dict[str, Any]]:
    def run(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
        message = _anthropic(provider, tp, own_spans).messages.create(model=CLAUDE, max_tokens=1024, messages=MSG)  # type: ignore[arg-type]
        return message.model_dump()

    return run


def _anthropic_stream(own_spans: bool) -> Callable[[FakeProvider, TracerProvider], dict[str, Any]]:
    def run(provider: FakeProvider, tp: TracerProvider) -> dict[str, Any]:
        client = _anthropic(provider, tp, own_spans)
        with client.messages.stream(model=CLAUDE, max_tokens=1024, messages=MSG) as stream:  # type: ignore[arg-type]
            pieces = list(stream.text_stream)
            message = stream.get_final_message()
        assert len(pieces) > 2
        return {"pieces": pieces, "message": message.model_dump()}

    return run


@dataclasses.dataclass(frozen=True)
class Scenario:
    id: str
    run: Callable[[FakeProvider, TracerProvider], Any]
    own_span: bool = False  # the call's GenAI span is anthropic's own (otel-llm adds to it), not otel-llm's

    def __call__(self, provider: FakeProvider, tp: TracerProvider, loop: asyncio.AbstractEventLoop) -> Any:
        result = self.run(provider, tp)
        return loop.run_until_complete(result) if inspect.isawaitable(result) else result


SCENARIOS = [
    Scenario("langchain-invoke", lc_invoke),
    Scenario("langchain-invoke-tools", lc_tools),
    Scenario("langchain-stream", lc_stream),
    Scenario("langchain-ainvoke", lc_ainvoke),
    Scenario("langchain-astream", lc_astream),
    Scenario("litellm-completion", litellm_completion),
    Scenario("litellm-completion-stream", litellm_stream),
    Scenario("litellm-acompletion", litellm_acompletion),
    Scenario("litellm-acompletion-stream", litellm_astream),
    Scenario("litellm-anthropic-completion", litellm_anthropic),
    Scenario("litellm-anthropic-completion-stream", litellm_anthropic_stream),
    Scenario("litellm-anthropic-acompletion", litellm_anthropic_acompletion),
    Scenario("litellm-anthropic-acompletion-stream", litellm_anthropic_astream),
    Scenario("openai-agents-run", agents_run),
    Scenario("openai-agents-run-streamed", agents_run_streamed),
    Scenario("pydantic-ai-run", pydantic_ai_run),
    Scenario("pydantic-ai-run-stream", pydantic_ai_run_stream),
    Scenario("anthropic-create-own-span", _anthropic_create(own_spans=True), own_span=True),
    Scenario("anthropic-stream-own-span", _anthropic_stream(own_spans=True), own_span=True),
    Scenario("anthropic-create", _anthropic_create(own_spans=False)),
    Scenario("anthropic-stream", _anthropic_stream(own_spans=False)),
]


# --------------------------------------------------------------------------------------------------
# what otel-llm recorded


def llm_calls(provider: FakeProvider) -> int:
    """The LLM calls the provider served since its last reset (model lists and the like do not count)."""
    return sum(1 for r in provider.requests if r.method == "POST" and r.path.endswith(LLM_PATHS))


def genai_spans(t: Telemetry, scenario: Scenario) -> list[ReadableSpan]:
    """Every span of the run, checked to be the calls' GenAI spans: otel-llm's, or anthropic's own (then none of
    otel-llm's beside them)."""
    spans = list(t.exporter.get_finished_spans())
    scope = ANTHROPIC_SCOPE if scenario.own_span else "otel_llm"
    assert [s.instrumentation_scope.name for s in spans] == [scope] * len(spans), [s.name for s in spans]
    return spans


def points_sum(t: Telemetry, name: str, **attrs: Any) -> tuple[int, float]:
    """(count, sum) of a histogram over every series whose attributes include ``attrs`` (dots spelled as __)."""
    want = {k.replace("__", "."): v for k, v in attrs.items()}
    hits = [p for p in t.points(name) if all(p.attributes.get(k) == v for k, v in want.items())]
    return sum(p.count for p in hits), sum(p.sum for p in hits)


def expected_cost(provider: FakeProvider, book: PriceBook) -> float:
    """What the price book charges for the usage the provider sent, model by model (prices are per token, so
    the sum over a model's calls is the price of their summed usage)."""
    total = 0.0
    for model, sent in provider.totals().items():
        name = "anthropic" if model.startswith("claude") else "openai"
        usage = Usage(
            sent["input_tokens"], sent["output_tokens"], sent["cached_tokens"], None, sent["reasoning_tokens"] or None
        )
        cost = book.price(provider=name, model=model, server_address="127.0.0.1", usage=usage)
        assert cost is not None, model
        total += cost.amount
    return total


def texts(span: ReadableSpan, key: str) -> list[str]:
    """The text parts of the span's ``gen_ai.input.messages`` or ``gen_ai.output.messages``."""
    messages = json.loads(str(span.attributes[key]))
    return [p["content"] for m in messages for p in m["parts"] if p["type"] == "text"]


def final_text(result: dict[str, Any]) -> str | None:
    for key in ("output", "text", "content"):
        if isinstance(result.get(key), str) and result[key]:
            return str(result[key])
    message = result.get("message", result)
    if isinstance(message.get("content"), list):
        return "".join(b["text"] for b in message["content"] if b.get("type") == "text") or None
    return None


# --------------------------------------------------------------------------------------------------
# the test


@pytest.mark.parametrize("capture", [None, "SPAN_AND_EVENT"], ids=["plain", "content"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_a_framework_gets_the_same_result_and_each_of_its_llm_calls_is_recorded_once(
    scenario: Scenario,
    capture: str | None,
    seeded: FakeProvider,
    book: PriceBook,
    loop: asyncio.AbstractEventLoop,
    instrument: Instrument,
) -> None:
    seeded.reset()
    bare = scenario(seeded, TracerProvider(), loop)
    bare_calls = llm_calls(seeded)
    assert bare_calls >= 1

    seeded.reset()
    t = instrument(capture_content=capture) if capture else instrument()
    result = scenario(seeded, t.tracer_provider, loop)
    calls = llm_calls(seeded)

    # the framework saw exactly what it saw without us, and made the same calls
    assert result == bare
    assert calls == bare_calls
    totals = seeded.totals()
    answered = sum(m["calls"] for m in totals.values())
    assert answered == calls, f"{calls - answered} of {calls} calls got no usage (otel-llm asks for it): {totals}"

    # one span and one duration point per call, none failed
    spans = genai_spans(t, scenario)
    assert len(spans) == calls
    assert all("error.type" not in s.attributes for s in spans)
    assert points_sum(t, "gen_ai.client.operation.duration")[0] == calls
    assert t.points("otel_llm.client.operation.unpriced") == []

    # tokens: what the provider sent
    sent_in = sum(m["input_tokens"] for m in totals.values())
    sent_out = sum(m["output_tokens"] for m in totals.values())
    assert points_sum(t, "gen_ai.client.token.usage", gen_ai__token__type="input")[1] == sent_in
    assert points_sum(t, "gen_ai.client.token.usage", gen_ai__token__type="output")[1] == sent_out
    assert sum(s.attributes.get("gen_ai.usage.input_tokens", 0) for s in spans) == sent_in
    assert sum(s.attributes.get("gen_ai.usage.output_tokens", 0) for s in spans) == sent_out

    # cost: what the price book gives for that usage, once per call
    count, cost = points_sum(t, "gen_ai.client.operation.cost")
    assert count == calls
    assert cost == pytest.approx(expected_cost(seeded, book), rel=1e-9)
    assert sum(s.attributes["gen_ai.usage.cost.amount"] for s in spans) == pytest.approx(cost, rel=1e-9)
    assert t.in_flight() == 0

    # content: on every span and in one event per call
    if capture:
        for span in spans:
            assert {"gen_ai.input.messages", "gen_ai.output.messages"} <= set(span.attributes), dict(span.attributes)
            assert {PROMPT, WEATHER} & set(texts(span, "gen_ai.input.messages"))  # the user's question
        text = final_text(result)
        if text is not None:
            assert text in texts(spans[-1], "gen_ai.output.messages")
        events = t.events()
        assert len(events) == calls
        assert all("gen_ai.output.messages" in e.log_record.attributes for e in events)
    else:
        assert not any("gen_ai.input.messages" in s.attributes for s in spans)
        assert t.events() == []


# --------------------------------------------------------------------------------------------------
# what the frameworks need from the provider


def _post(provider: FakeProvider, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    reply = httpx.post(provider.url + path, json=body, headers=headers, timeout=10)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_tool_then_text_calls_a_tool_until_its_result_is_sent_in_every_wire_format(provider: FakeProvider) -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    chat = [{"role": "user", "content": WEATHER}]
    first = _post(provider, "/v1/chat/completions", {"model": GPT, "messages": chat, "tools": [tool]}, AGENT_LOOP)
    call = first["choices"][0]["message"]["tool_calls"][0]
    assert first["choices"][0]["finish_reason"] == "tool_calls" and call["function"]["name"] == "get_weather"
    chat += [first["choices"][0]["message"], {"role": "tool", "tool_call_id": call["id"], "content": "Sunny."}]
    second = _post(provider, "/v1/chat/completions", {"model": GPT, "messages": chat, "tools": [tool]}, AGENT_LOOP)
    assert second["choices"][0]["finish_reason"] == "stop" and second["choices"][0]["message"]["content"]

    items: list[dict[str, Any]] = [{"role": "user", "content": WEATHER}]
    first = _post(provider, "/v1/responses", {"model": GPT, "input": items}, AGENT_LOOP)
    (fc,) = first["output"]
    assert fc["type"] == "function_call"
    items += [fc, {"type": "function_call_output", "call_id": fc["call_id"], "output": "Sunny."}]
    second = _post(provider, "/v1/responses", {"model": GPT, "input": items}, AGENT_LOOP)
    assert [o["type"] for o in second["output"]] == ["message"]

    ant = {"x-api-key": ANT_KEY, "anthropic-version": "2023-06-01", **AGENT_LOOP}
    msgs: list[dict[str, Any]] = [{"role": "user", "content": WEATHER}]
    first = _post(provider, "/v1/messages", {"model": CLAUDE, "max_tokens": 4096, "messages": msgs}, ant)
    (use,) = first["content"]
    assert use["type"] == "tool_use" and first["stop_reason"] == "tool_use"
    result = {"type": "tool_result", "tool_use_id": use["id"], "content": "Sunny."}
    msgs += [{"role": "assistant", "content": first["content"]}, {"role": "user", "content": [result]}]
    second = _post(provider, "/v1/messages", {"model": CLAUDE, "max_tokens": 4096, "messages": msgs}, ant)
    assert [b["type"] for b in second["content"]] == ["text"] and second["stop_reason"] == "end_turn"


def test_a_streamed_answer_does_not_depend_on_stream_options(provider: FakeProvider) -> None:
    """otel-llm asks for ``include_usage`` on streams that do not: the model's answer must stay the same."""

    def streamed(headers: dict[str, str], **extra: Any) -> tuple[str, str]:
        body = {"model": GPT, "messages": [{"role": "user", "content": WEATHER}], "stream": True, **extra}
        with httpx.stream("POST", provider.url + "/v1/chat/completions", json=body, headers=headers) as reply:
            events = [json.loads(line[6:]) for line in reply.iter_lines() if line.startswith("data: {")]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c["choices"])
        calls = "".join(
            tc["function"].get("arguments") or ""
            for c in events
            if c["choices"]
            for tc in c["choices"][0]["delta"].get("tool_calls") or ()
        )
        return text, calls

    for headers in ({}, TOOL_CALL):
        assert streamed(headers) == streamed(headers, stream_options={"include_usage": True})
        assert any(streamed(headers))
