"""Tests for otel_llm.pricing: model matching, arithmetic against the genai-prices snapshot, user tables."""

from __future__ import annotations

import json
import logging
import math
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from genai_prices.data_snapshot import DataSnapshot
from genai_prices.types import ModelPrice, TieredPrices

from otel_llm import pricing
from otel_llm._parsers.usage import Usage
from otel_llm.pricing import Cost, PriceBook, PriceConfigError

GENAI_VERSION = f"genai-prices {genai_prices.__version__}"


@pytest.fixture(autouse=True)
def _no_price_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process, resolutions come from the shipped table or genai-prices itself, never from a previous
    process (the on-disk memory has its own tests below)."""
    monkeypatch.setenv(pricing.CACHE_DIR_ENV, "off")


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load(env={})


@pytest.fixture(scope="module")
def snapshot() -> DataSnapshot:
    return pricing._genai_snapshot()


def snapshot_prices(snapshot: DataSnapshot, provider_id: str, model: str) -> ModelPrice:
    """The snapshot's ModelPrice of a model with fixed prices, to check hand-computed numbers against."""
    info = snapshot.find_provider_model(model, None, provider_id, None)[1]
    assert isinstance(info.prices, ModelPrice)
    return info.prices


def usage(
    input: int | None = None,
    output: int | None = None,
    cache_read: int | None = None,
    cache_write: int | None = None,
    reasoning: int | None = None,
) -> Usage:
    return Usage(input, output, cache_read, cache_write, reasoning)


def cost_of(book: PriceBook, provider: str | None, model: str, u: Usage, server: str | None = None) -> Cost:
    cost = book.price(provider=provider, model=model, server_address=server, usage=u)
    assert cost is not None, f"{provider}/{model} was not priced"
    return cost


# --------------------------------------------------------------------------------------------------
# model matching

