"""In-process spend per (provider, model), for budget guards in the application's own code.

Prometheus answers "what did we spend" for dashboards; a router deciding *now* whether to fall back
to a cheaper model needs the number in-process, without a scrape. Every instrumented call is added to
the process-wide :data:`LEDGER`; read it with ``LEDGER.snapshot()``::

    from otel_llm.spend import LEDGER

    spend = LEDGER.snapshot()
    if spend.total_usd > 50:
        model = "gpt-4.1-mini"
    sonnet = spend.by_model("claude-sonnet-4-5")

Counting rules for :meth:`SpendLedger.add`:

* every call counts in ``calls``;
* ``error=True`` counts in ``errors`` (a failed call is not an unpriced one);
* a successful call with ``cost=None`` counts in ``unpriced_calls`` - its spend is unknown, so
  ``cost_usd`` is a lower bound whenever ``unpriced_calls`` is not zero;
* a cost given is added even for a failed call (a relay may bill a call that failed mid-stream);
* token counts are added from the usage when there is one; ``None`` fields add nothing.

Cost and cardinality: ``add`` takes one lock for a handful of integer/float additions on a
per-(provider, model) slot; after a key's first call it allocates nothing. At most
:data:`MAX_KEYS` distinct (provider, model) keys are kept; calls for further keys are added under
``(provider, "_OTHER")`` (and, should provider names themselves run away, under
``("_OTHER", "_OTHER")`` once :data:`MAX_KEYS` + :data:`MAX_OVERFLOW_KEYS` slots exist).

Tenants and features: a call made inside ``otel_llm.scope(tenant=..., feature=...)`` (or under baggage
that names them) is also added to a (tenant, feature, provider, model) slot; ``otel_llm.spend(tenant="acme")``
reads those (``LEDGER.snapshot(tenant=..., feature=...)``). Tenant and feature values are the bounded ones
of the metric labels (past ``max_scope_values`` distinct values of a key: ``"_OTHER"``), and at most
:data:`MAX_SCOPED_KEYS` such slots are kept (then everything new goes to ``("_OTHER",) * 4``).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from otel_llm._parsers.usage import Usage

__all__ = [
    "LEDGER",
    "LOCK",
    "MAX_KEYS",
    "MAX_OVERFLOW_KEYS",
    "MAX_SCOPED_KEYS",
    "OTHER",
    "ModelSpend",
    "ScopeSpend",
    "Spend",
    "SpendLedger",
]

LOCK = threading.RLock()
"""The one lock of the in-process tallies: every ledger's, and the recorder's metric tallies (so that a call
adds to all of them under a single acquisition). Re-entrant: a call may end inside a garbage collection (an
abandoned stream, a response freed before its body was parsed), which can run while this thread holds it."""

OTHER = "_OTHER"
"""Model (and, past :data:`MAX_OVERFLOW_KEYS`, provider) name that calls beyond the key limit are added under."""

MAX_KEYS = 1000
"""Distinct (provider, model) keys a ledger keeps before folding new ones into ``(provider, "_OTHER")``."""

MAX_OVERFLOW_KEYS = 100
"""Extra ``(provider, "_OTHER")`` slots allowed before everything new goes to ``("_OTHER", "_OTHER")``."""

MAX_SCOPED_KEYS = 20000
"""Distinct (tenant, feature, provider, model) keys a ledger keeps before adding calls of new ones under
``("_OTHER", "_OTHER", "_OTHER", "_OTHER")``."""


@dataclass(frozen=True, slots=True)
class ModelSpend:
    """What one (provider, model) has cost this process since start or the last reset."""

    provider: str
    model: str
    calls: int
    unpriced_calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    cost_usd: float
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0


def _sum(provider: str, model: str, parts: tuple[ModelSpend, ...]) -> ModelSpend:
    return ModelSpend(
        provider=provider,
        model=model,
        calls=sum(p.calls for p in parts),
        unpriced_calls=sum(p.unpriced_calls for p in parts),
        errors=sum(p.errors for p in parts),
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        cache_read_tokens=sum(p.cache_read_tokens for p in parts),
        cache_write_tokens=sum(p.cache_write_tokens for p in parts),
        reasoning_tokens=sum(p.reasoning_tokens for p in parts),
        cost_usd=sum(p.cost_usd for p in parts),
        audio_input_tokens=sum(p.audio_input_tokens for p in parts),
        audio_output_tokens=sum(p.audio_output_tokens for p in parts),
    )


@dataclass(frozen=True, slots=True)
class ScopeSpend:
    """What one (tenant, feature) has cost (``None``: calls whose scope named no tenant, or no feature)."""

    tenant: str | None
    feature: str | None
    calls: int
    unpriced_calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class Spend:
    """A consistent copy of a ledger at one moment."""

    models: tuple[ModelSpend, ...]
    """Every (provider, model), most expensive first (then most calls, then by name)."""
    total_usd: float
    calls: int
    unpriced_calls: int
    scopes: tuple[ScopeSpend, ...] = ()
    """Every (tenant, feature) seen, most expensive first (in the unfiltered snapshot; empty in a filtered one)."""

    def by_tenant(self) -> tuple[ScopeSpend, ...]:
        """Each tenant's totals over its features (``feature`` is ``"*"``), most expensive first."""
        tenants: dict[str | None, list[ScopeSpend]] = {}
        for s in self.scopes:
            tenants.setdefault(s.tenant, []).append(s)
        out = [
            ScopeSpend(
                tenant,
                "*",
                sum(p.calls for p in parts),
                sum(p.unpriced_calls for p in parts),
                sum(p.errors for p in parts),
                sum(p.input_tokens for p in parts),
                sum(p.output_tokens for p in parts),
                sum(p.cost_usd for p in parts),
            )
            for tenant, parts in tenants.items()
        ]
        return tuple(sorted(out, key=lambda s: (-s.cost_usd, -s.calls, s.tenant or "")))

    def by_model(self, model: str) -> ModelSpend | None:
        """Spend on ``model`` summed over the providers that served it; ``None`` if it was never called.

        ``provider`` is that provider when only one served the model, else ``"*"``.
        """
        parts = tuple(m for m in self.models if m.model == model)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        return _sum("*", model, parts)

    def by_provider(self, provider: str) -> tuple[ModelSpend, ...]:
        """Each model called through ``provider``, most expensive first (empty if none).

        ``sum(m.cost_usd for m in spend.by_provider("openai"))`` is that provider's total.
        """
        return tuple(m for m in self.models if m.provider == provider)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data."""
        out: dict[str, Any] = {
            "total_usd": self.total_usd,
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "models": [asdict(m) for m in self.models],
        }
        if self.scopes:  # calls made inside scopes: per (tenant, feature)
            out["scopes"] = [asdict(s) for s in self.scopes]
        return out


class _Slot:
    """One (provider, model)'s running totals. A slot, once made, lives as long as its ledger (``reset`` zeroes
    it in place), so that the recorder may keep it and add to it under :data:`LOCK` directly."""

    __slots__ = (
        "audio_input",
        "audio_output",
        "cache_read",
        "cache_write",
        "calls",
        "cost",
        "errors",
        "input",
        "output",
        "reasoning",
        "unpriced",
    )

    def __init__(self) -> None:
        self.calls = 0
        self.unpriced = 0
        self.errors = 0
        self.input = 0
        self.output = 0
        self.cache_read = 0
        self.cache_write = 0
        self.reasoning = 0
        self.cost = 0.0
        self.audio_input = 0
        self.audio_output = 0


class SpendLedger:
    """Thread-safe running totals per (provider, model)."""

    def __init__(self, max_keys: int = MAX_KEYS, max_overflow_keys: int = MAX_OVERFLOW_KEYS) -> None:
        self._lock = LOCK
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._max_keys = max_keys
        self._max_all = max_keys + max_overflow_keys
        # (tenant, feature, provider, model) -> its slot: calls made inside a scope (see the module docstring)
        self._scoped: dict[tuple[str | None, str | None, str, str], _Slot] = {}
        self._max_scoped = MAX_SCOPED_KEYS

    def add(self, provider: str, model: str, usage: Usage | None, cost: float | None, *, error: bool = False) -> None:
        """Count one call (see the module docstring for what goes where)."""
        key = (provider, model)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._new_slot(provider, key)
            slot.calls += 1
            if error:
                slot.errors += 1
            if cost is not None:
                slot.cost += cost
            elif not error:
                slot.unpriced += 1
            if usage is not None and not usage.invalid:  # an invalid usage has no counts to add
                if usage.input_tokens:
                    slot.input += usage.input_tokens
                if usage.output_tokens:
                    slot.output += usage.output_tokens
                if usage.cache_read_tokens:
                    slot.cache_read += usage.cache_read_tokens
                if usage.cache_write_tokens:
                    slot.cache_write += usage.cache_write_tokens
                if usage.reasoning_tokens:
                    slot.reasoning += usage.reasoning_tokens
                if usage.audio_input_tokens:
                    slot.audio_input += usage.audio_input_tokens
                if usage.audio_output_tokens:
                    slot.audio_output += usage.audio_output_tokens

    def slot(self, provider: str, model: str) -> _Slot:
        """The live slot calls of (provider, model) are added to (bounded as :meth:`add` says). The recorder
        keeps it per series and adds a call's numbers to it under :data:`LOCK`, as :meth:`add` would."""
        key = (provider, model)
        with self._lock:
            slot = self._slots.get(key)
            if slot is None:
                slot = self._new_slot(provider, key)
            return slot

    def scoped_slot(self, tenant: str | None, feature: str | None, provider: str, model: str) -> _Slot:
        """The live slot of the calls of (provider, model) made for (tenant, feature), bounded by
        :data:`MAX_SCOPED_KEYS`; the recorder adds to it under :data:`LOCK` beside the (provider, model) one."""
        key = (tenant, feature, provider, model)
        with self._lock:
            slot = self._scoped.get(key)
            if slot is None:
                if len(self._scoped) >= self._max_scoped:
                    key = (OTHER, OTHER, OTHER, OTHER)
                    slot = self._scoped.get(key)
                if slot is None:
                    slot = self._scoped[key] = _Slot()
            return slot

    def _new_slot(self, provider: str, key: tuple[str, str]) -> _Slot:
        """The slot for a key seen for the first time (called with the lock held)."""
        slots = self._slots
        if len(slots) >= self._max_keys:
            key = (provider, OTHER)
            if key not in slots and len(slots) >= self._max_all:
                key = (OTHER, OTHER)
            slot = slots.get(key)
            if slot is not None:
                return slot
        slot = slots[key] = _Slot()
        return slot

    def snapshot(self, tenant: str | None = None, feature: str | None = None) -> Spend:
        """A consistent copy of every total; with ``tenant`` and/or ``feature``, of the calls made for them only
        (per provider and model, summed over the other dimension; empty when never seen)."""
        scoped = tenant is not None or feature is not None
        with self._lock:
            if not scoped:
                items = [(key, _row(s)) for key, s in self._slots.items() if s.calls]
                by_scope: dict[tuple[str | None, str | None], list[int | float]] = {}
                for (t, f, _, _), s in self._scoped.items():
                    if s.calls:
                        row = by_scope.setdefault((t, f), [0, 0, 0, 0, 0, 0.0])
                        for i, v in enumerate((s.calls, s.unpriced, s.errors, s.input, s.output, s.cost)):
                            row[i] += v
            else:
                sums: dict[tuple[str, str], list[int | float]] = {}
                for (t, f, provider, model), s in self._scoped.items():
                    if s.calls and (tenant is None or t == tenant) and (feature is None or f == feature):
                        row = sums.setdefault((provider, model), [0] * 8 + [0.0, 0, 0])
                        for i, v in enumerate(_row(s)):
                            row[i] += v
                items = [(key, tuple(v)) for key, v in sums.items()]
                by_scope = {}
        models = sorted(
            (ModelSpend(provider, model, *row) for (provider, model), row in items),  # type: ignore[arg-type]
            key=lambda m: (-m.cost_usd, -m.calls, m.provider, m.model),
        )
        scopes = sorted(
            (ScopeSpend(t, f, *row) for (t, f), row in by_scope.items()),  # type: ignore[arg-type]
            key=lambda s: (-s.cost_usd, -s.calls, s.tenant or "", s.feature or ""),
        )
        return Spend(
            models=tuple(models),
            total_usd=sum(m.cost_usd for m in models),
            calls=sum(m.calls for m in models),
            unpriced_calls=sum(m.unpriced_calls for m in models),
            scopes=tuple(scopes),
        )

    def reset(self) -> None:
        """Forget everything (e.g. at the start of a budget period). The slots are zeroed in place (see
        ``_Slot``); a (provider, model) with no call since is left out of snapshots."""
        with self._lock:
            for slot in self._slots.values():
                slot.__init__()  # type: ignore[misc]
            for slot in self._scoped.values():
                slot.__init__()  # type: ignore[misc]


def _row(s: _Slot) -> tuple[int | float, ...]:
    """A slot's totals in the order of ``ModelSpend``'s fields after provider and model."""
    return (
        s.calls,
        s.unpriced,
        s.errors,
        s.input,
        s.output,
        s.cache_read,
        s.cache_write,
        s.reasoning,
        s.cost,
        s.audio_input,
        s.audio_output,
    )


LEDGER = SpendLedger()
"""The process-wide ledger the instrumentation adds every call to."""
