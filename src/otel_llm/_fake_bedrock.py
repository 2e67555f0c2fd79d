"""The fake provider's AWS Bedrock runtime: ``Converse``, ``ConverseStream``, ``InvokeModel`` and
``InvokeModelWithResponseStream`` on ``POST /model/{modelId}/{converse,converse-stream,invoke,
invoke-with-response-stream}``, as boto3's ``bedrock-runtime`` client calls them (``endpoint_url`` pointed here).

Answers are shaped as the service shapes them: Converse JSON (``output.message``, ``stopReason``, ``usage`` with
``inputTokens``/``outputTokens``/``totalTokens``, ``metrics.latencyMs``); InvokeModel bodies in each model family's
own format (Anthropic Messages with ``usage``; Amazon Nova's ``output``/``stopReason``/``usage.inputTokens``;
Meta Llama's ``generation``/``prompt_token_count``/``generation_token_count``/``stop_reason``; Mistral's
``outputs``), with the ``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count`` headers; errors as
``{"message": ...}`` with ``x-amzn-ErrorType``. Streams use the binary ``application/vnd.amazon.eventstream``
framing: each message a prelude (total length, headers length, the prelude's CRC32), typed headers
(``:message-type``, ``:event-type`` / ``:exception-type``, ``:content-type``), a JSON payload and the message's
CRC32. ``InvokeModelWithResponseStream`` sends ``chunk`` events whose ``bytes`` (base64) carry the family's own
stream chunks, the last with ``amazon-bedrock-invocationMetrics``.

The model family follows from the model id, inference-profile ids (``us.anthropic.claude-...``) and ARNs
(``arn:aws:bedrock:...:foundation-model/...``, ``.../inference-profile/...``) included. The ``x-fake-*`` headers of
``otel_llm.fakeprovider`` apply (``x-fake-fault``, ``x-fake-chunks``, ``x-fake-answer: tool_call`` for Converse),
plus one fault only a Bedrock stream has: ``stream-exception``, a ``modelStreamErrorException`` message in place
of the second half of the stream.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import random
import struct
import time
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from .fakeprovider import FakeProvider, _Handler

__all__ = ["ACTIONS", "STREAM_EXCEPTION", "answer", "encode_event", "family_of", "faults", "route"]

ACTIONS = ("converse", "converse-stream", "invoke", "invoke-with-response-stream")
STREAM_EXCEPTION = "stream-exception"
_REGION_PREFIXES = frozenset({"us", "eu", "apac", "global", "au", "jp", "ca", "us-gov", "in"})
_FAMILIES = frozenset({"anthropic", "amazon", "meta", "mistral"})

# x-fake-fault -> (status, x-amzn-ErrorType, message), as Bedrock answers
_ERRORS: dict[str, tuple[int, str, str]] = {
    "400": (400, "ValidationException", "The provided request is not valid"),
    "401": (403, "UnrecognizedClientException", "The security token included in the request is invalid."),
    "404": (404, "ResourceNotFoundException", "Could not resolve the foundation model from the provided model id."),
    "429": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "429-quota": (429, "ServiceQuotaExceededException", "You have exceeded the quota for this account."),
    "500": (500, "InternalServerException", "The server encountered an internal error."),
    "503": (503, "ServiceUnavailableException", "The service is currently unavailable."),
}


def faults() -> frozenset[str]:
    """Every ``x-fake-fault`` a Bedrock route accepts."""
    from .fakeprovider import FAULTS

    return FAULTS | {STREAM_EXCEPTION}


def route(method: str, path: str) -> bool:
    """``POST /model/{modelId}/{action}``: a Bedrock runtime call."""
    if method != "POST" or not path.startswith("/model/"):
        return False
    return path.rpartition("/")[2] in ACTIONS


def family_of(model_id: str) -> str | None:
    """``anthropic`` / ``amazon`` / ``meta`` / ``mistral`` of a model id, inference-profile id or ARN."""
    name = model_id.rpartition("/")[2] if model_id.startswith("arn:") else model_id
    parts = name.split(".")
    if len(parts) > 2 and parts[0] in _REGION_PREFIXES:
        parts = parts[1:]
    return parts[0] if parts and parts[0] in _FAMILIES else None


# --------------------------------------------------------------------------------------------------
# the binary event-stream framing


def _header(name: str, value: str) -> bytes:
    n = name.encode()
    v = value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v  # 7: a string value


def encode_event(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length), the prelude's CRC32, headers, payload,
    and the CRC32 of everything before it."""
    block = b"".join(_header(k, v) for k, v in headers)
    prelude = struct.pack("!II", 16 + len(block) + len(payload), len(block))
    head = prelude + struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    message = head + block + payload
    return message + struct.pack("!I", zlib.crc32(message) & 0xFFFFFFFF)


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    return encode_event(
        [(":event-type", kind), (":content-type", "application/json"), (":message-type", "event")],
        json.dumps(payload, separators=(",", ":")).encode(),
    )


