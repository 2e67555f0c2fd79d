"""Cost of one LLM call in USD, computed locally from token counts: auditable, never invented.

Where a price comes from, in order of precedence:

1. ``relay`` - a cost the relay reported for this very call (OpenRouter ``usage.cost``, LiteLLM's
   ``x-litellm-response-cost`` header). It is what was billed, so no multiplier is applied.
2. ``user_table`` - the user's price table (a YAML/JSON file named by ``OTEL_LLM_PRICES``, or a
   mapping passed to :meth:`PriceBook.load`).
3. ``genai_prices`` - the snapshot bundled with the ``genai-prices`` package. Only the bundled data
   is read: nothing here touches the network (``genai_prices.UpdatePrices`` is never consulted).

A model none of these knows is not priced: :meth:`PriceBook.price` returns ``None``, logs the first
miss per (provider, model) at INFO on ``otel_llm.pricing``, and never substitutes another model's
price or a zero.

Price table format (USD per million tokens; every key optional except a model's ``input`` and ``output``)::

    models:
      "acme-llm-1": {input: 2.0, output: 8.0, cached_input: 0.5, cache_write: 2.5, reasoning: 8.0}
      "my-org/*":   {input: 1.0, output: 1.0}    # fnmatch glob; exact names win, then the longest glob
    multiplier: 0.15                             # global factor, e.g. a relay billing 15% of list price
    providers:
      anthropic: {multiplier: 2.0}               # key: a gen_ai.provider.name or a server host
    aliases:
      "anthropic/claude-sonnet-4.5": "claude-sonnet-4-5"   # model as sent -> model id to price

* ``cached_input`` prices cache reads, ``cache_write`` cache writes and ``reasoning`` reasoning
  tokens; each left out means those tokens are charged at the ``input`` (resp. ``output``) rate,
  which is also how genai-prices treats a model without a separate price for them.
* Model names and globs match case-sensitively (``fnmatch.fnmatchcase``).
* ``aliases`` rename the model once, before both the user-table and the genai-prices lookup; the
  alias target is what ``Cost.priced_model`` reports for user-table prices.
* The multiplier applied is ``multiplier`` x the ``providers`` entry for the call's server host if
  there is one, else the entry for its provider name. It applies to user and genai-prices prices
  alike, never to a relay-reported cost.

Token arithmetic. :class:`~otel_llm._parsers.usage.Usage` follows the conventions: ``input_tokens``
includes cache reads and cache writes, ``output_tokens`` includes reasoning. genai-prices 0.2.x
reads its ``Usage`` the same way (``cache_read_tokens`` / ``cache_write_tokens`` are descendants of
``input_tokens`` in its unit registry and are subtracted from it), so each token is charged once::

    cost = (input - cache_read - cache_write - audio_input) x input_rate + cache_read x cache_read_rate
         + cache_write x cache_write_rate + audio_input x input_audio_rate
         + (output - reasoning - audio_output) x output_rate
         + reasoning x reasoning_rate + audio_output x output_audio_rate [+ per-request fee]

where a part without its own rate stays in its parent (is not subtracted). Audio tokens are genai-prices'
``input_audio_tokens`` / ``output_audio_tokens``; a usage does not say how many cache reads were audio
(OpenAI's chat usage has ``cached_tokens`` and ``audio_tokens`` side by side), so cached audio is taken as
none: genai-prices' ``cache_audio_read_tokens`` is 0, and a model's audio cache-read price never applies.
The audio parts are in the cost split's ``input`` and ``output`` parts (:data:`COST_PARTS`). Should the parts exceed
the total (a provider bug), the uncached remainder counts as zero rather than negative. Context-size
tiers follow genai-prices' "cliff" rule: when the call's total ``input_tokens`` exceeds a tier's
start, that tier's rates apply to every token of the call, output included. Prices that change with
the time of day or date (DeepSeek off-peak, announced price changes) are chosen by genai-prices'
own constraint logic at the time of the call. Cache writes are charged at the default (5 minute TTL)
cache-write rate, since the usage we get does not split writes by TTL. ``openai.response.service_tier``
price variants (flex / priority) are not applied: the standard price is used.

Cost split and list price. Every :class:`Cost` priced from a table carries ``parts``, the amount split
by what it paid for (:data:`COST_PARTS`: uncached input, non-reasoning output, cache reads, cache
writes, reasoning, per-call fee), each part the formula's term times the multiplier; ``amount`` is
their sum, so the parts add up to it exactly. When a multiplier other than 1 applies, or a relay
reported the cost, ``list_amount`` is the cost at the table's rates without multiplier: list price
minus ``amount`` is what the relay saved. A relay-reported cost comes without a breakdown: it is split
in proportion to the list-price parts of the same call, each part a whole number of units in the last
place of the reported amount, so that they sum to exactly that amount); for a model no table prices it has no
split and no list price.

Speed. genai-prices' ``calc_price`` takes about 110 us a call (a model search plus Decimal
arithmetic over its unit registry), too slow for every call. So the (provider, model, server)
resolution - alias, exact and glob match in the user table, genai-prices provider and model
search, compiling the model's prices to floats per tier - is memoised in a bounded dict
(:data:`CACHE_SIZE` entries, misses included) and a cached ``price()`` only runs the float
arithmetic above and builds the :class:`Cost` (about half the time). Measured on the development
machine (CPython 3.11.7, 2 vCPUs, ``timeit`` best of 3 x 200k calls, lambda overhead included): a
cached ``price()`` costs about 1.2 us for ``gpt-4.1``, 1.4 us for the tiered ``claude-sonnet-4-5``,
1.0 us for a user-table glob, 3 us for the time-of-day priced ``deepseek-chat`` (it reads the clock
and runs genai-prices' constraint check), 0.7 us with a relay-reported cost and 0.2 us for a model
already known to be unpriced. The unit tests check the float arithmetic against genai-prices' own
Decimal result for every model in the snapshot.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import os
import threading
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from otel_llm import _pricetable
from otel_llm._parsers.usage import Usage
from otel_llm._pricetable import Conditional as _Conditional

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo, ModelPrice

__all__ = [
    "CACHE_DIR_ENV",
    "CACHE_SIZE",
    "COST_PARTS",
    "PRICES_ENV",
    "PROVIDER_IDS",
    "SELF_HOSTED_PROVIDERS",
    "Cost",
    "PriceBook",
    "PriceConfigError",
    "charge",
]

_log = logging.getLogger("otel_llm.pricing")

PRICES_ENV = "OTEL_LLM_PRICES"
"""Environment variable naming a price table file (``.yaml``, ``.yml`` or ``.json``)."""

CACHE_SIZE = 4096
"""Most (provider, model, server) resolutions a :class:`PriceBook` remembers."""

COST_PARTS = ("input", "output", "cache_read", "cache_write", "reasoning", "request")
"""What a cost part paid for: uncached input tokens, non-reasoning output tokens, cache reads, cache
writes, reasoning tokens, and a per-call fee (the order of :attr:`Cost.parts`)."""

ORIGIN_RELAY = "relay"
ORIGIN_USER = "user_table"
ORIGIN_GENAI = "genai_prices"

# OpenTelemetry ``gen_ai.provider.name`` -> genai-prices provider id. A provider name that is already a
# genai-prices id (``google``, ``cerebras``, ``moonshotai`` ...) is used as is. Explicit entries are
# needed because genai-prices' fuzzy ``provider_match`` gets several of these wrong or misses them
# ("azure.ai.openai" contains "openai" and would price on openai rather than azure; "x_ai",
# "fireworks_ai" match nothing).
PROVIDER_IDS: Mapping[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "aws.bedrock": "aws",
    "deepseek": "deepseek",
    "mistral_ai": "mistral",
    "groq": "groq",
    "x_ai": "x-ai",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "cohere": "cohere",
    "perplexity": "perplexity",
}

# Self-hosted servers bill nobody per token: a model name they serve ("gpt-oss-20b", "llama3") may
# exist in genai-prices under some cloud provider, but that price is not what this call cost. Only a
# user price table prices these.
SELF_HOSTED_PROVIDERS = frozenset({"ollama", "vllm"})

_MODEL_KEYS = frozenset({"input", "output", "cached_input", "cache_write", "reasoning"})
_TOP_KEYS = frozenset({"models", "multiplier", "providers", "aliases"})
_GLOB_CHARS = frozenset("*?[")


class PriceConfigError(ValueError):
    """A price table is unreadable or invalid; the message names the file, the key and the problem."""


class Cost(NamedTuple):
    """The cost of one call and where its price came from (immutable; a named tuple, cheap to make per call).

    - ``amount``: USD.
    - ``origin``: ``"relay"`` | ``"user_table"`` | ``"genai_prices"``.
    - ``priced_model``: the model id the price came from: user-table key, genai-prices model id, or the
      response model for relay.
    - ``price_version``: ``"genai-prices 0.2.3"``, ``"user:<file name>"`` / ``"user:mapping"``, or ``"relay"``.
    - ``parts``: ``amount`` split by what it paid for, in the order of :data:`COST_PARTS`;
      ``sum(parts) == amount``. ``None`` when there is nothing to split by (a relay-reported cost for a
      model no table prices).
    - ``list_amount``: what the call would have cost at list price (the table's rates, no multiplier),
      when a multiplier or a relay-reported cost made ``amount`` something else; ``None`` otherwise (and
      when unknown).
    """

    amount: float
    origin: str
    priced_model: str
    price_version: str
    parts: tuple[float, float, float, float, float, float] | None = None
    list_amount: float | None = None


# --------------------------------------------------------------------------------------------------
# compiled prices


class _Rates:
    """Prices of one tier, USD per million tokens (``None``: not priced separately) plus a USD per-call fee."""

    __slots__ = ("cache_read", "cache_write", "input", "input_audio", "output", "output_audio", "reasoning", "request")

    def __init__(
        self,
        input: float,
        output: float,
        cache_read: float | None = None,
        cache_write: float | None = None,
        reasoning: float | None = None,
        request: float = 0.0,
        input_audio: float | None = None,
        output_audio: float | None = None,
    ) -> None:
        self.input = input
        self.output = output
        self.cache_read = cache_read
        self.cache_write = cache_write
        self.reasoning = reasoning
        self.request = request
        self.input_audio = input_audio
        self.output_audio = output_audio


class _Prices:
    """Base rates plus context-size tiers, highest start first: ``(start, rates)``."""

    __slots__ = ("base", "tiers")

    def __init__(self, base: _Rates, tiers: tuple[tuple[int, _Rates], ...] = ()) -> None:
        self.base = base
        self.tiers = tiers


class _Entry:
    """One resolved (provider, model, server): where the price comes from and how to compute it."""

    __slots__ = ("model_info", "multiplier", "origin", "price_version", "priced_model", "prices", "variants")

    def __init__(
        self,
        origin: str,
        priced_model: str,
        price_version: str,
        multiplier: float,
        prices: _Prices | None,
        model_info: ModelInfo | _Conditional | None = None,
        variants: dict[int, _Prices | None] | None = None,
    ) -> None:
        self.origin = origin
        self.priced_model = priced_model
        self.price_version = price_version
        self.multiplier = multiplier
        self.prices = prices  # fixed prices, or None when they depend on the time of the call
        self.model_info = model_info  # time-dependent: genai-prices picks the ModelPrice ...
        self.variants = variants  # ... and this maps id(ModelPrice) -> its compiled prices


def _parts(prices: _Prices, usage: Usage) -> tuple[float, float, float, float, float, float]:
    """USD before multipliers, split as :data:`COST_PARTS`; see the module docstring for the formula.

    Tokens without a rate of their own stay in their parent's part (cache reads without a cache-read
    price are paid as input), so each token is in exactly one part. Audio tokens at their own rates are
    in the input and output parts.
    """
    inp = usage.input_tokens or 0
    out = usage.output_tokens or 0
    cr = usage.cache_read_tokens or 0
    cw = usage.cache_write_tokens or 0
    rates = prices.base
    if not (
        cr or cw or usage.reasoning_tokens or prices.tiers or usage.audio_input_tokens or usage.audio_output_tokens
    ):  # the common call: input and output only
        return (
            inp * rates.input / 1_000_000 if inp > 0 else 0.0,
            out * rates.output / 1_000_000 if out > 0 else 0.0,
            0.0,
            0.0,
            0.0,
            rates.request,
        )
    if prices.tiers:
        total_in = inp if inp >= cr + cw else cr + cw
        for start, tier_rates in prices.tiers:
            if total_in > start:
                rates = tier_rates
                break
    rest = inp
    p_cr = p_cw = p_rs = 0.0
    if rates.cache_read is not None and cr:
        rest -= cr
        p_cr = cr * rates.cache_read / 1_000_000
    if rates.cache_write is not None and cw:
        rest -= cw
        p_cw = cw * rates.cache_write / 1_000_000
    if rates.reasoning is not None:
        rs = usage.reasoning_tokens or 0
        if rs:
            out -= rs
            p_rs = rs * rates.reasoning / 1_000_000
    p_ain = p_aout = 0.0
    if rates.input_audio is not None:
        ain = usage.audio_input_tokens or 0
        if ain:
            rest -= ain
            p_ain = ain * rates.input_audio / 1_000_000
    if rates.output_audio is not None:
        aout = usage.audio_output_tokens or 0
        if aout:
            out -= aout
            p_aout = aout * rates.output_audio / 1_000_000
    p_in = rest * rates.input / 1_000_000 if rest > 0 else 0.0
    p_out = out * rates.output / 1_000_000 if out > 0 else 0.0
    if p_ain:
        p_in += p_ain
    if p_aout:
        p_out += p_aout
    return (p_in, p_out, p_cr, p_cw, p_rs, rates.request)


def _amount(prices: _Prices, usage: Usage) -> float:
    """USD before multipliers: the sum of :func:`_parts`."""
    return sum(_parts(prices, usage))


def _split(amount: float, weights: tuple[float, ...]) -> tuple[float, float, float, float, float, float] | None:
    """``amount`` split in proportion to ``weights`` (list-price parts), summing to exactly ``amount``.

    Each part is a whole number of units in the last place of ``amount`` (``q``), so every partial sum is
    a multiple of ``q`` below ``2**53 * q``: exactly representable, hence added without rounding in any
    order. The largest part takes the few units the proportional shares leave over. ``None`` if the
    weights are all zero.
    """
    total = sum(weights)
    if not total > 0:
        return None
    q = math.ulp(amount)
    units = int(amount / q)  # exact: amount is a whole number of its own ulps
    shares = [int(units * w / total) for w in weights]
    big = max(range(len(shares)), key=shares.__getitem__)
    shares[big] += units - sum(shares)
    return (shares[0] * q, shares[1] * q, shares[2] * q, shares[3] * q, shares[4] * q, shares[5] * q)


def charge(entry: _Entry | None, model: str, usage: Usage, relay: float | None) -> Cost | None:
    """The cost of a call of ``model`` with a resolved price ``entry`` (:meth:`PriceBook.entry`) and a valid
    relay-reported amount or ``None``; the call has token counts. ``None`` when nothing prices it."""
    prices = None if entry is None else entry.prices or _prices_now(entry)
    if prices is None:
        return None if relay is None else Cost(relay, ORIGIN_RELAY, model, ORIGIN_RELAY)
    listed = _parts(prices, usage)
    if relay is not None:  # billed by the relay: split in proportion to the list-price parts
        return Cost(relay, ORIGIN_RELAY, model, ORIGIN_RELAY, _split(relay, listed), sum(listed))
    m = entry.multiplier  # type: ignore[union-attr]
    if m == 1.0:
        return Cost(sum(listed), entry.origin, entry.priced_model, entry.price_version, listed)  # type: ignore[union-attr]
    parts = (listed[0] * m, listed[1] * m, listed[2] * m, listed[3] * m, listed[4] * m, listed[5] * m)
    return Cost(sum(parts), entry.origin, entry.priced_model, entry.price_version, parts, sum(listed))  # type: ignore[union-attr]


def _prices_now(entry: _Entry) -> _Prices | None:
    """Prices that depend on the time of the call: genai-prices picks the ones in force now."""
    assert entry.model_info is not None and entry.variants is not None
    model_price = entry.model_info.get_prices(datetime.now(tz=timezone.utc))
    return entry.variants.get(id(model_price))


# --------------------------------------------------------------------------------------------------
# genai-prices

_snapshot_lock = threading.Lock()
_snapshot: DataSnapshot | None = None
_genai_version = ""


def _genai_snapshot() -> DataSnapshot:
    """Our own DataSnapshot over the data bundled with genai-prices (~0.3 s once per process).

    A private instance, not ``genai_prices.data_snapshot.get_snapshot()``, so that a snapshot the
    application downloads with ``genai_prices.UpdatePrices`` never changes prices under our cache or
    makes ``price_version`` lie.
    """
    global _snapshot, _genai_version
    snap = _snapshot
    if snap is None:
        with _snapshot_lock:
            if _snapshot is None:
                import genai_prices
                from genai_prices.data import providers
                from genai_prices.data_snapshot import DataSnapshot

                _genai_version = f"genai-prices {genai_prices.__version__}"
                _snapshot = DataSnapshot(providers=providers, from_auto_update=False)
            snap = _snapshot
    assert snap is not None
    return snap


def _genai_version_name() -> str:
    """``"genai-prices X.Y.Z"`` from the installed distribution's metadata, without importing genai-prices."""
    global _genai_version
    if not _genai_version:
        from importlib.metadata import version

        try:
            _genai_version = f"genai-prices {version('genai-prices')}"
        except Exception:
            _genai_version = "genai-prices ?"
    return _genai_version


