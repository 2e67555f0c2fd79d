"""Message content of every wire format -> the GenAI conventions' JSON shapes.

Pure functions over decoded JSON (dicts and lists), no OpenTelemetry import. The results follow the
conventions' schemas for ``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions`` and ``gen_ai.tool.definitions``:

* a message is ``{"role", "parts"}`` (plus ``"name"`` when the wire gives one); an output message also
  has ``"finish_reason"``;
* parts are ``text``, ``reasoning``, ``tool_call`` (``id``, ``name``, ``arguments``),
  ``tool_call_response`` (``id``, ``response``), ``blob`` (``mime_type``, ``modality``, ``content``),
  ``uri`` (``mime_type``, ``modality``, ``uri``), ``file`` (``mime_type``, ``modality``, ``file_id``),
  ``server_tool_call`` and ``server_tool_call_response``.

Where the official OpenAI instrumentation defines a behaviour, it is the one followed: tool-call
arguments become the parsed JSON value when the wire string is valid JSON and stay the raw string
otherwise, a refusal is a text part, system and developer messages of a chat history stay in the input
messages, and only instructions given apart (Responses ``instructions``, Anthropic ``system``, Gemini
``systemInstruction``) become system instructions. Base64 payloads are kept as given (sizes are the
recorder's business). Nothing here raises: a body of the wrong shape gives less content, never an error.
"""

from __future__ import annotations

import base64
import functools
import json
import mimetypes
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from ._text import clean_deep
from .cohere import CohereStream, cohere_request_content, cohere_response_messages
from .ollama_messages import OllamaStream, ollama_request_content, ollama_response_messages
from .routes import (
    ANTHROPIC_MESSAGES,
    COHERE_CHAT,
    GEMINI,
    OLLAMA_CHAT,
    OLLAMA_GENERATE,
    OPENAI_CHAT,
    OPENAI_COMPLETIONS,
    OPENAI_RESPONSES,
)

__all__ = ["StreamContent", "request_content", "response_messages"]

Part = dict[str, Any]
Message = dict[str, Any]

_IMAGE = "image"
_AUDIO = "audio"
_VIDEO = "video"
_DOCUMENT = "document"

# OpenAI `input_audio.format` values; "mp3" is MPEG audio ("audio/mp3" is not a registered type).
_AUDIO_MIME = {"wav": "audio/wav", "mp3": "audio/mpeg"}


# --- small readers -------------------------------------------------------------------------------


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list:
    return v if isinstance(v, list) else []


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _get(d: dict, camel: str, snake: str) -> Any:
    """A Gemini field, which the REST API accepts in camelCase and in snake_case."""
    v = d.get(camel)
    return d.get(snake) if v is None else v


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN / Infinity are not JSON and could not be serialized back


def _arguments(raw: Any, empty: Any = None) -> Any:
    """Tool-call arguments: the JSON value when ``raw`` is a valid JSON string, else ``raw`` itself."""
    if not isinstance(raw, str):
        return raw
    if not raw:
        return empty
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return raw


# --- parts ---------------------------------------------------------------------------------------


def _text(content: str) -> Part:
    return {"type": "text", "content": content}


def _reasoning(content: str) -> Part:
    return {"type": "reasoning", "content": content}


def _tool_call(call_id: Any, name: Any, arguments: Any) -> Part:
    return {
        "type": "tool_call",
        "id": call_id if isinstance(call_id, str) else None,
        "name": name if isinstance(name, str) else "",
        "arguments": arguments,
    }


def _tool_response(call_id: Any, response: Any) -> Part:
    return {"type": "tool_call_response", "id": call_id if isinstance(call_id, str) else None, "response": response}


def _blob(mime_type: Any, modality: str, content: str) -> Part:
    return {"type": "blob", "mime_type": _str(mime_type) or None, "modality": modality, "content": content}


def _uri(mime_type: Any, modality: str, uri: str) -> Part:
    return {"type": "uri", "mime_type": _str(mime_type) or None, "modality": modality, "uri": uri}


def _file(mime_type: Any, modality: str, file_id: str) -> Part:
    return {"type": "file", "mime_type": _str(mime_type) or None, "modality": modality, "file_id": file_id}


def _modality_of(mime_type: Any) -> str:
    if isinstance(mime_type, str):
        if mime_type.startswith("image/"):
            return _IMAGE
        if mime_type.startswith("audio/"):
            return _AUDIO
        if mime_type.startswith("video/"):
            return _VIDEO
    return _DOCUMENT


def _mime_of_filename(filename: Any) -> str | None:
    """The media type a file name suggests (a dict lookup on the extension, no guessing beyond it)."""
    if not isinstance(filename, str) or "." not in filename:
        return None
    return mimetypes.types_map.get("." + filename.rpartition(".")[2].lower())


def _url_part(url: str, modality: str) -> Part:
    """A ``data:`` URL -> blob (payload kept as given when base64), any other URL -> uri."""
    if not url.startswith("data:"):
        return _uri(None, modality, url)
    header, _, payload = url[5:].partition(",")
    mime_type = header.split(";", 1)[0] or None
    if ";base64" in header.lower():
        return _blob(mime_type, modality, payload)
    # A plain data: URL carries percent-encoded bytes (RFC 2397); the blob's content is base64.
    return _blob(mime_type, modality, base64.b64encode(unquote_to_bytes(payload)).decode("ascii"))


def _audio_part(audio: Any) -> Part | None:
    audio = _dict(audio)
    data = audio.get("data")
    if not isinstance(data, str):
        return None
    fmt = audio.get("format")
    return _blob(_AUDIO_MIME.get(fmt) if isinstance(fmt, str) else None, _AUDIO, data)


