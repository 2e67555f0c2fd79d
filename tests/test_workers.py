"""Servers with several worker processes: gunicorn (forked workers, with and without ``--preload``) and uvicorn
(spawned workers), each instrumented with ``opentelemetry-instrument`` and with ``otel_llm.instrument()`` in code.

The example app (``examples/multiworker``) makes one LLM call to the fake provider per request and answers with
its worker's pid. The workers export OTLP to the real otelcol-llm with the shipped ``collector/otelcol.yaml``; the
calls are counted from the Collector's Prometheus endpoint, where each worker is one ``instance``
(its ``service.instance.id``). N requests must arrive as exactly N calls, one instance per worker that served.
The in-process Prometheus exporter cannot serve several workers: each process that cannot says so in its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from otel_llm import _names as n
from otel_llm.fakeprovider import FakeProvider
from tests.test_stack_e2e import _bins, ls

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "examples" / "multiworker"
BIN = Path(sys.executable).parent
WORKERS = 4
REQUESTS = 48
EXPORT_MS = 300


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """otelcol-llm with the shipped agent config: (its OTLP gRPC endpoint, its Prometheus /metrics URL)."""
    bins = _bins()
    ports = ls.free_ports()
    log = tmp_path_factory.mktemp("otelcol") / "otelcol.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}
    env.update(ls.collector_env(ports))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [bins["otelcol-llm"], f"--config={ROOT / 'collector' / 'otelcol.yaml'}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            ls.wait_for(lambda: ls._ok(f"http://127.0.0.1:{ports['otelcol_health']}/"), 60, "otelcol-llm health")
            yield f"http://127.0.0.1:{ports['otlp_grpc']}", f"http://127.0.0.1:{ports['otelcol_metrics']}/metrics"
        finally:
            proc.terminate()
            proc.wait(30)


def _calls_by_instance(metrics_url: str, service: str) -> dict[str, float]:
    """Calls per instance of one service, from the duration histogram's _count series the Collector serves."""
    with urllib.request.urlopen(metrics_url, timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == n.PROM_DURATION + "_count" and sample.labels.get("job") == service:
                instance = sample.labels.get("instance", "")
                out[instance] = out.get(instance, 0.0) + sample.value
    return out


def _server(kind: str, module: str, port: int, *, distro: bool, preload: bool = False) -> list[str]:
    if kind == "gunicorn":
        cmd = [str(BIN / "gunicorn"), "--workers", str(WORKERS), "--bind", f"127.0.0.1:{port}"]
        cmd += ["--preload"] if preload else []
        cmd += [f"{module}:wsgi"]
    else:
        cmd = [str(BIN / "uvicorn"), "--workers", str(WORKERS), "--host", "127.0.0.1", "--port", str(port)]
        cmd += [f"{module}:asgi"]
    return ([str(BIN / "opentelemetry-instrument")] if distro else []) + cmd


def _env(provider: FakeProvider, service: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    env.update(
        OPENAI_BASE_URL=provider.url + "/v1",
        OPENAI_API_KEY="sk-test",
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_METRIC_EXPORT_INTERVAL=str(EXPORT_MS),
        PYTHONPATH=os.pathsep.join([str(APP_DIR), str(ROOT / "src")]),
        **extra,
    )
    return env


def _get(url: str) -> Any:
    import json

    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


class Served:
    def __init__(self, cmd: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.port, self.log = port, log
        self.out = log.open("wb")
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=APP_DIR, stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def ready(self) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                _get(f"http://127.0.0.1:{self.port}/")
            except OSError:
                return False
            return True

        ls.wait_for(up, 60, "the app server")

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.out.close()
        return self.log.read_text(errors="replace")


def _spread(port: int, total: int) -> list[int]:
    """``total`` requests, 8 at a time, so that every worker gets some; returns the pid that served each."""
    with ThreadPoolExecutor(8) as pool:
        return [a["pid"] for a in pool.map(lambda _: _get(f"http://127.0.0.1:{port}/"), range(total))]


CASES = [
    ("gunicorn", "app", True, False),  # opentelemetry-instrument: providers made in the arbiter, before the fork
    ("gunicorn", "app_instrumented", False, False),  # otel_llm.instrument() in each worker, after the fork
    ("gunicorn", "app_instrumented", False, True),  # --preload: instrument() in the arbiter, before the fork
    ("uvicorn", "app", True, False),  # spawned workers: each its own interpreter
    ("uvicorn", "app_instrumented", False, False),
]


@pytest.mark.parametrize(("kind", "module", "distro", "preload"), CASES)
def test_calls_add_up_across_workers(
    collector: tuple[str, str],
    provider: FakeProvider,
    tmp_path: Path,
    kind: str,
    module: str,
    distro: bool,
    preload: bool,
) -> None:
    service = f"mw-{kind}-{module}-{'distro' if distro else 'code'}{'-preload' if preload else ''}"
    port = ls.free_port()
    env = _env(provider, service, OTEL_EXPORTER_OTLP_ENDPOINT=collector[0], OTEL_METRICS_EXPORTER="otlp")
    server = Served(_server(kind, module, port, distro=distro, preload=preload), env, port, tmp_path / "server.log")
    try:
        server.ready()  # one call
        pids = _spread(port, REQUESTS - 1)
        # on a loaded machine the other workers may still be starting: more rounds until two have served (bounded)
        deadline = time.monotonic() + 60
        while len(set(pids)) < 2 and len(pids) < 20 * REQUESTS and time.monotonic() < deadline:
            time.sleep(0.5)
            pids += _spread(port, 8)
        total = len(pids) + 1
        metrics_url = collector[1]

        def arrived() -> bool:
            return sum(_calls_by_instance(metrics_url, service).values()) >= total

        ls.wait_for(arrived, 60, f"{total} calls of {service} in the Collector", interval=0.3)
        time.sleep(4 * EXPORT_MS / 1000)  # more exports: a worker counted twice would show now
        by_instance = _calls_by_instance(metrics_url, service)
    finally:
        log = server.stop()
    assert sum(by_instance.values()) == total, (by_instance, log[-3000:])
    served = set(pids)
    assert len(served) >= 2, f"the requests did not spread over the workers: {pids}"
    # every worker that answered is one instance; the one that answered only the readiness call may add one more
    assert len(served) <= len(by_instance) <= WORKERS, (by_instance, served)
    assert "" not in by_instance, by_instance
    assert sum(t["calls"] for t in provider.totals().values()) >= total


@pytest.mark.parametrize(("kind", "module", "preload"), [("gunicorn", "app_instrumented", True)])
def test_prometheus_reader_in_forked_workers_says_it_cannot_serve_them(
    provider: FakeProvider, tmp_path: Path, kind: str, module: str, preload: bool
) -> None:
    """--preload: the arbiter starts the endpoint, every forked worker logs once that its calls are not served."""
    port, prom_port = ls.free_port(), ls.free_port()
    env = _env(
        provider,
        "mw-prometheus",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(prom_port),
    )
    server = Served(_server(kind, module, port, distro=False, preload=preload), env, port, tmp_path / "server.log")
    try:
        server.ready()
        _spread(port, 8)
    finally:
        log = server.stop()
    refusals = [line for line in log.splitlines() if "was forked from the one serving Prometheus metrics" in line]
    assert len(refusals) >= WORKERS, log[-3000:]
    assert all("OTEL_METRICS_EXPORTER=otlp" in line for line in refusals)


def test_prometheus_reader_in_each_worker_says_the_port_is_taken(provider: FakeProvider, tmp_path: Path) -> None:
    """Without --preload each worker starts its own endpoint on the same port: one wins, each other one says so."""
    port, prom_port = ls.free_port(), ls.free_port()
    env = _env(
        provider,
        "mw-prometheus",
        OTEL_METRICS_EXPORTER="prometheus",
        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
        OTEL_EXPORTER_PROMETHEUS_PORT=str(prom_port),
    )
    server = Served(_server("gunicorn", "app_instrumented", port, distro=False), env, port, tmp_path / "server.log")
    try:
        server.ready()
        _spread(port, 8)
    finally:
        log = server.stop()
    taken = [line for line in log.splitlines() if "cannot serve Prometheus metrics on" in line]
    assert len(taken) == WORKERS - 1, log[-3000:]
    assert all("OTEL_METRICS_EXPORTER=otlp" in line for line in taken)