MATCHING_CASES: list[tuple[str | None, str, str | None]] = [
    # the demo's models, as requested and as responses report them
    ("openai", "gpt-4.1", "gpt-4.1"),
    ("openai", "gpt-4.1-2025-04-14", "gpt-4.1"),
    ("openai", "gpt-4.1-mini", "gpt-4.1-mini"),
    ("openai", "gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ("openai", "text-embedding-3-small", "text-embedding-3-small"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("anthropic", "claude-sonnet-4.5", "claude-sonnet-4-5"),
    ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("gcp.gemini", "gemini-2.5-flash", "gemini-2.5-flash"),
    ("gcp.gemini", "models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("gcp.vertex_ai", "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("gcp.vertex_ai", "claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ("deepseek", "deepseek-chat", "deepseek-chat"),
    ("deepseek", "deepseek-v3.2", "deepseek-v3.2"),
    # every mapped provider name lands on its genai-prices provider
    ("azure.ai.openai", "gpt-4.1", "gpt-4.1"),
    ("azure.ai.openai", "claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("x_ai", "grok-4", "grok-4-0709"),
    ("mistral_ai", "mistral-large-latest", "mistral-large"),
    ("groq", "llama-3.3-70b-versatile", "llama-3.3-70b-versatile"),
    ("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("fireworks_ai", "accounts/fireworks/models/llama-v3p1-8b-instruct", "llama-v3p1-8b-instruct"),
    ("openrouter", "anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet-4.5"),
    ("openrouter", "openai/gpt-4.1", "openai/gpt-4.1"),
    (
        "aws.bedrock",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    ),
    ("perplexity", "sonar", "sonar"),
    # a genai-prices provider id is accepted as a provider name
    ("google", "gemini-2.5-flash", "gemini-2.5-flash"),
    ("x-ai", "grok-4", "grok-4-0709"),
    # unknown or missing provider: matched by model alone
    (None, "gpt-4.1", "gpt-4.1"),
    ("my-gateway", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("my-gateway", "gemini-2.5-flash", "gemini-2.5-flash"),
    # not priced: no guess, no other model's price
    ("openai", "ft:gpt-4.1-mini-2025-04-14:acme::abc123", None),
    ("openai", "gpt-oss:20b", None),
    ("openai", "no-such-model", None),
    ("azure.ai.openai", "my-deployment", None),
    ("groq", "gpt-4.1", None),  # a known provider does not borrow another provider's price
    ("ollama", "gpt-oss-20b", None),  # self-hosted: openai's gpt-oss-20b price is not what it cost
    ("vllm", "gpt-4.1", None),
    (None, "llama3", None),
    ("my-gateway", "text-embedding-3-small", None),  # no provider claims it by model name alone
    ("google", "gemma-3", None),  # in the snapshot without any price
]


@pytest.mark.parametrize(("provider", "model", "expected"), MATCHING_CASES)
def test_model_matching_finds_the_expected_price_entry(
    book: PriceBook, provider: str | None, model: str, expected: str | None
) -> None:
    cost = book.price(provider=provider, model=model, server_address=None, usage=usage(1000, 100))
    if expected is None:
        assert cost is None
    else:
        assert cost is not None
        assert cost.priced_model == expected
        assert cost.origin == "genai_prices"
        assert cost.price_version == GENAI_VERSION
        assert cost.amount > 0


def test_unknown_provider_is_matched_by_its_server_address_api_pattern(book: PriceBook) -> None:
    cost = cost_of(book, "my-gateway", "text-embedding-3-small", usage(1_000_000), server="api.openai.com")
    assert cost.priced_model == "text-embedding-3-small"
    assert cost.amount == pytest.approx(
        float(snapshot_prices(pricing._genai_snapshot(), "openai", "text-embedding-3-small").input_mtok)
    )


def test_known_provider_ignores_the_server_address_for_matching(book: PriceBook) -> None:
    assert book.price(provider="groq", model="gpt-4.1", server_address="api.openai.com", usage=usage(10, 10)) is None


def test_provider_mapping_targets_exist_in_the_snapshot(snapshot: DataSnapshot) -> None:
    ids = {p.id for p in snapshot.providers}
    assert set(pricing.PROVIDER_IDS.values()) <= ids
    assert not (pricing.SELF_HOSTED_PROVIDERS & ids)


# --------------------------------------------------------------------------------------------------
# arithmetic, by hand against the snapshot's per-token prices


def test_gpt_4_1_charges_cache_reads_once_at_the_cached_rate(book: PriceBook, snapshot: DataSnapshot) -> None:
    mp = snapshot_prices(snapshot, "openai", "gpt-4.1")
    assert (mp.input_mtok, mp.cache_read_mtok, mp.output_mtok) == (Decimal("2"), Decimal("0.5"), Decimal("8"))
    # 10k input of which 4k cache reads: 6k at $2, 4k at $0.50, 1k output at $8
    cost = cost_of(book, "openai", "gpt-4.1-2025-04-14", usage(10_000, 1_000, cache_read=4_000))
    assert cost.amount == pytest.approx((6_000 * 2 + 4_000 * 0.5 + 1_000 * 8) / 1e6)


def test_claude_charges_cache_reads_and_cache_writes_each_at_their_own_rate(
    book: PriceBook, snapshot: DataSnapshot
) -> None:
    mp = snapshot_prices(snapshot, "anthropic", "claude-sonnet-4-5")
    assert isinstance(mp.input_mtok, TieredPrices)
    assert (mp.input_mtok.base, mp.cache_read_mtok.base, mp.cache_write_mtok.base, mp.output_mtok.base) == (
        Decimal("3"),
        Decimal("0.3"),
        Decimal("3.75"),
        Decimal("15"),
    )
    u = usage(10_000, 500, cache_read=6_000, cache_write=2_000)
    cost = cost_of(book, "anthropic", "claude-sonnet-4-5-20250929", u)
    # 2k uncached at $3, 6k reads at $0.30, 2k writes at $3.75, 500 output at $15
    assert cost.amount == pytest.approx((2_000 * 3 + 6_000 * 0.3 + 2_000 * 3.75 + 500 * 15) / 1e6)
    assert cost.amount == pytest.approx(0.0228)


def test_cache_writes_without_their_own_price_are_charged_as_input(book: PriceBook, snapshot: DataSnapshot) -> None:
    assert snapshot_prices(snapshot, "openai", "gpt-4.1").cache_write_mtok is None
    with_writes = cost_of(book, "openai", "gpt-4.1", usage(10_000, 0, cache_write=3_000))
    assert with_writes.amount == pytest.approx(10_000 * 2 / 1e6)


def test_claude_long_context_tier_applies_to_every_token_above_200k_input(
    book: PriceBook, snapshot: DataSnapshot
) -> None:
    mp = snapshot_prices(snapshot, "anthropic", "claude-sonnet-4-5")
    tiers = {
        k: [(t.start, t.price) for t in getattr(mp, k).tiers] for k in ("input_mtok", "cache_read_mtok", "output_mtok")
    }
    assert tiers == {
        "input_mtok": [(200_000, Decimal("6"))],
        "cache_read_mtok": [(200_000, Decimal("0.6"))],
        "output_mtok": [(200_000, Decimal("22.5"))],
    }
    long = cost_of(book, "anthropic", "claude-sonnet-4-5", usage(250_000, 1_000, cache_read=50_000))
    assert long.amount == pytest.approx((200_000 * 6 + 50_000 * 0.6 + 1_000 * 22.5) / 1e6)
    at_threshold = cost_of(book, "anthropic", "claude-sonnet-4-5", usage(200_000, 1_000))
    assert at_threshold.amount == pytest.approx((200_000 * 3 + 1_000 * 15) / 1e6)
    just_over = cost_of(book, "anthropic", "claude-sonnet-4-5", usage(200_001, 1_000))
    assert just_over.amount == pytest.approx((200_001 * 6 + 1_000 * 22.5) / 1e6)


def test_gemini_2_5_pro_long_context_tier(book: PriceBook, snapshot: DataSnapshot) -> None:
    mp = snapshot_prices(snapshot, "google", "gemini-2.5-pro")
    assert (mp.input_mtok.base, mp.input_mtok.tiers[0].price, mp.output_mtok.base, mp.output_mtok.tiers[0].price) == (
        Decimal("1.25"),
        Decimal("2.5"),
        Decimal("10"),
        Decimal("15"),
    )
    short = cost_of(book, "gcp.gemini", "gemini-2.5-pro", usage(100_000, 2_000))
    assert short.amount == pytest.approx((100_000 * 1.25 + 2_000 * 10) / 1e6)
    long = cost_of(book, "gcp.gemini", "gemini-2.5-pro", usage(300_000, 2_000))
    assert long.amount == pytest.approx((300_000 * 2.5 + 2_000 * 15) / 1e6)


def test_reasoning_tokens_are_output_tokens_when_the_model_has_no_reasoning_price(book: PriceBook) -> None:
    plain = cost_of(book, "openai", "gpt-5", usage(1_000, 2_000))
    with_reasoning = cost_of(book, "openai", "gpt-5", usage(1_000, 2_000, reasoning=1_500))
    assert with_reasoning.amount == plain.amount


def test_reasoning_tokens_are_charged_once_at_their_own_rate_when_priced(
    book: PriceBook, snapshot: DataSnapshot
) -> None:
    mp = snapshot_prices(snapshot, "perplexity", "sonar-deep-research")
    assert (mp.input_mtok, mp.output_mtok, mp.output_reasoning_mtok) == (Decimal("2"), Decimal("8"), Decimal("3"))
    cost = cost_of(book, "perplexity", "sonar-deep-research", usage(1_000, 10_000, reasoning=6_000))
    assert cost.amount == pytest.approx((1_000 * 2 + 4_000 * 8 + 6_000 * 3) / 1e6)


def test_per_request_fees_are_added_once_per_call(book: PriceBook, snapshot: DataSnapshot) -> None:
    mp = snapshot_prices(snapshot, "perplexity", "sonar")
    assert (mp.input_mtok, mp.output_mtok, mp.requests_kcount) == (Decimal("1"), Decimal("1"), Decimal("12"))
    cost = cost_of(book, "perplexity", "sonar", usage(1_000, 1_000))
    assert cost.amount == pytest.approx(2_000 / 1e6 + 12 / 1_000)


def test_cache_parts_larger_than_the_input_total_never_give_a_negative_charge(book: PriceBook) -> None:
    # a provider reporting input that excludes cache reads: the uncached part counts as zero
    cost = cost_of(book, "openai", "gpt-4.1", usage(100, 0, cache_read=4_000))
    assert cost.amount == pytest.approx(4_000 * 0.5 / 1e6)


def test_missing_input_or_output_counts_as_zero(book: PriceBook) -> None:
    assert cost_of(book, "openai", "gpt-4.1", usage(None, 1_000)).amount == pytest.approx(8_000 / 1e6)
    assert cost_of(book, "openai", "text-embedding-3-small", usage(1_000_000, None)).amount == pytest.approx(0.02)


class _FixedClock(datetime):
    at: datetime = datetime(2026, 1, 5, 3, 0, tzinfo=timezone.utc)

    @classmethod
    def now(cls, tz: Any = None) -> _FixedClock:  # type: ignore[override]
        return cls.at  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("hour", "rates"),
    [(3, (0.27, 0.07, 1.1)), (20, (0.135, 0.035, 0.55))],
    ids=["deepseek peak hours", "deepseek off-peak hours"],
)
def test_time_of_day_prices_follow_the_clock_at_call_time(
    monkeypatch: pytest.MonkeyPatch, hour: int, rates: tuple[float, float, float]
) -> None:
    book = PriceBook.load(env={})
    monkeypatch.setattr(_FixedClock, "at", datetime(2026, 1, 5, hour, 0, tzinfo=timezone.utc))
    monkeypatch.setattr(pricing, "datetime", _FixedClock)
    u = usage(10_000, 1_000, cache_read=4_000)
    expected = (6_000 * rates[0] + 4_000 * rates[1] + 1_000 * rates[2]) / 1e6
    cost = cost_of(book, "deepseek", "deepseek-chat", u)
    assert cost.amount == pytest.approx(expected)
    reference = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=10_000, cache_read_tokens=4_000, output_tokens=1_000),
        "deepseek-chat",
        provider_id="deepseek",
        genai_request_timestamp=_FixedClock.at,
    )
    assert cost.amount == pytest.approx(float(reference.total_price))


DEMO_MODELS = [
    ("openai", "openai", "gpt-4.1"),
    ("openai", "openai", "gpt-4.1-mini"),
    ("openai", "openai", "gpt-4.1-2025-04-14"),
    ("openai", "openai", "text-embedding-3-small"),
    ("anthropic", "anthropic", "claude-sonnet-4-5-20250929"),
    ("gcp.gemini", "google", "gemini-2.5-flash"),
    ("deepseek", "deepseek", "deepseek-v3.2"),
]


@pytest.mark.parametrize(("provider", "provider_id", "model"), DEMO_MODELS)
def test_demo_models_cost_what_genai_prices_calc_price_says(
    book: PriceBook, provider: str, provider_id: str, model: str
) -> None:
    u = usage(12_345, 678, cache_read=2_000, cache_write=1_000, reasoning=300)
    reference = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=12_345,
            cache_read_tokens=2_000,
            cache_write_tokens=1_000,
            output_tokens=678,
            output_reasoning_tokens=300,
        ),
        model,
        provider_id=provider_id,
    )
    cost = cost_of(book, provider, model, u)
    assert cost.amount == pytest.approx(float(reference.total_price), rel=1e-12)
    assert cost.priced_model == reference.model.id


GENAI_USAGES = [
    {"input_tokens": 1_234, "output_tokens": 567},
    {"input_tokens": 10_000, "cache_read_tokens": 3_000, "cache_write_tokens": 1_500, "output_tokens": 900},
    {"input_tokens": 5_000, "output_tokens": 4_000, "output_reasoning_tokens": 2_500},
    {
        "input_tokens": 300_000,
        "cache_read_tokens": 100_000,
        "cache_write_tokens": 20_000,
        "output_tokens": 8_000,
        "output_reasoning_tokens": 1_000,
    },
    {"output_tokens": 321},
]


def test_compiled_arithmetic_matches_genai_prices_for_every_model_in_the_snapshot(snapshot: DataSnapshot) -> None:
    checked = 0
    for provider in snapshot.providers:
        for model in provider.models:
            model_prices = [model.prices] if isinstance(model.prices, ModelPrice) else [c.prices for c in model.prices]
            for mp in model_prices:
                compiled = pricing._compile_model_price(mp)
                if compiled is None:
                    continue
                for raw in GENAI_USAGES:
                    ours = pricing._amount(
                        compiled,
                        Usage(
                            raw.get("input_tokens"),
                            raw.get("output_tokens"),
                            raw.get("cache_read_tokens"),
                            raw.get("cache_write_tokens"),
                            raw.get("output_reasoning_tokens"),
                        ),
                    )
                    theirs = mp.calc_price(genai_prices.Usage(**raw))["total_price"]
                    assert ours == pytest.approx(float(theirs), rel=1e-12, abs=1e-15), (provider.id, model.id, raw)
                    checked += 1
    assert checked > 10_000


def test_models_in_the_snapshot_without_token_prices_are_not_priced_at_zero() -> None:
    assert pricing._compile_model_price(ModelPrice()) is None
    assert pricing._compile_model_price(ModelPrice(audio_hours=Decimal("0.36"))) is None


# --------------------------------------------------------------------------------------------------
# no usage, relay cost


def test_a_call_without_input_or_output_tokens_is_not_priced(book: PriceBook) -> None:
    assert book.price(provider="openai", model="gpt-4.1", server_address=None, usage=Usage()) is None
    assert book.price(provider="openai", model="gpt-4.1", server_address=None, usage=usage(cache_read=5)) is None


def test_a_call_without_a_model_is_not_priced(book: PriceBook) -> None:
    assert book.price(provider="openai", model=None, server_address=None, usage=usage(10, 10)) is None
    assert book.price(provider="openai", model="", server_address=None, usage=usage(10, 10)) is None


def test_relay_cost_wins_over_every_table_and_is_not_multiplied() -> None:
    book = PriceBook.load({"models": {"gpt-4.1": {"input": 100, "output": 100}}, "multiplier": 3.0})
    cost = book.price(
        provider="openrouter", model="gpt-4.1", server_address="openrouter.ai", usage=usage(10, 10), relay_cost=0.0042
    )
    # billed what the relay says, split like the list price (equal halves here), list price beside it
    assert (cost.amount, cost.origin, cost.priced_model, cost.price_version) == (0.0042, "relay", "gpt-4.1", "relay")
    assert cost.parts == pytest.approx((0.0021, 0.0021, 0, 0, 0, 0), rel=1e-15) and sum(cost.parts) == 0.0042
    assert cost.list_amount == 0.002


def test_relay_cost_is_used_even_without_usage_or_model(book: PriceBook) -> None:
    assert book.price(provider="openrouter", model=None, server_address=None, usage=Usage(), relay_cost=0.01) == Cost(
        0.01, "relay", "", "relay"
    )


def test_a_relay_cost_of_zero_is_a_real_cost(book: PriceBook) -> None:
    cost = book.price(provider="openrouter", model="x:free", server_address=None, usage=usage(5, 5), relay_cost=0.0)
    assert cost == Cost(0.0, "relay", "x:free", "relay")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.5, "n/a", True])
