"""Attribution scopes: who a call is for (tenant, feature, user, conversation), carried by contextvars.

``with otel_llm.scope(tenant="acme", feature="search"):`` (or ``@otel_llm.scope(...)`` on a function, sync or
async) puts a frame in a ``ContextVar``: threads started with a copied context and asyncio tasks see it, nested
scopes merge (the inner value of a key wins, the outer keys stay). The recorder reads the frame once per call
(``current()``, one ``ContextVar.get``); with no frame it looks at the W3C baggage entries of the option
``scope_baggage`` instead (``from_baggage``), so an upstream gateway can tag the calls of every service
behind it. A scope entered in code wins over baggage: baggage fills only the keys the code left out, read
when the outermost scope is entered.

Every LLM span and GenAI event inside carries the frame's values: ``user`` as ``user.id``, ``conversation`` as
``gen_ai.conversation.id``, any other key ``k`` as ``otel_llm.scope.<k>``. The keys of the option
``scope_labels`` (default tenant, feature) also label the spend-related metrics, bounded per recorder (see
``Recorder._scope_dims``).

Roll-up: the span that was current when a scope was entered (if it is recording) gets the inclusive totals
of the calls finished inside (``otel_llm.rollup.*``), set as each call finishes, under a lock. A nested scope
entered under another span has its own totals; one entered under the same span shares its outer scope's.
A call that finishes after that span ended is counted in metrics and spend only.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any, TypeVar

from opentelemetry import baggage as _baggage
from opentelemetry import trace
from opentelemetry.context import get_current

from . import _names as n
from ._parsers._text import clean

__all__ = ["BAGGAGE_KEY", "MAX_VALUE_LENGTH", "Rollup", "Scope", "configure", "current", "from_baggage", "scope"]

MAX_VALUE_LENGTH = 256
"""A scope value longer than this is cut to it (attributes and labels stay small)."""

_MAX_BAGGAGE_FRAMES = 1024  # distinct baggage value sets whose frames are kept (then the cache starts over)

F = TypeVar("F", bound=Callable[..., Any])


def attribute_name(key: str) -> str:
    """The span and event attribute a scope key lands under."""
    return n.SCOPE_CONVENTION_NAMES.get(key) or n.SCOPE_PREFIX + key


class Rollup:
    """Inclusive totals of the calls finished inside a scope, kept on the span current when it was entered."""

    __slots__ = ("calls", "cost", "errors", "input", "lock", "output", "span", "unpriced")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.lock = threading.Lock()
        self.calls = self.unpriced = self.errors = self.input = self.output = 0
        self.cost = 0.0

    def add(self, error: bool, cost: float | None, tin: int, tout: int) -> None:
        """One call finished: add it, and set the totals on the span while it records (under the lock, so
        that the last totals set are the largest)."""
        with self.lock:
            self.calls += 1
            if error:
                self.errors += 1
            if cost is not None:
                self.cost += cost
            elif not error:
                self.unpriced += 1
            self.input += tin
            self.output += tout
            span = self.span
            if span.is_recording():
                span.set_attributes(
                    {
                        n.ROLLUP_CALLS: self.calls,
                        n.ROLLUP_UNPRICED_CALLS: self.unpriced,
                        n.ROLLUP_ERRORS: self.errors,
                        n.ROLLUP_INPUT_TOKENS: self.input,
                        n.ROLLUP_OUTPUT_TOKENS: self.output,
                        n.ROLLUP_COST: self.cost,
                    }
                )


class _Frame:
    """The scope values in force (outer ones merged in), their span attributes, the roll-ups to add calls to
    (innermost first, one per distinct span) and, per recorder, their bounded metric dimensions."""

    __slots__ = ("dims", "rollups", "span_attrs", "values")

    def __init__(self, values: dict[str, str], rollups: tuple[Rollup, ...]) -> None:
        self.values = values
        self.span_attrs = {attribute_name(k): v for k, v in values.items()}
        self.rollups = rollups
        self.dims: Any = None  # (the recorder that computed them, its dimensions): one attribute, set at once


_CURRENT: ContextVar[_Frame | None] = ContextVar("otel_llm.scope", default=None)
current = _CURRENT.get

# (scope key, baggage entry name) pairs, as the option scope_baggage says (set by the recorder)
_BAGGAGE: tuple[tuple[str, str], ...] = (
    ("tenant", "tenant"),
    ("feature", "feature"),
    ("user", "user"),
    ("conversation", "conversation"),
)
BAGGAGE_KEY = getattr(_baggage, "_BAGGAGE_KEY", None)  # where the context holds its baggage (None: unknown)
_baggage_frames: dict[tuple, _Frame] = {}


def configure(pairs: dict[str, str] | Any) -> None:
    """Which baggage entries scope calls (scope key -> entry name); called by the recorder."""
    global _BAGGAGE
    _BAGGAGE = tuple((str(k), str(v)) for k, v in dict(pairs).items())
    _baggage_frames.clear()


def _value(raw: Any) -> str | None:
    """A scope value as a string (None: left out), cleaned of lone surrogates and cut to MAX_VALUE_LENGTH."""
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else str(raw)
    if len(text) > MAX_VALUE_LENGTH:
        text = text[:MAX_VALUE_LENGTH]
    return clean(text)


def _baggage_entries() -> Any:
    """The current context's baggage mapping (empty or None when there is none): one dict lookup."""
    if BAGGAGE_KEY is not None:
        return get_current().get(BAGGAGE_KEY)
    return _baggage.get_all()


