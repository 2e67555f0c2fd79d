"""Tests for otel_llm.spend: counting rules, snapshots, cardinality and thread safety."""

from __future__ import annotations

import json
import threading

import pytest

from otel_llm._parsers.usage import Usage
from otel_llm.spend import LEDGER, MAX_KEYS, ModelSpend, Spend, SpendLedger


def test_a_priced_call_adds_its_cost_and_every_token_count() -> None:
    ledger = SpendLedger()
    ledger.add("openai", "gpt-4.1", Usage(1_000, 200, 300, 40, 50), 0.0041)
    ledger.add("openai", "gpt-4.1", Usage(10, 20), 0.0001)
    snap = ledger.snapshot()
    assert snap.models == (
        ModelSpend(
            provider="openai",
            model="gpt-4.1",
            calls=2,
            unpriced_calls=0,
            errors=0,
            input_tokens=1_010,
            output_tokens=220,
            cache_read_tokens=300,
            cache_write_tokens=40,
            reasoning_tokens=50,
            cost_usd=pytest.approx(0.0042),  # type: ignore[arg-type]
        ),
    )
    assert (snap.total_usd, snap.calls, snap.unpriced_calls) == (pytest.approx(0.0042), 2, 0)


def test_a_call_without_cost_counts_as_unpriced_with_or_without_usage() -> None:
    ledger = SpendLedger()
    ledger.add("acme", "mystery-1", Usage(5, 6), None)
    ledger.add("acme", "mystery-1", None, None)
    m = ledger.snapshot().by_model("mystery-1")
    assert m is not None
    assert (m.calls, m.unpriced_calls, m.errors, m.input_tokens, m.output_tokens, m.cost_usd) == (2, 2, 0, 5, 6, 0.0)


def test_a_failed_call_counts_as_a_call_and_an_error_but_not_as_unpriced() -> None:
    ledger = SpendLedger()
    ledger.add("openai", "gpt-4.1", None, None, error=True)
    snap = ledger.snapshot()
    m = snap.models[0]
    assert (m.calls, m.errors, m.unpriced_calls, m.cost_usd) == (1, 1, 0, 0.0)
    assert (snap.calls, snap.unpriced_calls) == (1, 0)


def test_a_failed_call_that_was_billed_still_adds_its_cost() -> None:
    ledger = SpendLedger()
    ledger.add("openrouter", "anthropic/claude-sonnet-4.5", Usage(100, 7), 0.002, error=True)
    m = ledger.snapshot().models[0]
    assert (m.calls, m.errors, m.unpriced_calls, m.cost_usd, m.output_tokens) == (1, 1, 0, 0.002, 7)


def test_a_zero_cost_is_priced_not_unpriced() -> None:
    ledger = SpendLedger()
    ledger.add("openrouter", "x:free", Usage(1, 1), 0.0)
    assert ledger.snapshot().unpriced_calls == 0


def test_models_are_sorted_most_expensive_first() -> None:
    ledger = SpendLedger()
    ledger.add("openai", "gpt-4.1-mini", Usage(1, 1), 0.001)
    ledger.add("anthropic", "claude-sonnet-4-5", Usage(1, 1), 0.5)
    ledger.add("openai", "gpt-4.1", Usage(1, 1), 0.02)
    ledger.add("acme", "unpriced-b", None, None)
    ledger.add("acme", "unpriced-a", None, None)
    ledger.add("acme", "unpriced-a", None, None)
    assert [m.model for m in ledger.snapshot().models] == [
        "claude-sonnet-4-5",
        "gpt-4.1",
        "gpt-4.1-mini",
        "unpriced-a",  # equal cost: more calls first
        "unpriced-b",
    ]


def test_by_model_sums_over_providers_and_by_provider_lists_its_models() -> None:
    ledger = SpendLedger()
    ledger.add("openai", "gpt-4.1", Usage(100, 10), 0.25)
    ledger.add("azure.ai.openai", "gpt-4.1", Usage(50, 5), 0.5, error=True)
    ledger.add("openai", "gpt-4.1-mini", Usage(1, 1), 0.125)
    snap = ledger.snapshot()

    both = snap.by_model("gpt-4.1")
    assert both is not None
    assert (both.provider, both.calls, both.errors, both.input_tokens, both.cost_usd) == ("*", 2, 1, 150, 0.75)
    single = snap.by_model("gpt-4.1-mini")
    assert single is not None and single.provider == "openai"
    assert snap.by_model("never-called") is None

    assert [m.model for m in snap.by_provider("openai")] == ["gpt-4.1", "gpt-4.1-mini"]
    assert sum(m.cost_usd for m in snap.by_provider("openai")) == 0.375
    assert snap.by_provider("nobody") == ()