# --------------------------------------------------------------------------------------------------
# the on-disk memory of genai-prices resolutions

CACHE_DIR_ENV = "OTEL_LLM_CACHE_DIR"
"""Where resolved genai-prices entries are remembered between processes (``off``: nowhere)."""

_DISK_FORMAT = 2  # bump when what a resolution yields changes (compilation, PROVIDER_IDS, matching rules)
_DISK_MAX = 512  # entries kept on disk
_DYNAMIC = "dynamic"  # a price that depends on the time of the call: genai-prices decides at call time


def _rates_to_list(r: _Rates) -> list[float | None]:
    return [r.input, r.output, r.cache_read, r.cache_write, r.reasoning, r.request, r.input_audio, r.output_audio]


def _rates_from_list(v: list[Any]) -> _Rates:
    def opt(x: Any) -> float | None:
        return None if x is None else float(x)

    return _Rates(float(v[0]), float(v[1]), opt(v[2]), opt(v[3]), opt(v[4]), float(v[5]), opt(v[6]), opt(v[7]))


class _DiskMemory:
    """genai-prices' answers for the (provider, model, server) keys this machine has priced before, in a
    small JSON file per genai-prices version, so that a new process prices them without importing
    genai-prices (its import and data load take ~0.1 s). Only what genai-prices alone decides is kept
    (the model id it matched and its compiled prices, or that it has none); user tables and multipliers
    apply on top, as for a resolution made in-process. Every failure to read or write leaves pricing as
    it would be without the file."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.path: Path | None = None
        self.entries: dict[str, Any] = {}
        raw = env.get(CACHE_DIR_ENV, "").strip()
        if raw.lower() in ("off", "none", "false", "0"):
            return
        if raw:
            base = Path(raw)
        else:
            xdg = env.get("XDG_CACHE_HOME", "").strip()
            base = Path(xdg) / "otel-llm" if xdg else Path.home() / ".cache" / "otel-llm"
        from .version import __version__

        version = _genai_version_name().rpartition(" ")[2]
        self.path = base / f"genai-prices-{version}-otel-llm-{__version__}-f{_DISK_FORMAT}.json"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                self.entries = data
        except Exception:  # absent (the first start on this machine), unreadable or corrupt: start empty
            self.entries = {}

    @staticmethod
    def key(provider: str | None, model: str, server_address: str | None) -> str:
        return json.dumps([provider, model, server_address])

    @property
    def needs_genai(self) -> bool:
        """True unless every resolution this process may want without a new model is on disk."""
        return not self.entries or any(v == _DYNAMIC for v in self.entries.values())

    def get(self, key: str) -> Any:
        """``_UNSET`` if not on disk; else ``None`` (no price), ``_DYNAMIC`` or ``(model id, _Prices)``."""
        v = self.entries.get(key, _UNSET)
        if v is _UNSET or v is None or v == _DYNAMIC:
            return v
        try:
            tiers = tuple((int(start), _rates_from_list(r)) for start, r in v["tiers"])
            return str(v["id"]), _Prices(_rates_from_list(v["base"]), tiers)
        except Exception:
            return _UNSET

    def put(self, key: str, info_id: str | None, prices: _Prices | None, dynamic: bool) -> None:
        if self.path is None or key in self.entries or len(self.entries) >= _DISK_MAX:
            return
        if dynamic:
            value: Any = _DYNAMIC
        elif info_id is None or prices is None:
            value = None
        else:
            value = {
                "id": info_id,
                "base": _rates_to_list(prices.base),
                "tiers": [[start, _rates_to_list(r)] for start, r in prices.tiers],
            }
        self.entries[key] = value
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.entries), encoding="utf-8")
            os.replace(tmp, self.path)  # atomic: a concurrent reader sees the old file or the new one
        except Exception:
            _log.debug("otel_llm: cannot write the price cache %s", self.path, exc_info=True)
            self.path = None  # read-only or full: stop trying in this process


def _d2f(value: Any, scale: float = 1.0) -> float:
    return float(value) * scale


def _rate_at(value: Any, threshold: int | None) -> Any:
    """The Decimal price of one key when the call's input exceeds ``threshold`` (``None``: the base)."""
    from genai_prices.types import TieredPrices

    if not isinstance(value, TieredPrices):
        return value
    price = value.base
    if threshold is not None:
        for tier in value.tiers:  # sorted ascending by genai-prices
            if tier.start <= threshold:
                price = tier.price
    return price


