"""The per-model table our dashboards show, for a terminal, a JSON file or one self-contained HTML page.

Two sources give the same ``Report``: a running Prometheus (``from_prometheus``, what
``otel-llm report`` uses) and an in-process metric reader (``from_metrics``, what ``otel-llm demo``
prints at the end). Quantiles come from the histogram buckets the same way Prometheus'
``histogram_quantile`` computes them, so the numbers match the dashboards.
"""

from __future__ import annotations

import html
import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from . import _names as n

__all__ = [
    "COLUMNS",
    "ModelRow",
    "Report",
    "ReportError",
    "TENANT_COLUMNS",
    "TenantRow",
    "add_in_flight",
    "from_metrics",
    "from_prometheus",
    "in_flight",
    "quantile",
    "render_html",
]


class ReportError(RuntimeError):
    """Prometheus cannot be reached, answered with an error, or holds no otel-llm series yet."""


COLUMNS = (
    "model",
    "provider",
    "requests",
    "error %",
    "p50",
    "p95",
    "TTFC p50",
    "peak",
    "input tok",
    "output tok",
    "cached tok",
    "cost",
    "in $",
    "out $",
    "cache $",
    "list $",
    "saved",
    "share",
)
"""Table columns. ``peak``: most calls in flight at once; ``in $`` / ``out $`` / ``cache $``: the cost of
uncached input (and per-call fees), of output (reasoning included) and of cache reads and writes, which
add up to ``cost``; ``list $`` / ``saved``: for
calls a relay or a price multiplier billed, their cost at list price and what that saved ("-": none)."""


@dataclass
class ModelRow:
    model: str
    provider: str
    requests: int = 0
    errors: int = 0
    p50_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    ttfc_p50_s: float | None = None
    ttfc_p95_s: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    cost_by_type: dict[str, float] = field(default_factory=dict)  # gen_ai.token.type -> USD; sums to cost_usd
    list_cost_usd: float | None = None  # list-price cost of the calls a relay or multiplier billed; None: none
    relay_billed_usd: float | None = None  # what those same calls were billed
    peak_in_flight: float | None = None  # most calls in flight at once (None: not sampled)

    @property
    def error_pct(self) -> float:
        return 100.0 * self.errors / self.requests if self.requests else 0.0

    @property
    def savings_usd(self) -> float | None:
        """List price minus billed, over the calls a relay or multiplier priced; ``None`` when there were none."""
        if self.list_cost_usd is None:
            return None
        return self.list_cost_usd - (self.relay_billed_usd or 0.0)


TENANT_COLUMNS = ("tenant", "requests", "error %", "input tok", "output tok", "unpriced", "cost", "share")
"""The per-tenant table's columns (calls made inside ``otel_llm.scope(tenant=...)`` or under tenant baggage;
``-``: calls with no tenant; ``_OTHER``: tenants past ``max_scope_values``)."""


@dataclass
class TenantRow:
    tenant: str
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unpriced: int = 0
    cost_usd: float = 0.0


