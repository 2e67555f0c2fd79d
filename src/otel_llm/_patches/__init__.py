"""Thin wrapt patches, one module per client library: where calls are seen, not what they mean."""

from __future__ import annotations

from typing import Any

from . import aiohttp, httpx, openai, requests

__all__ = ["TARGETS"]

# (module to import, "Class.method", factory(recorder, module) -> wrapper). The openai SDK layer
# comes first; the HTTP layer below it is always patched, since the SDK layer reads its bodies.
TARGETS: list[tuple[str, str, Any]] = [
    *openai.targets("openai._base_client"),
    *httpx.targets("httpx"),
    *httpx.targets("httpx2"),
    *aiohttp.targets("aiohttp.client"),
    *requests.targets("requests.sessions"),
]