def test_an_unusable_relay_cost_falls_back_to_local_prices(book: PriceBook, bad: Any) -> None:
    cost = book.price(provider="openai", model="gpt-4.1", server_address=None, usage=usage(1_000, 0), relay_cost=bad)
    assert cost is not None
    assert cost.origin == "genai_prices"


def test_a_relay_cost_given_as_a_header_string_is_accepted(book: PriceBook) -> None:
    cost = book.price(provider="litellm", model="m", server_address=None, usage=usage(1, 1), relay_cost="0.0031")  # type: ignore[arg-type]
    assert cost == Cost(0.0031, "relay", "m", "relay")


# --------------------------------------------------------------------------------------------------
# user tables

TABLE: dict[str, Any] = {
    "models": {
        "acme-llm-1": {"input": 2.0, "output": 8.0, "cached_input": 0.5, "cache_write": 2.5},
        "acme-reasoner": {"input": 1, "output": 4, "reasoning": 2},
        "my-org/*": {"input": 1.0, "output": 1.0},
        "my-org/big-*": {"input": 5.0, "output": 5.0},
        "my-org/big-special": {"input": 9.0, "output": 9.0},
        "gpt-4.1": {"input": 1.0, "output": 2.0},
    },
    "aliases": {
        "anthropic/claude-sonnet-4.5": "claude-sonnet-4-5",
        "house-model": "acme-llm-1",
    },
}


@pytest.fixture(scope="module")
def user_book() -> PriceBook:
    return PriceBook.load(TABLE)