def _compile_model_price(mp: ModelPrice) -> _Prices | None:
    """Float rates per tier from a genai-prices ModelPrice; ``None`` if it prices no token or call.

    Only the keys our usage can make non-zero matter: input/output tokens, their cache, reasoning
    and audio parts, and a per-request fee (genai-prices counts every call as one request). Keys
    for cached audio, images, searches ... see zero units from us, as they do in genai-prices.
    """
    from genai_prices.types import TieredPrices

    values = {k: v for k, v in vars(mp).items() if v is not None and not k.startswith("_")}
    inp = values.get("input_mtok")
    out = values.get("output_mtok")
    req = values.get("requests_kcount")
    if inp is None and out is None and req is None:
        return None  # empty (or only non-token prices): nothing we could stand behind
    keyed = {
        "input": inp,
        "output": out,
        "cache_read": values.get("cache_read_mtok"),
        "cache_write": values.get("cache_write_mtok"),
        "reasoning": values.get("output_reasoning_mtok"),
        "request": req,
        "input_audio": values.get("input_audio_mtok"),
        "output_audio": values.get("output_audio_mtok"),
    }
    starts = sorted({t.start for v in keyed.values() if isinstance(v, TieredPrices) for t in v.tiers})

    def rates(threshold: int | None) -> _Rates:
        at = {k: _rate_at(v, threshold) for k, v in keyed.items()}
        return _Rates(
            input=_d2f(at["input"]) if at["input"] is not None else 0.0,
            output=_d2f(at["output"]) if at["output"] is not None else 0.0,
            cache_read=_d2f(at["cache_read"]) if at["cache_read"] is not None else None,
            cache_write=_d2f(at["cache_write"]) if at["cache_write"] is not None else None,
            reasoning=_d2f(at["reasoning"]) if at["reasoning"] is not None else None,
            request=_d2f(at["request"], 1 / 1000) if at["request"] is not None else 0.0,
            input_audio=_d2f(at["input_audio"]) if at["input_audio"] is not None else None,
            output_audio=_d2f(at["output_audio"]) if at["output_audio"] is not None else None,
        )

    return _Prices(rates(None), tuple((s, rates(s)) for s in reversed(starts)))


