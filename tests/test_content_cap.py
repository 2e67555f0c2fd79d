"""Content under the size cap: the work stays linear (counted, not timed), a long history keeps its
instructions and its newest messages and marks the cut middle, a reply is shortened and never emptied, the
result is always valid JSON within the cap; and content lands on a provider SDK's own span as on ours.
Real clients (openai, anthropic) against the local provider; telemetry read back through in-memory exporters."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from unittest import mock

import anthropic
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llm import _content
from otel_llm._content import cap_content, cap_json
from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

Instrument = Callable[..., Telemetry]
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions")


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def message(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"type": "text", "content": text}], "name": None}


def history(count: int) -> list[dict[str, Any]]:
    """A system message, then ``count`` short turns, the newest a user question."""
    turns = [message("user" if i % 2 == (count - 1) % 2 else "assistant", f"turn {i:05}: a line") for i in range(count)]
    return [message("system", "You are a terse assistant."), *turns]


def is_marker(msg: dict[str, Any]) -> bool:
    return msg["role"] == "system" and msg["parts"][0]["content"].endswith("messages truncated]")


def counted(call: Callable[[], Any]) -> tuple[int, int]:
    """(encodings, characters encoded) while ``call`` runs: every size the cap measures goes through
    ``_content._dumps``."""
    sizes: list[int] = []
    encode = _content._dumps

    def measured(value: Any) -> str:
        text = encode(value)
        sizes.append(len(text))
        return text

    with mock.patch.object(_content, "_dumps", side_effect=measured):
        call()
    return len(sizes), sum(sizes)


# --------------------------------------------------------------------------------------------------
# 1. the work is linear: counted, not timed


@pytest.mark.parametrize("cap", [300, 2000, 16384])
def test_a_long_history_costs_the_same_work_at_4000_and_40000_messages(cap: int) -> None:
    """The newest messages are read backwards only as far as the cap reaches: the same encodings, of the same
    size, whatever the history's length (the old cap re-encoded the whole list after dropping each message)."""
    work = []
    for count in (4_000, 40_000):
        value = history(count)
        before = compact(value)
        work.append(counted(lambda value=value: cap_json(value, cap, history=True)))
        work.append(counted(lambda value=value: cap_content(value, cap, history=True)))
        assert compact(value) == before  # the caller's messages are left as they were
    # the same encodings; a few more characters at 40,000 (five-digit turn numbers)
    assert work[0][0] == work[2][0] and work[1][0] == work[3][0], work
    assert work[2][1] - work[0][1] <= 100 and work[3][1] - work[1][1] <= 100, work
    calls, chars = work[0]
    assert chars <= 3 * cap + 400 and calls <= cap // 20 + 10, work


@pytest.mark.parametrize("kind", ["tools", "parts"])
def test_capping_any_long_list_encodes_a_bounded_multiple_of_its_size(kind: str) -> None:
    """Tool definitions or a reply of many parts, over the cap: a bounded number of full encodings, whatever the
    number of items (the old cap dropped the last item and re-encoded the rest, once per item)."""
    for count in (4_000, 40_000):
        if kind == "tools":
            value: Any = [{"type": "function", "name": f"tool_{i}", "description": "d" * 40} for i in range(count)]
        else:
            parts = [{"type": "text", "content": f"piece {i}"} for i in range(count)]
            value = [{"role": "assistant", "parts": parts, "finish_reason": "stop", "name": None}]
        _, chars = counted(lambda value=value: cap_json(value, 2000))
        assert chars <= 6 * len(compact(value)), (count, chars)
        capped = json.loads(cap_json(value, 2000) or "")
        assert capped  # the first items kept: never emptied to []
        if kind == "parts":
            assert capped[0]["parts"][-1]["content"].endswith("parts truncated]")


# --------------------------------------------------------------------------------------------------
# 2. what is kept: instructions, the newest messages, a marked middle; valid JSON within the cap