def test_user_prices_cache_reads_and_writes_each_once_at_their_own_rate(user_book: PriceBook) -> None:
    cost = cost_of(user_book, "acme", "acme-llm-1", usage(10_000, 1_000, cache_read=4_000, cache_write=2_000))
    assert cost.amount == pytest.approx((4_000 * 2.0 + 4_000 * 0.5 + 2_000 * 2.5 + 1_000 * 8.0) / 1e6)
    assert (cost.origin, cost.priced_model, cost.price_version) == ("user_table", "acme-llm-1", "user:mapping")


def test_user_prices_without_cache_or_reasoning_rates_charge_them_as_input_and_output(user_book: PriceBook) -> None:
    cost = cost_of(user_book, "acme", "my-org/small", usage(10_000, 1_000, cache_read=4_000, reasoning=500))
    assert cost.amount == pytest.approx(11_000 / 1e6)


def test_user_reasoning_rate_applies_to_reasoning_tokens_only(user_book: PriceBook) -> None:
    cost = cost_of(user_book, "acme", "acme-reasoner", usage(1_000, 3_000, reasoning=2_000))
    assert cost.amount == pytest.approx((1_000 * 1 + 1_000 * 4 + 2_000 * 2) / 1e6)


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("my-org/small", "my-org/*"),
        ("my-org/big-one", "my-org/big-*"),  # the longest glob first
        ("my-org/big-special", "my-org/big-special"),  # exact names win over globs
        ("acme-llm-1", "acme-llm-1"),
    ],
)
def test_user_table_matching_prefers_exact_names_then_longer_globs(
    user_book: PriceBook, model: str, priced_as: str
) -> None:
    assert cost_of(user_book, None, model, usage(1, 1)).priced_model == priced_as


def test_user_table_matching_is_case_sensitive(user_book: PriceBook) -> None:
    assert user_book.price(provider="acme", model="ACME-LLM-1", server_address=None, usage=usage(1, 1)) is None


def test_user_prices_win_over_genai_prices(user_book: PriceBook) -> None:
    cost = cost_of(user_book, "openai", "gpt-4.1", usage(1_000_000, 1_000_000))
    assert (cost.origin, cost.amount) == ("user_table", pytest.approx(3.0))


def test_models_missing_from_the_user_table_still_get_genai_prices(user_book: PriceBook) -> None:
    cost = cost_of(user_book, "openai", "gpt-4.1-mini", usage(1_000_000, 0))
    assert (cost.origin, cost.amount) == ("genai_prices", pytest.approx(0.4))


def test_aliases_rename_the_model_for_genai_prices_lookups(user_book: PriceBook) -> None:
    cost = cost_of(user_book, "my-relay", "anthropic/claude-sonnet-4.5", usage(100_000, 0))
    assert (cost.origin, cost.priced_model, cost.amount) == ("genai_prices", "claude-sonnet-4-5", pytest.approx(0.3))


def test_aliases_rename_the_model_for_user_table_lookups(user_book: PriceBook) -> None:
    cost = cost_of(user_book, "my-relay", "house-model", usage(1_000_000, 0))
    assert (cost.origin, cost.priced_model, cost.amount) == ("user_table", "acme-llm-1", pytest.approx(2.0))


def test_global_and_provider_multipliers_apply_to_user_and_default_prices() -> None:
    book = PriceBook.load(
        {
            "models": {"acme-llm-1": {"input": 2.0, "output": 8.0}},
            "multiplier": 0.5,
            "providers": {"anthropic": {"multiplier": 2.0}, "relay.example.com": {"multiplier": 0.1}},
        }
    )
    u = usage(100_000, 0)
    assert cost_of(book, "acme", "acme-llm-1", u).amount == pytest.approx(0.2 * 0.5)
    assert cost_of(book, "anthropic", "acme-llm-1", u).amount == pytest.approx(0.2 * 0.5 * 2.0)
    assert cost_of(book, "anthropic", "claude-sonnet-4-5", u).amount == pytest.approx(0.3 * 0.5 * 2.0)
    assert cost_of(book, "openai", "gpt-4.1", u).amount == pytest.approx(0.2 * 0.5)
    # a server host entry is more specific than the provider name and replaces it
    assert cost_of(book, "anthropic", "claude-sonnet-4-5", u, server="relay.example.com").amount == pytest.approx(
        0.3 * 0.5 * 0.1
    )


def test_a_zero_multiplier_is_allowed_for_free_endpoints() -> None:
    book = PriceBook.load({"providers": {"internal": {"multiplier": 0}}})
    assert cost_of(book, "internal", "gpt-4.1", usage(1_000, 1_000)).amount == 0.0


def test_an_empty_mapping_gives_the_defaults() -> None:
    assert cost_of(PriceBook.load({}), "openai", "gpt-4.1", usage(1_000_000, 0)).amount == pytest.approx(2.0)


YAML_TABLE = """\
models:
  "acme-llm-1": {input: 2.0, output: 8.0, cached_input: 0.5, cache_write: 2.5}
  "my-org/*":   {input: 1.0, output: 1.0}
multiplier: 0.15
providers:
  anthropic: {multiplier: 2.0}
aliases:
  "anthropic/claude-sonnet-4.5": "claude-sonnet-4-5"
"""


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_a_yaml_table_file_loads(tmp_path: Any, suffix: str) -> None:
    path = tmp_path / f"prices{suffix}"
    path.write_text(YAML_TABLE)
    book = PriceBook.load(path)
    cost = cost_of(book, "acme", "acme-llm-1", usage(1_000_000, 0))
    assert (cost.amount, cost.origin, cost.priced_model, cost.price_version) == (
        pytest.approx(0.3),
        "user_table",
        "acme-llm-1",
        f"user:prices{suffix}",
    )
    assert cost.list_amount == pytest.approx(2.0)  # 0.15 of list price
    relayed = cost_of(book, "anthropic", "anthropic/claude-sonnet-4.5", usage(100_000, 0))
    assert relayed.amount == pytest.approx(0.3 * 0.15 * 2.0)
    assert relayed.price_version == GENAI_VERSION


def test_a_json_table_file_loads_from_a_str_path(tmp_path: Any) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(TABLE))
    cost = cost_of(PriceBook.load(str(path)), None, "my-org/x", usage(1_000_000, 1_000_000))
    assert cost == Cost(2.0, "user_table", "my-org/*", "user:prices.json", (1.0, 1.0, 0.0, 0.0, 0.0, 0.0))


def test_the_env_var_names_the_table_file(tmp_path: Any) -> None:
    path = tmp_path / "team-prices.yaml"
    path.write_text(YAML_TABLE)
    book = PriceBook.load(env={"OTEL_LLM_PRICES": str(path)})
    assert cost_of(book, "acme", "acme-llm-1", usage(1, 1)).price_version == "user:team-prices.yaml"


@pytest.mark.parametrize("env", [{}, {"OTEL_LLM_PRICES": ""}, {"OTEL_LLM_PRICES": "  "}])
def test_without_the_env_var_only_the_defaults_apply(env: dict[str, str]) -> None:
    book = PriceBook.load(env=env)
    assert book.price(provider="acme", model="acme-llm-1", server_address=None, usage=usage(1, 1)) is None
    assert cost_of(book, "openai", "gpt-4.1", usage(1, 1)).origin == "genai_prices"