def _genai_model(provider: str | None, model: str, server_address: str | None) -> ModelInfo | None:
    """genai-prices' ModelInfo for a call, or ``None``.

    Known provider name -> that genai-prices provider (and the providers it falls back to, e.g.
    azure -> openai, google -> anthropic). Unknown provider -> the provider whose API URL pattern
    matches ``https://<server_address>``, then the provider whose model pattern matches the model.
    A self-hosted provider -> ``None``.
    """
    if provider in SELF_HOSTED_PROVIDERS:
        return None
    snap = _genai_snapshot()
    pid = PROVIDER_IDS.get(provider) if provider else None
    if pid is None and provider and any(p.id == provider for p in snap.providers):
        pid = provider
    if pid == "google" and "models/" in model:
        # Gemini REST paths ("models/gemini-2.5-flash") and Vertex resource names
        # ("projects/p/locations/l/publishers/google/models/gemini-2.5-flash") name the model last.
        model = model.rsplit("models/", 1)[1]
    attempts: list[tuple[str | None, str | None]]
    if pid is not None:
        attempts = [(pid, None)]
    else:
        attempts = [(None, f"https://{server_address}")] if server_address else []
        attempts.append((None, None))
    for provider_id, api_url in attempts:
        try:
            return snap.find_provider_model(model, None, provider_id, api_url)[1]
        except LookupError:
            continue
    return None


