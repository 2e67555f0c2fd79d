"""The OTLP receiver opened to other hosts the way collector/README.md shows: bearer-token authentication
(otelcol-llm carries the bearertokenauth extension). The README's block is validated as written, and run on
loopback: a request without the token is refused, one with it is accepted."""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.test_stack_e2e import COLLECTOR, _bins, ls

pytestmark = pytest.mark.timeout(120)


def _readme_block() -> dict:
    text = (COLLECTOR / "README.md").read_text()
    start = text.index("To accept OTLP from other hosts")
    block = text[
        text.index("```yaml\n", start) + len("```yaml\n") : text.index("```", text.index("```yaml\n", start) + 7)
    ]
    return yaml.safe_load(block)  # type: ignore[no-any-return]


def _with_auth(tmp_path: Path, tls: bool) -> Path:
    cfg = yaml.safe_load((COLLECTOR / "otelcol.yaml").read_text())
    block = _readme_block()
    cfg.setdefault("extensions", {}).update(block["extensions"])
    grpc = block["receivers"]["otlp"]["protocols"]["grpc"]
    for proto in ("grpc", "http"):
        settings = cfg["receivers"]["otlp"]["protocols"][proto]
        settings["auth"] = grpc["auth"]
        if tls:
            settings["tls"] = grpc["tls"]
    cfg["service"]["extensions"] = block["service"]["extensions"]
    path = tmp_path / "otelcol-auth.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_readme_auth_block_validates_in_otelcol_llm(tmp_path: Path) -> None:
    bins = _bins()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}, **ls.collector_env(ls.free_ports())}
    env["OTLP_TOKEN"] = "s3cret-token"
    proc = subprocess.run(
        [bins["otelcol-llm"], "validate", f"--config={_with_auth(tmp_path, tls=True)}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _post(url: str, token: str | None) -> int:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=b'{"resourceSpans": []}', headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_otlp_with_the_readme_auth_refuses_requests_without_the_token(tmp_path: Path) -> None:
    bins = _bins()
    ports = ls.free_ports()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("OTELCOL_")}, **ls.collector_env(ports)}
    env["OTLP_TOKEN"] = "s3cret-token"
    log = (tmp_path / "otelcol.log").open("wb")
    proc = subprocess.Popen(
        [bins["otelcol-llm"], f"--config={_with_auth(tmp_path, tls=False)}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        ls.wait_for(lambda: ls._ok(f"http://127.0.0.1:{ports['otelcol_health']}/"), 60, "otelcol-llm health")
        url = f"http://127.0.0.1:{ports['otlp_http']}/v1/traces"
        assert _post(url, None) == 401
        assert _post(url, "wrong-token") == 401
        assert _post(url, "s3cret-token") == 200
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
