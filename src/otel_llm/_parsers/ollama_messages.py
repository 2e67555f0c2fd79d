"""Ollama's native chat and generate content -> the GenAI conventions' message shapes (see ``messages``).

A chat message is ``{"role", "content", "thinking", "images", "tool_calls", "tool_name"}``; a tool call is
``{"function": {"name", "arguments"}}`` with the arguments as a JSON object (an ``id`` when the server gives one);
a tool's result is a ``"tool"`` message. ``/api/generate`` takes a ``prompt`` (a user message) and a ``system``
text (system instructions) and answers ``response`` (and ``thinking``). Images are base64 strings.
"""

from __future__ import annotations

from typing import Any

from .routes import OLLAMA_CHAT, OLLAMA_GENERATE

__all__ = ["OllamaStream", "ollama_request_content", "ollama_response_messages"]

Part = dict[str, Any]


def _text(content: str) -> Part:
    return {"type": "text", "content": content}


def _tool_call(call: Any) -> Part | None:
    if not isinstance(call, dict):
        return None
    fn = call.get("function")
    if not isinstance(fn, dict):
        return None
    name = fn.get("name")
    call_id = call.get("id")
    return {
        "type": "tool_call",
        "id": call_id if isinstance(call_id, str) and call_id else None,
        "name": name if isinstance(name, str) else "",
        "arguments": fn.get("arguments"),
    }


def _image(data: Any) -> Part | None:
    if isinstance(data, str) and data:
        return {"type": "blob", "mime_type": None, "modality": "image", "content": data}
    return None


def _message_parts(msg: dict) -> list[Part]:
    parts: list[Part] = []
    thinking = msg.get("thinking")
    if isinstance(thinking, str) and thinking:
        parts.append({"type": "reasoning", "content": thinking})
    calls = msg.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        part = _tool_call(call)
        if part is not None:
            parts.append(part)
    content = msg.get("content")
    if isinstance(content, str) and content:
        parts.append(_text(content))
    images = msg.get("images")
    for image in images if isinstance(images, list) else ():
        part = _image(image)
        if part is not None:
            parts.append(part)
    return parts


def _tools(body: dict) -> list[dict]:
    out: list[dict] = []
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if not isinstance(tool, dict):
            continue
        fn = tool.get("function")
        if not isinstance(fn, dict):
            continue
        name, desc = fn.get("name"), fn.get("description")
        out.append(
            {
                "type": "function",
                "name": name if isinstance(name, str) else "",
                "description": desc if isinstance(desc, str) else None,
                "parameters": fn.get("parameters"),
            }
        )
    return out


def ollama_request_content(api: str, body: dict) -> tuple[list[dict], list[Part], list[dict]]:
    """(input messages, system instructions, tool definitions) of a chat or generate request."""
    messages: list[dict] = []
    system: list[Part] = []
    if api == OLLAMA_CHAT:
        items = body.get("messages")
        for msg in items if isinstance(items, list) else ():
            if not isinstance(msg, dict):
                continue
            role = msg.get("role")
            role = role if isinstance(role, str) and role else "user"
            if role == "tool":
                name = msg.get("tool_name")
                out = {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": None, "response": msg.get("content")}],
                }
                if isinstance(name, str) and name:
                    out["name"] = name
                messages.append(out)
                continue
            parts = _message_parts(msg)
            if parts:
                messages.append({"role": role, "parts": parts})
        return messages, system, _tools(body)
    if api == OLLAMA_GENERATE:
        text = body.get("system")
        if isinstance(text, str) and text:
            system.append(_text(text))
        parts = []
        prompt = body.get("prompt")
        if isinstance(prompt, str) and prompt:
            parts.append(_text(prompt))
        images = body.get("images")
        for image in images if isinstance(images, list) else ():
            part = _image(image)
            if part is not None:
                parts.append(part)
        if parts:
            messages.append({"role": "user", "parts": parts})
    return messages, system, []


def _finish(reason: Any) -> str:
    return reason if isinstance(reason, str) and reason else "error"


def ollama_response_messages(api: str, body: dict) -> list[dict]:
    """The output message of a whole chat or generate answer."""
    if api == OLLAMA_CHAT:
        msg = body.get("message")
        if not isinstance(msg, dict):
            return []
        role = msg.get("role")
        return [
            {
                "role": role if isinstance(role, str) and role else "assistant",
                "parts": _message_parts(msg),
                "finish_reason": _finish(body.get("done_reason")),
            }
        ]
    if api == OLLAMA_GENERATE:
        return [
            {
                "role": "assistant",
                "parts": _message_parts({"thinking": body.get("thinking"), "content": body.get("response")}),
                "finish_reason": _finish(body.get("done_reason")),
            }
        ]
    return []


class OllamaStream:
    """The output message of a chat or generate stream, assembled from its decoded lines."""

    __slots__ = ("api", "calls", "reason", "text", "thinking")

    def __init__(self, api: str) -> None:
        self.api = api
        self.text: list[str] = []
        self.thinking: list[str] = []
        self.calls: list[Part] = []
        self.reason: str | None = None

    def feed(self, event: Any) -> None:
        if not isinstance(event, dict):
            return
        msg = event.get("message") if self.api == OLLAMA_CHAT else event
        if isinstance(msg, dict):
            content = msg.get("content") if self.api == OLLAMA_CHAT else msg.get("response")
            if isinstance(content, str) and content:
                self.text.append(content)
            thinking = msg.get("thinking")
            if isinstance(thinking, str) and thinking:
                self.thinking.append(thinking)
            calls = msg.get("tool_calls")
            for call in calls if isinstance(calls, list) else ():
                part = _tool_call(call)
                if part is not None:
                    self.calls.append(part)
        reason = event.get("done_reason")
        if isinstance(reason, str) and reason:
            self.reason = reason

    def messages(self) -> list[dict]:
        parts: list[Part] = []
        if self.thinking:
            parts.append({"type": "reasoning", "content": "".join(self.thinking)})
        parts += self.calls
        if self.text:
            parts.append(_text("".join(self.text)))
        if not parts and self.reason is None:
            return []
        return [{"role": "assistant", "parts": parts, "finish_reason": _finish(self.reason)}]
