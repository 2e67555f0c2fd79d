"""The collector/ deployment files: generated files up to date, Prometheus and Alertmanager configs valid,
promtool unit tests passing, and the Collector, compose, Grafana and dashboard files wired together.

promtool (Debian package `prometheus`) and grafana-foundation-sdk (collector/requirements.txt) are
needed; without them these tests skip, except under CI=... where they fail. amtool (package
`prometheus-alertmanager`) is used when installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llm import _names

ROOT = Path(__file__).resolve().parents[1]
COLLECTOR = ROOT / "collector"
RULES = COLLECTOR / "prometheus" / "rules" / "otel-llm-alerts.yml"
PROMTOOL_TESTS = sorted((COLLECTOR / "prometheus" / "tests").glob("*.yaml"))
DASHBOARDS = sorted((COLLECTOR / "grafana" / "dashboards").glob("*.json"))
COLLECTOR_CONFIGS = [COLLECTOR / "otelcol.yaml", COLLECTOR / "otelcol-gateway.yaml"]
LB_CONFIG = COLLECTOR / "otelcol-lb.yaml"
ALL_CONFIGS = [*COLLECTOR_CONFIGS, LB_CONFIG]
CONFIG = yaml.safe_load((COLLECTOR / "config.yaml").read_text())
QUERIES = json.loads((COLLECTOR / "queries.json").read_text())

ALERTS = {
    "LLMLatencyP95High",
    "LLMTimeToFirstChunkHigh",
    "LLMErrorRateHigh",
    "LLMRateLimited429High",
    "LLMRateLimitHeadroomLow",
    "LLMHourlySpendOverBudget",
    "LLMDailySpendProjectionOverBudget",
    "LLMModelDailySpendOverBudget",
    "LLMTenantDailySpendOverBudget",
    "LLMUnpricedCalls",
    "LLMTrafficStopped",
}
DASHBOARD_VARIABLES = ("service", "provider", "model", "tenant", "feature")
# Static labels that tell apart the rules sharing an alert name (one per budget)
BUDGET_LABELS = ("model_pattern", "tenant_budget")

# Every Prometheus series otel-llm produces (histograms with their suffixes), from otel_llm._names.
_PROM_NAMES = {v for k, v in vars(_names).items() if k.startswith("PROM_") and isinstance(v, str)}
KNOWN_SERIES = _PROM_NAMES | {f"{n}_{s}" for n in _PROM_NAMES for s in ("bucket", "sum", "count")}
BUILTIN_SERIES = {"up", "target_info"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless",
    "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "atan2", "inf", "nan",
}  # fmt: skip


def required_tool(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; CI must install it (apt-get install prometheus)")
    pytest.skip(f"{name} is not installed")


def run(*cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def assert_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{proc.stdout}\n{proc.stderr}"


def series_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, label and grouping lists removed)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", "{}", s)
    s = re.sub(r"\[[^\]]*\]", "[]", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", s)
    s = re.sub(r"\boffset\s+\S+", "", s)
    s = re.sub(r"\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b", "", s)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        if s[m.end() :].lstrip().startswith("(") or m.group() in PROMQL_WORDS:
            continue
        names.add(m.group())
    return names


def match_all(expr: str) -> str:
    """A Grafana query with its variables set as queries.json sets them."""
    for name, value in sorted(QUERIES["substitutions"].items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in expr, expr
    return expr


def dashboard_panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            out.append((path.name, panel))
            out.extend((path.name, p) for p in panel.get("panels", []))
    return out


def dashboard_exprs() -> list[str]:
    return [t["expr"] for _, p in dashboard_panels() for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


# --- generator ---------------------------------------------------------------------------------


def test_generated_files_match_config_yaml() -> None:
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        if os.environ.get("CI"):
            pytest.fail("grafana-foundation-sdk is not installed (pip install -r collector/requirements.txt)")
        pytest.skip("grafana-foundation-sdk is not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [sys.executable, "collector/generate.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert_ok(proc)


# --- Prometheus and Alertmanager -----------------------------------------------------------------


def test_prometheus_config_is_valid_and_loads_the_alert_rules() -> None:
    proc = run(required_tool("promtool"), "check", "config", "collector/prometheus/prometheus.yml")
    assert_ok(proc)
    found = re.search(r"(\d+) rule files found", proc.stdout)
    assert found and int(found.group(1)) >= 1, proc.stdout
    assert str(RULES.relative_to(ROOT)) in proc.stdout


def test_alert_rules_pass_promtool_check() -> None:
    assert_ok(run(required_tool("promtool"), "check", "rules", str(RULES.relative_to(ROOT))))


def test_promtool_unit_tests_pass() -> None:
    assert PROMTOOL_TESTS
    # the flapping cases replay a day and more of per-minute samples for each daily budget: ~40 s of CPU alone
    files = (str(p.relative_to(ROOT)) for p in PROMTOOL_TESTS)
    assert_ok(run(required_tool("promtool"), "test", "rules", *files, timeout=600))


def test_alert_rules_are_the_documented_set_with_for_severity_and_annotations() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} == ALERTS
    for r in rules:
        assert r["for"], r["alert"]
        assert _minutes(r["keep_firing_for"]) > 0, r["alert"]  # hysteresis: no firing/resolved storms
        assert r["labels"]["severity"] in {"critical", "warning", "info"}, r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert not series_names(r["expr"]) - KNOWN_SERIES, r["alert"]


def test_every_alert_has_a_promtool_case_that_fires_after_its_for_window_and_one_that_does_not() -> None:
    fires_after_quiet: set[str] = set()
    never_fires: set[str] = set()
    for path in PROMTOOL_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] and all((path.parent / f).resolve() == RULES for f in doc["rule_files"])
        for group in doc["tests"]:
            assert group.get("name"), f"{path.name}: every test group needs a name"
            by_alert: dict[str, list[dict[str, Any]]] = {}
            for case in group.get("alert_rule_test", []):
                by_alert.setdefault(case["alertname"], []).append(case)
            for alert, cases in by_alert.items():
                firing = [c for c in cases if c.get("exp_alerts")]
                if not firing:
                    never_fires.add(alert)
                    continue
                first = min(c["eval_time"] for c in firing)
                for c in firing:
                    for exp in c["exp_alerts"]:
                        assert set(exp["exp_annotations"]) >= {"summary", "description"}, group["name"]
                        assert "severity" in exp["exp_labels"], group["name"]
                if any(not c.get("exp_alerts") and _minutes(c["eval_time"]) < _minutes(first) for c in cases):
                    fires_after_quiet.add(alert)
    assert fires_after_quiet == ALERTS
    assert never_fires == ALERTS


def test_every_alert_rule_has_a_flapping_series_that_must_not_storm() -> None:
    doc = yaml.safe_load((COLLECTOR / "prometheus" / "tests" / "otel-llm-flapping-test.yaml").read_text())
    covered = []
    for group in doc["tests"]:
        checks = {c["expr"]: c for c in group["promql_expr_test"]}
        storm = [e for e in checks if e.startswith("sum(count_over_time(ALERTS{")]
        assert len(storm) == 1, group["name"]
        selector = re.search(r"ALERTS\{([^}]*)\}", storm[0]).group(1)  # type: ignore[union-attr]
        labels = dict(re.findall(r'(\w+)="([^"]*)"', selector))
        assert labels["alertstate"] == "firing"
        covered.append((labels["alertname"], *(labels.get(k) for k in BUDGET_LABELS)))
        # firing at every evaluation of the stretch, while the condition itself held at some, not all
        span = int(re.search(r"\[(\d+)m\]\)\)$", storm[0]).group(1))  # type: ignore[union-attr]
        assert checks[storm[0]]["exp_samples"] == [{"labels": "{}", "value": span + 1}]
        assert any(e.endswith(f"< bool {span}") for e in checks) and any(e.endswith("> bool 0") for e in checks)
        assert any(e.startswith("count(ALERTS{") and not c["exp_samples"] for e, c in checks.items())
    rules = [(r["alert"], *(r["labels"].get(k) for k in BUDGET_LABELS)) for r in alert_rules()]
    assert sorted(covered) == sorted(rules)


def _minutes(duration: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", duration).groups()  # type: ignore[union-attr]
    return int(value) * {"s": 1 / 60, "m": 1, "h": 60}[unit]


def test_alertmanager_config_is_valid() -> None:
    amtool = shutil.which("amtool")
    if not amtool:
        pytest.skip("amtool is not installed (apt-get install prometheus-alertmanager)")
    assert_ok(run(amtool, "check-config", "collector/alertmanager/alertmanager.yml"))


# --- Collector -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_collector_pipelines_use_exactly_the_defined_components(path: Path) -> None:
    cfg = yaml.safe_load(path.read_text())
    service = cfg["service"]
    used: dict[str, set[str]] = {"receivers": set(), "processors": set(), "exporters": set()}
    assert set(service["pipelines"]) == {"traces", "metrics", "logs"}
    for name, pipeline in service["pipelines"].items():
        for kind in used:
            ids = pipeline.get(kind, [])
            assert kind == "processors" or ids, f"{name} has no {kind}"
            assert set(ids) <= set(cfg.get(kind) or {}), f"{name}: undefined {kind} {set(ids) - set(cfg[kind])}"
            used[kind] |= set(ids)
        assert pipeline["processors"][0] == "memory_limiter", f"{name}: memory_limiter must come first"
        assert pipeline["processors"][-1] == "batch", f"{name}: batch belongs last"
    for kind, ids in used.items():
        assert set(cfg[kind]) == ids, f"defined but unused {kind}: {set(cfg[kind]) - ids}"
    assert set(service["extensions"]) == set(cfg["extensions"]) == {"health_check"}


def compose_defaults(text: str) -> str:
    """A Collector config as the compose network sees it: every ``${env:VAR:-default}`` at its default."""
    return re.sub(r"\$\{env:[A-Z0-9_]+:-([^}]*)\}", r"\1", text)


@pytest.mark.parametrize("path", COLLECTOR_CONFIGS, ids=lambda p: p.name)
def test_collector_listens_on_the_documented_ports_and_exports_matching_names(path: Path) -> None:
    cfg = yaml.safe_load(compose_defaults(path.read_text()))
    protocols = cfg["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == "127.0.0.1:4317"
    assert protocols["http"]["endpoint"] == "127.0.0.1:4318"
    assert cfg["extensions"]["health_check"]["endpoint"] == "127.0.0.1:13133"
    prom = cfg["exporters"]["prometheus"]
    assert prom["endpoint"] == "127.0.0.1:8889"
    assert prom["resource_to_telemetry_conversion"]["enabled"] is False
    assert prom["enable_open_metrics"] is True
    suffixes = prom.get("translation_strategy", "").endswith("WithSuffixes") or prom.get("add_metric_suffixes")
    assert suffixes, "metric suffixes must stay on so names match the in-process exporter"
    jaeger = cfg["exporters"]["otlp_grpc/jaeger"]
    assert jaeger["endpoint"] == "jaeger:4317" and jaeger["tls"]["insecure"] is True
    assert cfg["service"]["pipelines"]["traces"]["exporters"] == ["otlp_grpc/jaeger"]
    assert cfg["service"]["pipelines"]["metrics"]["exporters"] == ["prometheus"]
    assert cfg["service"]["pipelines"]["logs"]["exporters"] == ["otlp_http/victorialogs"]
    logs = cfg["exporters"]["otlp_http/victorialogs"]["logs_endpoint"]
    assert logs == "http://victorialogs:9428/insert/opentelemetry/v1/logs", logs
    assert cfg["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"] == 8888
    # an address that differs between compose and loopback comes from the environment, never hard-coded
    raw = yaml.safe_load(path.read_text())
    for value in (
        raw["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"],
        raw["exporters"]["otlp_grpc/jaeger"]["endpoint"],
        raw["exporters"]["prometheus"]["endpoint"],
    ):
        assert value.startswith("${env:OTELCOL_"), value


def test_gateway_keeps_error_and_slow_traces_and_samples_the_rest() -> None:
    cfg = yaml.safe_load((COLLECTOR / "otelcol-gateway.yaml").read_text())
    assert "tail_sampling" in cfg["service"]["pipelines"]["traces"]["processors"]
    assert "tail_sampling" not in cfg["service"]["pipelines"]["metrics"]["processors"]
    policies = {p["type"]: p for p in cfg["processors"]["tail_sampling"]["policies"]}
    assert set(policies) == {"status_code", "latency", "probabilistic"}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] == 10_000
    assert 0 < policies["probabilistic"]["probabilistic"]["sampling_percentage"] < 100


def listeners(cfg: dict[str, Any]) -> list[str]:
    """Every address a Collector config listens on (receivers, extensions, prometheus exporter, own metrics)."""
    out = [p["endpoint"] for p in cfg["receivers"]["otlp"]["protocols"].values()]
    out += [e["endpoint"] for e in cfg["extensions"].values()]
    out += [e["endpoint"] for name, e in cfg["exporters"].items() if name.split("/")[0] == "prometheus"]
    for reader in cfg["service"]["telemetry"]["metrics"]["readers"]:
        out.append(
            f"{reader['pull']['exporter']['prometheus']['host']}:{reader['pull']['exporter']['prometheus']['port']}"
        )
    return out


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name)
def test_every_listener_of_a_bundled_config_binds_to_loopback_unless_a_variable_says_otherwise(path: Path) -> None:
    cfg = yaml.safe_load(compose_defaults(path.read_text()))
    addresses = listeners(cfg)
    assert len(addresses) >= 4 and all(a.startswith("127.0.0.1:") for a in addresses), addresses
    raw = yaml.safe_load(path.read_text())
    assert all(a.startswith("${env:OTELCOL_") for a in listeners(raw)[:-1]), "each one overridable"


def test_compose_publishes_every_port_on_loopback_unless_opted_in() -> None:
    published = [(name, p) for name, s in compose()["services"].items() for p in s.get("ports", [])]
    assert len(published) >= 9
    for name, port in published:
        assert port.startswith("${OTEL_LLM_PUBLISH_IP:-127.0.0.1}:"), (name, port)


def test_lb_tier_routes_traces_and_events_by_trace_id_and_metrics_by_resource_to_the_backends_variable() -> None:
    cfg = yaml.safe_load(LB_CONFIG.read_text())
    pipelines = cfg["service"]["pipelines"]
    assert set(pipelines) == {"traces", "metrics", "logs"}
    assert pipelines["traces"]["exporters"] == pipelines["logs"]["exporters"] == ["load_balancing/traces"]
    assert pipelines["metrics"]["exporters"] == ["load_balancing/metrics"]
    traces, metrics = cfg["exporters"]["load_balancing/traces"], cfg["exporters"]["load_balancing/metrics"]
    assert traces["routing_key"] == "traceID" and metrics["routing_key"] == "resource"
    for exp in (traces, metrics):
        assert exp["resolver"]["static"]["hostnames"].startswith("${env:OTELCOL_LB_BACKENDS:-[")
        # the queue and retries on the load balancer, where its metrics count them, none per gateway
        assert exp["sending_queue"]["enabled"] is True and exp["retry_on_failure"]["enabled"] is True
        assert exp["protocol"]["otlp"]["sending_queue"]["enabled"] is False
    assert all(p["processors"] == ["memory_limiter"] for p in pipelines.values())
    # the DNS resolver is documented in the file, ready to uncomment
    text = LB_CONFIG.read_text()
    assert re.search(r"^#\s+dns:\n#\s+hostname: \S+\n#\s+port: \"4317\"", text, re.M)


def test_compose_runs_two_gateways_behind_the_tier_in_the_lb_profile() -> None:
    services = compose()["services"]
    gateways = [n for n, s in services.items() if "lb" in s.get("profiles", [])]
    assert gateways == ["otelcol-gateway-1", "otelcol-gateway-2"]
    backends = yaml.safe_load(services["otelcol"]["environment"]["OTELCOL_LB_BACKENDS"])
    assert backends == [f"{g}:4317" for g in gateways]
    assert "otelcol-lb.yaml" in {Path(c).name for c in mounts(services["otelcol"])}
    assert "victorialogs" in services and services["victorialogs"]["image"].endswith(":v1.52.2")


def test_collector_config_shows_a_remote_write_alternative() -> None:
    text = (COLLECTOR / "otelcol.yaml").read_text()
    assert re.search(r"^\s*#\s*prometheus_remote_write:", text, re.M)


# --- docker compose and Grafana provisioning -----------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load((COLLECTOR / "docker-compose.yml").read_text())


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host path (relative to collector/) of the bind mounts."""
    out = {}
    for v in service.get("volumes", []):
        host, container = v.split(":")[:2]
        if host.startswith("."):
            out[container] = host
    return out


