"""Metrics pushed by the Collector's prometheus_remote_write exporter into VictoriaMetrics single-node (built
from its Go module by scripts/build-go.sh): every dashboard query and alert expression of
collector/queries.json returns data from it. The exporter block is the one otelcol.yaml documents in
comments, uncommented; the scrape path stays the default.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_llm.fakeprovider import FakeProvider
from tests.test_stack_e2e import COLLECTOR, _bins, _collector_app, _get, ls


def remote_write_variant(path: Path) -> Path:
    """otelcol.yaml with its commented prometheus_remote_write block in the metrics pipeline."""
    lines = (COLLECTOR / "otelcol.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^  # prometheus_remote_write:", line))
    block = []
    for line in lines[start:]:
        if not line.startswith("  # "):
            break
        block.append(line[4:])
    cfg = yaml.safe_load((COLLECTOR / "otelcol.yaml").read_text())
    cfg["exporters"].update(yaml.safe_load("\n".join(block)))
    cfg["service"]["pipelines"]["metrics"]["exporters"] = ["prometheus_remote_write"]
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def vm_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _bins()
    tmp = tmp_path_factory.mktemp("vm")
    vm_port = ls.free_port()
    stack = ls.LocalStack(
        workdir=tmp,
        ports=ls.free_ports(),
        otelcol_config=remote_write_variant(tmp / "otelcol-remote-write.yaml"),
        otelcol_extra_env={"OTELCOL_REMOTE_WRITE_ENDPOINT": f"http://127.0.0.1:{vm_port}/api/v1/write"},
        prometheus=False,
    )
    stack.workdir.mkdir(parents=True, exist_ok=True)
    stack.bins = ls.binaries()
    vm = stack._spawn(
        "victoria-metrics",
        [
            stack.bins["victoria-metrics"],
            f"-httpListenAddr=127.0.0.1:{vm_port}",
            f"-storageDataPath={tmp / 'vm-data'}",
            "-search.latencyOffset=1s",
            "-search.disableCache",
            "-loggerLevel=WARN",
        ],
    )
    try:
        stack._wait_ready(vm, f"http://127.0.0.1:{vm_port}/health")
        stack.start()
    except BaseException:
        stack.stop()
        raise
    stack.vm_url = f"http://127.0.0.1:{vm_port}"
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as p:
        yield p


def _query(url: str, expr: str) -> list[dict[str, Any]]:
    # step: the resolution of a subquery without one ([5m:]); VictoriaMetrics defaults it to 5m, Prometheus
    # to the global evaluation interval, and Grafana sends its panel interval
    body = _get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr, "step": "15s"}))
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


def test_dashboard_queries_and_alert_expressions_return_data_from_victoriametrics_via_remote_write(
    vm_stack: Any, provider: FakeProvider
) -> None:
    gen = _collector_app(vm_stack, provider)
    next(gen)
    try:
        vm = vm_stack.vm_url
        ls.wait_for(
            lambda: _query(vm, 'gen_ai_client_operation_duration_seconds_count{job="e2e-collector-app"}'),
            60,
            "the app's series in VictoriaMetrics",
        )
        time.sleep(5)  # a few more pushes, so that rate() and increase() have two samples everywhere
        queries = json.loads((COLLECTOR / "queries.json").read_text())["queries"]
        pending = [
            q
            for q in queries
            # "no traffic lately": true only after a quiet period
            if not (q["source"] == "alert_rule" and q.get("alert") == "LLMTrafficStopped")
        ]
        # a subquery ([5m:], step 15s) is evaluated at 15 s-aligned instants, so a series whose first sample came
        # after the last aligned instant has no point yet: ask again, for at most 45 s in all
        answered, deadline = 0, time.monotonic() + 45
        while True:
            still = []
            for q in pending:
                if _query(vm, q["expr"]):
                    answered += 1
                else:
                    still.append(q)
            pending = still
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(3)
        empty = [f"{q['id']}: {q['expr']}" for q in pending]
        assert empty == [], "queries without data in VictoriaMetrics:\n" + "\n".join(empty)
        rows = _query(vm, 'gen_ai_client_operation_duration_seconds_count{error_type="429"}')
        assert rows and rows[0]["metric"]["job"] == "e2e-collector-app", rows
        print(f"VictoriaMetrics (remote write): {answered}/{len(queries) - 1} queries of queries.json answered")
    finally:
        for _ in gen:
            pass
