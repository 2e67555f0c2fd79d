"""collector/generate.py's token_metrics forms and attribution scopes, generated into a temporary directory:
the counters form's rules pass promtool, and every dashboard and alert query of each form returns data from
series fed to Prometheus' own rule engine (promtool test rules) as the exporter names them, with calls
inside scopes (tenant, feature labels) and without (no such labels at all).

promtool (Debian package `prometheus`) and grafana-foundation-sdk (collector/requirements.txt) are needed;
without them these tests skip, except under CI=... where they fail.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llm import _names as n
from tests.test_collector import KNOWN_SERIES, series_names

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"
CONFIG = yaml.safe_load((COLLECTOR / "config.yaml").read_text())
L = n.PROM_LABELS
TOKEN_COUNTERS = (
    n.PROM_INFERENCE_USAGE_INPUT,
    n.PROM_INFERENCE_USAGE_OUTPUT,
    n.PROM_INFERENCE_USAGE_CACHE_READ,
    n.PROM_INFERENCE_USAGE_CACHE_WRITE,
    n.PROM_INFERENCE_USAGE_REASONING,
)
SCOPES = (("acme", "search"), ("globex", "chat"), ("initech", "search"))


def required_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; CI must install it (apt-get install prometheus)")
    pytest.skip(f"{name} is not installed")


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, check=False)


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{proc.stdout}\n{proc.stderr}"


def generate(tmp: Path, **changes: Any) -> Path:
    """collector/generate.py run on config.yaml with `changes`, into tmp/out (laid out as collector/)."""
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        if os.environ.get("CI"):
            pytest.fail("grafana-foundation-sdk is not installed (pip install -r collector/requirements.txt)")
        pytest.skip("grafana-foundation-sdk is not installed")
    cfg = yaml.safe_load((COLLECTOR / "config.yaml").read_text())
    cfg.update(changes)
    tmp.mkdir(parents=True, exist_ok=True)
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp / "out"
    assert_ok(run(sys.executable, "collector/generate.py", "--config", str(config), "--out", str(out)))
    return out


def dashboard_exprs(out: Path) -> list[str]:
    board = json.loads(next((out / "grafana" / "dashboards").glob("*.json")).read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


# --- series as the Prometheus exporter names them --------------------------------------------------


def fed_series(form: str, scoped: bool) -> list[dict[str, str]]:
    """An hour of per-minute samples of every series otel-llm exports, for calls of two budgeted models;
    with `scoped`, also for calls in three tenants' scopes. Token series of `form` only."""
    out: list[dict[str, str]] = []

    def add(series: str, values: str, **labels: str) -> None:
        text = ", ".join(f'{k}="{v}"' for k, v in labels.items())
        out.append({"series": f"{series}{{{text}}}", "values": values})

    scopes: list[dict[str, str]] = [{}]
    if scoped:
        scopes += [{L[n.SCOPE_TENANT]: t, L[n.SCOPE_FEATURE]: f} for t, f in SCOPES]
    for scope in scopes:
        for provider, model in (("openai", "gpt-4.1"), ("anthropic", "claude-sonnet-4.5")):
            start = {"otel_scope_name": "otel_llm", "job": "app", L[n.OPERATION]: "chat", L[n.PROVIDER]: provider}
            start[L[n.REQUEST_MODEL]] = model
            call = {**start, L[n.RESPONSE_MODEL]: model, **scope}
            for error in ("", "429", "500"):
                labels = {**call, L[n.ERROR_TYPE]: error} if error else call
                for le in ("1.28", "+Inf"):
                    add(f"{n.PROM_DURATION}_bucket", "0+10x60", le=le, **labels)
                add(f"{n.PROM_DURATION}_count", "0+10x60", **labels)
                add(f"{n.PROM_DURATION}_sum", "0+5x60", **labels)
            for le in ("0.32", "+Inf"):
                add(f"{n.PROM_TTFC}_bucket", "0+5x60", le=le, **call)
            add(f"{n.PROM_TPOC}_count", "0+50x60", **call)
            if form == "histogram":
                for kind in ("input", "output"):
                    add(f"{n.PROM_TOKEN_USAGE}_sum", "0+1000x60", **call, **{L[n.TOKEN_TYPE]: kind})
                    add(f"{n.PROM_TOKEN_USAGE}_count", "0+10x60", **call, **{L[n.TOKEN_TYPE]: kind})
            else:
                for series in TOKEN_COUNTERS:
                    add(series, "0+1000x60", **call, **{L[n.TOKEN_MODALITY]: "text"})
            add(n.PROM_TOKEN_DETAIL, "0+100x60", **call, **{L[n.TOKEN_TYPE]: "cache_read"})
            add(f"{n.PROM_COST}_sum", "0+0.5x60", **call)
            add(f"{n.PROM_COST}_count", "0+10x60", **call)
            for kind in ("input", "output"):
                add(n.PROM_TOKEN_COST, "0+0.25x60", **call, **{L[n.TOKEN_TYPE]: kind})
            add(n.PROM_LIST_COST, "0+0.2x60", **call)
            add(n.PROM_RELAY_BILLED_COST, "0+0.1x60", **call)
            add(n.PROM_UNPRICED, "0+1x60", **call, **{L[n.UNPRICED_REASON]: "unknown_model"})
            add(n.PROM_ACTIVE_OPERATIONS, "2x60", **start, **scope)
            for series, value in ((n.PROM_RATE_LIMIT_REMAINING, "500x60"), (n.PROM_RATE_LIMIT_LIMIT, "1000x60")):
                add(series, value, **start, **scope, **{L[n.RATE_LIMIT_RESOURCE]: "requests"})
    return out


