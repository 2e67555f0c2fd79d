"""``error.type``: stable and low-cardinality across client libraries and SDK versions."""

from __future__ import annotations

import asyncio

__all__ = ["error_type_of"]

# Class names (anywhere in the MRO) that mean the same thing in openai, anthropic, httpx, httpx2,
# requests, aiohttp and the standard library. Checked by name so that no client library is imported.
_TIMEOUT = frozenset(
    {
        "APITimeoutError",
        "TimeoutException",
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "TimeoutError",
        "ServerTimeoutError",
        "SocketTimeoutError",
    }
)
_CONNECTION = frozenset(
    {
        "APIConnectionError",
        "ConnectError",
        "ConnectionError",
        "TransportError",
        "NetworkError",
        "ReadError",
        "RemoteProtocolError",
        "ClientConnectionError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ChunkedEncodingError",
        "ProtocolError",
        "IncompleteRead",
        "ClientOSError",
    }
)
_by_type: dict[type, str | None] = {}


def _classify(cls: type) -> str | None:
    if issubclass(cls, asyncio.CancelledError):
        return "cancelled"
    names = [c.__name__ for c in cls.__mro__]
    for name in names:
        if name in _TIMEOUT:
            return "timeout"
    for name in names:
        if name in _CONNECTION:
            return "connection_error"
    return None


def error_type_of(exc: BaseException) -> str:
    """``"429"`` / ``"insufficient_quota"`` for HTTP status errors, ``timeout``, ``connection_error``,
    ``cancelled``, else the exception's qualified class name (builtins unqualified)."""
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None) or getattr(response, "status", None)
    if isinstance(status, int) and 400 <= status <= 599:
        code = getattr(exc, "code", None)
        if status == 429 and code == "insufficient_quota":
            return "insufficient_quota"
        return str(status)
    cls = type(exc)
    try:
        kind = _by_type[cls]
    except KeyError:
        kind = _by_type[cls] = _classify(cls)
    if kind is not None:
        return kind
    mod = cls.__module__
    return cls.__qualname__ if mod == "builtins" else f"{mod}.{cls.__qualname__}"