@dataclass
class Report:
    rows: list[ModelRow]
    errors_by_type: dict[str, int] = field(default_factory=dict)
    spend_over_time: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # model -> (unix s, USD)
    in_flight_over_time: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # model -> (unix s, n)
    source: str = ""
    window: str = ""
    generated_at: float = field(default_factory=time.time)
    # per tenant, most expensive first; empty when no call carried a tenant label
    tenants: list[TenantRow] = field(default_factory=list)

    @property
    def total_cost(self) -> float:
        return sum(r.cost_usd for r in self.rows)

    @property
    def total_savings(self) -> float | None:
        saved = [r.savings_usd for r in self.rows if r.savings_usd is not None]
        return sum(saved) if saved else None

    def share(self, row: ModelRow) -> float:
        total = self.total_cost
        return 100.0 * row.cost_usd / total if total else 0.0

    def cells(self, row: ModelRow) -> list[str]:
        """One table row as text, in the order of ``COLUMNS`` (terminal and HTML alike)."""
        return [
            row.model,
            row.provider,
            f"{row.requests:,}",
            f"{row.error_pct:.1f}%",
            _fmt_s(row.p50_s),
            _fmt_s(row.p95_s),
            _fmt_s(row.ttfc_p50_s),
            "-" if row.peak_in_flight is None else f"{row.peak_in_flight:g}",
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            f"{row.cached_tokens:,}",
            "unpriced" if row.unpriced and not row.cost_usd else f"${row.cost_usd:.4f}",
            _fmt_usd(sum(v for k, v in row.cost_by_type.items() if k in ("input", "request")), row),
            _fmt_usd(row.cost_by_type.get("output", 0.0) + row.cost_by_type.get("reasoning", 0.0), row),
            _fmt_usd(row.cost_by_type.get("cache_read", 0.0) + row.cost_by_type.get("cache_write", 0.0), row),
            "-" if row.list_cost_usd is None else f"${row.list_cost_usd:.4f}",
            "-" if row.savings_usd is None else f"${row.savings_usd:.4f}",
            f"{self.share(row):.1f}%",
        ]

    def tenant_cells(self, row: TenantRow) -> list[str]:
        """One per-tenant row as text, in the order of ``TENANT_COLUMNS``."""
        total = self.total_cost
        return [
            row.tenant,
            f"{row.requests:,}",
            f"{100.0 * row.errors / row.requests if row.requests else 0.0:.1f}%",
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            f"{row.unpriced:,}",
            f"${row.cost_usd:.4f}",
            f"{100.0 * row.cost_usd / total if total else 0.0:.1f}%",
        ]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for row, raw in zip(self.rows, out["rows"], strict=False):
            raw["error_pct"] = round(row.error_pct, 3)
            raw["spend_share_pct"] = round(self.share(row), 3)
            raw["savings_usd"] = row.savings_usd
        out["total_cost_usd"] = self.total_cost
        out["total_savings_usd"] = self.total_savings
        return out


def quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """``histogram_quantile`` over per-bucket (not cumulative) counts; ``counts`` has one more entry (+Inf)."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0.0
    for i, c in enumerate(counts):
        if cumulative + c >= rank and c > 0:
            if i >= len(bounds):  # the +Inf bucket: Prometheus answers the highest finite bound
                return float(bounds[-1]) if bounds else None
            lower = 0.0 if i == 0 else float(bounds[i - 1])
            upper = float(bounds[i])
            return lower + (upper - lower) * (rank - cumulative) / c
        cumulative += c
    return float(bounds[-1]) if bounds else None


# --- from an in-process metric reader ---------------------------------------------------------


def from_metrics(metrics_data: Any, source: str = "in-process metrics") -> Report:
    """Build the report from ``MetricReader.get_metrics_data()`` / an InMemoryMetricReader's data."""
    rows: dict[tuple[str, str], ModelRow] = {}
    hist: dict[tuple[str, tuple[str, str]], tuple[list[float], list[float]]] = {}
    errors: dict[str, int] = defaultdict(int)
    tenants: dict[str, TenantRow] = {}

    def tenant(attrs: Any) -> TenantRow:
        name = str(attrs.get(n.SCOPE_TENANT, "-"))
        r = tenants.get(name)
        if r is None:
            r = tenants[name] = TenantRow(name)
        return r

    def row(attrs: Any) -> ModelRow:
        key = (str(attrs.get(n.REQUEST_MODEL, "?")), str(attrs.get(n.PROVIDER, "?")))
        r = rows.get(key)
        if r is None:
            r = rows[key] = ModelRow(*key)
        return r

    def add_hist(name: str, key: tuple[str, str], point: Any) -> None:
        bounds = list(point.explicit_bounds)
        counts = [float(c) for c in point.bucket_counts]
        have = hist.get((name, key))
        if have is None:
            hist[(name, key)] = (bounds, counts)
        else:
            have[1][:] = [a + b for a, b in zip(have[1], counts, strict=False)]

    for rm in getattr(metrics_data, "resource_metrics", ()) if metrics_data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    a = p.attributes
                    if metric.name == n.DURATION:
                        r = row(a)
                        r.requests += p.count
                        t = tenant(a)
                        t.requests += p.count
                        err = a.get(n.ERROR_TYPE)
                        if err:
                            r.errors += p.count
                            t.errors += p.count
                            errors[str(err)] += p.count
                        add_hist(metric.name, (r.model, r.provider), p)
                    elif metric.name == n.TIME_TO_FIRST_CHUNK:
                        r = row(a)
                        add_hist(metric.name, (r.model, r.provider), p)
                    elif metric.name == n.TOKEN_USAGE:
                        r = row(a)
                        if a.get(n.TOKEN_TYPE) == "input":
                            r.input_tokens += int(p.sum)
                            tenant(a).input_tokens += int(p.sum)
                        elif a.get(n.TOKEN_TYPE) == "output":
                            r.output_tokens += int(p.sum)
                            tenant(a).output_tokens += int(p.sum)
                    elif metric.name == n.TOKEN_DETAIL and a.get(n.TOKEN_TYPE) == "cache_read":
                        row(a).cached_tokens += int(p.value)
                    elif metric.name == n.COST:
                        row(a).cost_usd += float(p.sum)
                        tenant(a).cost_usd += float(p.sum)
                    elif metric.name == n.TOKEN_COST:
                        r = row(a)
                        kind = str(a.get(n.TOKEN_TYPE, "?"))
                        r.cost_by_type[kind] = r.cost_by_type.get(kind, 0.0) + float(p.value)
                    elif metric.name == n.LIST_COST:
                        r = row(a)
                        r.list_cost_usd = (r.list_cost_usd or 0.0) + float(p.value)
                    elif metric.name == n.RELAY_BILLED_COST:
                        r = row(a)
                        r.relay_billed_usd = (r.relay_billed_usd or 0.0) + float(p.value)
                    elif metric.name == n.UNPRICED:
                        row(a).unpriced += int(p.value)
                        tenant(a).unpriced += int(p.value)
    for (name, key), (bounds, counts) in hist.items():
        r = rows[key]
        if name == n.DURATION:
            r.p50_s, r.p95_s, r.p99_s = (quantile(q, bounds, counts) for q in (0.5, 0.95, 0.99))
        else:
            r.ttfc_p50_s, r.ttfc_p95_s = (quantile(q, bounds, counts) for q in (0.5, 0.95))
    ordered = sorted(rows.values(), key=lambda r: (-r.cost_usd, -r.requests, r.model))
    return Report(ordered, dict(errors), source=source, tenants=_tenant_rows(tenants))


