"""The otel-llm backend without Docker: otelcol-llm, Jaeger v2, VictoriaLogs, Prometheus and Alertmanager on loopback.

    python collector/localstack.py                # the agent Collector (otelcol.yaml)
    python collector/localstack.py --gateway      # the tail-sampling gateway (otelcol-gateway.yaml)
    python collector/localstack.py --gateways 2   # the load-balancing tier (otelcol-lb.yaml) in front of 2 gateways

Runs the binaries that ``scripts/build-go.sh`` builds (it is run first; a built binary is reused) and
Debian's ``prometheus`` and ``prometheus-alertmanager``, each with the shipped configuration:

- the Collector and Jaeger read ``collector/otelcol*.yaml`` and ``collector/jaeger/config.yaml`` as they
  are; their addresses come from ``${env:VAR:-default}`` in those files, set here to loopback;
- VictoriaLogs stores the GenAI events (OTLP logs from the Collector's logs pipeline);
- with ``--gateways N`` the Collector on the OTLP ports is the load-balancing tier, routing by trace ID to
  N tail-sampling gateways on free ports (each exposes its own metrics, all scraped by Prometheus);
- Prometheus reads ``collector/prometheus/prometheus.yml`` and the alert rules in ``prometheus/rules/``,
  Alertmanager ``collector/alertmanager/alertmanager.yml``; neither expands variables, so a copy is
  written with only the scrape, Alertmanager and webhook addresses pointed at loopback.

Ports (``--ports default``): OTLP 4317/4318, Collector metrics 8889, health 13133, own metrics 8888,
Jaeger UI/API 16686 (OTLP in on 4327), VictoriaLogs 9428, Prometheus 9090, Alertmanager 9093; Alertmanager posts to
``--webhook`` (http://127.0.0.1:5001/alerts). ``--ports free`` picks free ones and prints them.
The tests (``tests/test_stack_e2e.py``) start the same stack through :class:`LocalStack`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

COLLECTOR = Path(__file__).resolve().parent
ROOT = COLLECTOR.parent

DEFAULT_PORTS = {
    "otlp_grpc": 4317,
    "otlp_http": 4318,
    "otelcol_metrics": 8889,
    "otelcol_health": 13133,
    "otelcol_telemetry": 8888,
    "jaeger_otlp_grpc": 4327,
    "jaeger_query_http": 16686,
    "jaeger_query_grpc": 16685,
    "jaeger_health": 13134,
    "jaeger_metrics": 8887,
    "prometheus": 9090,
    "alertmanager": 9093,
    "victorialogs": 9428,
}
# the ports of one more Collector (a gateway behind the load-balancing tier)
COLLECTOR_PORTS = ("otlp_grpc", "otlp_http", "otelcol_metrics", "otelcol_health", "otelcol_telemetry")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(names: tuple[str, ...] | None = None) -> dict[str, int]:
    names = tuple(DEFAULT_PORTS) if names is None else names
    ports: set[int] = set()
    while len(ports) < len(names):
        ports.add(free_port())
    return dict(zip(names, sorted(ports), strict=True))


class StackError(RuntimeError):
    """A binary is missing, or a process did not come up (its log tail is in the message)."""


BIN_VARS = {
    "otelcol-llm": "OTELCOL_LLM_BIN",
    "jaeger": "JAEGER_BIN",
    "victoria-logs": "VICTORIA_LOGS_BIN",
    "victoria-metrics": "VICTORIA_METRICS_BIN",
}


def binaries(build: bool = False) -> dict[str, str]:
    """Paths of the Go programs (otelcol-llm, jaeger, victoria-logs, victoria-metrics) from the build cache
    (``build``: build what is missing first), and of Debian's Prometheus and Alertmanager.

    ``OTELCOL_LLM_BIN``, ``JAEGER_BIN``, ``VICTORIA_LOGS_BIN`` and ``VICTORIA_METRICS_BIN`` override them."""
    args = ["bash", str(ROOT / "scripts" / "build-go.sh")] + ([] if build else ["--paths"])
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StackError(f"{' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    paths = dict(line.split("=", 1) for line in proc.stdout.split() if "=" in line)
    out = {name: os.environ.get(var) or paths[name] for name, var in BIN_VARS.items()}
    out["prometheus"] = shutil.which("prometheus") or ""
    out["alertmanager"] = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager") or ""
    missing = [k for k, v in out.items() if not v or not os.access(v, os.X_OK)]
    if missing:
        raise StackError(f"missing binaries: {missing} (Debian: apt-get install prometheus prometheus-alertmanager)")
    return out


def collector_env(ports: dict[str, int], host: str = "127.0.0.1") -> dict[str, str]:
    """The variables collector/otelcol*.yaml read, for a Collector on ``host`` sending to this stack's Jaeger."""
    return {
        "OTELCOL_OTLP_GRPC_ENDPOINT": f"{host}:{ports['otlp_grpc']}",
        "OTELCOL_OTLP_HTTP_ENDPOINT": f"{host}:{ports['otlp_http']}",
        "OTELCOL_PROMETHEUS_ENDPOINT": f"{host}:{ports['otelcol_metrics']}",
        "OTELCOL_HEALTH_ENDPOINT": f"{host}:{ports['otelcol_health']}",
        "OTELCOL_TELEMETRY_HOST": host,
        "OTELCOL_TELEMETRY_PORT": str(ports["otelcol_telemetry"]),
        "OTELCOL_JAEGER_ENDPOINT": f"127.0.0.1:{ports['jaeger_otlp_grpc']}",
        "OTELCOL_VICTORIALOGS_ENDPOINT": f"http://127.0.0.1:{ports['victorialogs']}",
    }


