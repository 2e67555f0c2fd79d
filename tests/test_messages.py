"""Message content converters on raw bodies: every wire format, requests, responses and streams.

Bodies are written here in the shapes the providers really send (OpenAI chat and legacy completions,
Responses, Anthropic Messages, Gemini). Every result is also checked against the structure the GenAI
conventions' JSON schemas give for ``gen_ai.input.messages``, ``gen_ai.output.messages``,
``gen_ai.system_instructions`` and ``gen_ai.tool.definitions``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otel_llm._parsers import messages as messages_module
from otel_llm._parsers.messages import StreamContent, request_content, response_messages
from otel_llm._parsers.routes import (
    ANTHROPIC_MESSAGES,
    GEMINI,
    OPENAI_CHAT,
    OPENAI_COMPLETIONS,
    OPENAI_EMBEDDINGS,
    OPENAI_RESPONSES,
)

ALL_APIS = (OPENAI_CHAT, OPENAI_COMPLETIONS, OPENAI_EMBEDDINGS, OPENAI_RESPONSES, ANTHROPIC_MESSAGES, GEMINI)

# --- the conventions' schemas, as a structural checker ------------------------------------------

_OPT_STR = (str, type(None))
# part type -> {field: allowed types}; required fields are the ones the schema lists as required.
_PART_FIELDS: dict[str, tuple[dict[str, Any], frozenset[str]]] = {
    "text": ({"content": str}, frozenset({"content"})),
    "reasoning": ({"content": str}, frozenset({"content"})),
    "tool_call": ({"id": _OPT_STR, "name": str}, frozenset({"name"})),
    "tool_call_response": ({"id": _OPT_STR}, frozenset({"response"})),
    "server_tool_call": (
        {"id": _OPT_STR, "name": str, "server_tool_call": dict},
        frozenset({"name", "server_tool_call"}),
    ),
    "server_tool_call_response": (
        {"id": _OPT_STR, "server_tool_call_response": dict},
        frozenset({"server_tool_call_response"}),
    ),
    "blob": (
        {"mime_type": _OPT_STR, "modality": str, "content": str, "transcript": _OPT_STR},
        frozenset({"modality", "content"}),
    ),
    "uri": ({"mime_type": _OPT_STR, "modality": str, "uri": str}, frozenset({"modality", "uri"})),
    "file": ({"mime_type": _OPT_STR, "modality": str, "file_id": str}, frozenset({"modality", "file_id"})),
}
_FINISH_REASONS = {"stop", "length", "content_filter", "tool_call", "error"}


def check_part(part: Any) -> None:
    assert isinstance(part, dict) and isinstance(part.get("type"), str), part
    fields, required = _PART_FIELDS[part["type"]]  # only the conventions' own part types are produced
    assert required <= part.keys(), part
    for name, types in fields.items():
        if name in part:
            assert isinstance(part[name], types), (name, part)
    if part["type"] in ("server_tool_call", "server_tool_call_response"):
        assert isinstance(part[part["type"]].get("type"), str), part


def check_messages(messages: Any, *, output: bool) -> None:
    assert isinstance(messages, list)
    for msg in messages:
        assert isinstance(msg, dict) and isinstance(msg.get("role"), str) and isinstance(msg.get("parts"), list), msg
        assert set(msg) <= {"role", "parts", "name", "finish_reason"}, msg
        if "name" in msg:
            assert isinstance(msg["name"], str)
        if output:
            assert isinstance(msg.get("finish_reason"), str), msg
        else:
            assert "finish_reason" not in msg
        for part in msg["parts"]:
            check_part(part)
    json.dumps(messages, allow_nan=False)  # what the recorder will do with them


def check_system(parts: Any) -> None:
    assert isinstance(parts, list)
    for part in parts:
        assert part["type"] == "text" and isinstance(part["content"], str), part
    json.dumps(parts, allow_nan=False)


def check_tools(tools: Any) -> None:
    assert isinstance(tools, list)
    for tool in tools:
        assert isinstance(tool.get("type"), str) and isinstance(tool.get("name"), str), tool
        if tool["type"] == "function":
            assert isinstance(tool.get("description"), _OPT_STR)
            assert "parameters" in tool
    json.dumps(tools, allow_nan=False)


def checked_request(api: str, body: Any) -> tuple[list[dict], list[dict], list[dict]]:
    messages, system, tools = request_content(api, body)
    check_messages(messages, output=False)
    check_system(system)
    check_tools(tools)
    return messages, system, tools


def checked_response(api: str, body: Any) -> list[dict]:
    messages = response_messages(api, body)
    check_messages(messages, output=True)
    return messages


def streamed(api: str, events: list[Any]) -> list[dict]:
    stream = StreamContent(api)
    for event in events:
        stream.feed(event)
    messages = stream.messages()
    check_messages(messages, output=True)
    return messages


# --- shorthand for expected values ---------------------------------------------------------------


def text(content: str) -> dict:
    return {"type": "text", "content": content}


def reasoning(content: str) -> dict:
    return {"type": "reasoning", "content": content}


def call(call_id: str | None, name: str, arguments: Any) -> dict:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def result(call_id: str | None, response: Any) -> dict:
    return {"type": "tool_call_response", "id": call_id, "response": response}


def blob(mime_type: str | None, modality: str, content: str) -> dict:
    return {"type": "blob", "mime_type": mime_type, "modality": modality, "content": content}


def uri(mime_type: str | None, modality: str, address: str) -> dict:
    return {"type": "uri", "mime_type": mime_type, "modality": modality, "uri": address}


def file(mime_type: str | None, modality: str, file_id: str) -> dict:
    return {"type": "file", "mime_type": mime_type, "modality": modality, "file_id": file_id}


def msg(role: str, *parts: dict, name: str | None = None) -> dict:
    out: dict = {"role": role, "parts": list(parts)}
    if name is not None:
        out["name"] = name
    return out


def out(finish_reason: str, *parts: dict, role: str = "assistant") -> dict:
    return {"role": role, "parts": list(parts), "finish_reason": finish_reason}


def function(name: str, description: str | None, parameters: Any) -> dict:
    return {"type": "function", "name": name, "description": description, "parameters": parameters}


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA="
PDF = "JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K"
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string", "description": "The city and state, e.g. Boston, MA"}},
    "required": ["location"],
    "additionalProperties": False,
}

# --- requests ------------------------------------------------------------------------------------

REQUESTS = [
    pytest.param(
        OPENAI_CHAT,
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You're a helpful assistant."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer briefly."}]},
                {"role": "user", "content": "What's the weather in Seattle?", "name": "alice"},
            ],
        },
        (
            [
                msg("system", text("You're a helpful assistant.")),
                msg("developer", text("Answer briefly.")),
                msg("user", text("What's the weather in Seattle?"), name="alice"),
            ],
            [],
            [],
        ),
        id="chat system and developer messages stay in the input messages with their roles, names kept",
    ),
    pytest.param(
        OPENAI_CHAT,
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "user", "content": "What's the weather in Seattle and San Francisco today?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_current_weather", "arguments": '{"location": "Seattle, WA"}'},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_current_weather", "arguments": "not json {"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "50 degrees and raining"},
                {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "70 and sunny"}]},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_current_weather",
                        "description": "Get the current weather in a given location",
                        "parameters": WEATHER_SCHEMA,
                    },
                }
            ],
        },
        (
            [
                msg("user", text("What's the weather in Seattle and San Francisco today?")),
                msg(
                    "assistant",
                    call("call_a", "get_current_weather", {"location": "Seattle, WA"}),
                    call("call_b", "get_current_weather", "not json {"),
                ),
                msg("tool", result("call_a", "50 degrees and raining")),
                msg("tool", result("call_b", [{"type": "text", "text": "70 and sunny"}])),
            ],
            [],
            [function("get_current_weather", "Get the current weather in a given location", WEATHER_SCHEMA)],
        ),
        id="chat tool calls carry parsed JSON arguments or the raw string, tool results become tool_call_response",
    ),
    pytest.param(
        OPENAI_CHAT,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is in these?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                        {"type": "input_audio", "input_audio": {"data": WAV, "format": "wav"}},
                        {"type": "input_audio", "input_audio": {"data": WAV, "format": "mp3"}},
                        {"type": "file", "file": {"file_id": "file-abc123", "filename": "report.pdf"}},
                        {
                            "type": "file",
                            "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
                        },
                        {"type": "file", "file": {"file_data": PDF, "filename": "b.pdf"}},
                        {"type": "image_url", "image_url": {"url": "data:text/plain,hello%20world"}},
                    ],
                }
            ]
        },
        (
            [
                msg(
                    "user",
                    text("What is in these?"),
                    blob("image/png", "image", PNG),
                    uri(None, "image", "https://example.com/cat.jpg"),
                    blob("audio/wav", "audio", WAV),
                    blob("audio/mpeg", "audio", WAV),
                    file("application/pdf", "document", "file-abc123"),
                    blob("application/pdf", "document", PDF),
                    blob("application/pdf", "document", PDF),
                    blob("text/plain", "image", "aGVsbG8gd29ybGQ="),
                )
            ],
            [],
            [],
        ),
        id="chat images audio and files become blob uri and file parts with their mime types",
    ),
    pytest.param(
        OPENAI_CHAT,
        {
            "messages": [
                {"role": "user", "content": "Help me pick a lock."},
                {"role": "assistant", "content": None, "refusal": "I can't help with that."},
                {"role": "assistant", "content": "Sure.", "reasoning_content": "The user wants a short answer."},
                {"role": "assistant", "content": None},
                {
                    "role": "assistant",
                    "content": None,
                    "function_call": {"name": "lookup", "arguments": '{"q": 1}'},
                },
            ],
            "functions": [{"name": "lookup", "parameters": {"type": "object"}}],
        },
        (
            [
                msg("user", text("Help me pick a lock.")),
                msg("assistant", text("I can't help with that.")),
                msg("assistant", reasoning("The user wants a short answer."), text("Sure.")),
                msg("assistant", call(None, "lookup", {"q": 1})),
            ],
            [],
            [function("lookup", None, {"type": "object"})],
        ),
        id="chat refusals are text, reasoning_content is reasoning, empty turns are left out, legacy functions kept",
    ),
    pytest.param(
        OPENAI_CHAT,
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {"type": "custom", "custom": {"name": "sql", "description": "Run SQL"}},
                {"type": "function", "function": {"name": "noop"}},
            ],
        },
        ([msg("user", text("hi"))], [], [{"type": "custom", "name": "sql"}, function("noop", None, None)]),
        id="chat custom tools are generic definitions and a function without a description has null",
    ),
    pytest.param(
        OPENAI_COMPLETIONS,
        {"model": "gpt-3.5-turbo-instruct", "prompt": "Say this is a test", "max_tokens": 7},
        ([msg("user", text("Say this is a test"))], [], []),
        id="a legacy completion prompt is one user message",
    ),
    pytest.param(
        OPENAI_COMPLETIONS,
        {"prompt": ["first", "second", [1, 2, 3]]},
        ([msg("user", text("first")), msg("user", text("second"))], [], []),
        id="a batch of legacy prompts is one user message each and token prompts are left out",
    ),
    pytest.param(
        OPENAI_EMBEDDINGS,
        {"model": "text-embedding-3-small", "input": "The food was delicious"},
        ([], [], []),
        id="embeddings requests have no message content",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {"model": "gpt-4o-mini", "input": "Say this is a test", "instructions": "You are a helpful assistant."},
        ([msg("user", text("Say this is a test"))], [text("You are a helpful assistant.")], []),
        id="responses instructions go to the system instructions and a string input is one user message",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {
            "model": "gpt-4o-mini",
            "input": [
                {"role": "system", "content": "Be terse."},
                {"role": "developer", "content": "Use metric units."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Describe these."},
                        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                        {"type": "input_image", "file_id": "file-img"},
                        {"type": "input_file", "file_id": "file-doc", "filename": "notes.txt"},
                        {"type": "input_file", "file_data": f"data:application/pdf;base64,{PDF}", "filename": "x.pdf"},
                        {"type": "input_file", "file_url": "https://example.com/paper.pdf"},
                    ],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Earlier answer.", "annotations": []}],
                },
            ],
        },
        (
            [
                msg("system", text("Be terse.")),
                msg("developer", text("Use metric units.")),
                msg(
                    "user",
                    text("Describe these."),
                    blob("image/png", "image", PNG),
                    file(None, "image", "file-img"),
                    file("text/plain", "document", "file-doc"),
                    blob("application/pdf", "document", PDF),
                    uri(None, "document", "https://example.com/paper.pdf"),
                ),
                msg("assistant", text("Earlier answer.")),
            ],
            [],
            [],
        ),
        id="responses message items keep system and developer roles and map input images and files",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {
            "model": "gpt-4o-mini",
            "input": [
                {"role": "user", "content": "What's the weather in Seattle and San Francisco today?"},
                {
                    "id": "rs_1",
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": "Two cities, two calls."}],
                },
                {
                    "arguments": '{"location":"Seattle, WA"}',
                    "call_id": "call_s",
                    "name": "get_current_weather",
                    "type": "function_call",
                    "id": "fc_1",
                    "status": "completed",
                },
                {
                    "arguments": '{"location":"San Francisco, CA"}',
                    "call_id": "call_f",
                    "name": "get_current_weather",
                    "type": "function_call",
                    "id": "fc_2",
                    "status": "completed",
                },
                {"type": "function_call_output", "call_id": "call_s", "output": '{"temperature":58}'},
                {"type": "function_call_output", "call_id": "call_f", "output": '{"temperature":65}'},
                {"type": "item_reference", "id": "msg_old"},
            ],
            "tools": [
                {
                    "type": "function",
                    "name": "get_current_weather",
                    "description": "Get the current weather in a given location",
                    "parameters": WEATHER_SCHEMA,
                    "strict": True,
                },
                {"type": "web_search_preview"},
            ],
        },
        (
            [
                msg("user", text("What's the weather in Seattle and San Francisco today?")),
                msg("assistant", reasoning("Two cities, two calls.")),
                msg(
                    "assistant",
                    call("call_s", "get_current_weather", {"location": "Seattle, WA"}),
                    call("call_f", "get_current_weather", {"location": "San Francisco, CA"}),
                ),
                msg("tool", result("call_s", '{"temperature":58}')),
                msg("tool", result("call_f", '{"temperature":65}')),
            ],
            [],
            [
                function("get_current_weather", "Get the current weather in a given location", WEATHER_SCHEMA),
                {"type": "web_search_preview", "name": "web_search_preview"},
            ],
        ),
        id="responses function calls of one turn merge into one assistant message and outputs are tool results",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use metric units."}],
            "messages": [
                {"role": "user", "content": "What's the weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "I should call the tool.", "signature": "sig=="},
                        {"type": "redacted_thinking", "data": "opaque"},
                        {"type": "text", "text": "Let me check."},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C and cloudy"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [{"type": "text", "text": "failed"}],
                            "is_error": True,
                        },
                    ],
                },
            ],
            "tools": [
                {"name": "get_weather", "description": "Weather for a city", "input_schema": {"type": "object"}},
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            ],
        },
        (
            [
                msg("user", text("What's the weather in Paris?")),
                msg(
                    "assistant",
                    reasoning("I should call the tool."),
                    text("Let me check."),
                    call("toolu_1", "get_weather", {"city": "Paris"}),
                ),
                msg(
                    "user",
                    result("toolu_1", "18 C and cloudy"),
                    result("toolu_2", [{"type": "text", "text": "failed"}]),
                ),
            ],
            [text("You are terse."), text("Use metric units.")],
            [
                function("get_weather", "Weather for a city", {"type": "object"}),
                {"type": "web_search_20250305", "name": "web_search"},
            ],
        ),
        id="anthropic system goes to system instructions, thinking is reasoning, tool_use and tool_result convert",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        {
            "system": "Be kind.",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                        {"type": "image", "source": {"type": "file", "file_id": "file_011"}},
                        {
                            "type": "document",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        },
                        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Notes."}},
                        {"type": "text", "text": "Summarise."},
                    ],
                }
            ],
        },
        (
            [
                msg(
                    "user",
                    blob("image/jpeg", "image", PNG),
                    uri(None, "image", "https://example.com/a.png"),
                    file(None, "image", "file_011"),
                    blob("application/pdf", "document", PDF),
                    text("Notes."),
                    text("Summarise."),
                )
            ],
            [text("Be kind.")],
            [],
        ),
        id="anthropic images and documents become blob uri file or text parts and a string system is one part",
    ),
    pytest.param(
        GEMINI,
        {
            "contents": [
                {"role": "user", "parts": [{"text": "What's the weather in Boston?"}]},
                {
                    "role": "model",
                    "parts": [
                        {"text": "Thinking about it.", "thought": True},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Boston"}}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 20}}}],
                },
                {
                    "role": "user",
                    "parts": [
                        {"inlineData": {"mimeType": "image/png", "data": PNG}},
                        {"fileData": {"mimeType": "video/mp4", "fileUri": "gs://bucket/clip.mp4"}},
                        {"inline_data": {"mime_type": "audio/wav", "data": WAV}},
                    ],
                },
            ],
            "systemInstruction": {"parts": [{"text": "You are a weather bot."}]},
            "tools": [
                {
                    "functionDeclarations": [
                        {"name": "get_weather", "description": "Weather", "parameters": {"type": "OBJECT"}}
                    ]
                },
                {"googleSearch": {}},
            ],
        },
        (
            [
                msg("user", text("What's the weather in Boston?")),
                msg("assistant", reasoning("Thinking about it."), call(None, "get_weather", {"city": "Boston"})),
                msg("user", result(None, {"temp": 20})),
                msg(
                    "user",
                    blob("image/png", "image", PNG),
                    uri("video/mp4", "video", "gs://bucket/clip.mp4"),
                    blob("audio/wav", "audio", WAV),
                ),
            ],
            [text("You are a weather bot.")],
            [
                function("get_weather", "Weather", {"type": "OBJECT"}),
                {"type": "google_search", "name": "google_search"},
            ],
        ),
        id="gemini systemInstruction goes apart, model turns are assistant, thoughts are reasoning, media converts",
    ),
    pytest.param(
        GEMINI,
        {
            "contents": {"parts": [{"text": "hi"}]},
            "system_instruction": {"parts": [{"text": "snake case"}]},
            "tools": [{"function_declarations": [{"name": "f", "parameters_json_schema": {"type": "object"}}]}],
        },
        ([msg("user", text("hi"))], [text("snake case")], [function("f", None, {"type": "object"})]),
        id="gemini snake_case fields and a single content object are read too",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {
            "input": [
                {"type": "custom_tool_call", "call_id": "call_c", "name": "run_sql", "input": "SELECT 1"},
                {"type": "custom_tool_call_output", "call_id": "call_c", "output": "1"},
                {"type": "computer_call", "call_id": "call_m", "action": {"type": "click", "x": 1, "y": 2}},
                {"type": "computer_call_output", "call_id": "call_m", "output": {"type": "computer_screenshot"}},
            ],
            "instructions": [
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Stored."}]}
            ],
        },
        (
            [
                msg("assistant", call("call_c", "run_sql", "SELECT 1")),
                msg("tool", result("call_c", "1")),
                msg("assistant", call("call_m", "computer", {"action": {"type": "click", "x": 1, "y": 2}})),
                msg("tool", result("call_m", {"type": "computer_screenshot"})),
            ],
            [text("Stored.")],
            [],
        ),
        id="responses custom and computer tool calls and their outputs convert, echoed instructions are text",
    ),
    pytest.param(
        GEMINI,
        {
            "contents": [
                {
                    "role": "model",
                    "parts": [
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
                        {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
                        {"thoughtSignature": "c2ln"},
                    ],
                },
                {
                    "role": "function",
                    "parts": [{"functionResponse": {"id": "fc-9", "name": "f", "response": {"ok": 1}}}],
                },
            ]
        },
        (
            [
                msg(
                    "assistant",
                    {
                        "type": "server_tool_call",
                        "id": None,
                        "name": "code_execution",
                        "server_tool_call": {"type": "code_execution", "language": "PYTHON", "code": "print(1)"},
                    },
                    {
                        "type": "server_tool_call_response",
                        "id": None,
                        "server_tool_call_response": {"type": "code_execution", "outcome": "OUTCOME_OK", "output": "1"},
                    },
                ),
                msg("tool", result("fc-9", {"ok": 1})),
            ],
            [],
            [],
        ),
        id="gemini code execution parts are server tool parts and function turns are tool messages",
    ),
]


@pytest.mark.parametrize(("api", "body", "expected"), REQUESTS)
def test_request_content(api: str, body: Any, expected: tuple) -> None:
    assert checked_request(api, body) == expected


# --- complete responses --------------------------------------------------------------------------

RESPONSES = [
    pytest.param(
        OPENAI_CHAT,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "This is a test.", "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
        },
        [out("stop", text("This is a test."))],
        id="a chat completion is one assistant message with its finish reason",
    ),
    pytest.param(
        OPENAI_CHAT,
        {
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "refusal": None,
                        "tool_calls": [
                            {
                                "id": "call_O8",
                                "type": "function",
                                "function": {"name": "get_current_weather", "arguments": '{"location":"Seattle, WA"}'},
                            },
                            {
                                "id": "call_3m",
                                "type": "function",
                                "function": {"name": "get_current_weather", "arguments": ""},
                            },
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        },
        [
            out(
                "tool_call",
                call("call_O8", "get_current_weather", {"location": "Seattle, WA"}),
                call("call_3m", "get_current_weather", None),
            )
        ],
        id="chat tool calls finish as tool_call and empty arguments are null",
    ),
    pytest.param(
        OPENAI_CHAT,
        {
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "A"}, "finish_reason": "length"},
                {
                    "index": 1,
                    "message": {"role": "assistant", "content": None, "refusal": "No."},
                    "finish_reason": "stop",
                },
                {
                    "index": 2,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "audio": {"id": "audio_1", "data": WAV, "expires_at": 1, "transcript": "Hello there"},
                    },
                    "finish_reason": "content_filter",
                },
                {"index": 3, "message": {"role": "assistant", "content": "x", "reasoning_content": "why"}},
            ]
        },
        [
            out("length", text("A")),
            out("stop", text("No.")),
            out("content_filter", {**blob(None, "audio", WAV), "transcript": "Hello there"}),
            out("error", reasoning("why"), text("x")),
        ],
        id="chat choices are one message each with refusals audio and reasoning, a missing finish reason is error",
    ),
    pytest.param(
        OPENAI_COMPLETIONS,
        {
            "object": "text_completion",
            "choices": [
                {"text": "\n\nThis is indeed a test", "index": 0, "logprobs": None, "finish_reason": "length"},
                {"text": "Yes", "index": 1, "logprobs": None, "finish_reason": "stop"},
            ],
        },
        [out("length", text("\n\nThis is indeed a test")), out("stop", text("Yes"))],
        id="legacy completion choices are assistant text messages",
    ),
    pytest.param(
        OPENAI_EMBEDDINGS,
        {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]},
        [],
        id="embeddings responses have no output messages",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {
            "id": "resp_1",
            "object": "response",
            "status": "completed",
            "output": [
                {
                    "id": "rs_1",
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": "Thinking briefly."}],
                },
                {
                    "id": "msg_1",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": "This is a test."}],
                },
            ],
        },
        [out("stop", reasoning("Thinking briefly.")), out("stop", text("This is a test."))],
        id="a responses output message and its reasoning item are output messages",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {
            "status": "completed",
            "output": [
                {
                    "id": "fc_1",
                    "type": "function_call",
                    "status": "completed",
                    "arguments": '{"location":"Seattle, WA"}',
                    "call_id": "call_k",
                    "name": "get_current_weather",
                },
                {
                    "id": "fc_2",
                    "type": "function_call",
                    "status": "completed",
                    "arguments": '{"location":"San Francisco, CA"}',
                    "call_id": "call_f",
                    "name": "get_current_weather",
                },
            ],
        },
        [
            out(
                "tool_call",
                call("call_k", "get_current_weather", {"location": "Seattle, WA"}),
                call("call_f", "get_current_weather", {"location": "San Francisco, CA"}),
            )
        ],
        id="responses function calls of one generation are one message finishing as tool_call",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [
                {
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Let me look."}],
                },
                {"type": "function_call", "status": "completed", "arguments": "{}", "call_id": "c1", "name": "f"},
                {
                    "type": "message",
                    "status": "incomplete",
                    "role": "assistant",
                    "content": [{"type": "refusal", "refusal": "I can't."}, {"type": "output_text", "text": "Cut"}],
                },
                {"id": "ws_1", "type": "web_search_call", "status": "completed", "action": {"query": "otel"}},
            ],
        },
        [
            out("tool_call", text("Let me look."), call("c1", "f", {})),
            out("length", text("I can't."), text("Cut")),
            out(
                "stop",
                {
                    "type": "server_tool_call",
                    "id": "ws_1",
                    "name": "web_search",
                    "server_tool_call": {"status": "completed", "action": {"query": "otel"}, "type": "web_search"},
                },
            ),
        ],
        id="responses calls join the text before them, refusals are text, server tools are server_tool_call parts",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "Need the tool.", "signature": "abc"},
                {"type": "text", "text": "Checking the weather."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 20},
        },
        [
            out(
                "tool_call",
                reasoning("Need the tool."),
                text("Checking the weather."),
                call("toolu_01", "get_weather", {"city": "Paris"}),
            )
        ],
        id="an anthropic message keeps its blocks in order and tool_use finishes as tool_call",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "otel"}},
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [{"type": "web_search_result", "url": "https://opentelemetry.io", "title": "OTel"}],
                },
                {"type": "text", "text": "Found it."},
            ],
            "stop_reason": "end_turn",
        },
        [
            out(
                "stop",
                {
                    "type": "server_tool_call",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "server_tool_call": {"type": "web_search", "input": {"query": "otel"}},
                },
                {
                    "type": "server_tool_call_response",
                    "id": "srvtoolu_1",
                    "server_tool_call_response": {
                        "type": "web_search",
                        "content": [{"type": "web_search_result", "url": "https://opentelemetry.io", "title": "OTel"}],
                    },
                },
                text("Found it."),
            )
        ],
        id="anthropic server tool use and its result are server tool parts",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        [],
        id="an anthropic error body has no output messages",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Cut"}],
            "stop_reason": "max_tokens",
        },
        [out("length", text("Cut"))],
        id="anthropic max_tokens finishes as length",
    ),
    pytest.param(
        GEMINI,
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [
                            {"text": "Let me think.", "thought": True},
                            {"text": "It is sunny."},
                            {"inlineData": {"mimeType": "image/png", "data": PNG}},
                        ],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 4},
            "modelVersion": "gemini-2.5-flash",
        },
        [out("stop", reasoning("Let me think."), text("It is sunny."), blob("image/png", "image", PNG))],
        id="a gemini candidate is one assistant message with thoughts as reasoning and inline data as blobs",
    ),
    pytest.param(
        GEMINI,
        {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": "second"}]},
                    "finishReason": "MAX_TOKENS",
                    "index": 1,
                },
                {
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"id": "fc-1", "name": "get_weather", "args": {"city": "Oslo"}}}],
                    },
                    "finishReason": "STOP",
                    "index": 0,
                },
                {"finishReason": "SAFETY", "index": 2},
            ]
        },
        [
            out("tool_call", call("fc-1", "get_weather", {"city": "Oslo"})),
            out("length", text("second")),
            out("content_filter"),
        ],
        id="gemini candidates are ordered by index, function calls finish as tool_call, safety as content_filter",
    ),
    pytest.param(
        GEMINI,
        {"promptFeedback": {"blockReason": "SAFETY"}},
        [],
        id="a blocked gemini prompt has no output messages",
    ),
    pytest.param(
        GEMINI,
        {
            "candidates": [
                {"content": {"role": "model", "parts": []}, "finishReason": "MALFORMED_FUNCTION_CALL"},
                {"content": {"role": "model", "parts": [{"text": "?"}]}, "finishReason": "OTHER"},
            ]
        },
        [out("MALFORMED_FUNCTION_CALL"), out("error", text("?"))],
        id="gemini finish reasons without a conventions counterpart are kept as given and OTHER is error",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        {
            "status": "failed",
            "output": [
                {
                    "type": "message",
                    "status": "failed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Par"}],
                },
                {"type": "function_call", "status": "in_progress", "call_id": "c", "name": "f", "arguments": '{"a'},
            ],
        },
        [out("error", text("Par")), out("error", call("c", "f", '{"a'))],
        id="failed and unfinished responses items finish as error",
    ),
]


@pytest.mark.parametrize(("api", "body", "expected"), RESPONSES)
def test_response_messages(api: str, body: Any, expected: list) -> None:
    assert checked_response(api, body) == expected


# --- streams -------------------------------------------------------------------------------------


def chat_chunk(delta: dict, finish_reason: str | None = None, index: int = 0) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def tool_delta(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict:
    entry: dict = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        entry["id"] = call_id
        entry["type"] = "function"
        entry["function"]["name"] = name
    return {"tool_calls": [entry]}


CHAT_TOOL_STREAM = [
    chat_chunk({"role": "assistant", "content": None}),
    chat_chunk(tool_delta(0, "", "call_fH", "get_current_weather")),
    chat_chunk(tool_delta(0, '{"lo')),
    chat_chunk(tool_delta(0, 'cation": "S')),
    chat_chunk(tool_delta(0, 'eattle, WA"}')),
    chat_chunk(tool_delta(1, "", "call_3J", "get_current_weather")),
    chat_chunk(tool_delta(1, '{"location": "San Francisco, CA"}')),
    chat_chunk({}, "tool_calls"),
    {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 75, "completion_tokens": 51}},
]


def responses_event(kind: str, **fields: Any) -> dict:
    return {"type": kind, **fields}


RESPONSES_TEXT_STREAM = [
    responses_event("response.created", response={"id": "resp_1", "status": "in_progress", "output": []}),
    responses_event(
        "response.output_item.added",
        output_index=0,
        item={"id": "msg_1", "type": "message", "status": "in_progress", "content": [], "role": "assistant"},
    ),
    responses_event(
        "response.content_part.added", output_index=0, content_index=0, part={"type": "output_text", "text": ""}
    ),
    responses_event("response.output_text.delta", output_index=0, content_index=0, item_id="msg_1", delta="This"),
    responses_event("response.output_text.delta", output_index=0, content_index=0, item_id="msg_1", delta=" is a"),
    responses_event("response.output_text.delta", output_index=0, content_index=0, item_id="msg_1", delta=" test."),
    responses_event("response.output_text.done", output_index=0, content_index=0, text="This is a test."),
    responses_event(
        "response.output_item.done",
        output_index=0,
        item={
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "annotations": [], "text": "This is a test."}],
        },
    ),
    responses_event(
        "response.completed",
        response={
            "id": "resp_1",
            "status": "completed",
            "output": [
                {
                    "id": "msg_1",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "annotations": [], "text": "This is a test."}],
                }
            ],
        },
    ),
]

RESPONSES_TOOL_STREAM = [
    responses_event("response.created", response={"id": "resp_2", "status": "in_progress", "output": []}),
    responses_event(
        "response.output_item.added",
        output_index=0,
        item={
            "id": "fc_1",
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": "call_k",
            "name": "get_current_weather",
        },
    ),
    responses_event("response.function_call_arguments.delta", output_index=0, item_id="fc_1", delta='{"location":'),
    responses_event("response.function_call_arguments.delta", output_index=0, item_id="fc_1", delta='"Seattle, WA"}'),
    responses_event(
        "response.function_call_arguments.done", output_index=0, item_id="fc_1", arguments='{"location":"Seattle, WA"}'
    ),
    responses_event(
        "response.output_item.done",
        output_index=0,
        item={
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "arguments": '{"location":"Seattle, WA"}',
            "call_id": "call_k",
            "name": "get_current_weather",
        },
    ),
    responses_event(
        "response.output_item.added",
        output_index=1,
        item={
            "id": "fc_2",
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": "call_f",
            "name": "get_current_weather",
        },
    ),
    responses_event("response.function_call_arguments.delta", output_index=1, item_id="fc_2", delta='{"location":"San'),
]

ANTHROPIC_STREAM = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_01",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 13, "output_tokens": 2},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "The user wants "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "the weather."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "check."}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city": "Pa'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": 'ris"}'}},
    {"type": "content_block_stop", "index": 2},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 40},
    },
    {"type": "message_stop"},
]


def gemini_chunk(parts: list[dict], finish_reason: str | None = None, index: int = 0) -> dict:
    candidate: dict = {"content": {"role": "model", "parts": parts}, "index": index}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    return {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r1"}


STREAMS = [
    pytest.param(
        OPENAI_CHAT,
        [
            chat_chunk({"role": "assistant", "content": ""}),
            chat_chunk({"content": "This is"}),
            chat_chunk({"content": " a test."}),
            chat_chunk({}, "stop"),
            {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5}},
        ],
        [out("stop", text("This is a test."))],
        id="chat text deltas join into one text part",
    ),
    pytest.param(
        OPENAI_CHAT,
        CHAT_TOOL_STREAM,
        [
            out(
                "tool_call",
                call("call_fH", "get_current_weather", {"location": "Seattle, WA"}),
                call("call_3J", "get_current_weather", {"location": "San Francisco, CA"}),
            )
        ],
        id="chat tool call deltas are assembled by index into whole tool calls",
    ),
    pytest.param(
        OPENAI_CHAT,
        CHAT_TOOL_STREAM[:4],
        [out("error", call("call_fH", "get_current_weather", '{"location": "S'))],
        id="a chat stream closed early keeps the partial arguments as a string and finishes as error",
    ),
    pytest.param(
        OPENAI_CHAT,
        [
            chat_chunk({"role": "assistant"}, index=1),
            chat_chunk({"role": "assistant"}, index=0),
            chat_chunk({"content": "B"}, index=1),
            chat_chunk({"content": "A"}, index=0),
            chat_chunk({"reasoning_content": "hm"}, index=0),
            chat_chunk({"refusal": "No"}, index=1),
            chat_chunk({}, "stop", index=1),
            chat_chunk({}, "length", index=0),
        ],
        [out("length", reasoning("hm"), text("A")), out("stop", text("B"), text("No"))],
        id="chat with several choices gives one message per choice ordered by index",
    ),
    pytest.param(
        OPENAI_CHAT,
        [
            chat_chunk(
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                }
            ),
            chat_chunk(
                {"tool_calls": [{"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}}]}
            ),
            chat_chunk({}, "tool_calls"),
        ],
        [out("tool_call", call("c1", "f", {}), call("c2", "g", {"a": 1}))],
        id="chat tool calls sent whole without an index are told apart by id",
    ),
    pytest.param(
        OPENAI_COMPLETIONS,
        [
            {"object": "text_completion", "choices": [{"text": "This", "index": 0, "finish_reason": None}]},
            {"object": "text_completion", "choices": [{"text": " is a test", "index": 0, "finish_reason": "length"}]},
        ],
        [out("length", text("This is a test"))],
        id="legacy completion text deltas join into one message",
    ),
    pytest.param(OPENAI_EMBEDDINGS, [{"data": []}], [], id="an embeddings stream has no messages"),
    pytest.param(
        OPENAI_RESPONSES,
        RESPONSES_TEXT_STREAM,
        [out("stop", text("This is a test."))],
        id="responses stream text appears once although deltas and the completed response both carry it",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        RESPONSES_TEXT_STREAM[:6],
        [out("error", text("This is a test."))],
        id="a responses stream closed early gives the text of its deltas and finishes as error",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        RESPONSES_TOOL_STREAM,
        [
            out("tool_call", call("call_k", "get_current_weather", {"location": "Seattle, WA"})),
            out("error", call("call_f", "get_current_weather", '{"location":"San')),
        ],
        id="responses function call argument deltas are assembled and an unfinished call is kept raw",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        [
            responses_event(
                "response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []}
            ),
            responses_event("response.reasoning_summary_text.delta", output_index=0, summary_index=0, delta="Plan: "),
            responses_event("response.reasoning_summary_text.delta", output_index=0, summary_index=0, delta="answer."),
            responses_event("response.output_text.delta", output_index=1, content_index=0, delta="Done"),
            responses_event("response.refusal.delta", output_index=2, content_index=0, delta="Won't"),
            responses_event("response.completed", response={"status": "completed", "output": []}),
        ],
        [out("error", reasoning("Plan: answer.")), out("error", text("Done")), out("error", text("Won't"))],
        id="responses deltas without added events still give their text when the completed response has no output",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        ANTHROPIC_STREAM,
        [
            out(
                "tool_call",
                reasoning("The user wants the weather."),
                text("Let me check."),
                call("toolu_01", "get_weather", {"city": "Paris"}),
            )
        ],
        id="anthropic thinking text and input_json deltas are assembled per block",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        ANTHROPIC_STREAM[:14],
        [
            out(
                "error",
                reasoning("The user wants the weather."),
                text("Let me check."),
                call("toolu_01", "get_weather", '{"city": "Pa'),
            )
        ],
        id="an anthropic stream closed early keeps partial tool input raw and finishes as error",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        [
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "n", "input": {}},
            },
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}},
        ],
        [out("tool_call", call("t", "n", {}))],
        id="an anthropic tool call without input deltas keeps the input of its start block",
    ),
    pytest.param(ANTHROPIC_MESSAGES, [{"type": "ping"}], [], id="an anthropic stream with only pings has no messages"),
    pytest.param(
        GEMINI,
        [
            gemini_chunk([{"text": "Considering", "thought": True}]),
            gemini_chunk([{"text": " options.", "thought": True}]),
            gemini_chunk([{"text": "In digital realms"}]),
            gemini_chunk([{"text": ", systems hum."}]),
            gemini_chunk([{"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}], "STOP"),
        ],
        [
            out(
                "tool_call",
                reasoning("Considering options."),
                text("In digital realms, systems hum."),
                call(None, "get_weather", {"city": "Rome"}),
            )
        ],
        id="gemini chunks join text and thought runs and keep function calls whole",
    ),
    pytest.param(
        GEMINI,
        [[gemini_chunk([{"text": "a"}]), gemini_chunk([{"text": "b"}], "STOP")]],
        [out("stop", text("ab"))],
        id="a gemini stream read as one JSON array is fed chunk by chunk",
    ),
    pytest.param(
        GEMINI,
        [gemini_chunk([{"text": "partial"}])],
        [out("error", text("partial"))],
        id="a gemini stream closed early finishes as error",
    ),
    pytest.param(
        OPENAI_CHAT,
        [
            chat_chunk({"role": "assistant", "function_call": {"name": "lookup", "arguments": ""}}),
            chat_chunk({"function_call": {"arguments": '{"q": '}}),
            chat_chunk({"function_call": {"arguments": "2}"}}),
            chat_chunk({}, "function_call"),
        ],
        [out("tool_call", call(None, "lookup", {"q": 2}))],
        id="a legacy chat function_call stream is assembled into one tool call",
    ),
    pytest.param(
        OPENAI_CHAT,
        [
            chat_chunk(tool_delta(0, "", "call_1", "f")),
            chat_chunk(tool_delta(0, '{"n": 1}')),
            chat_chunk(tool_delta(0, "", "call_2", "g")),
            chat_chunk(tool_delta(0, '{"n": 2}')),
            chat_chunk({}, "tool_calls"),
        ],
        [out("tool_call", call("call_1", "f", {"n": 1}), call("call_2", "g", {"n": 2}))],
        id="chat tool calls that a relay numbers all 0 are told apart by their new ids",
    ),
    pytest.param(
        OPENAI_RESPONSES,
        [
            responses_event(
                "response.output_item.added",
                output_index=0,
                item={"id": "msg_9", "type": "message", "status": "in_progress", "role": "assistant", "content": []},
            ),
            responses_event("response.output_text.delta", item_id="msg_9", content_index=0, delta="Only "),
            responses_event("response.output_text.delta", item_id="msg_9", content_index=0, delta="ids."),
            responses_event(
                "response.output_item.done",
                output_index=0,
                item={
                    "id": "msg_9",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Only ids."}],
                },
            ),
        ],
        [out("stop", text("Only ids."))],
        id="responses deltas that name only their item id land on that item and its text appears once",
    ),
    pytest.param(
        ANTHROPIC_MESSAGES,
        [
            {"type": "message_start", "message": {"role": "assistant", "content": []}},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"query": "otel"}'},
            },
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            },
            {"type": "content_block_delta", "index": 2, "delta": {"type": "text_delta", "text": "No start block."}},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}},
        ],
        [
            out(
                "stop",
                {
                    "type": "server_tool_call",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "server_tool_call": {"type": "web_search", "input": {"query": "otel"}},
                },
                {
                    "type": "server_tool_call_response",
                    "id": "srvtoolu_1",
                    "server_tool_call_response": {"type": "web_search", "content": []},
                },
                text("No start block."),
            )
        ],
        id="anthropic server tool blocks stream whole or by input deltas and a delta without a start still counts",
    ),
]


@pytest.mark.parametrize(("api", "events", "expected"), STREAMS)
def test_stream_messages(api: str, events: list, expected: list) -> None:
    assert streamed(api, events) == expected


def test_stream_messages_can_be_read_at_any_time_and_go_on() -> None:
    stream = StreamContent(ANTHROPIC_MESSAGES)
    seen = []
    for event in ANTHROPIC_STREAM:
        stream.feed(event)
        seen.append(stream.messages())
    assert seen[0] == [out("error")]
    assert seen[-1] == streamed(ANTHROPIC_MESSAGES, ANTHROPIC_STREAM)


def test_a_responses_stream_ignores_events_after_its_final_response() -> None:
    events = [*RESPONSES_TEXT_STREAM, responses_event("response.output_text.delta", output_index=0, delta="late")]
    assert streamed(OPENAI_RESPONSES, events) == [out("stop", text("This is a test."))]


def test_a_long_stream_is_joined_once() -> None:
    fragments = 200_000
    stream = StreamContent(OPENAI_CHAT)
    for _ in range(fragments):
        stream.feed(chat_chunk({"content": "ab"}))
    stream.feed(chat_chunk({}, "stop"))
    [message] = stream.messages()
    assert message["parts"] == [text("ab" * fragments)]


def test_base64_payloads_are_kept_as_given() -> None:
    payload = "A" * 1_000_000
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": f"data:image/webp;base64,{payload}"}}],
            }
        ]
    }
    [[message], _, _] = checked_request(OPENAI_CHAT, body)
    assert message["parts"] == [blob("image/webp", "image", payload)]


@pytest.mark.parametrize(
    ("raw", "arguments"),
    [
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ("[1, 2]", [1, 2]),
        ("42", 42),
        ('{"x": NaN}', '{"x": NaN}'),
        ("{truncated", "{truncated"),
        ("", None),
    ],
    ids=[
        "a JSON object is parsed",
        "a JSON array is parsed",
        "a JSON number is parsed",
        "NaN is not JSON and stays a string",
        "broken JSON stays a string",
        "empty arguments are null",
    ],
)
def test_tool_call_arguments_are_json_when_they_can_be(raw: str, arguments: Any) -> None:
    body = {
        "choices": [
            {"message": {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": raw}}]}}
        ]
    }
    assert checked_response(OPENAI_CHAT, body)[0]["parts"] == [call("c", "f", arguments)]


@pytest.mark.parametrize("api", ["openai.unknown", "", None, 3])
def test_an_unknown_wire_format_has_no_content(api: Any) -> None:
    assert request_content(api, {"messages": [{"role": "user", "content": "hi"}]}) == ([], [], [])
    assert response_messages(api, {"choices": [{"message": {"content": "hi"}}]}) == []
    stream = StreamContent(api)
    stream.feed(chat_chunk({"content": "hi"}))
    assert stream.messages() == []


# --- fuzzing: any JSON never raises and always gives the conventions' shapes ---------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)

# Keys and values of the real wire formats, so generated bodies reach deep into the converters.
WIRE_KEYS = [
    "messages",
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "function",
    "arguments",
    "id",
    "type",
    "text",
    "image_url",
    "url",
    "input_audio",
    "data",
    "format",
    "file",
    "file_id",
    "file_data",
    "filename",
    "refusal",
    "reasoning_content",
    "audio",
    "tools",
    "functions",
    "custom",
    "choices",
    "message",
    "delta",
    "finish_reason",
    "index",
    "prompt",
    "input",
    "instructions",
    "output",
    "call_id",
    "summary",
    "status",
    "incomplete_details",
    "reason",
    "item",
    "output_index",
    "content_index",
    "summary_index",
    "response",
    "system",
    "source",
    "media_type",
    "input_schema",
    "tool_use_id",
    "thinking",
    "stop_reason",
    "content_block",
    "partial_json",
    "contents",
    "parts",
    "systemInstruction",
    "inlineData",
    "mimeType",
    "fileData",
    "fileUri",
    "functionCall",
    "functionResponse",
    "args",
    "thought",
    "candidates",
    "finishReason",
    "functionDeclarations",
    "parameters",
    "executableCode",
    "codeExecutionResult",
    "action",
    "file_url",
]
WIRE_STRINGS = [
    "user",
    "assistant",
    "tool",
    "system",
    "model",
    "function",
    "text",
    "image_url",
    "input_audio",
    "file",
    "input_text",
    "input_image",
    "input_file",
    "output_text",
    "refusal",
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "computer_call",
    "reasoning",
    "reasoning_text",
    "completed",
    "incomplete",
    "in_progress",
    "tool_use",
    "tool_result",
    "thinking",
    "image",
    "document",
    "base64",
    "url",
    "content",
    "server_tool_use",
    "web_search_tool_result",
    "web_search_call",
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "tool_calls",
    "stop",
    "data:image/png;base64,AAAA",
    "data:text/plain,%41",
    "data:",
    '{"a":1}',
    "{",
    "response.output_text.delta",
    "response.output_item.added",
    "response.output_item.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.completed",
    "response.reasoning_summary_text.delta",
    "content_block_start",
    "content_block_delta",
    "message_start",
    "message_delta",
    "text_delta",
    "input_json_delta",
    "thinking_delta",
    "a.pdf",
]
wire_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 3) | st.sampled_from(WIRE_STRINGS) | st.text(max_size=4),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(WIRE_KEYS), children, max_size=6),
    max_leaves=40,
)
apis = st.sampled_from(ALL_APIS)


def strict_request(api: str, body: Any) -> None:
    """The converter itself, without the catch-all of the entry point: a raise here is a bug."""
    convert = messages_module._REQUESTS.get(api)
    if convert is not None and isinstance(body, dict):
        messages, system, tools = convert(body)
        check_messages(messages, output=False)
        check_system(system)
        check_tools(tools)
    checked_request(api, body)


def strict_response(api: str, body: Any) -> None:
    convert = messages_module._RESPONSES.get(api)
    if convert is not None and isinstance(body, dict):
        check_messages(convert(body), output=True)
    checked_response(api, body)


@settings(max_examples=300, deadline=None)
@given(apis, json_values)
def test_any_json_request_or_response_never_raises_and_keeps_the_shapes(api: str, body: Any) -> None:
    strict_request(api, body)
    strict_response(api, body)


@settings(max_examples=600, deadline=None)
@given(apis, wire_values)
def test_wire_shaped_bodies_never_raise_and_keep_the_shapes(api: str, body: Any) -> None:
    strict_request(api, body)
    strict_response(api, body)


@settings(max_examples=400, deadline=None)
@given(apis, st.lists(wire_values | json_values, max_size=8))
def test_any_stream_of_events_never_raises_and_keeps_the_shapes(api: str, events: list) -> None:
    factory = messages_module._STREAMS.get(api)
    state = factory() if factory is not None else None
    stream = StreamContent(api)
    for event in events:
        if state is not None:
            state.feed(event)  # without the catch-all of StreamContent
            check_messages(state.messages(), output=True)
        stream.feed(event)
        check_messages(stream.messages(), output=True)
