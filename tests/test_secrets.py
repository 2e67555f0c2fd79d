"""Nothing secret leaves the process, and message content only on opt-in, capped.

API keys (bearer, Azure ``api-key``, Anthropic ``x-api-key``, Gemini ``?key=``) and URL userinfo
must not appear in any exported span attribute, event, status description, metric label, or any
log line of ours (captured at DEBUG) - through every layer, answered, streamed, failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import httpx
import httpx2
import openai
import pytest
import requests

from otel_llm.fakeprovider import FakeProvider

from .conftest import Telemetry

BEARER = "sk-BEARERSECRET-7f3a9c"
AZURE = "azure-APIKEYSECRET-51be"
ANTHROPIC = "sk-ant-XAPIKEYSECRET-c0de"
GEMINI = "AIzaGEMINISECRET-9d2e"
USER, PASSWORD = "aliceUSERSECRET", "PASSWORDSECRET-e7"
SECRETS = (BEARER, AZURE, ANTHROPIC, GEMINI, USER, PASSWORD)

PROMPT = "Zanzibar marmalade protocol: summarise the quarterly llama inventory in few words."
LAYERS = ("openai", "openai-async", "httpx", "httpx2", "requests", "aiohttp")
RAW = ("httpx", "httpx2", "requests", "aiohttp")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def everything(t: Telemetry, caplog: pytest.LogCaptureFixture) -> str:
    """Every exported string: span names, attributes, events, links, status; metric names and labels;
    and every log record of ours, with its traceback."""
    out: list[str] = []
    for s in t.exporter.get_finished_spans():
        out.append(s.name)
        out.append(json.dumps(dict(s.attributes or {}), default=str))
        out.extend(f"{e.name} {json.dumps(dict(e.attributes or {}), default=str)}" for e in s.events)
        out.extend(json.dumps(dict(link.attributes or {}), default=str) for link in s.links)
        out.append(str(s.status.description))
    data = t.reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out.append(metric.name)
                out.extend(json.dumps(dict(p.attributes), default=str) for p in metric.data.data_points)
    handler = logging.Formatter()
    for r in caplog.records:
        if r.name.startswith(("otel_llm", "opentelemetry")):
            out.append(handler.format(r))
    return "\n".join(out)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="otel_llm")
    caplog.set_level(logging.DEBUG, logger="opentelemetry")
    return caplog


# --------------------------------------------------------------------------------------------------
# the calls: each layer, each way of carrying a key, answered, streamed, and failed


_REDACTED_USER = "http://REDACTED:REDACTED@127.0.0.1:"


def _userinfo_url(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@")


def _openai_calls(url: str, is_async: bool) -> None:
    base = _userinfo_url(url) + "/v1"
    dead = f"http://{USER}:{PASSWORD}@127.0.0.1:{_closed_port()}/v1"
    kw: dict[str, Any] = {"api_key": BEARER, "max_retries": 0, "default_query": {"key": GEMINI}}
    msgs = [{"role": "user", "content": PROMPT}]
    if not is_async:
        c = openai.OpenAI(base_url=base, **kw)
        c.chat.completions.create(model="gpt-4.1", messages=msgs)
        list(c.chat.completions.create(model="gpt-4.1", messages=msgs, stream=True))
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model="gpt-4.1", messages=msgs, extra_headers={"x-fake-fault": "401"})
        with pytest.raises(openai.APIConnectionError):
            openai.OpenAI(base_url=dead, **kw).chat.completions.create(model="gpt-4.1", messages=msgs)
        return

    async def run() -> None:
        c = openai.AsyncOpenAI(base_url=base, **kw)
        await c.chat.completions.create(model="gpt-4.1", messages=msgs)
        async for _ in await c.chat.completions.create(model="gpt-4.1", messages=msgs, stream=True):
            pass
        with pytest.raises(openai.AuthenticationError):
            await c.chat.completions.create(model="gpt-4.1", messages=msgs, extra_headers={"x-fake-fault": "401"})
        with pytest.raises(openai.APIConnectionError):
            await openai.AsyncOpenAI(base_url=dead, **kw).chat.completions.create(model="gpt-4.1", messages=msgs)
        await c.close()

    asyncio.run(run())


def _raw_requests(url: str) -> list[tuple[str, dict[str, str], dict[str, Any], dict[str, str] | None]]:
    """(url, headers, json body, params) of every raw call: Azure, Anthropic, Gemini, each whole and
    streamed, each also failing, and one to a closed port."""
    base = _userinfo_url(url)
    msgs = [{"role": "user", "content": PROMPT}]
    azure = f"{base}/openai/deployments/gpt-4.1/chat/completions?api-version=2024-10-21&api-key={AZURE}"
    gemini = f"{base}/v1beta/models/gemini-2.5-flash"
    gbody = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    anthropic_headers = {"x-api-key": ANTHROPIC, "anthropic-version": "2023-06-01"}
    calls: list[tuple[str, dict[str, str], dict[str, Any], dict[str, str] | None]] = []
    for fault in ({}, {"x-fake-fault": "401"}):
        calls += [
            (azure, {"api-key": AZURE, **fault}, {"messages": msgs}, None),
            (azure, {"api-key": AZURE, **fault}, {"messages": msgs, "stream": True}, None),
            (f"{base}/v1/messages", {**anthropic_headers, **fault}, {"model": "claude-sonnet-4.5", "max_tokens": 50,
                                                                     "messages": msgs}, None),
            (f"{base}/v1/messages", {**anthropic_headers, **fault}, {"model": "claude-sonnet-4.5", "max_tokens": 50,
                                                                     "messages": msgs, "stream": True}, None),
            (f"{gemini}:generateContent?key={GEMINI}", dict(fault), gbody, None),
            (f"{gemini}:streamGenerateContent?alt=sse&key={GEMINI}", dict(fault), gbody, None),
            (f"{gemini}:generateContent", dict(fault), gbody, {"key": GEMINI}),  # the key as params=
            (f"{url}/v1/chat/completions", {"authorization": f"Bearer {BEARER}", **fault},  # aiohttp: not with userinfo
             {"model": "gpt-4.1", "messages": msgs, "stream": True}, None),
        ]  # fmt: skip
    dead = f"http://{USER}:{PASSWORD}@127.0.0.1:{_closed_port()}/v1/chat/completions?key={GEMINI}"
    calls.append((dead, {"api-key": AZURE}, {"model": "gpt-4.1", "messages": msgs}, None))
    return calls


def _raw_calls(layer: str, url: str) -> int:
    calls = _raw_requests(url)
    if layer == "aiohttp":

        async def run() -> None:
            async with aiohttp.ClientSession() as s:
                for u, h, body, params in calls:
                    try:
                        async with s.post(u, headers=h, json=body, params=params) as r:
                            await r.read()
                    except aiohttp.ClientConnectionError:
                        pass

        asyncio.run(run())
        return len(calls)
    if layer == "requests":
        with requests.Session() as s:
            for u, h, body, params in calls:
                try:
                    s.post(u, headers=h, json=body, params=params, timeout=10).close()
                except requests.ConnectionError:
                    pass
        return len(calls)
    mod = httpx if layer == "httpx" else httpx2
    with mod.Client() as c:
        for u, h, body, params in calls:
            try:
                c.post(u, headers=h, json=body, params=params).read()
            except mod.ConnectError:
                pass
    return len(calls)


@pytest.mark.parametrize("layer", LAYERS)
def test_no_key_or_password_reaches_telemetry_or_logs(
    layer: str, provider: FakeProvider, telemetry: Telemetry, logs: pytest.LogCaptureFixture
) -> None:
    if layer.startswith("openai"):
        _openai_calls(provider.url, layer == "openai-async")
        n = 4
    else:
        n = _raw_calls(layer, provider.url)
    assert len(telemetry.spans()) == n
    dump = everything(telemetry, logs)
    for secret in SECRETS:
        assert secret not in dump, secret
    assert "Bearer" not in dump and "Basic " not in dump
    urls = [s.attributes.get("url.full") for s in telemetry.spans() if s.attributes.get("url.full")]
    if layer in RAW:
        # userinfo as the HTTP conventions write it: REDACTED:REDACTED@ (the two plain-URL calls have none)
        assert len(urls) == n and all(u.startswith(("http://127.0.0.1:", _REDACTED_USER)) for u in urls), urls
        assert sum(u.startswith(_REDACTED_USER) for u in urls) == n - 2, urls
        assert sum(f":{provider.port}/v1/chat/completions" in u for u in urls) == 2
        assert any("api-version=2024-10-21" in u for u in urls), "harmless query parameters are kept"


# --------------------------------------------------------------------------------------------------
# content: never by default; on opt-in, capped


def _content_calls(url: str) -> list[str]:
    """Whole and streamed calls through the SDK and raw HTTP; returns every completion text."""
    texts: list[str] = []
    c = openai.OpenAI(base_url=url + "/v1", api_key=BEARER, max_retries=0)
    msgs = [{"role": "system", "content": "Answer as a pirate. " + PROMPT}, {"role": "user", "content": PROMPT}]
    texts.append(c.chat.completions.create(model="gpt-4.1", messages=msgs).choices[0].message.content or "")
    chunks = c.chat.completions.create(
        model="gpt-4.1", messages=msgs, stream=True, extra_headers={"x-fake-chunks": "9"}
    )
    texts.append("".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices))
    body = {"model": "claude-sonnet-4.5", "max_tokens": 80, "system": "Be terse. " + PROMPT, "messages": msgs[1:]}
    answer = httpx.post(url + "/v1/messages", json=body, headers={"x-api-key": ANTHROPIC}).json()
    texts.append(answer["content"][0]["text"])
    gbody = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    answer = requests.post(url + "/v1beta/models/gemini-2.5-flash:generateContent", json=gbody, timeout=10).json()
    texts.append(answer["candidates"][0]["content"]["parts"][0]["text"])
    return texts


def test_without_opt_in_no_prompt_or_completion_text_appears_anywhere(
    provider: FakeProvider, telemetry: Telemetry, logs: pytest.LogCaptureFixture
) -> None:
    texts = _content_calls(provider.url)
    assert len(telemetry.spans()) == 4
    dump = everything(telemetry, logs)
    for marker in ("Zanzibar", "marmalade", "llama inventory", "pirate", "terse"):
        assert marker not in dump, marker
    for text in texts:
        assert len(text) > 30
        assert text[:30] not in dump and text[-30:] not in dump
    for s in telemetry.spans():
        assert not {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"} & set(s.attributes)


@pytest.mark.parametrize("mode", ["SPAN_ONLY", "SPAN_AND_EVENT"])
def test_with_opt_in_content_is_recorded_on_spans_only_and_capped(
    mode: str, provider: FakeProvider, instrument: Callable[..., Telemetry], logs: pytest.LogCaptureFixture
) -> None:
    cap = 48
    t = instrument(capture_content=mode, content_max_length=cap)
    texts = _content_calls(provider.url)
    spans = t.spans()
    assert len(spans) == 4
    for s in spans:
        a = s.attributes
        assert {"gen_ai.input.messages", "gen_ai.output.messages"} <= set(a), (s.name, set(a))
        for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
            if key in a:
                value = a[key]
                assert len(value) <= cap + len("…[truncated]"), (key, len(value))
                assert value.endswith("…[truncated]") or len(value) <= cap
    dump = everything(t, logs)
    # the prompt's tail lies past the cap: it is nowhere; nor is the end of any completion
    assert "llama inventory" not in dump
    for text in texts:
        assert text[-30:] not in dump
    # and content is never on metrics or in logs
    data = t.reader.get_metrics_data()
    labels = json.dumps(
        [dict(p.attributes) for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
         for p in m.data.data_points]
    )  # fmt: skip
    assert "Zanzibar" not in labels and texts[0][:20] not in labels
    assert not any("Zanzibar" in r.getMessage() for r in logs.records)


# --------------------------------------------------------------------------------------------------
# url.full: every credential-bearing query parameter, however spelt, keeps its name and loses its value

# (name as the client sends it, its secret value): the HTTP conventions' list, SigV4 and SAS URLs, API
# management keys, OAuth codes and tokens, passwords; in other cases, percent-encoded, with '+' and ';'
CREDENTIAL_PARAMS = [
    ("X-Amz-Signature", "AMZSIGSECRET1"),
    ("X-Amz-Security-Token", "AMZTOKENSECRET2"),
    ("X-Amz-Credential", "AKIAAMZCREDSECRET3"),
    ("AWSAccessKeyId", "AKIAACCESSKEYSECRET4"),
    ("Signature", "SIGNATURESECRET5"),
    ("X-Goog-Signature", "GOOGSIGSECRET6"),
    ("sig", "SASSIGSECRET7"),
    ("subscription-key", "APIMKEYSECRET8"),
    ("Ocp-Apim-Subscription-Key", "OCPKEYSECRET9"),
    ("code", "OAUTHCODESECRET10"),
    ("client_secret", "CLIENTSECRET11"),
    ("password", "PASSWORDPARAMSECRET12"),
    ("refresh_token", "REFRESHSECRET13"),
    ("ID_TOKEN", "IDTOKENSECRET14"),
    ("Api_Key", "APIKEYSECRET15"),
    ("%73ig", "ENCODEDSIGSECRET16"),  # sig
    ("X%2dAmz%2DSignature", "ENCODEDAMZSECRET17"),
    ("ke%79", "ENCODEDKEYSECRET18"),  # key
    ("+token+", "PLUSTOKENSECRET19"),  # " token " as a server reads it
    ("x-tenant-secret", "CONFIGUREDSECRET20"),  # redact_query_params
]
HARMLESS = "api-version=2024-10-21&beta=true&keyword=llama"


def _credential_url(base: str) -> str:
    query = "&".join(f"{name}={value}" for name, value in CREDENTIAL_PARAMS)
    # ';' is a separator to some servers: the key after it is hidden too
    return f"{base}/v1/chat/completions?{HARMLESS}&{query}&mode=a;x-api-key=SEMICOLONSECRET21"


CREDENTIAL_SECRETS = (*(v for _, v in CREDENTIAL_PARAMS), "SEMICOLONSECRET21", USER, PASSWORD)


def _send(layer: str, url: str) -> int:
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}
    if layer == "requests":
        with requests.Session() as s:
            return s.post(url, json=body, timeout=10).status_code
    if layer == "aiohttp":

        async def run() -> int:
            from yarl import URL

            async with aiohttp.ClientSession() as s, s.post(URL(url, encoded=True), json=body) as r:
                await r.read()
                return r.status

        return asyncio.run(run())
    mod = httpx if layer == "httpx" else httpx2
    with mod.Client() as c:
        return c.post(url, json=body).status_code


@pytest.mark.parametrize("layer", RAW)
def test_credential_query_parameters_keep_their_names_and_lose_their_values(
    layer: str, provider: FakeProvider, instrument: Callable[..., Telemetry], logs: pytest.LogCaptureFixture
) -> None:
    t = instrument(redact_query_params="X-Tenant-Secret")
    assert _send(layer, _credential_url(_userinfo_url(provider.url))) == 200
    span = t.span()
    dump = everything(t, logs)
    for secret in CREDENTIAL_SECRETS:
        assert secret not in dump, secret
    url = span.attributes["url.full"]
    assert isinstance(url, str) and url.startswith(_REDACTED_USER), url
    assert url.count("=REDACTED") == len(CREDENTIAL_PARAMS) + 1, url  # every name kept, with REDACTED
    assert "a;x-api-key=REDACTED" in url and HARMLESS in url, url
    for name in ("X-Amz-Signature=", "AWSAccessKeyId=", "Ocp-Apim-Subscription-Key=", "x-tenant-secret="):
        assert f"{name}REDACTED" in url, (name, url)


def test_extra_redacted_names_come_from_the_environment_and_bad_ones_are_refused(
    provider: FakeProvider,
    instrument: Callable[..., Telemetry],
    logs: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from otel_llm.config import ConfigError

    for bad, why in (("tenant=x", "'='"), (["ok", 7], "7 is not"), (["", "x"], "'' is not"), (42, "expected")):
        with pytest.raises(ConfigError, match="redact_query_params") as err:
            instrument(redact_query_params=bad)
        assert why in str(err.value), (bad, str(err.value))
    monkeypatch.setenv("OTEL_LLM_REDACT_QUERY_PARAMS", "x-tenant-secret, Session_ID")
    t = instrument()
    url = f"{provider.url}/v1/chat/completions?x-tenant-secret=ENVSECRET1&session-id=ENVSECRET2&sig=SIGSECRET3&n=1"
    assert _send("httpx", url) == 200
    assert t.span().attributes["url.full"] == (
        f"{provider.url}/v1/chat/completions?x-tenant-secret=REDACTED&session-id=REDACTED&sig=REDACTED&n=1"
    )
    dump = everything(t, logs)
    assert "ENVSECRET" not in dump and "SIGSECRET3" not in dump


def test_hostile_urls_are_scrubbed_whole_and_never_grow_the_cache() -> None:
    """10,000 parameters, invalid and non-UTF-8 percent-escapes, a 1 MB URL: every secret value hidden,
    nothing raised, and the URL cache stays within its bound (a URL past CACHED_URL_MAX is not kept)."""
    from otel_llm import _urls
    from otel_llm._urls import CACHED_URL_MAX, URL_CACHE_SIZE, scrub_url

    many = "&".join(f"p{i}=v{i}&key=S{i}X" for i in range(5000))
    out = scrub_url("https", "h.example", None, "/v1/chat/completions?" + many)
    assert out.count("key=REDACTED") == 5000 and "X&" not in out and out.count("&") == 9999
    assert "p4999=v4999" in out

    odd = "/x?%zz=1&%4=2&%=3&a%=4&%ff%fekey=5&ke%79=SECRET6&%6B%65%79=SECRET7&%C3%28=8&%E2%82=9&%%%=10&=11&&"
    assert scrub_url("http", "h", 80, odd) == (
        "http://h:80/x?%zz=1&%4=2&%=3&a%=4&%ff%fekey=5&ke%79=REDACTED&%6B%65%79=REDACTED&%C3%28=8&%E2%82=9&%%%=10&=11&&"
    )
    assert scrub_url("http", "::1", 8000, "/x?sig=S#access_token=FRAG") == "http://[::1]:8000/x?sig=REDACTED"

    _urls._cached.cache_clear()
    huge = "/v1/chat/completions?" + "a" * 1_000_000 + "=1&token=HUGESECRET&" + "b=" + "c" * 1_000_000
    out = scrub_url("https", "h.example", 443, huge, True)
    assert "HUGESECRET" not in out and "token=REDACTED" in out and out.startswith("https://REDACTED:REDACTED@")
    assert len(out) == len("https://REDACTED:REDACTED@h.example:443") + len(huge) - len("HUGESECRET") + len("REDACTED")
    assert _urls._cached.cache_info().currsize == 0  # too big to keep
    for i in range(3 * URL_CACHE_SIZE):
        scrub_url("https", f"h{i}.example", None, f"/v1/x?key=K{i}&" + "q" * (CACHED_URL_MAX - 30))
    assert _urls._cached.cache_info().currsize == URL_CACHE_SIZE