def test_a_4000_message_chat_keeps_its_instructions_and_latest_question_and_marks_the_cut(
    provider: FakeProvider, instrument: Instrument
) -> None:
    cap = 2000
    t = instrument(capture_content="SPAN_AND_EVENT", content_max_length=cap)
    chat: list[Any] = [{"role": "system", "content": "You are a terse assistant."}]
    chat += [{"role": "user" if i % 2 else "assistant", "content": f"turn {i}: a line"} for i in range(3999)]
    chat[-1] = {"role": "user", "content": "And what is the weather in Lisbon today, finally?"}
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4.1", messages=chat)
    raw = t.span().attributes["gen_ai.input.messages"]
    assert isinstance(raw, str) and len(raw) <= cap
    (event,) = t.events()
    structured = event.log_record.attributes["gen_ai.input.messages"]
    assert len(compact(structured)) <= cap
    for msgs in (json.loads(raw), json.loads(compact(structured))):
        assert msgs[0]["role"] == "system" and msgs[0]["parts"][0]["content"] == "You are a terse assistant."
        assert msgs[-1]["role"] == "user"
        assert msgs[-1]["parts"][0]["content"] == "And what is the weather in Lisbon today, finally?"
        assert msgs[-2]["parts"][0]["content"] == "turn 3997: a line"  # the turns before it, in order
        (marker,) = [m for m in msgs if is_marker(m)]
        assert msgs.index(marker) == 1
        kept = len(msgs) - 2  # of the 3,999 after the system message
        assert marker["parts"][0]["content"] == f"…[{3999 - kept} messages truncated]"


def test_a_long_reply_under_a_tiny_cap_is_shortened_never_emptied(
    provider: FakeProvider, instrument: Instrument
) -> None:
    cap = 100
    t = instrument(capture_content="SPAN_AND_EVENT", content_max_length=cap)
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "Tell me everything."}],
        extra_headers={"x-fake-fault": "huge", "x-fake-size": "20000"},
    )
    assert len(reply.choices[0].message.content or "") >= 20000
    raw = t.span().attributes["gen_ai.output.messages"]
    assert len(raw) <= cap
    (out,) = json.loads(raw)
    assert out["role"] == "assistant" and out["finish_reason"] == "stop"
    (event,) = t.events()
    (structured,) = event.log_record.attributes["gen_ai.output.messages"]
    assert structured["role"] == "assistant" and len(compact([structured])) <= cap


def test_a_reply_of_many_tool_calls_keeps_its_first_calls_and_marks_the_rest(
    provider: FakeProvider, instrument: Instrument
) -> None:
    cap = 400
    t = instrument(capture_content="SPAN_ONLY", content_max_length=cap)
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
    tools: Any = [{"type": "function", "function": {"name": "lookup_weather", "parameters": {"type": "object"}}}]
    client.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "Weather everywhere?"}],
        tools=tools,
        extra_headers={"x-fake-answer": "tool_call", "x-fake-tool-calls": "8"},
    )
    raw = t.span().attributes["gen_ai.output.messages"]
    assert len(raw) <= cap
    (out,) = json.loads(raw)
    calls = [p for p in out["parts"] if p["type"] == "tool_call"]
    assert calls and calls[0]["name"] == "lookup_weather"
    assert out["parts"][-1] == {"type": "text", "content": f"…[{8 - len(calls)} parts truncated]"}


def test_a_huge_newest_message_is_shortened_after_the_instructions_and_the_marker() -> None:
    value = [*history(10), message("user", "x" * 100_000)]
    raw = cap_json(value, 1000, history=True)
    assert raw is not None and len(raw) <= 1000
    msgs = json.loads(raw)
    assert msgs[0]["parts"][0]["content"] == "You are a terse assistant."
    assert is_marker(msgs[1]) and msgs[1]["parts"][0]["content"] == "…[10 messages truncated]"
    newest = msgs[-1]["parts"][0]["content"]
    assert newest.startswith("xxx") and newest.endswith("…[truncated]")


def test_a_big_message_at_the_cut_is_shortened_rather_than_dropped() -> None:
    value = [*history(10), message("user", "y" * 100_000), message("assistant", "ok"), message("user", "and?")]
    msgs = json.loads(cap_json(value, 4000, history=True) or "")
    assert [m["parts"][0]["content"] for m in msgs[-2:]] == ["ok", "and?"]
    at_cut = msgs[-3]["parts"][0]["content"]
    assert at_cut.startswith("yyy") and at_cut.endswith("…[truncated]")
    assert is_marker(msgs[1]) and msgs[1]["parts"][0]["content"] == "…[10 messages truncated]"