def test_the_env_var_is_read_from_os_environ_by_default(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"models": {"acme-llm-1": {"input": 1, "output": 1}}}))
    monkeypatch.setenv("OTEL_LLM_PRICES", str(path))
    assert cost_of(PriceBook.load(), None, "acme-llm-1", usage(1, 1)).price_version == "user:p.json"


def test_an_explicit_table_ignores_the_env_var(tmp_path: Any) -> None:
    book = PriceBook.load({"models": {"a": {"input": 1, "output": 1}}}, env={"OTEL_LLM_PRICES": "/nonexistent.yaml"})
    assert cost_of(book, None, "a", usage(1, 1)).price_version == "user:mapping"


# --------------------------------------------------------------------------------------------------
# validation

INVALID_TABLES: list[tuple[Any, str, str]] = [
    ([1, 2], "", "must be a mapping, got list"),
    ({"model": {}}, "model", "unknown key"),
    ({"models": []}, "models", "must be a mapping, got list"),
    ({"models": {"acme-llm-1": 2.0}}, 'models."acme-llm-1"', "must be a mapping, got float"),
    (
        {"models": {"acme-llm-1": {"input": 1, "output": 1, "cache_read": 1}}},
        'models."acme-llm-1".cache_read',
        "unknown key",
    ),
    ({"models": {"acme-llm-1": {"output": 1}}}, 'models."acme-llm-1".input', "missing"),
    ({"models": {"acme-llm-1": {"input": 1}}}, 'models."acme-llm-1".output', "missing"),
    ({"models": {"acme-llm-1": {"input": -1, "output": 1}}}, 'models."acme-llm-1".input', ">= 0"),
    ({"models": {"acme-llm-1": {"input": "2.0", "output": 1}}}, 'models."acme-llm-1".input', "must be a number"),
    ({"models": {"acme-llm-1": {"input": True, "output": 1}}}, 'models."acme-llm-1".input', "must be a number"),
    ({"models": {"acme-llm-1": {"input": None, "output": 1}}}, 'models."acme-llm-1".input', "must be a number"),
    ({"models": {"acme-llm-1": {"input": 1, "output": math.nan}}}, 'models."acme-llm-1".output', "finite"),
    ({"models": {"acme-llm-1": {"input": 1, "output": math.inf}}}, 'models."acme-llm-1".output', "finite"),
    ({"models": {"a": {"input": 1, "output": 1, "reasoning": -2}}}, 'models."a".reasoning', ">= 0"),
    ({"models": {123: {"input": 1, "output": 1}}}, "models", "non-empty string"),
    ({"models": {"": {"input": 1, "output": 1}}}, "models", "non-empty string"),
    ({"multiplier": -1}, "multiplier", ">= 0"),
    ({"multiplier": "0.15"}, "multiplier", "must be a number"),
    ({"multiplier": False}, "multiplier", "must be a number"),
    ({"multiplier": math.nan}, "multiplier", "finite"),
    ({"providers": ["anthropic"]}, "providers", "must be a mapping"),
    ({"providers": {"anthropic": 2.0}}, 'providers."anthropic"', "must be a mapping"),
    ({"providers": {"anthropic": {}}}, 'providers."anthropic".multiplier', "missing"),
    ({"providers": {"anthropic": {"multiplier": 2, "discount": 1}}}, 'providers."anthropic".discount', "unknown key"),
    ({"providers": {"anthropic": {"multiplier": -2}}}, 'providers."anthropic".multiplier', ">= 0"),
    ({"providers": {"anthropic": {"multiplier": True}}}, 'providers."anthropic".multiplier', "must be a number"),
    ({"aliases": {"a": 3}}, 'aliases."a"', "non-empty model name"),
    ({"aliases": {"a": ""}}, 'aliases."a"', "non-empty model name"),
    ({"aliases": "a=b"}, "aliases", "must be a mapping"),
]


@pytest.mark.parametrize(("table", "key_path", "problem"), INVALID_TABLES)
def test_invalid_tables_are_rejected_naming_the_key_and_the_problem(table: Any, key_path: str, problem: str) -> None:
    with pytest.raises(PriceConfigError) as err:
        if isinstance(table, dict):
            PriceBook.load(table)
        else:  # load() accepts only mappings and paths; check the parser for other YAML documents
            pricing._parse_config(table, "<mapping>")
    message = str(err.value)
    assert message.startswith("<mapping>: ")
    assert key_path in message
    assert problem in message


# JSON object keys are always strings, so the non-string model name case has no JSON form
JSON_INVALID_TABLES = [case for case in INVALID_TABLES if "123" not in repr(case[0])]


@pytest.mark.parametrize(("table", "key_path", "problem"), JSON_INVALID_TABLES)
def test_invalid_table_files_name_the_file(tmp_path: Any, table: Any, key_path: str, problem: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    with pytest.raises(PriceConfigError) as err:
        PriceBook.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert key_path in message
    assert problem in message


def test_price_config_error_is_a_value_error() -> None:
    assert issubclass(PriceConfigError, ValueError)


def test_nan_prices_in_yaml_are_rejected(tmp_path: Any) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text('models:\n  "acme-llm-1": {input: .nan, output: 1}\n')
    with pytest.raises(PriceConfigError, match=r'prices\.yaml: models\."acme-llm-1"\.input: must be a finite'):
        PriceBook.load(path)


def test_non_string_model_names_in_yaml_are_rejected(tmp_path: Any) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models:\n  123: {input: 1, output: 1}\n")
    with pytest.raises(PriceConfigError, match=r"prices\.yaml: models: key 123 must be a non-empty string"):
        PriceBook.load(path)


def test_a_missing_file_is_reported(tmp_path: Any) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PriceConfigError, match=r"nope\.yaml: cannot read price table"):
        PriceBook.load(path)


def test_a_missing_file_named_by_the_env_var_is_reported(tmp_path: Any) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(PriceConfigError, match=r"nope\.yaml: cannot read price table"):
        PriceBook.load(env={"OTEL_LLM_PRICES": str(path)})


def test_a_directory_is_not_a_table(tmp_path: Any) -> None:
    with pytest.raises(PriceConfigError, match="cannot read price table"):
        PriceBook.load(tmp_path)


def test_invalid_yaml_is_reported(tmp_path: Any) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("models: {acme: [input: 1\n")
    with pytest.raises(PriceConfigError, match=r"prices\.yaml: invalid YAML"):
        PriceBook.load(path)


def test_invalid_json_is_reported(tmp_path: Any) -> None:
    path = tmp_path / "prices.json"
    path.write_text('{"models": ')
    with pytest.raises(PriceConfigError, match=r"prices\.json: invalid JSON"):
        PriceBook.load(path)


def test_an_empty_yaml_file_is_not_a_mapping(tmp_path: Any) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("# nothing yet\n")
    with pytest.raises(PriceConfigError, match=r"prices\.yaml: must be a mapping, got NoneType"):
        PriceBook.load(path)


