"""The examples, ``opentelemetry-instrument`` and the CLI, each run for real in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from otel_llm.fakeprovider import FakeProvider

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent


def _env(provider: FakeProvider, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OPENAI_BASE_URL=provider.url + "/v1",
        OPENAI_API_KEY="sk-example-SECRET",
        PROVIDER_URL=provider.url,
        OTEL_TRACES_EXPORTER="console",
        OTEL_METRICS_EXPORTER="none",
        OTEL_SERVICE_NAME="otel-llm-test",
        **extra,
    )
    return env


def _spans(stdout: str) -> list[dict]:
    """ConsoleSpanExporter prints one JSON object per span."""
    spans, depth, start = [], 0, None
    for i, ch in enumerate(stdout):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                try:
                    obj = json.loads(stdout[start : i + 1])
                except ValueError:
                    continue
                if isinstance(obj, dict) and "context" in obj and "attributes" in obj:
                    spans.append(obj)
    return spans


@pytest.mark.parametrize(
    ("script", "count"),
    [
        ("chat_sdk.py", 2),
        ("streaming.py", 1),
        ("raw_requests.py", 2),
        ("raw_httpx.py", 3),
        ("raw_aiohttp.py", 4),
        ("router_fallback.py", 3),
    ],
)
def test_each_example_runs_against_the_local_provider_and_produces_its_spans(
    provider: FakeProvider, script: str, count: int
) -> None:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=EXAMPLES,
        env=_env(provider),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    spans = [s for s in _spans(proc.stdout) if "gen_ai.operation.name" in s["attributes"]]
    assert len(spans) == count, proc.stdout[-2000:]
    for span in spans:
        a = span["attributes"]
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert span["status"]["status_code"] == "UNSET"
    assert "SECRET" not in proc.stdout + proc.stderr


def test_opentelemetry_instrument_loads_us_with_no_code_change(provider: FakeProvider) -> None:
    proc = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(ROOT / "tests" / "apps" / "auto_app.py")],
        env=_env(provider),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    spans = [s for s in _spans(proc.stdout) if s["attributes"].get("gen_ai.provider.name") == "openai"]
    assert len(spans) == 1 and spans[0]["name"] == "chat gpt-4.1"
    assert spans[0]["resource"]["attributes"]["service.name"] == "otel-llm-test"


def test_our_entry_point_can_be_disabled_on_its_own(provider: FakeProvider) -> None:
    proc = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(ROOT / "tests" / "apps" / "auto_app.py")],
        env=_env(provider, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="otel_llm"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not [s for s in _spans(proc.stdout) if "gen_ai.operation.name" in s["attributes"]]


def test_an_unknown_exporter_fails_at_instrument_time_with_a_clear_message() -> None:
    code = "import otel_llm; otel_llm.instrument()"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "OTEL_METRICS_EXPORTER": "carrier-pigeon"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "OTEL_METRICS_EXPORTER='carrier-pigeon': unknown exporter 'carrier-pigeon'" in proc.stderr


def test_the_demo_runs_to_completion_and_prints_the_table(tmp_path: Path) -> None:
    page = tmp_path / "demo.html"
    proc = subprocess.run(
        [str(BIN / "otel-llm"), "demo", "--duration", "3", "--rate", "6", "--metrics-port", "0", "--html", str(page)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for model in ("gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2"):
        assert model in proc.stdout
    for column in ("requests", "error %", "p50", "p95", "TTFC p50", "peak", "cached tok", "cost", "share"):
        assert column in proc.stdout
    for column in ("in $", "out $", "cache $", "list $", "saved"):
        assert column in proc.stdout
    assert "relay savings $" in proc.stdout  # the demo's relay price table bills OpenAI and Anthropic below list
    assert "logical calls" in proc.stdout and page.stat().st_size > 2000
    text = page.read_text()
    for section in ("Cost by token type", "Relay savings (list price vs billed)", "Calls in flight over time"):
        assert section in text


def test_the_demo_report_has_the_cost_split_the_peak_concurrency_and_its_relay_savings() -> None:
    from otel_llm.demo import BEDROCK_MODEL, LOCAL_MODEL, RELAY_PRICES, DemoOptions, run_demo

    result = run_demo(DemoOptions(duration=3, rate=8, error_rate=0.0, metrics_port=0))
    rows = {r.model: r for r in result.report.rows}
    models = {"gpt-4.1", "claude-sonnet-4.5", "gemini-2.5-flash", "deepseek-v3.2", LOCAL_MODEL, BEDROCK_MODEL}
    assert set(rows) == models
    assert rows[BEDROCK_MODEL].provider == "aws.bedrock"  # called through boto3's bedrock-runtime client
    # a local model on Ollama's native API has no list price: unpriced, never $0
    local = rows.pop(LOCAL_MODEL)
    assert local.provider == "ollama" and local.cost_usd == 0 and local.unpriced == local.requests - local.errors > 0
    assert result.report.cells(local)[11] == "unpriced" and local.input_tokens > 0 and local.output_tokens > 0
    driven = result.report.in_flight_over_time
    for model, row in rows.items():
        # the split adds up to the cost; every model was in flight at some point, and back to zero at the end
        assert row.cost_usd > 0 and sum(row.cost_by_type.values()) == pytest.approx(row.cost_usd, rel=1e-9)
        assert set(row.cost_by_type) >= {"input", "output"}
        assert row.peak_in_flight is not None and row.peak_in_flight >= 1
        assert max(v for _, v in driven[model]) == row.peak_in_flight and driven[model][-1][1] == 0
    for model, provider in (("gpt-4.1", "openai"), ("claude-sonnet-4.5", "anthropic")):
        row, factor = rows[model], RELAY_PRICES["providers"][provider]["multiplier"]
        assert row.relay_billed_usd == pytest.approx(row.cost_usd, rel=1e-9)  # every call billed by the relay
        assert row.relay_billed_usd == pytest.approx(factor * row.list_cost_usd, rel=1e-9)
        assert row.savings_usd == pytest.approx((1 - factor) * row.list_cost_usd, rel=1e-9)
    for model in ("gemini-2.5-flash", "deepseek-v3.2", BEDROCK_MODEL):  # at list price: no savings, not zero savings
        assert rows[model].savings_usd is None and result.report.cells(rows[model])[-2] == "-"
    assert result.report.total_savings == pytest.approx(
        rows["gpt-4.1"].savings_usd + rows["claude-sonnet-4.5"].savings_usd
    )


def test_the_report_says_clearly_when_prometheus_is_unreachable() -> None:
    proc = subprocess.run(
        [str(BIN / "otel-llm"), "report", "--prometheus", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "cannot reach Prometheus at http://127.0.0.1:9" in proc.stderr


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_html_report_renders_in_headless_chromium_without_console_errors(tmp_path: Path) -> None:
    from otel_llm.report import ModelRow, Report, render_html

    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (scripts/test.sh installs it)")
        pytest.skip("chromium not installed")
    rows = [
        ModelRow(
            "gpt-4.1",
            "openai",
            10,
            1,
            0.5,
            1.2,
            2.0,
            0.3,
            0.6,
            100,
            200,
            50,
            0.01,
            cost_by_type={"input": 0.002, "output": 0.0075, "cache_read": 0.0005},
            list_cost_usd=0.04,
            relay_billed_usd=0.01,
            peak_in_flight=3,
        ),
        ModelRow("gemini-2.5-flash", "gcp.gemini", 5, 0, 0.4, 0.9, 1.0, 0.2, 0.3, 80, 90, 0, 0.002),
    ]
    spend = {"gpt-4.1": [(1.0e9, 0.004), (1.0e9 + 60, 0.006)]}
    in_flight = {"gpt-4.1": [(1.0e9, 0.0), (1.0e9 + 30, 3.0), (1.0e9 + 60, 0.0)]}
    report = Report(rows, {"429": 1}, spend, in_flight, source="test")
    page = tmp_path / "r.html"
    page.write_text(render_html(report))
    shot = tmp_path / "r.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=False
    )
    assert dom.returncode == 0 and "<svg" in dom.stdout and "gpt-4.1" in dom.stdout
    for text in ("Cost by token type", "List price against billed", "Calls in flight over time", "$0.0300"):
        assert text in dom.stdout, text  # $0.0300: gpt-4.1's savings; gemini's list price and savings are "-"
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console_errors == []
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1200,1400", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