def test_compose_images_are_pinned() -> None:
    images = {name: s["image"] for name, s in compose()["services"].items()}
    expected = {
        "otelcol": "otel/opentelemetry-collector-contrib",
        "otelcol-gateway-1": "otel/opentelemetry-collector-contrib",
        "otelcol-gateway-2": "otel/opentelemetry-collector-contrib",
        "victorialogs": "victoriametrics/victoria-logs",
        "jaeger": "jaegertracing/jaeger",
        "prometheus": "prom/prometheus",
        "alertmanager": "prom/alertmanager",
        "grafana": "grafana/grafana",
    }
    assert {n: i.rsplit(":", 1)[0] for n, i in images.items()} == expected
    for name, image in images.items():
        tag = image.rsplit(":", 1)[1]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: pin an exact version, not {tag!r}"
    assert images["jaeger"].rsplit(":", 1)[1].startswith("2."), "Jaeger v2 all-in-one"


def test_compose_mounts_only_files_that_exist_in_the_repository() -> None:
    for name, service in compose()["services"].items():
        for host in mounts(service).values():
            assert (COLLECTOR / host).exists(), f"{name} mounts missing {host}"


def test_compose_publishes_the_collector_ports_and_mounts_both_collector_configs() -> None:
    otelcol = compose()["services"]["otelcol"]
    published = {p.rsplit(":", 2)[1] for p in otelcol["ports"]}
    assert {"4317", "4318", "8889", "13133"} <= published
    configs = {Path(c).name for c in mounts(otelcol)}
    assert configs == {p.name for p in ALL_CONFIGS}
    default = re.search(r"\$\{OTELCOL_CONFIG:-([^}]+)\}", " ".join(otelcol["command"]))
    assert default and default.group(1) == "otelcol.yaml"


