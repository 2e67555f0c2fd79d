"""URLs for telemetry (``url.full``): no credential in them, as the HTTP semantic conventions ask.

* userinfo (``user:password@``) becomes ``REDACTED:REDACTED@``;
* the value of a query parameter whose name says it carries a credential becomes ``REDACTED``; the
  parameter itself stays (``?sig=REDACTED``), so that the URL still shows its shape;
* the fragment is dropped (it never reaches the server, and OAuth's implicit flow puts tokens there).

A parameter's name is compared as the server reads it: percent-escapes decoded (the bytes as UTF-8,
invalid sequences replaced, an invalid escape left as written), ``+`` as a space, surrounding spaces
stripped, case-insensitively, and ``_`` taken for ``-`` (``api_key`` is ``api-key``). Pairs are split at
``&`` and at ``;`` (which some servers also take for a separator). No regular expression: one split of the
query and a set lookup per parameter, and the result remembered per URL (a bounded LRU cache; a URL
longer than :data:`CACHED_URL_MAX` characters is scrubbed every time instead, so that the cache's memory
stays bounded too).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

__all__ = [
    "CACHED_URL_MAX",
    "DEFAULT_SECRET_PARAMS",
    "REDACTED",
    "URL_CACHE_SIZE",
    "configure",
    "has_userinfo",
    "param_key",
    "scrub_url",
]

REDACTED = "REDACTED"

DEFAULT_SECRET_PARAMS = frozenset(
    {
        # the HTTP semantic conventions' list
        "AWSAccessKeyId",
        "Signature",
        "sig",
        "X-Goog-Signature",
        # AWS SigV4 and Google V4 presigned URLs
        "X-Amz-Signature",
        "X-Amz-Security-Token",
        "X-Amz-Credential",
        "X-Goog-Credential",
        # API keys (Gemini ?key=, Azure api-key, Anthropic x-api-key, API management gateways)
        "key",
        "api-key",
        "apikey",
        "x-api-key",
        "subscription-key",
        "Ocp-Apim-Subscription-Key",
        # OAuth and other tokens, passwords
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "session_token",
        "security_token",
        "private_token",
        "code",
        "client_secret",
        "client_assertion",
        "assertion",
        "secret",
        "password",
        "passwd",
    }
)
"""Query parameters whose value never reaches telemetry (compared as :func:`param_key` says); the
``redact_query_params`` option adds to them."""

URL_CACHE_SIZE = 1024
"""Distinct URLs remembered (least recently used dropped first)."""

CACHED_URL_MAX = 2048
"""Longest host plus path and query (characters) whose scrubbed form is remembered."""


def param_key(name: str) -> str:
    """A parameter name as compared: stripped, lowercase, ``_`` as ``-``."""
    return name.strip().lower().replace("_", "-")


_DEFAULT_KEYS = frozenset(param_key(name) for name in DEFAULT_SECRET_PARAMS)
_keys = _DEFAULT_KEYS  # the defaults plus the configured names


def configure(extra: Iterable[str] = ()) -> None:
    """Redact these parameter names too (besides the defaults); forgets every URL scrubbed before."""
    global _keys
    keys = _DEFAULT_KEYS | frozenset(param_key(name) for name in extra)
    if keys != _keys:
        _keys = keys
        _cached.cache_clear()


_HEX = frozenset("0123456789abcdefABCDEF")


def _decoded(raw: str) -> str:
    """A query parameter's name as the server reads it (see the module docstring)."""
    raw = raw.replace("+", " ")
    if "%" not in raw:
        return raw
    pieces = raw.split("%")
    out = bytearray(pieces[0].encode("utf-8", "replace"))
    for piece in pieces[1:]:
        if len(piece) >= 2 and piece[0] in _HEX and piece[1] in _HEX:
            out.append(int(piece[:2], 16))
            out += piece[2:].encode("utf-8", "replace")
        else:  # not an escape: kept as written
            out.append(0x25)
            out += piece.encode("utf-8", "replace")
    return out.decode("utf-8", "replace")


def _redacted(pair: str, keys: frozenset[str]) -> str | None:
    """``name=REDACTED`` if the pair's name carries a credential and its value is not that already; else None."""
    eq = pair.find("=")
    if eq < 0:
        return None  # a name alone: no value to hide
    name = pair[:eq]
    if param_key(_decoded(name)) not in keys or pair[eq + 1 :] == REDACTED:
        return None
    return f"{name}={REDACTED}"


def _scrub_query(query: str, keys: frozenset[str]) -> str:
    pieces = query.split("&")
    changed = False
    for i, piece in enumerate(pieces):
        if ";" in piece:
            subs = piece.split(";")
            for j, sub in enumerate(subs):
                new = _redacted(sub, keys)
                if new is not None:
                    subs[j] = new
                    changed = True
            pieces[i] = ";".join(subs)
        else:
            new = _redacted(piece, keys)
            if new is not None:
                pieces[i] = new
                changed = True
    return "&".join(pieces) if changed else query


def _scrub(scheme: str, host: str, port: int | None, path: str, userinfo: bool) -> str:
    if ":" in host and not host.startswith("["):  # an IPv6 address
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    if userinfo:
        netloc = f"{REDACTED}:{REDACTED}@{netloc}"
    h = path.find("#")
    if h >= 0:
        path = path[:h]
    q = path.find("?")
    if q >= 0:
        path = path[: q + 1] + _scrub_query(path[q + 1 :], _keys)
    return f"{scheme}://{netloc}{path}"


_cached = functools.lru_cache(maxsize=URL_CACHE_SIZE)(_scrub)


def scrub_url(scheme: str, host: str, port: int | None, path: str, userinfo: bool = False) -> str:
    """The URL for telemetry of a request to ``scheme://host:port`` + ``path`` (path and query); ``userinfo``:
    the URL carried a user name or password. Remembered per URL (see the module docstring)."""
    if len(path) + len(host) > CACHED_URL_MAX:
        return _scrub(scheme, host, port, path, userinfo)
    return _cached(scheme, host, port, path, userinfo)


def has_userinfo(url: str) -> bool:
    """The absolute URL names a user (``scheme://user:password@host/...``)."""
    start = url.find("://")
    start = 0 if start < 0 else start + 3
    end = len(url)
    for sep in "/?#":
        k = url.find(sep, start, end)
        if k >= 0:
            end = k
    return url.find("@", start, end) >= 0


# the cache's functools interface, as on the lru_cache-wrapped function this replaces
scrub_url.cache_info = _cached.cache_info  # type: ignore[attr-defined]
scrub_url.cache_clear = _cached.cache_clear  # type: ignore[attr-defined]
