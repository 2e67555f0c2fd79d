"""Response headers -> rate-limit headroom and relay-reported cost. Headers themselves are never recorded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any

from .. import _names as n
from ._text import clean

__all__ = ["HeaderInfo", "parse_duration", "parse_header_list", "parse_header_store", "parse_headers"]

# header name (lowercase) -> (kind, resource)
_REMAINING, _LIMIT, _RESET = range(3)
_RATE: dict[str, tuple[int, str]] = {}
for _res in ("requests", "tokens", "input-tokens", "output-tokens"):
    _r = _res.replace("-", "_")
    for _kind, _code in (("remaining", _REMAINING), ("limit", _LIMIT), ("reset", _RESET)):
        _RATE[f"x-ratelimit-{_kind}-{_res}"] = (_code, _r)
        _RATE[f"anthropic-ratelimit-{_res}-{_kind}"] = (_code, _r)
_OTHER = ("retry-after", "x-litellm-response-cost", "content-type", "content-encoding")
_PREFIX = n.RATE_LIMIT_PREFIX
_KIND_NAMES = ("remaining", "limit", "reset")


class _Names:
    """The names looked for, as ``str`` or as ``bytes`` (httpx's own header list)."""

    __slots__ = ("all", "content_encoding", "content_type", "kinds", "misc", "rate", "relay_cost", "retry_after")

    def __init__(self, conv: Any) -> None:
        self.rate = frozenset(conv(k) for k in _RATE)
        # per kind (remaining, limit, reset): name -> (resource, span attribute)
        self.kinds = tuple(
            {conv(k): (res, f"{_PREFIX}{_KIND_NAMES[kind]}_{res}") for k, (kind, res) in _RATE.items() if kind == code}
            for code in range(3)
        )
        self.retry_after, self.relay_cost, self.content_type, self.content_encoding = (conv(k) for k in _OTHER)
        self.misc = frozenset((self.retry_after, self.relay_cost))
        self.all = self.rate | {conv(k) for k in _OTHER}


_RESOURCE_OF = {f"{_PREFIX}remaining_{res}": res for _, res in _RATE.values()}
_STR = _Names(str)
_BYTES = _Names(lambda k: k.encode("ascii"))
_INF = float("inf")
_EMPTY: dict = {}
_first = itemgetter(0)
_second = itemgetter(1)


class _Plan:
    """Where the names looked for sit in one sequence of header names, made once per sequence (a provider
    sends the same headers in the same order on every answer) and cached: an answer's headers are then read
    by position, not by a lookup of every header."""

    __slots__ = ("misc", "names", "rate_limited", "remaining", "where")

    def __init__(self, names: tuple, table: _Names) -> None:
        self.names = names
        wanted = table.all
        self.where = {name: i for i, name in enumerate(names) if name in wanted}  # the last of a repeated name
        self.rate_limited = not table.rate.isdisjoint(self.where)
        remaining = table.kinds[_REMAINING]
        self.remaining = tuple((i, remaining[name][1]) for name, i in self.where.items() if name in remaining)
        self.misc = tuple((i, name == table.retry_after) for name, i in self.where.items() if name in table.misc)


_NO_PLAN = _Plan((), _STR)
_PLANS: dict[tuple, _Plan] = {}
_MAX_PLANS = 256
_LAST: dict[int, _Plan] = {}  # number of headers -> the plan used last for that many


def _plan(names: tuple, table: _Names) -> _Plan:
    """The plan of a sequence of header names. The one used last for as many headers is checked first, by
    comparing the names: httpx's names are new ``bytes`` on every answer, and hashing them costs more."""
    count = len(names)
    plan = _LAST.get(count)
    if plan is not None and plan.names == names:
        return plan
    plan = _PLANS.get(names)
    if plan is None:
        plan = _Plan(names, table)
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[names] = plan
    _LAST[count] = plan
    return plan


class HeaderInfo:
    """Rate-limit headroom, retry-after, relay-reported cost and content type from the response headers.

    Read by position through the headers' cached plan (``_Plan``). What every call's end reads (the remaining
    budgets as span attributes, retry-after, a relay's cost) is decoded at once; budgets, reset times and the
    content type when first read. Slots, every one set by ``_fill`` (the parses below make a HeaderInfo without
    the Python ``__init__``).
    """

    __slots__ = (
        "_items",
        "_limit",
        "_names",
        "_plan",
        "_reset",
        "rate_limited",
        "relay_cost",
        "remaining_attrs",
        "retry_after",
    )

    rate_limited: bool  # the response has rate-limit headers
    remaining_attrs: dict[str, float]  # remaining budgets as span attributes
    retry_after: float | None
    relay_cost: float | None
    _limit: dict[str, float] | None
    _reset: dict[str, str] | None
    _items: Sequence[Sequence[Any]]
    _plan: _Plan
    _names: _Names

    def __init__(self, items: Sequence[Sequence[Any]] = (), plan: _Plan = _NO_PLAN, table: _Names = _STR) -> None:
        """``items``: the headers as sequences whose last element is the value (``(name, value)``, or httpx's
        ``(raw name, lowercase name, value)``), in the order ``plan`` was made for."""
        _fill(self, items, plan, table)

    def _text(self, name: Any) -> Any:
        i = self._plan.where.get(name)
        return None if i is None else _decode(self._items[i][-1])

    def _kind(self, kind: int) -> dict:
        """resource -> value of one kind of rate-limit header (budget or reset time)."""
        out: dict = {}
        items = self._items
        table = self._names.kinds[kind]
        for name, i in self._plan.where.items():
            hit = table.get(name)
            if hit is None:
                continue
            v = _decode(items[i][-1])
            if kind == _RESET:
                out[hit[0]] = v
                continue
            try:
                num = float(v)
            except ValueError:
                continue
            if num >= 0 and num != _INF:  # NaN fails ">= 0"
                out[hit[0]] = num
        return out

    @property
    def remaining(self) -> dict[str, float]:
        """resource -> requests/tokens left in the window, as the provider reports it."""
        return {_RESOURCE_OF[attr]: v for attr, v in self.remaining_attrs.items()}

    @property
    def limit(self) -> dict[str, float]:
        """resource -> budget per window, as the provider reports it."""
        if self._limit is None:
            self._limit = self._kind(_LIMIT) if self.rate_limited else {}
        return self._limit

    @property
    def reset(self) -> dict[str, str]:
        """resource -> when the window resets, as sent ("6m0s", RFC 3339, seconds)."""
        if self._reset is None:
            self._reset = self._kind(_RESET) if self.rate_limited else {}
        return self._reset

    @property
    def content_type(self) -> str:
        return self._text(self._names.content_type) or ""

    @property
    def content_encoding(self) -> str | None:
        return self._text(self._names.content_encoding)


def _fill(info: HeaderInfo, items: Sequence[Sequence[Any]], plan: _Plan, table: _Names) -> HeaderInfo:
    """``HeaderInfo.__init__``'s work, also done on an instance made without it (see the parses below)."""
    info._items = items
    info._plan = plan
    info._names = table
    info.remaining_attrs = _EMPTY
    info.retry_after = info.relay_cost = info._limit = info._reset = None
    info.rate_limited = plan.rate_limited
    if plan.rate_limited:
        attrs: dict[str, float] | None = None
        for i, attr in plan.remaining:
            try:
                num = float(items[i][-1])  # float() reads bytes as well as str
            except ValueError:
                continue
            if num >= 0 and num != _INF:  # NaN fails ">= 0"
                if attrs is None:
                    attrs = info.remaining_attrs = {}
                attrs[attr] = num
    if plan.misc:
        for i, is_retry_after in plan.misc:
            number = _number(_decode(items[i][-1]))
            if is_retry_after:
                info.retry_after = number
            else:
                info.relay_cost = number
    return info


_keys = dict.keys
_values = dict.values
_new = object.__new__  # a parse below makes its HeaderInfo without the Python __init__ (a re-entry from C)


def _decode(v: Any) -> Any:
    """A header value as text: bytes as latin-1 (always encodable); a str (aiohttp decodes with
    ``surrogateescape``, so an undecodable byte is a lone surrogate) cleaned."""
    if type(v) is bytes:
        return v.decode("latin-1")
    return clean(v) if isinstance(v, str) else v


def parse_duration(text: str) -> float | None:
    """Seconds from ``"20"``, ``"1.5"``, ``"6m0s"``, ``"1h2m3.5s"`` or ``"250ms"``; None if not a duration."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    total = 0.0
    num = ""
    i = 0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    while i < len(text):
        c = text[i]
        if c.isdigit() or c == ".":
            num += c
            i += 1
            continue
        if not num:
            return None
        if text.startswith("ms", i):
            total += float(num) / 1000.0
            i += 2
        elif c in units:
            total += float(num) * units[c]
            i += 1
        else:
            return None
        num = ""
    return None if num else total


def _number(v: str) -> float | None:
    try:
        f = float(v)
    except ValueError:
        return None
    return f if f >= 0 and f != _INF else None  # NaN fails ">= 0"


def parse_headers(items: Iterable[tuple[str, str]]) -> HeaderInfo:
    """From ``(name, value)`` pairs, names in any case."""
    pairs = tuple((k.lower(), v) for k, v in items)
    return _fill(_new(HeaderInfo), pairs, _plan(tuple(map(_first, pairs)), _STR), _STR)


def parse_header_store(store: dict[str, Any]) -> HeaderInfo:
    """From requests' ``CaseInsensitiveDict._store`` (lowercase name -> (name as sent, value)), as is. That store
    is an ``OrderedDict``: it is read through ``dict``'s own views, which walk its table rather than the ordered
    dict's linked list (both orders agree unless ``move_to_end`` ran, and names and values are read in the same
    one)."""
    return _fill(_new(HeaderInfo), tuple(_values(store)), _plan(tuple(_keys(store)), _STR), _STR)


def parse_header_list(items: Sequence[tuple[bytes, bytes, bytes]]) -> HeaderInfo:
    """From httpx's own header list, ``(raw name, lowercase name, value)`` as bytes."""
    names = tuple(map(_second, items))
    plan = _LAST.get(len(names))  # (_plan's first look, in this frame)
    if plan is None or plan.names != names:
        plan = _plan(names, _BYTES)
    return _fill(_new(HeaderInfo), items, plan, _BYTES)
