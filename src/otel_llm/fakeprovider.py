"""A local fake LLM provider: a real HTTP server that speaks the OpenAI, Anthropic, Gemini, Cohere v2, Ollama and
Mistral wire formats (and AWS Bedrock's runtime API, see ``otel_llm._fake_bedrock``).

The test-suite points real clients (the ``openai`` SDK, httpx, aiohttp, requests) at it, and
``otel-llm demo`` runs a multi-model workload against it. Answers are synthetic but shaped like the
real thing, including streaming, usage blocks and rate-limit headers.

Token counts are a pure function of the request (and ``FakeConfig.seed``), so tests can predict them;
latency and randomly drawn faults come from one seeded generator, so a sequential workload is
reproducible too. ``totals()`` sums the usage the server actually sent, per response model.

Request headers that steer one call:

``x-fake-fault``
    One of ``FAULTS``:

    ``429``            OpenAI ``rate_limit_exceeded`` error, ``retry-after: 1``, remaining requests 0.
    ``429-quota``      429 with code ``insufficient_quota``.
    ``400`` ``401`` ``404`` ``500`` ``503``   provider-shaped error bodies with that status.
    ``html-502``       502 with a ``text/html`` page, as a proxy in front of the provider would send.
    ``malformed-json`` 200 ``application/json`` whose body is cut in half.
    ``empty``          200 with an empty body (a stream: its headers, then not one event).
    ``non-json``       200 ``text/plain``.
    ``truncated-sse``  the stream stops after half its content chunks: no final chunk, no usage, no
                       ``[DONE]``; the chunked body is terminated cleanly and the connection closed.
    ``junk-sse``       a valid stream interleaved with comments, ``retry:``/``id:`` fields, an empty
                       ``data:`` event, an ``event: ping``, one ``data: garbage`` event; CRLF line ends.
    ``non-utf8``       the first content delta carries the invalid UTF-8 bytes ``ff fe``.
    ``null-usage``     non-stream: ``usage`` is null; stream: the usage carries null detail objects.
    ``string-numbers`` usage numbers sent as JSON strings.
    ``huge``           the content is ``x-fake-size`` bytes long (default 5,000,000).
    ``reset``          status, headers and part of the body, then a TCP reset (``SO_LINGER`` 0).
    ``slow``           wait ``x-fake-delay`` seconds (default 2) before the status line.
    ``slow-chunks``    wait ``x-fake-delay`` seconds (default 0.5) between stream events.
    ``stall``          wait ``FakeConfig.stall_s`` before answering (what ``timeout_rate`` draws).

    Faults apply to LLM routes only; ``truncated-sse``, ``junk-sse`` and ``slow-chunks`` only change
    streamed answers. Error bodies are shaped like the provider the route belongs to.
``x-fake-chunks``         number of content events in a stream (default: one per ~3 output tokens).
``x-fake-model-latency``  latency scale for this call (``0`` disables it), overriding ``latency_scale``.
``x-fake-relay-cost``     adds OpenRouter-style ``usage.cost`` and a LiteLLM ``x-litellm-response-cost`` header.
``x-fake-answer``         what the model answers, in each wire format's own shape (streamed or not): ``text``
                          (the default); ``tool_call``: it calls the first tool the request declares (or
                          ``get_weather``) with JSON arguments (chat ``tool_calls`` with finish reason
                          ``tool_calls``, a Responses ``function_call`` item, an Anthropic ``tool_use`` block,
                          a Gemini ``functionCall`` part); ``refusal``: it declines (chat ``refusal``, a Responses
                          ``refusal`` part; Anthropic and Gemini answer with the refusal as text);
                          ``reasoning``: the text answer after readable reasoning (chat ``reasoning_content``
                          as DeepSeek sends it, an Anthropic ``thinking`` block, a Responses reasoning summary);
                          ``tool_then_text``: an agent's loop, ``tool_call`` until the request carries a tool's
                          result (a chat ``tool`` message, a Responses ``function_call_output`` item, an Anthropic
                          ``tool_result`` block, a Gemini ``functionResponse`` part), then ``text``.
``x-fake-tool-calls``     with ``tool_call``: how many calls the model makes at once (chat and Responses;
                          default 1, at most 8), each with other arguments; a stream sends them one after another.
``x-fake-usage``          a JSON object merged into the usage block the answer sends (OpenAI chat, completions and
                          Responses, Gemini), objects merged key by key: usage details such as
                          ``{"prompt_tokens_details": {"cache_write_tokens": 300, "audio_tokens": 200}}``, or counts
                          no provider sends (``{"prompt_tokens": -5}``). ``totals()`` still counts the planned usage.
``x-fake-surrogates``     ``1``: the answer's model, ids, finish reasons, system fingerprint and text each carry a
                          lone surrogate, sent as the JSON escape ``\\ud800`` (valid JSON; not encodable as UTF-8 once
                          decoded), in whole and streamed answers alike.

``GET /v1/responses/{id}`` (``responses.retrieve``) answers a stored, completed response with that id (a
streamed one with ``?stream=true``); ``x-fake-status: incomplete`` makes it an incomplete one.

Run ``python -m otel_llm.fakeprovider --port 8000`` to serve until Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import functools
import hashlib
import itertools
import json
import logging
import math
import os
import random
import signal
import socket
import socketserver
import string
import struct
import sys
import threading
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from . import _fake_bedrock, _fake_mistral, _fake_ollama
from . import _fake_cohere as _cohere

__all__ = [
    "FAULTS",
    "FakeConfig",
    "FakeProvider",
    "ModelProfile",
    "ReceivedRequest",
    "default_profiles",
    "main",
]

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------
# public configuration


@dataclass(frozen=True)
class ModelProfile:
    """How one model behaves: latency, stream pacing, answer size, caching, and the name it answers with."""

    latency_median_s: float
    """Median total latency (non-stream) or time to first chunk (stream); lognormal."""
    latency_p95_s: float
    chunk_interval_s: float
    """Mean gap between stream events."""
    output_tokens: tuple[int, int]
    """Min and max visible completion tokens."""
    cached_share: float
    """Share of prompt tokens reported as cache reads (prompts of 16 tokens or more)."""
    response_model: str
    """The (dated) model name answers carry; empty means echo the requested model."""
    requests_per_minute: int = 5_000
    tokens_per_minute: int = 2_000_000


def default_profiles() -> dict[str, ModelProfile]:
    """The demo's models, with realistic and clearly different latencies."""
    p = ModelProfile
    return {
        # name:                  median, p95,  chunk gap, output tokens, cached, answers as, RPM, TPM
        "gpt-4.1": p(0.9, 2.8, 0.025, (60, 400), 0.3, "gpt-4.1-2025-04-14", 5_000, 800_000),
        "gpt-4.1-mini": p(0.45, 1.3, 0.012, (40, 300), 0.4, "gpt-4.1-mini-2025-04-14", 10_000, 4_000_000),
        "claude-sonnet-4.5": p(1.3, 3.8, 0.03, (80, 500), 0.5, "claude-sonnet-4-5-20250929", 4_000, 2_000_000),
        "gemini-2.5-flash": p(0.6, 1.7, 0.015, (50, 350), 0.2, "gemini-2.5-flash", 10_000, 4_000_000),
        "deepseek-v3.2": p(1.6, 5.5, 0.04, (60, 450), 0.6, "deepseek-v3.2", 3_000, 1_000_000),
        "text-embedding-3-small": p(0.12, 0.35, 0.0, (0, 0), 0.0, "text-embedding-3-small", 10_000, 5_000_000),
    }


_FALLBACK_PROFILE = ModelProfile(0.5, 1.5, 0.02, (20, 200), 0.0, "")


@dataclass
class FakeConfig:
    """Server-wide behaviour. The defaults answer at once and never fail (what tests want)."""

    latency_scale: float = 0.0
    """0 answers immediately; 1.0 uses the profile latencies."""
    error_rate: float = 0.0
    """Share of LLM calls answered 500 or 503."""
    rate_limit_rate: float = 0.0
    """Share answered 429 with ``retry-after`` and exhausted rate-limit headers."""
    timeout_rate: float = 0.0
    """Share that stall for ``stall_s`` before answering."""
    stall_s: float = 5.0
    seed: int | None = None
    profiles: dict[str, ModelProfile] = field(default_factory=default_profiles)
    relay_usage: bool = False
    """Behave like a relay that always streams usage: every Chat Completions and legacy Completions stream ends
    with the usage-only chunk, whether or not the request asked for ``stream_options.include_usage``."""

    def __post_init__(self) -> None:
        rates = (self.error_rate, self.rate_limit_rate, self.timeout_rate)
        if any(r < 0 for r in rates) or sum(rates) > 1:
            raise ValueError("error_rate, rate_limit_rate and timeout_rate must be >= 0 and sum to at most 1")


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the server received it; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body else None


_ERROR_FAULTS = ("400", "401", "404", "429", "429-quota", "500", "503")
_STREAM_ONLY_FAULTS = ("truncated-sse", "junk-sse", "slow-chunks")
FAULTS: frozenset[str] = frozenset(
    (
        *_ERROR_FAULTS,
        *_STREAM_ONLY_FAULTS,
        "html-502",
        "malformed-json",
        "empty",
        "non-json",
        "non-utf8",
        "null-usage",
        "string-numbers",
        "huge",
        "reset",
        "slow",
        "stall",
    )
)
"""Every value ``x-fake-fault`` accepts."""


# --------------------------------------------------------------------------------------------------
# internals: one call's plan


