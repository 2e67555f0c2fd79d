"""Response headers -> rate-limit headroom and relay-reported cost. Headers themselves are never recorded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["HeaderInfo", "parse_headers", "parse_duration"]

# header name (lowercase) -> (kind, resource); kind is remaining | limit | reset
_RATE_HEADERS: dict[str, tuple[str, str]] = {}
for _res in ("requests", "tokens", "input-tokens", "output-tokens"):
    _r = _res.replace("-", "_")
    for _kind in ("remaining", "limit", "reset"):
        _RATE_HEADERS[f"x-ratelimit-{_kind}-{_res}"] = (_kind, _r)
        _RATE_HEADERS[f"anthropic-ratelimit-{_res}-{_kind}"] = (_kind, _r)


@dataclass(slots=True)
class HeaderInfo:
    remaining: dict[str, float] = field(default_factory=dict)  # resource -> remaining
    limit: dict[str, float] = field(default_factory=dict)
    reset: dict[str, str] = field(default_factory=dict)  # resource -> as sent ("6m0s", RFC 3339, seconds)
    retry_after: float | None = None
    relay_cost: float | None = None
    content_type: str = ""


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
    return f if f >= 0 and f == f else None


def parse_headers(items: Iterable[tuple[str, str]]) -> HeaderInfo:
    """One pass over the response headers (any case)."""
    out = HeaderInfo()
    for key, value in items:
        k = key.lower()
        c = k[0] if k else ""
        if c == "x" or c == "a":
            hit = _RATE_HEADERS.get(k)
            if hit is not None:
                kind, res = hit
                if kind == "reset":
                    out.reset[res] = value
                else:
                    num = _number(value)
                    if num is not None:
                        (out.remaining if kind == "remaining" else out.limit)[res] = num
            elif k == "x-litellm-response-cost":
                out.relay_cost = _number(value)
        elif k == "retry-after":
            out.retry_after = _number(value)
        elif k == "content-type":
            out.content_type = value
    return out
