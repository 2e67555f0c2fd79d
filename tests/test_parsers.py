"""Wire-format parsers on raw bodies: no OpenTelemetry, no network."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llm._parsers.headers import parse_duration, parse_headers
from otel_llm._parsers.request import parse_request, parse_request_bytes
from otel_llm._parsers.response import ResponseInfo, apply_body, parse_body_bytes
from otel_llm._parsers.routes import Router, gemini_model_from_path
from otel_llm._parsers.sse import StreamParser
from otel_llm._parsers.usage import Usage
from otel_llm._patches._common import scrub_url

R = Router()


@pytest.mark.parametrize(
    ("path", "operation", "api"),
    [
        ("/v1/chat/completions", "chat", "openai.chat"),
        ("/relay/v1/chat/completions?x=1", "chat", "openai.chat"),
        ("/openai/deployments/gpt4/chat/completions?api-version=2024-10-21", "chat", "openai.chat"),
        ("/v1/completions", "text_completion", "openai.completions"),
        ("/v1/embeddings", "embeddings", "openai.embeddings"),
        ("/v1/responses", "chat", "openai.responses"),
        ("/v1/messages", "chat", "anthropic.messages"),
        ("/v1beta/models/gemini-2.5-flash:generateContent?key=abc", "generate_content", "gemini"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "generate_content", "gemini"),
    ],
)
def test_llm_paths_are_recognised_with_any_prefix(path: str, operation: str, api: str) -> None:
    route = R.match(path)
    assert route is not None and (route.operation, route.api) == (operation, api)
    assert R.match_bytes(path.encode()) == route


@pytest.mark.parametrize("path", ["/", "/v1/models", "/v1/threads/abc/messages", "/healthz", "/v1/files", "/chat"])
def test_other_paths_are_not_llm_calls(path: str) -> None:
    assert R.match(path) is None
    assert R.match_bytes(path.encode()) is None


def test_user_patterns_extend_and_are_validated() -> None:
    r = Router({"/v1/generate": "openai.chat"})
    route = r.match("/v1/generate")
    assert route is not None and route.api == "openai.chat"
    with pytest.raises(ValueError, match="unknown wire format"):
        Router({"/x": "nope"})


def test_gemini_model_comes_from_the_path() -> None:
    assert gemini_model_from_path("/v1beta/models/gemini-2.5-flash:generateContent?key=k") == "gemini-2.5-flash"


def test_request_parameters_become_attributes() -> None:
    route = R.match("/v1/chat/completions")
    assert route is not None
    info = parse_request(
        route,
        {
            "model": "gpt-4.1",
            "stream": True,
            "temperature": 0.2,
            "max_tokens": 50,
            "top_p": 1,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "stream_options": {"include_usage": True},
            "response_format": {"type": "json_object"},
        },
    )
    assert info.model == "gpt-4.1" and info.stream and info.include_usage
    assert info.attributes == {
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.top_p": 1.0,
        "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.request.choice.count": 2,
        "gen_ai.request.seed": 7,
        "gen_ai.output.type": "json",
    }


def test_a_request_body_that_is_not_json_gives_only_what_the_path_says() -> None:
    route = R.match("/v1beta/models/g:streamGenerateContent")
    assert route is not None
    info = parse_request_bytes(route, b"\xff\xfe not json", "g")
    assert info.model == "g" and info.stream


def _info(path: str, body: object) -> ResponseInfo:
    route = R.match(path)
    assert route is not None
    info = ResponseInfo()
    apply_body(route, body, info)
    return info


def test_openai_usage_counts_cached_and_reasoning_tokens_as_subsets() -> None:
    info = _info(
        "/v1/chat/completions",
        {
            "id": "c1",
            "model": "gpt-4.1-2025-04-14",
            "choices": [{"finish_reason": "stop", "message": {"content": "hi"}}],
            "usage": {
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "prompt_tokens_details": {"cached_tokens": 64},
                "completion_tokens_details": {"reasoning_tokens": 5},
            },
        },
    )
    assert info.usage == Usage(100, 20, 64, None, 5)
    assert info.finish_reasons == ["stop"] and info.model == "gpt-4.1-2025-04-14" and info.id == "c1"


def test_deepseek_cache_hits_count_as_cached_reads() -> None:
    info = _info(
        "/chat/completions", {"usage": {"prompt_tokens": 50, "completion_tokens": 3, "prompt_cache_hit_tokens": 32}}
    )
    assert info.usage == Usage(50, 3, 32, None, None)


def test_anthropic_input_includes_cache_reads_and_writes() -> None:
    info = _info(
        "/v1/messages",
        {
            "model": "claude-sonnet-4-5",
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 7,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 20,
            },
        },
    )
    assert info.usage == Usage(130, 7, 100, 20, None)
    assert info.finish_reasons == ["end_turn"]


def test_gemini_output_includes_thoughts() -> None:
    info = _info(
        "/v1beta/models/g:generateContent",
        {
            "modelVersion": "gemini-2.5-flash",
            "responseId": "r1",
            "candidates": [{"finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": 40,
                "candidatesTokenCount": 10,
                "thoughtsTokenCount": 6,
                "cachedContentTokenCount": 8,
            },
        },
    )
    assert info.usage == Usage(40, 16, 8, None, 6)


def test_responses_usage_and_status() -> None:
    info = _info(
        "/v1/responses",
        {
            "id": "resp_1",
            "model": "gpt-4.1",
            "status": "completed",
            "usage": {
                "input_tokens": 9,
                "output_tokens": 4,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        },
    )
    assert info.usage == Usage(9, 4, 0, None, 0) and info.finish_reasons == ["stop"]


def test_numbers_sent_as_strings_are_ignored_not_guessed() -> None:
    info = _info("/v1/chat/completions", {"usage": {"prompt_tokens": "10", "completion_tokens": None}})
    assert info.usage == Usage(None, None, None, None, None, invalid=True)  # no count, and the call is marked


def test_relay_cost_and_error_codes_are_read() -> None:
    info = _info("/v1/chat/completions", {"usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 0.0123}})
    assert info.relay_cost == 0.0123
    err = _info("/v1/chat/completions", {"error": {"message": "m", "code": "insufficient_quota"}})
    assert err.error_code == "insufficient_quota"


def _stream(path: str, body: bytes, pieces: int = 7) -> tuple[ResponseInfo, StreamParser, int]:
    route = R.match(path)
    assert route is not None
    info = ResponseInfo()
    parser = StreamParser(route, info)
    chunks = 0
    step = max(1, len(body) // pieces)
    for i in range(0, len(body), step):
        chunks += parser.feed(body[i : i + step])
    chunks += parser.flush()
    return info, parser, chunks


def _sse(*events: object, done: bool = True, crlf: bool = False, compact: bool = False) -> bytes:
    seps = (",", ":") if compact else None  # OpenAI's own spelling, or json.dumps' spaced one
    out = b"".join(b"data: " + json.dumps(e, separators=seps).encode() + b"\n\n" for e in events)
    if done:
        out += b"data: [DONE]\n\n"
    return out.replace(b"\n", b"\r\n") if crlf else out


CHUNKS = [
    {
        "id": "c1",
        "model": "gpt-4.1-x",
        "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
        "usage": None,
    },
    {
        "id": "c1",
        "model": "gpt-4.1-x",
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
        "usage": None,
    },
    {"id": "c1", "model": "gpt-4.1-x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None},
    {"id": "c1", "model": "gpt-4.1-x", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 2}},
]


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("crlf", [False, True])
def test_openai_stream_is_parsed_across_arbitrary_splits(crlf: bool, compact: bool) -> None:
    quoting = dict(CHUNKS[1], choices=[{"index": 0, "delta": {"content": 'a": b'}, "finish_reason": None}])
    events = [CHUNKS[0], CHUNKS[1], quoting, *CHUNKS[2:]]  # content that spells '": ' inside compact JSON
    for pieces in (1, 3, 7, 50, 500):
        info, parser, chunks = _stream("/v1/chat/completions", _sse(*events, crlf=crlf, compact=compact), pieces)
        assert parser.done and chunks == 4  # the usage-only chunk is not a content chunk
        assert info.usage == Usage(12, 2, None, None, None) and info.finish_reasons == ["stop"]
        assert info.model == "gpt-4.1-x"


def test_junk_and_comment_lines_do_not_stop_the_stream_parse() -> None:
    body = b": keep-alive\n\nretry: 100\n\nevent: ping\ndata:\n\ndata: garbage\n\n" + _sse(*CHUNKS)
    info, parser, _ = _stream("/v1/chat/completions", body)
    assert parser.done and info.usage is not None and info.usage.output_tokens == 2


def test_anthropic_stream_events() -> None:
    events = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "m1",
                    "model": "claude-sonnet-4-5",
                    "usage": {"input_tokens": 5, "cache_read_input_tokens": 10, "output_tokens": 1},
                },
            },
        ),
        ("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    body = b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)
    info, parser, chunks = _stream("/v1/messages", body)
    assert parser.done and chunks == 1
    assert info.usage == Usage(15, 9, 10, None, None) and info.finish_reasons == ["end_turn"]


def test_responses_stream_events() -> None:
    done = {"id": "resp_1", "model": "gpt-4.1", "status": "completed", "usage": {"input_tokens": 3, "output_tokens": 2}}
    events = [
        (
            "response.created",
            {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-4.1", "status": "in_progress"}},
        ),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "a"}),
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "b"}),
        ("response.completed", {"type": "response.completed", "response": done}),
    ]
    body = b"".join(f"event: {n}\ndata: {json.dumps(d)}\n\n".encode() for n, d in events)
    info, parser, chunks = _stream("/v1/responses", body)
    assert parser.done and chunks == 2 and info.usage == Usage(3, 2, None, None, None)


def test_rate_limit_headers_and_durations() -> None:
    h = parse_headers(
        [
            ("X-RateLimit-Remaining-Requests", "59"),
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("anthropic-ratelimit-tokens-remaining", "1000"),
            ("Retry-After", "2"),
            ("x-litellm-response-cost", "0.5"),
            ("authorization", "Bearer sk-secret"),
        ]
    )
    assert h.remaining == {"requests": 59.0, "tokens": 1000.0} and h.limit == {"requests": 60.0}
    assert h.reset == {"tokens": "6m0s"} and h.retry_after == 2.0 and h.relay_cost == 0.5
    assert parse_duration("6m0s") == 360.0 and parse_duration("250ms") == 0.25 and parse_duration("1h2m3.5s") == 3723.5
    assert parse_duration("soon") is None


def test_header_plans_follow_each_answers_own_names() -> None:
    """Headers are read by position through a plan cached per sequence of names: three sources (httpx's byte
    list, requests' store, plain pairs) and a second answer with the same names but other values, another
    order, a repeated name or one more header each read their own values."""
    from otel_llm._parsers.headers import parse_header_list, parse_header_store

    def httpx_list(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes, bytes]]:
        return [(k.encode(), k.lower().encode(), v.encode()) for k, v in pairs]

    def store(pairs: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
        return {k.lower(): (k, v) for k, v in pairs}

    first = [
        ("content-type", "application/json"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-reset-requests", "1s"),
    ]
    second = [(k, "7" if k == "x-ratelimit-remaining-requests" else v) for k, v in first]
    reordered = [first[2], first[1], first[0], first[3]]
    one_more = [*first, ("retry-after", "3"), ("x-litellm-response-cost", "0.25")]
    repeated = [*first, ("x-ratelimit-remaining-requests", "58")]
    for parse in (
        lambda p: parse_header_list(httpx_list(p)),
        lambda p: parse_header_store(store(p)),
        parse_headers,
    ):
        for _ in range(2):  # made, then cached
            h = parse(first)
            assert h.remaining == {"requests": 59.0} and h.limit == {"requests": 60.0}
            assert h.reset == {"requests": "1s"} and h.content_type == "application/json"
            assert h.retry_after is None and h.relay_cost is None and h.rate_limited
            assert parse(second).remaining == {"requests": 7.0}
            assert parse(reordered).remaining == {"requests": 59.0} and parse(reordered).limit == {"requests": 60.0}
            h = parse(one_more)
            assert h.retry_after == 3.0 and h.relay_cost == 0.25 and h.remaining == {"requests": 59.0}
            assert parse(repeated).remaining == {"requests": 58.0}  # the last of a repeated name
        h = parse([("content-type", "text/event-stream")])
        assert not h.rate_limited and h.remaining == {} and h.limit == {} and h.content_type == "text/event-stream"
        bad = parse([("x-ratelimit-remaining-tokens", "NaN"), ("x-ratelimit-limit-tokens", "lots")])
        assert bad.rate_limited and bad.remaining == {} and bad.limit == {}

    # requests' own store is an OrderedDict, read through dict's views: names and values stay paired even
    # after its linked order was changed
    from collections import OrderedDict

    ordered = OrderedDict((k.lower(), (k, v)) for k, v in one_more)
    ordered.move_to_end("x-ratelimit-remaining-requests")
    ordered.move_to_end("content-type", last=False)
    h = parse_header_store(ordered)
    assert h.remaining == {"requests": 59.0} and h.limit == {"requests": 60.0} and h.reset == {"requests": "1s"}
    assert h.retry_after == 3.0 and h.relay_cost == 0.25 and h.content_type == "application/json"


def test_records_made_without_init_equal_the_constructed_ones() -> None:
    """The parsers make their ``Usage``, ``HeaderInfo`` and ``ResponseInfo`` without the classes' Python
    ``__init__``: the same values, equality and defaults as the constructors give."""
    from otel_llm._parsers.headers import HeaderInfo
    from otel_llm._parsers.response import new_response_info
    from otel_llm._parsers.usage import new_usage

    assert new_usage(10, 5) == Usage(10, 5) and new_usage(10, 5, 2, 1, 3) == Usage(10, 5, 2, 1, 3)
    assert new_usage(None, None).is_empty() and new_usage(1, None, 1) != Usage(1, None, None)
    empty = HeaderInfo()
    assert not empty.rate_limited and empty.remaining == {} and empty.limit == {} and empty.content_type == ""
    info = new_response_info()
    assert info == ResponseInfo() and info.finish_reasons == [] and info.model is None and not info.compacted
    assert ResponseInfo(model="m", compacted=True) != info and info.finish_reasons is not ResponseInfo().finish_reasons
    with pytest.raises(TypeError):
        ResponseInfo(nonsense=1)
    made = parse_headers([("x-ratelimit-remaining-tokens", "12"), ("retry-after", "1.5")])
    assert made.remaining == {"tokens": 12.0} and made.retry_after == 1.5 and made.relay_cost is None


def test_urls_lose_secrets() -> None:
    url = scrub_url("https", "g.example", None, "/v1/models/x:generateContent?key=SECRET&alt=sse&sig=S2&api-key=K")
    assert url == "https://g.example/v1/models/x:generateContent?key=REDACTED&alt=sse&sig=REDACTED&api-key=REDACTED"
    assert "SECRET" not in scrub_url("https", "h", 443, "/p?token=SECRET")


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=2000),
    st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/responses", "/x:generateContent", "/v1/embeddings"]),
)
def test_arbitrary_bytes_never_raise_out_of_the_parsers(data: bytes, path: str) -> None:
    route = R.match(path)
    assert route is not None
    info = ResponseInfo()
    parse_body_bytes(route, data, info, capture=True)
    parser = StreamParser(route, ResponseInfo(), capture=True)
    parser.feed(data)
    parser.feed(b"data: " + data + b"\n\n")
    parser.flush()
    parse_request_bytes(route, data)
    parse_headers([(data.decode("latin-1"), data.decode("latin-1"))])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "usage",
                    "choices",
                    "model",
                    "id",
                    "prompt_tokens",
                    "completion_tokens",
                    "prompt_tokens_details",
                    "cached_tokens",
                    "finish_reason",
                    "delta",
                    "content",
                    "message",
                    "error",
                    "code",
                    "usageMetadata",
                    "candidates",
                    "type",
                    "response",
                    "input_tokens",
                    "output_tokens",
                    "status",
                    "data",
                    "embedding",
                    "cost",
                    "stop_reason",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    _json,
    st.sampled_from(
        [
            "/v1/chat/completions",
            "/v1/messages",
            "/v1/responses",
            "/x:generateContent",
            "/v1/embeddings",
            "/v1/completions",
        ]
    ),
)
def test_arbitrary_json_never_raises_out_of_the_parsers(body: object, path: str) -> None:
    route = R.match(path)
    assert route is not None
    apply_body(route, body, ResponseInfo())
    parse_body_bytes(route, json.dumps(body).encode(), ResponseInfo(), capture=True)
    parse_request(route, body)
    raw = json.dumps(body).encode()
    parser = StreamParser(route, ResponseInfo(), capture=True)
    parser.feed(b"data: " + raw + b"\n\nevent: message_start\ndata: " + raw + b"\n\n")
    parser.flush()


# --------------------------------------------------------------------------------------------------
# the openai SDK's parsed results read the same as their JSON bodies

_CHAT_BODY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4.1-2025-04-14",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "yo"}, "finish_reason": "length"},
    ],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 40,
        "total_tokens": 160,
        "prompt_tokens_details": {"cached_tokens": 64},
        "completion_tokens_details": {"reasoning_tokens": 16},
        "cost": 0.00042,  # a relay's (OpenRouter) extra field
    },
    "system_fingerprint": "fp_1",
    "service_tier": "default",
}
_DEEPSEEK_BODY = {
    "id": "x",
    "object": "chat.completion",
    "created": 1,
    "model": "deepseek-chat",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "prompt_cache_hit_tokens": 8},
}
_COMPLETION_BODY = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1,
    "model": "gpt-3.5-turbo-instruct",
    "choices": [{"index": 0, "text": "x", "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
_EMBEDDING_BODY = {
    "object": "list",
    "model": "text-embedding-3-small",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 1536}],
    "usage": {"prompt_tokens": 5, "total_tokens": 5},
}


_RESPONSES_BODY = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "model": "gpt-4.1-mini-2025-04-14",
    "status": "completed",
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "service_tier": "default",
    "usage": {
        "input_tokens": 12,
        "output_tokens": 30,
        "total_tokens": 42,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 7},
    },
}


@pytest.mark.parametrize(
    ("path", "type_path", "body"),
    [
        ("/v1/responses", "openai.types.responses:Response", _RESPONSES_BODY),
        (
            "/v1/responses",
            "openai.types.responses:Response",
            dict(_RESPONSES_BODY, status="incomplete", incomplete_details={"reason": "max_output_tokens"}),
        ),
        (
            "/v1/responses",
            "openai.types.responses:Response",
            dict(_RESPONSES_BODY, status="failed", error={"code": "server_error", "message": "x"}, usage=None),
        ),
        (
            "/v1/responses",
            "openai.types.responses:Response",
            dict(
                _RESPONSES_BODY,
                output=[
                    {
                        "type": "function_call",
                        "id": "fc_1",
                        "call_id": "call_1",
                        "name": "get_weather",
                        "arguments": '{"city": "Oslo"}',
                        "status": "completed",
                    },
                    *_RESPONSES_BODY["output"],
                ],
            ),
        ),
        ("/v1/responses", "openai.types.responses:Response", dict(_RESPONSES_BODY, status="cancelled")),
        ("/v1/chat/completions", "openai.types.chat:ChatCompletion", _CHAT_BODY),
        ("/v1/chat/completions", "openai.types.chat:ChatCompletion", _DEEPSEEK_BODY),
        ("/v1/chat/completions", "openai.types.chat:ChatCompletion", dict(_CHAT_BODY, usage=None)),
        (
            "/v1/chat/completions",
            "openai.types.chat:ChatCompletion",
            dict(
                _CHAT_BODY,
                usage={
                    "prompt_tokens": 120,
                    "completion_tokens": 30,
                    "total_tokens": 150,
                    "cost": 0.0042,  # a relay's reported cost (OpenRouter)
                    "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20, "audio_tokens": 0},
                    "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0},
                },
            ),
        ),
        (
            "/v1/chat/completions",
            "openai.types.chat:ChatCompletion",
            dict(_CHAT_BODY, usage={"prompt_tokens": 12.0, "completion_tokens": 3, "total_tokens": 15}),
        ),
        (
            "/v1/chat/completions",
            "openai.types.chat:ChatCompletion",
            dict(_CHAT_BODY, usage={"prompt_tokens": 10**12, "completion_tokens": 3, "total_tokens": 15}),
        ),
        (
            "/v1/chat/completions",
            "openai.types.chat:ChatCompletion",
            dict(_CHAT_BODY, usage={"prompt_tokens": -1, "completion_tokens": 3, "total_tokens": 2}),
        ),
        ("/v1/completions", "openai.types:Completion", _COMPLETION_BODY),
        ("/v1/embeddings", "openai.types:CreateEmbeddingResponse", _EMBEDDING_BODY),
    ],
    ids=[
        "responses",
        "responses-incomplete",
        "responses-failed",
        "responses-tool-call",
        "responses-cancelled",
        "chat",
        "deepseek-cache-hits",
        "chat-no-usage",
        "chat-relay-cost-cache-reasoning",
        "chat-float-count",
        "chat-absurd-count",
        "chat-negative-count",
        "completions",
        "embeddings",
    ],
)
def test_an_sdk_result_gives_the_same_info_as_its_body(path: str, type_path: str, body: dict) -> None:
    import importlib

    from otel_llm._parsers.response import apply_openai_object

    module, name = type_path.split(":")
    model_cls = getattr(importlib.import_module(module), name)
    route = R.match(path)
    assert route is not None
    from_body, from_object = ResponseInfo(), ResponseInfo()
    apply_body(route, json.loads(json.dumps(body)), from_body)
    apply_openai_object(route, model_cls.model_validate(body), from_object)
    assert from_object == from_body
    assert from_body.model == body["model"]


# --------------------------------------------------------------------------------------------------
# the hot path's JSON parser (orjson, with json.loads taking over where orjson refuses)

_JSON_CASES = [
    b'{"id": "chatcmpl-1", "usage": {"prompt_tokens": 3, "completion_tokens": 5}}',
    b'  {"a": [1, 2.5, -0, true, false, null]}  \n',
    b'{"a": "\\ud800 lone surrogate escape"}',  # orjson refuses it, json.loads keeps it
    b'{"a": "\\udfff\\ud800"}',
    b"[NaN, Infinity, -Infinity]",
    b"[1e400]",
    b"\xef\xbb\xbf" + b'{"bom": 1}',
    '{"utf16": "é"}'.encode("utf-16"),
    b'{"a": 1, "a": 2}',
    b'{"emoji": "\xf0\x9f\x98\x80", "escaped": "\\u00e9\\n"}',
    b'"just a string"',
    b"[18446744073709551615, -9223372036854775808]",
]


@pytest.mark.parametrize("raw", _JSON_CASES)
def test_the_hot_path_json_parser_gives_what_json_loads_gives(raw: bytes) -> None:
    from otel_llm._parsers._json import loads

    got, want = loads(raw), json.loads(raw)
    assert repr(got) == repr(want)  # repr: NaN compares unequal to itself


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"a": 1} trailing', b"\xff\xfe\xfa not utf-8", b"\xed\xa0\x80", b"{'single': 1}", b"[1,]"],
)
def test_the_hot_path_json_parser_raises_what_json_loads_raises(raw: bytes) -> None:
    from otel_llm._parsers._json import loads

    with pytest.raises(Exception) as ours:
        loads(raw)
    with pytest.raises(Exception) as theirs:
        json.loads(raw)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_the_hot_path_json_parser_takes_big_bodies_and_deep_nesting() -> None:
    from otel_llm._parsers._json import loads

    big = json.dumps({"data": [{"embedding": [0.001 * i for i in range(1536)], "index": k} for k in range(100)]})
    assert loads(big.encode()) == json.loads(big)
    deep = b"[" * 5000 + b"]" * 5000  # past orjson's depth limit: json.loads decides (it raises RecursionError)
    with pytest.raises(RecursionError):
        json.loads(deep)
    with pytest.raises(RecursionError):
        loads(deep)


# --------------------------------------------------------------------------------------------------
# the chat and completions branch of apply_body (its own, first) against the parsers' general helpers

_WEIRD_TEXT = st.one_of(st.text(max_size=8), st.sampled_from(["\ud800", "stop\udfff", "é", "", "length"]))
_COUNT = st.one_of(
    st.none(), st.integers(-5, 10**13), st.floats(allow_nan=True), st.booleans(), st.sampled_from(["12", 3.0])
)
_ANY = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), _WEIRD_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_WEIRD_TEXT, inner, max_size=3)),
    max_leaves=8,
)
_DETAILS = st.one_of(
    _ANY,
    st.fixed_dictionaries(
        {}, optional={k: _COUNT for k in ("cached_tokens", "cache_write_tokens", "audio_tokens", "reasoning_tokens")}
    ),
)
_USAGE = st.one_of(
    _ANY,
    st.fixed_dictionaries(
        {},
        optional={
            "prompt_tokens": _COUNT,
            "completion_tokens": _COUNT,
            "prompt_cache_hit_tokens": _COUNT,
            "cost": st.one_of(_COUNT, st.floats()),
            "prompt_tokens_details": _DETAILS,
            "completion_tokens_details": _DETAILS,
        },
    ),
)
_CHOICE = st.one_of(_ANY, st.fixed_dictionaries({}, optional={"finish_reason": st.one_of(_WEIRD_TEXT, _ANY)}))
_CHAT_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(_WEIRD_TEXT, _ANY),
        "id": st.one_of(_WEIRD_TEXT, _ANY),
        "error": _ANY,
        "choices": st.one_of(st.lists(_CHOICE, max_size=3), _ANY),
        "system_fingerprint": st.one_of(_WEIRD_TEXT, _ANY),
        "service_tier": st.one_of(_WEIRD_TEXT, _ANY),
        "usage": _USAGE,
    },
)


def _general_chat_reading(body: dict, info: ResponseInfo) -> None:
    """A chat or completions body read through the parsers' general helpers, one call each, as apply_body read it
    before chat and completions got their own branch."""
    from otel_llm._parsers import response as r

    if body.get("error"):
        r._set_error(info, body)
    for key in ("model", "id"):
        value = body.get(key)
        if value is not None:
            setattr(info, key, r._str(value) or getattr(info, key))
    r.apply_openai_choices(info, body.get("choices"))
    for key in ("system_fingerprint", "service_tier"):
        value = body.get(key)
        if isinstance(value, str):
            setattr(info, key, r.clean(value))
    u = body.get("usage")
    if isinstance(u, dict):
        r._take_usage(info, r.usage_from("openai.chat", u), u.get("cost"))


@settings(max_examples=400, deadline=None)
@given(bodies=st.lists(_CHAT_LIKE, min_size=1, max_size=3))
def test_the_chat_branch_reads_a_body_as_the_general_helpers_do(bodies: list[dict]) -> None:
    for path in ("/v1/chat/completions", "/v1/completions"):
        route = R.match(path)
        assert route is not None
        fast, general = ResponseInfo(), ResponseInfo()
        for body in bodies:  # one answer, or the events of one stream in order
            apply_body(route, body, fast)
            _general_chat_reading(body, general)
        assert repr(fast) == repr(general)  # repr: a NaN count compares unequal to itself


@pytest.mark.parametrize(
    "counts",
    [
        (10, 5, None, None, None, None, None),
        (0, 0, 0, 0, 0, 0, 0),
        (1_000_000_000, 1, 2, 3, 4, 5, 6),
        (12.0, 3, None, None, 2.0, None, None),
        (None, None, None, None, None, None, None),
    ],
)
def test_the_one_frame_usage_builds_what_new_usage_builds(counts: tuple) -> None:
    from otel_llm._parsers.response import _int, _usage
    from otel_llm._parsers.usage import new_usage

    got = _usage(*counts)
    assert got == new_usage(*map(_int, counts))
    assert all(type(v) is int or v is None for v in (got.input_tokens, got.reasoning_tokens))


@pytest.mark.parametrize("bad", [-1, 10**9 + 1, True, "12", 1.5, float("nan"), float("inf")])
def test_the_one_frame_usage_refuses_what_a_count_cannot_be(bad: object) -> None:
    from otel_llm._parsers.response import _BadCount, _usage

    with pytest.raises(_BadCount):
        _usage(10, bad)
    with pytest.raises(_BadCount):
        _usage(None, None, None, None, None, None, bad)


@pytest.mark.parametrize("raw", [*_JSON_CASES, b"{", b"\xff not utf-8", b"[1,]", b""])
def test_the_body_parsers_read_what_json_loads_reads(raw: bytes) -> None:
    route = R.match("/v1/chat/completions")
    assert route is not None
    try:
        want = json.loads(raw)
    except ValueError:
        want = None
    info = ResponseInfo()
    assert parse_body_bytes(route, raw, info) is (want is not None or raw == b"null")
    request = parse_request_bytes(route, raw)
    expected = parse_request(route, want)
    assert (request.model, request.stream, request.attributes) == (expected.model, expected.stream, expected.attributes)


_REASONS = st.sampled_from(["stop", "length", "st\u00f6p", "x\udfff"])
_TEXTS = st.sampled_from(["gpt-4.1", "gpt-4.1-2025-04-14", "", "mod\u00e8le", "x\ud800", "fp_1", "default", "flex"])


@settings(max_examples=300, deadline=None)
@given(
    first=st.fixed_dictionaries(
        {"model": _TEXTS, "id": _TEXTS, "system_fingerprint": st.none() | _TEXTS, "service_tier": st.none() | _TEXTS}
    ),
    later=st.lists(
        st.fixed_dictionaries(
            {
                "model": _TEXTS,
                "id": _TEXTS,
                "system_fingerprint": st.none() | _TEXTS,
                "service_tier": st.none() | _TEXTS,
                "reasons": st.lists(st.none() | _REASONS, max_size=3),
                "usage": st.none() | st.just({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}),
                "keep": st.lists(st.booleans(), min_size=4, max_size=4),  # per field: the first chunk's value
            }
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_a_later_sdk_chunk_gives_what_the_full_object_reading_gives(first: dict, later: list) -> None:
    """``apply_openai_later_chunk`` (the shortcut for a finish chunk whose other fields the first chunk gave) leaves
    a call's answer exactly as ``apply_openai_object`` leaves it, for chunks whose fields repeat the first one's
    or not, with non-ASCII and lone-surrogate text, several choices and usage."""
    from openai.types.chat import ChatCompletionChunk

    from otel_llm._parsers.response import apply_openai_later_chunk, apply_openai_object

    def chunk(fields: dict, reasons: list, usage: dict | None) -> ChatCompletionChunk:
        choices = [{"index": i, "delta": {}, "finish_reason": r} for i, r in enumerate(reasons)]
        body = dict(fields, object="chat.completion.chunk", created=1, choices=choices, usage=usage)
        return ChatCompletionChunk.construct(**body)  # as the SDK builds its chunks: no validation

    route = R.match("/v1/chat/completions")
    full, short = ResponseInfo(), ResponseInfo()
    head = chunk(first, [None], None)
    apply_openai_object(route, head, full)
    apply_openai_object(route, head, short)
    for item in later:
        fields = {k: first[k] if keep else item[k] for k, keep in zip(first, item["keep"], strict=True)}
        obj = chunk(fields, item["reasons"], item["usage"])
        apply_openai_object(route, obj, full)
        apply_openai_later_chunk(route, obj, short)
    assert short == full
