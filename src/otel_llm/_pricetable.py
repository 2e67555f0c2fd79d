"""genai-prices' price data and model matching, compiled to a small JSON file shipped in the package.

Importing genai-prices costs a start-up ~100-200 ms (its pydantic types, its HTTP client for updates,
1.6 MB of data built into Python objects). This module answers the same question as
``DataSnapshot.find_provider_model`` followed by ``ModelInfo.get_prices`` - which model a (provider, model,
server) names, and its prices now - from ``_genai_prices_table.json``, generated from the installed
genai-prices by ``python -c "import otel_llm._pricetable as t; t.write()"``. The file is used only while it
was generated from the genai-prices installed beside it: its ``identity`` (genai-prices' version and the
size of its ``data.py``, read without importing genai-prices) must match, else :func:`load` returns
``None`` and pricing goes through genai-prices itself, as before. tests/test_pricing.py checks every model
the project prices against genai-prices' own ``calc_price`` through this table, and that the shipped file
is the one the installed genai-prices generates.

Time-dependent prices (a start date, DeepSeek's off-peak hours) are kept as genai-prices' ordered list of
(constraint, prices), chosen at call time by :meth:`Conditional.get_prices` with genai-prices' own rule:
the last price whose constraint is active, else the first.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timezone
from importlib.util import find_spec
from pathlib import Path
from typing import Any

TABLE_FILE = Path(__file__).with_name("_genai_prices_table.json")
FORMAT = 1  # bump when the file's layout or what a resolution yields changes


def identity(version: str) -> dict[str, Any] | None:
    """What identifies the installed genai-prices' data, without importing it: its version and the size of
    its data module. ``None`` when genai-prices is not installed."""
    try:
        spec = find_spec("genai_prices")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    try:
        size = Path(spec.origin).with_name("data.py").stat().st_size
    except OSError:
        return None
    return {"format": FORMAT, "version": version, "data_size": size}


# --------------------------------------------------------------------------------------------------
# matching: genai-prices' clauses, as nested lists


def _match(clause: list[Any], text: str) -> bool:
    """``text`` is lower-cased; the strings of ``=``, ``^``, ``$`` and ``in`` clauses were lower-cased when the
    table was generated (genai-prices lower-cases both sides); a regex runs on the text as genai-prices' does."""
    op = clause[0]
    if op == "=":
        return text == clause[1]
    if op == "^":
        return text.startswith(clause[1])
    if op == "$":
        return text.endswith(clause[1])
    if op == "in":
        return clause[1] in text
    if op == "re":
        return re.search(clause[1], text) is not None
    if op == "or":
        return any(_match(c, text) for c in clause[1])
    if op == "and":
        return all(_match(c, text) for c in clause[1])
    return False


_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


def _normalize_compact_dated_ref(model_ref: str) -> str:
    """``gpt-5.2-20251211`` -> ``gpt-5.2-2025-12-11`` (genai-prices' fallback for LiteLLM/OpenRouter refs)."""
    from datetime import date

    def replace(m: re.Match[str]) -> str:
        year, month, day = int(m.group(2)), int(m.group(3)), int(m.group(4))
        try:
            date(year, month, day)
        except ValueError:
            return m.group(0)
        return f"{m.group(1)}{year:04d}-{month:02d}-{day:02d}"

    return _COMPACT_DATE.sub(replace, model_ref)


