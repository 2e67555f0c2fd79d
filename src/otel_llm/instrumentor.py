"""``LLMInstrumentor``: the flat list of patches, applied and removed. Nothing else happens here."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from wrapt import wrap_function_wrapper

from ._patches import TARGETS
from .config import Config
from .package import _instruments

__all__ = ["LLMInstrumentor"]

log = logging.getLogger("otel_llm")


class LLMInstrumentor(BaseInstrumentor):
    """Instruments the openai SDK and raw httpx, httpx2, aiohttp and requests calls to LLM endpoints.

    ``instrument(tracer_provider=..., meter_provider=..., **options)``; options are those of
    ``otel_llm.config.OPTIONS``. A client library that is not installed is skipped.
    """

    def __init__(self) -> None:
        super().__init__()
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[Any, str]] = []
            self.recorder: Any = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        from .pricing import PriceBook
        from .recorder import Recorder
        from .spend import LEDGER

        tracer_provider = kwargs.pop("tracer_provider", None)
        meter_provider = kwargs.pop("meter_provider", None)
        kwargs.pop("skip_dep_check", None)
        config = Config.load(kwargs)
        prices = PriceBook.load(config.prices)
        self.recorder = recorder = Recorder(config, tracer_provider, meter_provider, prices=prices, ledger=LEDGER)
        for module_name, attr, factory in TARGETS:
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue  # not installed: nothing to patch
            owner_name, _, method = attr.rpartition(".")
            owner = getattr(module, owner_name, None)
            if owner is None or not hasattr(owner, method):
                log.debug("otel_llm: %s.%s not found; skipped", module_name, attr)
                continue
            root = importlib.import_module(module_name.partition(".")[0])
            wrap_function_wrapper(module, attr, factory(recorder, root))
            self._patched.append((owner, method))

    def _uninstrument(self, **kwargs: Any) -> None:
        while self._patched:
            owner, method = self._patched.pop()
            current = owner.__dict__.get(method)
            wrapped = getattr(current, "__wrapped__", None)
            if wrapped is not None:
                setattr(owner, method, wrapped)
        self.recorder = None