def test_prometheus_container_finds_its_rule_files_where_the_config_points() -> None:
    prom = compose()["services"]["prometheus"]
    config_path = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
    m = mounts(prom)
    assert m[config_path] == "./prometheus/prometheus.yml"
    rule_globs = yaml.safe_load((COLLECTOR / "prometheus" / "prometheus.yml").read_text())["rule_files"]
    for pattern in rule_globs:
        container_dir = str(Path(config_path).parent / Path(pattern).parent)
        assert m.get(container_dir) == "./prometheus/rules", f"{pattern} does not resolve in the container"
    targets = [
        t
        for job in yaml.safe_load((COLLECTOR / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]
        for sc in job["static_configs"]
        for t in sc["targets"]
    ]
    assert "otelcol:8889" in targets and "host.docker.internal:9464" in targets


def test_grafana_provisioning_points_at_the_dashboards_and_both_data_sources() -> None:
    grafana = compose()["services"]["grafana"]
    m = mounts(grafana)
    provisioning = COLLECTOR / m["/etc/grafana/provisioning"]
    providers = yaml.safe_load(next((provisioning / "dashboards").glob("*.yml")).read_text())["providers"]
    dashboards_dir = providers[0]["options"]["path"]
    assert m[dashboards_dir] == "./grafana/dashboards"
    datasources = yaml.safe_load(next((provisioning / "datasources").glob("*.yml")).read_text())["datasources"]
    by_type = {d["type"]: d for d in datasources}
    assert by_type["prometheus"]["uid"] == CONFIG["dashboard"]["datasource_uid"]
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    assert by_type["jaeger"]["url"] == "http://jaeger:16686"
    exemplar_targets = {d["datasourceUid"] for d in by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]}
    assert exemplar_targets == {by_type["jaeger"]["uid"]}