class Conditional:
    """Prices that change with the time of the call: genai-prices' ``ConditionalPrice`` list, in order.

    ``get_prices(now)`` returns the chosen condition's key object (as ``ModelInfo.get_prices`` returns a
    ``ModelPrice``); ``variants`` maps ``id(key)`` to its compiled prices, the shape ``pricing._Entry`` keeps."""

    __slots__ = ("conditions", "variants")

    def __init__(self, conditions: list[tuple[list[Any] | None, Any]]) -> None:
        self.conditions = [(c, object()) for c, _ in conditions]  # (constraint, key)
        self.variants = {id(key): prices for (_, key), (_, prices) in zip(self.conditions, conditions, strict=True)}

    @staticmethod
    def _active(constraint: list[Any], now: datetime) -> bool:
        utc = now.astimezone(timezone.utc) if now.tzinfo is not None else now
        if constraint[0] == "date":  # StartDateConstraint: the UTC date is on or after the start
            return utc.date().toordinal() >= constraint[1]
        # TimeOfDateConstraint, both ends as UTC microseconds of the day
        t = ((utc.hour * 60 + utc.minute) * 60 + utc.second) * 1_000_000 + utc.microsecond
        start, end = constraint[1], constraint[2]
        if end < start:
            return t >= start or t < end
        return start <= t < end

    def get_prices(self, now: datetime) -> object:
        for constraint, key in reversed(self.conditions):
            if constraint is None or self._active(constraint, now):
                return key
        return self.conditions[0][1]


class Table:
    """The loaded table: providers in genai-prices' order, each with its models in order."""

    def __init__(self, data: dict[str, Any], compile_prices: Any) -> None:
        self.providers: list[dict[str, Any]] = data["providers"]
        self.by_id = {p["id"]: p for p in self.providers}
        self._compile = compile_prices  # raw {"b": [...], "t": [...]} -> pricing._Prices

    def has_provider(self, provider_id: str) -> bool:
        return provider_id in self.by_id

    def _provider_by_id(self, provider_id: str) -> dict[str, Any] | None:
        wanted = provider_id.lower().strip()
        p = self.by_id.get(wanted)
        if p is not None:
            return p
        for p in self.providers:
            if p["pm"] is not None and _match(p["pm"], wanted):
                return p
        return None

    def _find_provider(self, model_ref: str, provider_id: str | None, api_url: str | None) -> dict[str, Any] | None:
        if provider_id is not None:
            p = self._provider_by_id(provider_id)
            if p is not None or provider_id.lower() != "litellm":
                return p
        if api_url is not None:
            for p in self.providers:
                if re.match(p["api"], api_url):
                    return p
            return None
        if model_ref:
            for p in self.providers:
                if p["mm"] is not None and _match(p["mm"], model_ref):
                    return p
        return None

    @staticmethod
    def _models(provider: dict[str, Any]) -> list[list[Any]]:
        """A provider's models, decoded on first use: each provider's list is a JSON string of its own in the
        file, so that loading the table parses ~50 short provider records, not ~2,300 models."""
        models = provider["models"]
        if isinstance(models, str):
            models = provider["models"] = json.loads(models)
        return models

    def _match_model(self, provider: dict[str, Any], ref: str, fallback: bool) -> list[Any] | None:
        for m in self._models(provider):
            if _match(m[1], ref):
                return m
        if fallback:
            for pid in provider["fallback"] or ():
                other = self.by_id.get(pid)
                if other is not None:
                    found = self._match_model(other, ref, False)
                    if found is not None:
                        return found
        return None

    def resolve(self, model_ref: str, provider_id: str | None, api_url: str | None) -> tuple[str, Any] | None:
        """(model id, prices) as genai-prices' ``find_provider_model`` would find them: prices are compiled
        ``_Prices``, ``None`` (the model is listed without token prices) or a :class:`Conditional`. ``None``
        when genai-prices would raise ``LookupError``."""
        ref = model_ref.lower()
        if provider_id and provider_id.lower() == "litellm" and "/" in ref:
            actual, rest = ref.split("/", 1)
            if actual and self._provider_by_id(actual) is not None:
                provider_id, ref = actual, rest
        provider = self._find_provider(ref, provider_id, api_url)
        if provider is None:
            return None
        m = self._match_model(provider, ref, True)
        if m is None:
            normalized = _normalize_compact_dated_ref(ref)
            if normalized != ref:
                m = self._match_model(provider, normalized, True)
        if m is None:
            return None
        model_id, _, raw = m
        if raw is None:
            return model_id, None
        if "c" in raw:
            return model_id, Conditional([(c, self._compile(p)) for c, p in raw["c"]])
        return model_id, self._compile(raw)


