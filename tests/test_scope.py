"""Attribution scopes (#28): otel_llm.scope(...) and W3C baggage on spans, events, metric labels, roll-ups and
the in-process spend ledger, with the real openai and httpx clients against the fake provider."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import openai
import pytest
from opentelemetry import baggage, context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import otel_llm
from otel_llm import _names as n
from otel_llm.config import Config, ConfigError
from otel_llm.fakeprovider import FakeProvider
from otel_llm.spend import LEDGER
from tests.conftest import Telemetry
from tests.test_load import _SERVER, _leftovers

Instrument = Callable[..., Telemetry]
MSG = [{"role": "user", "content": "hello there"}]
ROLLUP = (
    n.ROLLUP_CALLS,
    n.ROLLUP_UNPRICED_CALLS,
    n.ROLLUP_ERRORS,
    n.ROLLUP_INPUT_TOKENS,
    n.ROLLUP_OUTPUT_TOKENS,
    n.ROLLUP_COST,
)
SPEND_METRICS = (n.DURATION, n.TOKEN_USAGE, n.COST)


def client(provider: FakeProvider) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)


def aclient(provider: FakeProvider) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=provider.url + "/v1", api_key="sk-test", max_retries=0)


def chat(c: openai.OpenAI, **kw: Any) -> Any:
    return c.chat.completions.create(model="gpt-4o-mini", messages=MSG, **kw)  # type: ignore[arg-type]


def llm_spans(t: Telemetry) -> list[Any]:
    return [s for s in t.spans() if s.attributes.get(n.OPERATION)]


def app_span(t: Telemetry, name: str) -> Any:
    hits = [s for s in t.exporter.get_finished_spans() if s.name == name]
    assert len(hits) == 1, name
    return hits[0]


def totals_of(spans: list[Any]) -> dict[str, Any]:
    """What a roll-up over these call spans must say."""
    return {
        n.ROLLUP_CALLS: len(spans),
        n.ROLLUP_UNPRICED_CALLS: sum(
            1 for s in spans if n.ERROR_TYPE not in s.attributes and n.COST_AMOUNT not in s.attributes
        ),
        n.ROLLUP_ERRORS: sum(1 for s in spans if n.ERROR_TYPE in s.attributes),
        n.ROLLUP_INPUT_TOKENS: sum(s.attributes.get(n.USAGE_INPUT, 0) for s in spans),
        n.ROLLUP_OUTPUT_TOKENS: sum(s.attributes.get(n.USAGE_OUTPUT, 0) for s in spans),
        n.ROLLUP_COST: pytest.approx(sum(s.attributes.get(n.COST_AMOUNT, 0.0) for s in spans)),
    }


def rollup_of(span: Any) -> dict[str, Any]:
    return {k: span.attributes.get(k) for k in ROLLUP}


def children(t: Telemetry, parent: Any) -> list[Any]:
    return [s for s in llm_spans(t) if s.parent is not None and s.parent.span_id == parent.context.span_id]


# --- 1. the scope on spans and events ---


def test_a_scope_puts_its_values_on_every_span_and_event_inside(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(emit_event=True)
    c = client(provider)
    with otel_llm.scope(tenant="acme", feature="search", user="u-1", conversation="c-9", region="eu"):
        chat(c)
        for _ in chat(c, stream=True):
            pass
    chat(c)  # after the scope: none of it
    inside, streamed, outside = llm_spans(t)
    want = {
        n.SCOPE_TENANT: "acme",
        n.SCOPE_FEATURE: "search",
        n.USER_ID: "u-1",
        n.CONVERSATION_ID: "c-9",
        "otel_llm.scope.region": "eu",
    }
    for span in (inside, streamed):
        assert {k: span.attributes.get(k) for k in want} == want
    assert not any(k in outside.attributes for k in want)
    events = t.events()
    assert len(events) == 3
    for event in events[:2]:
        assert {k: event.log_record.attributes.get(k) for k in want} == want
    assert not any(k in events[2].log_record.attributes for k in want)


def test_scope_values_are_cleaned_bounded_strings(provider: FakeProvider, telemetry: Telemetry) -> None:
    with otel_llm.scope(tenant="a\ud800b", feature="x" * 5000, user=42, conversation=None):
        chat(client(provider))
    attrs = telemetry.span().attributes
    assert attrs[n.SCOPE_TENANT] == "a\ufffdb"
    assert attrs[n.SCOPE_FEATURE] == "x" * 256
    assert attrs[n.USER_ID] == "42"
    assert n.CONVERSATION_ID not in attrs


def test_the_decorator_scopes_sync_and_async_functions(provider: FakeProvider, telemetry: Telemetry) -> None:
    @otel_llm.scope(tenant="sync-t", feature="f1")
    def sync_job() -> None:
        chat(client(provider))

    @otel_llm.scope(tenant="async-t", feature="f2")
    async def async_job() -> None:
        await aclient(provider).chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]

    sync_job()
    asyncio.run(async_job())
    sync_job()
    got = [(s.attributes[n.SCOPE_TENANT], s.attributes[n.SCOPE_FEATURE]) for s in llm_spans(telemetry)]
    assert got == [("sync-t", "f1"), ("async-t", "f2"), ("sync-t", "f1")]
    assert asyncio.iscoroutinefunction(async_job) and sync_job.__name__ == "sync_job"


def test_async_with_and_nested_scopes_inner_wins_outer_stays(provider: FakeProvider, telemetry: Telemetry) -> None:
    async def main() -> None:
        c = aclient(provider)
        async with otel_llm.scope(tenant="acme", feature="outer", user="u-1"):
            await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]
            with otel_llm.scope(feature="inner", step="plan"):
                await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]
            await c.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]

    asyncio.run(main())
    keys = (n.SCOPE_TENANT, n.SCOPE_FEATURE, n.USER_ID, "otel_llm.scope.step")
    got = [tuple(s.attributes.get(k) for k in keys) for s in llm_spans(telemetry)]
    assert got == [
        ("acme", "outer", "u-1", None),
        ("acme", "inner", "u-1", "plan"),
        ("acme", "outer", "u-1", None),
    ]


def test_threads_with_a_copied_context_and_asyncio_tasks_carry_the_scope(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    c = client(provider)
    with otel_llm.scope(tenant="threaded"):
        ctx = contextvars.copy_context()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: ctx.copy().run(chat, c), range(4)))
        plain = threading.Thread(target=chat, args=(c,))  # no copied context: no scope
        plain.start()
        plain.join()

    async def main() -> None:
        ac = aclient(provider)

        async def one(i: int) -> None:
            with otel_llm.scope(feature=f"task-{i}"):
                await asyncio.sleep(0)
                await ac.chat.completions.create(model="gpt-4o-mini", messages=MSG)  # type: ignore[arg-type]

        with otel_llm.scope(tenant="tasks"):
            await asyncio.gather(*(one(i) for i in range(4)))

    asyncio.run(main())
    spans = llm_spans(telemetry)
    tenants = sorted(str(s.attributes.get(n.SCOPE_TENANT)) for s in spans)
    assert tenants == ["None"] + ["tasks"] * 4 + ["threaded"] * 4
    features = sorted(s.attributes[n.SCOPE_FEATURE] for s in spans if s.attributes.get(n.SCOPE_TENANT) == "tasks")
    assert features == [f"task-{i}" for i in range(4)]


# --- 2. baggage ---


def test_baggage_scopes_calls_and_a_scope_in_code_wins(provider: FakeProvider, telemetry: Telemetry) -> None:
    c = client(provider)
    ctx = baggage.set_baggage("tenant", "from-gateway")
    ctx = baggage.set_baggage("feature", "gw-feature", ctx)
    ctx = baggage.set_baggage("user", "gw-user", ctx)
    ctx = baggage.set_baggage("unrelated", "x", ctx)
    token = context.attach(ctx)
    try:
        chat(c)
        with otel_llm.scope(tenant="from-code"):
            chat(c)
    finally:
        context.detach(token)
    token = context.attach(baggage.set_baggage("unrelated", "x"))
    try:
        chat(c)  # baggage, but none of the scope's entries
    finally:
        context.detach(token)
    by_gw, by_code, neither = llm_spans(telemetry)
    assert (by_gw.attributes[n.SCOPE_TENANT], by_gw.attributes[n.SCOPE_FEATURE], by_gw.attributes[n.USER_ID]) == (
        "from-gateway",
        "gw-feature",
        "gw-user",
    )
    # code wins for the keys it sets; baggage fills the others
    assert (by_code.attributes[n.SCOPE_TENANT], by_code.attributes[n.SCOPE_FEATURE]) == ("from-code", "gw-feature")
    assert not any(k.startswith(n.SCOPE_PREFIX) or k == n.USER_ID for k in neither.attributes)
    assert "otel_llm.scope.unrelated" not in by_gw.attributes
    cost = telemetry.point(n.COST, otel_llm__scope__tenant="from-gateway")
    assert cost.attributes[n.SCOPE_FEATURE] == "gw-feature" and n.USER_ID not in cost.attributes


def test_baggage_entry_names_are_configurable(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(scope_baggage="tenant=org.id,feature")
    token = context.attach(baggage.set_baggage("org.id", "org-7", baggage.set_baggage("tenant", "ignored")))
    try:
        chat(client(provider))
    finally:
        context.detach(token)
    assert t.span().attributes[n.SCOPE_TENANT] == "org-7"


def test_scope_options_are_validated() -> None:
    assert Config.load().scope_labels == ("tenant", "feature")
    assert Config.load().max_scope_values == 200
    assert Config.load(env={"OTEL_LLM_SCOPE_LABELS": "tenant, team"}).scope_labels == ("tenant", "team")
    assert Config.load({"scope_baggage": "none"}).scope_baggage == {}
    with pytest.raises(ConfigError, match="never become metric labels"):
        Config.load({"scope_labels": "tenant,user"})
    with pytest.raises(ConfigError):
        Config.load({"scope_labels": "bad-key"})
    with pytest.raises(ConfigError):
        Config.load({"max_scope_values": 0})


# --- 3. metric labels ---


def test_tenant_and_feature_label_spend_metrics_user_and_free_keys_never_do(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    c = client(provider)
    with otel_llm.scope(tenant="acme", feature="search", user="u-1", conversation="c-1", region="eu"):
        chat(c)
        for _ in chat(c, stream=True, stream_options={"include_usage": True}):
            pass
    for name in SPEND_METRICS:
        for p in telemetry.points(name):
            assert p.attributes[n.SCOPE_TENANT] == "acme" and p.attributes[n.SCOPE_FEATURE] == "search", name
            assert not {n.USER_ID, n.CONVERSATION_ID, "otel_llm.scope.region"} & set(p.attributes), name
    for p in telemetry.points(n.TOKEN_COST):
        assert p.attributes[n.SCOPE_TENANT] == "acme"
    # timing and rate-limit series carry no scope label
    for name in (n.TIME_TO_FIRST_CHUNK, n.RATE_LIMIT_REMAINING, n.ACTIVE_OPERATIONS):
        points = telemetry.points(name)
        assert points, name
        assert not any(k.startswith(n.SCOPE_PREFIX) for p in points for k in p.attributes), name


def test_scope_labels_option_picks_the_label_keys(provider: FakeProvider, instrument: Instrument) -> None:
    t = instrument(scope_labels="team")
    with otel_llm.scope(tenant="acme", team="blue"):
        chat(client(provider))
    (p,) = t.points(n.COST)
    assert p.attributes["otel_llm.scope.team"] == "blue" and n.SCOPE_TENANT not in p.attributes


def test_distinct_values_past_the_bound_become_other_and_spans_keep_them(
    provider: FakeProvider, instrument: Instrument
) -> None:
    t = instrument(max_scope_values=3)
    c = client(provider)
    for i in range(6):
        with otel_llm.scope(tenant=f"t{i}", feature="f"):
            chat(c)
    tenants = sorted(p.attributes[n.SCOPE_TENANT] for p in t.points(n.COST))
    assert tenants == ["_OTHER", "t0", "t1", "t2"]
    assert t.point(n.COST, otel_llm__scope__tenant="_OTHER").count == 3
    assert [s.attributes[n.SCOPE_TENANT] for s in llm_spans(t)] == [f"t{i}" for i in range(6)]
    assert otel_llm.spend(tenant="_OTHER").calls == 3


def test_ten_thousand_tenants_stay_in_the_bound_with_flat_memory() -> None:
    """10^4 distinct tenants through raw httpx (the provider in another process; spans dropped, no exporter):
    at most max_scope_values (200) tenant labels and ledger tenants, and from the 1,000th tenant on no memory
    kept per tenant (Python blocks over 8,500 tenants, tracemalloc bytes over the last 250)."""
    server = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    reader = InMemoryMetricReader()
    inst = otel_llm.LLMInstrumentor()
    inst.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider(metric_readers=[reader]))
    LEDGER.reset()
    seen = itertools.count()
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip() + "/v1/chat/completions"
        body = {"model": "gpt-4o-mini", "messages": MSG}
        with httpx.Client() as h:

            def loop(count: int) -> None:
                for _ in range(count):
                    i = next(seen)
                    with otel_llm.scope(tenant=f"tenant-{i}", feature=f"f{i % 3}", user=f"u{i}"):
                        h.post(url, json=body, headers={"authorization": "Bearer k"}).raise_for_status()
                reader.get_metrics_data()

            blocks, grown = _leftovers(loop, 1_000, 8_500, 250)
        assert next(seen) == 10_000
        data = reader.get_metrics_data()
        tenants = {
            p.attributes.get(n.SCOPE_TENANT)
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == n.COST
            for p in m.data.data_points
        }
        assert len(tenants) == 201 and "_OTHER" in tenants
        snap = otel_llm.spend()
        assert snap.calls == 10_000
        assert len({s.tenant for s in snap.scopes}) == 201
        assert otel_llm.spend(tenant="_OTHER").calls == 10_000 - 200
        assert blocks < 500, blocks  # 8,500 more tenants: nothing kept per tenant
        assert grown < 64 * 1024, grown
    finally:
        inst.uninstrument()
        LEDGER.reset()
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)


def test_without_scope_or_baggage_the_metric_attributes_are_unchanged(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    chat(client(provider))
    want = {n.OPERATION, n.PROVIDER, n.REQUEST_MODEL, n.RESPONSE_MODEL, n.SERVER_ADDRESS, n.SERVER_PORT}
    for name in SPEND_METRICS:
        for p in telemetry.points(name):
            assert set(p.attributes) - {n.TOKEN_TYPE} == want, name
    assert not any(k.startswith(n.SCOPE_PREFIX) or k == n.USER_ID for k in telemetry.span().attributes)
    assert otel_llm.spend().scopes == () and otel_llm.spend(tenant="anyone").calls == 0


# --- 4. roll-up ---


def test_rollup_equals_the_sum_of_the_call_spans_under_asyncio_gather(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")

    async def request(i: int, ac: openai.AsyncOpenAI) -> None:
        with tracer.start_as_current_span(f"request-{i}"), otel_llm.scope(tenant=f"t{i % 5}", feature="chat"):

            async def call(k: int) -> None:
                if k == 1:  # a stream, counted when it ends
                    stream = await ac.chat.completions.create(
                        model="gpt-4o-mini",
                        messages=MSG,  # type: ignore[arg-type]
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    async for _ in stream:
                        await asyncio.sleep(0)
                elif k == 2 and i % 4 == 0:  # a failed call
                    with pytest.raises(openai.InternalServerError):
                        await ac.chat.completions.create(
                            model="gpt-4o-mini",
                            messages=MSG,  # type: ignore[arg-type]
                            extra_headers={"x-fake-fault": "500"},
                        )
                else:
                    await ac.chat.completions.create(model=f"gpt-4o{'-mini' if k else ''}", messages=MSG)  # type: ignore[arg-type]

            await asyncio.gather(*(call(k) for k in range(4)))

    async def main() -> None:
        ac = aclient(provider)
        await asyncio.gather(*(request(i, ac) for i in range(24)))

    asyncio.run(main())
    assert len(llm_spans(telemetry)) == 96
    for i in range(24):
        parent = app_span(telemetry, f"request-{i}")
        calls = children(telemetry, parent)
        assert len(calls) == 4
        assert rollup_of(parent) == totals_of(calls)
        assert parent.attributes[n.ROLLUP_ERRORS] == (1 if i % 4 == 0 else 0)
        assert parent.attributes[n.ROLLUP_INPUT_TOKENS] > 0 and parent.attributes[n.ROLLUP_COST] > 0


def test_rollup_is_exact_under_threads(provider: FakeProvider, telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    c = client(provider)

    def request(i: int) -> None:
        with tracer.start_as_current_span(f"job-{i}"), otel_llm.scope(tenant=f"t{i}"):
            ctx = contextvars.copy_context()
            with ThreadPoolExecutor(4) as pool:  # its calls in 4 threads of their own
                list(pool.map(lambda k: ctx.copy().run(chat, c, max_tokens=10 + k), range(4)))

    with ThreadPoolExecutor(20) as outer:
        list(outer.map(request, range(20)))
    for i in range(20):
        parent = app_span(telemetry, f"job-{i}")
        calls = children(telemetry, parent)
        assert len(calls) == 4
        assert rollup_of(parent) == totals_of(calls)
    assert otel_llm.spend(tenant="t7").calls == 4


def test_nested_scopes_each_level_gets_its_own_inclusive_totals(provider: FakeProvider, telemetry: Telemetry) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    c = client(provider)
    with tracer.start_as_current_span("run"), otel_llm.scope(tenant="acme"):
        chat(c)
        with otel_llm.scope(feature="same-span"):  # no span between: one set of totals
            chat(c)
        with tracer.start_as_current_span("step"), otel_llm.scope(feature="plan"):
            chat(c)
            with pytest.raises(openai.BadRequestError):
                chat(c, extra_headers={"x-fake-fault": "400"})
    run, step = app_span(telemetry, "run"), app_span(telemetry, "step")
    all_calls = llm_spans(telemetry)
    step_calls = children(telemetry, step)
    assert len(all_calls) == 4 and len(step_calls) == 2
    assert rollup_of(run) == totals_of(all_calls)
    assert rollup_of(step) == totals_of(step_calls)
    assert (run.attributes[n.ROLLUP_CALLS], run.attributes[n.ROLLUP_ERRORS]) == (4, 1)
    assert (step.attributes[n.ROLLUP_CALLS], step.attributes[n.ROLLUP_ERRORS]) == (2, 1)


def test_a_stream_counts_when_it_ends_and_a_late_call_only_in_spend(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("app")
    c = client(provider)
    with tracer.start_as_current_span("req") as req, otel_llm.scope(tenant="late"):
        chat(c)
        stream = chat(c, stream=True, stream_options={"include_usage": True})
        assert req.attributes[n.ROLLUP_CALLS] == 1  # the stream has not ended yet
        next(iter(stream))
    assert app_span(telemetry, "req").attributes[n.ROLLUP_CALLS] == 1
    for _ in stream:  # ends after its scope's span ended: spend and metrics only
        pass
    assert app_span(telemetry, "req").attributes[n.ROLLUP_CALLS] == 1
    assert otel_llm.spend(tenant="late").calls == 2
    assert len(llm_spans(telemetry)) == 2


def test_no_rollup_without_a_recording_span(provider: FakeProvider, telemetry: Telemetry) -> None:
    with otel_llm.scope(tenant="acme"):
        chat(client(provider))
    assert telemetry.span().attributes[n.SCOPE_TENANT] == "acme"
    assert not any(n.ROLLUP_CALLS in s.attributes for s in telemetry.exporter.get_finished_spans())


# --- 5. spend by tenant and feature, the report ---


def test_spend_by_tenant_and_feature(provider: FakeProvider, telemetry: Telemetry) -> None:
    c = client(provider)
    for tenant, feature, k in (("acme", "search", 3), ("acme", "chat", 2), ("globex", "search", 1)):
        with otel_llm.scope(tenant=tenant, feature=feature):
            for _ in range(k):
                chat(c)
    chat(c)  # outside any scope: in the totals only
    total = otel_llm.spend()
    acme = otel_llm.spend(tenant="acme")
    search = otel_llm.spend(feature="search")
    one = otel_llm.spend(tenant="acme", feature="chat")
    assert (total.calls, acme.calls, search.calls, one.calls) == (7, 5, 4, 2)
    assert acme.total_usd == pytest.approx(5 * total.total_usd / 7)
    assert acme.models[0].model == "gpt-4o-mini" and acme.scopes == ()
    assert otel_llm.spend(tenant="nobody").calls == 0
    tenants = {s.tenant: s.calls for s in total.by_tenant()}
    assert tenants == {"acme": 5, "globex": 1}
    assert {(s.tenant, s.feature): s.calls for s in total.scopes} == {
        ("acme", "search"): 3,
        ("acme", "chat"): 2,
        ("globex", "search"): 1,
    }
    assert "scopes" in total.as_dict()


def test_reports_have_a_per_tenant_table(provider: FakeProvider, telemetry: Telemetry) -> None:
    from otel_llm.cli import render_tenant_table
    from otel_llm.report import from_metrics, render_html

    c = client(provider)
    for tenant, k in (("acme", 3), ("globex", 1)):
        with otel_llm.scope(tenant=tenant, feature="search"):
            for _ in range(k):
                chat(c)
    chat(c)
    report = from_metrics(telemetry.reader.get_metrics_data())
    rows = {r.tenant: r for r in report.tenants}
    assert set(rows) == {"acme", "globex", "-"}
    assert (rows["acme"].requests, rows["globex"].requests, rows["-"].requests) == (3, 1, 1)
    assert rows["acme"].cost_usd == pytest.approx(3 * rows["globex"].cost_usd)
    assert rows["acme"].input_tokens > 0 and report.tenants[0].tenant == "acme"
    page = render_html(report)
    assert "Spend by tenant" in page and "<td>globex</td>" in page
    table = render_tenant_table(report)
    assert table is not None and table.row_count == 3


# --- frameworks users build on: the scope reaches the calls they make ---


def test_calls_made_by_langchain_and_litellm_inside_a_scope_carry_it_and_roll_up(
    provider: FakeProvider, telemetry: Telemetry
) -> None:
    """langchain-openai and LiteLLM (sync in a worker thread, async, streamed) make their calls inside the scope:
    each call span carries the tenant and feature, and the request span's roll-up is the sum of them."""
    import litellm
    from langchain_openai import ChatOpenAI

    tracer = telemetry.tracer_provider.get_tracer("app")
    chat = ChatOpenAI(model="gpt-4.1", base_url=provider.url + "/v1", api_key="sk-x", max_retries=0)  # type: ignore[arg-type]
    lite: dict[str, Any] = {"model": "openai/gpt-4.1", "api_base": provider.url + "/v1", "api_key": "sk-x"}

    async def request() -> None:
        with tracer.start_as_current_span("framework-request"), otel_llm.scope(tenant="acme", feature="agents"):
            await asyncio.gather(
                chat.ainvoke("hello there"),
                litellm.acompletion(messages=MSG, **lite),
                asyncio.to_thread(litellm.completion, messages=MSG, **lite),
            )
            async for _ in chat.astream("hello again"):
                pass
            stream = await litellm.acompletion(messages=MSG, stream=True, **lite)
            async for _ in stream:
                pass

    asyncio.run(request())
    calls = llm_spans(telemetry)
    assert len(calls) == 5
    for span in calls:
        assert span.attributes[n.SCOPE_TENANT] == "acme" and span.attributes[n.SCOPE_FEATURE] == "agents"
    parent = app_span(telemetry, "framework-request")
    assert rollup_of(parent) == totals_of(calls)
    assert parent.attributes[n.ROLLUP_INPUT_TOKENS] > 0 and parent.attributes[n.ROLLUP_COST] > 0


def test_combinations_of_scope_labels_are_bounded_too(
    provider: FakeProvider, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each label keeps max_scope_values values, and their combinations (tenant x feature x model x server) are
    bounded as well: past the recorder's series bound a new combination is labelled _OTHER on metrics, while
    its spans keep the real values and every call is still counted."""
    from otel_llm import recorder

    monkeypatch.setattr(recorder, "_MAX_SCOPED_SERIES", 12)
    c = client(provider)
    for t in range(6):
        for f in range(6):  # 36 combinations, each key under its own bound
            with otel_llm.scope(tenant=f"t{t}", feature=f"f{f}"):
                chat(c)
    points = telemetry.points(n.DURATION)
    labelled = {(p.attributes.get(n.SCOPE_TENANT), p.attributes.get(n.SCOPE_FEATURE)) for p in points}
    assert ("_OTHER", "_OTHER") in labelled
    assert len(labelled) <= 12 + 1
    assert sum(p.count for p in points) == 36
    spans = llm_spans(telemetry)
    assert {(s.attributes[n.SCOPE_TENANT], s.attributes[n.SCOPE_FEATURE]) for s in spans} == {
        (f"t{t}", f"f{f}") for t in range(6) for f in range(6)
    }
