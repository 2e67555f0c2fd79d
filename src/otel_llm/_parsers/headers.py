"""Response headers -> rate-limit headroom and relay-reported cost. Headers themselves are never recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from .. import _names as n

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
_second = itemgetter(1)
_third = itemgetter(2)
_EMPTY: dict = {}


class HeaderInfo:
    """Rate-limit headroom, retry-after, relay-reported cost and content type from the response headers.

    Built from the names looked for that the response has (found in C). What every call's end reads (the
    remaining budgets as span attributes, retry-after, a relay's cost) is decoded at once; budgets and reset
    times (read on a failed call's span and by the gauges, at most once a second) when first read. The
    fields a response rarely has keep their class defaults.
    """

    rate_limited = False  # the response has rate-limit headers
    remaining_attrs: dict[str, float] = _EMPTY  # remaining budgets as span attributes
    retry_after: float | None = None
    relay_cost: float | None = None
    _limit: dict[str, float] | None = None
    _reset: dict[str, str] | None = None

    def __init__(self, values: Mapping[Any, Any] | None = None, names: _Names = _STR) -> None:
        if values is None:
            values = {}
        self._values = values
        self._names = names
        found = self._found = names.all.intersection(values)
        if not found:
            return
        if not found.isdisjoint(names.rate):
            self.rate_limited = True
            attrs: dict[str, float] = {}
            table = names.kinds[_REMAINING]
            for name in found.intersection(table):
                v = values[name]
                if type(v) is tuple:  # requests' (name as sent, value)
                    v = v[1]
                try:
                    num = float(v)  # float() reads bytes as well as str
                except ValueError:
                    continue
                if num >= 0 and num != _INF:  # NaN fails ">= 0"
                    attrs[table[name][1]] = num
            if attrs:
                self.remaining_attrs = attrs
        if not found.isdisjoint(names.misc):
            if names.retry_after in found:
                self.retry_after = _number(self._text(names.retry_after))
            if names.relay_cost in found:
                self.relay_cost = _number(self._text(names.relay_cost))

    def _text(self, name: Any) -> Any:
        if name not in self._found:
            return None
        v = self._values[name]
        if type(v) is tuple:  # requests' (name as sent, value)
            v = v[1]
        return v.decode("latin-1") if type(v) is bytes else v

    def _kind(self, kind: int) -> dict:
        """resource -> value of one kind of rate-limit header (budget or reset time)."""
        out: dict = {}
        values = self._values
        table = self._names.kinds[kind]
        for name in self._found.intersection(table):
            res = table[name][0]
            v = values[name]
            if type(v) is tuple:  # requests' (name as sent, value)
                v = v[1]
            if kind == _RESET:
                out[res] = v.decode("latin-1") if type(v) is bytes else v
                continue
            try:
                num = float(v)  # float() reads bytes as well as str
            except ValueError:
                continue
            if num >= 0 and num != _INF:  # NaN fails ">= 0"
                out[res] = num
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
    return HeaderInfo({k.lower(): v for k, v in items})


def parse_header_store(store: Mapping[str, tuple[str, str]]) -> HeaderInfo:
    """From requests' ``CaseInsensitiveDict._store`` (lowercase name -> (name as sent, value)), as is."""
    return HeaderInfo(store, _STR)


def parse_header_list(items: Sequence[tuple[bytes, bytes, bytes]]) -> HeaderInfo:
    """From httpx's own header list, ``(raw name, lowercase name, value)`` as bytes, indexed in C."""
    return HeaderInfo(dict(zip(map(_second, items), map(_third, items), strict=True)), _BYTES)