_text = st.text(alphabet=st.sampled_from('ab"\\\n\x01é😀 \ud800\udfff'), max_size=300)
_message = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["system", "user", "assistant"]),
        "parts": st.lists(st.fixed_dictionaries({"type": st.just("text"), "content": _text}), max_size=4),
        "name": st.none(),
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_message, min_size=1, max_size=80), st.integers(min_value=0, max_value=3000))
def test_a_capped_history_is_valid_json_within_the_cap_and_keeps_the_newest_message(
    messages: list[dict[str, Any]], limit: int
) -> None:
    before = repr(messages)
    text = cap_json(messages, limit, history=True)
    value = cap_content(messages, limit, history=True)
    assert repr(messages) == before  # the caller's value is never changed
    if limit < 2:
        assert text is None and value is None
        return
    assert text is not None and len(text) <= limit
    text.encode("utf-8")  # no lone surrogate left: exportable
    capped = json.loads(text)
    assert isinstance(capped, list) and len(compact(value)) <= limit
    compact(value).encode("utf-8")
    newest = dict(messages[-1], parts=[])
    if len(compact([newest])) <= limit:  # the newest message always stays, shortened if need be
        assert capped and capped[-1]["role"] == messages[-1]["role"]
    whole = compact(messages)
    if len(whole) <= limit and whole.encode("utf-8", "replace").decode() == whole:
        assert capped == messages and value is messages


# --------------------------------------------------------------------------------------------------
# 3. content on a provider SDK's own span (anthropic 2.x makes one)


def test_content_lands_on_the_anthropic_sdks_own_span(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    client = anthropic.Anthropic(
        base_url=provider.url,
        api_key="sk-ant-test",
        max_retries=0,
        open_telemetry={"tracer_provider": t.tracer_provider},
    )
    tools: Any = [{"name": "w", "description": "weather", "input_schema": {"type": "object"}}]
    client.messages.create(
        model="claude-sonnet-4.5",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Weather in Quito?"}],
        tools=tools,
        extra_headers={"x-fake-answer": "tool_call"},
    )
    spans = t.exporter.get_finished_spans()
    assert [s.instrumentation_scope.name for s in spans] == ["com.anthropic.sdk.python"]  # its span, not ours
    a = spans[0].attributes
    assert json.loads(a["gen_ai.input.messages"])[0]["parts"] == [{"type": "text", "content": "Weather in Quito?"}]
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "w"
    (out,) = json.loads(a["gen_ai.output.messages"])
    assert out["parts"][0]["type"] == "tool_call" and out["parts"][0]["name"] == "w"


def test_no_content_on_the_anthropic_sdks_own_span_without_opt_in(provider: FakeProvider, telemetry: Telemetry) -> None:
    client = anthropic.Anthropic(
        base_url=provider.url,
        api_key="sk-ant-test",
        max_retries=0,
        open_telemetry={"tracer_provider": telemetry.tracer_provider},
    )
    client.messages.create(
        model="claude-sonnet-4.5", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Hi"}]
    )
    (span,) = telemetry.exporter.get_finished_spans()
    assert not {*CONTENT_KEYS, "gen_ai.output.messages"} & set(span.attributes or {})


def test_span_only_content_stays_off_the_event(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY", emit_event=True)
    client = openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "Hi"}])
    assert "gen_ai.input.messages" in t.span().attributes
    (event,) = t.events()
    assert not {*CONTENT_KEYS, "gen_ai.output.messages"} & set(event.log_record.attributes or {})


def test_content_an_outer_genai_span_recorded_itself_is_kept(provider: FakeProvider, instrument: Instrument) -> None:
    """Another instrumentation's GenAI span around a raw HTTP call: we add the content it lacks and leave
    the content it recorded as it is."""
    t = instrument(capture_content="SPAN_ONLY")
    tracer = t.tracer_provider.get_tracer("another.instrumentation")
    body = {
        "model": "gpt-4.1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}],
    }
    with (
        tracer.start_as_current_span(
            "chat gpt-4.1", attributes={"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[owner's own]"}
        ),
        httpx.Client() as http,
    ):
        http.post(provider.url + "/v1/chat/completions", json=body, headers={"authorization": "Bearer k"}).json()
    (span,) = t.exporter.get_finished_spans()
    a = span.attributes
    assert a["gen_ai.input.messages"] == "[owner's own]"
    assert json.loads(a["gen_ai.tool.definitions"])[0]["name"] == "w"
    (out,) = json.loads(a["gen_ai.output.messages"])
    assert out["role"] == "assistant" and out["parts"][0]["type"] == "text"
