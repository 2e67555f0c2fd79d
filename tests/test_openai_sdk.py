"""The real openai SDK against the local provider: one span and one set of metric points per call."""

from __future__ import annotations

import asyncio
import gc
import json
from typing import Any

import openai
import pytest

from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry


def client(provider: FakeProvider, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test-SECRET", max_retries=0, **kw)  # type: ignore[arg-type]


def aclient(provider: FakeProvider, **kw: object) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test-SECRET", max_retries=0, **kw)  # type: ignore[arg-type]


MSG = [{"role": "user", "content": "Say hello to the observability team, please, in a few words."}]


def test_a_chat_completion_gives_one_span_with_the_conventions_attributes(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    result = client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, temperature=0.3, max_tokens=40)
    span = telemetry.span()
    a = span.attributes
    assert span.name == "chat gpt-4.1" and span.kind.name == "CLIENT"
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4.1" and a["gen_ai.response.model"] == result.model
    assert a["gen_ai.response.id"] == result.id
    assert a["gen_ai.response.finish_reasons"] == (result.choices[0].finish_reason,)
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert a["gen_ai.request.temperature"] == 0.3 and a["gen_ai.request.max_tokens"] == 40
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == provider.port
    assert a["otel_llm.layer"] == "sdk" and "error.type" not in a
    assert "gen_ai.request.stream" not in a
    duration = telemetry.point("gen_ai.client.operation.duration", gen_ai__request__model="gpt-4.1")
    assert duration.count == 1 and "error.type" not in duration.attributes
    assert set(duration.attributes) <= {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "server.address",
        "server.port",
    }
    assert telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="input").sum == result.usage.prompt_tokens
    assert (
        telemetry.point("gen_ai.client.token.usage", gen_ai__token__type="output").sum == result.usage.completion_tokens
    )
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]