def _tenant_rows(tenants: dict[str, TenantRow]) -> list[TenantRow]:
    """Most expensive first; none at all when no call carried a tenant (only the "-" row)."""
    if set(tenants) <= {"-"}:
        return []
    return sorted(tenants.values(), key=lambda r: (-r.cost_usd, -r.requests, r.tenant))


def in_flight(metrics_data: Any) -> dict[tuple[str, str], float]:
    """Calls in flight now per (request model, provider), from one reading of an in-process metric reader."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    for rm in getattr(metrics_data, "resource_metrics", ()) if metrics_data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == n.ACTIVE_OPERATIONS:
                    for p in metric.data.data_points:
                        a = p.attributes
                        out[(str(a.get(n.REQUEST_MODEL, "?")), str(a.get(n.PROVIDER, "?")))] += p.value
    return dict(out)


def add_in_flight(report: Report, samples: Sequence[tuple[float, dict[tuple[str, str], float]]]) -> None:
    """Peak calls in flight per row and the per-model series over time, from timed ``in_flight`` readings."""
    if not samples:
        return
    for row in report.rows:
        row.peak_in_flight = max(s.get((row.model, row.provider), 0.0) for _, s in samples)
    models = sorted({model for _, s in samples for model, _ in s})
    report.in_flight_over_time = {
        model: [(t, sum(v for (m, _), v in s.items() if m == model)) for t, s in samples] for model in models
    }


# --- from Prometheus ---------------------------------------------------------------------------


def _query(base: str, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    url = f"{base.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise ReportError(f"Prometheus at {base} answered HTTP {exc.code} to {promql!r}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReportError(f"cannot reach Prometheus at {base}: {reason}. Is it running? (--prometheus URL)") from None
    if body.get("status") != "success":
        raise ReportError(f"Prometheus query failed: {body.get('error', body)}")
    return body["data"]["result"]


def _query_range(base: str, promql: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:.3f}"}
    url = f"{base.rstrip('/')}/api/v1/query_range?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = json.loads(resp.read())
    except (urllib.error.URLError, OSError, TimeoutError):
        return []
    return body.get("data", {}).get("result", []) if body.get("status") == "success" else []


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def window_seconds(window: str) -> float:
    """``"1h"`` -> 3600.0; raises ValueError for anything that is not a Prometheus duration."""
    if not window or window[-1] not in _SECONDS or not window[:-1].isdigit():
        raise ValueError(f"window {window!r}: expected a duration such as 15m, 1h or 1d")
    return float(window[:-1]) * _SECONDS[window[-1]]


def from_prometheus(base: str, window: str = "1h", selector: str = "") -> Report:
    """Query a running Prometheus for the last ``window``; ``selector`` is extra label matchers."""
    window_seconds(window)
    sel = "{" + selector + "}" if selector else ""
    by = f"{n.PROM_LABELS[n.REQUEST_MODEL]}, {n.PROM_LABELS[n.PROVIDER]}"
    m, p = n.PROM_LABELS[n.REQUEST_MODEL], n.PROM_LABELS[n.PROVIDER]
    err_label = n.PROM_LABELS[n.ERROR_TYPE]
    err_sel = "{" + ",".join(x for x in (selector, f'{err_label}!=""') if x) + "}"

    def vec(promql: str) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for item in _query(base, promql):
            labels = item["metric"]
            try:
                value = float(item["value"][1])
            except (KeyError, IndexError, ValueError):
                continue
            if math.isnan(value):
                continue
            out[(labels.get(m, "?"), labels.get(p, "?"))] = value
        return out

    requests = vec(f"sum by ({by}) (increase({n.PROM_DURATION}_count{sel}[{window}]))")
    if not requests:
        raise ReportError(
            f"Prometheus at {base} holds no otel-llm series for the last {window} yet "
            f"(no {n.PROM_DURATION}_count): is the instrumented app running and scraped?"
        )
    errors = vec(f"sum by ({by}) (increase({n.PROM_DURATION}_count{err_sel}[{window}]))")
    lat = {
        q: vec(f"histogram_quantile({q}, sum by (le, {by}) (rate({n.PROM_DURATION}_bucket{sel}[{window}])))")
        for q in (0.5, 0.95, 0.99)
    }
    ttfc = {
        q: vec(f"histogram_quantile({q}, sum by (le, {by}) (rate({n.PROM_TTFC}_bucket{sel}[{window}])))")
        for q in (0.5, 0.95)
    }
    tok_label = n.PROM_LABELS[n.TOKEN_TYPE]
    tokens: dict[str, dict[tuple[str, str], float]] = {}
    for kind in ("input", "output"):
        tsel = "{" + ",".join(x for x in (selector, f'{tok_label}="{kind}"') if x) + "}"
        tokens[kind] = vec(f"sum by ({by}) (increase({n.PROM_TOKEN_USAGE}_sum{tsel}[{window}]))")
    csel = "{" + ",".join(x for x in (selector, f'{tok_label}="cache_read"') if x) + "}"
    cached = vec(f"sum by ({by}) (increase({n.PROM_TOKEN_DETAIL}{csel}[{window}]))")
    cost = vec(f"sum by ({by}) (increase({n.PROM_COST}_sum{sel}[{window}]))")
    unpriced = vec(f"sum by ({by}) (increase({n.PROM_UNPRICED}{sel}[{window}]))")
    tok_cost = f"increase({n.PROM_TOKEN_COST}{sel}[{window}])"
    by_type: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for item in _query(base, f"sum by ({by}, {tok_label}) ({tok_cost})"):
        value = float(item["value"][1])
        if not math.isnan(value):
            labels = item["metric"]
            by_type[(labels.get(m, "?"), labels.get(p, "?"))][labels.get(tok_label, "?")] = value
    listed = vec(f"sum by ({by}) (increase({n.PROM_LIST_COST}{sel}[{window}]))")
    billed = vec(f"sum by ({by}) (increase({n.PROM_RELAY_BILLED_COST}{sel}[{window}]))")
    peak = vec(f"max_over_time(sum by ({by}) ({n.PROM_ACTIVE_OPERATIONS}{sel})[{window}:])")

    def num(d: dict[tuple[str, str], float], key: tuple[str, str]) -> float | None:
        v = d.get(key)
        return None if v is None or math.isnan(v) or math.isinf(v) else v

    rows = []
    for key, count in requests.items():
        rows.append(
            ModelRow(
                model=key[0],
                provider=key[1],
                requests=round(count),
                errors=round(errors.get(key, 0.0)),
                p50_s=num(lat[0.5], key),
                p95_s=num(lat[0.95], key),
                p99_s=num(lat[0.99], key),
                ttfc_p50_s=num(ttfc[0.5], key),
                ttfc_p95_s=num(ttfc[0.95], key),
                input_tokens=round(tokens["input"].get(key, 0.0)),
                output_tokens=round(tokens["output"].get(key, 0.0)),
                cached_tokens=round(cached.get(key, 0.0)),
                cost_usd=cost.get(key, 0.0),
                unpriced=round(unpriced.get(key, 0.0)),
                cost_by_type=_scaled(by_type.get(key, {}), cost.get(key, 0.0)),
                list_cost_usd=num(listed, key),
                relay_billed_usd=num(billed, key) if key in listed else None,
                peak_in_flight=num(peak, key),
            )
        )
    rows.sort(key=lambda r: (-r.cost_usd, -r.requests, r.model))
    errors_by: dict[str, int] = {}
    for item in _query(base, f"sum by ({err_label}) (increase({n.PROM_DURATION}_count{err_sel}[{window}]))"):
        count = round(float(item["value"][1]))
        if count:
            errors_by[item["metric"].get(err_label, "?")] = count
    end = time.time()
    span = window_seconds(window)
    step = max(15.0, span / 60)
    series: dict[str, list[tuple[float, float]]] = {}
    for item in _query_range(
        base, f"sum by ({m}) (increase({n.PROM_COST}_sum{sel}[{int(step)}s]))", end - span, end, step
    ):
        points = [(float(t), float(v)) for t, v in item.get("values", []) if v not in ("NaN", "+Inf", "-Inf")]
        series[item["metric"].get(m, "?")] = points
    in_flight: dict[str, list[tuple[float, float]]] = {}
    for item in _query_range(base, f"sum by ({m}) ({n.PROM_ACTIVE_OPERATIONS}{sel})", end - span, end, step):
        points = [(float(t), float(v)) for t, v in item.get("values", []) if v not in ("NaN", "+Inf", "-Inf")]
        in_flight[item["metric"].get(m, "?")] = points
    tenants = _prometheus_tenants(base, sel, err_sel, selector, window)
    return Report(rows, errors_by, series, in_flight, source=base, window=window, tenants=tenants)


def _prometheus_tenants(base: str, sel: str, err_sel: str, selector: str, window: str) -> list[TenantRow]:
    """The per-tenant rows from the ``otel_llm_scope_tenant`` label (a series without it: tenant "-")."""
    label = n.PROM_LABELS[n.SCOPE_TENANT]
    tok_label = n.PROM_LABELS[n.TOKEN_TYPE]

    def vec(promql: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in _query(base, promql):
            try:
                value = float(item["value"][1])
            except (KeyError, IndexError, ValueError):
                continue
            if not math.isnan(value):
                out[item["metric"].get(label) or "-"] = value
        return out

    requests = vec(f"sum by ({label}) (increase({n.PROM_DURATION}_count{sel}[{window}]))")
    errs = vec(f"sum by ({label}) (increase({n.PROM_DURATION}_count{err_sel}[{window}]))")
    tokens = {}
    for kind in ("input", "output"):
        tsel = "{" + ",".join(x for x in (selector, f'{tok_label}="{kind}"') if x) + "}"
        tokens[kind] = vec(f"sum by ({label}) (increase({n.PROM_TOKEN_USAGE}_sum{tsel}[{window}]))")
    cost = vec(f"sum by ({label}) (increase({n.PROM_COST}_sum{sel}[{window}]))")
    unpriced = vec(f"sum by ({label}) (increase({n.PROM_UNPRICED}{sel}[{window}]))")
    rows = {
        name: TenantRow(
            name,
            requests=round(count),
            errors=round(errs.get(name, 0.0)),
            input_tokens=round(tokens["input"].get(name, 0.0)),
            output_tokens=round(tokens["output"].get(name, 0.0)),
            unpriced=round(unpriced.get(name, 0.0)),
            cost_usd=cost.get(name, 0.0),
        )
        for name, count in requests.items()
    }
    return _tenant_rows(rows)


def _scaled(parts: dict[str, float], total: float) -> dict[str, float]:
    """Cost parts scaled to add up to the cost total: increase() extrapolates each series on its own, so over
    a window the counters of the parts and the histogram sum of the total differ in the fifth digit."""
    whole = sum(parts.values())
    if whole <= 0 or total <= 0:
        return dict(parts)
    return {kind: value * total / whole for kind, value in parts.items()}


# --- HTML ---------------------------------------------------------------------------------------

_COST_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning", "request")
_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")


def _bars(title: str, labels: Sequence[str], groups: Sequence[tuple[str, Sequence[float | None]]], unit: str) -> str:
    """Grouped horizontal bars as inline SVG."""
    values = [v for _, vs in groups for v in vs if v is not None]
    top = max(values) if values else 1.0
    top = top or 1.0
    bar_h, gap, left, width = 14, 10, 190, 420
    height = len(labels) * (len(groups) * bar_h + gap) + 40
    out = [f'<svg role="img" aria-label="{html.escape(title)}" width="{left + width + 90}" height="{height}">']
    y = 30
    for i, label in enumerate(labels):
        out.append(f'<text x="{left - 8}" y="{y + bar_h}" text-anchor="end" class="l">{html.escape(label)}</text>')
        for j, (_, vs) in enumerate(groups):
            v = vs[i]
            w = 0 if v is None else max(1.0, width * v / top)
            color = _PALETTE[j % len(_PALETTE)]
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}"/>')
            text = "n/a" if v is None else f"{v:.3g} {unit}"
            out.append(f'<text x="{left + w + 4:.1f}" y="{y + bar_h - 3}" class="v">{text}</text>')
            y += bar_h
        y += gap
    legend = " ".join(
        f'<tspan fill="{_PALETTE[j % len(_PALETTE)]}">&#9632;</tspan> {html.escape(name)} '
        for j, (name, _) in enumerate(groups)
    )
    out.append(f'<text x="{left}" y="16" class="v">{legend}</text></svg>')
    return "\n".join(out)


def _lines(
    series: dict[str, list[tuple[float, float]]],
    title: str = "Spend over time",
    cumulative: bool = True,
    unit: str = "$",
    empty: str = "No spend series in this window.",
) -> str:
    """Per-model series (cumulated, for spend) as inline SVG polylines."""
    points = [(t, v) for pts in series.values() for t, v in pts]
    if not points:
        return f"<p>{html.escape(empty)}</p>"
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    totals = {model: _cumulative(pts) if cumulative else sorted(pts) for model, pts in series.items()}
    vmax = max((v for pts in totals.values() for _, v in pts), default=1.0) or 1.0
    w, h, left, bottom = 600, 220, 60, 30
    label = html.escape(title)
    out = [f'<svg role="img" aria-label="{label}" width="{w + left + 160}" height="{h + bottom + 10}">']
    out.append(f'<line x1="{left}" y1="{h}" x2="{left + w}" y2="{h}" stroke="#999"/>')
    out.append(f'<text x="{left - 6}" y="12" text-anchor="end" class="v">{unit}{vmax:.4g}</text>')
    out.append(f'<text x="{left - 6}" y="{h}" text-anchor="end" class="v">{unit}0</text>')
    span = (t1 - t0) or 1.0
    for j, (model, pts) in enumerate(sorted(totals.items())):
        color = _PALETTE[j % len(_PALETTE)]
        coords = " ".join(f"{left + w * (t - t0) / span:.1f},{h - (h - 10) * v / vmax:.1f}" for t, v in pts)
        out.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>')
        out.append(
            f'<text x="{left + w + 8}" y="{20 + 16 * j}" class="v">'
            f'<tspan fill="{color}">&#9632;</tspan> {html.escape(model)}</text>'
        )
    out.append(f'<text x="{left}" y="{h + 20}" class="v">{time.strftime("%H:%M:%S", time.localtime(t0))}</text>')
    out.append(
        f'<text x="{left + w}" y="{h + 20}" text-anchor="end" class="v">'
        f"{time.strftime('%H:%M:%S', time.localtime(t1))}</text></svg>"
    )
    return "\n".join(out)


def _cumulative(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    total = 0.0
    out = []
    for t, v in sorted(points):
        total += v
        out.append((t, total))
    return out


def _fmt_usd(v: float, row: ModelRow) -> str:
    """A cost part: 4 decimals like the cost column, tiny non-zero parts in exponent form rather than $0.0000."""
    if not row.cost_by_type:
        return "-"
    return f"${v:.4f}" if v == 0 or abs(v) >= 0.0001 else f"${v:.1e}"


def _fmt_s(v: float | None) -> str:
    return "-" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def render_html(report: Report, title: str = "otel-llm report") -> str:
    """One self-contained page (inline CSS and SVG, no scripts, nothing fetched)."""
    models = [r.model for r in report.rows]
    rows_html = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in report.cells(r)) + "</tr>" for r in report.rows
    )
    latency = _bars(
        "Latency per model",
        models,
        [
            ("p50", [r.p50_s for r in report.rows]),
            ("p95", [r.p95_s for r in report.rows]),
            ("p99", [r.p99_s for r in report.rows]),
        ],
        "s",
    )
    ttfc = _bars(
        "Time to first chunk per model",
        models,
        [("p50", [r.ttfc_p50_s for r in report.rows]), ("p95", [r.ttfc_p95_s for r in report.rows])],
        "s",
    )
    share = _bars("Share of spend", models, [("share of spend", [report.share(r) for r in report.rows])], "%")
    kinds = [k for k in _COST_KINDS if any(r.cost_by_type.get(k) for r in report.rows)]
    split_rows = [r for r in report.rows if r.cost_by_type]
    split = (
        _bars(
            "Cost by token type",
            [r.model for r in split_rows],
            [(k, [r.cost_by_type.get(k, 0.0) for r in split_rows]) for k in kinds],
            "USD",
        )
        if split_rows
        else "<p>No priced calls in this window.</p>"
    )
    relayed = [r for r in report.rows if r.list_cost_usd is not None]
    saved = (
        _bars(
            "List price against billed",
            [r.model for r in relayed],
            [
                ("list price", [r.list_cost_usd for r in relayed]),
                ("billed", [r.relay_billed_usd for r in relayed]),
                ("saved", [r.savings_usd for r in relayed]),
            ],
            "USD",
        )
        if relayed
        else "<p>No call billed by a relay or at a multiplied price in this window: nothing saved or lost.</p>"
    )
    in_flight = _lines(
        report.in_flight_over_time,
        "Calls in flight over time",
        cumulative=False,
        unit="",
        empty="No calls-in-flight samples in this window.",
    )
    total_saved = report.total_savings
    saved_text = "" if total_saved is None else f" · relay savings <b>${total_saved:.4f}</b>"
    err_types = sorted(report.errors_by_type.items(), key=lambda kv: -kv[1])
    errors = (
        _bars("Errors by type", [k for k, _ in err_types], [("errors", [float(v) for _, v in err_types])], "")
        if err_types
        else "<p>No errors in this window.</p>"
    )
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.generated_at))
    tenants_html = (
        "<h2>Spend by tenant</h2><table><thead><tr>"
        + "".join(f"<th>{html.escape(c)}</th>" for c in TENANT_COLUMNS)
        + "</tr></thead><tbody>"
        + "\n".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in report.tenant_cells(r)) + "</tr>"
            for r in report.tenants
        )
        + "</tbody></table>"
        if report.tenants
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1500px}}
table{{border-collapse:collapse;font-size:13px}}th,td{{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}}
td{{white-space:nowrap}}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){{text-align:left}}
h2{{margin-top:1.6em}}.l{{font-size:13px}}.v{{font-size:12px;fill:#444}}
.grid{{display:flex;flex-wrap:wrap;gap:2em}}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Source: {html.escape(report.source)}{" · window " + html.escape(report.window) if report.window else ""}
 · generated {when} · total spend <b>${report.total_cost:.4f}</b>{saved_text}
 · {sum(r.requests for r in report.rows)} requests</p>
<table><thead><tr>{"".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)}</tr></thead>
<tbody>{rows_html}</tbody></table>
{tenants_html}
<div class="grid"><section><h2>Latency</h2>{latency}</section>
<section><h2>Time to first chunk</h2>{ttfc}</section></div>
<div class="grid"><section><h2>Spend share</h2>{share}</section>
<section><h2>Errors by type</h2>{errors}</section></div>
<div class="grid"><section><h2>Cost by token type</h2>{split}</section>
<section><h2>Relay savings (list price vs billed)</h2>{saved}</section></div>
<h2>Spend over time (cumulative)</h2>{_lines(report.spend_over_time)}
<h2>Calls in flight over time</h2>{in_flight}
</body></html>
"""
