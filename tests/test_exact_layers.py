"""The patch layers written for a client library's own signature (the openai SDK's ``request``, httpx's and
httpx2's ``send``, sync and async) and the generic ``*args, **kwargs`` layers used when a library's signature
is another one: which one is installed, that both record the same telemetry and hand the caller the same
answer, and that the exact ones take every spelling of their arguments as the library does.

Real clients against the local fake provider; telemetry read back through in-memory exporters.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import httpx2
import openai
import pytest

import otel_llm._patches.httpx as httpx_patch
import otel_llm._patches.openai as openai_patch
from otel_llm._patches._common import signature_defaults
from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

MSG = [{"role": "user", "content": "Say hello to the observability team, please, in a few words."}]
_VARARGS = 0x04 | 0x08
TARGETS = [
    (openai._base_client.SyncAPIClient, "request"),
    (openai._base_client.AsyncAPIClient, "request"),
    (httpx.Client, "send"),
    (httpx.AsyncClient, "send"),
    (httpx2.Client, "send"),
    (httpx2.AsyncClient, "send"),
]


@pytest.fixture(params=["exact", "generic"])
def layers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, instrument: Any) -> Iterator[Telemetry]:
    """Instrumented with the exact layers (what the pinned libraries get), or with the generic ones (what a
    library with another signature gets)."""
    if request.param == "generic":
        for module in (httpx_patch, openai_patch):
            monkeypatch.setattr(module, "signature_defaults", lambda *a, **k: None)
    t = instrument()
    for owner, name in TARGETS:
        varargs = bool(owner.__dict__[name].__code__.co_flags & _VARARGS)
        assert varargs is (request.param == "generic"), (owner, name)
    yield t


def _client(provider: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test-SECRET", max_retries=0)


def _aclient(provider: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test-SECRET", max_retries=0)


_POINTS = ("gen_ai.client.operation.duration", "gen_ai.client.operation.cost")


def _recorded(t: Telemetry) -> dict[str, Any]:
    """The one span's attributes without what changes per call, and the call's metric point counts."""
    span = t.span()
    attrs = {k: v for k, v in span.attributes.items() if "time" not in k and k != "gen_ai.response.id"}
    return {
        "name": span.name,
        "attrs": attrs,
        "points": {name: len(t.points(name)) for name in _POINTS},
    }


def test_the_exact_layers_keep_each_original_signature_and_reach_it(instrument: Any) -> None:
    before = {(owner, name): owner.__dict__[name] for owner, name in TARGETS}
    instrument()
    for (owner, name), original in before.items():
        layer = owner.__dict__[name]
        assert layer is not original and layer.__wrapped__ is original
        assert not layer.__code__.co_flags & _VARARGS
        assert inspect.signature(layer) == inspect.signature(original)
        assert (
            layer.__code__.co_varnames[: layer.__code__.co_argcount + layer.__code__.co_kwonlyargcount]
            == (original.__code__.co_varnames[: original.__code__.co_argcount + original.__code__.co_kwonlyargcount])
        )
        assert layer.__kwdefaults__ == original.__kwdefaults__
        assert inspect.iscoroutinefunction(layer) is inspect.iscoroutinefunction(original)
        assert layer.__qualname__ == original.__qualname__


def test_a_sync_chat_is_recorded_the_same_through_either_layer(provider: FakeProvider, layers: Telemetry) -> None:
    r = _client(provider).chat.completions.create(model="gpt-4.1", messages=MSG)
    got = _recorded(layers)
    assert got["attrs"]["gen_ai.usage.output_tokens"] == r.usage.completion_tokens
    assert got["attrs"]["gen_ai.response.model"] == r.model and got["attrs"]["otel_llm.layer"] == "sdk"
    assert got["points"] == {"gen_ai.client.operation.duration": 1, "gen_ai.client.operation.cost": 1}
    assert got["attrs"]["http.response.status_code"] == 200


def test_an_async_chat_and_an_async_stream_are_recorded_through_either_layer(
    provider: FakeProvider, layers: Telemetry
) -> None:
    async def run() -> tuple[Any, list[Any]]:
        c = _aclient(provider)
        r = await c.chat.completions.create(model="gpt-4.1", messages=MSG)
        stream = await c.chat.completions.create(model="gpt-4.1", messages=MSG, stream=True)
        return r, [chunk async for chunk in stream]

    r, chunks = asyncio.run(run())
    assert chunks and all(chunk.choices for chunk in chunks) and all(chunk.usage is None for chunk in chunks)
    first, second = layers.spans()
    assert first.attributes["gen_ai.usage.output_tokens"] == r.usage.completion_tokens
    assert second.attributes["otel_llm.stream.outcome"] == "completed"
    assert second.attributes["gen_ai.usage.output_tokens"] > 0


def test_a_stream_gets_usage_asked_for_and_hidden_through_either_layer(
    provider: FakeProvider, layers: Telemetry
) -> None:
    provider.requests.clear()
    chunks = list(_client(provider).chat.completions.create(model="gpt-4.1", messages=MSG, stream=True))
    assert chunks and all(c.usage is None for c in chunks)
    assert json.loads(provider.requests[-1].body)["stream_options"] == {"include_usage": True}
    assert layers.span().attributes["gen_ai.usage.output_tokens"] > 0


def test_options_passed_by_keyword_or_copied_reach_the_sdk_through_either_layer(
    provider: FakeProvider, layers: Telemetry
) -> None:
    """The SDK's low-level ``request`` called with its options by keyword, and with options whose body cannot be
    swapped in place (a plain object's fields are not a dict): the body with ``stream_options`` is a copy's, the
    caller's options are left as they were, and the call is recorded once."""
    from openai._models import FinalRequestOptions

    options = FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data={"model": "gpt-4.1", "messages": MSG, "stream": True}
    )
    provider.requests.clear()
    stream = _client(provider).request(
        cast_to=openai.types.chat.ChatCompletionChunk,
        options=options,
        stream=True,
        stream_cls=openai.Stream[openai.types.chat.ChatCompletionChunk],
    )
    chunks = list(stream)
    assert chunks and "stream_options" not in options.json_data
    assert json.loads(provider.requests[-1].body)["stream_options"] == {"include_usage": True}
    assert layers.span().attributes["gen_ai.usage.output_tokens"] > 0


