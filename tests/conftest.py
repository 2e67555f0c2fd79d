"""Shared fixtures: a real local provider on loopback, and telemetry read back through in-memory exporters."""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_llm import LLMInstrumentor
from otel_llm.fakeprovider import FakeProvider
from otel_llm.spend import LEDGER

# The price cache (see otel_llm.pricing._DiskMemory) of this test session, for it and its subprocesses:
# never the user's own ~/.cache. Removed when the session's process exits.
_CACHE_DIR = tempfile.mkdtemp(prefix="otel-llm-test-cache-")
os.environ["OTEL_LLM_CACHE_DIR"] = _CACHE_DIR
atexit.register(shutil.rmtree, _CACHE_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as p:
        yield p


@dataclass
class Telemetry:
    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader
    instrumentor: LLMInstrumentor
    tracer_provider: TracerProvider
    log_exporter: InMemoryLogRecordExporter

    def events(self) -> list[Any]:
        """The log records otel-llm emitted (GenAI events), oldest first."""
        return [
            r
            for r in self.log_exporter.get_finished_logs()
            if r.instrumentation_scope is not None and r.instrumentation_scope.name == "otel_llm"
        ]

    def spans(self) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.instrumentation_scope.name == "otel_llm"]

    def span(self) -> ReadableSpan:
        spans = self.spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        out: list[Any] = []
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        out.extend(metric.data.data_points)
        return out

    def point(self, name: str, **attrs: Any) -> Any:
        """The single data point of ``name`` whose attributes include ``attrs`` (dots spelled as __)."""
        want = {k.replace("__", "."): v for k, v in attrs.items()}
        hits = [p for p in self.points(name) if all(p.attributes.get(k) == v for k, v in want.items())]
        assert len(hits) == 1, (name, want, [dict(p.attributes) for p in self.points(name)])
        return hits[0]

    def in_flight(self) -> int:
        """Calls in flight now, over every series of the up-down counter (0 once every call has ended)."""
        return int(sum(p.value for p in self.points("otel_llm.client.active_operations")))

    def wait_gc(self) -> None:
        for _ in range(3):
            gc.collect()


@pytest.fixture
def instrument() -> Iterator[Callable[..., Telemetry]]:
    made: list[Telemetry] = []

    def make(**options: Any) -> Telemetry:
        exporter = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        reader = InMemoryMetricReader()
        mp = MeterProvider(metric_readers=[reader])
        logs = InMemoryLogRecordExporter()
        if "logger_provider" not in options:
            lp = LoggerProvider()
            lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
            options["logger_provider"] = lp
        inst = LLMInstrumentor()
        inst.instrument(tracer_provider=tp, meter_provider=mp, **options)
        t = Telemetry(exporter, reader, inst, tp, logs)
        made.append(t)
        return t

    LEDGER.reset()
    yield make
    for t in made:
        t.instrumentor.uninstrument()
    LEDGER.reset()


@pytest.fixture
def telemetry(instrument: Callable[..., Telemetry]) -> Telemetry:
    return instrument()