_MAX_BODY = 64 * 1024 * 1024
_HUGE_DEFAULT = 5_000_000
_ALNUM = string.ascii_letters + string.digits
_VOCAB = (
    "the", "model", "answers", "with", "a", "short", "synthetic", "text", "about", "telemetry", "spans",
    "metrics", "and", "traces", "that", "flow", "from", "client", "through", "collector", "into", "backend",
    "where", "dashboards", "show", "latency", "tokens", "cost", "errors", "cache", "hits", "for", "every",
    "provider", "so", "engineers", "can", "see", "what", "their", "calls", "do",
)  # fmt: skip
_SENTINEL = "\x00"  # marks where the non-utf8 fault puts its bytes; never appears in generated text
_SENTINEL_JSON = b"\\u0000"
_INVALID_UTF8 = b"\xff\xfe"
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class _Sent(NamedTuple):
    """Usage as sent, normalised: input includes cache reads, output includes reasoning."""

    input: int
    output: int
    cached: int
    reasoning: int


@dataclass
class _Choice:
    deltas: list[str]
    text: str
    output_tokens: int  # includes reasoning tokens
    reasoning_tokens: int
    truncated: bool


@dataclass
class _Call:
    api: str  # chat | completions | embeddings | responses | messages | gemini
    body: dict[str, Any]
    model: str  # the name the answer carries
    profile: ModelProfile
    stream: bool
    prompt_tokens: int
    cached_tokens: int
    choices: list[_Choice]
    rng: random.Random
    fault: str | None
    include_usage: bool
    relay_cost: float | None
    max_tokens: int | None
    created: int = field(default_factory=lambda: int(time.time()))
    answer: str = "text"  # text | tool_call | refusal (x-fake-answer)
    tool_calls: int = 1  # parallel tool calls (x-fake-tool-calls)
    response_id: str | None = None  # a fetched stored response: its id is the one asked for
    usage_extra: dict[str, Any] | None = None  # x-fake-usage: merged into the usage block
    surrogates: bool = False  # x-fake-surrogates: lone surrogates in names, ids, reasons and text
    mistral: bool = False  # answered as Mistral's API does (see _fake_mistral)
    # Chat Completions streams end every chunk with an ``obfuscation`` member (random padding OpenAI adds since
    # 2025-08 unless ``stream_options.include_obfuscation`` is false), after ``usage`` when that was asked for
    obfuscation: bool = False

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.choices)

    @property
    def reasoning_tokens(self) -> int:
        return sum(c.reasoning_tokens for c in self.choices)

    def rid(self, prefix: str, n: int = 24, alphabet: str = _ALNUM) -> str:
        return prefix + "".join(self.rng.choices(alphabet, k=n))


@dataclass
class _Frame:
    data: bytes
    kind: str = "meta"  # meta | content
    sent: _Sent | None = None  # set on the event that completes the usage


class _InvalidRequest(Exception):
    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.param, self.status = message, param, status


class _Window:
    """Calls and tokens of one model in the last minute (the rate-limit headers' view)."""

    __slots__ = ("events", "tokens")

    def __init__(self) -> None:
        self.events: collections.deque[tuple[float, int]] = collections.deque()
        self.tokens = 0

    def add(self, now: float, tokens: int) -> None:
        self.events.append((now, tokens))
        self.tokens += tokens

    def prune(self, now: float) -> None:
        while self.events and now - self.events[0][0] > 60.0:
            self.tokens -= self.events.popleft()[1]


def _dumps(obj: Any, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(obj, indent=2).encode()
    return json.dumps(obj, separators=(",", ":")).encode()


def _stringify(obj: Any) -> Any:
    """Numbers (not booleans) become JSON strings, recursively."""
    if isinstance(obj, dict):
        return {k: _stringify(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_stringify(v) for v in obj]
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return str(obj)
    return obj


def _go_duration(seconds: float) -> str:
    """OpenAI's reset format: ``17ms``, ``8.64s``, ``6m0s``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs}s"


def _rfc3339(seconds_from_now: float) -> str:
    at = datetime.now(timezone.utc) + timedelta(seconds=math.ceil(seconds_from_now))
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _lognormal(median: float, p95: float, rng: random.Random) -> float:
    if median <= 0:
        return 0.0
    sigma = math.log(p95 / median) / 1.6449 if p95 > median else 0.0
    return min(median * math.exp(sigma * rng.gauss(0.0, 1.0)), 10 * max(p95, median))


def _words(value: Any) -> int:
    """Words of the text in a message, content part list or Gemini part, ignoring images and ids."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_words(v) for v in value)
    if isinstance(value, dict):
        return sum(_words(value[k]) for k in ("text", "content", "parts", "arguments", "output") if k in value)
    return 0


def _tokens(words: int, messages: int = 0) -> int:
    return max(1, math.ceil(words * 1.3) + 3 * messages)


def _int_header(headers: dict[str, str], name: str, default: int | None, lo: int, hi: int) -> int | None:
    try:
        return min(hi, max(lo, int(headers[name])))
    except (KeyError, ValueError):
        return default


def _float_header(headers: dict[str, str], name: str, default: float | None) -> float | None:
    try:
        value = float(headers[name])
    except (KeyError, ValueError):
        return default
    return value if math.isfinite(value) and value >= 0 else default


def _route(method: str, path: str) -> str | None:
    if method == "GET":
        _, sep, rid = path.rpartition("/responses/")
        return "retrieve" if sep and rid and "/" not in rid else None
    if method != "POST":
        return None
    if path.startswith("/model/") and _fake_bedrock.route(method, path):
        return "bedrock"
    ollama = _fake_ollama.route(path)  # before "/embeddings": Ollama's older endpoint ends with it too
    if ollama is not None:
        return ollama
    cohere = _cohere.route(path)
    if cohere is not None:
        return cohere
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith("/completions"):
        return "completions"
    if path.endswith("/embeddings"):
        return "embeddings"
    if path.endswith("/responses"):
        return "responses"
    if path.endswith("/messages"):
        return "messages"
    if "/models/" in path and (path.endswith(":generateContent") or path.endswith(":streamGenerateContent")):
        return "gemini"
    return None


def _request_model(api: str, body: dict[str, Any], path: str) -> str:
    if api == "gemini":
        return path.rsplit("/models/", 1)[1].rsplit(":", 1)[0]
    model = body.get("model")
    if isinstance(model, str) and model:
        return model
    parts = path.split("/")
    if "deployments" in parts[:-1]:  # Azure OpenAI: the deployment names the model
        return parts[parts.index("deployments") + 1]
    return "unknown"


def _prompt_tokens(api: str, body: dict[str, Any]) -> int:
    """Prompt tokens of the request (about words * 1.3 + 3 per message); raises ``_InvalidRequest``."""
    if api in _fake_ollama.APIS:
        return _fake_ollama.prompt_tokens(api, body)
    if api in ("chat", "messages"):
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _InvalidRequest("'messages' must be a non-empty array.", "messages")
        words = sum(_words(m) for m in messages)
        count = len(messages)
        system = body.get("system")
        if api == "messages" and system:
            words, count = words + _words(system), count + 1
        return _tokens(words, count)
    if api == "completions":
        prompt = body.get("prompt")
        if isinstance(prompt, str):
            return _tokens(_words(prompt))
        if isinstance(prompt, list) and prompt:
            return sum(len(p) if isinstance(p, list) else _tokens(_words(p)) for p in prompt)
        raise _InvalidRequest("'prompt' must be a string or an array.", "prompt")
    if api == "responses":
        value = body.get("input")
        if isinstance(value, str):
            words, count = _words(value), 1
        elif isinstance(value, list) and value:
            words, count = sum(_words(v) for v in value), len(value)
        else:
            raise _InvalidRequest("'input' must be a string or a non-empty array.", "input")
        if isinstance(body.get("instructions"), str):
            words, count = words + _words(body["instructions"]), count + 1
        return _tokens(words, count)
    if api == "gemini":
        contents = body.get("contents")
        if isinstance(contents, str):
            contents = [{"parts": [{"text": contents}]}]
        if not isinstance(contents, list) or not contents:
            raise _InvalidRequest("contents is not specified", "contents")
        words, count = sum(_words(c) for c in contents), len(contents)
        system = body.get("systemInstruction") or body.get("system_instruction")
        if system:
            words, count = words + _words(system), count + 1
        return _tokens(words, count)
    if api in _cohere.APIS:
        return _cohere.prompt_tokens(api, body)
    raise AssertionError(api)  # embeddings count per input, see _embedding_inputs


def _embedding_inputs(body: dict[str, Any]) -> list[tuple[str, int]]:
    """(text used to derive the vector, tokens) per input; token arrays count one token per entry."""
    value = body.get("input")
    if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], int)):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _InvalidRequest("'input' must be a string or a non-empty array.", "input")
    inputs = []
    for item in value:
        if isinstance(item, str):
            inputs.append((item, _tokens(_words(item))))
        elif isinstance(item, list) and all(isinstance(t, int) for t in item):
            inputs.append((",".join(map(str, item)), max(1, len(item))))
        else:
            raise _InvalidRequest("'input' items must be strings or token arrays.", "input")
    return inputs


_MAX_TOKEN_KEYS = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "completions": ("max_tokens",),
    "responses": ("max_output_tokens",),
    "messages": ("max_tokens",),
    "gemini": ("maxOutputTokens", "max_output_tokens"),
    "embeddings": (),
    "cohere.chat": ("max_tokens",),
    "cohere.embed": (),
    "cohere.rerank": (),
}


