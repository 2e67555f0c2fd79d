"""The pipeline for real: apps export OTLP to otelcol-llm, traces are read back from Jaeger v2, metrics from
Prometheus, alerts from a webhook behind Alertmanager.

The stack is ``collector/localstack.py`` (the same script users run without Docker) on free loopback ports:
otelcol-llm and Jaeger built from their pinned Go modules by ``scripts/build-go.sh``, Debian's Prometheus
and Alertmanager, every config the shipped file (Prometheus and Alertmanager with loopback addresses; the
alert rules regenerated with tiny thresholds and no ``for:``, as in test_prometheus_e2e.py). The apps are
configured by ``OTEL_*`` variables only and call the project's fake provider.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llm import _names as n
from otel_llm.demo import LOCAL_MODEL
from otel_llm.fakeprovider import FakeProvider
from tests.test_prometheus_e2e import QUIET_S, _test_rules

ROOT = Path(__file__).resolve().parent.parent
COLLECTOR = ROOT / "collector"
BIN = Path(sys.executable).parent

# the sustained-load run: RATE logical calls per second for LOAD_S seconds
LOAD_RATE, LOAD_S = 10.0, 60.0
# tail sampling: traces of each kind, and the share of normal ones the gateway keeps (otelcol-gateway.yaml)
SAMPLE_NORMAL, SAMPLE_ERRORS, SAMPLE_SLOW = 500, 20, 4


def _localstack() -> Any:
    spec = importlib.util.spec_from_file_location("otel_llm_localstack", COLLECTOR / "localstack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ls = _localstack()


def _bins() -> dict[str, str]:
    try:
        return ls.binaries()  # type: ignore[no-any-return]
    except ls.StackError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must build otelcol-llm and jaeger (scripts/test.sh runs scripts/build-go.sh): {exc}")
        pytest.skip(str(exc))


def _get(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    body = _get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


# --- otelcol-llm itself ------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["otelcol.yaml", "otelcol-gateway.yaml", "otelcol-lb.yaml"])
@pytest.mark.parametrize("where", ["compose", "loopback"])
def test_otelcol_llm_validates_every_bundled_config(config: str, where: str) -> None:
    bins = _bins()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    if where == "loopback":
        env.update(ls.collector_env(ls.free_ports()))
        env["OTELCOL_LB_BACKENDS"] = ls.lb_backends([f"127.0.0.1:{ls.free_port()}", f"127.0.0.1:{ls.free_port()}"])
    proc = subprocess.run(
        [bins["otelcol-llm"], "validate", f"--config={COLLECTOR / config}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_otelcol_llm_accepts_the_commented_remote_write_alternative(tmp_path: Path) -> None:
    """otelcol.yaml shows prometheus_remote_write in comments: uncommented, the Collector must accept it."""
    bins = _bins()
    lines = (COLLECTOR / "otelcol.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^  # prometheus_remote_write:", line))
    block = []
    for line in lines[start:]:
        if not line.startswith("  # "):
            break
        block.append(line[4:])
    exporter = yaml.safe_load("\n".join(block))
    cfg = yaml.safe_load((COLLECTOR / "otelcol.yaml").read_text())
    cfg["exporters"].update(exporter)
    cfg["service"]["pipelines"]["metrics"]["exporters"] = ["prometheus_remote_write"]
    path = tmp_path / "otelcol-remote-write.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run(
        [bins["otelcol-llm"], "validate", f"--config={path}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "prometheus_remote_write" in exporter and len(block) >= 5


def test_otelcol_llm_accepts_the_commented_dns_resolver_of_the_lb_tier(tmp_path: Path) -> None:
    """otelcol-lb.yaml documents the DNS resolver in comments: put in place of `static`, it must validate."""
    bins = _bins()
    lines = (COLLECTOR / "otelcol-lb.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^#\s+dns:$", line))
    block = []
    for line in lines[start:]:
        if not re.match(r"^#\s{5,}\S", line):
            break
        block.append(line[7:])
    resolver = yaml.safe_load("\n".join(block))
    assert set(resolver["dns"]) >= {"hostname", "port"}, resolver
    cfg = yaml.safe_load((COLLECTOR / "otelcol-lb.yaml").read_text())
    for name in ("load_balancing/traces", "load_balancing/metrics"):
        cfg["exporters"][name]["resolver"] = resolver
    path = tmp_path / "otelcol-lb-dns.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run(
        [bins["otelcol-llm"], "validate", f"--config={path}"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_otelcol_llm_has_exactly_the_components_of_its_manifest() -> None:
    bins = _bins()
    proc = subprocess.run([bins["otelcol-llm"], "components"], capture_output=True, text=True, timeout=60, check=True)
    listed = yaml.safe_load(proc.stdout)
    manifest = yaml.safe_load((COLLECTOR / "otelcol-llm" / "builder-config.yaml").read_text())
    for kind in ("receivers", "processors", "exporters", "extensions"):
        modules = {c["module"].split()[0] for c in listed.get(kind) or []}
        assert modules == {m["gomod"].split()[0] for m in manifest[kind]}, kind
        versions = {c["module"].split()[1] for c in listed.get(kind) or []}
        assert versions == {"v0.158.0"}, (kind, versions)
    names = {c["name"] for kind in ("receivers", "processors", "exporters", "extensions") for c in listed[kind]}
    for config in ("otelcol.yaml", "otelcol-gateway.yaml", "otelcol-lb.yaml"):
        cfg = yaml.safe_load((COLLECTOR / config).read_text())
        used = {i.split("/")[0] for kind in ("receivers", "processors", "exporters", "extensions") for i in cfg[kind]}
        assert used <= names, used - names
    jaeger = subprocess.run([bins["jaeger"], "version"], capture_output=True, text=True, timeout=60, check=False)
    assert jaeger.returncode == 0, jaeger.stderr


# --- the stack ------------------------------------------------------------------------------------------------


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Webhook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"  # type: ignore[attr-defined]
    yield server  # type: ignore[misc]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook: Any) -> Iterator[Any]:
    _bins()
    for attempt in range(3):  # a free port can be taken by another process before our server binds it
        tmp = tmp_path_factory.mktemp("stack")
        s = ls.LocalStack(
            workdir=tmp,
            ports=ls.free_ports(),
            webhook_url=webhook.url,
            app_target=f"127.0.0.1:{ls.free_port()}",  # nothing there: only the Collector feeds this Prometheus
            rule_files=[str(_test_rules(tmp))],
            prometheus_global={"scrape_interval": "1s", "evaluation_interval": "1s"},
            alertmanager_route={"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"},
        )
        try:
            s.start()
            break
        except ls.StackError:
            if attempt == 2:
                raise
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as p:
        yield p


def _otel_env(stack: Any, service: str, endpoint: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint or stack.otlp_grpc,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        COLUMNS="200",
        NO_COLOR="1",
    )
    return env


def _demo(stack: Any, service: str, duration: float, rate: float) -> dict[str, int]:
    """``otel-llm demo`` configured by OTEL_* variables only; its own counts from its summary line."""
    proc = subprocess.run(
        [str(BIN / "otel-llm"), "demo", "--duration", str(duration), "--rate", str(rate), "--metrics-port", "0"],
        env=_otel_env(stack, service),
        capture_output=True,
        text=True,
        timeout=duration * 3 + 120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    m = re.search(r"(\d+) logical calls · (\d+) spans · (\d+) failovers · (\d+) failed", proc.stdout)
    assert m, proc.stdout[-3000:]
    calls, spans, failovers, failed = (int(x) for x in m.groups())
    return {"calls": calls, "spans": spans, "failovers": failovers, "failed": failed, "started": 0}


def _traces(stack: Any, service: str, limit: int = 20000) -> list[dict[str, Any]]:
    q = urllib.parse.urlencode({"service": service, "limit": limit, "lookback": "2h"})
    return _get(f"{stack.jaeger_url}/api/traces?{q}", timeout=60)["data"]  # type: ignore[no-any-return]


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: t["value"] for t in span.get("tags", [])}


def _tid(trace_id: str) -> int:
    """Jaeger prints trace ids without leading zeros; compare them as numbers."""
    return int(trace_id, 16)


def _is_llm(span: dict[str, Any]) -> bool:
    tags = _tags(span)
    return (tags.get("otel.scope.name") or tags.get("otel.library.name")) == n.SCOPE_NAME


@pytest.fixture(scope="module")
def demo_run(stack: Any) -> dict[str, int]:
    run = _demo(stack, "e2e-demo", duration=5, rate=8)
    assert run["calls"] == 40 and run["failovers"] > 0, run
    return run


def _wait_spans(stack: Any, service: str, want: int, timeout: float = 60) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        traces = _traces(stack, service)
        return traces if sum(len(t["spans"]) for t in traces) >= want else None

    return ls.wait_for(enough, timeout, f"{want} spans of {service} in Jaeger", 1.0)  # type: ignore[no-any-return]


def test_demo_traces_in_jaeger_one_span_per_call_with_genai_attributes_and_fallbacks_as_children(
    stack: Any, demo_run: dict[str, int]
) -> None:
    traces = _wait_spans(stack, "e2e-demo", demo_run["calls"] + demo_run["spans"])
    time.sleep(2)  # anything beyond the expected count would show up now
    traces = _traces(stack, "e2e-demo")
    assert len(traces) == demo_run["calls"]
    llm_total = 0
    answered_by_fallback = 0
    for trace in traces:
        spans = trace["spans"]
        roots = [s for s in spans if not s.get("references")]
        assert len(roots) == 1 and roots[0]["operationName"] == "demo.route", [s["operationName"] for s in spans]
        root = roots[0]
        llm = [s for s in spans if _is_llm(s)]
        assert len(llm) == len(spans) - 1, "every other span is one LLM call"
        llm_total += len(llm)
        for s in llm:
            ref = s["references"][0]
            assert ref["refType"] == "CHILD_OF" and ref["spanID"] == root["spanID"], "attempts hang off the route span"
            tags = _tags(s)
            assert tags[n.OPERATION] in ("chat", "generate_content") and tags[n.PROVIDER] and tags[n.REQUEST_MODEL]
        root_tags = _tags(root)
        assert root_tags["demo.attempts"] == len(llm), (root_tags, [_tags(s).get(n.REQUEST_MODEL) for s in llm])
        ok = [s for s in llm if n.ERROR_TYPE not in _tags(s)]
        failed = [s for s in llm if n.ERROR_TYPE in _tags(s)]
        if ok:  # the router stops at the first answer: every attempt before it failed, the answer came last
            assert len(ok) == 1 and all(s["startTime"] <= ok[0]["startTime"] for s in failed)
            tags = _tags(ok[0])
            assert tags[n.USAGE_INPUT] > 0 and tags[n.USAGE_OUTPUT] > 0, tags
            if tags[n.REQUEST_MODEL] == LOCAL_MODEL:  # a local model on Ollama's API: unpriced, never $0
                assert n.COST_AMOUNT not in tags and tags[n.PROVIDER] == "ollama", tags
            else:
                assert tags[n.COST_AMOUNT] > 0 and tags[n.COST_CURRENCY] == "USD", tags
            assert root_tags["demo.answered_by"] == tags[n.REQUEST_MODEL]
            answered_by_fallback += len(failed) > 0
        for s in failed:
            tags = _tags(s)
            assert tags.get("error") is True or tags.get("otel.status_code") == "ERROR", tags
    assert llm_total == demo_run["spans"]
    assert answered_by_fallback > 0, "some call was answered by a fallback model"


def test_a_genai_event_with_captured_content_is_found_in_victorialogs_by_its_trace_id(
    stack: Any, provider: FakeProvider
) -> None:
    """Content capture on events: the app's OTLP logs go through the Collector's logs pipeline to VictoriaLogs."""
    prompt = "Which prime follows 7919? (e2e event probe)"
    env = _otel_env(stack, "e2e-events")
    env.update(
        PROVIDER_URL=provider.url,
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="otlp",
        OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="EVENT_ONLY",
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "apps" / "events_app.py"), prompt],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    trace_id = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id), proc.stdout

    def events() -> list[dict[str, Any]]:
        q = urllib.parse.urlencode({"query": f'trace_id:"{trace_id}"', "limit": 10})
        with urllib.request.urlopen(f"{stack.victorialogs_url}/select/logsql/query?{q}", timeout=10) as r:
            return [json.loads(line) for line in r.read().decode().splitlines() if line.strip()]

    found = ls.wait_for(events, 60, f"the event of trace {trace_id} in VictoriaLogs")
    assert len(found) == 1, found
    event = found[0]
    assert event["event_name"] == n.EVENT_INFERENCE_DETAILS, event
    assert event["trace_id"] == trace_id and event.get(n.REQUEST_MODEL) == "gpt-4.1", event
    assert prompt in json.dumps(event), f"the captured prompt is stored with the event: {event}"
    print(f"VictoriaLogs: trace_id:{trace_id} -> 1 event {event['event_name']} with the prompt; fields {sorted(event)}")


def _collector_app(stack: Any, provider: FakeProvider) -> Iterator[None]:
    env = _otel_env(stack, "e2e-collector-app")
    env["PROVIDER_URL"] = provider.url
    app = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "apps" / "prom_workload.py"), "300"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None and app.stdin is not None
        assert app.stdout.readline().strip() == "ready", app.stderr.read() if app.poll() is not None else ""
        app.stdin.write("go\n")
        app.stdin.flush()
        assert app.stdout.readline().strip() == "done", app.stderr.read() if app.poll() is not None else ""
        yield
    finally:
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()


@pytest.fixture(scope="module")
def collector_metrics(stack: Any, provider: FakeProvider) -> Iterator[float]:
    """prom_workload.py's metrics, through OTLP and the Collector's prometheus exporter; yields when it ended."""
    gen = _collector_app(stack, provider)
    next(gen)
    try:
        yield time.time()
    finally:
        for _ in gen:
            pass


def test_every_dashboard_query_and_alert_expression_returns_data_through_the_collector(
    stack: Any, collector_metrics: float
) -> None:
    prom = stack.prometheus_url
    ls.wait_for(
        lambda: _query(prom, 'gen_ai_client_operation_duration_seconds_count{job="e2e-collector-app"}'),
        60,
        "the app's series through the Collector",
    )
    time.sleep(5)  # a few more scrapes, so that rate() and increase() have two samples everywhere
    queries = json.loads((COLLECTOR / "queries.json").read_text())["queries"]
    empty = []
    for q in queries:
        if q["source"] == "alert_rule" and q.get("alert") == "LLMTrafficStopped":
            continue  # "no traffic lately": the alert test below waits for it
        if not _query(prom, q["expr"]):
            empty.append(f"{q['id']}: {q['expr']}")
    assert empty == [], "queries without data through the Collector:\n" + "\n".join(empty)


def test_collector_path_produces_the_series_names_and_labels_of_the_in_process_exporter(
    stack: Any, collector_metrics: float
) -> None:
    prom = stack.prometheus_url
    for series in n.PROM_SERIES:
        assert ls.wait_for(lambda s=series: _query(prom, s + '{job="e2e-collector-app"}'), 30, series)
    rows = _query(prom, f'{n.PROM_DURATION}_count{{gen_ai_request_model="gpt-4.1", error_type="429"}}')
    assert rows and rows[0]["metric"]["gen_ai_provider_name"] == "openai"
    assert rows[0]["metric"]["job"] == "e2e-collector-app", "job comes from service.name (honor_labels)"


def test_an_alert_fires_and_reaches_the_webhook_through_alertmanager(
    stack: Any, collector_metrics: float, webhook: Any
) -> None:
    def notified() -> set[str]:
        return {
            a["labels"]["alertname"]
            for body in webhook.received
            for a in body["alerts"]
            if a["status"] == "firing" and a["labels"].get("job") in ("e2e-collector-app", None)
        }

    got = ls.wait_for(lambda: {"LLMErrorRateHigh", "LLMHourlySpendOverBudget"} <= notified(), 90, "alerts at the hook")
    assert got
    body = next(b for b in webhook.received if any(a["labels"]["alertname"] == "LLMErrorRateHigh" for a in b["alerts"]))
    alert = next(a for a in body["alerts"] if a["labels"]["alertname"] == "LLMErrorRateHigh")
    assert alert["labels"]["severity"] == "critical" and alert["annotations"]["summary"]
    assert body["receiver"] == "llm-webhook" and body["status"] == "firing"
    # LLMTrafficStopped too, once the app has been quiet for QUIET_S seconds
    ls.wait_for(lambda: "LLMTrafficStopped" in notified(), QUIET_S + 90, "LLMTrafficStopped at the hook")


def test_an_exemplar_on_the_duration_histogram_leads_to_its_trace_in_jaeger(
    stack: Any, demo_run: dict[str, int]
) -> None:
    prom = stack.prometheus_url

    def exemplars() -> list[dict[str, Any]]:
        now = time.time()
        q = urllib.parse.urlencode(
            {"query": f'{n.PROM_DURATION}_bucket{{job="e2e-demo"}}', "start": now - 3600, "end": now + 60}
        )
        body = _get(f"{prom}/api/v1/query_exemplars?{q}")
        return [e for series in body["data"] for e in series["exemplars"] if e["labels"].get("trace_id")]

    found = ls.wait_for(exemplars, 60, "exemplars with a trace_id on the duration histogram")
    trace_id = found[-1]["labels"]["trace_id"]
    body = _get(f"{stack.jaeger_url}/api/traces/{trace_id}")
    spans = body["data"][0]["spans"]
    assert any(_is_llm(s) for s in spans), [s["operationName"] for s in spans]
    assert {_tid(s["traceID"]) for s in spans} == {_tid(trace_id)}


def test_tail_sampling_gateway_keeps_every_error_and_slow_trace_and_the_configured_share_of_the_rest(
    stack: Any, provider: FakeProvider
) -> None:
    cfg = yaml.safe_load((COLLECTOR / "otelcol-gateway.yaml").read_text())
    policy = next(p for p in cfg["processors"]["tail_sampling"]["policies"] if p["type"] == "probabilistic")
    share = policy["probabilistic"]["sampling_percentage"] / 100
    ports = {**ls.free_ports(), "jaeger_otlp_grpc": stack.ports["jaeger_otlp_grpc"]}
    gateway = stack.start_collector(
        "otelcol-gateway", COLLECTOR / "otelcol-gateway.yaml", ports, {"OTELCOL_DECISION_WAIT": "2s"}
    )
    try:
        env = _otel_env(stack, "e2e-sampling", f"http://127.0.0.1:{ports['otlp_grpc']}")
        env.update(PROVIDER_URL=provider.url, OTEL_METRICS_EXPORTER="none")
        proc = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests" / "apps" / "sampling_workload.py"),
                str(SAMPLE_NORMAL),
                str(SAMPLE_ERRORS),
                str(SAMPLE_SLOW),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        ids = {k: [_tid(x) for x in v] for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
        assert [len(ids["normal"]), len(ids["error"]), len(ids["slow"])] == [SAMPLE_NORMAL, SAMPLE_ERRORS, SAMPLE_SLOW]
        must = set(ids["error"]) | set(ids["slow"])

        def kept() -> set[int] | None:
            got = {_tid(t["traceID"]) for t in _traces(stack, "e2e-sampling")}
            return got if must <= got else None

        got = ls.wait_for(kept, 60, "every error and slow trace in Jaeger", 1.0)
        time.sleep(4)  # two decision waits more: every normal trace has been decided
        got = {_tid(t["traceID"]) for t in _traces(stack, "e2e-sampling")}
        normal_kept = len(got & set(ids["normal"]))
        assert got <= set(ids["normal"]) | must, "only traces the workload made"
        # the probabilistic policy hashes trace ids: Binomial(500, 0.1) has mean 50 and sd 6.7; ±25 is ±3.7 sd
        expected = share * SAMPLE_NORMAL
        assert abs(normal_kept - expected) <= 25, (normal_kept, expected)
        print(
            f"tail sampling: kept {normal_kept}/{SAMPLE_NORMAL} normal traces (configured {share:.0%}), "
            f"{len(must & got)}/{len(must)} error and slow traces"
        )
        # one trace's spans arrive whole: the job span and its LLM span
        for t in _traces(stack, "e2e-sampling"):
            assert len(t["spans"]) == 2, t["traceID"]
    finally:
        gateway.popen.terminate()
        gateway.popen.wait(timeout=15)


def _collector_counters(stack: Any) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(stack.otelcol_telemetry_url, timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("otelcol_"):
                name = sample.name.removesuffix("_total")  # the parser adds it to counters; the exposition has none
                out[name] = out.get(name, 0.0) + sample.value
    return out


def test_sustained_load_through_the_collector_loses_nothing(stack: Any) -> None:
    before = _collector_counters(stack)
    run = _demo(stack, "e2e-load", duration=LOAD_S, rate=LOAD_RATE)
    assert run["calls"] == int(LOAD_S * LOAD_RATE)
    traces = _wait_spans(stack, "e2e-load", run["calls"] + run["spans"], timeout=90)
    time.sleep(2)
    traces = _traces(stack, "e2e-load")
    llm = sum(1 for t in traces for s in t["spans"] if _is_llm(s))
    routes = sum(1 for t in traces for s in t["spans"] if s["operationName"] == "demo.route")
    assert (len(traces), routes, llm) == (run["calls"], run["calls"], run["spans"])
    after = _collector_counters(stack)
    accepted = after["otelcol_receiver_accepted_spans"] - before.get("otelcol_receiver_accepted_spans", 0)
    sent = after["otelcol_exporter_sent_spans"] - before.get("otelcol_exporter_sent_spans", 0)
    assert accepted >= run["calls"] + run["spans"] and sent >= run["calls"] + run["spans"], (accepted, sent, run)
    # since the Collector started: every span accepted was sent on to Jaeger
    assert after["otelcol_exporter_sent_spans"] == after["otelcol_receiver_accepted_spans"], after
    bad = {k: v for k, v in after.items() if ("refused" in k or "failed" in k) and v}
    assert bad == {}, bad
    assert any("refused" in k for k in after) and any("failed" in k for k in after), sorted(after)
    print(
        f"sustained load: {run['calls']} logical calls, {run['spans']} LLM spans in {LOAD_S:.0f}s "
        f"({run['failovers']} failovers), all in Jaeger; Collector accepted and sent {accepted:.0f} spans, "
        f"refused/failed 0; Collector RSS {after['otelcol_process_memory_rss'] / 2**20:.0f} MiB"
    )
