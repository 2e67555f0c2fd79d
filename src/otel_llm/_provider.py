"""``gen_ai.provider.name`` as a chain: user map, then the host table, then the wire format, then the model name."""

from __future__ import annotations

from collections.abc import Mapping

from ._parsers.routes import ANTHROPIC_MESSAGES, COHERE_APIS, GEMINI, OLLAMA_APIS, OPENAI_RESPONSES

__all__ = ["ProviderResolver", "provider_from_model"]

_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "api.deepseek.com": "deepseek",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "api.mistral.ai": "mistral_ai",
    "api.groq.com": "groq",
    "api.x.ai": "x_ai",
    "api.together.xyz": "together_ai",
    "api.together.ai": "together_ai",
    "api.fireworks.ai": "fireworks_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "api.moonshot.ai": "moonshot_ai",
}
_HOST_SUFFIXES = (
    (".openai.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    (".amazonaws.com", "aws.bedrock"),
)
# Relays: they route to many model makers, so the model name says who answered; the relay stays
# visible in server.address. Used only when the model name says nothing.
_RELAYS = {"openrouter.ai": "openrouter"}
_LOCAL_PORTS = {11434: "ollama"}
_CACHE_SIZE = 1024  # (host, port, wire format, model) keys remembered by a resolver

_MODEL_PREFIXES = (
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("chatgpt", "openai"),
    ("text-embedding-004", "gcp.gemini"),
    ("text-embedding", "openai"),
    ("davinci", "openai"),
    ("babbage", "openai"),
    ("claude", "anthropic"),
    ("gemini", "gcp.gemini"),
    ("deepseek", "deepseek"),
    ("mistral", "mistral_ai"),
    ("mixtral", "mistral_ai"),
    ("codestral", "mistral_ai"),
    ("magistral", "mistral_ai"),
    ("grok", "x_ai"),
    ("command", "cohere"),
    ("kimi", "moonshot_ai"),
)
_VENDOR_PREFIXES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "deepseek": "deepseek",
    "deepseek-ai": "deepseek",
    "mistralai": "mistral_ai",
    "x-ai": "x_ai",
    "xai": "x_ai",
    "cohere": "cohere",
    "moonshotai": "moonshot_ai",
}


def provider_from_model(model: str | None) -> str | None:
    """``claude-sonnet-4-5`` -> anthropic; ``anthropic/claude-sonnet-4.5`` (relay style) -> anthropic."""
    if not model:
        return None
    m = model.lower()
    slash = m.find("/")
    if slash > 0:
        vendor = _VENDOR_PREFIXES.get(m[:slash])
        if vendor:
            return vendor
        m = m[slash + 1 :]
    for prefix, name in _MODEL_PREFIXES:
        if m.startswith(prefix):
            return name
    return None


class ProviderResolver:
    """Resolves and caches the provider of (host, port, wire format, model)."""

    __slots__ = ("_cache", "_responses", "_user_hosts", "_user_urls", "by_url")

    def __init__(self, user_map: Mapping[str, str] | None = None) -> None:
        self._user_hosts: dict[str, str] = {}
        self._user_urls: list[tuple[str, str]] = []
        for key, name in (user_map or {}).items():
            if not name:
                raise ValueError(f"provider map entry {key!r} has an empty provider name")
            k = key.strip().lower().rstrip("/")
            if "://" in k:
                self._user_urls.append((k, name))
            else:
                self._user_hosts[k] = name
        self._user_urls.sort(key=lambda p: -len(p[0]))
        self.by_url = bool(self._user_urls)  # providers told apart by URL prefix: resolved per call
        self._cache: dict[tuple, str] = {}
        # (host, port) -> the provider of the Responses calls made there with a model: a ``responses.retrieve``
        # (no model) on that server is the same provider's, not ``_OTHER``
        self._responses: dict[tuple[str, int | None], str] = {}

    def resolve(self, host: str | None, port: int | None, api: str, model: str | None, url: str | None = None) -> str:
        key = (host, port, api, model)
        hit = self._cache.get(key)
        if hit is not None and not self._user_urls:
            return hit
        name = self._resolve(host, port, api, model, url)
        if api == OPENAI_RESPONSES and host:
            server = (host.lower(), port)
            if model:
                if name != "_OTHER" and (server in self._responses or len(self._responses) < 256):
                    self._responses[server] = name
            elif name == "_OTHER":  # a fetch: not cached, a create on this server may come later
                return self._responses.get(server, name)
        cache = self._cache
        if len(cache) >= _CACHE_SIZE:  # bounded: the oldest key goes first
            try:
                del cache[next(iter(cache))]
            except (StopIteration, KeyError, RuntimeError):  # another thread changed it meanwhile
                cache.clear()
        cache[key] = name
        return name

    def _resolve(self, host: str | None, port: int | None, api: str, model: str | None, url: str | None) -> str:
        if self._user_urls and url:
            low = url.lower()
            for prefix, name in self._user_urls:
                if low.startswith(prefix):
                    return name
        h = (host or "").lower()
        if h:
            if self._user_hosts:
                user = self._user_hosts.get(h) or (self._user_hosts.get(f"{h}:{port}") if port else None)
                if user:
                    return user
            known = _HOSTS.get(h)
            if known:
                return known
            for suffix, sname in _HOST_SUFFIXES:
                if h.endswith(suffix):
                    return sname
        if api == ANTHROPIC_MESSAGES:
            return "anthropic"
        if api.startswith("aws.bedrock"):  # botocore's bedrock-runtime client, whatever endpoint it is sent to
            return "aws.bedrock"
        if api == GEMINI:
            return "gcp.gemini"
        if api in COHERE_APIS:
            return "cohere"
        if api in OLLAMA_APIS:  # Ollama's own API: an Ollama server, local or not, whatever the model
            return "ollama"
        by_model = provider_from_model(model)
        if by_model:
            return by_model
        if h in _RELAYS:
            return _RELAYS[h]
        if port in _LOCAL_PORTS and h in ("localhost", "127.0.0.1", "::1"):
            return _LOCAL_PORTS[port]
        return "_OTHER"