def _exception(kind: str, message: str) -> bytes:
    return encode_event(
        [(":exception-type", kind), (":content-type", "application/json"), (":message-type", "exception")],
        json.dumps({"message": message}).encode(),
    )


def _pad(rng: random.Random) -> str:
    """The ``p`` field the service pads its events with (a length-hiding filler)."""
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"[: rng.randint(1, 30)]


# --------------------------------------------------------------------------------------------------
# requests


def _text_words(value: Any) -> int:
    from .fakeprovider import _words

    return _words(value)


def _prompt_tokens(family: str, converse: bool, body: dict[str, Any]) -> int:
    """Input tokens (about words * 1.3 + 3 per message), as ``fakeprovider`` counts them."""
    from .fakeprovider import _InvalidRequest, _tokens

    if converse or family in ("anthropic", "amazon") or isinstance(body.get("messages"), list):
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _InvalidRequest("messages must not be empty")
        words, count = sum(_text_words(m) for m in messages), len(messages)
        system = body.get("system")
        if system:
            words, count = words + _text_words(system), count + 1
        return _tokens(words, count)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _InvalidRequest("prompt must be a non-empty string")
    return _tokens(_text_words(prompt))


def _max_tokens(family: str, converse: bool, body: dict[str, Any]) -> int | None:
    if converse:
        cfg = body.get("inferenceConfig")
        value = cfg.get("maxTokens") if isinstance(cfg, dict) else None
    elif family == "amazon":
        cfg = body.get("inferenceConfig")
        value = (cfg.get("maxTokens") or cfg.get("max_new_tokens")) if isinstance(cfg, dict) else None
    elif family == "meta":
        value = body.get("max_gen_len")
    else:
        value = body.get("max_tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _tool_name(body: dict[str, Any]) -> str:
    cfg = body.get("toolConfig")
    tools = cfg.get("tools") if isinstance(cfg, dict) else None
    for tool in tools if isinstance(tools, list) else ():
        spec = tool.get("toolSpec") if isinstance(tool, dict) else None
        if isinstance(spec, dict) and isinstance(spec.get("name"), str) and spec["name"]:
            return spec["name"]
    return "get_weather"


_STOP = {  # (converse / family) -> (finished, cut at max tokens)
    "converse": ("end_turn", "max_tokens"),
    "anthropic": ("end_turn", "max_tokens"),
    "amazon": ("end_turn", "max_tokens"),
    "meta": ("stop", "length"),
    "mistral": ("stop", "length"),
}


# --------------------------------------------------------------------------------------------------
# answering


def answer(provider: FakeProvider, h: _Handler, path: str, headers: dict[str, str], raw: bytes) -> None:
    """Answer one Bedrock runtime call (``path`` as sent, percent-escapes included)."""
    from .fakeprovider import _HTML_502, _choice, _float_header, _int_header, _InvalidRequest, _lognormal, _Sent

    began = time.monotonic()
    rng, fault = provider._draw()
    request_id = "-".join(
        "".join(rng.choices("0123456789abcdef", k=n)) for n in (8, 4, 4, 4, 12)
    )  # a UUID, as x-amzn-RequestId is
    ids = {"x-amzn-RequestId": request_id}
    _, _, rest = path.partition("/model/")
    model_part, _, action = rest.rpartition("/")
    model_id = unquote(model_part)

    def error(status: int, kind: str, message: str) -> None:
        h.send_json(status, {"message": message}, {**ids, "x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/"})

    wanted = headers.get("x-fake-fault", "").strip().lower()
    if wanted:
        if wanted not in faults():
            error(400, "ValidationException", f"Unknown x-fake-fault {wanted!r}.")
            return
        fault = wanted
    family = family_of(model_id)
    if family is None:
        error(400, "ValidationException", "The provided model identifier is invalid.")
        return
    converse = action.startswith("converse")
    stream = action.endswith("stream")
    try:
        body = json.loads(raw)
    except ValueError:
        error(400, "ValidationException", "Malformed input request, please reformat your input and try again.")
        return
    if not isinstance(body, dict):
        error(400, "ValidationException", "Malformed input request, please reformat your input and try again.")
        return
    if fault in ("slow", "stall"):
        wait = provider.config.stall_s if fault == "stall" else _float_header(headers, "x-fake-delay", 2.0)
        provider._wait(wait or 0.0)
    if fault in _ERRORS:
        error(*_ERRORS[fault])
        return
    if fault == "html-502":
        h.send_body(502, _HTML_502, {}, "text/html")
        return
    try:
        prompt = _prompt_tokens(family, converse, body)
    except _InvalidRequest as exc:
        error(400, "ValidationException", exc.message)
        return
    profile, _ = provider._profile(model_id)
    key = str(provider.config.seed or 0).encode()
    digest = hashlib.blake2b(path.encode() + b"\n" + raw, digest_size=8, key=key).digest()
    content_rng = random.Random(int.from_bytes(digest, "little"))
    max_tokens = _max_tokens(family, converse, body)
    chunks = _int_header(headers, "x-fake-chunks", None, 1, 100_000)
    choice = _choice(content_rng, profile, max_tokens, False, chunks, None)
    tool = converse and headers.get("x-fake-answer", "").strip().lower() == "tool_call"
    output = choice.output_tokens
    finished, cut = _STOP["converse" if converse else family]
    reason = "tool_use" if tool else (cut if choice.truncated else finished)
    sent = _Sent(prompt, output, 0, 0)
    scale = _float_header(headers, "x-fake-model-latency", None)
    scale = provider.config.latency_scale if scale is None else scale
    first_delay = _lognormal(profile.latency_median_s, profile.latency_p95_s, rng) * scale if scale > 0 else 0.0
    tool_use: dict[str, Any] = {"toolUseId": "tooluse_" + "".join(rng.choices("abcdefghijklmnop0123456789", k=22))}
    if tool:
        tool_use["name"] = _tool_name(body)
        tool_use["input"] = {"location": ("Lisbon", "Osaka", "Quito")[digest[0] % 3], "unit": "celsius"}

    if not stream:
        provider._wait(first_delay)
        latency = max(1, round((time.monotonic() - began) * 1000))
        if converse:
            content = [{"toolUse": tool_use}] if tool else [{"text": choice.text}]
            payload: dict[str, Any] = {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": reason,
                "usage": {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + output},
                "metrics": {"latencyMs": latency},
            }
            out_headers = dict(ids)
        else:
            payload = _invoke_body(family, model_id, choice.text, reason, prompt, output, rng)
            out_headers = {
                **ids,
                "X-Amzn-Bedrock-Invocation-Latency": str(latency),
                "X-Amzn-Bedrock-Input-Token-Count": str(prompt),
                "X-Amzn-Bedrock-Output-Token-Count": str(output),
            }
        data = json.dumps(payload, separators=(",", ":")).encode()
        from .fakeprovider import _Call

        call = _Call(
            api="bedrock",
            body=body,
            model=model_id,
            profile=profile,
            stream=False,
            prompt_tokens=prompt,
            cached_tokens=0,
            choices=[choice],
            rng=rng,
            fault=fault,
            include_usage=False,
            relay_cost=None,
            max_tokens=max_tokens,
        )
        provider._send(h, call, data, out_headers, sent)
        return

    frames = _converse_frames(choice, reason, tool_use if tool else None, prompt, output, rng) if converse else None
    if frames is None:
        frames = _invoke_frames(family, model_id, choice.deltas, reason, prompt, output, rng)
    delay = _float_header(headers, "x-fake-delay", 0.5) if fault == "slow-chunks" else None
    out_headers = dict(ids)
    if not converse:
        out_headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
    gap = profile.chunk_interval_s * scale
    _stream(provider, h, model_id, frames, fault, sent, out_headers, first_delay, gap, delay)


def _invoke_body(
    family: str, model_id: str, text: str, reason: str, prompt: int, output: int, rng: random.Random
) -> dict[str, Any]:
    """An InvokeModel answer in the model family's own body format."""
    if family == "anthropic":
        return {
            "id": "msg_bdrk_" + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=24)),
            "type": "message",
            "role": "assistant",
            "model": _anthropic_model(model_id),
            "content": [{"type": "text", "text": text}],
            "stop_reason": reason,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": output},
        }
    if family == "amazon":
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": reason,
            "usage": {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + output},
        }
    if family == "meta":
        return {
            "generation": text,
            "prompt_token_count": prompt,
            "generation_token_count": output,
            "stop_reason": reason,
        }
    return {"outputs": [{"text": text, "stop_reason": reason}]}


