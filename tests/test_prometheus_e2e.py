"""The metrics pipeline on a real Prometheus: every dashboard query and alert expression returns data,
and the alerts fire in Prometheus' own rule evaluation.

An instrumented workload (configured only by OTEL_* env vars, Prometheus exporter) runs in a subprocess
against the local provider; a real ``prometheus`` (Debian package) scrapes it every second on loopback
and evaluates the generated alert rules, regenerated here with tiny thresholds and no ``for:`` wait.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llm.fakeprovider import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
QUIET_S = 12
# The workload makes some calls inside attribution scopes where otel_llm has them (issue #28); the rest of the
# traffic, and all of it before, is outside any scope.


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("otel_llm_collector_generate", ROOT / "collector" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _test_rules(tmp: Path) -> Path:
    """The shipped rules, regenerated with thresholds every workload crosses and no `for:` wait."""
    gen = _generator()
    cfg = yaml.safe_load((ROOT / "collector" / "config.yaml").read_text())
    a = cfg["alerts"]
    a["interval"] = "1s"
    a["latency_p95"]["threshold_seconds"] = 0.0001
    a["ttfc_p95"]["threshold_seconds"] = 0.0001
    a["error_ratio"]["threshold"] = 0.01
    a["rate_limited"]["threshold_per_second"] = 0.0001
    a["rate_limit_headroom"]["threshold_ratio"] = 0.999
    a["hourly_spend"]["budget_usd"] = 1e-9
    a["daily_spend_projection"]["budget_usd"] = 1e-9
    for budget in a["model_daily_spend"]["budgets"]:
        budget["budget_usd"] = 1e-9
    tenants = a["tenant_daily_spend"]
    tenants["budgets"] = {tenant: 1e-9 for tenant in tenants["budgets"]}
    tenants["default_usd"] = 1e-9
    a["traffic_stopped"]["lookback"] = "10m"
    a["traffic_stopped"]["quiet"] = f"{QUIET_S}s"
    for rule in a.values():
        if isinstance(rule, dict) and "for" in rule:
            rule["for"] = "0s"
    outputs = gen.render(cfg)
    text = next(t for p, t in outputs.items() if str(p).endswith(".yml"))
    path = tmp / "rules.yml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        if os.environ.get("CI"):
            pytest.fail("the prometheus binary is required in CI (scripts/test.sh installs it)")
        pytest.skip("prometheus not installed")
    tmp = tmp_path_factory.mktemp("prom")
    metrics_port, prom_port = _free_port(), _free_port()
    rules = _test_rules(tmp)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "scrape_configs": [{"job_name": "e2e-app", "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    check = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "config", str(tmp / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    with FakeProvider() as provider:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            PROVIDER_URL=provider.url,
            OTEL_SERVICE_NAME="e2e-app",
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="prometheus",
            OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
            OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
        )
        app = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "apps" / "prom_workload.py"), "240"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        prom = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{prom_port}"
        try:
            assert app.stdout is not None and app.stdin is not None
            line = app.stdout.readline()
            assert line.strip() == "ready", (line, app.stderr.read() if app.poll() is not None else "")
            _wait(lambda: urllib.request.urlopen(base + "/-/ready", timeout=2).status == 200, 60, "prometheus ready")
            _wait(lambda: _query(base, 'up{job="e2e-app"} == 1'), 60, "the first scrape of the app")
            app.stdin.write("go\n")
            app.stdin.flush()
            line = app.stdout.readline()
            assert line.strip() == "done", (line, app.stderr.read() if app.poll() is not None else "")
            yield {"base": base, "app": app, "workload_done": time.time()}
        finally:
            for proc in (app, prom):
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    body = _get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def _queries() -> list[dict[str, Any]]:
    return json.loads((ROOT / "collector" / "queries.json").read_text())["queries"]  # type: ignore[no-any-return]


def test_every_dashboard_query_and_alert_expression_returns_data(stack: dict[str, Any]) -> None:
    base = stack["base"]
    # a few scrapes after the workload so that increase() and rate() have two samples everywhere
    _wait(lambda: len(_query(base, "gen_ai_client_operation_duration_seconds_count")) > 0, 60, "first scrape")
    time.sleep(4)
    empty = []
    for q in _queries():
        expr = q["expr"]
        if q["source"] == "alert_rule" and q["alert"] == "LLMTrafficStopped":
            continue  # its signal is "no traffic lately": checked by the alert test below
        if not _query(base, expr):
            empty.append(f"{q['id']}: {expr}")
    assert empty == [], "queries without data:\n" + "\n".join(empty)


def test_the_exporter_produces_the_series_names_the_dashboards_use(stack: dict[str, Any]) -> None:
    from otel_llm import _names as n

    base = stack["base"]
    for series in n.PROM_SERIES:
        assert _query(base, series), series
    labels = _query(base, f'{n.PROM_DURATION}_count{{gen_ai_request_model="gpt-4.1", error_type="429"}}')
    assert labels and labels[0]["metric"]["gen_ai_provider_name"] == "openai"


def test_the_alerts_fire_in_prometheus_rule_evaluation(stack: dict[str, Any]) -> None:
    base = stack["base"]
    expected = {
        "LLMLatencyP95High",
        "LLMTimeToFirstChunkHigh",
        "LLMErrorRateHigh",
        "LLMRateLimited429High",
        "LLMRateLimitHeadroomLow",
        "LLMHourlySpendOverBudget",
        "LLMDailySpendProjectionOverBudget",
        "LLMModelDailySpendOverBudget",
        "LLMUnpricedCalls",
        "LLMTrafficStopped",
    } | {"LLMTenantDailySpendOverBudget"}
    firing: set[str] = set()

    def all_firing() -> bool:
        alerts = _get(base + "/api/v1/alerts")["data"]["alerts"]
        firing.update(a["labels"]["alertname"] for a in alerts if a["state"] == "firing")
        return expected <= firing

    # LLMTrafficStopped needs QUIET_S seconds without calls after the workload ended
    try:
        _wait(all_firing, QUIET_S + 60, "alerts firing")
    except AssertionError:
        groups = _get(base + "/api/v1/rules")["data"]["groups"]
        health = [(r["name"], r.get("health"), r.get("lastError"), r.get("state")) for g in groups for r in g["rules"]]
        raise AssertionError(f"firing {sorted(firing)}, expected {sorted(expected)}; rules: {health}") from None
    alerts = _get(base + "/api/v1/alerts")["data"]["alerts"]
    cost = [a for a in alerts if a["labels"]["alertname"] == "LLMHourlySpendOverBudget"]
    assert cost and cost[0]["labels"]["severity"] and cost[0]["annotations"]["summary"]
    name = "LLMModelDailySpendOverBudget"
    budgets = {a["labels"]["model_pattern"] for a in alerts if a["labels"]["alertname"] == name}
    assert budgets == {"claude-*", "gpt-4.1*"}  # one alert per model pattern whose models spent over budget
    tenant_alerts = [a["labels"] for a in alerts if a["labels"]["alertname"] == "LLMTenantDailySpendOverBudget"]
    by_tenant = {x["otel_llm_scope_tenant"]: x["tenant_budget"] for x in tenant_alerts}
    # each scoped tenant against its own budget (acme, globex) or the default one (initech); unscoped calls none
    assert by_tenant == {"acme": "acme", "globex": "globex", "initech": "*"}
    groups = _get(base + "/api/v1/rules")["data"]["groups"]
    assert all(r.get("keepFiringFor") for g in groups for r in g["rules"] if r["type"] == "alerting")


def test_calls_in_flight_peak_at_the_concurrency_the_workload_drove_and_return_to_zero(stack: dict[str, Any]) -> None:
    from otel_llm import _names as n

    base = stack["base"]
    _wait(lambda: _query(base, n.PROM_ACTIVE_OPERATIONS), 60, "calls-in-flight series")
    time.sleep(2)  # a scrape after the workload ended
    peak = _query(base, f"max_over_time(sum({n.PROM_ACTIVE_OPERATIONS})[5m:1s])")
    assert float(peak[0]["value"][1]) == 3  # the three streams held open together
    now = _query(base, f"sum({n.PROM_ACTIVE_OPERATIONS})")
    assert float(now[0]["value"][1]) == 0


def test_cost_parts_add_up_to_the_cost_and_the_relay_call_shows_its_savings(stack: dict[str, Any]) -> None:
    from otel_llm import _names as n

    base = stack["base"]
    _wait(lambda: _query(base, n.PROM_LIST_COST), 60, "list-price series")
    parts = float(_query(base, f"sum({n.PROM_TOKEN_COST})")[0]["value"][1])
    total = float(_query(base, f"sum({n.PROM_COST}_sum)")[0]["value"][1])
    assert parts == pytest.approx(total, rel=1e-9)
    listed = _query(base, f"sum by (gen_ai_request_model) ({n.PROM_LIST_COST})")
    assert {x["metric"]["gen_ai_request_model"] for x in listed} == {"gpt-4.1"}  # only the relay-billed calls
    saved = _query(base, f"sum({n.PROM_LIST_COST}) - sum({n.PROM_RELAY_BILLED_COST})")
    assert float(saved[0]["value"][1]) > 0


def test_the_report_command_reads_the_same_numbers_from_prometheus(stack: dict[str, Any], tmp_path: Path) -> None:
    base = stack["base"]
    _wait(lambda: _query(base, "gen_ai_client_operation_cost_USD_sum"), 60, "cost series")
    page = tmp_path / "report.html"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "otel-llm"),
            "report",
            "--prometheus",
            base,
            "--window",
            "5m",
            "--json",
            "--html",
            str(page),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = {r["model"]: r for r in report["rows"]}
    assert {"gpt-4.1", "gemini-2.5-flash", "deepseek-v3.2", "claude-sonnet-4.5", "acme-unknown-model"} <= set(rows)
    gpt = rows["gpt-4.1"]
    assert gpt["requests"] > 0 and gpt["errors"] > 0 and gpt["cost_usd"] > 0 and gpt["input_tokens"] > 0
    assert gpt["p50_s"] is not None and gpt["ttfc_p50_s"] is not None
    assert rows["acme-unknown-model"]["cost_usd"] == 0 and rows["acme-unknown-model"]["unpriced"] > 0
    assert report["errors_by_type"].get("429", 0) > 0 and report["total_cost_usd"] > 0
    # the split adds up, peak concurrency, savings only where a relay priced calls
    assert sum(gpt["cost_by_type"].values()) == pytest.approx(gpt["cost_usd"], rel=1e-9)
    assert set(gpt["cost_by_type"]) >= {"input", "output"} and gpt["peak_in_flight"] == 3
    assert gpt["list_cost_usd"] > gpt["relay_billed_usd"] > 0 and gpt["savings_usd"] > 0
    assert report["total_savings_usd"] == pytest.approx(gpt["savings_usd"])
    for model in ("gemini-2.5-flash", "deepseek-v3.2", "claude-sonnet-4.5"):
        assert rows[model]["savings_usd"] is None and rows[model]["list_cost_usd"] is None
        assert sum(rows[model]["cost_by_type"].values()) == pytest.approx(rows[model]["cost_usd"], rel=1e-9)
    text = page.read_text()
    assert "<svg" in text and "Cost by token type" in text and "Calls in flight over time" in text
    assert "Relay savings" in text and "polyline" in text


def test_the_report_says_clearly_when_prometheus_holds_no_series(stack: dict[str, Any]) -> None:
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "otel-llm"),
            "report",
            "--prometheus",
            stack["base"],
            "--selector",
            'job="no-such-service"',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "holds no otel-llm series" in proc.stderr


def _panel_query(title_start: str) -> dict[str, Any]:
    return next(q for q in _queries() if q["source"] == "dashboard_panel" and q["panel"].startswith(title_start))


def test_tenant_and_feature_filters_match_calls_made_outside_any_scope(stack: dict[str, Any]) -> None:
    base = stack["base"]
    _wait(lambda: _query(base, "gen_ai_client_operation_cost_USD_sum"), 60, "cost series")
    # the unscoped calls' series carry no tenant label at all ...
    assert _query(base, 'gen_ai_client_operation_cost_USD_sum{otel_llm_scope_tenant=""}')
    # ... yet the dashboard queries, every one filtering on tenant=~".*" and feature=~".*", see their spend,
    # and the top-N panels name it
    for title, label in (("Top 10 tenants", "otel_llm_scope_tenant"), ("Top 10 features", "otel_llm_scope_feature")):
        q = _panel_query(title)
        assert 'otel_llm_scope_tenant=~".*"' in q["expr"] and 'otel_llm_scope_feature=~".*"' in q["expr"]
        rows = {r["metric"].get(label): float(r["value"][1]) for r in _query(base, q["expr"])}
        assert rows["(unscoped)"] > 0, rows


def test_scoped_spend_shows_by_tenant_and_feature_and_against_the_budgets(stack: dict[str, Any]) -> None:
    base = stack["base"]
    _wait(lambda: _query(base, 'gen_ai_client_operation_cost_USD_sum{otel_llm_scope_tenant="acme"}'), 60, "scoped")
    tenants = {r["metric"]["otel_llm_scope_tenant"] for r in _query(base, _panel_query("Top 10 tenants")["expr"])}
    assert tenants == {"acme", "globex", "initech", "(unscoped)"}
    features = {r["metric"]["otel_llm_scope_feature"] for r in _query(base, _panel_query("Top 10 features")["expr"])}
    assert features == {"search", "chat", "(unscoped)"}
    used = _query(base, _panel_query("Tenant daily budgets used")["expr"])
    assert {r["metric"]["otel_llm_scope_tenant"] for r in used} == {"acme", "globex", "initech"}
