"""Thin wrapt patches, one module per client library: where calls are seen, not what they mean."""

from __future__ import annotations

from typing import Any

from . import aiohttp, botocore, httpx, openai, requests

__all__ = ["DEFERRED", "TARGETS"]

# (module to import, "Class.method", factory(recorder, module) -> wrapper). The openai SDK layer
# comes first; the HTTP layer below it is always patched, since the SDK layer reads its bodies.
TARGETS: list[tuple[str, str, Any]] = [
    *openai.targets("openai._base_client"),
    *openai.stream_manager_targets(),
    *httpx.targets("httpx"),
    *httpx.targets("httpx2"),
    *aiohttp.targets("aiohttp.client"),
    *requests.targets("requests.sessions"),
    *botocore.targets("botocore.session"),
]

DEFERRED = frozenset((*openai.STREAM_MANAGER_MODULES, botocore.SESSION_MODULE))
"""Target modules the library does not import with its top-level package and that are costly to import
(the openai SDK's stream helpers, about 100 ms; ``botocore.session``, about 100 ms more than ``botocore``):
patched when the application imports them, never imported by us."""