@pytest.mark.parametrize("mod", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_a_raw_post_and_a_get_pass_through_either_layer(provider: FakeProvider, layers: Telemetry, mod: Any) -> None:
    with mod.Client() as c:
        req = c.build_request("POST", provider.url + "/v1/chat/completions", json={"model": "gpt-4.1", "messages": MSG})
        r = c.send(request=req)  # the request by keyword
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0
        got = c.send(c.build_request("GET", provider.url + "/v1/models"), stream=False, follow_redirects=False)
        assert got.status_code == 200
    span = layers.span()  # the GET is no LLM call: one span
    assert span.attributes["otel_llm.layer"] == "http"
    assert span.attributes["gen_ai.usage.output_tokens"] == r.json()["usage"]["completion_tokens"]


@pytest.mark.parametrize("mod", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_an_async_raw_stream_passes_through_either_layer(provider: FakeProvider, layers: Telemetry, mod: Any) -> None:
    body = {"model": "gpt-4.1", "messages": MSG, "stream": True, "stream_options": {"include_usage": True}}

    async def run() -> bytes:
        async with mod.AsyncClient() as c:
            req = c.build_request("POST", provider.url + "/v1/chat/completions", json=body)
            r = await c.send(req, stream=True)
            try:
                return b"".join([part async for part in r.aiter_bytes()])
            finally:
                await r.aclose()

    raw = asyncio.run(run())
    assert raw.rstrip().endswith(b"data: [DONE]")
    attrs = layers.span().attributes
    assert attrs["otel_llm.stream.outcome"] == "completed" and attrs["gen_ai.usage.output_tokens"] > 0


@pytest.mark.parametrize("mod", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_a_raw_post_with_credentials_in_its_url_and_a_refused_one_through_either_layer(
    provider: FakeProvider, layers: Telemetry, mod: Any
) -> None:
    """A raw POST outside any SDK call (recorded inline by the exact layers): credentials in the URL's user part
    and a ``key=`` query stay out of the span, a lone surrogate in the prompt is sent as the caller wrote it, and
    a refused connection reaches the caller as the library raised it, its call recorded as failed."""
    host = provider.url.split("//", 1)[1]
    url = f"http://user:hunter2@{host}/v1/chat/completions?key=SECRET"
    body = json.dumps({"model": "gpt-4.1", "messages": [{"role": "user", "content": "odd \ud800 text"}]}).encode()
    headers = {"content-type": "application/json"}

    async def both() -> tuple[Any, Any]:
        async with mod.AsyncClient() as ac:
            got = await ac.send(ac.build_request("POST", url, content=body, headers=headers))
            try:
                await ac.send(ac.build_request("POST", "http://127.0.0.1:9/v1/chat/completions", content=body))
            except Exception as exc:  # whatever the library raises: compared below
                return got, exc
        return got, None

    with mod.Client() as c:
        r = c.send(c.build_request("POST", url, content=body, headers=headers))
        with pytest.raises(mod.ConnectError) as refused:
            c.send(c.build_request("POST", "http://127.0.0.1:9/v1/chat/completions", content=body))
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] > 0
    assert provider.requests[-1].body == body
    ar, aexc = asyncio.run(both())
    assert ar.status_code == 200 and type(aexc) is type(refused.value)  # (anyio words the refusal its own way)
    spans = layers.spans()
    assert len(spans) == 4
    for span in spans:
        text = repr(dict(span.attributes))
        assert "hunter2" not in text and "SECRET" not in text and "user:" not in text
    failed = [s for s in spans if "error.type" in s.attributes]
    assert len(failed) == 2 and all(s.attributes["otel_llm.layer"] == "http" for s in spans)


def test_the_exact_layers_refuse_what_the_library_refuses_with_its_own_words(instrument: Any) -> None:
    """A wrong argument is the library's TypeError, as its own function words it (its qualified name)."""
    with httpx.Client() as c:
        req = c.build_request("GET", "http://127.0.0.1:9/")
        original = httpx.Client.send
        instrument()
        with pytest.raises(TypeError) as ours:
            c.send(req, no_such_option=True)  # type: ignore[call-arg]
        with pytest.raises(TypeError) as theirs:
            original(c, req, no_such_option=True)  # type: ignore[call-arg]
        assert str(ours.value) == str(theirs.value)
        with pytest.raises(TypeError) as ours:
            c.send()  # type: ignore[call-arg]
        with pytest.raises(TypeError) as theirs:
            original(c)  # type: ignore[call-arg]
        assert str(ours.value) == str(theirs.value)


# --------------------------------------------------------------------------------------------------
# which signatures get an exact layer


def _sig_cases() -> list[tuple[str, Callable[..., Any], tuple | None]]:
    marker = object()

    def same(self, request, *, stream=False, auth=marker, follow_redirects=marker): ...  # type: ignore[no-untyped-def]

    def more(self, request, *, stream=False, auth=None, follow_redirects=None, extensions=None): ...  # type: ignore[no-untyped-def]

    def fewer(self, request, *, stream=False, auth=None): ...  # type: ignore[no-untyped-def]

    def positional_default(self, request=None, *, stream=False, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    def keyword_no_default(self, request, *, stream, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    def star_args(self, request, *args, stream=False, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    def star_kwargs(self, request, *, stream=False, auth=None, follow_redirects=None, **kw): ...  # type: ignore[no-untyped-def]

    def positional_only(self, request, /, *, stream=False, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    def renamed(self, req, *, stream=False, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    def reordered(self, request, *, auth=None, stream=False, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    async def coroutine(self, request, *, stream=False, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    return [
        ("same", same, (False, marker, marker)),
        ("more", more, None),
        ("fewer", fewer, None),
        ("positional_default", positional_default, None),
        ("keyword_no_default", keyword_no_default, None),
        ("star_args", star_args, None),
        ("star_kwargs", star_kwargs, None),
        ("positional_only", positional_only, None),
        ("renamed", renamed, None),
        ("reordered", reordered, None),
        ("coroutine", coroutine, None),
        ("not_a_function", len, None),
    ]


@pytest.mark.parametrize("name, func, expected", _sig_cases(), ids=[c[0] for c in _sig_cases()])
def test_only_the_signature_a_layer_was_written_for_gets_it(name: str, func: Any, expected: tuple | None) -> None:
    got = signature_defaults(func, ("self", "request"), ("stream", "auth", "follow_redirects"))
    if expected is None:
        assert got is None
    else:
        assert got is not None and len(got) == len(expected) and all(a is b for a, b in zip(got, expected, strict=True))


def test_a_coroutine_layer_is_only_for_a_coroutine_function() -> None:
    async def coroutine(self, request, *, stream=False, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    def plain(self, request, *, stream=False, auth=None, follow_redirects=None): ...  # type: ignore[no-untyped-def]

    names = (("self", "request"), ("stream", "auth", "follow_redirects"))
    assert signature_defaults(coroutine, *names, coroutine=True) == (False, None, None)
    assert signature_defaults(plain, *names, coroutine=True) is None
    assert signature_defaults(plain, *names) == (False, None, None)