def _anthropic_model(model_id: str) -> str:
    """The model name an Anthropic body on Bedrock carries: ``claude-...`` without vendor and region."""
    name = model_id.rpartition("/")[2] if model_id.startswith("arn:") else model_id
    i = name.find("anthropic.")
    name = name[i + 10 :] if i >= 0 else name
    base, sep, version = name.rpartition("-v")  # the Bedrock version suffix ("-v1:0") is not part of it
    return base if sep and version[:1].isdigit() else name


def _metrics(prompt: int, output: int) -> dict[str, int]:
    return {"inputTokenCount": prompt, "outputTokenCount": output, "invocationLatency": 120, "firstByteLatency": 40}


class _Out:
    """One stream message: its bytes, whether it carries content, whether it completes the usage."""

    __slots__ = ("content", "data", "usage")

    def __init__(self, data: bytes, content: bool = False, usage: bool = False) -> None:
        self.data, self.content, self.usage = data, content, usage


def _converse_frames(
    choice: Any, reason: str, tool_use: dict[str, Any] | None, prompt: int, output: int, rng: random.Random
) -> list[_Out]:
    out = [_Out(_event("messageStart", {"p": _pad(rng), "role": "assistant"}))]
    if tool_use is not None:
        start = {"toolUse": {"toolUseId": tool_use["toolUseId"], "name": tool_use["name"]}}
        out.append(_Out(_event("contentBlockStart", {"contentBlockIndex": 0, "p": _pad(rng), "start": start})))
        args = json.dumps(tool_use["input"])
        half = len(args) // 2
        for piece in (args[:half], args[half:]):
            delta = {"contentBlockIndex": 0, "delta": {"toolUse": {"input": piece}}, "p": _pad(rng)}
            out.append(_Out(_event("contentBlockDelta", delta), content=True))
    else:
        for piece in choice.deltas:
            delta = {"contentBlockIndex": 0, "delta": {"text": piece}, "p": _pad(rng)}
            out.append(_Out(_event("contentBlockDelta", delta), content=True))
    out.append(_Out(_event("contentBlockStop", {"contentBlockIndex": 0, "p": _pad(rng)})))
    out.append(_Out(_event("messageStop", {"p": _pad(rng), "stopReason": reason})))
    usage = {"inputTokens": prompt, "outputTokens": output, "totalTokens": prompt + output}
    meta = {"metrics": {"latencyMs": 150}, "p": _pad(rng), "usage": usage}
    out.append(_Out(_event("metadata", meta), usage=True))
    return out


