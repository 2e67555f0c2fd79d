"""SDK tracer, meter and logger providers from the standard ``OTEL_*`` environment variables.

Used by ``otel_llm.instrument()`` only when the application has not set global providers itself
(with ``opentelemetry-instrument`` the distro's configurator does this instead).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace

from .config import ConfigError

__all__ = ["setup_logger_provider", "setup_providers", "needs_setup"]

log = logging.getLogger("otel_llm")

_TRACE_EXPORTERS = ("otlp", "console", "none")
_METRIC_EXPORTERS = ("otlp", "prometheus", "console", "none")
_LOG_EXPORTERS = ("otlp", "console", "none")
_PROTOCOLS = ("grpc", "http/protobuf")


def _names(env: Mapping[str, str], var: str, allowed: tuple[str, ...]) -> list[str]:
    raw = env.get(var, "").strip() or "otlp"
    names = [x.strip().lower() for x in raw.split(",") if x.strip()]
    for name in names:
        if name not in allowed:
            raise ConfigError(f"{var}={raw!r}: unknown exporter {name!r}; expected one of {', '.join(allowed)}")
    if "none" in names:
        return []
    return names


def _protocol(env: Mapping[str, str], signal: str) -> str:
    var = f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"
    raw = env.get(var) or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
    value = raw.strip().lower()
    if value not in _PROTOCOLS:
        raise ConfigError(f"{var} / OTEL_EXPORTER_OTLP_PROTOCOL={raw!r}: expected grpc or http/protobuf")
    return value


def needs_setup() -> tuple[bool, bool]:
    """(tracing, metrics): whether the global providers are still the API's no-op/proxy ones."""
    tp = trace.get_tracer_provider()
    mp = metrics.get_meter_provider()
    return type(tp).__name__ in ("ProxyTracerProvider", "NoOpTracerProvider"), type(mp).__name__ in (
        "_ProxyMeterProvider",
        "NoOpMeterProvider",
    )


def _otlp_span_exporter(protocol: str) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # type: ignore[assignment]
    return OTLPSpanExporter()


def _otlp_log_exporter(protocol: str) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    else:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter  # type: ignore[assignment]
    return OTLPLogExporter()


def _otlp_metric_exporter(protocol: str) -> Any:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )
    return OTLPMetricExporter()


def prometheus_reader(env: Mapping[str, str]) -> Any:
    """A Prometheus reader with its HTTP endpoint; a taken port is one warning, not a failure."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import start_http_server

    host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST", "").strip() or "localhost"
    raw_port = env.get("OTEL_EXPORTER_PROMETHEUS_PORT", "").strip() or "9464"
    try:
        port = int(raw_port)
    except ValueError:
        raise ConfigError(f"OTEL_EXPORTER_PROMETHEUS_PORT={raw_port!r}: expected a port number") from None
    reader = PrometheusMetricReader()
    try:
        start_http_server(port=port, addr=host)
    except OSError as exc:
        log.warning(
            "otel_llm: cannot serve Prometheus metrics on %s:%s (%s); this process's metrics are collected but not "
            "served. Worker processes of one server (gunicorn, uvicorn --workers) cannot share a Prometheus port: "
            "export to a Collector with OTEL_METRICS_EXPORTER=otlp instead",
            host,
            port,
            exc,
        )
    else:
        _refuse_after_fork(host, port)
    return reader


def _refuse_after_fork(host: str, port: int) -> None:
    """A process forked after the Prometheus endpoint started (gunicorn ``--preload``, or ``opentelemetry-instrument
    gunicorn``) has the reader but not the server thread, and the parent's server answers with the parent's
    metrics only: say so once in each such child instead of losing its metrics without a word."""
    if not hasattr(os, "register_at_fork"):
        return

    def forked() -> None:
        log.error(
            "otel_llm: process %s was forked from the one serving Prometheus metrics on %s:%s (a pre-fork server "
            "such as gunicorn); that endpoint stays with the parent and never shows this process's calls. Export "
            "with OTEL_METRICS_EXPORTER=otlp to a Collector for servers with several worker processes",
            os.getpid(),
            host,
            port,
        )

    os.register_at_fork(after_in_child=forked)


def setup_providers(env: Mapping[str, str] | None = None) -> tuple[Any, Any]:
    """Validate the exporter settings, then install SDK providers where none are set. Returns them."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    env = os.environ if env is None else env
    traces = _names(env, "OTEL_TRACES_EXPORTER", _TRACE_EXPORTERS)
    metric_names = _names(env, "OTEL_METRICS_EXPORTER", _METRIC_EXPORTERS)
    trace_protocol = _protocol(env, "TRACES")
    metric_protocol = _protocol(env, "METRICS")
    want_traces, want_metrics = needs_setup()
    resource = Resource.create()
    tracer_provider = meter_provider = None
    if want_traces:
        tracer_provider = TracerProvider(resource=resource)
        for name in traces:
            exporter = _otlp_span_exporter(trace_protocol) if name == "otlp" else ConsoleSpanExporter()
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
    if want_metrics:
        readers: list[Any] = []
        for name in metric_names:
            if name == "prometheus":
                readers.append(prometheus_reader(env))
            elif name == "otlp":
                readers.append(PeriodicExportingMetricReader(_otlp_metric_exporter(metric_protocol)))
            else:
                readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def setup_logger_provider(env: Mapping[str, str] | None = None, install: bool = True) -> Any:
    """Validate ``OTEL_LOGS_EXPORTER`` (default ``otlp``, as the distro sets it; ``console``; ``none``) and the
    logs protocol; with ``install``, put an SDK logger provider with those exporters in place of the API's
    no-op/proxy one (a provider the application set is kept). Returns the provider made, or None.

    Only the GenAI events go through it: no handler is added to Python's ``logging``."""
    from opentelemetry import _logs

    env = os.environ if env is None else env
    names = _names(env, "OTEL_LOGS_EXPORTER", _LOG_EXPORTERS)
    protocol = _protocol(env, "LOGS")
    if not install:
        return None
    current = _logs.get_logger_provider()
    if type(current).__name__ not in ("ProxyLoggerProvider", "NoOpLoggerProvider"):
        return None
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
    from opentelemetry.sdk.resources import Resource

    provider = LoggerProvider(resource=Resource.create())
    for name in names:
        exporter = _otlp_log_exporter(protocol) if name == "otlp" else ConsoleLogRecordExporter()
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    _logs.set_logger_provider(provider)
    return provider
