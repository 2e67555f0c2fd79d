"""Response headers -> rate-limit headroom and relay-reported cost. Headers themselves are never recorded."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from .. import _names as n

__all__ = ["HeaderInfo", "parse_duration", "parse_header_list", "parse_header_store", "parse_headers"]

# header name (lowercase) -> (kind, resource)
_REMAINING, _LIMIT, _RESET, _RETRY, _RELAY, _CTYPE, _CENC = range(7)
_RATE: dict[str, tuple[int, str]] = {}
for _res in ("requests", "tokens", "input-tokens", "output-tokens"):
    _r = _res.replace("-", "_")
    for _kind, _code in (("remaining", _REMAINING), ("limit", _LIMIT), ("reset", _RESET)):
        _RATE[f"x-ratelimit-{_kind}-{_res}"] = (_code, _r)
        _RATE[f"anthropic-ratelimit-{_res}-{_kind}"] = (_code, _r)
_OTHER = {
    "retry-after": _RETRY,
    "x-litellm-response-cost": _RELAY,
    "content-type": _CTYPE,
    "content-encoding": _CENC,
}
_PREFIX = n.RATE_LIMIT_PREFIX
_KIND_NAMES = ("remaining", "limit", "reset")


class _Names:
    """The names looked for, as ``str`` or as ``bytes`` (httpx's own header list): name -> what it is."""

    __slots__ = ("all", "content_encoding", "content_type", "rate", "table")

    def __init__(self, conv: Any) -> None:
        self.rate = frozenset(conv(k) for k in _RATE)
        # name -> (kind, resource, span attribute): one lookup per header found
        table: dict[Any, tuple[int, str, str]] = {
            conv(k): (kind, res, f"{_PREFIX}{_KIND_NAMES[kind]}_{res}") for k, (kind, res) in _RATE.items()
        }
        for k, kind in _OTHER.items():
            table[conv(k)] = (kind, "", "")
        self.table = table
        self.content_type = conv("content-type")
        self.content_encoding = conv("content-encoding")
        self.all = frozenset(table)


_STR = _Names(str)
_BYTES = _Names(lambda k: k.encode("ascii"))
_INF = float("inf")
_second = itemgetter(1)
_third = itemgetter(2)
_EMPTY: dict = {}


class HeaderInfo:
    """Rate-limit headroom, retry-after, relay-reported cost and content type from the response headers.

    Built from the names looked for that the response has (found in C). The values are decoded together,
    in one pass over the headers found, the first time any of them is read (``decode``); the content type
    and encoding are read on their own (a body's parser needs them before the call ends).
    """

    __slots__ = (
        "_found",
        "_names",
        "_values",
        "decoded",
        "limit",
        "rate_limited",
        "relay_cost",
        "remaining",
        "remaining_attrs",
        "reset",
        "retry_after",
    )

    def __init__(self, values: Mapping[Any, Any] | None = None, names: _Names = _STR) -> None:
        self._values: Mapping[Any, Any] = values if values is not None else {}
        self._names = names
        self._found = names.all.intersection(self._values)
        self.decoded = False
        self.rate_limited = False  # the response has rate-limit headers
        self.remaining: dict[str, float] = _EMPTY  # resource -> requests/tokens left in the window
        self.remaining_attrs: dict[str, float] = _EMPTY  # the same as span attributes
        self.limit: dict[str, float] = _EMPTY  # resource -> budget per window
        self.reset: dict[str, str] = _EMPTY  # resource -> when the window resets, as sent ("6m0s", RFC 3339, s)
        self.retry_after: float | None = None
        self.relay_cost: float | None = None
        if self._found:
            self.decode()
        else:
            self.decoded = True

    def decode(self) -> HeaderInfo:
        """Decode every value looked for (once)."""
        if self.decoded:
            return self
        self.decoded = True
        values = self._values
        table = self._names.table
        remaining: dict[str, float] = {}
        attrs: dict[str, float] = {}
        limit: dict[str, float] = {}
        reset: dict[str, str] = {}
        for name in self._found:
            kind, res, attr = table[name]
            if kind > _RELAY:
                continue  # content type or encoding: read on their own
            v = values[name]
            if type(v) is tuple:  # requests' (name as sent, value)
                v = v[1]
            if kind == _RESET:
                reset[res] = v.decode("latin-1") if type(v) is bytes else v
                continue
            try:
                num = float(v)  # float() reads bytes as well as str
            except ValueError:
                continue
            if not (num >= 0 and num != _INF):  # NaN fails ">= 0"
                continue
            if kind == _REMAINING:
                remaining[res] = num
                attrs[attr] = num
            elif kind == _LIMIT:
                limit[res] = num
            elif kind == _RETRY:
                self.retry_after = num
            else:
                self.relay_cost = num
        if remaining:
            self.remaining = remaining
            self.remaining_attrs = attrs
        if limit:
            self.limit = limit
        if reset:
            self.reset = reset
        self.rate_limited = bool(remaining or limit or reset)
        return self

    def _text(self, name: Any) -> str | None:
        if name not in self._found:
            return None
        v = self._values[name]
        if type(v) is tuple:  # requests' (name as sent, value)
            v = v[1]
        return v.decode("latin-1") if type(v) is bytes else v

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