def returns_data_tests(out: Path, form: str, scoped: bool) -> tuple[Path, int]:
    """A promtool unit test file: every queries.json expression, over the fed series, returns data."""
    queries = json.loads((out / "queries.json").read_text())
    checks = []
    for q in queries["queries"]:
        if "tenant_budget" in q["needs"] and not scoped:
            continue
        checks.append(
            {
                "expr": f"count((\n{q['expr']}\n)) > bool 0",
                "eval_time": "30m",
                "exp_samples": [{"labels": "{}", "value": 1}],
            }
        )
    doc = {
        "rule_files": ["rules/otel-llm-alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": fed_series(form, scoped), "promql_expr_test": checks}],
    }
    path = out / "prometheus" / f"returns-data-{form}-{'scoped' if scoped else 'unscoped'}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return path, len(checks)


# --- tests -----------------------------------------------------------------------------------------


def test_counters_form_reads_the_conventions_counters_and_its_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = required_tool("promtool")
    out = generate(tmp_path, token_metrics="counters")
    exprs = "\n".join(dashboard_exprs(out))
    for series in TOKEN_COUNTERS:
        assert series in exprs, series
    assert n.PROM_TOKEN_USAGE not in exprs and L[n.TOKEN_MODALITY] in exprs
    assert not series_names(exprs) - KNOWN_SERIES
    assert json.loads((out / "queries.json").read_text())["token_metrics"] == "counters"
    rules = out / "prometheus" / "rules" / "otel-llm-alerts.yml"
    assert_ok(run(promtool, "check", "rules", str(rules)))
    # the hand-written cases (they assume config.yaml's thresholds, unchanged here)
    tests = out / "prometheus" / "tests"
    shutil.copy(COLLECTOR / "prometheus" / "tests" / "otel-llm-alerts-test.yaml", tests)
    assert_ok(run(promtool, "test", "rules", str(tests / "otel-llm-alerts-test.yaml")))
    # no alert reads token series: the rules and their flapping cases are the committed ones, byte for byte
    # (test_collector.py runs those flapping cases through promtool; a minute of CPU, not repeated here)
    for rel in ("rules/otel-llm-alerts.yml", "tests/otel-llm-flapping-test.yaml"):
        assert (out / "prometheus" / rel).read_text() == (COLLECTOR / "prometheus" / rel).read_text(), rel


def test_both_form_generates_what_counters_does_and_a_bad_form_is_refused(tmp_path: Path) -> None:
    counters = generate(tmp_path / "counters", token_metrics="counters")
    both = generate(tmp_path / "both", token_metrics="both")
    files = sorted(p.relative_to(counters) for p in counters.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(both) for p in both.rglob("*") if p.is_file())
    for rel in files:
        assert (counters / rel).read_text() == (both / rel).read_text(), rel
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "token_metrics": "sums"}))
    proc = run(sys.executable, "collector/generate.py", "--config", str(config), "--out", str(tmp_path / "bad"))
    assert proc.returncode != 0 and "token_metrics: 'sums'" in proc.stderr
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("scoped", [True, False], ids=["scoped", "unscoped"])
@pytest.mark.parametrize("form", ["histogram", "counters"])
def test_every_query_of_each_token_form_returns_data_from_the_exported_series(
    tmp_path: Path, form: str, scoped: bool
) -> None:
    """Unscoped: no series has a tenant or feature label, and every query (all filter on tenant=~".*",
    feature=~".*") still finds its data; only the tenant budgets need calls in scopes."""
    promtool = required_tool("promtool")
    out = generate(tmp_path, token_metrics=form)
    path, count = returns_data_tests(out, form, scoped)
    assert count > 40
    assert_ok(run(promtool, "test", "rules", str(path)))


def test_default_tenant_budget_excludes_named_tenants_literally(tmp_path: Path) -> None:
    """Tenant names with regex characters: the default budget skips exactly the named tenant, not look-alikes."""
    promtool = required_tool("promtool")
    alerts = {**CONFIG["alerts"]}
    alerts["tenant_daily_spend"] = {
        **alerts["tenant_daily_spend"],
        "budgets": {"a.b|c": 50},
        "default_usd": 10,
        "for": "0m",
    }
    out = generate(tmp_path, alerts=alerts)

    def cost(tenant: str) -> str:
        return f'{n.PROM_COST}_sum{{otel_scope_name="otel_llm", job="app", {L[n.SCOPE_TENANT]}="{tenant}"}}'

    doc = {
        "rule_files": ["rules/otel-llm-alerts.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                # 20 USD each in the hour: over the default 10, under a.b|c's own 50
                "input_series": [{"series": cost(t), "values": "0+1x20 20x40"} for t in ("a.b|c", "aXb|c", "c")],
                "alert_rule_test": [
                    {
                        "eval_time": "30m",
                        "alertname": "LLMTenantDailySpendOverBudget",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "warning", "tenant_budget": "*", L[n.SCOPE_TENANT]: t},
                                "exp_annotations": {
                                    "summary": f"LLM spend of tenant {t} above 10 USD per 1d",
                                    "description": f"Calls of tenant {t} cost 20.00 USD in the last 1d (budget 10 USD, "
                                    "the default for tenants without a budget of their own).",
                                },
                            }
                            for t in ("aXb|c", "c")
                        ],
                    }
                ],
            }
        ],
    }
    path = out / "prometheus" / "tenant-names.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    assert_ok(run(promtool, "test", "rules", str(path)))
