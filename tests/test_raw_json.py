"""Raw httpx, httpx2 and requests calls whose JSON answer the caller parses itself with ``response.json()``:
the call is filled in from the caller's own parse (the body is not decoded a second time) and ends as if
its bytes had been read; a response read another way, or dropped, still ends its call (when it is freed,
after a while at the next call, or when instrumentation is removed). A request's ``json=`` object is read
as the object, not from the bytes the client made of it.

Real clients against the local fake provider; telemetry read back through in-memory exporters.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import httpx2
import pytest
import requests
from opentelemetry.trace import StatusCode

from otel_llm._patches import _common
from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

MSG = [{"role": "user", "content": "Say in a few words what a span is"}]
BODY = {"model": "gpt-4.1", "messages": MSG}
_OPTS: dict[str, Any] = {"timeout": 10, "verify": False}


def _httpx_sync(mod: Any) -> Callable[..., Any]:
    def post(url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        with mod.Client(**_OPTS) as c:
            return c.post(url, json=body, headers=headers)

    return post


def _httpx_async(mod: Any) -> Callable[..., Any]:
    def post(url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        async def go() -> Any:
            async with mod.AsyncClient(**_OPTS) as c:
                return await c.post(url, json=body, headers=headers)

        return asyncio.run(go())

    return post


def _requests(url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
    with requests.Session() as s:
        return s.post(url, json=body, headers=headers, timeout=10)


POSTS = {
    "httpx-sync": _httpx_sync(httpx),
    "httpx-async": _httpx_async(httpx),
    "httpx2-sync": _httpx_sync(httpx2),
    "httpx2-async": _httpx_async(httpx2),
    "requests": _requests,
}
each_client = pytest.mark.parametrize("post", list(POSTS.values()), ids=list(POSTS))


@pytest.fixture(autouse=True)
def _nothing_left_open() -> Any:
    yield
    assert not _common.PENDING, "a call was left open past its test"


def _assert_filled_from(a: Any, got: dict[str, Any]) -> None:
    """The span says what the answer the caller parsed says."""
    assert a["gen_ai.response.model"] == got["model"]
    assert a["gen_ai.response.id"] == got["id"]
    assert list(a["gen_ai.response.finish_reasons"]) == [c["finish_reason"] for c in got["choices"]]
    assert a["gen_ai.usage.input_tokens"] == got["usage"]["prompt_tokens"]
    assert a["gen_ai.usage.output_tokens"] == got["usage"]["completion_tokens"]
    assert a["gen_ai.usage.cost.amount"] > 0
    assert a["http.response.status_code"] == 200


def _assert_metrics(t: Telemetry, got: dict[str, Any]) -> None:
    assert t.point("gen_ai.client.operation.duration").count == 1
    assert t.point("gen_ai.client.token.usage", gen_ai__token__type="input").sum == got["usage"]["prompt_tokens"]
    assert t.point("gen_ai.client.token.usage", gen_ai__token__type="output").sum == got["usage"]["completion_tokens"]
    assert t.point("gen_ai.client.operation.cost").count == 1
    assert t.in_flight() == 0


@each_client
def test_the_callers_json_fills_in_the_call_and_ends_it(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY)
    assert telemetry.exporter.get_finished_spans() == ()  # open until the caller parses the answer
    got = r.json()
    assert got == json.loads(r.content)  # the caller's object, as the plain client makes it
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1
    _assert_filled_from(spans[0].attributes, got)
    assert spans[0].attributes["gen_ai.request.model"] == "gpt-4.1"
    _assert_metrics(telemetry, got)


@each_client
def test_an_answer_read_without_json_ends_its_call_when_the_response_is_freed(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY)
    got = json.loads(r.text)  # the caller parses the text itself (orjson, pydantic, ...)
    assert telemetry.exporter.get_finished_spans() == ()
    del r
    gc.collect()  # an httpx response is part of a reference cycle: freed by a collection
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1
    _assert_filled_from(spans[0].attributes, got)
    _assert_metrics(telemetry, got)


@each_client
def test_the_span_ends_when_the_answer_arrived_not_when_the_caller_parsed_it(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY)
    returned = time.time_ns()
    time.sleep(0.05)
    r.json()
    span = telemetry.span()
    assert span.end_time is not None and span.start_time is not None
    assert span.start_time <= span.end_time <= returned


@each_client
def test_json_called_twice_gives_the_same_object_both_times_and_one_call(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY)
    first, second = r.json(), r.json()
    assert first == second and first is not second  # each .json() parses anew, as it always did
    first["model"] = "changed by the caller"  # the caller's objects are its own: the telemetry keeps its values
    _assert_filled_from(telemetry.span().attributes, second)
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


@each_client
def test_json_called_in_another_thread_ends_the_call(post: Any, provider: FakeProvider, telemetry: Telemetry) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY)
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(r.json()))
    worker.start()
    worker.join(10)
    assert out
    _assert_filled_from(telemetry.span().attributes, out[0])
    assert telemetry.in_flight() == 0


@each_client
def test_a_body_that_is_not_json_after_all_raises_as_it_would_and_still_ends_the_call(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY, {"x-fake-fault": "malformed-json"})
    assert r.status_code == 200 and "json" in r.headers["content-type"]
    with pytest.raises(ValueError) as raised:  # json.JSONDecodeError, or requests' own subclass of it
        r.json()
    uninstrumented = type(raised.value)
    span = telemetry.span()
    assert span.attributes["http.response.status_code"] == 200
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert telemetry.in_flight() == 0
    telemetry.instrumentor.uninstrument()
    with pytest.raises(uninstrumented):
        post(provider.url + "/v1/chat/completions", BODY, {"x-fake-fault": "malformed-json"}).json()


@each_client
@pytest.mark.parametrize(("fault", "error_type"), [("429", "429"), ("429-quota", "insufficient_quota"), ("400", "400")])
def test_an_error_answer_parsed_by_the_caller_is_classified(
    post: Any, fault: str, error_type: str, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY, {"x-fake-fault": fault})
    assert r.status_code == int(fault[:3]) and "error" in r.json()
    span = telemetry.span()
    assert span.attributes["error.type"] == error_type and span.status.status_code is StatusCode.ERROR
    assert telemetry.point("gen_ai.client.operation.duration", error__type=error_type).count == 1
    assert telemetry.points("gen_ai.client.token.usage") == []


@each_client
def test_json_on_a_non_llm_response_is_the_plain_json(post: Any, provider: FakeProvider, telemetry: Telemetry) -> None:
    open_call = post(provider.url + "/v1/chat/completions", BODY)  # a call is open meanwhile
    other = post(provider.url + "/v1/not-an-llm-api", {"model": "gpt-4.1"})
    assert other.json() == json.loads(other.content)
    assert telemetry.exporter.get_finished_spans() == ()
    open_call.json()
    assert len(telemetry.spans()) == 1


def test_too_many_open_calls_end_the_oldest_from_its_bytes(
    provider: FakeProvider, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "MAX_PENDING", 2)
    kept = [_requests(provider.url + "/v1/chat/completions", BODY) for _ in range(3)]  # none parsed, all alive
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1  # the oldest, ended when the third made too many
    _assert_filled_from(spans[0].attributes, kept[0].json())
    for r in kept[1:]:
        r.json()
    assert len(telemetry.spans()) == 3 and telemetry.in_flight() == 0


def test_a_call_left_open_too_long_is_ended_at_the_next_call(
    provider: FakeProvider, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_common, "MAX_WAIT", 0.0)  # every open call has waited long enough
    kept = _httpx_sync(httpx)(provider.url + "/v1/chat/completions", BODY)
    assert telemetry.exporter.get_finished_spans() == ()
    later = _httpx_sync(httpx)(provider.url + "/v1/chat/completions", BODY)
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1
    _assert_filled_from(spans[0].attributes, kept.json())
    later.json()
    assert len(telemetry.spans()) == 2


def test_removing_instrumentation_ends_the_calls_left_open(provider: FakeProvider, telemetry: Telemetry) -> None:
    kept = _requests(provider.url + "/v1/chat/completions", BODY)
    telemetry.instrumentor.uninstrument()
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1
    _assert_filled_from(spans[0].attributes, kept.json())


def test_content_capture_reads_the_answer_from_its_bytes_at_once(
    provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(capture_content="SPAN_ONLY")
    r = _requests(provider.url + "/v1/chat/completions", BODY)
    span = t.span()  # ended with the answer: no .json() needed
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["role"] == "assistant"
    assert json.loads(span.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == MSG[0]["content"]
    r.json()
    assert len(t.spans()) == 1


# --------------------------------------------------------------------------------------------------
# the request's json= object


REQUEST = {
    "model": "gpt-4.1",
    "messages": MSG,
    "temperature": 0.25,
    "max_tokens": 40,
    "stop": ["\n\n", "END"],
    "seed": 7,
}


@each_client
def test_a_json_request_object_gives_the_request_attributes(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    post(provider.url + "/v1/chat/completions", REQUEST).json()
    a = telemetry.span().attributes
    assert a["gen_ai.request.model"] == "gpt-4.1" and a["gen_ai.request.temperature"] == 0.25
    assert a["gen_ai.request.max_tokens"] == 40 and a["gen_ai.request.seed"] == 7
    assert list(a["gen_ai.request.stop_sequences"]) == ["\n\n", "END"]


@each_client
def test_a_request_object_with_a_tuple_is_read_from_its_bytes(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    post(provider.url + "/v1/chat/completions", {**REQUEST, "stop": ("END",)}).json()
    assert list(telemetry.span().attributes["gen_ai.request.stop_sequences"]) == ["END"]


def test_a_requests_body_made_from_data_is_read_from_the_data_not_the_json_object(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    with requests.Session() as s:
        sent = json.dumps({"model": "gpt-4.1-mini", "messages": MSG}).encode()
        s.post(
            provider.url + "/v1/chat/completions",
            data=sent,
            json={"model": "not-what-was-sent"},
            headers={"content-type": "application/json"},
            timeout=10,
        ).json()
    assert telemetry.span().attributes["gen_ai.request.model"] == "gpt-4.1-mini"


def test_an_object_noted_for_a_request_that_was_never_sent_is_not_taken_for_the_next(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    with httpx.Client(**_OPTS) as c:
        c.build_request("POST", provider.url + "/v1/chat/completions", json={"model": "never-sent"})
        c.post(provider.url + "/v1/chat/completions", content=json.dumps(BODY).encode()).json()
    assert telemetry.span().attributes["gen_ai.request.model"] == "gpt-4.1"


def test_a_call_left_open_with_no_call_after_it_is_ended_by_the_sweeper(
    provider: FakeProvider, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last call before a pause, its response kept alive and never parsed with ``.json()``: no longer in
    flight once its answer is in, and ended from its bytes by the sweeper thread a moment later."""
    monkeypatch.setattr(_common, "MAX_WAIT", 0.1)
    monkeypatch.setattr(_common, "SWEEP_EVERY", 0.1)
    kept = _requests(provider.url + "/v1/chat/completions", BODY)
    assert telemetry.in_flight() == 0  # answered: not in flight, though its span is still open
    deadline = time.monotonic() + 10
    while not telemetry.exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.05)
    spans = telemetry.exporter.get_finished_spans()
    assert len(spans) == 1
    _assert_filled_from(spans[0].attributes, json.loads(kept.content))
    assert spans[0].end_time < time.time_ns()