def _invoke_frames(
    family: str, model_id: str, deltas: list[str], reason: str, prompt: int, output: int, rng: random.Random
) -> list[_Out]:
    """InvokeModelWithResponseStream: ``chunk`` events carrying the family's own stream chunks (base64)."""
    chunks: list[tuple[dict[str, Any], bool]] = []  # (chunk, carries content)
    last = len(deltas) - 1
    if family == "anthropic":
        message = _invoke_body(family, model_id, "", reason, prompt, 1, rng)
        message.update(content=[], stop_reason=None)
        chunks.append(({"type": "message_start", "message": message}, False))
        block = {"type": "text", "text": ""}
        chunks.append(({"type": "content_block_start", "index": 0, "content_block": block}, False))
        for piece in deltas:
            delta = {"type": "text_delta", "text": piece}
            chunks.append(({"type": "content_block_delta", "index": 0, "delta": delta}, True))
        chunks.append(({"type": "content_block_stop", "index": 0}, False))
        end = {"stop_reason": reason, "stop_sequence": None}
        chunks.append(({"type": "message_delta", "delta": end, "usage": {"output_tokens": output}}, False))
        chunks.append(({"type": "message_stop"}, False))
    elif family == "amazon":
        chunks.append(({"messageStart": {"role": "assistant"}}, False))
        for i, piece in enumerate(deltas):
            chunks.append(({"contentBlockDelta": {"delta": {"text": piece}, "contentBlockIndex": 0}}, True))
            if i == last:
                chunks.append(({"contentBlockStop": {"contentBlockIndex": 0}}, False))
        chunks.append(({"messageStop": {"stopReason": reason}}, False))
        usage = {"inputTokens": prompt, "outputTokens": output}
        chunks.append(({"metadata": {"usage": usage, "metrics": {}, "trace": {}}}, False))
    elif family == "meta":
        for i, piece in enumerate(deltas):
            gen = math.ceil(output * (i + 1) / len(deltas))
            chunks.append(
                (
                    {
                        "generation": piece,
                        "prompt_token_count": prompt if i == 0 else None,
                        "generation_token_count": gen,
                        "stop_reason": reason if i == last else None,
                    },
                    True,
                )
            )
    else:
        for i, piece in enumerate(deltas):
            chunks.append(({"outputs": [{"text": piece, "stop_reason": reason if i == last else None}]}, True))
    chunks[-1][0]["amazon-bedrock-invocationMetrics"] = _metrics(prompt, output)
    out = []
    for i, (chunk, content) in enumerate(chunks):
        encoded = base64.b64encode(json.dumps(chunk, separators=(",", ":")).encode()).decode()
        out.append(_Out(_event("chunk", {"bytes": encoded, "p": _pad(rng)}), content, usage=i == len(chunks) - 1))
    return out