def _table() -> _pricetable.Table | None:
    """The shipped price table when it was generated from the installed genai-prices, else ``None``."""
    return _pricetable.load(_genai_version_name().rpartition(" ")[2], _prices_from_dict)


def _table_model(
    table: _pricetable.Table, provider: str | None, model: str, server_address: str | None
) -> tuple[str, _Prices | _Conditional | None] | None:
    """:func:`_genai_model` answered from the shipped table: (model id, prices), prices ``None`` when the
    model is listed without token prices; ``None`` when genai-prices has no such model for the call."""
    if provider in SELF_HOSTED_PROVIDERS:
        return None
    pid = PROVIDER_IDS.get(provider) if provider else None
    if pid is None and provider and table.has_provider(provider):
        pid = provider
    if pid == "google" and "models/" in model:
        model = model.rsplit("models/", 1)[1]
    if pid is not None:
        return table.resolve(model, pid, None)
    if server_address:
        found = table.resolve(model, None, f"https://{server_address}")
        if found is not None:
            return found
    return table.resolve(model, None, None)


def _prices_to_dict(prices: _Prices) -> dict[str, Any]:
    return {"b": _rates_to_list(prices.base), "t": [[start, _rates_to_list(r)] for start, r in prices.tiers]}


def _prices_from_dict(raw: dict[str, Any] | None) -> _Prices | None:
    if raw is None:
        return None
    return _Prices(_rates_from_list(raw["b"]), tuple((int(start), _rates_from_list(r)) for start, r in raw["t"]))