@pytest.mark.parametrize("runtime", ["own ContextVar", "API calls"])
def test_the_span_is_current_during_the_http_request_and_not_after(
    provider: FakeProvider, telemetry: Telemetry, runtime: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace

    from otel_llm._patches import _common

    if runtime == "API calls":  # a runtime context other than the SDK's ContextVar one: attach through the API
        monkeypatch.setattr(_common, "_VAR", None)
    seen = []
    http = openai.DefaultHttpxClient(event_hooks={"request": [lambda request: seen.append(trace.get_current_span())]})
    with telemetry.tracer_provider.get_tracer("app").start_as_current_span("handler") as parent:
        client(provider, http_client=http).chat.completions.create(model="gpt-4.1", messages=MSG)
        assert trace.get_current_span() is parent  # detached: the caller's span is current again
    span = telemetry.span()
    assert len(seen) == 1 and seen[0].get_span_context().span_id == span.context.span_id
    assert span.parent is not None and span.parent.span_id == parent.get_span_context().span_id
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_a_client_whose_base_url_changes_is_recorded_at_its_new_server(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    c = client(provider)
    c.chat.completions.create(model="gpt-4.1", messages=MSG)
    c.base_url = f"http://localhost:{provider.port}/v1"
    c.chat.completions.create(model="gpt-4.1", messages=MSG)
    servers = [s.attributes["server.address"] for s in telemetry.exporter.get_finished_spans()]
    assert servers == ["127.0.0.1", "localhost"]


async def test_an_async_chat_completion_is_recorded_the_same_way(provider: FakeProvider, telemetry: Telemetry) -> None:
    result = await aclient(provider).chat.completions.create(model="gpt-4.1-mini", messages=MSG)
    a = telemetry.span().attributes
    assert (
        a["gen_ai.request.model"] == "gpt-4.1-mini"
        and a["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    )


def test_a_stream_without_include_usage_gets_usage_but_the_caller_sees_only_its_chunks(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    provider.requests.clear()
    stream = client(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "22"}
    )
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(c.choices for c in chunks), "the usage-only chunk we asked for must stay hidden"
    assert all(c.usage is None for c in chunks)
    sent = json.loads(provider.requests[-1].body)
    assert sent["stream_options"] == {"include_usage": True}
    span = telemetry.span()
    a = span.attributes
    assert a["gen_ai.request.stream"] is True and a["otel_llm.stream.outcome"] == "completed"
    assert a["gen_ai.usage.output_tokens"] > 0 and a["gen_ai.response.time_to_first_chunk"] > 0
    assert telemetry.point("gen_ai.client.operation.time_to_first_chunk").count == 1
    tpoc = telemetry.point("gen_ai.client.operation.time_per_output_chunk")
    assert tpoc.count == len(chunks) - 1
    # the gaps add up to the time from the first chunk to the last, within the call's duration
    duration = telemetry.point("gen_ai.client.operation.duration").sum
    assert tpoc.min >= 0 and 0 < tpoc.sum < duration - a["gen_ai.response.time_to_first_chunk"] + 1e-6


def test_the_request_options_a_caller_hands_the_sdk_are_left_as_they_were(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    """otel-llm sends ``stream_options`` by putting a body with it in the options for the length of the call
    (the SDK copies them before it reads them): the caller's options object, here one made by hand and used
    twice (the SDK's low-level ``request``), holds its own body again after each call, the first call's
    included, and the second is asked for usage exactly as the first."""
    from openai._models import FinalRequestOptions

    options = FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={"model": "gpt-4.1", "messages": MSG, "stream": True}
    )
    body = options.json_data
    c = client(provider)
    for _ in range(2):
        provider.requests.clear()
        stream = c.request(
            openai.types.chat.ChatCompletionChunk,
            options,
            stream=True,
            stream_cls=openai.Stream[openai.types.chat.ChatCompletionChunk],
        )
        assert options.json_data is body and "stream_options" not in body
        chunks = list(stream)
        assert chunks and all(chunk.choices for chunk in chunks)
        assert json.loads(provider.requests[-1].body)["stream_options"] == {"include_usage": True}
        assert telemetry.span().attributes["gen_ai.usage.output_tokens"] > 0
        telemetry.exporter.clear()


def test_a_caller_that_asks_for_usage_itself_sees_the_usage_chunk(provider: FakeProvider, telemetry: Telemetry) -> None:
    chunks = list(
        client(provider).chat.completions.create(
            model="gpt-4.1", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert telemetry.span().attributes["gen_ai.usage.input_tokens"] == chunks[-1].usage.prompt_tokens


def test_include_usage_can_be_switched_off_and_then_tokens_stay_unset(provider: FakeProvider, instrument) -> None:  # type: ignore[no-untyped-def]
    t = instrument(include_usage=False)
    provider.requests.clear()
    list(client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, stream=True))
    assert "stream_options" not in json.loads(provider.requests[-1].body)
    a = t.span().attributes
    assert "gen_ai.usage.input_tokens" not in a and "gen_ai.usage.cost.amount" not in a
    assert t.points("gen_ai.client.token.usage") == []
    assert t.point("otel_llm.client.operation.unpriced").value == 1


async def test_an_async_stream_ends_its_span_once_when_exhausted(provider: FakeProvider, telemetry: Telemetry) -> None:
    stream = await aclient(provider).chat.completions.create(model="gpt-4.1", messages=MSG, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    n = 0
    async for chunk in stream:
        assert chunk.choices
        n += 1
    assert n > 1
    assert telemetry.span().attributes["otel_llm.stream.outcome"] == "completed"


def test_next_and_a_for_loop_read_one_stream_together_and_every_chunk_counts(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    stream = client(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "12"}
    )
    got = [next(stream), next(stream)]
    for chunk in stream:
        got.append(chunk)
        if len(got) == 5:
            break
    got += list(stream)  # the rest, from where the loop stopped
    with pytest.raises(StopIteration):
        next(stream)
    assert all(c.choices for c in got) and len(got) >= 12
    assert got[0].choices[0].delta.role == "assistant" and got[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in got[:-1]), "no chunk lost or repeated at the seams"
    a = telemetry.span().attributes
    assert a["otel_llm.stream.outcome"] == "completed" and a["gen_ai.response.finish_reasons"] == ("stop",)
    assert telemetry.point("gen_ai.client.operation.time_per_output_chunk").count == len(got) - 1


async def test_async_anext_and_an_async_for_read_one_stream_together(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    stream = await aclient(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "12"}
    )
    got = [await stream.__anext__()]
    async for chunk in stream:
        got.append(chunk)
    assert all(c.choices for c in got), "the usage-only chunk we asked for stays hidden"
    a = telemetry.span().attributes
    assert a["otel_llm.stream.outcome"] == "completed" and a["gen_ai.usage.output_tokens"] > 0
    assert telemetry.point("gen_ai.client.operation.time_per_output_chunk").count == len(got) - 1


def test_a_stream_of_several_choices_records_each_choice_and_every_chunk(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    chunks = list(
        client(provider).chat.completions.create(
            model="gpt-4.1", messages=MSG, n=2, stream=True, extra_headers={"x-fake-chunks": "6"}
        )
    )
    assert {c.choices[0].index for c in chunks} == {0, 1}
    a = telemetry.span().attributes
    assert a["gen_ai.response.finish_reasons"] == ("stop", "stop") and a["gen_ai.usage.output_tokens"] > 0
    assert telemetry.point("gen_ai.client.operation.time_per_output_chunk").count == len(chunks) - 1


def test_breaking_out_and_closing_a_stream_ends_the_span_as_closed_early(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    stream = client(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "30"}
    )
    for _ in stream:
        break
    assert telemetry.spans() == []
    stream.close()
    a = telemetry.span().attributes
    assert a["otel_llm.stream.outcome"] == "closed_early" and "error.type" not in a


def test_a_with_block_exit_ends_the_span(provider: FakeProvider, telemetry: Telemetry) -> None:
    with client(provider).chat.completions.create(
        model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "30"}
    ) as stream:
        next(iter(stream))
    assert telemetry.span().attributes["otel_llm.stream.outcome"] == "closed_early"


def test_an_abandoned_stream_ends_its_span_when_collected_and_is_not_a_success(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    def use() -> None:
        stream = client(provider).chat.completions.create(
            model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "30"}
        )
        next(iter(stream))

    use()
    telemetry.wait_gc()
    span = telemetry.span()
    assert span.attributes["otel_llm.stream.outcome"] == "abandoned"
    assert span.attributes["error.type"] == "stream_abandoned" and span.status.status_code.name == "ERROR"


async def test_cancelling_a_task_mid_stream_ends_the_span_as_cancelled(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        stream = await aclient(provider).chat.completions.create(
            model="gpt-4.1",
            messages=MSG,
            stream=True,
            extra_headers={"x-fake-chunks": "40", "x-fake-fault": "slow-chunks", "x-fake-delay": "0.2"},
        )
        async for _ in stream:
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gc.collect()
    a = telemetry.span().attributes
    assert a["error.type"] == "cancelled" and a["otel_llm.stream.outcome"] == "failed"


def test_a_raw_response_call_is_recorded_and_returns_the_raw_response(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    raw = client(provider).chat.completions.with_raw_response.create(model="gpt-4.1", messages=MSG)
    completion = raw.parse()
    assert raw.http_response.status_code == 200
    assert telemetry.span().attributes["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens


def test_an_embeddings_call_raw_or_not_is_read_from_the_sdks_result_or_the_body(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    # a plain call's options carry the SDK's "not given" marker for headers (read without its __bool__);
    # with_raw_response's carry a dict naming the raw response: both calls are recorded whole
    c = client(provider)
    plain = c.embeddings.create(model="text-embedding-3-small", input="hello")
    raw = c.embeddings.with_raw_response.create(model="text-embedding-3-small", input="hello").parse()
    first, second = telemetry.spans()
    for span, result in ((first, plain), (second, raw)):
        assert span.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
        assert span.attributes["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding)


def test_the_raw_response_marker_is_found_in_every_form_of_headers() -> None:
    from types import SimpleNamespace

    import httpx

    from otel_llm._patches.openai import _RAW_RESPONSE_HEADER, _raw_response

    marker = {_RAW_RESPONSE_HEADER: "true"}
    for headers, raw in (
        (openai.NOT_GIVEN, False),
        (None, False),
        ({}, False),
        (marker, True),
        (httpx.Headers(marker), True),  # a mapping that is no dict
        (httpx.Headers({"x-other": "1"}), False),
    ):
        assert _raw_response(SimpleNamespace(headers=headers)) is raw, headers
    if hasattr(openai, "omit"):
        assert _raw_response(SimpleNamespace(headers=openai.omit)) is False


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("read", ["helper", "raw-lines", "midway"])
def test_a_stream_whose_response_the_caller_reaches_for_is_read_once(
    provider: FakeProvider, telemetry: Telemetry, mode: str, read: str
) -> None:
    """The SDK's ``chat.completions.stream()`` helper takes the stream's ``.response`` before it reads the chunks;
    a caller may read that response's body raw instead of the chunks. Either way the call is read once: one finish
    reason, one time point per chunk after the first, the provider's tokens."""
    headers = {"x-fake-chunks": "5"}
    provider.reset()

    async def run_async() -> int:
        async with openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0) as ac:
            if read == "helper":
                async with ac.chat.completions.stream(model="gpt-4.1", messages=MSG, extra_headers=headers) as s:
                    return sum([1 async for e in s if e.type == "chunk"])
            stream = await ac.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, extra_headers=headers)
            async with stream:
                if read == "midway":  # the response looked at between chunks, again and again: chunks read on
                    n = 0
                    async for _ in stream:
                        n += 1
                        assert stream.response.status_code == 200
                    return n
                lines = [line async for line in stream.response.aiter_lines()]
            return sum(line.startswith("data: {") for line in lines)

    if mode == "async":
        chunks = asyncio.run(run_async())
    else:
        c = client(provider)
        if read == "helper":
            with c.chat.completions.stream(model="gpt-4.1", messages=MSG, extra_headers=headers) as s:
                chunks = sum(1 for e in s if e.type == "chunk")
        elif read == "midway":
            chunks = 0
            with c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, extra_headers=headers) as stream:
                for _ in stream:
                    chunks += 1
                    assert stream.response.status_code == 200
        else:
            with c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, extra_headers=headers) as stream:
                chunks = sum(line.startswith("data: {") for line in stream.response.iter_lines())
    assert chunks >= 5
    a = telemetry.span().attributes
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["otel_llm.stream.outcome"] == "completed"
    sent = provider.totals()["gpt-4.1-2025-04-14"]
    assert a["gen_ai.usage.input_tokens"] == sent["input_tokens"]
    assert a["gen_ai.usage.output_tokens"] == sent["output_tokens"]
    assert telemetry.point("gen_ai.client.operation.time_per_output_chunk").count == chunks - 1


def test_a_streaming_response_call_ends_when_its_body_is_read(provider: FakeProvider, telemetry: Telemetry) -> None:
    with client(provider).chat.completions.with_streaming_response.create(model="gpt-4.1", messages=MSG) as response:
        assert telemetry.spans() == []
        completion = response.parse()
    assert telemetry.span().attributes["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens


def test_embeddings_are_recorded_with_dimension_and_input_tokens(provider: FakeProvider, telemetry: Telemetry) -> None:
    result = client(provider).embeddings.create(model="text-embedding-3-small", input=["a b c", "d e"])
    span = telemetry.span()
    assert span.name == "embeddings text-embedding-3-small"
    a = span.attributes
    assert a["gen_ai.operation.name"] == "embeddings"
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert a["gen_ai.embeddings.dimension.count"] == len(result.data[0].embedding)


def test_legacy_completions_are_text_completion_spans(provider: FakeProvider, telemetry: Telemetry) -> None:
    result = client(provider).completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")
    span = telemetry.span()
    assert span.name == "text_completion gpt-3.5-turbo-instruct"
    assert span.attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens


def test_the_responses_api_is_recorded_streamed_and_not(provider: FakeProvider, telemetry: Telemetry) -> None:
    c = client(provider)
    result = c.responses.create(model="gpt-4.1", input="Tell me a joke")
    events = list(c.responses.create(model="gpt-4.1", input="Tell me a joke", stream=True))
    first, second = sorted(telemetry.spans(), key=lambda s: s.start_time)
    assert first.attributes["openai.api.type"] == "responses"
    assert first.attributes["gen_ai.usage.output_tokens"] == result.usage.output_tokens
    completed = next(e for e in events if e.type == "response.completed")
    assert second.attributes["gen_ai.usage.output_tokens"] == completed.response.usage.output_tokens
    assert second.attributes["otel_llm.stream.outcome"] == "completed"


def test_parse_with_a_response_format_is_recorded(provider: FakeProvider, telemetry: Telemetry) -> None:
    c = client(provider)
    c.chat.completions.create(model="gpt-4.1", messages=MSG, response_format={"type": "json_object"})
    assert telemetry.span().attributes["gen_ai.output.type"] == "json"


def test_a_429_is_recorded_with_its_status_and_reraised_unchanged(provider: FakeProvider, telemetry: Telemetry) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, extra_headers={"x-fake-fault": "429"})
    assert info.value.status_code == 429
    span = telemetry.span()
    assert span.attributes["error.type"] == "429" and span.status.status_code.name == "ERROR"
    assert span.attributes["gen_ai.rate_limit.remaining_requests"] == 0
    assert telemetry.point("gen_ai.client.operation.duration", error__type="429").count == 1
    assert telemetry.points("gen_ai.client.operation.cost") == []


def test_insufficient_quota_is_told_apart_from_rate_limiting(provider: FakeProvider, telemetry: Telemetry) -> None:
    with pytest.raises(openai.RateLimitError):
        client(provider).chat.completions.create(
            model="gpt-4.1", messages=MSG, extra_headers={"x-fake-fault": "429-quota"}
        )
    assert telemetry.span().attributes["error.type"] == "insufficient_quota"


def test_retries_are_one_span_with_the_attempt_count(provider: FakeProvider, telemetry: Telemetry) -> None:
    c = openai.OpenAI(base_url=provider.url + "/v1", api_key="k", max_retries=2)
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="gpt-4.1", messages=MSG, extra_headers={"x-fake-fault": "500"})
    span = telemetry.span()
    assert span.attributes["http.request.resend_count"] == 2 and span.attributes["error.type"] == "500"


def test_a_timeout_is_error_type_timeout(provider: FakeProvider, telemetry: Telemetry) -> None:
    with pytest.raises(openai.APITimeoutError):
        client(provider, timeout=0.3).chat.completions.create(
            model="gpt-4.1", messages=MSG, extra_headers={"x-fake-fault": "slow", "x-fake-delay": "2"}
        )
    assert telemetry.span().attributes["error.type"] == "timeout"


def test_a_connection_error_is_error_type_connection_error(telemetry: Telemetry) -> None:
    c = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model="gpt-4.1", messages=MSG)
    assert telemetry.span().attributes["error.type"] == "connection_error"


def test_content_is_not_captured_by_default(provider: FakeProvider, telemetry: Telemetry) -> None:
    client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    a = telemetry.span().attributes
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert not any("hello" in str(v).lower() for v in a.values())


def test_content_is_captured_on_opt_in_and_capped(provider: FakeProvider, instrument) -> None:  # type: ignore[no-untyped-def]
    t = instrument(capture_content="SPAN_ONLY", content_max_length=160)
    long = "tell me about llamas " * 30
    result = client(provider).chat.completions.create(
        model="gpt-4.1", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": long}]
    )
    a = t.span().attributes
    # the chat history's system message stays in the input messages; no separate instructions were given
    assert "gen_ai.system_instructions" not in a
    inp = json.loads(a["gen_ai.input.messages"])  # capped, and still valid JSON
    assert len(a["gen_ai.input.messages"]) <= 160
    assert inp[0] == {"role": "system", "parts": [{"type": "text", "content": "Be brief."}], "name": None}
    cut = inp[1]["parts"][0]["content"]
    assert inp[1]["role"] == "user" and cut.endswith("…[truncated]") and long.startswith(cut[: -len("…[truncated]")])
    text = result.choices[0].message.content
    assert text
    out = json.loads(a["gen_ai.output.messages"])
    assert len(a["gen_ai.output.messages"]) <= 160 and out[0]["role"] == "assistant"
    got = out[0]["parts"][0]["content"]
    assert got == text or (got.endswith("…[truncated]") and text.startswith(got[: -len("…[truncated]")]))


def test_streamed_content_is_captured_on_opt_in(provider: FakeProvider, instrument) -> None:  # type: ignore[no-untyped-def]
    t = instrument(capture_content="SPAN_AND_EVENT")
    text = "".join(
        c.choices[0].delta.content or ""
        for c in client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, stream=True)
    )
    out = json.loads(t.span().attributes["gen_ai.output.messages"])
    assert out[0]["parts"][0]["content"] == text


def test_the_api_key_never_reaches_telemetry(provider: FakeProvider, telemetry: Telemetry) -> None:
    client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    dump = json.dumps([dict(s.attributes) for s in telemetry.spans()]) + str(telemetry.reader.get_metrics_data())
    assert "SECRET" not in dump and "Bearer" not in dump


def test_uninstrument_restores_the_original_functions(telemetry: Telemetry) -> None:
    import httpx2
    from openai._base_client import SyncAPIClient

    assert hasattr(SyncAPIClient.request, "__wrapped__")
    telemetry.instrumentor.uninstrument()
    assert not hasattr(SyncAPIClient.request, "__wrapped__")
    assert not hasattr(httpx2.Client.send, "__wrapped__")
    telemetry.instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    assert hasattr(SyncAPIClient.request, "__wrapped__")
    assert not hasattr(SyncAPIClient.request.__wrapped__, "__wrapped__"), "instrumenting twice must not wrap twice"


def test_the_headroom_gauge_recovers_after_a_429(provider: FakeProvider, telemetry: Telemetry) -> None:
    import time

    c = client(provider)
    with pytest.raises(openai.RateLimitError):
        c.chat.completions.create(model="gpt-4.1", messages=MSG, extra_headers={"x-fake-fault": "429"})
    assert telemetry.point("gen_ai.client.rate_limit.remaining", gen_ai__rate_limit__resource="requests").value == 0
    time.sleep(1.05)  # gauges are set at most once a second per series (not a timing assertion)
    c.chat.completions.create(model="gpt-4.1", messages=MSG)
    gauge = telemetry.point("gen_ai.client.rate_limit.remaining", gen_ai__rate_limit__resource="requests")
    assert gauge.value > 0 and "error.type" not in gauge.attributes


@pytest.mark.parametrize("how", ["option", "env"])
def test_chunk_timing_off_drops_only_the_per_chunk_points(
    provider: FakeProvider, instrument, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:  # type: ignore[no-untyped-def]
    if how == "env":
        monkeypatch.setenv("OTEL_LLM_CHUNK_TIMING", "false")
        t = instrument()
    else:
        t = instrument(chunk_timing=False)
    chunks = list(
        client(provider).chat.completions.create(
            model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "12"}
        )
    )
    assert len(chunks) > 10
    a = t.span().attributes
    assert a["otel_llm.stream.outcome"] == "completed" and a["gen_ai.response.time_to_first_chunk"] > 0
    assert a["gen_ai.usage.output_tokens"] > 0
    assert t.point("gen_ai.client.operation.time_to_first_chunk").count == 1
    assert t.points("gen_ai.client.operation.time_per_output_chunk") == []
    assert t.point("gen_ai.client.operation.duration").count == 1


def test_chunk_timing_off_on_a_raw_httpx_stream(provider: FakeProvider, instrument) -> None:  # type: ignore[no-untyped-def]
    import httpx

    t = instrument(chunk_timing=False)
    body = {"model": "gpt-4.1", "messages": MSG, "stream": True, "stream_options": {"include_usage": True}}
    with (
        httpx.Client() as c,
        c.stream("POST", provider.url + "/v1/chat/completions", json=body, headers={"x-fake-chunks": "9"}) as r,
    ):
        for _ in r.iter_lines():
            pass
    a = t.span().attributes
    assert a["otel_llm.layer"] == "http" and a["gen_ai.response.time_to_first_chunk"] > 0
    assert t.point("gen_ai.client.operation.time_to_first_chunk").count == 1
    assert t.points("gen_ai.client.operation.time_per_output_chunk") == []


def test_a_bad_chunk_timing_value_is_refused_at_configuration() -> None:
    from otel_llm import Config, ConfigError

    with pytest.raises(ConfigError, match="OTEL_LLM_CHUNK_TIMING"):
        Config.load(env={"OTEL_LLM_CHUNK_TIMING": "sometimes"})
    assert Config.load({"chunk_timing": "off"}).chunk_timing is False
    assert Config.load().chunk_timing is True


def test_rate_limit_gauges_are_set_once_per_interval(provider: FakeProvider, instrument) -> None:  # type: ignore[no-untyped-def]
    from otel_llm import Config, ConfigError

    t = instrument(rate_limit_interval=3600)
    c = client(provider)
    left = []
    for _ in range(3):
        raw = c.chat.completions.with_raw_response.create(model="gpt-4.1", messages=MSG)
        left.append(float(raw.headers["x-ratelimit-remaining-tokens"]))
    assert left[0] != left[-1]  # the provider's budget went down
    # a gauge keeps its last value: the first answer set it, and the interval kept the next two from setting it
    assert t.point("gen_ai.client.rate_limit.remaining", gen_ai__rate_limit__resource="tokens").value == left[0]
    assert t.spans()[-1].attributes["gen_ai.rate_limit.remaining_tokens"] == left[-1]  # spans: every call
    with pytest.raises(ConfigError, match="OTEL_LLM_RATE_LIMIT_INTERVAL"):
        Config.load(env={"OTEL_LLM_RATE_LIMIT_INTERVAL": "-1"})
    assert Config.load({"rate_limit_interval": "0.5"}).rate_limit_interval == 0.5


def test_async_request_stays_a_coroutine_function_alone_or_over_another_wrapper(
    provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    instrument,  # type: ignore[no-untyped-def]
) -> None:
    import inspect

    import wrapt
    from openai._base_client import AsyncAPIClient

    original = AsyncAPIClient.__dict__["request"]
    seen: list[str] = []

    async def theirs(wrapped, instance, args, kwargs):  # type: ignore[no-untyped-def]
        seen.append("theirs")
        return await wrapped(*args, **kwargs)

    telemetry = instrument()
    assert inspect.iscoroutinefunction(AsyncAPIClient.request) and AsyncAPIClient.request.__wrapped__ is original
    telemetry.instrumentor.uninstrument()
    assert AsyncAPIClient.__dict__["request"] is original

    # over another library's wrapt wrapper: both run, one span
    monkeypatch.setattr(AsyncAPIClient, "request", wrapt.FunctionWrapper(original, theirs))
    telemetry = instrument()
    assert inspect.iscoroutinefunction(AsyncAPIClient.request)
    asyncio.run(aclient(provider).chat.completions.create(model="gpt-4.1", messages=MSG))
    assert seen == ["theirs"]
    assert [s.name for s in telemetry.spans()] == ["chat gpt-4.1"]
    assert telemetry.span().attributes["gen_ai.usage.output_tokens"] > 0


def _read_to_the_end(c: openai.OpenAI) -> None:
    for _ in c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True):
        pass


def _closed_early(c: openai.OpenAI) -> None:
    stream = c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "9"})
    next(iter(stream))
    stream.close()


def _let_go_midway(c: openai.OpenAI) -> None:
    stream = c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-chunks": "9"})
    next(iter(stream))
    del stream


def _cut_short(c: openai.OpenAI) -> None:
    kw = {"extra_headers": {"x-fake-fault": "truncated-sse"}}
    for _ in c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, **kw):  # type: ignore[arg-type]
        pass


