"""The fake LLM provider: real clients against a real local server, every route and every fault."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import pytest
import requests

from otel_llm.fakeprovider import FAULTS, FakeConfig, FakeProvider, ModelProfile

CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hello there how are you"}]  # 5 words: ceil(6.5) + 3 = 10 tokens
LONG = [{"role": "user", "content": "please summarise the following text " * 5}]  # 25 words: 33 + 3 = 36 tokens


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def client(provider: FakeProvider) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(base_url=provider.url + "/v1", api_key="test", max_retries=0)
    yield sdk
    sdk.close()


_HTTP = httpx.Client(timeout=10)  # shared: creating an httpx client per call costs ~20 ms


@pytest.fixture(scope="module", autouse=True)
def _close_shared_client() -> Iterator[None]:
    yield
    _HTTP.close()


def post(provider: FakeProvider, path: str, body: Any, **headers: str) -> httpx.Response:
    return _HTTP.post(provider.url + path, json=body, headers=headers)


def chat(stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4.1", "messages": MESSAGES, "stream": stream, **extra}


def parse_sse(raw: bytes) -> list[tuple[str | None, str]]:
    """(event, data) pairs, parsed by hand: comments skipped, LF or CRLF, multi-line data joined."""
    events: list[tuple[str | None, str]] = []
    event: str | None = None
    data: list[str] = []
    for line in raw.decode().replace("\r\n", "\n").split("\n"):
        if not line:
            if data or event:
                events.append((event, "\n".join(data)))
            event, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
    return events


def sse_json(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(data) for _, data in parse_sse(raw) if data != "[DONE]"]


def expected_totals(calls: int, input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0) -> dict:
    return {
        "calls": calls,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached_tokens": cached,
        "reasoning_tokens": reasoning,
    }


# --------------------------------------------------------------------------------------------------
# OpenAI wire formats through the real SDK


def test_chat_completion_parses_and_answers_with_the_dated_model(provider: FakeProvider, client: openai.OpenAI):
    response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)

    assert response.id.startswith("chatcmpl-")
    assert response.object == "chat.completion"
    assert response.model == "gpt-4.1-2025-04-14"
    assert response.service_tier == "default"
    assert response.system_fingerprint and response.system_fingerprint.startswith("fp_")
    assert response.choices[0].finish_reason == "stop"
    assert response.choices[0].message.role == "assistant" and response.choices[0].message.content
    usage = response.usage
    assert usage is not None and usage.prompt_tokens == 10
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 0
    assert 60 <= usage.completion_tokens <= 400  # the gpt-4.1 profile's range
    assert provider.totals() == {"gpt-4.1-2025-04-14": expected_totals(1, 10, usage.completion_tokens)}


def test_unknown_models_are_echoed_back(client: openai.OpenAI):
    assert client.chat.completions.create(model="my-finetune", messages=MESSAGES).model == "my-finetune"


def test_chat_stream_with_include_usage_ends_with_a_usage_only_chunk(provider: FakeProvider, client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-fake-chunks": "22"},
    )
    chunks = list(stream)

    assert len(chunks) == 1 + 22 + 1 + 1  # role, content, finish, usage
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4.1-mini-2025-04-14" for c in chunks)
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content.endswith(".")
    usage = chunks[-1].usage
    assert provider.totals() == {"gpt-4.1-mini-2025-04-14": expected_totals(1, 10, usage.completion_tokens)}


def test_chat_stream_raw_has_sse_framing_null_usage_keys_and_done(provider: FakeProvider):
    body = chat(True, stream_options={"include_usage": True})
    response = post(provider, CHAT, body, **{"x-fake-chunks": "3"})

    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    events = parse_sse(response.content)
    assert events[-1] == (None, "[DONE]")
    payloads = [json.loads(data) for _, data in events[:-1]]
    assert all("usage" in p for p in payloads)  # OpenAI sends "usage": null on every chunk
    assert [p["usage"] is None for p in payloads] == [True] * 5 + [False]


def test_chat_stream_without_include_usage_sends_no_usage(provider: FakeProvider, client: openai.OpenAI):
    chunks = list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)

    raw = post(provider, CHAT, chat(True)).content
    assert b'"usage"' not in raw and raw.endswith(b"data: [DONE]\n\n")
    assert provider.totals() == {}


def test_n_choices_share_one_usage_and_stream_interleaved(client: openai.OpenAI):
    response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, n=3)
    assert [c.index for c in response.choices] == [0, 1, 2]

    stream = client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, n=2, stream=True, extra_headers={"x-fake-chunks": "4"}
    )
    indexes = [c.choices[0].index for c in stream]
    assert indexes == [0, 1] + [0, 1] * 4 + [0, 1]


def test_a_small_max_tokens_gives_finish_reason_length(client: openai.OpenAI):
    response = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=7)
    assert response.choices[0].finish_reason == "length"
    assert response.usage is not None and response.usage.completion_tokens == 7


def test_reasoning_models_and_reasoning_effort_report_reasoning_tokens(provider: FakeProvider, client: openai.OpenAI):
    plain = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES)
    by_name = client.chat.completions.create(model="o4-mini", messages=MESSAGES)
    by_effort = client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, reasoning_effort="high")

    assert plain.usage and plain.usage.completion_tokens_details
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0
    for response in (by_name, by_effort):
        assert response.usage and response.usage.completion_tokens_details
        reasoning = response.usage.completion_tokens_details.reasoning_tokens
        assert reasoning and 0 < reasoning < response.usage.completion_tokens  # included in completion tokens
    assert provider.totals()["o4-mini"]["reasoning_tokens"] == by_name.usage.completion_tokens_details.reasoning_tokens


def test_long_prompts_report_cached_tokens_from_the_profile_share(client: openai.OpenAI):
    response = client.chat.completions.create(model="gpt-4.1", messages=LONG)
    assert response.usage and response.usage.prompt_tokens == 36
    assert response.usage.prompt_tokens_details and response.usage.prompt_tokens_details.cached_tokens == 10  # 30 %


def test_deepseek_usage_carries_cache_hit_and_miss_tokens(provider: FakeProvider):
    usage = post(provider, CHAT, {"model": "deepseek-v3.2", "messages": LONG}).json()["usage"]
    assert usage["prompt_cache_hit_tokens"] == usage["prompt_tokens_details"]["cached_tokens"] == 21  # 60 %
    assert usage["prompt_cache_miss_tokens"] == 36 - 21


def test_token_counts_depend_only_on_the_request(provider: FakeProvider):
    first = post(provider, CHAT, chat()).json()
    post(provider, CHAT, {"model": "gpt-4.1", "messages": LONG})
    again = post(provider, CHAT, chat()).json()
    with FakeProvider() as other:
        elsewhere = post(other, CHAT, chat()).json()

    assert first["usage"] == again["usage"] == elsewhere["usage"]
    assert first["choices"][0]["message"]["content"] == elsewhere["choices"][0]["message"]["content"]
    assert first["id"] != again["id"]


def test_legacy_completions_parse_streamed_and_not(provider: FakeProvider, client: openai.OpenAI):
    completion = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="say something nice")
    assert completion.object == "text_completion" and completion.choices[0].text
    assert completion.usage and completion.usage.prompt_tokens == 4

    chunks = list(
        client.completions.create(
            model="gpt-3.5-turbo-instruct",
            prompt="say something nice",
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"x-fake-chunks": "5"},
        )
    )
    assert len(chunks) == 5 + 1 + 1
    assert chunks[-2].choices[0].finish_reason == "stop" and chunks[-1].usage is not None
    assert provider.totals()["gpt-3.5-turbo-instruct"]["calls"] == 2


def test_embeddings_default_to_base64_and_honour_dimensions(provider: FakeProvider, client: openai.OpenAI):
    result = client.embeddings.create(model="text-embedding-3-small", input=["one two", "three"], dimensions=256)

    assert provider.requests[-1].json()["encoding_format"] == "base64"  # the SDK asks for base64
    assert [d.index for d in result.data] == [0, 1]
    vector = result.data[0].embedding
    assert len(vector) == 256 and math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-4)
    assert result.usage.prompt_tokens == result.usage.total_tokens == 3 + 2
    assert provider.totals() == {"text-embedding-3-small": expected_totals(1, 5, 0)}

    floats = post(provider, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "one two"}).json()
    assert floats["object"] == "list" and len(floats["data"][0]["embedding"]) == 1536
    raw = post(provider, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "one two", "dimensions": 256,
                                            "encoding_format": "base64"}).json()  # fmt: skip
    decoded = struct.unpack("<256f", base64.b64decode(raw["data"][0]["embedding"]))
    assert decoded == pytest.approx(vector)


def test_responses_api_parses_without_streaming(provider: FakeProvider, client: openai.OpenAI):
    response = client.responses.create(model="gpt-4.1", input="hello there", instructions="be brief")

    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.model == "gpt-4.1-2025-04-14" and response.instructions == "be brief"
    assert response.output_text
    assert response.usage and response.usage.input_tokens == 3 + 3 + 3 + 3
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    totals = provider.totals()["gpt-4.1-2025-04-14"]
    assert totals == expected_totals(1, response.usage.input_tokens, response.usage.output_tokens)


def test_responses_stream_emits_the_documented_event_sequence(provider: FakeProvider, client: openai.OpenAI):
    events = list(
        client.responses.create(model="gpt-4.1", input="hello", stream=True, extra_headers={"x-fake-chunks": "3"})
    )
    types = [e.type for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1].response  # type: ignore[union-attr]
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert done.output_text == deltas and done.usage is not None

    raw = post(provider, "/v1/responses", {"model": "gpt-4.1", "input": "hello", "stream": True}).content
    for event, data in parse_sse(raw):
        assert json.loads(data)["type"] == event

    with client.responses.stream(model="o3", input="think") as stream:
        final = stream.get_final_response()
    assert final.output[0].type == "reasoning" and final.output_text
    assert final.usage and final.usage.output_tokens_details.reasoning_tokens > 0


def test_responses_that_hit_max_output_tokens_are_incomplete(client: openai.OpenAI):
    response = client.responses.create(model="gpt-4.1", input="hello", max_output_tokens=16)
    assert response.status == "incomplete" and response.incomplete_details
    assert response.incomplete_details.reason == "max_output_tokens"


def test_any_path_prefix_before_the_openai_suffix_is_routed(provider: FakeProvider):
    relay = post(provider, "/relay/v1/chat/completions", chat())
    azure = _HTTP.post(
        provider.url + "/openai/deployments/gpt4/chat/completions?api-version=2024-10-21",
        json={"messages": MESSAGES},
        headers={"api-key": "test"},
    )
    assert relay.json()["object"] == azure.json()["object"] == "chat.completion"
    assert azure.json()["model"] == "gpt4"  # no model in the body: the deployment names it
    assert provider.requests[-1].query == {"api-version": "2024-10-21"}


# --------------------------------------------------------------------------------------------------
# Anthropic and Gemini, checked by hand


def test_anthropic_messages_report_input_without_cache_tokens(provider: FakeProvider):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": LONG}
    response = post(provider, "/v1/messages", body, **{"anthropic-version": "2023-06-01"})
    message = response.json()

    assert message["id"].startswith("msg_") and message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "claude-sonnet-4-5-20250929" and message["stop_reason"] == "end_turn"
    assert message["content"][0]["type"] == "text" and message["content"][0]["text"]
    usage = message["usage"]
    assert usage["cache_read_input_tokens"] == 18 and usage["input_tokens"] == 36 - 18
    assert usage["cache_creation_input_tokens"] == 0
    assert response.headers["request-id"].startswith("req_")
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "3999"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", response.headers["anthropic-ratelimit-tokens-reset"])
    assert provider.totals() == {"claude-sonnet-4-5-20250929": expected_totals(1, 36, usage["output_tokens"], 18)}


def test_anthropic_stream_follows_the_messages_event_sequence(provider: FakeProvider):
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": LONG, "stream": True}
    response = post(provider, "/v1/messages", body, **{"x-fake-chunks": "4"})
    events = parse_sse(response.content)

    assert response.headers["content-type"] == "text/event-stream"
    assert [e for e, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(d) for _, d in events]
    assert all(p["type"] == e for (e, _), p in zip(events, payloads, strict=True))
    start_usage = payloads[0]["message"]["usage"]
    assert start_usage["output_tokens"] == 1 and start_usage["input_tokens"] == 18
    assert payloads[-2]["delta"]["stop_reason"] == "end_turn"
    output = payloads[-2]["usage"]["output_tokens"]
    assert provider.totals() == {"claude-sonnet-4-5-20250929": expected_totals(1, 36, output, 18)}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_the_anthropic_sdk_parses_messages_and_streams(provider: FakeProvider):
    anthropic = pytest.importorskip("anthropic")
    sdk = anthropic.Anthropic(base_url=provider.url, api_key="test", max_retries=0)
    message = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=LONG)
    with sdk.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, messages=LONG) as stream:
        final = stream.get_final_message()
    assert message.usage.cache_read_input_tokens == final.usage.cache_read_input_tokens == 18
    assert final.content[0].text and final.usage.output_tokens > 1


def test_gemini_generate_content_accepts_the_key_in_query_or_header(provider: FakeProvider):
    body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
    by_query = post(provider, "/v1beta/models/gemini-2.5-flash:generateContent?key=k", body).json()
    by_header = post(provider, "/v1beta/models/gemini-2.5-flash:generateContent", body, **{"x-goog-api-key": "k"})

    assert by_header.status_code == 200 and by_header.json()["usageMetadata"] == by_query["usageMetadata"]
    candidate = by_query["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    assert candidate["content"]["parts"][0]["text"]
    usage = by_query["usageMetadata"]
    assert usage["promptTokenCount"] == 6 and usage["cachedContentTokenCount"] == 0
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert by_query["modelVersion"] == "gemini-2.5-flash" and by_query["responseId"]


def test_gemini_streams_as_sse_with_alt_sse_and_as_a_json_array_without(provider: FakeProvider):
    body = {
        "contents": [{"parts": [{"text": "hello"}]}],
        "generationConfig": {"thinkingConfig": {"thinkingBudget": 512}},
    }
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    sse = post(provider, path + "?alt=sse", body, **{"x-fake-chunks": "5"})
    array = post(provider, path, body, **{"x-fake-chunks": "5"})

    assert sse.headers["content-type"] == "text/event-stream"
    chunks = sse_json(sse.content)
    assert len(chunks) == len(array.json()) == 5
    for chunk, same in zip(chunks, array.json(), strict=True):
        assert chunk["responseId"] == chunks[0]["responseId"]  # one id per answer, a new one per answer
        assert {**chunk, "responseId": None} == {**same, "responseId": None}
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    final = chunks[-1]["usageMetadata"]
    assert final["thoughtsTokenCount"] > 0
    assert (
        final["totalTokenCount"]
        == final["promptTokenCount"] + final["candidatesTokenCount"] + final["thoughtsTokenCount"]
    )
    output = final["candidatesTokenCount"] + final["thoughtsTokenCount"]
    thoughts = final["thoughtsTokenCount"]
    expected = expected_totals(2, 2 * final["promptTokenCount"], 2 * output, 0, 2 * thoughts)
    assert provider.totals() == {"gemini-2.5-flash": expected}


# --------------------------------------------------------------------------------------------------
# non-LLM traffic, recording, headers


def test_non_llm_paths_get_a_small_json_answer(provider: FakeProvider):
    assert _HTTP.get(provider.url + "/healthz").json() == {"ok": True}
    assert post(provider, "/v1/files", {"purpose": "batch"}).json() == {"ok": True}
    assert _HTTP.get(provider.url + "/anything/else?x=1").json() == {"ok": True}
    models = _HTTP.get(provider.url + "/v1/models").json()
    assert models["object"] == "list" and "gpt-4.1" in [m["id"] for m in models["data"]]
    assert provider.totals() == {}


def test_received_requests_record_what_the_client_sent(provider: FakeProvider):
    post(provider, CHAT + "?trace=1", chat(), **{"X-Custom": "Yes"})
    request = provider.requests[-1]

    assert (request.method, request.path, request.query) == ("POST", CHAT, {"trace": "1"})
    assert request.headers["x-custom"] == "Yes" and request.headers["content-type"] == "application/json"
    assert request.json() == chat()
    provider.reset()
    assert not provider.requests


def test_openai_rate_limit_headers_move_from_call_to_call(provider: FakeProvider):
    first = post(provider, CHAT, chat()).headers
    second = post(provider, CHAT, chat()).headers

    assert first["x-ratelimit-limit-requests"] == "5000" and first["x-ratelimit-limit-tokens"] == "800000"
    assert int(first["x-ratelimit-remaining-requests"]) == int(second["x-ratelimit-remaining-requests"]) + 1 == 4999
    assert int(first["x-ratelimit-remaining-tokens"]) > int(second["x-ratelimit-remaining-tokens"])
    assert re.fullmatch(r"\d+ms|[\d.]+s|\d+m\d+s", second["x-ratelimit-reset-requests"])
    assert re.fullmatch(r"\d+ms|[\d.]+s|\d+m\d+s", second["x-ratelimit-reset-tokens"])
    assert first["x-request-id"].startswith("req_") and first["x-request-id"] != second["x-request-id"]


def test_a_relay_cost_header_adds_usage_cost_and_the_litellm_header(provider: FakeProvider):
    response = post(provider, CHAT, chat(), **{"x-fake-relay-cost": "0.0123"})
    assert response.json()["usage"]["cost"] == 0.0123
    assert response.headers["x-litellm-response-cost"] == "0.0123"

    stream = post(provider, CHAT, chat(True, stream_options={"include_usage": True}), **{"x-fake-relay-cost": "0.5"})
    assert sse_json(stream.content)[-1]["usage"]["cost"] == 0.5


# --------------------------------------------------------------------------------------------------
# faults


def test_429_raises_rate_limit_error_with_its_code_and_retry_after(client: openai.OpenAI):
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, extra_headers={"x-fake-fault": "429"})
    error = caught.value
    assert error.code == "rate_limit_exceeded" and error.type == "requests"
    assert error.body == {
        "message": "Rate limit reached for gpt-4.1 on requests per min (RPM): Limit 5000, Used 5000, Requested 1. "
        "Please try again in 1s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"

    with pytest.raises(openai.RateLimitError) as quota:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, extra_headers={"x-fake-fault": "429-quota"})
    assert quota.value.code == "insufficient_quota"


@pytest.mark.parametrize(
    ("fault", "exception", "status"),
    [
        ("400", openai.BadRequestError, 400),
        ("401", openai.AuthenticationError, 401),
        ("404", openai.NotFoundError, 404),
        ("500", openai.InternalServerError, 500),
        ("503", openai.InternalServerError, 503),
        ("html-502", openai.InternalServerError, 502),
    ],
)
def test_error_faults_raise_the_matching_openai_exception(
    provider: FakeProvider, client: openai.OpenAI, fault: str, exception: type[Exception], status: int
):
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, extra_headers={"x-fake-fault": fault})
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    content_type = caught.value.response.headers["content-type"]  # type: ignore[attr-defined]
    assert content_type == ("text/html" if fault == "html-502" else "application/json")
    assert provider.totals() == {}


def test_error_bodies_are_shaped_like_each_provider(provider: FakeProvider):
    anthropic = post(
        provider, "/v1/messages", {"model": "claude-sonnet-4-5", "messages": MESSAGES}, **{"x-fake-fault": "429"}
    )
    gemini = post(
        provider, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": "hi"}, **{"x-fake-fault": "503"}
    )

    assert anthropic.status_code == 429 and anthropic.headers["retry-after"] == "1"
    assert anthropic.json()["type"] == "error" and anthropic.json()["error"]["type"] == "rate_limit_error"
    assert anthropic.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert gemini.status_code == 503 and gemini.json()["error"]["status"] == "UNAVAILABLE"


def test_unknown_faults_and_invalid_json_bodies_get_openai_style_400s(provider: FakeProvider):
    unknown = post(provider, CHAT, chat(), **{"x-fake-fault": "no-such-fault"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_fault"

    invalid = _HTTP.post(provider.url + CHAT, content=b"{not json", headers={"content-type": "application/json"})
    assert invalid.status_code == 400
    assert set(invalid.json()["error"]) == {"message", "type", "param", "code"}
    missing = post(provider, CHAT, {"model": "gpt-4.1"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    assert post(provider, CHAT, chat()).status_code == 200  # and the server is still fine


def test_malformed_empty_and_non_json_bodies_arrive_with_status_200(provider: FakeProvider):
    malformed = post(provider, CHAT, chat(), **{"x-fake-fault": "malformed-json"})
    empty = post(provider, CHAT, chat(), **{"x-fake-fault": "empty"})
    non_json = post(provider, CHAT, chat(), **{"x-fake-fault": "non-json"})

    assert malformed.status_code == empty.status_code == non_json.status_code == 200
    assert malformed.headers["content-type"] == "application/json" and malformed.content.startswith(b"{")
    with pytest.raises(json.JSONDecodeError):
        malformed.json()
    assert empty.content == b"" and empty.headers["content-length"] == "0"
    assert non_json.headers["content-type"].startswith("text/plain")
    assert provider.totals() == {}


def test_truncated_sse_stops_halfway_without_final_chunk_usage_or_done(provider: FakeProvider):
    body = chat(True, stream_options={"include_usage": True})
    response = post(provider, CHAT, body, **{"x-fake-fault": "truncated-sse", "x-fake-chunks": "10"})

    assert response.status_code == 200 and response.headers["connection"] == "close"
    chunks = sse_json(response.content)
    assert b"[DONE]" not in response.content
    assert len(chunks) == 1 + 5 and all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert provider.totals() == {}


def test_junk_sse_hides_a_valid_stream_among_comments_ids_pings_and_garbage(provider: FakeProvider):
    body = chat(True, stream_options={"include_usage": True})
    raw = post(provider, CHAT, body, **{"x-fake-fault": "junk-sse", "x-fake-chunks": "6"}).content

    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF everywhere
    for junk in (b": keep-alive\r\n", b"retry: 100\r\n", b"id: 3\r\n", b"data:\r\n\r\n", b"event: ping\r\n",
                 b"data: garbage\r\n"):  # fmt: skip
        assert junk in raw
    chunks = []
    for event, data in parse_sse(raw):
        if event is None and data.startswith("{"):
            chunks.append(json.loads(data))
    clean = sse_json(post(provider, CHAT, body, **{"x-fake-chunks": "6"}).content)
    assert [c["choices"] for c in chunks] == [c["choices"] for c in clean]
    assert raw.endswith(b"data: [DONE]\r\n\r\n")
    assert provider.totals()["gpt-4.1-2025-04-14"]["calls"] == 2


def test_non_utf8_puts_invalid_bytes_into_exactly_one_content_delta(provider: FakeProvider):
    raw = post(provider, CHAT, chat(True), **{"x-fake-fault": "non-utf8", "x-fake-chunks": "4"}).content
    bad = []
    for line in raw.split(b"\n"):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(line)
    assert len(bad) == 1 and b"\xff\xfe" in bad[0] and bad[0].startswith(b'data: {"id"')
    assert len(sse_json(raw.replace(b"\xff\xfe", b""))) == 1 + 4 + 1

    whole = post(provider, CHAT, chat(), **{"x-fake-fault": "non-utf8"})
    with pytest.raises(UnicodeDecodeError):
        whole.content.decode("utf-8")


def test_null_usage_sends_null_usage_or_null_details(provider: FakeProvider, client: openai.OpenAI):
    response = client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, extra_headers={"x-fake-fault": "null-usage"}
    )
    assert response.usage is None
    assert provider.totals() == {}

    body = chat(True, stream_options={"include_usage": True})
    usage = sse_json(post(provider, CHAT, body, **{"x-fake-fault": "null-usage"}).content)[-1]["usage"]
    assert usage["prompt_tokens"] == 10 and usage["completion_tokens"] > 0
    assert usage["prompt_tokens_details"] is None and usage["completion_tokens_details"] is None
    assert provider.totals()["gpt-4.1-2025-04-14"] == expected_totals(1, 10, usage["completion_tokens"])


def test_string_numbers_quote_every_usage_number(provider: FakeProvider):
    usage = post(provider, CHAT, {"model": "gpt-4.1", "messages": LONG}, **{"x-fake-fault": "string-numbers"}).json()[
        "usage"
    ]
    assert usage["prompt_tokens"] == "36" and usage["prompt_tokens_details"]["cached_tokens"] == "10"
    assert usage["completion_tokens_details"]["reasoning_tokens"] == "0"
    assert provider.totals()["gpt-4.1-2025-04-14"] == expected_totals(1, 36, int(usage["completion_tokens"]), 10)


def test_huge_answers_carry_the_requested_number_of_content_bytes(provider: FakeProvider):
    response = post(provider, CHAT, chat(), **{"x-fake-fault": "huge", "x-fake-size": "1000000"})
    assert len(response.json()["choices"][0]["message"]["content"]) == 1_000_000
    assert response.json()["usage"]["completion_tokens"] == 250_000


def test_reset_gives_a_connection_error_after_the_headers(provider: FakeProvider, client: openai.OpenAI):
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        post(provider, CHAT, chat(), **{"x-fake-fault": "reset"})

    with (
        pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)),
        httpx.stream("POST", provider.url + CHAT, json=chat(True), headers={"x-fake-fault": "reset"}) as response,
    ):
        assert response.status_code == 200
        for _ in response.iter_bytes():
            pass

    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, extra_headers={"x-fake-fault": "reset"})
    assert provider.totals() == {}
    assert post(provider, CHAT, chat()).status_code == 200


def test_slow_holds_the_status_line_past_a_client_timeout(provider: FakeProvider):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(provider.url + CHAT, json=chat(), headers={"x-fake-fault": "slow", "x-fake-delay": "1"}, timeout=0.2)
    started = time.monotonic()
    assert post(provider, CHAT, chat(), **{"x-fake-fault": "slow", "x-fake-delay": "0.3"}).status_code == 200
    assert time.monotonic() - started >= 0.29


def test_slow_chunks_spaces_out_the_stream_events(provider: FakeProvider):
    started = time.monotonic()
    response = post(
        provider, CHAT, chat(True), **{"x-fake-fault": "slow-chunks", "x-fake-delay": "0.1", "x-fake-chunks": "2"}
    )
    assert len(parse_sse(response.content)) == 1 + 2 + 1 + 1
    assert time.monotonic() - started >= 0.4  # four gaps between five events


def test_every_documented_fault_name_is_accepted(provider: FakeProvider):
    for fault in sorted(FAULTS - {"slow", "stall", "slow-chunks", "huge", "reset"}):  # the slow or abrupt ones
        response = post(provider, CHAT, chat(), **{"x-fake-fault": fault})
        assert b"unknown_fault" not in response.content, fault


# --------------------------------------------------------------------------------------------------
# configuration: random faults, latency


def test_random_faults_are_reproducible_with_a_seed():
    def statuses() -> list[tuple[int, str | None]]:
        config = FakeConfig(seed=7, error_rate=0.3, rate_limit_rate=0.2)
        with FakeProvider(config=config) as fake:
            answers = [post(fake, CHAT, chat()) for _ in range(40)]
        return [(r.status_code, r.headers.get("retry-after")) for r in answers]

    first, second = statuses(), statuses()
    assert first == second
    codes = [code for code, _ in first]
    assert {200, 429} <= set(codes) and {500, 503} & set(codes)
    assert all(retry == "1" for code, retry in first if code == 429)


def test_timeout_rate_stalls_calls_past_a_client_timeout():
    with FakeProvider(config=FakeConfig(timeout_rate=1.0, stall_s=0.5)) as fake, pytest.raises(httpx.ReadTimeout):
        httpx.post(fake.url + CHAT, json=chat(), timeout=0.1)


def test_latency_scale_uses_the_profile_and_a_header_can_switch_it_off():
    profile = ModelProfile(0.3, 0.3, 0.01, (6, 6), 0.0, "slowpoke-2025-01-01")
    with FakeProvider(config=FakeConfig(latency_scale=1.0, profiles={"slowpoke": profile})) as fake:
        started = time.monotonic()
        response = post(fake, CHAT, {"model": "slowpoke", "messages": MESSAGES})
        slow = time.monotonic() - started
        started = time.monotonic()
        post(fake, CHAT, {"model": "slowpoke", "messages": MESSAGES}, **{"x-fake-model-latency": "0"})
        fast = time.monotonic() - started
    assert response.json()["model"] == "slowpoke-2025-01-01" and response.json()["usage"]["completion_tokens"] == 6
    assert slow >= 0.29 and fast < 0.2


# --------------------------------------------------------------------------------------------------
# robustness, other clients, totals


def test_stop_returns_quickly_with_streams_in_flight():
    fake = FakeProvider().start()
    errors: list[str] = []

    def read_slowly() -> None:
        try:
            headers = {"x-fake-fault": "slow-chunks", "x-fake-delay": "10"}
            with httpx.stream("POST", fake.url + CHAT, json=chat(True), headers=headers, timeout=30) as response:
                for _ in response.iter_bytes():
                    pass
        except httpx.TransportError as exc:
            errors.append(type(exc).__name__)

    threads = [threading.Thread(target=read_slowly) for _ in range(3)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    for thread in threads:
        thread.join(timeout=5)
    assert not any(t.is_alive() for t in threads) and len(errors) == 3


def test_client_disconnects_do_not_print_tracebacks(provider: FakeProvider, capfd: pytest.CaptureFixture[str]):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            provider.url + CHAT, json=chat(), headers={"x-fake-fault": "slow", "x-fake-delay": "0.2"}, timeout=0.05
        )
    with httpx.stream("POST", provider.url + CHAT, json=chat(True), headers={"x-fake-chunks": "200"}) as response:
        next(response.iter_bytes())  # leave mid-stream
    time.sleep(0.4)
    assert post(provider, CHAT, chat()).status_code == 200
    assert "Traceback" not in capfd.readouterr().err


def test_concurrent_calls_are_all_counted(provider: FakeProvider):
    results: list[int] = []

    def call() -> None:
        response = post(provider, CHAT, {"model": "gpt-4.1-mini", "messages": LONG})
        results.append(response.json()["usage"]["completion_tokens"])

    threads = [threading.Thread(target=call) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    totals = provider.totals()["gpt-4.1-mini-2025-04-14"]
    assert totals["calls"] == 32 and totals["input_tokens"] == 32 * 36 and totals["cached_tokens"] == 32 * 14
    assert totals["output_tokens"] == sum(results)


def test_requests_and_aiohttp_read_the_stream(provider: FakeProvider):
    with requests.post(
        provider.url + CHAT, json=chat(True), headers={"x-fake-chunks": "3"}, stream=True, timeout=10
    ) as r:
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == b"data: [DONE]" and len(lines) == 1 + 3 + 1 + 1

    async def read() -> bytes:
        async with (
            aiohttp.ClientSession() as session,
            session.post(provider.url + CHAT, json=chat(True), headers={"x-fake-chunks": "3"}) as response,
        ):
            return await response.read()

    assert len(parse_sse(asyncio.run(read()))) == len(lines)


def test_totals_match_the_usage_sent_across_every_api(provider: FakeProvider, client: openai.OpenAI):
    sent: dict[str, list[int]] = {}

    def add(model: str, inputs: int, outputs: int) -> None:
        sent.setdefault(model, [0, 0, 0])
        sent[model] = [sent[model][0] + 1, sent[model][1] + inputs, sent[model][2] + outputs]

    r = client.chat.completions.create(model="gpt-4.1", messages=LONG)
    add(r.model, r.usage.prompt_tokens, r.usage.completion_tokens)  # type: ignore[union-attr]
    *_, last = client.chat.completions.create(
        model="gpt-4.1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    add(last.model, last.usage.prompt_tokens, last.usage.completion_tokens)  # type: ignore[union-attr]
    e = client.embeddings.create(model="text-embedding-3-small", input="a b c")
    add(e.model, e.usage.prompt_tokens, 0)
    resp = client.responses.create(model="gpt-4.1-mini", input="hello")
    add(resp.model, resp.usage.input_tokens, resp.usage.output_tokens)  # type: ignore[union-attr]
    m = post(provider, "/v1/messages", {"model": "claude-sonnet-4.5", "max_tokens": 2000, "messages": LONG}).json()
    u = m["usage"]
    add(
        m["model"],
        u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"],
        u["output_tokens"],
    )
    g = post(provider, "/v1beta/models/gemini-2.5-flash:generateContent", {"contents": "hi"}).json()
    add(g["modelVersion"], g["usageMetadata"]["promptTokenCount"], g["usageMetadata"]["candidatesTokenCount"])
    list(client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, stream=True))  # no usage: not counted

    totals = provider.totals()
    assert {model: [t["calls"], t["input_tokens"], t["output_tokens"]] for model, t in totals.items()} == sent
    provider.reset()
    assert provider.totals() == {}


def test_the_module_runs_as_a_command_until_interrupted(tmp_path: Path):
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "PATH": ""}
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_llm.fakeprovider", "--port", "0", "--seed", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        # Ctrl-C as a terminal sends it: a test run started in the background of a shell without job control
        # ignores SIGINT, its children inherit that, and Python then installs no KeyboardInterrupt handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" on ", 1)[1].split()[0]
        assert httpx.get(url + "/healthz").json() == {"ok": True}
        assert httpx.post(url + CHAT, json=chat()).status_code == 200
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0 and "gpt-4.1-2025-04-14: calls=1" in out


def test_an_unknown_answer_kind_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="x-fake-answer"):
        client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-fake-answer": "poem"}
        )


def test_a_stored_response_is_fetched_by_id_and_an_unknown_id_is_404(client: openai.OpenAI) -> None:
    first = client.responses.retrieve("resp_abc")
    assert first.id == "resp_abc" and first.status == "completed" and first.output_text
    assert client.responses.retrieve("resp_abc").output_text == first.output_text  # its text follows from the id
    assert client.responses.retrieve("resp_x", extra_headers={"x-fake-status": "incomplete"}).status == "incomplete"
    events = [e.type for e in client.responses.retrieve("resp_abc", stream=True)]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("nope")


def test_tool_calls_and_refusals_in_each_wire_format(provider: FakeProvider) -> None:
    with httpx.Client(base_url=provider.url) as h:
        call = {"x-fake-answer": "tool_call"}
        msg = [{"role": "user", "content": "hi"}]
        a = h.post("/v1/messages", json={"model": "claude-sonnet-4.5", "max_tokens": 64, "messages": msg}, headers=call)
        assert a.json()["stop_reason"] == "tool_use" and a.json()["content"][0]["type"] == "tool_use"
        g = h.post("/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": "hi"}, headers=call).json()
        assert "functionCall" in g["candidates"][0]["content"]["parts"][0]
        r = h.post("/v1/responses", json={"model": "gpt-4.1", "input": "hi"}, headers={"x-fake-answer": "refusal"})
        assert r.json()["output"][-1]["content"][0]["type"] == "refusal"