_lock = threading.Lock()
_loaded: list[Table | None] = []  # [] until load() ran once


def load(version: str, compile_prices: Any) -> Table | None:
    """The shipped table, if it was generated from the genai-prices installed here; else ``None`` (once per
    process: the identity check and the file read happen on the first call only)."""
    if _loaded:
        return _loaded[0]
    with _lock:
        if not _loaded:
            table = None
            try:
                data = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
                if data.get("identity") == identity(version):
                    table = Table(data, compile_prices)
            except Exception:  # absent or unreadable: genai-prices itself prices
                table = None
            _loaded.append(table)
    return _loaded[0]


def reset() -> None:
    """Forget the loaded table (tests)."""
    with _lock:
        _loaded.clear()


# --------------------------------------------------------------------------------------------------
# generation (imports genai-prices: at build and test time only)


def _clause(m: Any) -> list[Any]:
    from genai_prices import types as t

    if isinstance(m, t.ClauseEquals):
        return ["=", m.equals.lower()]
    if isinstance(m, t.ClauseStartsWith):
        return ["^", m.starts_with.lower()]
    if isinstance(m, t.ClauseEndsWith):
        return ["$", m.ends_with.lower()]
    if isinstance(m, t.ClauseContains):
        return ["in", m.contains.lower()]
    if isinstance(m, t.ClauseRegex):
        return ["re", m.regex]
    if isinstance(m, t.ClauseOr):
        return ["or", [_clause(c) for c in m.or_]]
    if isinstance(m, t.ClauseAnd):
        return ["and", [_clause(c) for c in m.and_]]
    raise TypeError(f"unknown genai-prices match clause {type(m).__name__}")


def _constraint(c: Any) -> list[Any] | None:
    from datetime import date, time

    from genai_prices import types as t

    if c is None:
        return None
    if isinstance(c, t.StartDateConstraint):
        return ["date", c.start_date.toordinal()]
    if isinstance(c, t.TimeOfDateConstraint):

        def us(v: time) -> int:
            v = v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)
            u = datetime.combine(date(1970, 1, 1), v).astimezone(timezone.utc)
            return ((u.hour * 60 + u.minute) * 60 + u.second) * 1_000_000 + u.microsecond

        return ["tod", us(c.start_time), us(c.end_time)]
    raise TypeError(f"unknown genai-prices constraint {type(c).__name__}")


def generate() -> dict[str, Any]:
    """The table's content, from the installed genai-prices (imported here)."""
    from genai_prices.data import providers
    from genai_prices.types import ModelPrice

    from . import pricing

    def compiled(mp: Any) -> dict[str, Any] | None:
        prices = pricing._compile_model_price(mp)
        if prices is None:
            return None
        return pricing._prices_to_dict(prices)

    out = []
    for p in providers:
        models = []
        for m in p.models:
            if isinstance(m.prices, ModelPrice):
                raw = compiled(m.prices)
            else:
                raw = {"c": [[_constraint(cp.constraint), compiled(cp.prices)] for cp in m.prices]}
            models.append([m.id, _clause(m.match), raw])
        out.append(
            {
                "id": p.id,
                "api": p.api_pattern,
                "mm": _clause(p.model_match) if p.model_match is not None else None,
                "pm": _clause(p.provider_match) if p.provider_match is not None else None,
                "fallback": list(p.fallback_model_providers or ()),
                "models": json.dumps(models, separators=(",", ":")),
            }
        )
    return {"identity": identity(pricing._genai_version_name().rpartition(" ")[2]), "providers": out}


def write(path: Path = TABLE_FILE) -> Path:
    path.write_text(json.dumps(generate(), separators=(",", ":")) + "\n", encoding="utf-8")
    return path