# --- dashboards and queries ----------------------------------------------------------------------


def test_dashboards_have_unique_panel_ids_and_the_template_variables() -> None:
    assert DASHBOARDS
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        ids = [p["id"] for name, p in dashboard_panels() if name == path.name]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        variables = {v["name"]: v for v in board["templating"]["list"]}
        for name in DASHBOARD_VARIABLES:
            assert variables[name]["type"] == "query" and variables[name]["query"].startswith("label_values(")


def test_every_dashboard_query_filters_on_the_variables_and_uses_only_otel_llm_series() -> None:
    exprs = dashboard_exprs()
    assert exprs
    for expr in exprs:
        for name in DASHBOARD_VARIABLES:
            assert f'=~"${name}"' in expr, f"{expr} does not filter on ${name}"
        unknown = series_names(expr) - KNOWN_SERIES - BUILTIN_SERIES
        assert not unknown, f"{expr} uses series otel-llm does not emit: {unknown}"


def test_queries_json_lists_every_panel_query_and_alert_rule() -> None:
    entries = {q["id"]: q for q in QUERIES["queries"]}
    panel_exprs = sorted(match_all(e) for e in dashboard_exprs())
    assert sorted(q["expr"] for q in entries.values() if q["source"] == "dashboard_panel") == panel_exprs
    rules = sorted((r["alert"], r["expr"]) for r in alert_rules())
    assert sorted((q["alert"], q["alert_expr"]) for q in entries.values() if q["source"] == "alert_rule") == rules
    assert {q["variable"] for q in entries.values() if q["source"] == "dashboard_variable"} == set(DASHBOARD_VARIABLES)
    for q in entries.values():
        assert "$" not in q["expr"], q["id"]
        assert set(q["needs"]) <= set(QUERIES["needs"]), q["id"]
        assert not series_names(q["expr"]) - KNOWN_SERIES, q["id"]


