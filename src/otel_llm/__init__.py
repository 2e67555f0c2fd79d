"""otel-llm: OpenTelemetry traces and metrics for every LLM call of a Python process.

One line before the first LLM call::

    import otel_llm
    otel_llm.instrument()

or no code at all: ``opentelemetry-instrument python app.py`` (the ``otel_llm`` entry point).
Calls through the ``openai`` SDK and raw ``httpx``, ``httpx2``, ``aiohttp`` and ``requests``
requests to LLM endpoints each become one ``CLIENT`` span (``chat gpt-4.1``) and GenAI metric
points: duration, token usage, time to first chunk, time per output chunk, cost in USD.
"""

from __future__ import annotations

from typing import Any

from ._scope import Scope, scope
from .config import Config, ConfigError
from .instrumentor import LLMInstrumentor
from .pricing import PriceConfigError
from .spend import Spend
from .version import __version__

__all__ = [
    "Config",
    "ConfigError",
    "LLMInstrumentor",
    "PriceConfigError",
    "Scope",
    "Spend",
    "__version__",
    "instrument",
    "scope",
    "spend",
    "uninstrument",
]


def instrument(**options: Any) -> LLMInstrumentor:
    """Set up SDK providers from ``OTEL_*`` env vars if none are set, then instrument. Idempotent.

    Options: the standard instrumentor arguments (``tracer_provider``, ``meter_provider``, ``logger_provider``,
    ``skip_dep_check``, ``raise_exception_on_conflict``) and those listed in ``otel_llm.config.OPTIONS``.
    An invalid option, exporter name or price file raises here, before any call is made.
    """
    from ._setup import setup_logger_provider, setup_providers
    from .config import INSTRUMENTOR_ARGS

    config = Config.load({k: v for k, v in options.items() if k not in INSTRUMENTOR_ARGS})
    # events are the only log records otel-llm writes: a logger provider is set up only when they are on
    setup_logger_provider(install=False)  # OTEL_LOGS_EXPORTER is checked whatever the mode
    instrumentor = LLMInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        return instrumentor
    if options.get("tracer_provider") is None or options.get("meter_provider") is None:
        setup_providers()
    if config.emit_event and options.get("logger_provider") is None:
        setup_logger_provider()
    instrumentor.instrument(**options)
    return instrumentor


def uninstrument() -> None:
    """Remove every patch; the original functions are restored exactly."""
    LLMInstrumentor().uninstrument()


def spend(tenant: str | None = None, feature: str | None = None) -> Spend:
    """Calls, tokens and USD cost per provider and model since start (or the last reset), in-process; with
    ``tenant`` and/or ``feature``, of the calls made inside scopes (or under baggage) naming them only."""
    from .spend import LEDGER

    return LEDGER.snapshot(tenant=tenant, feature=feature)


for _name in __all__:
    _obj = globals().get(_name)
    if _name != "__version__" and hasattr(_obj, "__module__"):
        try:
            _obj.__module__ = "otel_llm"
        except (AttributeError, TypeError):
            pass