def test_a_yaml_list_at_the_top_is_not_a_mapping(tmp_path: Any) -> None:
    path = tmp_path / "prices.yml"
    path.write_text("- acme\n")
    with pytest.raises(PriceConfigError, match=r"prices\.yml: must be a mapping, got list"):
        PriceBook.load(path)


def test_something_that_is_neither_a_path_nor_a_mapping_is_rejected() -> None:
    with pytest.raises(PriceConfigError, match="expected a file path or a mapping"):
        PriceBook.load(42)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# caching, logging, robustness


def test_the_second_call_for_a_model_does_no_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    book = PriceBook.load(TABLE)
    lookups: list[tuple[Any, ...]] = []
    genai_searches: list[tuple[Any, ...]] = []
    real_lookup, real_genai, real_table = book._lookup, pricing._genai_model, pricing._table_model
    monkeypatch.setattr(book, "_lookup", lambda *a: lookups.append(a) or real_lookup(*a))
    monkeypatch.setattr(pricing, "_genai_model", lambda *a: genai_searches.append(a) or real_genai(*a))
    monkeypatch.setattr(pricing, "_table_model", lambda *a: genai_searches.append(a) or real_table(*a))
    for model in ("gpt-4.1-mini", "my-org/x", "no-such-model"):
        first = book.price(provider="openai", model=model, server_address=None, usage=usage(10, 10))
        second = book.price(provider="openai", model=model, server_address=None, usage=usage(10, 10))
        assert first == second
    assert len(lookups) == 3
    assert len(genai_searches) == 2  # the user-table glob hit never searched genai-prices


def test_the_resolution_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pricing, "CACHE_SIZE", 8)
    book = PriceBook.load({"models": {"m-*": {"input": 1, "output": 1}}})
    for i in range(50):
        assert book.price(provider="p", model=f"m-{i}", server_address=None, usage=usage(1, 1)) is not None
    assert len(book._cache) <= 8


def test_an_unknown_model_is_logged_once_at_info(caplog: pytest.LogCaptureFixture) -> None:
    book = PriceBook.load(env={})
    with caplog.at_level(logging.INFO, logger="otel_llm.pricing"):
        for server in ("a.example", "b.example", None):
            assert book.price(provider="acme", model="mystery-1", server_address=server, usage=usage(1, 1)) is None
        book.price(provider="other", model="mystery-1", server_address=None, usage=usage(1, 1))
    misses = [r for r in caplog.records if r.name == "otel_llm.pricing"]
    assert [r.levelno for r in misses] == [logging.INFO, logging.INFO]
    assert "mystery-1" in misses[0].getMessage()
    assert "'acme'" in misses[0].getMessage() and "'other'" in misses[1].getMessage()


def test_price_never_raises_and_logs_unexpected_errors_once_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    book = PriceBook.load(env={})
    broken = Usage(input_tokens="lots", output_tokens=3)  # type: ignore[arg-type]
    with caplog.at_level(logging.DEBUG, logger="otel_llm.pricing"):
        for _ in range(3):
            assert book.price(provider="openai", model="gpt-4.1", server_address=None, usage=broken) is None
        assert book.price(provider="openai", model="gpt-4.1", server_address=None, usage=None) is None  # type: ignore[arg-type]
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 1
    assert debug[0].exc_info is not None


def test_costs_are_immutable() -> None:
    cost = Cost(1.0, "relay", "m", "relay")
    with pytest.raises(AttributeError):
        cost.amount = 2.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------------
# the on-disk memory of genai-prices resolutions: a fast start without importing genai-prices

_FRESH_PROCESS = r"""
import json, sys
from otel_llm._parsers.usage import Usage
from otel_llm.pricing import PriceBook
book = PriceBook.load(env={})
out = []
for provider, model in json.loads(sys.argv[1]):
    c = book.price(provider=provider, model=model, server_address=None, usage=Usage(1200, 300, 200, None, 50))
    out.append(None if c is None else [c.amount, c.origin, c.priced_model, c.price_version])
print(json.dumps({"costs": out, "genai_prices_imported": "genai_prices" in sys.modules, "versions": book.versions}))
"""


def _fresh(cache_dir: Any, calls: list[tuple[str, str]]) -> dict[str, Any]:
    import os
    import subprocess
    import sys

    env = dict(os.environ, OTEL_LLM_CACHE_DIR=str(cache_dir))
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, json.dumps(calls)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_second_process_prices_remembered_models_without_importing_genai_prices(tmp_path: Any) -> None:
    calls = [("openai", "gpt-4.1-mini-2025-04-14"), ("anthropic", "claude-sonnet-4-5"), ("openai", "no-such-model-x")]
    first = _fresh(tmp_path, calls)
    assert not first["genai_prices_imported"]  # nothing remembered yet: the shipped table answers, is remembered
    assert first["costs"][0] is not None and first["costs"][1] is not None and first["costs"][2] is None
    assert len(list(tmp_path.iterdir())) == 1
    second = _fresh(tmp_path, calls)
    assert not second["genai_prices_imported"]
    assert second["costs"] == first["costs"]  # the same amounts (floats survive JSON exactly), ids and versions
    assert second["versions"] == first["versions"] == [GENAI_VERSION]
    third = _fresh(tmp_path, [*calls, ("openai", "gpt-4.1")])  # a model not seen before: the table again
    assert not third["genai_prices_imported"] and third["costs"][:3] == first["costs"] and third["costs"][3]


def test_a_corrupt_or_unwritable_price_cache_changes_nothing(tmp_path: Any) -> None:
    calls = [("openai", "gpt-4.1")]
    reference = _fresh(tmp_path / "a", calls)["costs"]
    (cache_file,) = (tmp_path / "a").iterdir()
    cache_file.write_text("{not json")
    assert _fresh(tmp_path / "a", calls)["costs"] == reference
    blocker = tmp_path / "file"
    blocker.write_text("")  # a cache "directory" that is a file: nothing can be written
    assert _fresh(blocker / "sub", calls)["costs"] == reference
    assert _fresh("off", calls) == {"costs": reference, "genai_prices_imported": False, "versions": [GENAI_VERSION]}


# --------------------------------------------------------------------------------------------------
# cost split by token type, list price beside a multiplied or relay-reported cost

DEFAULT_MODELS = (
    ("openai", "gpt-4.1"),
    ("anthropic", "claude-sonnet-4.5"),
    ("gcp.gemini", "gemini-2.5-flash"),
    ("deepseek", "deepseek-v3.2"),
)
SPLIT_USAGES = (
    usage(1_234, 567),
    usage(10_000, 2_000, 6_000, 0),
    usage(30_000, 4_321, 12_000, 3_000, 1_000),
    usage(250_000, 9_000, 100_000, 20_000, 2_000),  # Claude's long-context tier
    usage(7, 0),
    usage(0, 13),
)