def _stream(
    provider: FakeProvider,
    h: _Handler,
    model: str,
    frames: list[_Out],
    fault: str | None,
    sent: Any,
    headers: dict[str, str],
    first_delay: float,
    gap_mean: float,
    delay: float | None,
) -> None:
    """A streamed answer: chunked transfer, one flushed chunk per event-stream message, faults applied."""
    content = [i for i, f in enumerate(frames) if f.content]
    cut = (content[len(content) // 2] if len(content) > 1 else content[0] + 1) if content else 1
    if fault in ("truncated-sse", "reset"):
        frames = frames[:cut]
    elif fault == STREAM_EXCEPTION:
        frames = [*frames[:cut], _Out(_exception("modelStreamErrorException", "The model stream failed."))]
    elif fault == "empty":
        frames = []
    head = {
        "content-type": "application/vnd.amazon.eventstream",
        **headers,
        "transfer-encoding": "chunked",
    }
    if fault == "truncated-sse":
        head["connection"] = "close"
    h.start(200, head)
    rng = random.Random(len(frames))
    for i, frame in enumerate(frames):
        if i == 0:
            provider._wait(first_delay)
        elif delay is not None:
            provider._wait(delay)
        elif gap_mean > 0:
            provider._wait(gap_mean * rng.uniform(0.5, 1.5))
        if provider._stopping.is_set():
            h.abort()
            return
        provider._write_counted(functools.partial(h.chunk, frame.data), model, sent if frame.usage else None)
    if fault == "reset":
        provider._wait(0.05)
        h.abort()
        return
    h.wfile.write(b"0\r\n\r\n")
    h.wfile.flush()
