"""Client libraries are patched when the application imports them, and never imported by us.

Each case runs in a fresh interpreter (these tests' own process has every client imported already).
"""

from __future__ import annotations

import json
import subprocess
import sys

from otel_llm.fakeprovider import FakeProvider

_SETUP = """
import json, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_llm import LLMInstrumentor
exporter = InMemorySpanExporter()
tp = TracerProvider()
tp.add_span_processor(SimpleSpanProcessor(exporter))
inst = LLMInstrumentor()
inst.instrument(tracer_provider=tp, meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
# (httpx2 is left out: genai-prices, our price source, imports it for its own updater)
loaded = sorted(m for m in ("httpx", "aiohttp", "requests", "openai") if m in sys.modules)
"""


def _run(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _SETUP + code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_instrumenting_imports_no_client_library() -> None:
    out = _run("print(json.dumps({'loaded': loaded}))")
    assert out["loaded"] == []


def test_a_library_imported_after_instrument_is_patched_and_recorded(provider: FakeProvider) -> None:
    out = _run(
        f"""
import requests
patched = hasattr(requests.Session.send, "__wrapped__")
r = requests.post("{provider.url}/v1/chat/completions",
                  json={{"model": "gpt-4.1", "messages": [{{"role": "user", "content": "hi"}}]}}, timeout=30)
names = [s.name for s in exporter.get_finished_spans()]
print(json.dumps({{"loaded": loaded, "patched": patched, "status": r.status_code, "spans": names,
                   "httpx": "httpx" in sys.modules}}))
"""
    )
    assert out["loaded"] == [] and out["patched"] and out["status"] == 200
    assert out["spans"] == ["chat gpt-4.1"]
    assert not out["httpx"], "requests does not need httpx, and we did not load it"


def test_after_uninstrument_a_later_import_stays_unpatched() -> None:
    out = _run(
        """
inst.uninstrument()
import requests
print(json.dumps({"patched": hasattr(requests.Session.send, "__wrapped__")}))
"""
    )
    assert out == {"patched": False}


def test_instrument_again_after_uninstrument_patches_a_later_import_once() -> None:
    out = _run(
        """
inst.uninstrument()
inst.instrument(tracer_provider=tp)
import httpx
send = httpx.Client.send
print(json.dumps({"patched": hasattr(send, "__wrapped__"),
                  "twice": hasattr(getattr(send, "__wrapped__", None), "__wrapped__")}))
"""
    )
    assert out == {"patched": True, "twice": False}


def test_import_and_instrument_leave_opentelemetry_instrumentation_unloaded_yet_a_base_instrumentor() -> None:
    code = """
import json, subprocess, sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.metrics import MeterProvider
import otel_llm
otel_llm.instrument(tracer_provider=TracerProvider(), meter_provider=MeterProvider())
before = "opentelemetry.instrumentation.instrumentor" in sys.modules
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
print(json.dumps({"loaded": before, "is_base": isinstance(otel_llm.LLMInstrumentor(), BaseInstrumentor),
                  "instrumented": otel_llm.LLMInstrumentor().is_instrumented_by_opentelemetry}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"loaded": False, "is_base": True, "instrumented": True}
