"""Options from keyword arguments and environment variables, validated once into a frozen ``Config``."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Config", "ConfigError", "INSTRUMENTOR_ARGS", "OPTIONS"]


class ConfigError(ValueError):
    """An option or environment variable has a value otel-llm cannot use."""


# content capture mode -> (content on the span, content on the event); "true"/"1" are the older spelling of SPAN_ONLY
_CONTENT_MODES = {
    "": (False, False),
    "no_content": (False, False),
    "false": (False, False),
    "0": (False, False),
    "span_only": (True, False),
    "span_and_event": (True, True),
    "event_only": (False, True),
    "true": (True, False),
    "1": (True, False),
}
# Hosts that reject ``stream_options`` (their streams already carry usage or they refuse the key).
_NO_STREAM_OPTIONS_HOSTS = frozenset({"api.mistral.ai"})

OPTIONS = {
    "capture_content": "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "emit_event": "OTEL_INSTRUMENTATION_GENAI_EMIT_EVENT",
    "content_max_length": "OTEL_LLM_CONTENT_MAX_LENGTH",
    "include_usage": "OTEL_LLM_STREAM_INCLUDE_USAGE",
    "include_usage_skip_hosts": "OTEL_LLM_STREAM_INCLUDE_USAGE_SKIP_HOSTS",
    "provider_map": "OTEL_LLM_PROVIDER_MAP",
    "http": "OTEL_LLM_HTTP",
    "extra_paths": "OTEL_LLM_EXTRA_PATHS",
    "prices": "OTEL_LLM_PRICES",
    "max_models": "OTEL_LLM_MAX_MODELS",
    "max_servers": "OTEL_LLM_MAX_SERVERS",
    "redact_query_params": "OTEL_LLM_REDACT_QUERY_PARAMS",
    "chunk_timing": "OTEL_LLM_CHUNK_TIMING",
    "rate_limit_interval": "OTEL_LLM_RATE_LIMIT_INTERVAL",
    "scope_labels": "OTEL_LLM_SCOPE_LABELS",
    "max_scope_values": "OTEL_LLM_MAX_SCOPE_VALUES",
    "scope_baggage": "OTEL_LLM_SCOPE_BAGGAGE",
    "token_metrics": "OTEL_LLM_TOKEN_METRICS",
}
"""Every option of ``instrument()`` and the environment variable that sets it when the option is not given."""

INSTRUMENTOR_ARGS = frozenset(
    {"tracer_provider", "meter_provider", "logger_provider", "skip_dep_check", "raise_exception_on_conflict"}
)
"""The standard keyword arguments of OpenTelemetry instrumentors (the providers, and what ``BaseInstrumentor``
itself takes): accepted by ``instrument()`` beside ``OPTIONS``, never taken for a misspelt option."""


def _bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    v = str(raw).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected true or false")


def _int(name: str, raw: Any, minimum: int) -> int:
    try:
        v = int(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if v < minimum:
        raise ConfigError(f"{name}={raw!r}: must be at least {minimum}")
    return v


def _seconds(name: str, raw: Any) -> float:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={raw!r}: expected a number of seconds") from None
    if not v >= 0 or v == float("inf"):  # NaN fails ">= 0"
        raise ConfigError(f"{name}={raw!r}: must be a finite number of seconds >= 0")
    return v


def _pairs(name: str, raw: Any) -> dict[str, str]:
    """``"a=b,c=d"`` or a mapping -> dict."""
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for item in str(raw).split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.rpartition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{name}: entry {item!r} is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


_NOT_IN_A_NAME = frozenset("&;=#?")


def _param_names(name: str, raw: Any) -> frozenset[str]:
    """``"a,b"`` or an iterable of names -> the names as ``url.full`` compares them (``_urls.param_key``)."""
    from ._urls import param_key

    if isinstance(raw, str):
        items: list[Any] = [item for item in raw.split(",") if item.strip()]
    elif isinstance(raw, Iterable) and not isinstance(raw, (bytes, Mapping)):
        items = list(raw)
    else:
        raise ConfigError(f"{name}={raw!r}: expected comma-separated query parameter names or a list of them")
    out = set()
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{name}: {item!r} is not a query parameter name (a non-empty string)")
        bad = sorted(c for c in set(item.strip()) if c in _NOT_IN_A_NAME or not c.isprintable())
        if bad:
            raise ConfigError(f"{name}: {item!r} is not a query parameter name (it contains {''.join(bad)!r})")
        out.add(param_key(item))
    return frozenset(out)


# scope keys that never become metric labels: one value per person or conversation is unbounded by nature
_NEVER_LABELS = frozenset({"user", "conversation"})
_DEFAULT_BAGGAGE = {"tenant": "tenant", "feature": "feature", "user": "user", "conversation": "conversation"}


def _names(name: str, raw: Any) -> list[str]:
    """``"a,b"`` or an iterable of strings -> the stripped, non-empty names, in order."""
    if isinstance(raw, str):
        items: list[Any] = raw.split(",")
    elif isinstance(raw, Iterable) and not isinstance(raw, (bytes, Mapping)):
        items = list(raw)
    else:
        raise ConfigError(f"{name}={raw!r}: expected comma-separated names or a list of them")
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"{name}: {item!r} is not a name (a string)")
        if item.strip():
            out.append(item.strip())
    return out


def _scope_key(name: str, key: str) -> str:
    """A scope key usable as a metric label (``otel_llm.scope.<key>``, Prometheus ``otel_llm_scope_<key>``)."""
    if not key.isidentifier() or not key.isascii() or key.startswith("_"):
        raise ConfigError(f"{name}: {key!r} is not a scope key (letters, digits and _, not first)")
    return key


def _scope_labels(name: str, raw: Any) -> tuple[str, ...]:
    keys = [_scope_key(name, k) for k in _names(name, raw)]
    never = sorted(set(keys) & _NEVER_LABELS)
    if never:
        raise ConfigError(f"{name}: {', '.join(never)} never become metric labels (one value per person or talk)")
    return tuple(dict.fromkeys(keys))


def _scope_baggage(name: str, raw: Any) -> Mapping[str, str]:
    """Scope key -> W3C baggage entry name: ``"tenant=org,feature"`` (a bare key reads the entry of its own name)
    or a mapping; ``"none"`` turns baggage off."""
    if isinstance(raw, str) and raw.strip().lower() in ("none", "off", "false"):
        return {}
    if isinstance(raw, Mapping):
        pairs = {str(k).strip(): str(v).strip() for k, v in raw.items()}
    else:
        pairs = {}
        for item in _names(name, raw):
            key, sep, entry = item.partition("=")
            pairs[key.strip()] = entry.strip() if sep else key.strip()
    for key, entry in pairs.items():
        _scope_key(name, key)
        if not entry:
            raise ConfigError(f"{name}: scope key {key!r} has no baggage entry name")
    return pairs


def _capture(name: str, raw: Any) -> tuple[bool, bool]:
    """(content on spans, content on events) of a capture mode."""
    if isinstance(raw, bool):
        return (raw, False)
    v = str(raw).strip().lower()
    if v not in _CONTENT_MODES:
        raise ConfigError(f"{name}={raw!r}: expected NO_CONTENT, SPAN_ONLY, EVENT_ONLY or SPAN_AND_EVENT")
    return _CONTENT_MODES[v]


def _token_metrics(name: str, raw: Any) -> str:
    from ._names import TOKEN_METRICS_FORMS

    v = str(raw).strip().lower()
    if v not in TOKEN_METRICS_FORMS:
        raise ConfigError(
            f"{name}={raw!r}: expected {', '.join(TOKEN_METRICS_FORMS[:-1])} or {TOKEN_METRICS_FORMS[-1]}"
        )
    return v


@dataclass(frozen=True, slots=True)
class Config:
    """``capture_content`` is True when any content is recorded (on spans, events or both): the parsers then
    read messages. ``emit_event``: one ``gen_ai.client.inference.operation.details`` log record per call,
    on by default exactly in the modes that put content on events (as util-genai decides)."""

    capture_content: bool = False
    content_on_span: bool = False
    content_on_event: bool = False
    emit_event: bool = False
    content_max_length: int = 16384
    include_usage: bool = True
    include_usage_skip_hosts: frozenset[str] = _NO_STREAM_OPTIONS_HOSTS
    provider_map: Mapping[str, str] = field(default_factory=dict)
    http: bool = True
    extra_paths: Mapping[str, str] = field(default_factory=dict)
    prices: Any = None  # path or mapping, loaded by pricing.PriceBook
    max_models: int = 200
    # distinct (server.address, server.port) pairs on metric labels; further servers are "_OTHER" there
    max_servers: int = 256
    # query parameters whose value url.full hides, besides the defaults (_urls.DEFAULT_SECRET_PARAMS)
    redact_query_params: frozenset[str] = frozenset()
    chunk_timing: bool = True  # one time-per-output-chunk point per chunk of a stream (the conventions ask for it)
    rate_limit_interval: float = 1.0  # seconds between two sets of one rate-limit gauge series (a 429's: always)
    # the keys of otel_llm.scope(...) (and of baggage) that label the spend-related metrics, each bounded to
    # max_scope_values distinct values (then "_OTHER"); user and conversation never do
    scope_labels: tuple[str, ...] = ("tenant", "feature")
    max_scope_values: int = 200
    # scope key -> the W3C baggage entry that sets it when no scope entered in code does
    scope_baggage: Mapping[str, str] = field(default_factory=lambda: dict(_DEFAULT_BAGGAGE))
    # token metrics: the gen_ai.client.token.usage histogram, the GenAI repo's gen_ai.client.inference.usage.*
    # counters by gen_ai.token.modality, or both (_names.TOKEN_METRICS_FORMS)
    token_metrics: str = "histogram"

    @classmethod
    def load(cls, options: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Options win over environment variables; an unknown option or bad value raises ``ConfigError``."""
        options = dict(options or {})
        env = os.environ if env is None else env
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
        raw: dict[str, Any] = {}
        for opt, var in OPTIONS.items():
            if opt in options and options[opt] is not None:
                raw[opt] = (opt, options[opt])
            elif env.get(var, "").strip():
                raw[opt] = (var, env[var])
        kwargs: dict[str, Any] = {}
        for opt, (name, value) in raw.items():
            if opt == "capture_content":
                on_span, on_event = _capture(name, value)
                kwargs["content_on_span"] = on_span
                kwargs["content_on_event"] = on_event
                kwargs[opt] = on_span or on_event
            elif opt in ("include_usage", "http", "chunk_timing", "emit_event"):
                kwargs[opt] = _bool(name, value)
            elif opt in ("content_max_length", "max_models", "max_servers", "max_scope_values"):
                kwargs[opt] = _int(name, value, 1)
            elif opt == "include_usage_skip_hosts":
                items = value.split(",") if isinstance(value, str) else list(value)
                kwargs[opt] = frozenset(h.strip().lower() for h in items if h.strip())
            elif opt in ("provider_map", "extra_paths"):
                kwargs[opt] = _pairs(name, value)
            elif opt == "rate_limit_interval":
                kwargs[opt] = _seconds(name, value)
            elif opt == "redact_query_params":
                kwargs[opt] = _param_names(name, value)
            elif opt == "prices":
                kwargs[opt] = value
            elif opt == "scope_labels":
                kwargs[opt] = _scope_labels(name, value)
            elif opt == "scope_baggage":
                kwargs[opt] = _scope_baggage(name, value)
            elif opt == "token_metrics":
                kwargs[opt] = _token_metrics(name, value)
        if "emit_event" not in kwargs:
            kwargs["emit_event"] = kwargs.get("content_on_event", False)
        return cls(**kwargs)