def _file_part(desc: dict, modality: str = _DOCUMENT) -> Part | None:
    """An OpenAI file descriptor: by id -> file, inline data -> blob, by URL -> uri."""
    mime_type = _mime_of_filename(desc.get("filename"))
    file_id = desc.get("file_id")
    if isinstance(file_id, str) and file_id:
        return _file(mime_type, modality, file_id)
    data = desc.get("file_data")
    if isinstance(data, str) and data:
        if data.startswith("data:"):
            return _url_part(data, modality)
        return _blob(mime_type, modality, data)
    url = desc.get("file_url")
    if isinstance(url, str) and url:
        return _url_part(url, modality)
    return None


def _openai_parts(content: Any) -> list[Part]:
    """OpenAI content (chat messages and Responses message items): a string or a list of typed parts."""
    if isinstance(content, str):
        return [_text(content)]
    parts: list[Part] = []
    for item in _list(content):
        if isinstance(item, str):
            parts.append(_text(item))
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in ("text", "input_text", "output_text") or (kind is None and "text" in item):
            text = item.get("text")
            if isinstance(text, str):
                parts.append(_text(text))
        elif kind == "refusal":
            refusal = item.get("refusal")
            if isinstance(refusal, str):
                parts.append(_text(refusal))
        elif kind in ("image_url", "input_image"):
            url = item.get("image_url")
            if isinstance(url, dict):
                url = url.get("url")
            if isinstance(url, str) and url:
                parts.append(_url_part(url, _IMAGE))
            elif isinstance(item.get("file_id"), str) and item["file_id"]:
                parts.append(_file(None, _IMAGE, item["file_id"]))
        elif kind == "input_audio":
            audio = _audio_part(item.get("input_audio"))
            if audio is not None:
                parts.append(audio)
        elif kind in ("file", "input_file"):
            # Chat nests the descriptor under "file"; Responses puts its fields on the part itself.
            desc = item.get("file")
            part = _file_part(desc if isinstance(desc, dict) else item)
            if part is not None:
                parts.append(part)
    return parts


def _message(role: Any, parts: list[Part], name: Any = None) -> Message:
    msg: Message = {"role": role if isinstance(role, str) and role else "user", "parts": parts}
    if isinstance(name, str) and name:
        msg["name"] = name
    return msg


def _output(role: Any, parts: list[Part], finish_reason: str) -> Message:
    return {
        "role": role if isinstance(role, str) and role else "assistant",
        "parts": parts,
        "finish_reason": finish_reason,
    }


def _function_definition(name: Any, description: Any, parameters: Any) -> dict:
    return {
        "type": "function",
        "name": name if isinstance(name, str) else "",
        "description": description if isinstance(description, str) else None,
        "parameters": parameters,
    }


def _generic_definition(kind: str, name: Any) -> dict:
    return {"type": kind, "name": name if isinstance(name, str) and name else kind}


# --- OpenAI chat completions ---------------------------------------------------------------------


def _chat_finish(reason: Any) -> str:
    if reason in ("tool_calls", "function_call"):
        return "tool_call"
    return reason if isinstance(reason, str) and reason else "error"


def _chat_reasoning(msg: dict) -> str | None:
    """DeepSeek-style ``reasoning_content`` (or a relay's ``reasoning`` string) of a message or delta."""
    text = msg.get("reasoning_content")
    if not isinstance(text, str):
        text = msg.get("reasoning")
    return text if isinstance(text, str) and text else None


def _chat_tool_calls(calls: Any) -> list[Part]:
    parts: list[Part] = []
    for call in _list(calls):
        if not isinstance(call, dict):
            continue
        custom = call.get("custom")
        if call.get("type") == "custom" and isinstance(custom, dict):
            parts.append(_tool_call(call.get("id"), custom.get("name"), custom.get("input")))
            continue
        fn = _dict(call.get("function"))
        parts.append(_tool_call(call.get("id"), fn.get("name"), _arguments(fn.get("arguments"))))
    return parts


def _chat_assistant_parts(msg: dict) -> list[Part]:
    parts: list[Part] = []
    reasoning = _chat_reasoning(msg)
    if reasoning is not None:
        parts.append(_reasoning(reasoning))
    parts += _chat_tool_calls(msg.get("tool_calls"))
    fn = msg.get("function_call")  # the legacy single function call
    if isinstance(fn, dict):
        parts.append(_tool_call(None, fn.get("name"), _arguments(fn.get("arguments"))))
    parts += _openai_parts(msg.get("content"))
    refusal = msg.get("refusal")
    if isinstance(refusal, str):
        parts.append(_text(refusal))
    audio = msg.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("data"), str):
        part = _blob(None, _AUDIO, audio["data"])
        if isinstance(audio.get("transcript"), str):
            part["transcript"] = audio["transcript"]
        parts.append(part)
    return parts