def lb_backends(addresses: list[str]) -> str:
    """``OTELCOL_LB_BACKENDS`` for otelcol-lb.yaml: a YAML flow list of host:port."""
    return "[" + ", ".join(addresses) + "]"


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return 200 <= r.status < 300
    except Exception:
        return False


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes]

    def tail(self, n: int = 3000) -> str:
        self.handle.flush()
        return self.log.read_text(errors="replace")[-n:]


@dataclass
class LocalStack:
    """Starts and stops the stack. Options beyond the shipped configs exist for tests (faster timings)."""

    workdir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    otelcol_config: Path = COLLECTOR / "otelcol.yaml"
    webhook_url: str = "http://127.0.0.1:5001/alerts"
    app_target: str = "127.0.0.1:9464"  # the in-process exporter job (otel-llm-app) scrapes this
    rule_files: list[str] | None = None  # default: the shipped rules
    prometheus_global: dict[str, Any] = field(default_factory=dict)  # e.g. {"scrape_interval": "1s"}
    alertmanager_route: dict[str, Any] = field(default_factory=dict)  # e.g. {"group_wait": "1s"}
    otelcol_extra_env: dict[str, str] = field(default_factory=dict)
    gateways: int = 0  # N > 0: the Collector on the OTLP ports is otelcol-lb.yaml in front of N gateways
    gateway_config: Path = COLLECTOR / "otelcol-gateway.yaml"
    gateway_extra_env: dict[str, str] = field(default_factory=dict)  # e.g. {"OTELCOL_DECISION_WAIT": "2s"}
    prometheus: bool = True  # False: no Prometheus and Alertmanager (the load-balancing test needs neither)
    gateway_procs: list[Proc] = field(default_factory=list)
    gateway_ports: list[dict[str, int]] = field(default_factory=list)
    otelcol: Proc | None = None
    build: bool = False
    procs: list[Proc] = field(default_factory=list)
    bins: dict[str, str] = field(default_factory=dict)

    @property
    def jaeger_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['jaeger_query_http']}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['alertmanager']}"

    @property
    def otlp_grpc(self) -> str:
        return f"http://127.0.0.1:{self.ports['otlp_grpc']}"

    @property
    def otelcol_telemetry_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['otelcol_telemetry']}/metrics"

    @property
    def victorialogs_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['victorialogs']}"

    @property
    def lb_override(self) -> Path:
        """The tier's second config file: empty, or the static backend list after :meth:`set_lb_backends`."""
        return self.workdir / "otelcol-lb-backends.yaml"

    def set_lb_backends(self, addresses: list[str]) -> None:
        """Changes the tier's static backend list while it runs: rewrites its second config file and sends
        SIGHUP, on which the Collector reloads its configuration (and restarts its pipelines)."""
        assert self.otelcol is not None and self.gateways > 0, "no load-balancing tier in this stack"
        static = {"resolver": {"static": {"hostnames": addresses}}}
        doc = {"exporters": {"load_balancing/traces": static, "load_balancing/metrics": static}}
        self.lb_override.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.otelcol.popen.send_signal(signal.SIGHUP)

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        handle = log.open("ab")
        popen = subprocess.Popen(
            args,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=self.workdir,
        )
        proc = Proc(name, popen, log, handle)
        self.procs.append(proc)
        return proc

    def _wait_ready(self, proc: Proc, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise StackError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            if _ok(url):
                return
            time.sleep(0.2)
        raise StackError(f"{proc.name} not ready at {url} after {timeout:.0f}s:\n{proc.tail()}")

    def start_collector(
        self,
        name: str,
        config: Path,
        ports: dict[str, int],
        extra_env: dict[str, str] | None = None,
        extra_configs: tuple[Path, ...] = (),
    ) -> Proc:
        """One more Collector (e.g. the gateway next to the agent) sending to this stack's Jaeger."""
        env = {**collector_env({**self.ports, **ports}), **(extra_env or {})}
        args = [self.bins["otelcol-llm"], f"--config={config}", *(f"--config={c}" for c in extra_configs)]
        proc = self._spawn(name, args, env)
        self._wait_ready(proc, f"http://127.0.0.1:{ports['otelcol_health']}/")
        return proc

    def metrics_targets(self) -> list[str]:
        """Where Prometheus scrapes the Collectors' prometheus exporters: the gateways behind a tier, or the one."""
        if self.gateways:
            return [f"127.0.0.1:{g['otelcol_metrics']}" for g in self.gateway_ports]
        return [f"127.0.0.1:{self.ports['otelcol_metrics']}"]

    def _start_collectors(self) -> None:
        if not self.gateways:
            self.otelcol = self.start_collector("otelcol", self.otelcol_config, self.ports, self.otelcol_extra_env)
            return
        if not self.gateway_ports:
            taken = set(self.ports.values())
            while len(self.gateway_ports) < self.gateways:
                ports = free_ports(COLLECTOR_PORTS)
                if not taken & set(ports.values()):
                    taken |= set(ports.values())
                    self.gateway_ports.append(ports)
        for i, ports in enumerate(self.gateway_ports, 1):
            gateway = self.start_collector(f"otelcol-gateway-{i}", self.gateway_config, ports, self.gateway_extra_env)
            self.gateway_procs.append(gateway)
        self.lb_override.write_text("{}\n")
        backends = lb_backends([f"127.0.0.1:{g['otlp_grpc']}" for g in self.gateway_ports])
        env = {"OTELCOL_LB_BACKENDS": backends, **self.otelcol_extra_env}
        config = self.otelcol_config if self.otelcol_config.name == "otelcol-lb.yaml" else COLLECTOR / "otelcol-lb.yaml"
        self.otelcol = self.start_collector("otelcol-lb", config, self.ports, env, (self.lb_override,))

    def prometheus_config(self) -> dict[str, Any]:
        """collector/prometheus/prometheus.yml with loopback targets and absolute rule paths."""
        cfg = yaml.safe_load((COLLECTOR / "prometheus" / "prometheus.yml").read_text())
        cfg.setdefault("global", {}).update(self.prometheus_global)
        shipped_rules = [str(COLLECTOR / "prometheus" / r) for r in cfg.get("rule_files", [])]
        cfg["rule_files"] = self.rule_files if self.rule_files is not None else shipped_rules
        for am in cfg["alerting"]["alertmanagers"]:
            for sc in am["static_configs"]:
                sc["targets"] = [f"127.0.0.1:{self.ports['alertmanager']}"]
        # compose's gateway job: here the otelcol job scrapes the gateways (metrics_targets)
        cfg["scrape_configs"] = [j for j in cfg["scrape_configs"] if j["job_name"] != "otelcol-gateways"]
        for job in cfg["scrape_configs"]:
            for sc in job.get("static_configs", []):
                targets: list[str] = []
                for t in sc["targets"]:
                    targets += self.metrics_targets() if t.startswith("otelcol") else [self.app_target]
                sc["targets"] = targets
        return cfg  # type: ignore[no-any-return]

    def alertmanager_config(self) -> dict[str, Any]:
        """collector/alertmanager/alertmanager.yml with the webhook at ``webhook_url``."""
        cfg = yaml.safe_load((COLLECTOR / "alertmanager" / "alertmanager.yml").read_text())
        cfg["route"].update(self.alertmanager_route)
        for receiver in cfg["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = self.webhook_url
        return cfg  # type: ignore[no-any-return]

    def start(self) -> LocalStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bins = binaries(build=self.build)
        p = self.ports
        try:
            jaeger = self._spawn(
                "jaeger",
                [self.bins["jaeger"], f"--config={COLLECTOR / 'jaeger' / 'config.yaml'}"],
                {
                    "JAEGER_OTLP_GRPC": f"127.0.0.1:{p['jaeger_otlp_grpc']}",
                    "JAEGER_QUERY_HTTP": f"127.0.0.1:{p['jaeger_query_http']}",
                    "JAEGER_QUERY_GRPC": f"127.0.0.1:{p['jaeger_query_grpc']}",
                    "JAEGER_HEALTH": f"127.0.0.1:{p['jaeger_health']}",
                    "JAEGER_METRICS_PORT": str(p["jaeger_metrics"]),
                },
            )
            self._wait_ready(jaeger, f"http://127.0.0.1:{p['jaeger_health']}/status")
            self._wait_ready(jaeger, f"{self.jaeger_url}/api/services")
            vlogs = self._spawn(
                "victorialogs",
                [
                    self.bins["victoria-logs"],
                    f"-httpListenAddr=127.0.0.1:{p['victorialogs']}",
                    f"-storageDataPath={self.workdir / 'victorialogs-data'}",
                    "-retentionPeriod=7d",
                    "-loggerLevel=WARN",
                ],
            )
            self._wait_ready(vlogs, f"{self.victorialogs_url}/health")
            self._start_collectors()

            if not self.prometheus:
                return self
            am_cfg = self.workdir / "alertmanager.yml"
            am_cfg.write_text(yaml.safe_dump(self.alertmanager_config(), sort_keys=False))
            am = self._spawn(
                "alertmanager",
                [
                    self.bins["alertmanager"],
                    f"--config.file={am_cfg}",
                    f"--storage.path={self.workdir / 'alertmanager-data'}",
                    f"--web.listen-address=127.0.0.1:{p['alertmanager']}",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
            )
            self._wait_ready(am, f"{self.alertmanager_url}/-/ready")

            prom_cfg = self.workdir / "prometheus.yml"
            prom_cfg.write_text(yaml.safe_dump(self.prometheus_config(), sort_keys=False))
            prom = self._spawn(
                "prometheus",
                [
                    self.bins["prometheus"],
                    f"--config.file={prom_cfg}",
                    f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{p['prometheus']}",
                    "--enable-feature=exemplar-storage",
                    "--log.level=warn",
                ],
            )
            self._wait_ready(prom, f"{self.prometheus_url}/-/ready")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops every process this stack started (SIGTERM, then SIGKILL after 10 s)."""
        for proc in reversed(self.procs):
            if proc.popen.poll() is None:
                proc.popen.terminate()
        for proc in reversed(self.procs):
            try:
                proc.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait(timeout=10)
            proc.handle.close()
        self.procs.clear()
        self.gateway_procs.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running(**kwargs: Any) -> Iterator[LocalStack]:
    stack = LocalStack(**kwargs)
    with stack:
        yield stack


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Polls ``pred`` until it returns something truthy; raises AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--gateway", action="store_true", help="run otelcol-gateway.yaml (tail sampling)")
    parser.add_argument(
        "--gateways",
        type=int,
        default=0,
        metavar="N",
        help="run the load-balancing tier (otelcol-lb.yaml) on the OTLP ports in front of N tail-sampling gateways",
    )
    parser.add_argument("--ports", choices=("default", "free"), default="default")
    parser.add_argument("--webhook", default="http://127.0.0.1:5001/alerts", help="Alertmanager's webhook URL")
    parser.add_argument("--workdir", help="logs and data (default: a new temporary directory)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="otel-llm-stack-"))
    ports = free_ports() if args.ports == "free" else dict(DEFAULT_PORTS)
    config = COLLECTOR / ("otelcol-gateway.yaml" if args.gateway else "otelcol.yaml")
    if args.gateways > 0:
        config = COLLECTOR / "otelcol-lb.yaml"
    stack = LocalStack(
        workdir=workdir,
        ports=ports,
        otelcol_config=config,
        webhook_url=args.webhook,
        gateways=max(0, args.gateways),
        build=True,
    )
    try:
        stack.start()
    except StackError as exc:
        print(f"localstack: {exc}", file=sys.stderr)
        return 1
    print(
        f"otel-llm local stack up ({config.name}); logs and data in {workdir}\n"
        f"  OTEL_EXPORTER_OTLP_ENDPOINT={stack.otlp_grpc}  (HTTP: http://127.0.0.1:{ports['otlp_http']})\n"
        f"  Jaeger       {stack.jaeger_url}\n"
        f"  VictoriaLogs {stack.victorialogs_url}  (GenAI events; query: /select/logsql/query?query=trace_id:<id>)\n"
        f"  Prometheus   {stack.prometheus_url}\n"
        f"  Alertmanager {stack.alertmanager_url}  (webhook {args.webhook})\n"
        f"  Collector    metrics {', '.join(f'http://{t}/metrics' for t in stack.metrics_targets())}, "
        f"own metrics {stack.otelcol_telemetry_url}\n"
        + "".join(
            f"  gateway {i}    OTLP 127.0.0.1:{g['otlp_grpc']}, own metrics http://127.0.0.1:{g['otelcol_telemetry']}/metrics\n"
            for i, g in enumerate(stack.gateway_ports, 1)
        )
        + "Ctrl-C stops everything.",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(p.popen.poll() is None for p in stack.procs):
            time.sleep(1)
        dead = [p for p in stack.procs if p.popen.poll() is not None]
        for p in dead:
            print(f"localstack: {p.name} exited ({p.popen.returncode}):\n{p.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
