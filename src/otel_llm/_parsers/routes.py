"""Which HTTP requests are LLM calls: method + path, checked on every request of the process.

The check is one ``endswith`` with a tuple of suffixes (C speed, no regex, no allocation for a
path that is not ours); only a match goes on to build anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._text import clean

__all__ = [
    "FETCH",
    "Route",
    "Router",
    "CHAT",
    "TEXT_COMPLETION",
    "EMBEDDINGS",
    "FETCH_RESPONSE",
    "GENERATE_CONTENT",
    "RERANK",
]

CHAT = "chat"
TEXT_COMPLETION = "text_completion"
EMBEDDINGS = "embeddings"
GENERATE_CONTENT = "generate_content"
FETCH_RESPONSE = "fetch_response"  # a stored Responses answer fetched again (``responses.retrieve``)
RERANK = "rerank"  # Cohere's /v2/rerank: the conventions name no rerank operation; otel-llm's own name for it

# Wire formats (how bodies and streams are shaped).
OPENAI_CHAT = "openai.chat"
OPENAI_COMPLETIONS = "openai.completions"
OPENAI_EMBEDDINGS = "openai.embeddings"
OPENAI_RESPONSES = "openai.responses"
ANTHROPIC_MESSAGES = "anthropic.messages"
GEMINI = "gemini"
COHERE_CHAT = "cohere.chat"
COHERE_EMBED = "cohere.embed"
COHERE_RERANK = "cohere.rerank"
COHERE_APIS = frozenset((COHERE_CHAT, COHERE_EMBED, COHERE_RERANK))
OLLAMA_CHAT = "ollama.chat"  # Ollama's native API (see _parsers/ollama.py)
OLLAMA_GENERATE = "ollama.generate"
OLLAMA_EMBED = "ollama.embed"
OLLAMA_EMBEDDINGS = "ollama.embeddings"  # the older single-prompt embeddings endpoint
OLLAMA_APIS = frozenset((OLLAMA_CHAT, OLLAMA_GENERATE, OLLAMA_EMBED, OLLAMA_EMBEDDINGS))


@dataclass(frozen=True, slots=True)
class Route:
    """An LLM endpoint: the operation it performs and the wire format it speaks."""

    operation: str
    api: str
    stream: bool = False  # the path itself says the answer is streamed (Gemini)

    @property
    def openai_api_type(self) -> str | None:
        if self.api == OPENAI_CHAT:
            return "chat_completions"
        if self.api == OPENAI_RESPONSES:
            return "responses"
        return None


_BUILTIN: tuple[tuple[str, Route], ...] = (
    # Ollama's native paths first: ``/api/embeddings`` also ends with OpenAI's ``/embeddings``
    ("/api/chat", Route(CHAT, OLLAMA_CHAT)),
    ("/api/generate", Route(TEXT_COMPLETION, OLLAMA_GENERATE)),
    ("/api/embed", Route(EMBEDDINGS, OLLAMA_EMBED)),
    ("/api/embeddings", Route(EMBEDDINGS, OLLAMA_EMBEDDINGS)),
    ("/chat/completions", Route(CHAT, OPENAI_CHAT)),
    ("/completions", Route(TEXT_COMPLETION, OPENAI_COMPLETIONS)),
    ("/embeddings", Route(EMBEDDINGS, OPENAI_EMBEDDINGS)),
    ("/responses", Route(CHAT, OPENAI_RESPONSES)),
    ("/v1/messages", Route(CHAT, ANTHROPIC_MESSAGES)),
    (":generateContent", Route(GENERATE_CONTENT, GEMINI)),
    (":streamGenerateContent", Route(GENERATE_CONTENT, GEMINI, stream=True)),
    ("/v2/chat", Route(CHAT, COHERE_CHAT)),
    ("/v2/embed", Route(EMBEDDINGS, COHERE_EMBED)),
    ("/v2/rerank", Route(RERANK, COHERE_RERANK)),
)

FETCH = Route(FETCH_RESPONSE, OPENAI_RESPONSES)


def fetched_response_id(path: str) -> str | None:
    """``/v1/responses/resp_123`` (query allowed) -> ``resp_123``; any other path (``.../input_items``,
    ``.../cancel``) -> None."""
    q = path.find("?")
    if q >= 0:
        path = path[:q]
    i = path.rfind("/responses/")
    if i < 0:
        return None
    rid = path[i + 11 :]
    return rid if rid and "/" not in rid else None


_API_BY_NAME = {
    "openai.chat": Route(CHAT, OPENAI_CHAT),
    "openai.completions": Route(TEXT_COMPLETION, OPENAI_COMPLETIONS),
    "openai.embeddings": Route(EMBEDDINGS, OPENAI_EMBEDDINGS),
    "openai.responses": Route(CHAT, OPENAI_RESPONSES),
    "anthropic.messages": Route(CHAT, ANTHROPIC_MESSAGES),
    "gemini": Route(GENERATE_CONTENT, GEMINI),
    "cohere.chat": Route(CHAT, COHERE_CHAT),
    "cohere.embed": Route(EMBEDDINGS, COHERE_EMBED),
    "cohere.rerank": Route(RERANK, COHERE_RERANK),
    "ollama.chat": Route(CHAT, OLLAMA_CHAT),
    "ollama.generate": Route(TEXT_COMPLETION, OLLAMA_GENERATE),
    "ollama.embed": Route(EMBEDDINGS, OLLAMA_EMBED),
    "ollama.embeddings": Route(EMBEDDINGS, OLLAMA_EMBEDDINGS),
}


_UNSEEN: Any = object()
_MAX_SEEN = 512


class Router:
    """Matches request paths (str or bytes, query string allowed) against the known LLM endpoints.

    ``extra`` adds user patterns as ``{path_suffix: wire_format}``, e.g. ``{"/v1/generate": "openai.chat"}``.
    User suffixes are tried first, so they can also override a built-in one.
    """

    __slots__ = ("_by_bytes", "_by_str", "_bytes_suffixes", "_seen", "_str_suffixes")

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        pairs: list[tuple[str, Route]] = []
        for suffix, api in (extra or {}).items():
            if api not in _API_BY_NAME:
                raise ValueError(
                    f"extra path {suffix!r}: unknown wire format {api!r}; expected one of {sorted(_API_BY_NAME)}"
                )
            if not suffix or suffix[0] not in "/:":
                raise ValueError(f"extra path {suffix!r} must start with '/' or ':'")
            pairs.append((suffix, _API_BY_NAME[api]))
        pairs.extend(_BUILTIN)
        self._by_str = pairs
        self._by_bytes = [(s.encode(), r) for s, r in pairs]
        self._str_suffixes = tuple(s for s, _ in pairs)
        self._bytes_suffixes = tuple(s.encode() for s, _ in pairs)
        self._seen: dict[str | bytes, Route | None] = {}  # paths already matched (LLM traffic repeats its paths)

    def match(self, path: str) -> Route | None:
        """Route of a path such as ``/v1/chat/completions?x=1``, or None."""
        q = path.find("?")
        if q >= 0:
            path = path[:q]
        hit = self._seen.get(path, _UNSEEN)
        if hit is not _UNSEEN:
            return hit
        route = None
        if path.endswith(self._str_suffixes):
            for suffix, r in self._by_str:
                if path.endswith(suffix):
                    route = r
                    break
        return self._remember(path, route)

    def match_bytes(self, path: bytes) -> Route | None:
        q = path.find(b"?")
        if q >= 0:
            path = path[:q]
        hit = self._seen.get(path, _UNSEEN)
        if hit is not _UNSEEN:
            return hit
        route = None
        if path.endswith(self._bytes_suffixes):
            for suffix, r in self._by_bytes:
                if path.endswith(suffix):
                    route = r
                    break
        return self._remember(path, route)

    def _remember(self, path: str | bytes, route: Route | None) -> Route | None:
        if len(self._seen) < _MAX_SEEN and len(path) <= 2048:  # bounded in count (paths with ids) and size
            self._seen[path] = route
        return route


def gemini_model_from_path(path: str) -> str | None:
    """``/v1beta/models/gemini-2.5-flash:generateContent`` -> ``gemini-2.5-flash``."""
    q = path.find("?")
    if q >= 0:
        path = path[:q]
    colon = path.rfind(":")
    slash = path.rfind("/", 0, colon)
    if colon <= 0 or slash < 0:
        return None
    model = path[slash + 1 : colon]
    return (model if model.isascii() else clean(model)) or None