def _failed(c: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True, extra_headers={"x-fake-fault": "500"})


def _streamed_response(c: openai.OpenAI) -> None:
    with c.chat.completions.with_streaming_response.create(model="gpt-4.1", messages=MSG, stream=True) as r:
        for _ in r.iter_lines():
            pass


def _read_to_the_end_async(c: openai.OpenAI) -> None:
    async def read() -> None:
        async with openai.AsyncOpenAI(base_url=str(c.base_url), api_key="sk-test-SECRET", max_retries=0) as ac:
            async for _ in await ac.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True):
                pass

    asyncio.run(read())


@pytest.mark.parametrize(
    "use",
    [_read_to_the_end, _closed_early, _let_go_midway, _cut_short, _failed, _streamed_response, _read_to_the_end_async],
)
def test_a_streams_call_and_its_tap_let_go_of_each_other_when_it_ends(
    provider: FakeProvider, telemetry: Telemetry, use: Any
) -> None:
    """No reference cycle of otel-llm's outlives a stream: with the garbage collector off, nothing of ours is left
    for it (a cycle between the call and its byte tap would keep the call's span, request and answer alive until
    a collection, and make every process that streams pay for more collections)."""
    c = client(provider)
    use(c)  # the first call of a client sets up what it keeps
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            use(c)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        ours = sorted({type(o).__qualname__ for o in gc.garbage if type(o).__module__.startswith("otel_llm")})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert ours == []
    assert len(telemetry.spans()) == 6
    assert telemetry.in_flight() == 0
