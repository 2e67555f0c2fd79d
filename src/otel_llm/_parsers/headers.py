"""Response headers -> rate-limit headroom and relay-reported cost. Headers themselves are never recorded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

__all__ = ["HeaderInfo", "parse_duration", "parse_header_list", "parse_headers"]

# header name (lowercase) -> (kind, resource). Kinds: 0 remaining, 1 limit, 2 reset, 3 retry-after,
# 4 relay cost, 5 content type, 6 content encoding. One dict lookup per response header, nothing else for the others.
_REMAINING, _LIMIT, _RESET, _RETRY_AFTER, _RELAY_COST, _CONTENT_TYPE, _CONTENT_ENCODING = range(7)
_HEADERS: dict[str, tuple[int, str]] = {
    "retry-after": (_RETRY_AFTER, ""),
    "x-litellm-response-cost": (_RELAY_COST, ""),
    "content-type": (_CONTENT_TYPE, ""),
    "content-encoding": (_CONTENT_ENCODING, ""),
}
for _res in ("requests", "tokens", "input-tokens", "output-tokens"):
    _r = _res.replace("-", "_")
    for _kind, _code in (("remaining", _REMAINING), ("limit", _LIMIT), ("reset", _RESET)):
        _HEADERS[f"x-ratelimit-{_kind}-{_res}"] = (_code, _r)
        _HEADERS[f"anthropic-ratelimit-{_res}-{_kind}"] = (_code, _r)
_HEADERS_BYTES: dict[bytes, tuple[int, str]] = {k.encode("ascii"): v for k, v in _HEADERS.items()}
_NAMES_BYTES = frozenset(_HEADERS_BYTES)
_INF = float("inf")
_second = itemgetter(1)
_third = itemgetter(2)


@dataclass(slots=True)
class HeaderInfo:
    remaining: dict[str, float] = field(default_factory=dict)  # resource -> remaining
    limit: dict[str, float] = field(default_factory=dict)
    reset: dict[str, str] = field(default_factory=dict)  # resource -> as sent ("6m0s", RFC 3339, seconds)
    retry_after: float | None = None
    relay_cost: float | None = None
    content_type: str = ""
    content_encoding: str | None = None


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


def _apply(out: HeaderInfo, hit: tuple[int, str], value: str) -> None:
    kind, res = hit
    if kind == _RESET:
        out.reset[res] = value
    elif kind == _CONTENT_TYPE:
        out.content_type = value
    elif kind == _CONTENT_ENCODING:
        out.content_encoding = value
    else:
        num = _number(value)
        if kind == _REMAINING:
            if num is not None:
                out.remaining[res] = num
        elif kind == _LIMIT:
            if num is not None:
                out.limit[res] = num
        elif kind == _RETRY_AFTER:
            out.retry_after = num
        else:
            out.relay_cost = num


def parse_headers(items: Iterable[tuple[str, str]]) -> HeaderInfo:
    """One pass over the response headers (names in any case)."""
    out = HeaderInfo()
    table = _HEADERS
    for key, value in items:
        hit = table.get(key) or table.get(key.lower())
        if hit is not None:
            _apply(out, hit, value)
    return out


def parse_header_list(items: Sequence[tuple[bytes, bytes, bytes]], encoding: str = "latin-1") -> HeaderInfo:
    """The same from httpx's own header list, ``(raw name, lowercase name, value)`` as bytes. The list is
    indexed and matched against the names looked for in C; only the values of those are decoded."""
    out = HeaderInfo()
    by_name = dict(zip(map(_second, items), map(_third, items), strict=True))
    table = _HEADERS_BYTES
    for key in _NAMES_BYTES.intersection(by_name):
        kind, res = table[key]
        value = by_name[key].decode(encoding, "replace")
        if kind == _REMAINING:
            num = _number(value)
            if num is not None:
                out.remaining[res] = num
        elif kind == _CONTENT_TYPE:
            out.content_type = value
        else:
            _apply(out, (kind, res), value)
    return out