def test_every_dashboard_and_queries_json_expression_parses(tmp_path: Path) -> None:
    promtool = required_tool("promtool")
    exprs = [match_all(e) for e in dashboard_exprs()]
    exprs += [q["expr"] for q in QUERIES["queries"]]
    exprs += [q["alert_expr"] for q in QUERIES["queries"] if "alert_expr" in q]
    rules = [{"record": f"otel_llm_check:expr_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "expressions", "rules": rules}]}))
    proc = run(promtool, "check", "rules", str(path))
    assert_ok(proc)
    assert f"{len(rules)} rules found" in proc.stdout


def test_compose_runs_the_collector_release_that_otelcol_llm_is_built_from() -> None:
    manifest = yaml.safe_load((COLLECTOR / "otelcol-llm" / "builder-config.yaml").read_text())
    release = manifest["dist"]["version"]
    image = compose()["services"]["otelcol"]["image"]
    assert image.rsplit(":", 1)[1] == release, (image, release)
    for kind in ("receivers", "processors", "exporters", "extensions"):
        for component in manifest[kind]:
            module, version = component["gomod"].split()
            assert version == f"v{release}", module
    gomod = (COLLECTOR / "otelcol-llm" / "go.mod").read_text()
    for kind in ("receivers", "processors", "exporters", "extensions", "providers"):
        for component in manifest[kind]:
            assert component["gomod"] in gomod, f"go.mod is stale: regenerate from the manifest ({component})"