def _baggage_values() -> dict[str, str]:
    bag = _baggage_entries()
    if not bag or not _BAGGAGE:
        return {}
    out = {}
    for key, entry in _BAGGAGE:
        v = _value(bag.get(entry))
        if v:
            out[key] = v
    return out


def from_baggage() -> _Frame | None:
    """The frame of the current baggage entries (no roll-up), or None when none of them is set. Made once per
    distinct set of values (bounded cache)."""
    bag = _baggage_entries()
    if not bag or not _BAGGAGE:
        return None
    raw = tuple(bag.get(entry) for _, entry in _BAGGAGE)
    frame = _baggage_frames.get(raw)
    if frame is None:
        values = {}
        for (key, _), v in zip(_BAGGAGE, raw, strict=True):
            text = _value(v)
            if text:
                values[key] = text
        if not values:
            return None
        if len(_baggage_frames) >= _MAX_BAGGAGE_FRAMES:
            _baggage_frames.clear()
        frame = _baggage_frames[raw] = _Frame(values, ())
    return frame


def _enter(values: dict[str, str]) -> Token:
    parent = _CURRENT.get()
    if parent is None:
        merged = {**_baggage_values(), **values}  # code wins over baggage
        outer: tuple[Rollup, ...] = ()
    else:
        merged = {**parent.values, **values}  # the inner value of a key wins
        outer = parent.rollups
    span = trace.get_current_span()
    if outer and outer[0].span is span:
        rollups = outer  # the same span: one set of totals
    elif span.is_recording():
        rollups = (Rollup(span), *outer)
    else:
        rollups = outer
    return _CURRENT.set(_Frame(merged, rollups))


def _exit(token: Token) -> None:
    try:
        _CURRENT.reset(token)
    except ValueError:  # left in another context than it was entered in: restore what it replaced
        _CURRENT.set(token.old_value if token.old_value is not Token.MISSING else None)


class Scope:
    """``otel_llm.scope(...)``: a context manager (``with`` and ``async with``) and a decorator."""

    __slots__ = ("_tokens", "values")

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self._tokens: list[Token] = []

    def __enter__(self) -> Scope:
        self._tokens.append(_enter(self.values))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._tokens:
            _exit(self._tokens.pop())

    async def __aenter__(self) -> Scope:
        return self.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)

    def __call__(self, func: F) -> F:
        values = self.values
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                token = _enter(values)
                try:
                    return await func(*args, **kwargs)
                finally:
                    _exit(token)

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            token = _enter(values)
            try:
                return func(*args, **kwargs)
            finally:
                _exit(token)

        return run  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"otel_llm.scope({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"


def scope(
    tenant: str | None = None,
    feature: str | None = None,
    user: str | None = None,
    conversation: str | None = None,
    **more: Any,
) -> Scope:
    """Attribute the LLM calls made inside to a tenant, feature, user, conversation and any more keys.

    ``with otel_llm.scope(tenant="acme", feature="search"):`` or ``@otel_llm.scope(feature="summarise")`` on a
    function (sync or async). Values are strings (others are converted with ``str``; ``None`` leaves a key
    out), cut to :data:`MAX_VALUE_LENGTH` characters. Spans and GenAI events get ``user.id``,
    ``gen_ai.conversation.id`` and ``otel_llm.scope.<key>``; the keys of the option ``scope_labels`` (default
    tenant, feature) label the spend-related metrics (bounded, then ``_OTHER``); the span current when the
    scope is entered gets the roll-up totals ``otel_llm.rollup.*`` of the calls inside.
    """
    values: dict[str, str] = {}
    for key, raw in (("tenant", tenant), ("feature", feature), ("user", user), ("conversation", conversation)):
        v = _value(raw)
        if v is not None:
            values[key] = v
    for key, raw in more.items():
        v = _value(raw)
        if v is not None:
            values[clean(key)[:MAX_VALUE_LENGTH]] = v
    return Scope(values)
