"""Raw httpx, httpx2 and requests calls whose JSON answer the client read whole (``client.post(...)``, not a
stream): the call is parsed from the answer's bytes and ended inside the client's ``send``, so the span and
its metric points are recorded by the time the caller gets the response, whatever the caller does with it
(``response.json()``, ``json.loads(response.text)``, nothing) and however long it keeps it. No thread is
started and no function of the client libraries other than ``send`` is wrapped. The request is read from the
bytes the client sends.

Real clients against the local fake provider; telemetry read back through in-memory exporters.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import pytest
import requests
import requests.models
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

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


@pytest.fixture
def no_gc() -> Iterator[None]:
    """No garbage collection during the test: nothing may depend on a response being freed."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


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


def _llm_spans(exporter: InMemorySpanExporter) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == "otel_llm"]


@each_client
def test_a_call_is_recorded_when_the_client_call_returns_though_the_caller_keeps_the_response(
    post: Any, provider: FakeProvider, telemetry: Telemetry, no_gc: None
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY)
    got = json.loads(r.text)  # the caller parses the text itself (orjson, pydantic, ...) and keeps the response
    telemetry.tracer_provider.force_flush()
    spans = _llm_spans(telemetry.exporter)
    assert len(spans) == 1
    _assert_filled_from(spans[0].attributes, got)
    assert spans[0].attributes["gen_ai.request.model"] == "gpt-4.1"
    _assert_metrics(telemetry, got)
    assert r.status_code == 200  # still alive, never parsed through the client


@each_client
def test_a_serverless_handler_flushing_at_its_end_exports_the_llm_span_with_its_own(
    post: Any, provider: FakeProvider, telemetry: Telemetry, no_gc: None
) -> None:
    """The serverless pattern: a handler span around the call, a batch processor, ``force_flush()`` before the
    function freezes. The LLM span is exported in that flush, under the handler's span."""
    batched = InMemorySpanExporter()
    telemetry.tracer_provider.add_span_processor(BatchSpanProcessor(batched, schedule_delay_millis=3_600_000))
    tracer = telemetry.tracer_provider.get_tracer("handler")
    with tracer.start_as_current_span("handler") as handler:
        r = post(provider.url + "/v1/chat/completions", BODY)
        answer = json.loads(r.text)["choices"][0]["message"]["content"]
    assert answer
    telemetry.tracer_provider.force_flush()
    names = sorted(s.name for s in batched.get_finished_spans())
    assert names == ["chat gpt-4.1", "handler"]
    (llm,) = _llm_spans(batched)
    assert llm.parent is not None and llm.parent.span_id == handler.get_span_context().span_id
    assert telemetry.point("gen_ai.client.operation.duration").count == 1
    assert r.status_code == 200  # kept alive past the flush


@each_client
def test_the_callers_json_is_the_plain_clients_and_makes_no_second_record(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY)
    first, second = r.json(), r.json()
    assert first == second == json.loads(r.content) and first is not second
    _assert_filled_from(telemetry.span().attributes, first)
    assert telemetry.point("gen_ai.client.operation.duration").count == 1


def test_raw_calls_start_no_thread(provider: FakeProvider, telemetry: Telemetry) -> None:
    before = {t.ident for t in threading.enumerate()}
    kept = [post(provider.url + "/v1/chat/completions", BODY) for post in POSTS.values()]
    ours = [t.name for t in threading.enumerate() if t.ident not in before and "otel" in t.name.lower()]
    assert ours == []
    assert len(telemetry.spans()) == len(kept)


def _library_own(fn: Any, package: Any) -> bool:
    """``fn`` is the library's own function: defined in its package's files, not a wrapper of it."""
    code = getattr(fn, "__code__", None)
    home = os.path.dirname(package.__file__)
    return not hasattr(fn, "__wrapped__") and code is not None and code.co_filename.startswith(home + os.sep)


@pytest.mark.parametrize("capture", ["NO_CONTENT", "SPAN_ONLY"])
def test_only_send_is_patched_response_json_and_body_encoding_are_the_libraries_own(
    capture: str, provider: FakeProvider, instrument: Callable[..., Telemetry]
) -> None:
    t = instrument(capture_content=capture)
    _requests(provider.url + "/v1/chat/completions", BODY)
    _httpx_sync(httpx)(provider.url + "/v1/chat/completions", BODY)
    for package, fn in [
        (httpx, httpx.Response.json),
        (httpx, httpx._content.encode_json),
        (httpx2, httpx2.Response.json),
        (httpx2, httpx2._content.encode_json),
        (requests, requests.models.Response.json),
        (requests, requests.models.PreparedRequest.prepare_body),
    ]:
        assert _library_own(fn, package), fn
    assert hasattr(httpx.Client.send, "__wrapped__") and hasattr(requests.Session.send, "__wrapped__")
    assert len(t.spans()) == 2


@each_client
def test_a_body_that_is_not_json_after_all_ends_the_call_and_raises_as_it_would(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    r = post(provider.url + "/v1/chat/completions", BODY, {"x-fake-fault": "malformed-json"})
    assert r.status_code == 200 and "json" in r.headers["content-type"]
    span = telemetry.span()  # ended with the answer
    assert span.attributes["http.response.status_code"] == 200
    assert "gen_ai.usage.input_tokens" not in span.attributes
    assert telemetry.in_flight() == 0
    with pytest.raises(ValueError) as raised:  # json.JSONDecodeError, or requests' own subclass of it
        r.json()
    telemetry.instrumentor.uninstrument()
    with pytest.raises(type(raised.value)):
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
# the request, read from the bytes the client sends


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
    post(provider.url + "/v1/chat/completions", REQUEST)
    a = telemetry.span().attributes
    assert a["gen_ai.request.model"] == "gpt-4.1" and a["gen_ai.request.temperature"] == 0.25
    assert a["gen_ai.request.max_tokens"] == 40 and a["gen_ai.request.seed"] == 7
    assert list(a["gen_ai.request.stop_sequences"]) == ["\n\n", "END"]


@each_client
def test_a_request_object_with_a_tuple_is_read_from_its_bytes(
    post: Any, provider: FakeProvider, telemetry: Telemetry
) -> None:
    post(provider.url + "/v1/chat/completions", {**REQUEST, "stop": ("END",)})
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
        )
    assert telemetry.span().attributes["gen_ai.request.model"] == "gpt-4.1-mini"