# --------------------------------------------------------------------------------------------------
# user tables


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _q(key: object) -> str:
    return json.dumps(key) if isinstance(key, str) else repr(key)


class _Config:
    """A validated price table."""

    __slots__ = ("aliases", "exact", "globs", "multiplier", "providers", "version")

    def __init__(self) -> None:
        self.exact: dict[str, _Rates] = {}
        self.globs: list[tuple[str, _Rates]] = []
        self.multiplier = 1.0
        self.providers: dict[str, float] = {}
        self.aliases: dict[str, str] = {}
        self.version = "user:mapping"


def _read_file(path: Path) -> Any:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PriceConfigError(f"{where}: cannot read price table: {exc}") from exc
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise PriceConfigError(f"{where}: invalid JSON: {exc}") from exc
    import yaml  # only for a YAML price table: not on every start-up

    try:
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PriceConfigError(f"{where}: invalid YAML: {exc}") from exc


def _parse_config(raw: object, where: str) -> _Config:
    def fail(path: str, what: str) -> PriceConfigError:
        return PriceConfigError(f"{where}: {path}: {what}" if path else f"{where}: {what}")

    def mapping(value: object, path: str) -> Mapping[Any, Any]:
        if not isinstance(value, Mapping):
            raise fail(path, f"must be a mapping, got {type(value).__name__}")
        return value

    def str_key(key: object, path: str) -> str:
        if not isinstance(key, str) or not key:
            raise fail(path, f"key {key!r} must be a non-empty string")
        return key

    def price(value: object, path: str) -> float:
        if not _is_number(value):
            raise fail(path, f"must be a number (USD per million tokens), got {type(value).__name__} {value!r}")
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number) or number < 0:
            raise fail(path, f"must be a finite number >= 0, got {value!r}")
        return number

    def multiplier(value: object, path: str) -> float:
        if not _is_number(value):
            raise fail(path, f"must be a number, got {type(value).__name__} {value!r}")
        number = float(value)  # type: ignore[arg-type]
        if not math.isfinite(number) or number < 0:
            raise fail(path, f"must be a finite number >= 0, got {value!r}")
        return number

    top = mapping(raw, "")
    cfg = _Config()
    for key in top:
        if key not in _TOP_KEYS:
            raise fail(str(key), f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})")

    if "models" in top:
        for name, spec in mapping(top["models"], "models").items():
            name = str_key(name, "models")
            path = f"models.{_q(name)}"
            spec = mapping(spec, path)
            for key in spec:
                if key not in _MODEL_KEYS:
                    raise fail(f"{path}.{key}", f"unknown key (allowed: {', '.join(sorted(_MODEL_KEYS))})")
            for required in ("input", "output"):
                if required not in spec:
                    raise fail(f"{path}.{required}", "missing (every model needs input and output)")
            vals = {key: price(spec[key], f"{path}.{key}") for key in spec}
            rates = _Rates(
                input=vals["input"],
                output=vals["output"],
                cache_read=vals.get("cached_input"),
                cache_write=vals.get("cache_write"),
                reasoning=vals.get("reasoning"),
            )
            if _GLOB_CHARS.isdisjoint(name):
                cfg.exact[name] = rates
            else:
                cfg.exact[name] = rates  # a glob key still matches its literal self exactly
                cfg.globs.append((name, rates))
        cfg.globs.sort(key=lambda item: -len(item[0]))  # stable: ties keep file order

    if "multiplier" in top:
        cfg.multiplier = multiplier(top["multiplier"], "multiplier")

    if "providers" in top:
        for name, spec in mapping(top["providers"], "providers").items():
            name = str_key(name, "providers")
            path = f"providers.{_q(name)}"
            spec = mapping(spec, path)
            for key in spec:
                if key != "multiplier":
                    raise fail(f"{path}.{key}", "unknown key (allowed: multiplier)")
            if "multiplier" not in spec:
                raise fail(f"{path}.multiplier", "missing")
            cfg.providers[name] = multiplier(spec["multiplier"], f"{path}.multiplier")

    if "aliases" in top:
        for name, target in mapping(top["aliases"], "aliases").items():
            name = str_key(name, "aliases")
            if not isinstance(target, str) or not target:
                raise fail(f"aliases.{_q(name)}", f"must be a non-empty model name, got {target!r}")
            cfg.aliases[name] = target
    return cfg