@pytest.mark.parametrize(("provider", "model"), DEFAULT_MODELS)
def test_the_cost_parts_add_up_to_the_total_exactly_for_the_default_models(
    book: PriceBook, snapshot: DataSnapshot, provider: str, model: str
) -> None:
    pid = pricing.PROVIDER_IDS[provider]
    for u in SPLIT_USAGES:
        cost = cost_of(book, provider, model, u)
        assert cost.parts is not None and cost.list_amount is None  # list price only: no savings to show
        assert sum(cost.parts) == cost.amount  # to the last bit, so to the cent and below
        assert all(p >= 0 for p in cost.parts)
        # the parts agree with genai-prices' own input/output split (Decimal arithmetic)
        raw = {"input_tokens": u.input_tokens or 0, "output_tokens": u.output_tokens or 0}
        raw |= {"cache_read_tokens": u.cache_read_tokens or 0, "cache_write_tokens": u.cache_write_tokens or 0}
        theirs = snapshot_prices(snapshot, pid, cost.priced_model).calc_price(genai_prices.Usage(**raw))
        p_in, p_out, p_cr, p_cw, p_rs, p_req = cost.parts
        assert p_in + p_cr + p_cw == pytest.approx(float(theirs["input_price"]), rel=1e-12, abs=1e-15)
        assert p_out + p_rs == pytest.approx(float(theirs["output_price"]), rel=1e-12, abs=1e-15)
        assert p_req == 0


def test_each_part_is_its_tokens_at_their_rate() -> None:
    book = PriceBook.load(
        {"models": {"m": {"input": 2.0, "output": 8.0, "cached_input": 0.5, "cache_write": 2.5, "reasoning": 10.0}}}
    )
    u = usage(10_000, 3_000, 4_000, 1_000, 500)
    cost = cost_of(book, "acme", "m", u)
    assert cost.parts == pytest.approx((5_000 * 2e-6, 2_500 * 8e-6, 4_000 * 0.5e-6, 1_000 * 2.5e-6, 500 * 10e-6, 0))
    # tokens without a rate of their own stay in their parent's part
    plain = cost_of(PriceBook.load({"models": {"m": {"input": 2.0, "output": 8.0}}}), "acme", "m", u)
    assert plain.parts == pytest.approx((10_000 * 2e-6, 3_000 * 8e-6, 0, 0, 0, 0))


@pytest.mark.parametrize(("provider", "model"), DEFAULT_MODELS)
def test_a_relay_multiplier_scales_every_part_and_keeps_the_list_price(provider: str, model: str) -> None:
    listed_book = PriceBook()
    relay_book = PriceBook.load({"multiplier": 0.15})
    for u in SPLIT_USAGES:
        listed = cost_of(listed_book, provider, model, u)
        billed = cost_of(relay_book, provider, model, u)
        assert billed.parts is not None and listed.parts is not None
        assert sum(billed.parts) == billed.amount
        assert billed.parts == pytest.approx(tuple(p * 0.15 for p in listed.parts), rel=1e-12, abs=0)
        assert billed.list_amount == listed.amount
        assert billed.amount == pytest.approx(0.15 * listed.amount, rel=1e-12)


def test_a_relay_reported_cost_is_split_like_its_list_price_and_sums_to_it_exactly() -> None:
    import random

    rng = random.Random(17)
    book = PriceBook()
    for _ in range(2_000):
        provider, model = rng.choice(DEFAULT_MODELS)
        inp = rng.randint(1, 300_000)
        cr = rng.randint(0, inp // 2)
        u = usage(inp, rng.randint(0, 20_000), cr, rng.randint(0, inp - cr), None)
        relay = round(rng.uniform(0, 2), rng.randint(2, 9))
        cost = book.price(provider=provider, model=model, server_address="relay.example", usage=u, relay_cost=relay)
        listed = cost_of(book, provider, model, u)
        assert cost is not None and cost.origin == "relay" and cost.amount == relay
        assert cost.parts is not None and sum(cost.parts) == relay, (model, u, relay, cost.parts)
        assert cost.list_amount == listed.amount
        assert listed.parts is not None
        for part, weight in zip(cost.parts, listed.parts, strict=True):
            assert part == pytest.approx(relay * weight / listed.amount, rel=1e-9, abs=1e-15)


def test_a_relay_cost_for_a_model_no_table_prices_has_no_split_and_no_list_price(book: PriceBook) -> None:
    cost = book.price(provider="openrouter", model="acme/x", server_address=None, usage=usage(5, 5), relay_cost=0.2)
    assert cost == Cost(0.2, "relay", "acme/x", "relay", None, None)


AUDIO_USAGES = [
    {"input_tokens": 2_000, "input_audio_tokens": 700, "output_tokens": 900, "output_audio_tokens": 400},
    {
        "input_tokens": 10_000,
        "cache_read_tokens": 3_000,
        "cache_write_tokens": 1_500,
        "input_audio_tokens": 2_000,
        "output_tokens": 5_000,
        "output_reasoning_tokens": 1_000,
        "output_audio_tokens": 2_500,
    },
    {"input_tokens": 300_000, "cache_read_tokens": 50_000, "input_audio_tokens": 80_000, "output_tokens": 100},
]


def _genai_usage(raw: dict[str, int]) -> genai_prices.Usage:
    """genai-prices' Usage of one of ours: a usage does not say how many cache reads or writes were audio, so
    cached audio is none (explicitly, where genai-prices would otherwise refuse to guess)."""
    extra = {}
    if raw.get("input_audio_tokens"):
        extra = {"cache_audio_read_tokens": 0, "cache_audio_write_tokens": 0}
    return genai_prices.Usage(**raw, **extra)


def test_audio_tokens_are_priced_as_genai_prices_prices_them_for_every_model_in_the_snapshot(
    snapshot: DataSnapshot,
) -> None:
    checked = audio_priced = 0
    for provider in snapshot.providers:
        for model in provider.models:
            model_prices = [model.prices] if isinstance(model.prices, ModelPrice) else [c.prices for c in model.prices]
            for mp in model_prices:
                compiled = pricing._compile_model_price(mp)
                if compiled is None:
                    continue
                if compiled.base.input_audio is not None or compiled.base.output_audio is not None:
                    audio_priced += 1
                for raw in AUDIO_USAGES:
                    ours = pricing._amount(
                        compiled,
                        Usage(
                            raw.get("input_tokens"),
                            raw.get("output_tokens"),
                            raw.get("cache_read_tokens"),
                            raw.get("cache_write_tokens"),
                            raw.get("output_reasoning_tokens"),
                            raw.get("input_audio_tokens"),
                            raw.get("output_audio_tokens"),
                        ),
                    )
                    theirs = mp.calc_price(_genai_usage(raw))["total_price"]
                    assert ours == pytest.approx(float(theirs), rel=1e-12, abs=1e-15), (provider.id, model.id, raw)
                    checked += 1
    assert checked > 5_000 and audio_priced >= 10


def test_gpt_audio_charges_audio_tokens_at_their_own_rates(book: PriceBook, snapshot: DataSnapshot) -> None:
    mp = snapshot_prices(snapshot, "openai", "gpt-audio")
    assert mp.input_audio_mtok is not None and mp.output_audio_mtok is not None  # type: ignore[attr-defined]
    u = Usage(1_000, 500, audio_input_tokens=400, audio_output_tokens=200)
    cost = cost_of(book, "openai", "gpt-audio", u)
    want = (600 * mp.input_mtok + 400 * mp.input_audio_mtok + 300 * mp.output_mtok + 200 * mp.output_audio_mtok) / 10**6  # type: ignore[attr-defined]
    assert cost.amount == pytest.approx(float(want), rel=1e-12)
    assert cost.parts is not None and sum(cost.parts) == cost.amount
    assert cost.amount > cost_of(book, "openai", "gpt-audio", Usage(1_000, 500)).amount  # audio costs more


# --------------------------------------------------------------------------------------------------
# the shipped price table (genai-prices compiled into the package: no genai-prices import at start-up)

TABLE_USAGES = [
    usage(1_000, 100),
    usage(250_000, 2_000, cache_read=50_000, cache_write=10_000, reasoning=500),
    usage(12_000, 800, cache_read=9_000, reasoning=300),
]


def _as_genai_usage(u: Usage) -> genai_prices.Usage:
    return genai_prices.Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        output_reasoning_tokens=u.reasoning_tokens,
    )


