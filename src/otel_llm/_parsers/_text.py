"""Strings from the wire made safe for attributes and metric labels.

JSON may carry ``"\\ud800"``: ``json.loads`` turns it into a lone surrogate, a ``str`` that cannot be encoded
as UTF-8, and an OTLP or Prometheus exporter then fails on the whole attribute (or export). Every string a
parser takes from a body, a header or the SDK's parsed objects goes through :func:`clean` before it can
reach an attribute or a label: a lone surrogate becomes U+FFFD, a pair split into two code points is joined
into its character. The common case (ASCII, or text that encodes) is one or two C calls, no regex.
"""

from __future__ import annotations

from typing import Any

__all__ = ["clean", "clean_deep"]


def clean(s: str) -> str:
    """``s`` itself when it encodes as UTF-8; else a copy with each lone surrogate replaced by U+FFFD."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return s


def clean_deep(value: Any) -> Any:
    """:func:`clean` over every string in nested lists, tuples and dicts (keys too); the same object when
    nothing needed cleaning (captured content: opt-in, so not on the hot path)."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        out: dict | None = None
        for k, v in value.items():
            ck = clean(k) if isinstance(k, str) else k
            cv = clean_deep(v)
            if out is None and (ck is not k or cv is not v):
                out = {}
                for k2, v2 in value.items():  # the items before this one, unchanged
                    if k2 is k:
                        break
                    out[k2] = v2
            if out is not None:
                out[ck] = cv
        return value if out is None else out
    if isinstance(value, (list, tuple)):
        items = [clean_deep(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value