def _max_tokens(api: str, body: dict[str, Any]) -> int | None:
    if api in _fake_ollama.APIS:
        return _fake_ollama.max_tokens(body)
    source = (body.get("generationConfig") or body.get("generation_config") or {}) if api == "gemini" else body
    for key in _MAX_TOKEN_KEYS[api]:
        value = source.get(key) if isinstance(source, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _wants_reasoning(api: str, names: tuple[str, ...], body: dict[str, Any]) -> bool:
    if any(tag in name.lower() for name in names for tag in ("o1", "o3", "o4", "reason")):
        return True
    if api in _fake_ollama.APIS:
        return _fake_ollama.wants_reasoning(body)
    if api == "chat":
        return body.get("reasoning_effort") not in (None, "none")
    if api == "responses":
        reasoning = body.get("reasoning")
        return isinstance(reasoning, dict) and reasoning.get("effort") not in (None, "none")
    if api == "messages":
        thinking = body.get("thinking")
        return isinstance(thinking, dict) and thinking.get("type") == "enabled"
    if api == "gemini":
        config = body.get("generationConfig") or {}
        thinking = config.get("thinkingConfig") if isinstance(config, dict) else None
        return isinstance(thinking, dict) and (thinking.get("thinkingBudget") or 0) > 0
    return False


def _choice(
    rng: random.Random,
    profile: ModelProfile,
    max_tokens: int | None,
    reasoning: bool,
    chunks: int | None,
    huge: int | None,
) -> _Choice:
    """One answer: its text, split into stream deltas, and its token counts."""
    if huge is not None:
        sentence = "The quick brown fox jumps over the lazy dog while the collector exports spans. "
        text = (sentence * (huge // len(sentence) + 1))[:huge]
        k = chunks or max(1, math.ceil(huge / 16_384))
        step = math.ceil(len(text) / k) or 1
        deltas = [text[i : i + step] for i in range(0, len(text), step)] or [""]
        return _Choice(deltas, text, max(1, huge // 4), 0, False)
    lo, hi = profile.output_tokens
    visible = rng.randint(max(1, lo), max(1, lo, hi))
    thoughts = round(visible * rng.uniform(0.5, 2.0)) if reasoning else 0
    truncated = max_tokens is not None and visible + thoughts > max_tokens
    if max_tokens is not None and truncated:
        thoughts = min(thoughts, max_tokens // 2)
        visible = max(1, max_tokens - thoughts)
    k = chunks or max(1, math.ceil(visible / 3))
    words = rng.choices(_VOCAB, k=max(visible, k))
    words[0] = words[0].capitalize()
    size, extra = divmod(len(words), k)
    deltas, start = [], 0
    for i in range(k):
        end = start + size + (1 if i < extra else 0)
        deltas.append((" " if i else "") + " ".join(words[start:end]))
        start = end
    deltas[-1] += "." if not truncated else ""
    return _Choice(deltas, "".join(deltas), visible + thoughts, thoughts, truncated)


ANSWERS = ("text", "tool_call", "refusal", "reasoning", "tool_then_text")
_REFUSAL = "I'm sorry, but I can't help with that request."
_THOUGHT = "The user asks about telemetry; a short answer about spans and metrics will do."
_CITIES = ("Lisbon", "Osaka", "Quito", "Tallinn", "Accra", "Hobart", "Reno", "Bergen")


def _answer_kind(api: str, headers: dict[str, str], body: dict[str, Any]) -> str:
    kind = headers.get("x-fake-answer", "").strip().lower() or "text"
    if kind not in ANSWERS:
        raise _InvalidRequest(f"Unknown x-fake-answer {kind!r}; known: {', '.join(ANSWERS)}.")
    if kind == "tool_then_text":
        return "text" if _has_tool_result(api, body) else "tool_call"
    return kind


def _has_tool_result(api: str, body: dict[str, Any]) -> bool:
    """Whether the request hands the model a tool's result, in its wire format's spelling."""
    if api == "cohere.chat":
        return _cohere.has_tool_result(body)
    if api == "chat" or api == _fake_ollama.CHAT:
        items: Any = body.get("messages")
        return isinstance(items, list) and any(isinstance(m, dict) and m.get("role") == "tool" for m in items)
    if api == "responses":
        items = body.get("input")
        return isinstance(items, list) and any(
            isinstance(i, dict) and i.get("type") == "function_call_output" for i in items
        )
    if api == "messages":
        items = body.get("messages")
        return isinstance(items, list) and any(
            isinstance(m, dict)
            and isinstance(m.get("content"), list)
            and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in m["content"])
            for m in items
        )
    if api == "gemini":
        items = body.get("contents")
        return isinstance(items, list) and any(
            isinstance(c, dict)
            and isinstance(c.get("parts"), list)
            and any(isinstance(p, dict) and ("functionResponse" in p or "function_response" in p) for p in c["parts"])
            for c in items
        )
    return False


def _tool_name(api: str, body: dict[str, Any]) -> str:
    """The first tool the request declares, in its wire format's spelling; ``get_weather`` without one."""
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        if api == "gemini":
            decls = tool.get("functionDeclarations") or tool.get("function_declarations")
            if isinstance(decls, list) and decls and isinstance(decls[0], dict) and decls[0].get("name"):
                return str(decls[0]["name"])
            continue
        fn = tool.get("function")
        name = fn.get("name") if isinstance(fn, dict) else tool.get("name")
        if isinstance(name, str) and name:
            return name
    return "get_weather"


def _tool_args(c: _Call, n: int = 0) -> dict[str, Any]:
    """Arguments of the model's ``n``-th tool call: derived from the request (same request, same arguments)."""
    body = {k: v for k, v in c.body.items() if k != "stream_options"}  # as the text: delivery does not count
    digest = hashlib.blake2b(_dumps(body), digest_size=2).digest()
    city = _CITIES[(digest[0] + n) % len(_CITIES)]
    return {"location": city, "unit": "celsius" if digest[1] % 2 else "fahrenheit"}


def _pieces(text: str, k: int) -> list[str]:
    """``text`` in ``k`` consecutive pieces (a streamed JSON argument string or refusal)."""
    k = max(1, min(k, len(text)))
    step = -(-len(text) // k)
    return [text[i : i + step] for i in range(0, len(text), step)]


# --------------------------------------------------------------------------------------------------
# internals: usage blocks, as each provider spells them


def _openai_usage(c: _Call, stream: bool) -> tuple[dict[str, Any] | None, _Sent | None]:
    null = c.fault == "null-usage"
    if null and not stream:
        return None, None
    prompt, out, cached, reasoning = c.prompt_tokens, c.output_tokens, c.cached_tokens, c.reasoning_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": out,
        "total_tokens": prompt + out,
        "prompt_tokens_details": None if null else {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": None
        if null
        else {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    if c.model.startswith("deepseek"):
        usage["prompt_cache_hit_tokens"] = None if null else cached
        usage["prompt_cache_miss_tokens"] = None if null else prompt - cached
    sent = _Sent(prompt, out, 0, 0) if null else _Sent(prompt, out, cached, reasoning)
    return _finish_usage(c, usage), sent


def _responses_usage(c: _Call, stream: bool) -> tuple[dict[str, Any] | None, _Sent | None]:
    null = c.fault == "null-usage"
    if null and not stream:
        return None, None
    prompt, out, cached, reasoning = c.prompt_tokens, c.output_tokens, c.cached_tokens, c.reasoning_tokens
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": None if null else {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": None if null else {"reasoning_tokens": reasoning},
        "total_tokens": prompt + out,
    }
    sent = _Sent(prompt, out, 0, 0) if null else _Sent(prompt, out, cached, reasoning)
    return _finish_usage(c, usage), sent


def _anthropic_input_usage(c: _Call) -> dict[str, Any]:
    if c.fault == "null-usage":
        return {"input_tokens": c.prompt_tokens, "cache_creation_input_tokens": None, "cache_read_input_tokens": None}
    return {
        "input_tokens": c.prompt_tokens - c.cached_tokens,  # Anthropic excludes cache reads and writes
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": c.cached_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    }


def _anthropic_sent(c: _Call) -> _Sent:
    cached = 0 if c.fault == "null-usage" else c.cached_tokens
    return _Sent(c.prompt_tokens, c.output_tokens, cached, 0)  # thinking is not reported separately


def _gemini_usage(c: _Call, final: bool) -> tuple[dict[str, Any] | None, _Sent | None]:
    prompt, cached, thoughts = c.prompt_tokens, c.cached_tokens, c.reasoning_tokens
    details = [{"modality": "TEXT", "tokenCount": prompt}]
    if not final:  # Gemini's intermediate stream chunks only know the prompt
        return _finish_usage(
            c, {"promptTokenCount": prompt, "totalTokenCount": prompt, "promptTokensDetails": details}
        ), None
    null = c.fault == "null-usage"
    if null and not c.stream:
        return None, None
    candidates = c.output_tokens - thoughts
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "cachedContentTokenCount": None if null else cached,
        "thoughtsTokenCount": None if null else thoughts,
        "promptTokensDetails": details,
    }
    if cached and not null:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    sent = _Sent(prompt, candidates, 0, 0) if null else _Sent(prompt, candidates + thoughts, cached, thoughts)
    return _finish_usage(c, usage), sent


def _finish_usage(c: _Call, usage: dict[str, Any]) -> dict[str, Any]:
    if c.relay_cost is not None and c.api != "gemini":
        usage["cost"] = c.relay_cost
    if c.fault == "string-numbers":
        usage = _stringify(usage)
    return usage if c.usage_extra is None else _merged(usage, c.usage_extra)


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s keys set, objects merged key by key (a new dict; ``base`` is left as it is)."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def _usage_header(headers: dict[str, str]) -> dict[str, Any] | None:
    raw = headers.get("x-fake-usage", "").strip()
    if not raw:
        return None
    try:
        extra = json.loads(raw)
    except ValueError:
        extra = None
    if not isinstance(extra, dict):
        raise _InvalidRequest("x-fake-usage must be a JSON object.")
    return extra


_LONE = "\ud800"
# keys whose string values x-fake-surrogates spoils, in every wire format's spelling
_SPOILED_KEYS = frozenset(
    {
        "model", "id", "finish_reason", "system_fingerprint", "content", "text", "delta", "refusal",
        "stop_reason", "modelVersion", "responseId", "finishReason",
    }
)  # fmt: skip


def _spoiled(obj: Any) -> Any:
    """``obj`` with a lone surrogate added to the string values of ``_SPOILED_KEYS``, recursively."""
    if isinstance(obj, dict):
        return {
            k: v + _LONE if k in _SPOILED_KEYS and isinstance(v, str) and v else _spoiled(v) for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [_spoiled(v) for v in obj]
    return obj


def _spoiled_frame(data: bytes) -> bytes:
    """One SSE event with its JSON spoiled (``_spoiled``); anything else (``[DONE]``, a JSON array piece) as is."""
    i = data.find(b"data: ")
    if i < 0:
        return data
    end = data.rfind(b"\n\n")
    try:
        payload = json.loads(data[i + 6 : end if end > i else len(data)])
    except ValueError:
        return data
    return data[: i + 6] + _dumps(_spoiled(payload)) + b"\n\n"


# --------------------------------------------------------------------------------------------------
# internals: answer bodies and stream events


def _fingerprint(model: str) -> str:
    return "fp_" + hashlib.blake2b(model.encode("utf-8", "surrogatepass"), digest_size=5).hexdigest()


def _sse(payload: dict[str, Any], event: str | None = None, kind: str = "meta", sent: _Sent | None = None) -> _Frame:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return _Frame(head + b"data: " + _dumps(payload) + b"\n\n", kind, sent)


def _chat_body(c: _Call) -> tuple[dict[str, Any], _Sent | None]:
    usage, sent = _openai_usage(c, stream=False)
    choices: list[dict[str, Any]] = [
        {
            "index": i,
            "message": {"role": "assistant", "content": ch.text, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "length" if ch.truncated else "stop",
        }
        for i, ch in enumerate(c.choices)
    ]
    for i, choice in enumerate(choices):
        msg = choice["message"]
        if c.answer == "tool_call":
            msg["content"] = None
            msg["tool_calls"] = [
                {
                    "id": c.rid("call_", 24),
                    "type": "function",
                    "function": {"name": _tool_name("chat", c.body), "arguments": json.dumps(_tool_args(c, n))},
                }
                for n in range(c.tool_calls)
            ]
            choice["finish_reason"] = "tool_calls"
        elif c.answer == "refusal":
            msg["content"] = None
            msg["refusal"] = _REFUSAL if i == 0 else _REFUSAL.replace("that", "this")
            choice["finish_reason"] = "stop"
        elif c.answer == "reasoning":
            msg["reasoning_content"] = _THOUGHT
    return {
        "id": c.rid("chatcmpl-", 29),
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": choices,
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": _fingerprint(c.model),
    }, sent


def _completion_body(c: _Call) -> tuple[dict[str, Any], _Sent | None]:
    usage, sent = _openai_usage(c, stream=False)
    choices = [
        {"text": ch.text, "index": i, "logprobs": None, "finish_reason": "length" if ch.truncated else "stop"}
        for i, ch in enumerate(c.choices)
    ]
    return {
        "id": c.rid("cmpl-", 29),
        "object": "text_completion",
        "created": c.created,
        "model": c.model,
        "choices": choices,
        "usage": usage,
        "system_fingerprint": _fingerprint(c.model),
    }, sent


def _openai_frames(c: _Call) -> list[_Frame]:
    """Chat Completions and legacy Completions streams, ``data: [DONE]`` included."""
    chat = c.api == "chat"
    base: dict[str, Any] = {
        "id": c.rid("chatcmpl-" if chat else "cmpl-", 29),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": c.created,
        "model": c.model,
        "service_tier": "default",
        "system_fingerprint": _fingerprint(c.model),
    }
    tail = {"usage": None} if c.include_usage else {}  # asked for usage: every chunk ends with a null one, as OpenAI's
    pad = c.obfuscation  # (set for chat streams only)

    def chunk(index: int, finish: str | None, kind: str = "meta", **part: Any) -> _Frame:
        choice = {"index": index, **part, "logprobs": None, "finish_reason": finish}
        payload = {**base, "choices": [choice], **tail}
        if pad:
            payload["obfuscation"] = _obfuscation(_dumps(choice))
        return _sse(payload, kind=kind)

    frames: list[_Frame] = []
    if chat and c.answer in ("tool_call", "refusal"):  # they open with no content at all, as OpenAI sends them
        first = {"role": "assistant", "content": None, "refusal": "" if c.answer == "refusal" else None}
        frames += [chunk(i, None, delta=first) for i in range(len(c.choices))]
        return _chat_special_frames(c, chunk, frames, base)
    if chat:
        frames += [
            chunk(i, None, delta={"role": "assistant", "content": "", "refusal": None}) for i in range(len(c.choices))
        ]
    if chat and c.answer == "reasoning":
        for i in range(len(c.choices)):
            frames += [chunk(i, None, "content", delta={"reasoning_content": p}) for p in _pieces(_THOUGHT, 4)]
    for k in range(max(len(ch.deltas) for ch in c.choices)):
        for i, ch in enumerate(c.choices):
            if k < len(ch.deltas):
                part = {"delta": {"content": ch.deltas[k]}} if chat else {"text": ch.deltas[k]}
                frames.append(chunk(i, None, "content", **part))
    closing: dict[str, Any] = {"delta": {}} if chat else {"text": ""}
    for i, ch in enumerate(c.choices):
        frames.append(chunk(i, "length" if ch.truncated else "stop", **closing))
    return _openai_stream_end(c, base, frames)


def _openai_stream_end(c: _Call, base: dict[str, Any], frames: list[_Frame]) -> list[_Frame]:
    """A Chat Completions or Completions stream's end: the usage-only chunk when usage was asked for (padded as
    OpenAI's chat chunks are), then ``data: [DONE]``."""
    if c.include_usage:
        usage, sent = _openai_usage(c, stream=True)
        payload = {**base, "choices": [], "usage": usage}
        if c.obfuscation:
            payload["obfuscation"] = _obfuscation(_dumps(usage))
        frames.append(_sse(payload, sent=sent))
    frames.append(_Frame(b"data: [DONE]\n\n"))
    return frames


def _obfuscation(part: bytes) -> str:
    """A chunk's padding as OpenAI's looks: 1 to 16 letters and digits, fewer the longer what it pads (drawn from
    those bytes, so the same answer is padded the same, asked for usage or not)."""
    digest = hashlib.blake2b(part, digest_size=16).digest()
    return "".join(_ALNUM[b % len(_ALNUM)] for b in digest[: max(1, 16 - len(part) // 8)])


def _chat_special_frames(c: _Call, chunk: Callable[..., _Frame], frames: list[_Frame], base: dict) -> list[_Frame]:
    """A streamed tool call (its id and name first, then the JSON arguments in pieces) or refusal."""
    k = max(2, min(len(ch.deltas) for ch in c.choices))
    for i in range(len(c.choices)):
        if c.answer == "tool_call":
            name = _tool_name("chat", c.body)
            for n in range(c.tool_calls):
                args = json.dumps(_tool_args(c, n))
                head = {"index": n, "id": c.rid("call_", 24), "type": "function"}
                frames.append(
                    chunk(i, None, delta={"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
                )
                for piece in _pieces(args, k):
                    frames.append(
                        chunk(
                            i, None, "content", delta={"tool_calls": [{"index": n, "function": {"arguments": piece}}]}
                        )
                    )
        else:
            text = _REFUSAL if i == 0 else _REFUSAL.replace("that", "this")
            frames += [chunk(i, None, "content", delta={"refusal": piece}) for piece in _pieces(text, k)]
    for i in range(len(c.choices)):
        frames.append(chunk(i, "tool_calls" if c.answer == "tool_call" else "stop", delta={}))
    return _openai_stream_end(c, base, frames)


def _embeddings_body(c: _Call, inputs: list[tuple[str, int]]) -> tuple[dict[str, Any], _Sent | None]:
    body = c.body
    dims = body.get("dimensions")
    if not (isinstance(dims, int) and 0 < dims <= 8192):
        dims = 3072 if "large" in c.model else 1536
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, (text, _) in enumerate(inputs):
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
        rng = random.Random(seed)
        vector = [rng.random() * 2.0 - 1.0 for _ in range(dims)]
        norm = math.sqrt(sum(v * v for v in vector)) or 1.0
        vector = [v / norm for v in vector]
        embedding: Any = b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(t for _, t in inputs)
    usage: dict[str, Any] | None = None
    sent: _Sent | None = None
    if c.fault != "null-usage":
        usage, sent = _finish_usage(c, {"prompt_tokens": tokens, "total_tokens": tokens}), _Sent(tokens, 0, 0, 0)
    return {"object": "list", "data": data, "model": c.model, "usage": usage}, sent


def _response_object(c: _Call, rid: str, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    body = c.body
    reasoning: dict[str, Any] = body["reasoning"] if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": rid,
        "object": "response",
        "created_at": c.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions") if isinstance(body.get("instructions"), str) else None,
        "max_output_tokens": c.max_tokens,
        "max_tool_calls": None,
        "model": c.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _responses_parts(c: _Call) -> tuple[str, str, dict[str, Any] | None, str]:
    """Response id, message item id, optional reasoning item, final status."""
    ch = c.choices[0]
    reasoning_item = {"type": "reasoning", "id": c.rid("rs_", 48, "0123456789abcdef"), "summary": []}
    return (
        c.response_id or c.rid("resp_", 48, "0123456789abcdef"),
        c.rid("msg_", 48, "0123456789abcdef"),
        reasoning_item if ch.reasoning_tokens else None,
        "incomplete" if ch.truncated else "completed",
    )


def _message_item(item_id: str, status: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _function_item(c: _Call, status: str, arguments: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": c.rid("fc_", 48, "0123456789abcdef"),
        "call_id": c.rid("call_", 24),
        "name": _tool_name("responses", c.body),
        "arguments": arguments,
        "status": status,
    }


def _refusal_item(item_id: str, status: str, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "refusal", "refusal": text}]
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": content}


def _responses_body(c: _Call) -> tuple[dict[str, Any], _Sent | None]:
    rid, item_id, reasoning_item, status = _responses_parts(c)
    if c.answer == "reasoning":
        reasoning_item = {
            **(reasoning_item or {"type": "reasoning", "id": c.rid("rs_", 48, "0123456789abcdef")}),
            "summary": [{"type": "summary_text", "text": _THOUGHT}],
        }
    output = [reasoning_item] if reasoning_item else []
    if c.answer == "tool_call":
        status = "completed"
        output += [_function_item(c, "completed", json.dumps(_tool_args(c, n))) for n in range(c.tool_calls)]
    elif c.answer == "refusal":
        status = "completed"
        output.append(_refusal_item(item_id, status, _REFUSAL))
    else:
        output.append(_message_item(item_id, status, c.choices[0].text))
    usage, sent = _responses_usage(c, stream=False)
    return _response_object(c, rid, status, output, usage), sent


def _responses_frames(c: _Call) -> list[_Frame]:
    rid, item_id, reasoning_item, status = _responses_parts(c)
    ch = c.choices[0]
    seq = itertools.count()

    def event(kind_: str, kind: str = "meta", sent: _Sent | None = None, **fields: Any) -> _Frame:
        return _sse({"type": kind_, "sequence_number": next(seq), **fields}, event=kind_, kind=kind, sent=sent)

    started = _response_object(c, rid, "in_progress", [], None)
    frames = [event("response.created", response=started), event("response.in_progress", response=started)]
    output: list[dict[str, Any]] = []
    if reasoning_item:
        frames.append(event("response.output_item.added", output_index=0, item=reasoning_item))
        frames.append(event("response.output_item.done", output_index=0, item=reasoning_item))
        output.append(reasoning_item)
    if c.answer in ("tool_call", "refusal"):
        return _responses_special_frames(c, rid, item_id, event, frames, output)
    at: dict[str, Any] = {"item_id": item_id, "output_index": len(output), "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    frames.append(
        event("response.output_item.added", output_index=len(output), item=_message_item(item_id, "in_progress", None))
    )
    frames.append(event("response.content_part.added", **at, part=empty))
    frames += [event("response.output_text.delta", "content", **at, delta=d, logprobs=[]) for d in ch.deltas]
    frames.append(event("response.output_text.done", **at, text=ch.text, logprobs=[]))
    frames.append(event("response.content_part.done", **at, part={**empty, "text": ch.text}))
    item = _message_item(item_id, status, ch.text)
    frames.append(event("response.output_item.done", output_index=len(output), item=item))
    usage, sent = _responses_usage(c, stream=True)
    final = _response_object(c, rid, status, [*output, item], usage)
    frames.append(event(f"response.{status}", sent=sent, response=final))
    return frames


def _responses_special_frames(
    c: _Call, rid: str, item_id: str, event: Callable[..., _Frame], frames: list[_Frame], output: list[dict[str, Any]]
) -> list[_Frame]:
    """A streamed Responses function call (its arguments in pieces) or refusal, then ``response.completed``."""
    index = len(output)
    k = max(2, len(c.choices[0].deltas))
    if c.answer == "tool_call":
        for n in range(c.tool_calls):
            args = json.dumps(_tool_args(c, n))
            item = _function_item(c, "in_progress", "")
            frames.append(event("response.output_item.added", output_index=index, item=item))
            at: dict[str, Any] = {"item_id": item["id"], "output_index": index}
            deltas = _pieces(args, k)
            frames += [event("response.function_call_arguments.delta", "content", **at, delta=p) for p in deltas]
            frames.append(event("response.function_call_arguments.done", **at, arguments=args))
            item = {**item, "arguments": args, "status": "completed"}
            if n < c.tool_calls - 1:  # every call but the last is done here; the last below, as for one call
                frames.append(event("response.output_item.done", output_index=index, item=item))
                output = [*output, item]
                index += 1
    else:
        frames.append(
            event("response.output_item.added", output_index=index, item=_refusal_item(item_id, "in_progress", None))
        )
        at = {"item_id": item_id, "output_index": index, "content_index": 0}
        frames.append(event("response.content_part.added", **at, part={"type": "refusal", "refusal": ""}))
        frames += [event("response.refusal.delta", "content", **at, delta=p) for p in _pieces(_REFUSAL, k)]
        frames.append(event("response.refusal.done", **at, refusal=_REFUSAL))
        frames.append(event("response.content_part.done", **at, part={"type": "refusal", "refusal": _REFUSAL}))
        item = _refusal_item(item_id, "completed", _REFUSAL)
    frames.append(event("response.output_item.done", output_index=index, item=item))
    usage, sent = _responses_usage(c, stream=True)
    final = _response_object(c, rid, "completed", [*output, item], usage)
    frames.append(event("response.completed", sent=sent, response=final))
    return frames


def _messages_body(c: _Call) -> tuple[dict[str, Any], _Sent | None]:
    ch = c.choices[0]
    usage: dict[str, Any] | None = None
    sent: _Sent | None = None
    if c.fault != "null-usage":
        usage = _finish_usage(
            c, {**_anthropic_input_usage(c), "output_tokens": c.output_tokens, "service_tier": "standard"}
        )
        sent = _anthropic_sent(c)
    return {
        "id": c.rid("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": _anthropic_content(c),
        "stop_reason": "tool_use" if c.answer == "tool_call" else "max_tokens" if ch.truncated else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }, sent


def _anthropic_content(c: _Call) -> list[dict[str, Any]]:
    if c.answer == "tool_call":
        return [
            {
                "type": "tool_use",
                "id": c.rid("toolu_01", 22),
                "name": _tool_name("messages", c.body),
                "input": _tool_args(c),
            }
        ]
    text = [{"type": "text", "text": _REFUSAL if c.answer == "refusal" else c.choices[0].text}]
    if c.answer == "reasoning":
        return [{"type": "thinking", "thinking": _THOUGHT, "signature": c.rid("sig", 40)}, *text]
    return text


def _messages_frames(c: _Call) -> list[_Frame]:
    ch = c.choices[0]
    start_usage = {**_anthropic_input_usage(c), "output_tokens": 1, "service_tier": "standard"}
    if c.fault == "string-numbers":
        start_usage = _stringify(start_usage)
    message: dict[str, Any] = {
        "id": c.rid("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    block: dict[str, Any] = {"type": "text", "text": ""}
    deltas = [{"type": "text_delta", "text": d} for d in ch.deltas]
    stop = "max_tokens" if ch.truncated else "end_turn"
    if c.answer == "tool_call":
        (use,) = _anthropic_content(c)
        block = {**use, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *_pieces(json.dumps(use["input"]), 3)]]
        stop = "tool_use"
    elif c.answer == "refusal":
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(_REFUSAL, max(2, len(ch.deltas)))]
        stop = "end_turn"
    frames = [_sse({"type": "message_start", "message": message}, "message_start")]
    index = 0
    if c.answer == "reasoning":  # a thinking block first: its text, then its signature
        thinking = {"type": "thinking", "thinking": "", "signature": ""}
        frames.append(
            _sse({"type": "content_block_start", "index": 0, "content_block": thinking}, "content_block_start")
        )
        frames += [
            _sse(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": p}},
                "content_block_delta",
                "content",
            )
            for p in _pieces(_THOUGHT, 3)
        ]
        sig = {"type": "signature_delta", "signature": c.rid("sig", 40)}
        frames.append(_sse({"type": "content_block_delta", "index": 0, "delta": sig}, "content_block_delta"))
        frames.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        index = 1
    frames += [
        _sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start"),
        _sse({"type": "ping"}, "ping"),
    ]
    frames += [
        _sse({"type": "content_block_delta", "index": index, "delta": d}, "content_block_delta", "content")
        for d in deltas
    ]
    frames.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
    delta = {"stop_reason": stop, "stop_sequence": None}
    usage = _finish_usage(c, {"output_tokens": c.output_tokens})
    frames.append(
        _sse({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta", sent=_anthropic_sent(c))
    )
    frames.append(_sse({"type": "message_stop"}, "message_stop"))
    return frames


def _gemini_chunk(c: _Call, rid: str, texts: list[str], finish: bool) -> tuple[dict[str, Any], _Sent | None]:
    candidates: list[dict[str, Any]] = []
    for i, (ch, text) in enumerate(zip(c.choices, texts, strict=True)):
        part: dict[str, Any] = {"text": text}
        if c.answer == "tool_call":  # Gemini sends a function call whole, in one chunk
            part = {"functionCall": {"name": _tool_name("gemini", c.body), "args": _tool_args(c)}}
        elif c.answer == "refusal":
            part = {"text": text and _REFUSAL}
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}}
        if finish:
            candidate["finishReason"] = "MAX_TOKENS" if ch.truncated else "STOP"
        candidate["index"] = i
        candidates.append(candidate)
    usage, sent = _gemini_usage(c, final=finish)
    chunk: dict[str, Any] = {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": c.model,
        "responseId": rid,
    }
    return chunk, sent


def _gemini_body(c: _Call) -> tuple[dict[str, Any], _Sent | None]:
    return _gemini_chunk(c, c.rid("", 22), [ch.text for ch in c.choices], True)


def _gemini_frames(c: _Call, sse: bool) -> list[_Frame]:
    """``?alt=sse`` gives SSE events; otherwise the chunks stream as one JSON array."""
    rid = c.rid("", 22)
    count = 1 if c.answer != "text" else max(len(ch.deltas) for ch in c.choices)
    frames: list[_Frame] = []
    for k in range(count):
        texts = [ch.deltas[k] if k < len(ch.deltas) else "" for ch in c.choices]
        chunk, sent = _gemini_chunk(c, rid, texts, k == count - 1)
        data = b"data: " + _dumps(chunk) + b"\r\n\r\n" if sse else (b"," if k else b"[") + _dumps(chunk)
        frames.append(_Frame(data, "content", sent))
    if not sse:
        frames.append(_Frame(b"]"))
    return frames


def _truncate(frames: list[_Frame]) -> list[_Frame]:
    """Everything before the second half of the content events."""
    content = [i for i, f in enumerate(frames) if f.kind == "content"]
    if not content:
        return frames[:1]
    cut = content[len(content) // 2] if len(content) > 1 else content[0] + 1
    return frames[:cut]


def _junk(frames: list[_Frame]) -> list[_Frame]:
    """The same events, interleaved with everything a tolerant SSE parser must skip, in CRLF."""
    out = [_Frame(b": keep-alive\n\n"), _Frame(b"retry: 100\n\n")]
    junk = {
        1: b"data:\n\n",
        2: b'event: ping\ndata: {"type":"ping"}\n\n',
        3: b"data: garbage\n\n",
    }
    for i, frame in enumerate(frames):
        out.append(_Frame(b"id: %d\n" % i + frame.data, frame.kind, frame.sent))
        if i in junk:
            out.append(_Frame(junk[i]))
        if i % 4 == 0:
            out.append(_Frame(b": keep-alive\n\n"))
    for frame in out:
        frame.data = frame.data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return out


# --------------------------------------------------------------------------------------------------
# errors, as each provider shapes them

_OPENAI_ERRORS: dict[str, tuple[int, str, str | None, str]] = {
    "400": (400, "invalid_request_error", "invalid_value", "Invalid value for 'temperature': must be between 0 and 2."),
    "401": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    "404": (
        404,
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    "429": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} on requests per min (RPM): Limit {limit}, Used {limit}, Requested 1. "
        "Please try again in 1s.",
    ),
    "429-quota": (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    "500": (500, "server_error", None, "The server had an error while processing your request. Sorry about that!"),
    "503": (503, "server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def _error_body(
    api: str | None, status: int, message: str, error_type: str, code: str | None, param: str | None, request_id: str
) -> dict[str, Any]:
    if api in _cohere.APIS:
        return _cohere.error_body(message, request_id[4:])
    if api == "messages":
        error = {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}
        return {"type": "error", "error": error, "request_id": request_id}
    if api in _fake_ollama.APIS:
        return _fake_ollama.error_body(message)
    if api == "gemini":
        body: dict[str, Any] = {"code": status, "message": message, "status": _GOOGLE_STATUS.get(status, "UNKNOWN")}
        if status == 429:
            body["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
        return {"error": body}
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


# --------------------------------------------------------------------------------------------------
# the HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for streams in flight
    request_queue_size = 2048
    allow_reuse_address = True
    provider: FakeProvider

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (socket.getfqdn), which can be slow.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # the client went away: not worth a traceback
            return
        _log.error("fake provider: unhandled error serving %s", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    """Routes one connection's requests to ``FakeProvider``; never raises on bad input."""

    protocol_version = "HTTP/1.1"
    server_version = "fakeprovider/1.0"
    sys_version = ""
    timeout = 300
    disable_nagle_algorithm = True  # a stream is many writes (and a reset answer two): no 40 ms delayed-ACK stalls
    server: _Server
    _headers_buffer: list[bytes]  # http.server's own: the status line and headers not written yet
    _started = False

    def log_message(self, format: str, *args: Any) -> None:  # silence the access log
        pass

    def setup(self) -> None:
        super().setup()
        self.server.provider._track(self.connection, add=True)

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # client disconnects, resets, and our own aborts
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.provider._track(self.connection, add=False)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def do_HEAD(self) -> None:
        self.start(200, {"content-type": "application/json", "content-length": str(len(_dumps({"ok": True})))})

    # -- plumbing used by FakeProvider

    def start(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        """Status line and headers (``Server`` and ``Date`` are added), and a whole body if given, in one write: a
        client then reads an answer in one go, not in one or two reads as its parts happen to arrive."""
        self._started = True
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body:
            self._headers_buffer.append(b"\r\n")  # end_headers' work, with the body joined to the same write
            self._headers_buffer.append(body)
            self.flush_headers()
        else:
            self.end_headers()

    def send_body(self, status: int, body: bytes, headers: dict[str, str], content_type: str) -> None:
        self.start(status, {"content-type": content_type, **headers, "content-length": str(len(body))}, body)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, _dumps(payload), headers or {}, "application/json")

    def chunk(self, data: bytes) -> None:
        """One chunk of a chunked body, flushed."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def abort(self) -> None:
        """Close the socket with a TCP reset instead of a FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())  # detach: rfile still refers to the socket, close() alone would not close
        except OSError:
            pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65_537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > _MAX_BODY:
                    raise _InvalidRequest("Request body too large.", status=413)
                parts.append(self.rfile.read(size))
                self.rfile.readline(3)
        length = int(self.headers.get("content-length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise _InvalidRequest("Request body too large.", status=413)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        provider = self.server.provider
        url = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        api = _route(self.command, url.path)
        self._started = False
        try:
            try:
                body = self._read_body()
            except (ValueError, _InvalidRequest) as exc:
                status = exc.status if isinstance(exc, _InvalidRequest) else 400
                self.close_connection = True
                payload = _error_body(
                    api, status, "Could not read the request body.", "invalid_request_error", None, None, ""
                )
                self.send_json(status, payload)
                return
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            provider.requests.append(ReceivedRequest(self.command, url.path, query, headers, body))
            if api is None:
                self.send_json(200, provider._plain_answer(self.command, url.path, headers))
            else:
                provider._answer(self, api, url.path, query, headers, body)
        except OSError:
            self.close_connection = True
        except Exception:
            _log.error("fake provider: error answering %s %s", self.command, self.path, exc_info=True)
            self.close_connection = True
            if not self._started:
                self.send_json(500, _error_body(api, 500, "fake provider bug", "server_error", None, None, ""))


# --------------------------------------------------------------------------------------------------
# the provider


class FakeProvider:
    """A local HTTP server answering like OpenAI, Anthropic and Gemini; use as a context manager.

    >>> with FakeProvider() as provider:
    ...     client = openai.OpenAI(base_url=provider.url + "/v1", api_key="test")
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, config: FakeConfig | None = None) -> None:
        self.host = host
        self.config = config if config is not None else FakeConfig()
        self.requests: collections.deque[ReceivedRequest] = collections.deque(maxlen=10_000)
        self._port = port
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)
        self._totals: dict[str, dict[str, int]] = {}
        self._windows: dict[str, _Window] = {}
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeProvider:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = (_Server6 if ":" in self.host else _Server)((self.host, self._port), _Handler)
        server.provider = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"fakeprovider-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections (streams in flight end at once) and release the port."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        if thread is not None and thread.is_alive():
            server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=2)
        self._server = self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FakeProvider({self.url!r}, running={self._server is not None})"

    @property
    def port(self) -> int:
        """The bound port (the requested one before ``start``)."""
        return int(self._server.server_address[1]) if self._server is not None else self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- bookkeeping

    def totals(self) -> dict[str, dict[str, int]]:
        """Usage actually sent, per response model: calls, input, output, cached and reasoning tokens."""
        with self._lock:
            return {model: dict(counts) for model, counts in self._totals.items()}

    def reset(self) -> None:
        """Forget requests, totals and rate-limit windows; re-seed the random generator."""
        with self._lock:
            self.requests.clear()
            self._totals.clear()
            self._windows.clear()
            self._rng = random.Random(self.config.seed)

    def _record(self, model: str, sent: _Sent, sign: int = 1) -> None:
        with self._lock:
            counts = self._totals.setdefault(
                model, {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "reasoning_tokens": 0}
            )
            counts["calls"] += sign
            counts["input_tokens"] += sign * sent.input
            counts["output_tokens"] += sign * sent.output
            counts["cached_tokens"] += sign * sent.cached
            counts["reasoning_tokens"] += sign * sent.reasoning
            if not counts["calls"]:
                del self._totals[model]

    def _write_counted(self, write: Callable[[], None], model: str, sent: _Sent | None) -> None:
        """Write usage-carrying bytes; they count before the write (a client reading them must see them
        counted) and stop counting if the write fails."""
        if sent is None:
            write()
            return
        self._record(model, sent)
        try:
            write()
        except OSError:
            self._record(model, sent, sign=-1)
            raise

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(sock)
            else:
                self._connections.discard(sock)

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake up when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def _draw(self) -> tuple[random.Random, str | None]:
        """A per-call generator (ids, latency) and the randomly drawn fault, from the seeded sequence."""
        cfg = self.config
        with self._lock:
            rng = random.Random(self._rng.getrandbits(64))
            if cfg.error_rate + cfg.rate_limit_rate + cfg.timeout_rate <= 0:
                return rng, None
            roll, pick = self._rng.random(), self._rng.random()
        if roll < cfg.error_rate:
            return rng, "500" if pick < 0.5 else "503"
        roll -= cfg.error_rate
        if roll < cfg.rate_limit_rate:
            return rng, "429"
        roll -= cfg.rate_limit_rate
        return rng, "stall" if roll < cfg.timeout_rate else None

    def _profile(self, requested: str) -> tuple[ModelProfile, str]:
        """The profile of a requested model (exact, or a dated/aliased variant) and the name to answer with."""
        name = requested.rsplit("/", 1)[-1].lower().replace(".", "-")
        best: tuple[int, ModelProfile] | None = None
        for key, profile in self.config.profiles.items():
            norm = key.lower().replace(".", "-")
            exact = name in (norm, profile.response_model.lower().replace(".", "-"))
            dated = name.startswith(norm + "-") and name[len(norm) + 1 : len(norm) + 2].isdigit()
            if (exact or dated) and (best is None or len(norm) > best[0]):
                best = (len(norm), profile)
        if best is None:
            return _FALLBACK_PROFILE, requested
        return best[1], best[1].response_model or requested

    def _rate_headers(self, api: str, model: str, profile: ModelProfile, tokens: int | None) -> dict[str, str]:
        """Rate-limit headers from a rolling minute per model; ``tokens=None`` means the call was refused."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(model, _Window())
            window.prune(now)
            if tokens is not None:
                window.add(now, tokens)
            used_requests, used_tokens = len(window.events), window.tokens
        rpm, tpm = profile.requests_per_minute, profile.tokens_per_minute
        remaining_requests = 0 if tokens is None else max(0, rpm - used_requests)
        reset_requests = 1.0 if tokens is None else 60.0 * used_requests / rpm
        reset_tokens = 60.0 * min(used_tokens, tpm) / tpm
        if api == "messages":
            return {
                "anthropic-ratelimit-requests-limit": str(rpm),
                "anthropic-ratelimit-requests-remaining": str(remaining_requests),
                "anthropic-ratelimit-requests-reset": _rfc3339(reset_requests),
                "anthropic-ratelimit-tokens-limit": str(tpm),
                "anthropic-ratelimit-tokens-remaining": str(max(0, tpm - used_tokens)),
                "anthropic-ratelimit-tokens-reset": _rfc3339(reset_tokens),
            }
        if api == "gemini" or api in _cohere.APIS or api in _fake_ollama.APIS:
            return {}
        return {
            "x-ratelimit-limit-requests": str(rpm),
            "x-ratelimit-remaining-requests": str(remaining_requests),
            "x-ratelimit-reset-requests": _go_duration(reset_requests),
            "x-ratelimit-limit-tokens": str(tpm),
            "x-ratelimit-remaining-tokens": str(max(0, tpm - used_tokens)),
            "x-ratelimit-reset-tokens": _go_duration(reset_tokens),
        }

    def _plain_answer(self, method: str, path: str, headers: dict[str, str]) -> Any:
        """Non-LLM traffic: model lists, health checks, anything else."""
        if method == "GET" and path.endswith("/models"):
            names = list(self.config.profiles)
            if path.endswith("/v1beta/models"):
                return {"models": [{"name": f"models/{n}", "displayName": n} for n in names]}
            if "anthropic-version" in headers:
                data = [
                    {"type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z"} for n in names
                ]
                return {"data": data, "has_more": False, "first_id": names[0] if names else None, "last_id": None}
            return {
                "object": "list",
                "data": [{"id": n, "object": "model", "created": 1_700_000_000, "owned_by": "system"} for n in names],
            }
        return {"ok": True}

    # -- answering one LLM call

    def _answer(
        self, h: _Handler, api: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> None:
        if api == "retrieve":
            self._retrieve(h, path, query, headers)
            return
        if api == "bedrock":
            _fake_bedrock.answer(self, h, path, headers, raw)
            return
        began = time.monotonic()
        rng, fault = self._draw()
        request_id = "req_" + "".join(rng.choices("0123456789abcdef", k=32))
        id_headers = {"request-id": request_id} if api == "messages" else {"x-request-id": request_id}
        if api == "gemini" or api in _fake_ollama.APIS:
            id_headers = {}
        elif api in _cohere.APIS:
            id_headers = {"x-debug-trace-id": request_id[4:]}
        wanted = headers.get("x-fake-fault", "").strip().lower()
        if wanted:
            if wanted not in FAULTS:
                message = f"Unknown x-fake-fault {wanted!r}; known: {', '.join(sorted(FAULTS))}."
                h.send_json(
                    400,
                    _error_body(api, 400, message, "invalid_request_error", "unknown_fault", None, request_id),
                    id_headers,
                )
                return
            fault = wanted

        def invalid(error: _InvalidRequest) -> None:
            h.send_json(
                error.status,
                _error_body(api, error.status, error.message, "invalid_request_error", None, error.param, request_id),
                id_headers,
            )

        try:
            body = json.loads(raw)
        except ValueError:
            invalid(
                _InvalidRequest("We could not parse the JSON body of your request. The API expects a JSON payload.")
            )
            return
        if not isinstance(body, dict):
            invalid(_InvalidRequest("The request body must be a JSON object."))
            return
        if api in ("chat", "embeddings") and "stream_options" in body and _fake_mistral.is_mistral(path, headers):
            h.send_json(422, _fake_mistral.extra_forbidden("stream_options"), id_headers)
            return
        requested = _request_model(api, body, path)
        profile, model = self._profile(requested)

        if fault in ("slow", "stall"):
            self._wait(self.config.stall_s if fault == "stall" else _float_header(headers, "x-fake-delay", 2.0) or 0.0)
        if fault in _OPENAI_ERRORS:
            status, error_type, code, message = _OPENAI_ERRORS[fault]
            message = message.format(model=requested, limit=profile.requests_per_minute)
            extra = dict(id_headers)
            if status == 429:
                extra.update(self._rate_headers(api, model, profile, None))
                extra["retry-after"] = "1"
            h.send_json(status, _error_body(api, status, message, error_type, code, None, request_id), extra)
            return
        if fault == "html-502":
            h.send_body(502, _HTML_502, {}, "text/html")
            return

        try:
            call, inputs = self._plan(api, path, query, headers, body, raw, requested, profile, model, rng, fault)
        except _InvalidRequest as error:
            invalid(error)
            return

        scale = _float_header(headers, "x-fake-model-latency", None)
        scale = self.config.latency_scale if scale is None else scale
        first_delay = _lognormal(profile.latency_median_s, profile.latency_p95_s, rng) * scale if scale > 0 else 0.0
        if not call.stream:
            self._wait(first_delay)
        out_headers = dict(id_headers)
        out_headers.update(self._rate_headers(api, model, profile, call.prompt_tokens + call.output_tokens))
        if (
            api not in ("messages", "gemini")
            and api not in _cohere.APIS
            and api not in _fake_ollama.APIS
            and not call.mistral
        ):
            out_headers["openai-processing-ms"] = str(round((time.monotonic() - began) * 1000))
        if call.relay_cost is not None:
            out_headers["x-litellm-response-cost"] = str(call.relay_cost)

        if call.stream:
            if api in _fake_ollama.APIS:
                frames = _fake_ollama.frames(call)
            elif call.mistral:
                frames = _fake_mistral.chat_frames(call)
            elif api == "chat" or api == "completions":
                frames = _openai_frames(call)
            elif api == "responses":
                frames = _responses_frames(call)
            elif api == "messages":
                frames = _messages_frames(call)
            elif api == "cohere.chat":
                frames = _cohere.frames(call)
            else:
                frames = _gemini_frames(call, sse=query.get("alt") == "sse")
            sse = api not in _fake_ollama.APIS and (api != "gemini" or query.get("alt") == "sse")
            content_type = "text/event-stream" if sse else "application/json"
            if api in _fake_ollama.APIS:
                content_type = _fake_ollama.CONTENT_TYPE
            delay = _float_header(headers, "x-fake-delay", 0.5) if fault == "slow-chunks" else None
            self._stream(h, call, frames, out_headers, content_type, sse, first_delay, scale, delay)
            return

        pretty = api in ("chat", "completions", "responses", "gemini") and not call.mistral
        if api in _fake_ollama.APIS:
            payload, sent = _fake_ollama.body(call, inputs)
        elif call.mistral:
            payload, sent = _fake_mistral.body(call, inputs)
        elif api == "chat":
            payload, sent = _chat_body(call)
        elif api == "completions":
            payload, sent = _completion_body(call)
        elif api == "embeddings":
            payload, sent = _embeddings_body(call, inputs)
        elif api == "responses":
            payload, sent = _responses_body(call)
        elif api == "messages":
            payload, sent = _messages_body(call)
        elif api in _cohere.APIS:
            payload, sent = _cohere.answer(call, inputs)
        else:
            payload, sent = _gemini_body(call)
        if call.surrogates:
            payload = _spoiled(payload)
        self._send(h, call, _dumps(payload, pretty and fault != "huge"), out_headers, sent)

    def _retrieve(self, h: _Handler, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        """``GET /v1/responses/{id}``: the stored response with that id (its text follows from the id), whole or
        streamed (``?stream=true``); ``x-fake-status: incomplete`` stores an incomplete one. No tokens are used:
        the usage it shows is the original call's, not counted again in ``totals()``."""
        rid = path.rpartition("/responses/")[2]
        if not rid.startswith("resp_"):
            message = f"Response with id '{rid}' not found."
            h.send_json(404, _error_body("responses", 404, message, "invalid_request_error", None, None, ""), {})
            return
        incomplete = headers.get("x-fake-status", "").strip().lower() == "incomplete"
        body: dict[str, Any] = {"model": "gpt-4.1", "input": f"stored {rid}", "instructions": "Answer briefly."}
        if incomplete:
            body["max_output_tokens"] = 1
        raw = _dumps(body)
        profile, model = self._profile("gpt-4.1")
        rng = random.Random(rid)
        call, _ = self._plan("responses", "/v1/responses", {}, headers, body, raw, "gpt-4.1", profile, model, rng, None)
        call.response_id = rid
        stream = query.get("stream", "").lower() == "true"
        if stream:
            call.stream = True
            frames = _responses_frames(call)
            self._stream(
                h, call, [_Frame(f.data, f.kind) for f in frames], {}, "text/event-stream", True, 0.0, 0.0, None
            )
            return
        payload, _ = _responses_body(call)
        h.send_body(200, _dumps(payload, True), {}, "application/json")

    def _plan(
        self,
        api: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: dict[str, Any],
        raw: bytes,
        requested: str,
        profile: ModelProfile,
        model: str,
        rng: random.Random,
        fault: str | None,
    ) -> tuple[_Call, list[tuple[str, int]]]:
        """Everything about the answer that follows from the request: tokens, text, stream shape."""
        mistral = api in ("chat", "embeddings") and _fake_mistral.is_mistral(path, headers)
        inputs: list[tuple[str, int]] = []
        if api == "embeddings":
            inputs = _embedding_inputs(body)
            prompt = sum(t for _, t in inputs)
        elif api in _fake_ollama.EMBEDDING_APIS:
            inputs = _fake_ollama.embedding_inputs(api, body)
            prompt = sum(t for _, t in inputs)
        else:
            prompt = _prompt_tokens(api, body)
        if api == "gemini":
            stream = path.endswith(":streamGenerateContent")
        elif api in _fake_ollama.APIS:
            stream = _fake_ollama.streams(api, body)
        else:
            stream = api not in ("embeddings", "cohere.embed", "cohere.rerank") and body.get("stream") is True
        n = body.get("n", 1) if api in ("chat", "completions") else 1
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
            raise _InvalidRequest("'n' must be an integer between 1 and 128.", "n")
        options = body.get("stream_options")
        include_usage = stream and isinstance(options, dict) and options.get("include_usage") is True
        obfuscation = stream and not (isinstance(options, dict) and options.get("include_obfuscation") is False)
        if stream and self.config.relay_usage and api in ("chat", "completions"):
            include_usage = True  # a relay that sends usage unasked
        max_tokens = _max_tokens(api, body)
        reasoning = _wants_reasoning(api, (requested, model), body)
        chunks = _int_header(headers, "x-fake-chunks", None, 1, 100_000)
        huge = _int_header(headers, "x-fake-size", _HUGE_DEFAULT, 0, 512 * 1024 * 1024) if fault == "huge" else None

        # Text and token counts depend on the request (and the seed) only, never on call order. Not on
        # ``stream_options`` either: it asks how the stream is delivered, not what the model says (a client that
        # adds ``include_usage`` to a request gets the answer the request without it gets).
        key = str(self.config.seed or 0).encode()
        if "stream_options" in body:
            raw = _dumps({k: v for k, v in body.items() if k != "stream_options"})
        digest = hashlib.blake2b(path.encode() + b"\n" + raw, digest_size=8, key=key).digest()
        content_rng = random.Random(int.from_bytes(digest, "little"))
        choices = (
            []
            if api in ("embeddings", "cohere.embed", "cohere.rerank") or api in _fake_ollama.EMBEDDING_APIS
            else [_choice(content_rng, profile, max_tokens, reasoning, chunks, huge) for _ in range(n)]
        )
        if fault == "non-utf8" and choices:
            first = choices[0].deltas[0]
            choices[0].deltas[0] = first[:1] + _SENTINEL + first[1:]
            if not stream:
                choices[0].text = choices[0].deltas[0] + choices[0].text[len(first) :]
        call = _Call(
            api=api,
            body=body,
            model=model,
            profile=profile,
            stream=stream,
            prompt_tokens=prompt,
            cached_tokens=math.floor(prompt * profile.cached_share)
            if prompt >= 16 and api not in _fake_ollama.APIS and not mistral
            else 0,
            choices=choices,
            rng=rng,
            fault=fault,
            include_usage=include_usage,
            obfuscation=obfuscation and api == "chat" and not mistral,
            relay_cost=_float_header(headers, "x-fake-relay-cost", None),
            answer=_answer_kind(api, headers, body),
            tool_calls=_int_header(headers, "x-fake-tool-calls", 1, 1, 8) or 1,
            max_tokens=max_tokens,
            usage_extra=_usage_header(headers),
            surrogates=headers.get("x-fake-surrogates", "").strip() == "1",
            mistral=mistral,
        )
        return call, inputs

    def _send(self, h: _Handler, call: _Call, data: bytes, headers: dict[str, str], sent: _Sent | None) -> None:
        """A whole (non-stream) answer, with the body faults applied."""
        fault = call.fault
        content_type = "application/json"
        if fault == "non-utf8":
            data = data.replace(_SENTINEL_JSON, _INVALID_UTF8)
        elif fault == "malformed-json":
            data, sent = data[: len(data) // 2], None
        elif fault == "empty":
            data, sent = b"", None
        elif fault == "non-json":
            data, sent, content_type = b"upstream answered: everything is fine\n", None, "text/plain; charset=utf-8"
        elif fault == "reset":
            h.start(200, {"content-type": content_type, **headers, "content-length": str(len(data))})
            h.wfile.write(data[: len(data) // 2])
            self._wait(0.05)  # let the client read the headers before the reset
            h.abort()
            return
        self._write_counted(functools.partial(h.send_body, 200, data, headers, content_type), call.model, sent)

    def _stream(
        self,
        h: _Handler,
        call: _Call,
        frames: list[_Frame],
        headers: dict[str, str],
        content_type: str,
        sse: bool,
        first_delay: float,
        scale: float,
        delay: float | None,
    ) -> None:
        """A streamed answer: chunked transfer, one flushed chunk per event, with the stream faults applied."""
        fault = call.fault
        if fault in ("truncated-sse", "reset"):
            frames = _truncate(frames)
        elif fault == "empty":
            frames = []  # headers, then a clean end: not a single event
        elif fault == "junk-sse" and sse:
            frames = _junk(frames)
        head = {"content-type": content_type, **headers, "cache-control": "no-cache", "transfer-encoding": "chunked"}
        if fault == "truncated-sse":
            head["connection"] = "close"
        h.start(200, head)
        gap_mean = call.profile.chunk_interval_s * scale
        for i, frame in enumerate(frames):
            if i == 0:
                self._wait(first_delay)
            elif delay is not None:
                self._wait(delay)
            elif gap_mean > 0:
                self._wait(gap_mean * call.rng.uniform(0.5, 1.5))
            if self._stopping.is_set():
                h.abort()
                return
            data = frame.data
            if fault == "non-utf8" and frame.kind == "content":
                data = data.replace(_SENTINEL_JSON, _INVALID_UTF8)
            if call.surrogates and sse:
                data = _spoiled_frame(data)
            self._write_counted(functools.partial(h.chunk, data), call.model, frame.sent)
        if fault == "reset":
            self._wait(0.05)
            h.abort()
            return
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()


# --------------------------------------------------------------------------------------------------
# command line


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """``python -m otel_llm.fakeprovider``: serve until Ctrl-C, then print the usage totals."""
    parser = argparse.ArgumentParser(prog="python -m otel_llm.fakeprovider", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--latency-scale", type=float, default=0.0, help="0 answers at once, 1 uses realistic latencies"
    )
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of calls answered 500/503")
    parser.add_argument("--rate-limit-rate", type=float, default=0.0, help="share of calls answered 429")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="share of calls that stall")
    parser.add_argument("--stall", type=float, default=5.0, help="seconds a stalled call waits")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        config = FakeConfig(
            latency_scale=args.latency_scale,
            error_rate=args.error_rate,
            rate_limit_rate=args.rate_limit_rate,
            timeout_rate=args.timeout_rate,
            stall_s=args.stall,
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    provider = FakeProvider(args.host, args.port, config)
    try:
        provider.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    print(f"fake LLM provider listening on {provider.url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        provider.stop()
    for model, counts in sorted(provider.totals().items()):
        print(f"{model}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