def test_as_dict_is_plain_json() -> None:
    ledger = SpendLedger()
    ledger.add("openai", "gpt-4.1", Usage(1, 2, 0, 0, 1), 0.5)
    data = ledger.snapshot().as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "total_usd": 0.5,
        "calls": 1,
        "unpriced_calls": 0,
        "models": [
            {
                "provider": "openai",
                "model": "gpt-4.1",
                "calls": 1,
                "unpriced_calls": 0,
                "errors": 0,
                "input_tokens": 1,
                "output_tokens": 2,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "reasoning_tokens": 1,
                "cost_usd": 0.5,
                "audio_input_tokens": 0,
                "audio_output_tokens": 0,
            }
        ],
    }


def test_a_snapshot_does_not_change_when_the_ledger_does() -> None:
    ledger = SpendLedger()
    ledger.add("openai", "gpt-4.1", Usage(1, 1), 1.0)
    before = ledger.snapshot()
    ledger.add("openai", "gpt-4.1", Usage(1, 1), 1.0)
    assert before.total_usd == 1.0
    assert ledger.snapshot().total_usd == 2.0


def test_reset_forgets_everything() -> None:
    ledger = SpendLedger()
    ledger.add("openai", "gpt-4.1", Usage(1, 1), 1.0)
    ledger.reset()
    assert ledger.snapshot() == Spend(models=(), total_usd=0, calls=0, unpriced_calls=0)


def test_keys_beyond_the_limit_are_folded_into_other_per_provider() -> None:
    ledger = SpendLedger()
    for i in range(1_000):
        ledger.add("openai", f"model-{i}", Usage(1, 1), 0.001)
    ledger.add("openai", "one-too-many", Usage(1, 1), 0.5)
    ledger.add("anthropic", "another", Usage(2, 2), 0.25)
    ledger.add("openai", "model-7", Usage(1, 1), 0.001)  # existing keys keep counting on their own
    snap = ledger.snapshot()
    assert len(snap.models) == 1_002
    other = snap.by_provider("openai")[0]
    assert (other.model, other.calls, other.cost_usd) == ("_OTHER", 1, 0.5)
    assert snap.by_model("model-7") is not None and snap.by_model("model-7").calls == 2  # type: ignore[union-attr]
    anthropic = snap.by_provider("anthropic")
    assert [(m.model, m.input_tokens) for m in anthropic] == [("_OTHER", 2)]
    assert snap.calls == 1_003


def test_runaway_provider_names_end_up_in_one_other_slot() -> None:
    ledger = SpendLedger(max_keys=3, max_overflow_keys=2)
    for i in range(3):
        ledger.add("p", f"m{i}", None, 1.0)
    for i in range(10):
        ledger.add(f"provider-{i}", "m", None, 1.0)
    snap = ledger.snapshot()
    assert len(snap.models) == 6
    assert {(m.provider, m.model, m.calls) for m in snap.models if m.model == "_OTHER"} == {
        ("provider-0", "_OTHER", 1),
        ("provider-1", "_OTHER", 1),
        ("_OTHER", "_OTHER", 8),
    }
    assert snap.total_usd == 13.0


def test_sixteen_threads_adding_five_thousand_calls_each_give_exact_totals() -> None:
    ledger = SpendLedger()
    threads_n, per_thread = 16, 5_000
    barrier = threading.Barrier(threads_n)
    usage = Usage(3, 2, 1, 1, 1)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            model = f"m{i % 4}"
            if i % 10 == 0:
                ledger.add(f"p{t % 2}", model, None, None, error=True)
            elif i % 10 == 1:
                ledger.add(f"p{t % 2}", model, usage, None)
            else:
                ledger.add(f"p{t % 2}", model, usage, 0.25)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    snap = ledger.snapshot()
    total = threads_n * per_thread
    assert snap.calls == total
    assert snap.unpriced_calls == total // 10
    assert sum(m.errors for m in snap.models) == total // 10
    assert snap.total_usd == total * 8 // 10 * 0.25  # 0.25 sums exactly in binary floating point
    with_usage = total * 9 // 10
    assert sum(m.input_tokens for m in snap.models) == with_usage * 3
    assert sum(m.output_tokens for m in snap.models) == with_usage * 2
    assert sum(m.reasoning_tokens for m in snap.models) == with_usage
    assert len(snap.models) == 8
    assert {m.calls for m in snap.models} == {total // 8}


def test_the_process_wide_ledger_is_a_spend_ledger() -> None:
    assert isinstance(LEDGER, SpendLedger)
    assert MAX_KEYS == 1000
