"""The GenAI conventions, complete: capture modes, events through the Logs API, message fidelity of every
wire format at both layers (tool calls, multimodal parts, refusals, instructions), request parameters
wherever the SDK takes them, and ``responses.retrieve`` as ``fetch_response``. Real clients (openai,
anthropic, httpx) against the local provider; telemetry read back through in-memory exporters."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from otel_llm import ConfigError, LLMInstrumentor
from otel_llm._setup import setup_logger_provider
from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

Instrument = Callable[..., Telemetry]

MSG = [{"role": "user", "content": "What is the weather like in Lisbon today?"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_weather",
            "description": "Current weather of a city.",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]
TOOL_CALL = {"x-fake-answer": "tool_call"}
REFUSAL = {"x-fake-answer": "refusal"}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(40))).decode()


def client(provider: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)


def aclient(provider: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)


def content(span: Any, key: str) -> Any:
    return json.loads(span.attributes[key])


def parts_of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [p for m in messages for p in m["parts"] if p["type"] == kind]


# --------------------------------------------------------------------------------------------------
# 1. the standard instrumentor arguments


def test_every_standard_instrumentor_argument_is_accepted(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(skip_dep_check=True, raise_exception_on_conflict=False, capture_content="SPAN_ONLY")
    client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    assert t.span().attributes["gen_ai.operation.name"] == "chat"


def test_a_misspelt_option_still_fails_at_configuration_time() -> None:
    with pytest.raises(ConfigError, match="capture_contnet"):
        LLMInstrumentor().instrument(logger_provider=None, capture_contnet="SPAN_ONLY")
    assert not LLMInstrumentor().is_instrumented_by_opentelemetry
    with pytest.raises(ConfigError, match="OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT"):
        from otel_llm.config import Config

        Config.load({}, env={"OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT": "sometimes"})


def test_the_logs_exporter_is_validated_and_set_up_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="OTEL_LOGS_EXPORTER"):
        setup_logger_provider({"OTEL_LOGS_EXPORTER": "kafka"}, install=False)
    with pytest.raises(ConfigError, match="PROTOCOL"):
        setup_logger_provider({"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "carrier-pigeon"}, install=False)
    for env in ({"OTEL_LOGS_EXPORTER": "none"}, {"OTEL_LOGS_EXPORTER": "console"}, {}):
        assert setup_logger_provider(env, install=False) is None  # valid, and nothing installed


# --------------------------------------------------------------------------------------------------
# 2. capture modes and events


def test_content_is_off_by_default_and_no_event_is_emitted(provider: FakeProvider, telemetry: Telemetry) -> None:
    client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, tools=TOOLS, extra_headers=TOOL_CALL)
    a = telemetry.span().attributes
    assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"} & set(a)
    assert telemetry.events() == []


def test_span_only_puts_content_on_the_span_and_emits_no_event(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    a = t.span().attributes
    assert content(t.span(), "gen_ai.input.messages")[0]["parts"][0]["content"] == MSG[0]["content"]
    assert "gen_ai.output.messages" in a
    assert t.events() == []


def test_event_only_emits_one_correlated_event_and_keeps_content_off_the_span(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(capture_content="EVENT_ONLY")
    result = client(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, tools=TOOLS, temperature=0.2, extra_headers=TOOL_CALL
    )
    span = t.span()
    assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.definitions"} & set(span.attributes)
    (event,) = t.events()
    record = event.log_record
    assert record.event_name == "gen_ai.client.inference.operation.details"
    assert record.trace_id == span.context.trace_id and record.span_id == span.context.span_id
    a = record.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "gpt-4.1"
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.response.id"] == result.id
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    # content as structured values, not JSON text
    assert a["gen_ai.input.messages"][0]["parts"][0]["content"] == MSG[0]["content"]
    (call,) = parts_of(list(a["gen_ai.output.messages"]), "tool_call")
    wire = result.choices[0].message.tool_calls[0]
    assert call["id"] == wire.id and call["name"] == "lookup_weather"
    assert dict(call["arguments"]) == json.loads(wire.function.arguments)
    assert a["gen_ai.tool.definitions"][0]["name"] == "lookup_weather"


def test_span_and_event_records_both(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_AND_EVENT")
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, stream=True)
        if c.choices
    )
    span = t.span()
    assert content(span, "gen_ai.output.messages")[0]["parts"][0]["content"] == text
    (event,) = t.events()
    assert event.log_record.attributes["gen_ai.output.messages"][0]["parts"][0]["content"] == text


def test_emit_event_without_content_gives_an_event_without_content(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(emit_event=True)
    client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    (event,) = t.events()
    a = event.log_record.attributes
    assert a["gen_ai.operation.name"] == "chat" and "gen_ai.input.messages" not in a
    assert "gen_ai.input.messages" not in t.span().attributes


def test_events_use_the_global_logger_provider_when_none_is_given(provider: FakeProvider) -> None:
    from opentelemetry import _logs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.trace import TracerProvider

    logs = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    before = _logs._internal._LOGGER_PROVIDER  # type: ignore[attr-defined]
    _logs._internal._LOGGER_PROVIDER = lp  # type: ignore[attr-defined]
    inst = LLMInstrumentor()
    try:
        inst.instrument(tracer_provider=TracerProvider(), capture_content="EVENT_ONLY")
        client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    finally:
        inst.uninstrument()
        _logs._internal._LOGGER_PROVIDER = before  # type: ignore[attr-defined]
    (record,) = logs.get_finished_logs()
    assert record.log_record.event_name == "gen_ai.client.inference.operation.details"


def test_embeddings_and_fetches_emit_no_inference_event(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="EVENT_ONLY")
    c = client(provider)
    c.embeddings.create(model="text-embedding-3-small", input="hello")
    c.responses.retrieve("resp_0123")
    assert len(t.spans()) == 2 and t.events() == []


# --------------------------------------------------------------------------------------------------
# 3. message fidelity: OpenAI chat


def test_chat_tool_call_reply_and_tool_definitions(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    result = client(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, tools=TOOLS, extra_headers=TOOL_CALL
    )
    span = t.span()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    (out,) = content(span, "gen_ai.output.messages")
    wire = result.choices[0].message.tool_calls[0]
    assert out["role"] == "assistant" and out["finish_reason"] == "tool_call"
    assert out["parts"] == [
        {
            "type": "tool_call",
            "id": wire.id,
            "name": "lookup_weather",
            "arguments": json.loads(wire.function.arguments),
        }
    ]
    (tool,) = content(span, "gen_ai.tool.definitions")
    assert tool["type"] == "function" and tool["name"] == "lookup_weather"
    assert tool["description"] == "Current weather of a city."


def test_streamed_chat_tool_call_deltas_are_assembled(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    chunks = list(
        client(provider).chat.completions.create(
            model="gpt-4.1", messages=MSG, tools=TOOLS, stream=True, extra_headers=TOOL_CALL
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) > 2  # the arguments really came in pieces
    arguments = "".join(d.function.arguments or "" for d in deltas)
    (call,) = parts_of(content(t.span(), "gen_ai.output.messages"), "tool_call")
    assert call["id"] == deltas[0].id and call["name"] == "lookup_weather"
    assert call["arguments"] == json.loads(arguments)


def test_chat_history_keeps_tool_calls_results_system_messages_and_names(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    history = [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "Weather in Lisbon?", "name": "ana"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "lookup_weather", "arguments": '{"location": "Lisbon"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
    ]
    client(provider).chat.completions.create(model="gpt-4.1", messages=history, tools=TOOLS)
    span = t.span()
    assert "gen_ai.system_instructions" not in span.attributes  # the history's system message stays in it
    msgs = content(span, "gen_ai.input.messages")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    assert msgs[1]["name"] == "ana"
    assert msgs[2]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "lookup_weather", "arguments": {"location": "Lisbon"}}
    ]
    (result,) = msgs[3]["parts"]
    assert result["type"] == "tool_call_response" and result["id"] == "call_1"
    assert "21" in json.dumps(result["response"])


def test_chat_images_audio_and_files_become_blob_uri_and_file_parts(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Compare these"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "input_audio", "input_audio": {"data": base64.b64encode(b"RIFF....").decode(), "format": "wav"}},
            {"type": "file", "file": {"file_id": "file-abc"}},
        ],
    }
    client(provider).chat.completions.create(model="gpt-4.1", messages=[message])
    (msg,) = content(t.span(), "gen_ai.input.messages")
    kinds = [p["type"] for p in msg["parts"]]
    assert kinds == ["text", "blob", "uri", "blob", "file"]
    blob, uri, audio, file = msg["parts"][1:]
    assert blob["modality"] == "image" and blob["mime_type"] == "image/png" and blob["content"] == PNG
    assert uri["uri"] == "https://example.com/cat.jpg" and uri["modality"] == "image"
    assert audio["modality"] == "audio" and audio["mime_type"] == "audio/wav"
    assert file["file_id"] == "file-abc"


def test_chat_refusal_is_recorded(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    c = client(provider)
    result = c.chat.completions.create(model="gpt-4.1", messages=MSG, extra_headers=REFUSAL)
    streamed = "".join(
        ch.choices[0].delta.refusal or ""
        for ch in c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, extra_headers=REFUSAL)
        if ch.choices
    )
    whole, stream = t.spans()
    assert parts_of(content(whole, "gen_ai.output.messages"), "text")[0]["content"] == result.choices[0].message.refusal
    assert [p["content"] for p in parts_of(content(stream, "gen_ai.output.messages"), "text")] == [streamed]


def test_async_chat_stream_with_include_usage_records_its_text_once(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(capture_content="SPAN_ONLY")

    async def run() -> str:
        stream = await aclient(provider).chat.completions.create(
            model="gpt-4.1", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    text = asyncio.run(run())
    (out,) = content(t.span(), "gen_ai.output.messages")
    assert out["parts"] == [{"type": "text", "content": text}]


def test_legacy_completions_prompt_and_text(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    result = client(provider).completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")
    span = t.span()
    assert content(span, "gen_ai.input.messages")[0]["parts"][0]["content"] == "Once upon a time"
    assert content(span, "gen_ai.output.messages")[0]["parts"][0]["content"] == result.choices[0].text


# --------------------------------------------------------------------------------------------------
# 3. message fidelity: Responses


def test_responses_instructions_function_call_and_its_finish_reason(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    tools = [{"type": "function", "name": "lookup_weather", "parameters": {"type": "object", "properties": {}}}]
    result = client(provider).responses.create(
        model="gpt-4.1", instructions="Be brief.", input="Weather?", tools=tools, extra_headers=TOOL_CALL
    )
    span = t.span()
    assert span.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    assert content(span, "gen_ai.tool.definitions")[0]["name"] == "lookup_weather"
    (call,) = parts_of(content(span, "gen_ai.output.messages"), "tool_call")
    item = result.output[0]
    assert call["id"] == item.call_id and call["name"] == "lookup_weather"
    assert call["arguments"] == json.loads(item.arguments)


def test_responses_tool_loop_history_keeps_calls_and_outputs(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    history = [
        {"role": "user", "content": "Weather in Lisbon?"},
        {"type": "function_call", "call_id": "call_9", "name": "lookup_weather", "arguments": '{"location":"Lisbon"}'},
        {"type": "function_call_output", "call_id": "call_9", "output": '{"temp_c": 21}'},
    ]
    client(provider).responses.create(model="gpt-4.1", input=history)  # type: ignore[arg-type]
    msgs = content(t.span(), "gen_ai.input.messages")
    (call,) = parts_of(msgs, "tool_call")
    (resp,) = parts_of(msgs, "tool_call_response")
    assert call["id"] == "call_9" and call["arguments"] == {"location": "Lisbon"}
    assert resp["id"] == "call_9"


def test_responses_stream_text_is_recorded_once(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    text = ""
    for ev in client(provider).responses.create(model="gpt-4.1", input="Hello there", stream=True):
        if ev.type == "response.output_text.delta":
            text += ev.delta
    (out,) = content(t.span(), "gen_ai.output.messages")
    assert out["parts"] == [{"type": "text", "content": text}] and out["finish_reason"] == "stop"


def test_responses_streamed_function_call_and_refusal(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    c = client(provider)
    with c.responses.stream(model="gpt-4.1", input="Weather?", extra_headers=TOOL_CALL) as stream:
        final = stream.get_final_response()
    with c.responses.stream(model="gpt-4.1", input="Do it", extra_headers=REFUSAL) as stream:
        refused = stream.get_final_response()
    calls, refusal = t.spans()
    assert calls.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    (call,) = parts_of(content(calls, "gen_ai.output.messages"), "tool_call")
    assert call["id"] == final.output[0].call_id and call["arguments"] == json.loads(final.output[0].arguments)
    text = refused.output[0].content[0].refusal  # type: ignore[union-attr]
    assert [p["content"] for p in parts_of(content(refusal, "gen_ai.output.messages"), "text")] == [text]


# --------------------------------------------------------------------------------------------------
# 3. message fidelity: Anthropic and Gemini, SDK and raw HTTP


def test_anthropic_system_tool_use_and_tool_result(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    a = anthropic.Anthropic(base_url=provider.url, api_key="k", max_retries=0)
    history: list[Any] = [
        {"role": "user", "content": "Weather in Quito?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"c": "Quito"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
    ]
    tools: Any = [{"name": "w", "description": "weather", "input_schema": {"type": "object"}}]
    with a.messages.stream(
        model="claude-sonnet-4.5",
        max_tokens=64,
        system="Be brief.",
        messages=history,
        tools=tools,
        extra_headers=TOOL_CALL,
    ) as stream:
        final = stream.get_final_message()
    span = t.span()
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    msgs = content(span, "gen_ai.input.messages")
    assert parts_of(msgs, "tool_call")[0]["id"] == "toolu_1"
    assert parts_of(msgs, "tool_call_response")[0]["id"] == "toolu_1"
    assert content(span, "gen_ai.tool.definitions")[0]["name"] == "w"
    (call,) = parts_of(content(span, "gen_ai.output.messages"), "tool_call")
    block = final.content[0]
    assert call["id"] == block.id and call["arguments"] == block.input  # type: ignore[union-attr]


def test_gemini_raw_http_function_call_and_system_instruction(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    body = {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]}
        ],
        "tools": [{"functionDeclarations": [{"name": "lookup_weather", "description": "w"}]}],
    }
    url = provider.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    with httpx.Client() as h, h.stream("POST", url, json=body, headers=TOOL_CALL) as r:
        raw = b"".join(r.iter_bytes())
    wire = json.loads(raw.split(b"data: ", 1)[1].split(b"\r\n", 1)[0])
    span = t.span()
    assert span.attributes["otel_llm.layer"] == "http"
    assert content(span, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    (msg,) = content(span, "gen_ai.input.messages")
    assert msg["parts"][1]["type"] == "blob" and msg["parts"][1]["content"] == PNG
    (call,) = parts_of(content(span, "gen_ai.output.messages"), "tool_call")
    fc = wire["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call["name"] == "lookup_weather" and call["arguments"] == fc["args"]


def test_raw_http_chat_stream_tool_call(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    body = {"model": "gpt-4.1", "messages": MSG, "tools": TOOLS, "stream": True}
    with (
        httpx.Client() as h,
        h.stream("POST", provider.url + "/v1/chat/completions", json=body, headers=TOOL_CALL) as r,
    ):
        for _ in r.iter_bytes():
            pass
    span = t.span()
    (call,) = parts_of(content(span, "gen_ai.output.messages"), "tool_call")
    assert call["name"] == "lookup_weather" and set(call["arguments"]) == {"location", "unit"}
    assert content(span, "gen_ai.tool.definitions")[0]["name"] == "lookup_weather"


# --------------------------------------------------------------------------------------------------
# 3. the size cap: content stays bounded and valid JSON


def test_a_large_inline_image_never_makes_the_span_unbounded(provider: FakeProvider, instrument: Instrument) -> None:
    cap = 2000
    t = instrument(capture_content="SPAN_AND_EVENT", content_max_length=cap)
    big = base64.b64encode(bytes(300_000)).decode()
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{big}"}},
        ],
    }
    client(provider).chat.completions.create(model="gpt-4.1", messages=[message])
    raw = t.span().attributes["gen_ai.input.messages"]
    assert len(raw) <= cap
    (msg,) = json.loads(raw)  # still valid JSON, still the same shape
    text, blob = msg["parts"]
    assert text["content"] == "What is in this picture?"  # the short text is kept whole
    assert blob["type"] == "blob" and blob["content"].endswith("…[truncated]")
    (event,) = t.events()
    assert len(json.dumps(event.log_record.attributes["gen_ai.input.messages"], ensure_ascii=False)) <= cap + 200


# --------------------------------------------------------------------------------------------------
# 4. request parameters wherever the SDK takes them; gen_ai.output.type


def test_extra_body_parameters_are_read(provider: FakeProvider, telemetry: Telemetry) -> None:
    client(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, extra_body={"max_completion_tokens": 33, "service_tier": "flex"}
    )
    a = telemetry.span().attributes
    assert a["gen_ai.request.max_tokens"] == 33 and a["openai.request.service_tier"] == "flex"


class Weather(BaseModel):
    city: str
    temp_c: float


def test_output_type_for_response_format_text_format_and_parse(provider: FakeProvider, telemetry: Telemetry) -> None:
    c = client(provider)
    c.chat.completions.create(model="gpt-4.1", messages=MSG, response_format={"type": "json_object"})
    c.responses.create(model="gpt-4.1", input="hi", text={"format": {"type": "text"}})
    c.responses.create(
        model="gpt-4.1",
        input="hi",
        text={"format": {"type": "json_schema", "name": "w", "schema": Weather.model_json_schema()}},
    )
    with pytest.raises(Exception):  # noqa: B017 - the synthetic answer is not JSON; the call is still recorded
        c.responses.parse(model="gpt-4.1", input="hi", text_format=Weather)
    types = [s.attributes.get("gen_ai.output.type") for s in telemetry.spans()]
    assert types == ["json", "text", "json", "json"]


# --------------------------------------------------------------------------------------------------
# 5. responses.retrieve as fetch_response


def test_responses_retrieve_is_a_fetch_response_without_usage_or_cost(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    c = client(provider)
    fetched = c.responses.retrieve("resp_00ab")
    events = list(c.responses.retrieve("resp_00ab", stream=True, starting_after=2))
    whole, streamed = t.spans()
    for span in (whole, streamed):
        a = span.attributes
        assert span.name == "fetch_response" and a["gen_ai.operation.name"] == "fetch_response"
        assert a["gen_ai.response.id"] == "resp_00ab" and a["openai.api.type"] == "responses"
        assert a["gen_ai.response.status"] == "completed" and a["gen_ai.response.finish_reasons"] == ("stop",)
        assert not {"gen_ai.usage.input_tokens", "gen_ai.request.model", "gen_ai.usage.cost.amount"} & set(a)
        assert "gen_ai.request.stream" not in a
    assert whole.attributes["gen_ai.response.model"] == fetched.model
    assert content(whole, "gen_ai.output.messages")[0]["parts"][0]["content"] == fetched.output_text
    assert content(whole, "gen_ai.system_instructions") == [{"type": "text", "content": "Answer briefly."}]
    assert streamed.attributes["gen_ai.request.stream_cursor"] == "2" and events
    assert not t.points("gen_ai.client.token.usage")


def test_an_incomplete_stored_response_reports_its_status(provider: FakeProvider, telemetry: Telemetry) -> None:
    client(provider).responses.retrieve("resp_77", extra_headers={"x-fake-status": "incomplete"})
    a = telemetry.span().attributes
    assert a["gen_ai.response.status"] == "incomplete" and a["gen_ai.response.finish_reasons"] == ("length",)
    assert "error.type" not in a


def test_an_exception_of_the_callers_code_inside_with_stream_fails_the_call(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    stream = client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, stream=True)
    with pytest.raises(LookupError, match="mine"), stream:
        for _ in stream:
            raise LookupError("mine")
    span = telemetry.span()
    assert span.attributes["error.type"] == "LookupError" and span.status.status_code.name == "ERROR"


def test_an_exception_of_the_callers_code_inside_a_stream_manager_fails_the_call(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    c = client(provider)
    with pytest.raises(LookupError), c.responses.stream(model="gpt-4.1", input="hi") as stream:
        for _ in stream:
            raise LookupError("mine")

    async def run() -> None:
        with pytest.raises(KeyError):
            async with aclient(provider).chat.completions.stream(model="gpt-4.1", messages=MSG) as chat:
                async for _ in chat:
                    raise KeyError("mine")

    asyncio.run(run())
    assert [s.attributes["error.type"] for s in telemetry.spans()] == ["LookupError", "KeyError"]


def test_with_events_on_a_logger_provider_is_set_up_from_the_environment() -> None:
    from opentelemetry import _logs
    from opentelemetry.sdk._logs import LoggerProvider

    before = _logs._internal._LOGGER_PROVIDER  # type: ignore[attr-defined]
    before_once = _logs._internal._LOGGER_PROVIDER_SET_ONCE._done  # type: ignore[attr-defined]
    _logs._internal._LOGGER_PROVIDER = None  # type: ignore[attr-defined]
    _logs._internal._LOGGER_PROVIDER_SET_ONCE._done = False  # type: ignore[attr-defined]
    try:
        made = setup_logger_provider({"OTEL_LOGS_EXPORTER": "console"})
        assert isinstance(made, LoggerProvider) and _logs.get_logger_provider() is made
        assert setup_logger_provider({"OTEL_LOGS_EXPORTER": "console"}) is None  # one already set: kept
    finally:
        _logs._internal._LOGGER_PROVIDER = before  # type: ignore[attr-defined]
        _logs._internal._LOGGER_PROVIDER_SET_ONCE._done = before_once  # type: ignore[attr-defined]


_text = st.text(alphabet=st.sampled_from('ab"\\\n\x01é😀 '), max_size=300)
_messages = st.lists(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["user", "assistant"]),
            "parts": st.lists(st.fixed_dictionaries({"type": st.just("text"), "content": _text}), max_size=4),
        }
    ),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(_messages, st.integers(min_value=2, max_value=700))
def test_capped_content_is_valid_json_within_the_limit_and_leaves_the_callers_value(
    messages: list[dict[str, Any]], limit: int
) -> None:
    from otel_llm.recorder import cap_content, cap_json

    before = json.dumps(messages)
    text = cap_json(messages, limit)
    assert len(text) <= limit and isinstance(json.loads(text), list)
    value = cap_content(messages, limit)
    assert len(json.dumps(value, ensure_ascii=False, separators=(",", ":"))) <= limit
    assert json.dumps(messages) == before
    if len(json.dumps(messages, ensure_ascii=False, separators=(",", ":"))) <= limit:
        assert json.loads(text) == messages  # within the limit: whole


def test_a_failing_logger_provider_never_breaks_the_call_or_the_span(
    provider: FakeProvider, instrument: Instrument
) -> None:
    from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor

    class Broken(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            raise RuntimeError("exporter down")

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    lp = LoggerProvider()
    lp.add_log_record_processor(Broken())
    t = instrument(capture_content="SPAN_AND_EVENT", logger_provider=lp)
    result = client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    assert result.choices[0].message.content
    span = t.span()
    assert span.end_time is not None and "gen_ai.output.messages" in span.attributes


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_parallel_tool_calls_each_keep_their_id_and_arguments(
    stream: bool, provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    headers = {**TOOL_CALL, "x-fake-tool-calls": "3"}
    c = client(provider)
    if stream:
        calls: dict[int, dict[str, str]] = {}
        for chunk in c.chat.completions.create(
            model="gpt-4.1", messages=MSG, tools=TOOLS, stream=True, extra_headers=headers
        ):
            for d in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
                got = calls.setdefault(d.index, {"id": "", "arguments": ""})
                got["id"] = d.id or got["id"]
                got["arguments"] += d.function.arguments or ""
        wire = [(calls[i]["id"], json.loads(calls[i]["arguments"])) for i in sorted(calls)]
        with c.responses.stream(model="gpt-4.1", input="Weather?", extra_headers=headers) as rs:
            final = rs.get_final_response()
    else:
        result = c.chat.completions.create(model="gpt-4.1", messages=MSG, tools=TOOLS, extra_headers=headers)
        wire = [(tc.id, json.loads(tc.function.arguments)) for tc in result.choices[0].message.tool_calls]
        final = c.responses.create(model="gpt-4.1", input="Weather?", extra_headers=headers)
    chat, responses = t.spans()
    assert len(wire) == 3 and len({json.dumps(a) for _, a in wire}) == 3
    assert [(p["id"], p["arguments"]) for p in parts_of(content(chat, "gen_ai.output.messages"), "tool_call")] == wire
    items = [(i.call_id, json.loads(i.arguments)) for i in final.output]  # type: ignore[union-attr]
    got = [(p["id"], p["arguments"]) for p in parts_of(content(responses, "gen_ai.output.messages"), "tool_call")]
    assert len(items) == 3 and got == items
    assert responses.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)


def test_readable_reasoning_becomes_reasoning_parts(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    think = {"x-fake-answer": "reasoning"}
    c = client(provider)
    whole = c.chat.completions.create(model="deepseek-reasoner", messages=MSG, extra_headers=think)
    streamed = "".join(
        getattr(ch.choices[0].delta, "reasoning_content", None) or ""
        for ch in c.chat.completions.create(model="deepseek-reasoner", messages=MSG, stream=True, extra_headers=think)
        if ch.choices
    )
    r = c.responses.create(model="gpt-4.1", input="hi", extra_headers=think)
    a = anthropic.Anthropic(base_url=provider.url, api_key="k", max_retries=0)
    with a.messages.stream(
        model="claude-sonnet-4.5", max_tokens=64, messages=[{"role": "user", "content": "hi"}], extra_headers=think
    ) as stream:
        final = stream.get_final_message()
    spans = t.spans()
    thoughts = [[p["content"] for p in parts_of(content(s, "gen_ai.output.messages"), "reasoning")] for s in spans]
    expected = whole.choices[0].message.reasoning_content  # type: ignore[attr-defined]
    assert thoughts[0] == [expected] and thoughts[1] == [streamed] == [expected]
    assert thoughts[2] == [r.output[0].summary[0].text]  # type: ignore[union-attr]
    assert thoughts[3] == [final.content[0].thinking]  # type: ignore[union-attr]
    for s in spans:  # the answer's text is there too, once
        assert len(parts_of(content(s, "gen_ai.output.messages"), "text")) == 1