def _chat_request(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    messages: list[Message] = []
    for msg in _list(body.get("messages")):
        if not isinstance(msg, dict):
            continue
        role = msg.get("role")
        if role == "assistant":
            parts = _chat_assistant_parts(msg)
        elif role == "tool":
            parts = [_tool_response(msg.get("tool_call_id"), msg.get("content"))]
        else:  # system, developer, user, and anything else, with their own role
            parts = _openai_parts(msg.get("content"))
        if parts:
            messages.append(_message(role, parts, msg.get("name")))
    tools: list[dict] = []
    for tool in _list(body.get("tools")):
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if kind == "function":
            fn = _dict(tool.get("function"))
            tools.append(_function_definition(fn.get("name"), fn.get("description"), fn.get("parameters")))
        elif kind == "custom":
            tools.append(_generic_definition("custom", _dict(tool.get("custom")).get("name")))
        elif isinstance(kind, str) and kind:
            tools.append(_generic_definition(kind, tool.get("name")))
    for fn in _list(body.get("functions")):  # the legacy form of `tools`
        if isinstance(fn, dict):
            tools.append(_function_definition(fn.get("name"), fn.get("description"), fn.get("parameters")))
    return messages, [], tools


def _chat_response(body: dict) -> list[Message]:
    out: list[Message] = []
    for choice in _list(body.get("choices")):
        if not isinstance(choice, dict):
            continue
        msg = choice.get("message")
        if not isinstance(msg, dict):
            continue
        out.append(_output(msg.get("role"), _chat_assistant_parts(msg), _chat_finish(choice.get("finish_reason"))))
    return out


class _ToolBuffer:
    __slots__ = ("args", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.args: list[str] = []

    def part(self) -> Part:
        return _tool_call(self.id, self.name, _arguments("".join(self.args)))


class _ChoiceBuffer:
    __slots__ = ("finish", "reasoning", "refusal", "role", "text", "tools", "tools_by_index")

    def __init__(self) -> None:
        self.role: str | None = None
        self.finish: Any = None
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.tools: list[_ToolBuffer] = []
        self.tools_by_index: dict[Any, _ToolBuffer] = {}

    def tool(self, call: dict) -> _ToolBuffer:
        index = call.get("index")
        call_id = call.get("id")
        has_id = isinstance(call_id, str) and call_id
        if isinstance(index, int):
            key: Any = index
        elif has_id:
            key = call_id  # relays that leave out `index` send each call whole, under its own id
        elif self.tools:
            return self.tools[-1]
        else:
            key = 0
        buf = self.tools_by_index.get(key)
        if buf is not None and has_id and buf.id is not None and buf.id != call_id:
            buf = None  # relays that number every call 0: a new id is a new call
        if buf is None:
            buf = self.tools_by_index[key] = _ToolBuffer()
            self.tools.append(buf)
        return buf

    def message(self) -> Message:
        parts: list[Part] = []
        if self.reasoning:
            parts.append(_reasoning("".join(self.reasoning)))
        if self.text:
            parts.append(_text("".join(self.text)))
        if self.refusal:
            parts.append(_text("".join(self.refusal)))
        parts += [buf.part() for buf in self.tools]
        return _output(self.role, parts, _chat_finish(self.finish))


class _ChatStream:
    """OpenAI chat (and legacy completions) chunks: one buffer per choice index."""

    __slots__ = ("choices",)

    def __init__(self) -> None:
        self.choices: dict[int, _ChoiceBuffer] = {}

    def _choice(self, choice: dict) -> _ChoiceBuffer:
        index = choice.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            index = 0
        buf = self.choices.get(index)
        if buf is None:
            buf = self.choices[index] = _ChoiceBuffer()
        return buf

    def feed(self, event: Any) -> None:
        for choice in _list(_dict(event).get("choices")):
            if not isinstance(choice, dict):
                continue
            buf = self._choice(choice)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                buf.finish = reason
            text = choice.get("text")  # legacy completions
            if isinstance(text, str):
                buf.text.append(text)
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            role = delta.get("role")
            if isinstance(role, str) and role:
                buf.role = role
            content = delta.get("content")
            if isinstance(content, str):
                buf.text.append(content)
            refusal = delta.get("refusal")
            if isinstance(refusal, str):
                buf.refusal.append(refusal)
            reasoning = _chat_reasoning(delta)
            if reasoning is not None:
                buf.reasoning.append(reasoning)
            for call in _list(delta.get("tool_calls")):
                if isinstance(call, dict):
                    self._tool_delta(buf.tool(call), call.get("id"), _dict(call.get("function")))
            fn = delta.get("function_call")
            if isinstance(fn, dict):
                self._tool_delta(buf.tool({"index": -1}), None, fn)

    @staticmethod
    def _tool_delta(tool: _ToolBuffer, call_id: Any, fn: dict) -> None:
        if isinstance(call_id, str) and call_id and tool.id is None:
            tool.id = call_id
        name = fn.get("name")
        if isinstance(name, str) and name and not tool.name:
            tool.name = name
        args = fn.get("arguments")
        if isinstance(args, str):
            tool.args.append(args)

    def messages(self) -> list[Message]:
        return [self.choices[i].message() for i in sorted(self.choices)]


# --- OpenAI legacy completions -------------------------------------------------------------------


def _completions_request(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [_message("user", [_text(prompt)])], [], []
    # A batch of prompts: one user message each (token-id prompts carry no text and are left out).
    return [_message("user", [_text(p)]) for p in _list(prompt) if isinstance(p, str)], [], []


def _completions_response(body: dict) -> list[Message]:
    out: list[Message] = []
    for choice in _list(body.get("choices")):
        if isinstance(choice, dict):
            text = choice.get("text")
            parts = [_text(text)] if isinstance(text, str) else []
            out.append(_output("assistant", parts, _chat_finish(choice.get("finish_reason"))))
    return out


# --- OpenAI Responses ----------------------------------------------------------------------------

_RESPONSES_TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output", "computer_call_output"})
# Tools the provider runs itself, by output item type -> the tool's name.
_SERVER_TOOLS = {
    "code_interpreter_call": "code_interpreter",
    "file_search_call": "file_search",
    "image_generation_call": "image_generation",
    "mcp_call": "mcp",
    "mcp_list_tools": "mcp_list_tools",
    "web_search_call": "web_search",
    "local_shell_call": "local_shell",
}
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _call_id(item: dict) -> Any:
    call_id = item.get("call_id")
    return call_id if isinstance(call_id, str) and call_id else item.get("id")


def _responses_tool_call(item: dict) -> Part | None:
    """A client-side tool call item (function, custom tool, computer use), or None."""
    kind = item.get("type")
    if kind == "function_call":
        return _tool_call(_call_id(item), item.get("name"), _arguments(item.get("arguments"), ""))
    if kind == "custom_tool_call":
        return _tool_call(_call_id(item), item.get("name"), item.get("input"))
    if kind == "computer_call":
        args = {k: item[k] for k in ("action", "actions") if item.get(k) is not None}
        return _tool_call(_call_id(item), "computer", args)
    return None


def _responses_reasoning(item: dict) -> list[Part]:
    parts = [_reasoning(s["text"]) for s in _list(item.get("summary")) if isinstance(_dict(s).get("text"), str)]
    for block in _list(item.get("content")):
        if isinstance(block, dict) and block.get("type") == "reasoning_text" and isinstance(block.get("text"), str):
            parts.append(_reasoning(block["text"]))
    return parts


def _is_tool_turn(msg: Message) -> bool:
    return msg["role"] == "assistant" and bool(msg["parts"]) and all(p["type"] == "tool_call" for p in msg["parts"])


def _responses_input(value: Any) -> list[Message]:
    if isinstance(value, str):
        return [_message("user", [_text(value)])]
    messages: list[Message] = []
    for item in _list(value):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        call = _responses_tool_call(item)
        if call is not None:
            msg = _message("assistant", [call])
        elif isinstance(kind, str) and kind in _RESPONSES_TOOL_OUTPUTS:
            msg = _message("tool", [_tool_response(_call_id(item), item.get("output"))])
        elif kind == "reasoning":
            msg = _message("assistant", _responses_reasoning(item))
        elif (kind is None or kind == "message") and isinstance(item.get("role"), str):
            msg = _message(item["role"], _openai_parts(item.get("content")), item.get("name"))
        else:
            continue
        if not msg["parts"]:
            continue
        # Parallel tool calls are one assistant turn that the flat item list splits up.
        if messages and _is_tool_turn(msg) and _is_tool_turn(messages[-1]):
            messages[-1]["parts"] += msg["parts"]
            continue
        messages.append(msg)
    return messages


def _responses_instructions(value: Any) -> list[Part]:
    if isinstance(value, str):
        return [_text(value)]
    parts: list[Part] = []
    for msg in _responses_input(value):  # a stored prompt echoes its instructions as message items
        parts += [p for p in msg["parts"] if p["type"] == "text"]
    return parts


def _responses_tools(tools: Any) -> list[dict]:
    out: list[dict] = []
    for tool in _list(tools):
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if kind == "function":
            out.append(_function_definition(tool.get("name"), tool.get("description"), tool.get("parameters")))
        elif isinstance(kind, str) and kind:
            out.append(_generic_definition(kind, tool.get("name")))
    return out


def _responses_request(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    return (
        _responses_input(body.get("input")),
        _responses_instructions(body.get("instructions")),
        _responses_tools(body.get("tools")),
    )


def _status_finish(status: Any, incomplete_reason: Any) -> str:
    if status is None or status == "completed":
        return "stop"
    if status == "incomplete":
        if isinstance(incomplete_reason, str) and incomplete_reason:
            return _INCOMPLETE_REASONS.get(incomplete_reason, incomplete_reason)
        return "incomplete"
    return "error"  # failed, cancelled, or cut off while still in progress


def _server_tool_part(item: dict, tool: str) -> Part:
    payload = {k: v for k, v in item.items() if v is not None and k not in ("id", "call_id", "type", "name")}
    payload["type"] = tool
    name = item.get("name")
    return {
        "type": "server_tool_call",
        "id": _str(_call_id(item)),
        "name": name if isinstance(name, str) and name else tool,
        "server_tool_call": payload,
    }


def _responses_output(items: Any, incomplete_reason: Any = None) -> list[Message]:
    out: list[Message] = []
    for item in _list(items):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        status = item.get("status")
        if kind == "message":
            out.append(
                _output(item.get("role"), _openai_parts(item.get("content")), _status_finish(status, incomplete_reason))
            )
            continue
        call = _responses_tool_call(item)
        if call is not None:
            if status not in (None, "completed", "incomplete"):
                out.append(_output("assistant", [call], "error"))
                continue
            last = out[-1] if out else None
            # A call from the same generation joins the assistant message before it, as the official
            # instrumentation records it.
            if (
                last is not None
                and last["role"] == "assistant"
                and last["finish_reason"] in ("stop", "tool_call")
                and all(p["type"] in ("text", "tool_call") for p in last["parts"])
            ):
                last["parts"].append(call)
                last["finish_reason"] = "tool_call"
            else:
                out.append(_output("assistant", [call], "tool_call"))
            continue
        if kind == "reasoning":
            parts = _responses_reasoning(item)
            if parts:
                out.append(_output("assistant", parts, _status_finish(status, incomplete_reason)))
            continue
        tool = _SERVER_TOOLS.get(kind) if isinstance(kind, str) else None
        if tool is not None:
            out.append(_output("assistant", [_server_tool_part(item, tool)], _status_finish(status, incomplete_reason)))
    return out


def _responses_response(body: dict) -> list[Message]:
    reason = _dict(body.get("incomplete_details")).get("reason")
    return _responses_output(body.get("output"), reason)


class _ItemBuffer:
    """One Responses output item while it streams: the item as announced, plus its text fragments."""

    __slots__ = ("args", "done", "item", "reasoning", "refusal", "summary", "text")

    def __init__(self, item: dict) -> None:
        self.item = item
        self.done = False
        self.text: dict[Any, list[str]] = {}
        self.refusal: dict[Any, list[str]] = {}
        self.summary: dict[Any, list[str]] = {}
        self.reasoning: dict[Any, list[str]] = {}
        self.args: list[str] = []

    def complete_item(self) -> dict:
        if self.done:
            return self.item
        item = dict(self.item)
        kind = item.get("type")
        if kind == "message":
            pieces = [(i, {"type": "output_text", "text": "".join(f)}) for i, f in self.text.items()]
            pieces += [(i, {"type": "refusal", "refusal": "".join(f)}) for i, f in self.refusal.items()]
            pieces.sort(key=_key)  # by content index, as the parts were announced
            item["content"] = [piece for _, piece in pieces] or item.get("content")
        elif kind in ("function_call", "custom_tool_call") and self.args:
            item["arguments" if kind == "function_call" else "input"] = "".join(self.args)
        elif kind == "reasoning":
            if self.summary:
                item["summary"] = [{"text": "".join(f)} for _, f in sorted(self.summary.items(), key=_key)]
            if self.reasoning:
                item["content"] = [
                    {"type": "reasoning_text", "text": "".join(f)} for _, f in sorted(self.reasoning.items(), key=_key)
                ]
        if item.get("status") is None:
            item["status"] = "in_progress"  # it never finished: the message ends as an error
        return item


def _index(v: Any) -> int | None:
    """An event's index field as a dict key (a list there would not even be hashable)."""
    return v if isinstance(v, int) else None


def _key(pair: tuple[Any, Any]) -> tuple[int, Any]:
    k = pair[0]
    return (0, k) if isinstance(k, int) else (1, str(k))


_DELTA_TARGETS = {
    "response.output_text.delta": ("text", "content_index", "message"),
    "response.refusal.delta": ("refusal", "content_index", "message"),
    "response.reasoning_summary_text.delta": ("summary", "summary_index", "reasoning"),
    "response.reasoning_text.delta": ("reasoning", "content_index", "reasoning"),
}
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class _ResponsesStream:
    """Responses events: output items assembled from deltas until the final response replaces them."""

    __slots__ = ("final", "ids", "items")

    def __init__(self) -> None:
        self.items: dict[Any, _ItemBuffer] = {}
        self.ids: dict[str, Any] = {}  # item id -> output index, for events that leave the index out
        self.final: list[Message] | None = None

    def _slot(self, event: dict, item_id: Any) -> Any:
        index = event.get("output_index")
        if isinstance(index, int):
            if isinstance(item_id, str):
                self.ids[item_id] = index
            return index
        if isinstance(item_id, str):
            return self.ids.setdefault(item_id, ("id", item_id))
        return -1

    def _buffer(self, event: dict, kind: str) -> _ItemBuffer:
        index = self._slot(event, event.get("item_id"))
        buf = self.items.get(index)
        if buf is None:  # the "added" event was left out: start from what this event says
            item: dict = {"type": kind, "status": "in_progress"}
            if kind == "message":
                item["role"] = "assistant"
            buf = self.items[index] = _ItemBuffer(item)
        return buf

    def feed(self, event: Any) -> None:
        if self.final is not None or not isinstance(event, dict):
            return
        kind = event.get("type")
        if not isinstance(kind, str):
            return
        target = _DELTA_TARGETS.get(kind)
        if target is not None:
            delta = event.get("delta")
            if isinstance(delta, str):
                buf = self._buffer(event, target[2])
                if not buf.done:
                    getattr(buf, target[0]).setdefault(_index(event.get(target[1])), []).append(delta)
        elif kind == "response.function_call_arguments.delta" or kind == "response.custom_tool_call_input.delta":
            delta = event.get("delta")
            if isinstance(delta, str):
                buf = self._buffer(
                    event, "function_call" if kind.startswith("response.function") else "custom_tool_call"
                )
                if not buf.done:
                    buf.args.append(delta)
        elif kind == "response.function_call_arguments.done":
            args = event.get("arguments")
            buf = self._buffer(event, "function_call")
            if isinstance(args, str) and not buf.done:
                buf.args = [args]
        elif kind == "response.output_text.done":
            text = event.get("text")
            buf = self._buffer(event, "message")
            if isinstance(text, str) and not buf.done:
                buf.text[_index(event.get("content_index"))] = [text]
        elif kind == "response.output_item.added" or kind == "response.output_item.done":
            item = event.get("item")
            if isinstance(item, dict):
                index = self._slot(event, item.get("id"))
                if kind == "response.output_item.added" or index not in self.items:
                    self.items[index] = _ItemBuffer(item)
                if kind == "response.output_item.done":
                    done = self.items[index]
                    done.item = item
                    done.done = True
        elif kind in _FINAL_EVENTS:
            response = _dict(event.get("response"))
            if _list(response.get("output")):
                self.final = _responses_response(response)

    def messages(self) -> list[Message]:
        if self.final is not None:
            return list(self.final)
        items = [buf.complete_item() for _, buf in sorted(self.items.items(), key=_key)]
        return _responses_output(items)


# --- Anthropic Messages --------------------------------------------------------------------------

_ANTHROPIC_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_call",
    "refusal": "content_filter",
}


def _anthropic_finish(reason: Any) -> str:
    if not isinstance(reason, str) or not reason:
        return "error"
    return _ANTHROPIC_FINISH.get(reason, reason)


def _anthropic_source(source: Any, modality: str) -> list[Part]:
    source = _dict(source)
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("data"), str):
        return [_blob(source.get("media_type"), modality, source["data"])]
    if kind == "url" and isinstance(source.get("url"), str):
        return [_url_part(source["url"], modality)]
    if kind == "file" and isinstance(source.get("file_id"), str):
        return [_file(None, modality, source["file_id"])]
    if kind == "text" and isinstance(source.get("data"), str):
        return [_text(source["data"])]
    if kind == "content":
        content = source.get("content")
        return [_text(content)] if isinstance(content, str) else _anthropic_parts(content)
    return []


def _anthropic_block(block: dict) -> list[Part]:
    kind = block.get("type")
    if kind == "text":
        text = block.get("text")
        return [_text(text)] if isinstance(text, str) else []
    if kind == "thinking":
        thinking = block.get("thinking")
        return [_reasoning(thinking)] if isinstance(thinking, str) else []
    if kind == "tool_use":
        return [_tool_call(block.get("id"), block.get("name"), block.get("input"))]
    if kind == "tool_result":
        return [_tool_response(block.get("tool_use_id"), block.get("content"))]
    if kind == "image":
        return _anthropic_source(block.get("source"), _IMAGE)
    if kind == "document":
        return _anthropic_source(block.get("source"), _DOCUMENT)
    if kind in ("server_tool_use", "mcp_tool_use"):
        name = block.get("name")
        call: dict = {"type": name if isinstance(name, str) and name else kind, "input": block.get("input")}
        if isinstance(block.get("server_name"), str):
            call["server_name"] = block["server_name"]
        return [
            {"type": "server_tool_call", "id": _str(block.get("id")), "name": call["type"], "server_tool_call": call}
        ]
    if isinstance(kind, str) and kind.endswith("_tool_result"):
        result = {"type": kind[: -len("_tool_result")], "content": block.get("content")}
        return [
            {
                "type": "server_tool_call_response",
                "id": _str(block.get("tool_use_id")),
                "server_tool_call_response": result,
            }
        ]
    if kind == "container_upload" and isinstance(block.get("file_id"), str):
        return [_file(None, _DOCUMENT, block["file_id"])]
    return []  # redacted thinking and other opaque blocks carry no readable content


def _anthropic_parts(content: Any) -> list[Part]:
    if isinstance(content, str):
        return [_text(content)]
    parts: list[Part] = []
    for block in _list(content):
        if isinstance(block, dict):
            parts += _anthropic_block(block)
    return parts


def _anthropic_request(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    messages: list[Message] = []
    for msg in _list(body.get("messages")):
        if isinstance(msg, dict):
            parts = _anthropic_parts(msg.get("content"))
            if parts:
                messages.append(_message(msg.get("role"), parts))
    system = [p for p in _anthropic_parts(body.get("system")) if p["type"] == "text"]
    tools: list[dict] = []
    for tool in _list(body.get("tools")):
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if "input_schema" in tool or kind in (None, "custom"):
            tools.append(_function_definition(tool.get("name"), tool.get("description"), tool.get("input_schema")))
        elif isinstance(kind, str) and kind:
            tools.append(_generic_definition(kind, tool.get("name")))
    return messages, system, tools


def _anthropic_response(body: dict) -> list[Message]:
    if body.get("type") == "error" or ("content" not in body and "stop_reason" not in body):
        return []
    return [
        _output(body.get("role"), _anthropic_parts(body.get("content")), _anthropic_finish(body.get("stop_reason")))
    ]


class _BlockBuffer:
    __slots__ = ("block", "json", "text")

    def __init__(self, block: dict) -> None:
        self.block = block
        self.text: list[str] = []
        self.json: list[str] = []

    def parts(self) -> list[Part]:
        block = self.block
        kind = block.get("type")
        if self.text:
            field = "thinking" if kind == "thinking" else "text"
            block = dict(block)
            block[field] = (_str(block.get(field)) or "") + "".join(self.text)
        if self.json:
            raw = "".join(self.json)
            if raw:
                block = dict(block)
                block["input"] = _arguments(raw)
        return _anthropic_block(block)


class _AnthropicStream:
    __slots__ = ("blocks", "role", "started", "stop_reason")

    def __init__(self) -> None:
        self.started = False
        self.role: Any = None
        self.stop_reason: Any = None
        self.blocks: dict[Any, _BlockBuffer] = {}

    def feed(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "content_block_delta":
            index = _index(event.get("index"))
            buf = self.blocks.get(index)
            delta = _dict(event.get("delta"))
            dkind = delta.get("type")
            if buf is None:
                buf = self.blocks[index] = _BlockBuffer(
                    {
                        "type": "thinking"
                        if dkind == "thinking_delta"
                        else "tool_use"
                        if dkind == "input_json_delta"
                        else "text"
                    }
                )
            if dkind == "text_delta" and isinstance(delta.get("text"), str):
                buf.text.append(delta["text"])
            elif dkind == "input_json_delta" and isinstance(delta.get("partial_json"), str):
                buf.json.append(delta["partial_json"])
            elif dkind == "thinking_delta" and isinstance(delta.get("thinking"), str):
                buf.text.append(delta["thinking"])
        elif kind == "content_block_start":
            block = event.get("content_block")
            if isinstance(block, dict):
                self.started = True
                self.blocks[_index(event.get("index"))] = _BlockBuffer(block)
        elif kind == "message_start":
            msg = _dict(event.get("message"))
            self.started = True
            self.role = msg.get("role")
            for i, block in enumerate(_list(msg.get("content"))):
                if isinstance(block, dict):
                    self.blocks.setdefault(i, _BlockBuffer(block))
        elif kind == "message_delta":
            reason = _dict(event.get("delta")).get("stop_reason")
            if isinstance(reason, str) and reason:
                self.stop_reason = reason

    def messages(self) -> list[Message]:
        if not self.started and not self.blocks:
            return []
        parts: list[Part] = []
        for _, buf in sorted(self.blocks.items(), key=_key):
            parts += buf.parts()
        return [_output(self.role, parts, _anthropic_finish(self.stop_reason))]


# --- Gemini --------------------------------------------------------------------------------------

_GEMINI_ROLES = {"model": "assistant", "function": "tool"}
_GEMINI_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)


def _gemini_finish(reason: Any, parts: list[Part]) -> str:
    if not isinstance(reason, str) or not reason:
        return "error"
    if reason == "STOP":
        return "tool_call" if any(p["type"] == "tool_call" for p in parts) else "stop"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _GEMINI_FILTERED:
        return "content_filter"
    if reason in ("OTHER", "FINISH_REASON_UNSPECIFIED"):
        return "error"
    return reason  # no counterpart among the conventions' values: the provider's own, as given


def _gemini_part(part: dict) -> Part | None:
    text = part.get("text")
    if isinstance(text, str):
        return _reasoning(text) if part.get("thought") is True else _text(text)
    inline = _get(part, "inlineData", "inline_data")
    if isinstance(inline, dict) and isinstance(inline.get("data"), str):
        mime = _get(inline, "mimeType", "mime_type")
        return _blob(mime, _modality_of(mime), inline["data"])
    file_data = _get(part, "fileData", "file_data")
    if isinstance(file_data, dict):
        uri = _get(file_data, "fileUri", "file_uri")
        if isinstance(uri, str):
            mime = _get(file_data, "mimeType", "mime_type")
            return _uri(mime, _modality_of(mime), uri)
        return None
    call = _get(part, "functionCall", "function_call")
    if isinstance(call, dict):
        return _tool_call(call.get("id"), call.get("name"), call.get("args"))
    response = _get(part, "functionResponse", "function_response")
    if isinstance(response, dict):
        return _tool_response(response.get("id"), response.get("response"))
    code = _get(part, "executableCode", "executable_code")
    if isinstance(code, dict):
        payload = {"type": "code_execution", **{k: v for k, v in code.items() if k != "type"}}
        return {
            "type": "server_tool_call",
            "id": _str(code.get("id")),
            "name": "code_execution",
            "server_tool_call": payload,
        }
    result = _get(part, "codeExecutionResult", "code_execution_result")
    if isinstance(result, dict):
        payload = {"type": "code_execution", **{k: v for k, v in result.items() if k != "type"}}
        return {"type": "server_tool_call_response", "id": _str(result.get("id")), "server_tool_call_response": payload}
    return None


def _gemini_parts(parts: Any) -> list[Part]:
    out: list[Part] = []
    for part in _list(parts):
        if isinstance(part, dict):
            converted = _gemini_part(part)
            if converted is not None:
                out.append(converted)
    return out


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def _gemini_request(body: dict) -> tuple[list[Message], list[Part], list[dict]]:
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    messages: list[Message] = []
    for content in _list(contents):
        if not isinstance(content, dict):
            continue
        parts = _gemini_parts(content.get("parts"))
        if parts:
            role = content.get("role")
            messages.append(_message(_GEMINI_ROLES.get(role, role) if isinstance(role, str) else "user", parts))
    system_value = _get(body, "systemInstruction", "system_instruction")
    if isinstance(system_value, str):
        system = [_text(system_value)]
    else:
        system = [p for p in _gemini_parts(_dict(system_value).get("parts")) if p["type"] == "text"]
    tools: list[dict] = []
    for tool in _list(body.get("tools")):
        if not isinstance(tool, dict):
            continue
        for key, value in tool.items():
            if key in ("functionDeclarations", "function_declarations"):
                for fn in _list(value):
                    if isinstance(fn, dict):
                        params = fn.get("parameters")
                        if params is None:
                            params = _get(fn, "parametersJsonSchema", "parameters_json_schema")
                        tools.append(_function_definition(fn.get("name"), fn.get("description"), params))
            elif isinstance(key, str) and key:
                kind = _snake(key)
                tools.append(_generic_definition(kind, kind))
    return messages, system, tools


def _candidate_index(candidate: dict, position: int) -> int:
    index = candidate.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def _gemini_response(body: dict) -> list[Message]:
    found: list[tuple[int, Message]] = []
    for position, candidate in enumerate(_list(body.get("candidates"))):
        if not isinstance(candidate, dict):
            continue
        parts = _gemini_parts(_dict(candidate.get("content")).get("parts"))
        message = _output("assistant", parts, _gemini_finish(_get(candidate, "finishReason", "finish_reason"), parts))
        found.append((_candidate_index(candidate, position), message))
    found.sort(key=lambda pair: pair[0])
    return [message for _, message in found]


class _CandidateBuffer:
    """A streamed Gemini candidate: text runs joined, other parts kept whole, in arrival order."""

    __slots__ = ("finish", "parts")

    def __init__(self) -> None:
        self.finish: Any = None
        self.parts: list[list[str] | Part] = []  # a list of fragments is a text or reasoning run

    def add(self, part: Part) -> None:
        kind = part["type"]
        if kind in ("text", "reasoning"):
            last = self.parts[-1] if self.parts else None
            if isinstance(last, list) and last[0] == kind:
                last.append(part["content"])
            else:
                self.parts.append([kind, part["content"]])
        else:
            self.parts.append(part)

    def message(self) -> Message:
        parts: list[Part] = []
        for entry in self.parts:
            if isinstance(entry, list):
                text = "".join(entry[1:])
                parts.append(_reasoning(text) if entry[0] == "reasoning" else _text(text))
            else:
                parts.append(entry)
        return _output("assistant", parts, _gemini_finish(self.finish, parts))


class _GeminiStream:
    __slots__ = ("candidates",)

    def __init__(self) -> None:
        self.candidates: dict[int, _CandidateBuffer] = {}

    def feed(self, event: Any) -> None:
        if isinstance(event, list):  # a stream read without alt=sse is one JSON array of chunks
            for chunk in event:
                if isinstance(chunk, dict):
                    self.feed(chunk)
            return
        for position, candidate in enumerate(_list(_dict(event).get("candidates"))):
            if not isinstance(candidate, dict):
                continue
            index = _candidate_index(candidate, position)
            buf = self.candidates.get(index)
            if buf is None:
                buf = self.candidates[index] = _CandidateBuffer()
            for part in _gemini_parts(_dict(candidate.get("content")).get("parts")):
                buf.add(part)
            reason = _get(candidate, "finishReason", "finish_reason")
            if isinstance(reason, str) and reason:
                buf.finish = reason

    def messages(self) -> list[Message]:
        return [self.candidates[i].message() for i in sorted(self.candidates)]


# --- entry points --------------------------------------------------------------------------------

_REQUESTS: dict[str, Callable[[dict], tuple[list[Message], list[Part], list[dict]]]] = {
    OPENAI_CHAT: _chat_request,
    OPENAI_COMPLETIONS: _completions_request,
    OPENAI_RESPONSES: _responses_request,
    ANTHROPIC_MESSAGES: _anthropic_request,
    GEMINI: _gemini_request,
    COHERE_CHAT: cohere_request_content,
    OLLAMA_CHAT: functools.partial(ollama_request_content, OLLAMA_CHAT),
    OLLAMA_GENERATE: functools.partial(ollama_request_content, OLLAMA_GENERATE),
}
_RESPONSES: dict[str, Callable[[dict], list[Message]]] = {
    OPENAI_CHAT: _chat_response,
    OPENAI_COMPLETIONS: _completions_response,
    OPENAI_RESPONSES: _responses_response,
    ANTHROPIC_MESSAGES: _anthropic_response,
    GEMINI: _gemini_response,
    COHERE_CHAT: cohere_response_messages,
    OLLAMA_CHAT: functools.partial(ollama_response_messages, OLLAMA_CHAT),
    OLLAMA_GENERATE: functools.partial(ollama_response_messages, OLLAMA_GENERATE),
}
_STREAMS: dict[str, Callable[[], Any]] = {
    OPENAI_CHAT: _ChatStream,
    OPENAI_COMPLETIONS: _ChatStream,
    OPENAI_RESPONSES: _ResponsesStream,
    ANTHROPIC_MESSAGES: _AnthropicStream,
    GEMINI: _GeminiStream,
    COHERE_CHAT: CohereStream,
    OLLAMA_CHAT: functools.partial(OllamaStream, OLLAMA_CHAT),
    OLLAMA_GENERATE: functools.partial(OllamaStream, OLLAMA_GENERATE),
}


def request_content(api: str, body: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """(input messages, system instructions, tool definitions) of a decoded JSON request body, in the
    conventions' JSON shapes; empty lists where the body has none."""
    convert = _REQUESTS.get(api) if isinstance(api, str) else None
    if convert is None or not isinstance(body, dict):
        return [], [], []
    try:
        return clean_deep(convert(body))  # text from the wire may carry lone surrogates: U+FFFD
    except Exception:  # a shape no converter foresaw: no content rather than an error in the user's call
        return [], [], []


def response_messages(api: str, body: Any) -> list[dict]:
    """Output messages ({"role", "parts", "finish_reason"}) of a complete, non-streamed decoded response body."""
    convert = _RESPONSES.get(api) if isinstance(api, str) else None
    if convert is None or not isinstance(body, dict):
        return []
    try:
        return clean_deep(convert(body))
    except Exception:
        return []


class StreamContent:
    """Assembles the output messages of a stream from its decoded events, in arrival order.

    ``feed`` takes one decoded SSE ``data:`` JSON object (an OpenAI chat or completions chunk, a
    Responses event, an Anthropic event, a Gemini chunk); ``messages`` can be called at any time, e.g.
    when a stream is closed early, and gives what has arrived so far. Text fragments are kept in lists
    and joined only by ``messages``, so a long stream costs linear time.
    """

    __slots__ = ("_state",)

    def __init__(self, api: str) -> None:
        factory = _STREAMS.get(api) if isinstance(api, str) else None
        self._state: Any = factory() if factory is not None else None

    def feed(self, event: Any) -> None:
        if self._state is None:
            return
        try:
            self._state.feed(event)
        except Exception:  # one odd event must not cost the rest of the stream
            return

    def messages(self) -> list[dict]:
        if self._state is None:
            return []
        try:
            return clean_deep(self._state.messages())
        except Exception:
            return []
