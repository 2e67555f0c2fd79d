"""``LLMInstrumentor``: the flat list of patches, applied and removed. Nothing else happens here.

A client library is patched when the application imports it (at once if it already has), never
imported by us: an application that never uses ``aiohttp`` does not load it, and the openai 3.x SDK,
which checks on each call whether the older ``httpx`` is loaded, does not find it loaded by us.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
import types
from collections.abc import Collection
from typing import Any

from wrapt import register_post_import_hook, wrap_function_wrapper

from ._patches import DEFERRED, TARGETS
from ._patches._common import CO_ASYNC, CO_COROUTINE
from .config import INSTRUMENTOR_ARGS, Config
from .package import _instruments

__all__ = ["LLMInstrumentor"]

log = logging.getLogger("otel_llm")

_HOOKED: set[str] = set()


def _on_import(module: Any) -> None:
    """A client library was imported after ``instrument()``: patch it if instrumentation is still on."""
    try:
        inst = LLMInstrumentor()  # the base class makes one instance per class
        if inst.recorder is not None:
            inst._patch(module.__name__.partition(".")[0])
    except Exception:
        log.debug("otel_llm: patching %s on import failed", getattr(module, "__name__", module), exc_info=True)


def _install_plain(owner: Any, name: str, wrapper: Any) -> bool:
    """Patch a plain synchronous function or method with a plain function that calls ``wrapper(wrapped,
    instance, args, kwargs)`` as wrapt would. These run on every LLM call and HTTP request of the process, and
    a wrapt ``FunctionWrapper`` costs several thousand instructions a call on its own (a bound wrapper made per
    attribute access, then its dispatch); a function costs a bound method. A wrapper with an ``exact`` attribute
    (``exact(original)``: a function with the original's own signature, or None when the original is not the one
    it was written for) is installed as that function. ``__wrapped__`` (and so
    ``inspect.signature``, and uninstrument) still reach the original. A coroutine method gets an ``async def``
    (``_install_coroutine``). Anything else (an async generator, a module-level coroutine function, a
    classmethod, a descriptor another library put there) is left to wrapt: False."""
    original = owner.__dict__.get(name) if isinstance(owner, (type, types.ModuleType)) else None
    if type(original) is not types.FunctionType:
        return False
    exact = getattr(wrapper, "exact", None)  # a layer written for this original's own signature, if it is that one
    patched = exact(original) if exact is not None and isinstance(owner, type) else None
    if patched is not None:
        functools.update_wrapper(patched, original)
        setattr(owner, name, patched)
        return True
    flags = original.__code__.co_flags & CO_ASYNC
    if flags:
        return flags == CO_COROUTINE and _install_coroutine(owner, name, original, wrapper)
    get = original.__get__
    passes = getattr(wrapper, "passes", None)  # (args, kwargs) -> True: not ours, the original alone, at once
    if passes is not None and isinstance(owner, type):
        inner = getattr(wrapper, "after_passes", wrapper)  # the wrapper without its own copy of that check

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            if passes(args, kwargs):
                return original(self, *args, **kwargs)
            return inner(get(self), self, args, kwargs)

    else:

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            return wrapper(get(self), self, args, kwargs)

    def function(*args: Any, **kwargs: Any) -> Any:
        return wrapper(original, None, args, kwargs)

    patched = method if isinstance(owner, type) else function
    functools.update_wrapper(patched, original)
    setattr(owner, name, patched)
    return True


def _install_coroutine(owner: Any, name: str, original: Any, wrapper: Any) -> bool:
    """``_install_plain`` for a coroutine method (``async def``): an ``async def`` that awaits ``wrapper(wrapped,
    instance, args, kwargs)``, so ``inspect.iscoroutinefunction`` still answers True and the caller awaits what
    it always awaited. One more coroutine frame costs less than wrapt's bound wrapper and dispatch (counted:
    ~4,000 against ~7,000 instructions a call). A module-level coroutine function is left to wrapt."""
    if not isinstance(owner, type):
        return False
    get = original.__get__

    async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await wrapper(get(self), self, args, kwargs)

    functools.update_wrapper(method, original)
    setattr(owner, name, method)
    return True


class LLMInstrumentor:
    """Instruments the openai SDK and raw httpx, httpx2, aiohttp and requests calls to LLM endpoints.

    ``instrument(tracer_provider=..., meter_provider=..., logger_provider=..., **options)``; options are those
    of ``otel_llm.config.OPTIONS``. A client library that is not installed is skipped.

    An OpenTelemetry ``BaseInstrumentor`` (``opentelemetry-instrument`` loads it through the
    ``opentelemetry_instrumentor`` entry point), with the base class's behaviour: one instance per
    process, ``instrument()`` and ``uninstrument()`` once each, a warning when repeated. It is registered
    as a virtual subclass rather than inheriting, so that ``import otel_llm`` does not import
    ``opentelemetry.instrumentation`` (its dependency checker and semantic-convention helpers take
    longer to import than all of otel-llm); ``isinstance(LLMInstrumentor(), BaseInstrumentor)`` holds
    as soon as that module is imported. There is no dependency check to run: every client library is
    optional (``package._instruments`` is empty).
    """

    _instance: LLMInstrumentor | None = None
    _is_instrumented_by_opentelemetry = False

    def __new__(cls, *args: Any, **kwargs: Any) -> LLMInstrumentor:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __init__(self) -> None:
        if not hasattr(self, "_patched"):
            self._patched: list[tuple[Any, str]] = []
            self.recorder: Any = None

    @property
    def is_instrumented_by_opentelemetry(self) -> bool:
        return self._is_instrumented_by_opentelemetry

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def instrument(self, **kwargs: Any) -> None:
        if self._is_instrumented_by_opentelemetry:
            log.warning("Attempting to instrument while already instrumented")
            return None
        kwargs.pop("skip_dep_check", None)  # the base class's options: nothing to check (see the class doc)
        kwargs.pop("raise_exception_on_conflict", None)
        self._instrument(**kwargs)
        self._is_instrumented_by_opentelemetry = True
        return None

    def uninstrument(self, **kwargs: Any) -> None:
        if self._is_instrumented_by_opentelemetry:
            self._uninstrument(**kwargs)
            self._is_instrumented_by_opentelemetry = False
            return None
        log.warning("Attempting to uninstrument while already uninstrumented")
        return None

    def _instrument(self, **kwargs: Any) -> None:
        from .pricing import PriceBook
        from .recorder import Recorder
        from .spend import LEDGER

        tracer_provider = kwargs.pop("tracer_provider", None)
        meter_provider = kwargs.pop("meter_provider", None)
        logger_provider = kwargs.pop("logger_provider", None)
        for name in INSTRUMENTOR_ARGS:  # what BaseInstrumentor itself takes (it pops them when it sees them)
            kwargs.pop(name, None)
        config = Config.load(kwargs)
        prices = PriceBook.load(config.prices)
        self.recorder = Recorder(
            config, tracer_provider, meter_provider, prices=prices, ledger=LEDGER, logger_provider=logger_provider
        )
        for root in dict.fromkeys(name.partition(".")[0] for name, _, _ in TARGETS):
            if root in sys.modules:
                self._patch(root)
            elif root not in _HOOKED:  # one hook per library and process; it patches for whoever is on then
                _HOOKED.add(root)
                register_post_import_hook(_on_import, root)

    def _patch(self, root: str) -> None:
        """Apply the patches of one client library (its top-level package is imported)."""
        recorder = self.recorder
        for module_name, attr, factory in TARGETS:
            if module_name.partition(".")[0] != root:
                continue
            if module_name in DEFERRED and module_name not in sys.modules:
                if module_name not in _HOOKED:  # patched when the application imports it
                    _HOOKED.add(module_name)
                    register_post_import_hook(_on_import, module_name)
                continue
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue  # not this version's layout: nothing to patch
            owner_name, _, method = attr.rpartition(".")
            owner = getattr(module, owner_name, None) if owner_name else module  # a method, or a module function
            if owner is None or not hasattr(owner, method):
                log.debug("otel_llm: %s.%s not found; skipped", module_name, attr)
                continue
            if any(o is owner and m == method for o, m in self._patched):
                continue
            wrapper = factory(recorder, sys.modules[root])
            if not _install_plain(owner, method, wrapper):
                wrap_function_wrapper(module, attr, wrapper)
            self._patched.append((owner, method))

    def _uninstrument(self, **kwargs: Any) -> None:
        while self._patched:
            owner, method = self._patched.pop()
            current = owner.__dict__.get(method)
            wrapped = getattr(current, "__wrapped__", None)
            if wrapped is not None:
                setattr(owner, method, wrapped)
        self.recorder = None


_BASE_MODULE = "opentelemetry.instrumentation.instrumentor"


def _register_as_instrumentor(module: Any) -> None:
    try:
        module.BaseInstrumentor.register(LLMInstrumentor)
    except Exception:
        log.debug("otel_llm: registering LLMInstrumentor as a BaseInstrumentor failed", exc_info=True)


if _BASE_MODULE in sys.modules:
    _register_as_instrumentor(sys.modules[_BASE_MODULE])
else:
    register_post_import_hook(_register_as_instrumentor, _BASE_MODULE)