# --------------------------------------------------------------------------------------------------
# the price book

_UNSET: Any = object()


class PriceBook:
    """Prices calls; build one with :meth:`load` (``PriceBook()`` is genai-prices defaults only)."""

    def __init__(self, _config: _Config | None = None) -> None:
        self._cfg = _config or _Config()
        self._cache: dict[tuple[str | None, str | None, str | None], _Entry | None] = {}
        self._lock = threading.Lock()
        self._missed: set[tuple[str | None, str]] = set()
        self._error_logged = False
        self._disk = _DiskMemory()
        if self._disk.needs_genai and _table() is None:
            _genai_snapshot()  # pay the ~0.1 s data load now, not on the first priced call

    @property
    def versions(self) -> tuple[str, ...]:
        """Where this book's prices come from: the user table (if it has any entries) and genai-prices."""
        cfg = self._cfg
        user = (cfg.version,) if cfg.exact or cfg.globs or cfg.multiplier != 1.0 or cfg.providers else ()
        return (*user, _genai_version_name())

    @classmethod
    def load(
        cls,
        prices: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
    ) -> PriceBook:
        """A price book from a table file or mapping; ``None`` reads ``OTEL_LLM_PRICES`` (else defaults only).

        Raises :class:`PriceConfigError` for any problem with the table.
        """
        if prices is None:
            path = (os.environ if env is None else env).get(PRICES_ENV, "").strip()
            if not path:
                return cls()
            prices = path
        if isinstance(prices, Mapping):
            return cls(_parse_config(prices, "<mapping>"))
        if not isinstance(prices, (str, os.PathLike)):
            raise PriceConfigError(f"<prices>: expected a file path or a mapping, got {type(prices).__name__}")
        file = Path(prices)
        cfg = _parse_config(_read_file(file), str(file))
        cfg.version = f"user:{file.name}"
        return cls(cfg)

    def price(
        self,
        *,
        provider: str | None,
        model: str | None,
        server_address: str | None,
        usage: Usage,
        relay_cost: float | None = None,
    ) -> Cost | None:
        """The cost of one call, or ``None`` when it cannot be priced. Never raises."""
        try:
            relay = _relay_amount(relay_cost) if relay_cost is not None else None
            if (usage.input_tokens is None and usage.output_tokens is None) or not model:
                return None if relay is None else Cost(relay, ORIGIN_RELAY, model or "", ORIGIN_RELAY)
            return charge(self.entry(provider, model, server_address, relay is None), model, usage, relay)
        except Exception:
            self._failed(provider, model)
            return None

    def entry(
        self, provider: str | None, model: str, server_address: str | None, log_miss: bool = True
    ) -> _Entry | None:
        """The resolved price of (provider, model, server), ``None`` if unpriced (cached here; callers that
        price many calls of one model keep it and call :func:`charge` with it)."""
        key = (provider, model, server_address)
        entry = self._cache.get(key, _UNSET)
        if entry is _UNSET:
            entry = self._resolve(key, log_miss=log_miss)
        return entry

    def names_server(self, server_address: str | None) -> bool:
        """The price table has a multiplier of its own for this server (a price asked without the server
        would differ)."""
        return server_address is not None and server_address in self._cfg.providers

    def _failed(self, provider: str | None, model: str | None) -> None:
        if not self._error_logged:
            self._error_logged = True
            _log.debug("pricing failed for provider=%r model=%r; cost not recorded", provider, model, exc_info=True)

    # -- resolution (cache misses only) -------------------------------------------------------------

    def _resolve(self, key: tuple[str | None, str | None, str | None], log_miss: bool = True) -> _Entry | None:
        provider, model, server_address = key
        assert model is not None
        entry = self._lookup(provider, model, server_address)
        if entry is None and log_miss:
            self._log_miss(provider, model, server_address)
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                try:
                    del self._cache[next(iter(self._cache))]  # oldest first
                except (StopIteration, KeyError, RuntimeError):
                    self._cache.clear()
            self._cache[key] = entry
        return entry

    def _multiplier(self, provider: str | None, server_address: str | None) -> float:
        per = self._cfg.providers
        factor = 1.0
        if server_address is not None and server_address in per:
            factor = per[server_address]
        elif provider is not None and provider in per:
            factor = per[provider]
        return self._cfg.multiplier * factor

    def _user_rates(self, name: str) -> tuple[str, _Rates] | None:
        rates = self._cfg.exact.get(name)
        if rates is not None:
            return name, rates
        for pattern, rates in self._cfg.globs:
            if fnmatch.fnmatchcase(name, pattern):
                return pattern, rates
        return None

    def _lookup(self, provider: str | None, model: str, server_address: str | None) -> _Entry | None:
        if provider == "aws.bedrock" and model.startswith("arn:"):  # a Bedrock ARN: priced as the id it ends with
            model = model.rpartition("/")[2] or model
        name = self._cfg.aliases.get(model, model)
        multiplier = self._multiplier(provider, server_address)
        user = self._user_rates(name)
        if user is not None:
            key, rates = user
            return _Entry(ORIGIN_USER, key, self._cfg.version, multiplier, _Prices(rates))
        disk = self._disk
        disk_key = disk.key(provider, name, server_address)
        known = disk.get(disk_key)
        if known is None:
            return None
        if known is not _UNSET and known != _DYNAMIC:
            info_id, prices = known
            return _Entry(ORIGIN_GENAI, info_id, _genai_version_name(), multiplier, prices)
        table = _table()
        if table is not None:  # the shipped table generated from the installed genai-prices: no import
            found = _table_model(table, provider, name, server_address)
            if found is None:
                disk.put(disk_key, None, None, False)
                return None
            info_id, resolved = found
            if isinstance(resolved, _Conditional):
                disk.put(disk_key, info_id, None, True)
                if all(v is None for v in resolved.variants.values()):
                    return None
                return _Entry(
                    ORIGIN_GENAI, info_id, _genai_version_name(), multiplier, None, resolved, resolved.variants
                )
            disk.put(disk_key, info_id, resolved, False)
            if resolved is None:
                return None
            return _Entry(ORIGIN_GENAI, info_id, _genai_version_name(), multiplier, resolved)
        info = _genai_model(provider, name, server_address)  # loads genai-prices if this process has not yet
        if info is None:
            disk.put(disk_key, None, None, False)
            return None
        from genai_prices.types import ModelPrice

        if isinstance(info.prices, ModelPrice):
            compiled = _compile_model_price(info.prices)
            disk.put(disk_key, info.id, compiled, False)
            if compiled is None:
                return None
            return _Entry(ORIGIN_GENAI, info.id, _genai_version_name(), multiplier, compiled)
        variants = {id(cp.prices): _compile_model_price(cp.prices) for cp in info.prices}
        disk.put(disk_key, info.id, None, True)
        if all(v is None for v in variants.values()):
            return None
        return _Entry(ORIGIN_GENAI, info.id, _genai_version_name(), multiplier, None, info, variants)

    def _log_miss(self, provider: str | None, model: str, server_address: str | None) -> None:
        key = (provider, model)
        if key in self._missed or len(self._missed) >= CACHE_SIZE:
            return
        self._missed.add(key)
        _log.info(
            "no price for model %r (provider %r, server %r): its cost is not recorded; "
            "add it to a price table (%s) or alias it to a known model",
            model,
            provider,
            server_address,
            PRICES_ENV,
        )


def _relay_amount(value: object) -> float | None:
    """A relay-reported cost as a float, or ``None`` if it is not a finite non-negative number."""
    if isinstance(value, bool):
        return None
    try:
        amount = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(amount) or amount < 0:
        return None
    return amount