def _refs(clause: Any) -> list[str]:
    """Every name an ``equals`` clause of a model's match logic accepts (its aliases)."""
    from genai_prices import types as t

    if isinstance(clause, t.ClauseEquals):
        return [clause.equals]
    if isinstance(clause, t.ClauseOr):
        return [r for c in clause.or_ for r in _refs(c)]
    return []


def test_the_shipped_table_is_the_one_the_installed_genai_prices_generates() -> None:
    from otel_llm import _pricetable

    shipped = json.loads(_pricetable.TABLE_FILE.read_text(encoding="utf-8"))
    assert shipped["identity"] == _pricetable.identity(genai_prices.__version__)
    # regenerate with: python -c "import otel_llm._pricetable as t; t.write()"
    assert shipped == json.loads(json.dumps(_pricetable.generate()))
    assert pricing._table() is not None


def test_every_model_the_project_prices_costs_what_genai_prices_calc_price_says(snapshot: DataSnapshot) -> None:
    """Through the shipped table (as a fresh process prices): every model of every provider the project maps
    (each by its id and every alias its match logic names), and every model by name alone."""
    assert pricing._table() is not None
    book = PriceBook.load(env={})
    names = {**{name: pid for name, pid in pricing.PROVIDER_IDS.items()}, None: None}
    by_id = {p.id: p for p in snapshot.providers}
    checked = unpriced = 0
    for name, pid in names.items():
        providers = [by_id[pid]] if pid else snapshot.providers
        for provider in providers:
            for model in provider.models:
                for ref in dict.fromkeys([model.id, *_refs(model.match)]):
                    now = datetime.now(tz=timezone.utc)
                    for u in TABLE_USAGES:
                        ours = book.price(provider=name, model=ref, server_address=None, usage=u)
                        try:
                            theirs = genai_prices.calc_price(
                                _as_genai_usage(u), ref, provider_id=pid, genai_request_timestamp=now
                            )
                        except LookupError:
                            assert ours is None, (name, ref)
                            continue
                        if ours is None:  # genai-prices lists it without any token or call price
                            assert pricing._compile_model_price(theirs.model_price) is None, (name, ref)
                            unpriced += 1
                            continue
                        assert ours.priced_model == theirs.model.id, (name, ref)
                        assert ours.amount == pytest.approx(float(theirs.total_price), rel=1e-9, abs=1e-15), (name, ref)
                        checked += 1
    assert checked > 9_000
    assert unpriced < checked / 10


def test_time_dependent_prices_in_the_table_choose_what_genai_prices_chooses(snapshot: DataSnapshot) -> None:
    """Start dates and time-of-day windows, at every hour (and just around each switch) of the days they
    matter, for every model whose price depends on the time of the call."""
    from datetime import timedelta

    table = pricing._table()
    assert table is not None
    dynamic = 0
    for provider in snapshot.providers:
        for model in provider.models:
            if isinstance(model.prices, ModelPrice):
                continue
            try:
                snapshot.find_provider_model(model.id, None, provider.id, None)
            except LookupError:
                continue  # genai-prices finds no model by this id (its match logic wants a region prefix)
            found = table.resolve(model.id, provider.id, None)
            assert found is not None and isinstance(found[1], pricing._Conditional), (provider.id, model.id)
            cond = found[1]
            days = {datetime(2026, 1, 5, tzinfo=timezone.utc)}
            for cp in model.prices:
                start = getattr(cp.constraint, "start_date", None)
                if start is not None:
                    days.add(datetime(start.year, start.month, start.day, tzinfo=timezone.utc) - timedelta(days=1))
            moments = [d + timedelta(minutes=m) for d in days for m in range(0, 2 * 24 * 60, 15)]
            moments += [m - timedelta(microseconds=1) for m in moments]
            for at in moments:
                ours = cond.variants[id(cond.get_prices(at))]
                theirs = pricing._compile_model_price(model.get_prices(at))
                assert (ours is None) == (theirs is None), (provider.id, model.id, at)
                if ours is not None and theirs is not None:
                    assert pricing._prices_to_dict(ours) == pricing._prices_to_dict(theirs), (model.id, at)
            dynamic += 1
    assert dynamic > 100


def test_a_table_made_from_another_genai_prices_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from otel_llm import _pricetable

    monkeypatch.setattr(_pricetable, "identity", lambda version: {"format": 1, "version": "0.0.1", "data_size": 1})
    _pricetable.reset()
    try:
        assert pricing._table() is None
        book = PriceBook.load(env={})
        cost = cost_of(book, "openai", "gpt-4.1", usage(1_000_000, 0))
        assert cost.priced_model == "gpt-4.1"
        assert cost.amount == pytest.approx(2.0)  # from genai-prices itself
    finally:
        _pricetable.reset()


_START = """
import json, sys
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
import otel_llm
otel_llm.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
after_start = "genai_prices" in sys.modules
from otel_llm._parsers.usage import Usage
from otel_llm.pricing import PriceBook
cost = PriceBook.load(env={}).price(provider="deepseek", model="deepseek-chat", server_address=None,
                                    usage=Usage(1000, 100, None, None, None))
print(json.dumps([after_start, "genai_prices" in sys.modules, cost.priced_model]))
"""


def test_start_up_and_first_prices_need_no_genai_prices_import_empty_cache_or_dynamic_model(tmp_path: Any) -> None:
    """A fresh container (empty cache directory) and a machine that priced a time-of-day priced model before
    (its cache says "dynamic"): neither imports genai-prices, at start-up or to price a call."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, **{pricing.CACHE_DIR_ENV: str(tmp_path)})
    env.pop("OTEL_LLM_PRICES", None)
    runs = []
    for _ in range(2):  # the first writes deepseek-chat into the cache as dynamic; the second starts with it
        res = subprocess.run([sys.executable, "-c", _START], capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert any("dynamic" in p.read_text() for p in tmp_path.iterdir())
    assert runs == [[False, False, "deepseek-chat"], [False, False, "deepseek-chat"]]
