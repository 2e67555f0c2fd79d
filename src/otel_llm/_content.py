"""Content under a size cap: JSON text for span attributes, structured values for events.

The cap (``content_max_length``) counts the characters of the compact JSON text (``ensure_ascii=False``).
Whatever the input, the result is valid JSON, at most the cap, and encodable as UTF-8 (a lone surrogate
becomes U+FFFD through the parsers' own ``clean``: never longer, so lengths stay within the cap). The
caller's value is never changed: whatever is cut is cut on a private copy.

Time and memory stay linear in the content's size, whatever the number of messages: each message is
encoded at most a bounded number of times, the pieces kept are joined once, and a long history is read
from its newest message backwards, only as far as the cap reaches.

What is kept under the cap:

- a chat history (``gen_ai.input.messages``) keeps its newest messages and its leading system or
  developer messages (a Chat Completions history carries its instructions there) and loses the middle;
  the cut is marked by one message in the conventions' own shape, ``{"role": "system", "parts":
  [{"type": "text", "content": "…[N messages truncated]"}], "name": null}``. A message that does not fit
  whole is shortened (its longest strings cut first, each marked ``…[truncated]``; then its last parts,
  marked by a text part ``…[N parts truncated]``) rather than dropped; the newest message is dropped only
  when the cap is smaller than the message with no parts at all.
- any other list (output messages, system instructions, tool definitions) keeps every item with its
  longest strings cut to a common length, each marked; when that is not enough, its first items, the
  first one shortened as above when it does not fit whole. A reply is so shortened, never emptied: ``[]``
  only when the cap is smaller than the reply's message with no parts.
- ``None`` (no attribute) only when the cap is below 2 characters, where no JSON list fits.
"""

from __future__ import annotations

import json
from typing import Any

from ._parsers._text import clean

__all__ = ["MARK", "cap_content", "cap_json"]

MARK = "…[truncated]"
_SHORT = 32  # strings this short (roles, part types, ids, mime types) are never cut: the shape stays readable
_SMALL = 64  # a history of at most this many messages is first encoded whole: most fit, in one encoding
_MIN_PARTIAL = 256  # room (characters) worth shortening the message at the cut into, rather than dropping it
_HEAD_ROLES = frozenset(("system", "developer"))
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _dumps(value: Any) -> str:
    """The one encoding every size here is measured in."""
    return _ENCODER.encode(value)


def _placeholder(count: int) -> dict[str, Any]:
    """The message that stands for ``count`` messages cut from the middle of a history."""
    return {"role": "system", "parts": [{"type": "text", "content": f"…[{count} messages truncated]"}], "name": None}


def _parts_marker(count: int) -> dict[str, Any]:
    return {"type": "text", "content": f"…[{count} parts truncated]"}


def _strings(value: Any, out: list[tuple[Any, Any, int]]) -> None:
    """Every string leaf longer than ``_SHORT`` of a JSON structure, as (container, key, length)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str):
                if len(v) > _SHORT:
                    out.append((value, k, len(v)))
            elif isinstance(v, (dict, list)):
                _strings(v, out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if isinstance(v, str):
                if len(v) > _SHORT:
                    out.append((value, i, len(v)))
            elif isinstance(v, (dict, list)):
                _strings(v, out)


def _cut_strings(text: str, limit: int) -> tuple[Any, str]:
    """A private copy of the structure ``text`` encodes, with its longest strings (a base64 image, a long
    prompt) cut to a common length, each marked, and its JSON: within ``limit`` when cutting strings is
    enough. At most four passes (escaping makes characters and JSON length differ a little: re-measure)."""
    value = json.loads(text)  # a private deep copy, plain JSON types only
    for _ in range(4):
        excess = len(text) - limit
        if excess <= 0:
            break
        leaves: list[tuple[Any, Any, int]] = []
        _strings(value, leaves)
        if not leaves:
            break
        lengths = sorted((size for _, _, size in leaves), reverse=True)
        need = excess + len(MARK) * len(lengths) + 16
        # the largest common length T with sum(max(0, size - T)) >= need
        keep = 0
        cut = 0
        for i, size in enumerate(lengths):
            nxt = lengths[i + 1] if i + 1 < len(lengths) else 0
            cut += (size - nxt) * (i + 1)
            if cut >= need:
                keep = nxt + (cut - need) // (i + 1)
                break
        for container, key, size in leaves:
            if size > keep:
                container[key] = container[key][:keep] + MARK
        text = _dumps(value)
    return value, text


def _fit_item(text: str, budget: int) -> str | None:
    """One item (a message, a part, a tool) as JSON within ``budget`` characters: whole; else with its longest
    strings cut; else, for a message, with its first parts only and a text part marking the rest; else
    ``None`` (it cannot fit)."""
    if len(text) <= budget:
        return text
    if budget < 2:
        return None
    value, text = _cut_strings(text, budget)
    if len(text) <= budget:
        return text
    if not isinstance(value, dict):
        return None
    parts = value.get("parts")
    if not isinstance(parts, list):
        return None
    value["parts"] = []
    skeleton = len(_dumps(value))
    if skeleton > budget:
        return None
    reserve = len(_dumps(_parts_marker(len(parts)))) + 1
    room = budget - skeleton - reserve
    kept: list[Any] = []
    for part in parts:
        size = len(_dumps(part)) + (1 if kept else 0)
        if size > room:
            break
        kept.append(part)
        room -= size
    if room >= 0 and len(kept) < len(parts):  # the marker fits too
        kept.append(_parts_marker(len(parts) - len(kept)))
    value["parts"] = kept
    text = _dumps(value)
    return text if len(text) <= budget else None


def _head_count(value: list[Any]) -> int:
    """How many leading messages are system or developer instructions (never the newest one)."""
    last = len(value) - 1
    h = 0
    while h < last:
        msg = value[h]
        if not isinstance(msg, dict) or msg.get("role") not in _HEAD_ROLES:
            break
        h += 1
    return h


def _history(value: list[Any], limit: int) -> tuple[str, bool]:
    """A chat history within ``limit``: the leading instructions and the newest messages, the middle cut and
    marked (see the module's doc). Reads the messages from the newest backwards, only as far as the cap
    reaches: the work is bounded by the cap and the sizes of the messages kept, not by their number.
    Also says whether the history is whole."""
    n = len(value)
    budget = limit - 2  # the brackets
    newest = _dumps(value[-1])
    h = _head_count(value)
    used = len(newest)
    head: list[str] = []
    for j in range(h):
        t = _dumps(value[j])
        head.append(t)
        used += len(t) + 1
        if used > budget:
            return _shrunk_core(value, h, newest, limit), False
    if used > budget:
        return _shrunk_core(value, h, newest, limit), False
    room = budget - used
    tail: list[str] = []  # the newest first, after the newest message itself
    i = n - 2
    t = ""
    while i >= h:
        t = _dumps(value[i])
        if len(t) + 1 > room:
            break
        tail.append(t)
        room -= len(t) + 1
        i -= 1
    if i < h:  # everything fits
        return "[" + ",".join((*head, *reversed(tail), newest)) + "]", True
    # messages h..i are left out (i does not fit whole): room for the marker, giving back kept messages if needed
    reserve = len(_dumps(_placeholder(n))) + 1
    while room < reserve and tail:
        t = tail.pop()
        room += len(t) + 1
        i += 1
    if room < reserve:
        return _shrunk_core(value, h, newest, limit), False
    room -= reserve
    if room - 1 >= _MIN_PARTIAL:  # message i, shortened into the room left
        part = _fit_item(t, room - 1)
        if part is not None:
            tail.append(part)
            i -= 1
    cut = i - h + 1
    marker = (_dumps(_placeholder(cut)),) if cut > 0 else ()
    return "[" + ",".join((*head, *marker, *reversed(tail), newest)) + "]", False


def _shrunk_core(value: list[Any], h: int, newest: str, limit: int) -> str:
    """The leading instructions and the newest message do not fit whole: their longest strings are cut (the
    middle replaced by its marker); else the newest message alone, shortened, after the marker; else alone."""
    n = len(value)
    middle = n - 1 - h
    reserve = len(_dumps(_placeholder(middle))) + 1 if middle else 0
    if h and limit - reserve >= 2:
        core, text = _cut_strings(_dumps([*value[:h], value[-1]]), limit - reserve)
        if len(text) <= limit - reserve:
            if middle:
                core.insert(h, _placeholder(middle))
                text = _dumps(core)
            return text
    cut = n - 1
    if cut:
        marker = _dumps(_placeholder(cut))
        part = _fit_item(newest, limit - 3 - len(marker))
        if part is not None:
            return "[" + marker + "," + part + "]"
    part = _fit_item(newest, limit - 2)
    return "[]" if part is None else "[" + part + "]"


def _items(value: Any, text: str, limit: int) -> str | None:
    """Any other value within ``limit``: every item with its longest strings cut; else its first items, the
    first shortened if it does not fit whole."""
    copy, text = _cut_strings(text, limit)
    if len(text) <= limit:
        return text
    if not isinstance(copy, list):
        return None
    room = limit - 2
    kept: list[str] = []
    for item in copy:
        t = _dumps(item)
        size = len(t) + (1 if kept else 0)
        if size > room:
            if not kept:
                part = _fit_item(t, room)
                if part is not None:
                    kept.append(part)
            break
        kept.append(t)
        room -= size
    return "[" + ",".join(kept) + "]"


def _cap(value: Any, limit: int, history: bool) -> tuple[str | None, bool]:
    """(JSON text within ``limit`` or None, whether it is the whole value)."""
    if limit < 2:
        return None, False
    if history and isinstance(value, list) and len(value) > _SMALL:
        return _history(value, limit)
    text = _dumps(value)
    if len(text) <= limit:
        return text, True
    if history and isinstance(value, list) and value:
        return _history(value, limit)
    return _items(value, text, limit), False


def cap_json(value: Any, limit: int, history: bool = False) -> str | None:
    """Content as JSON text for a span attribute: at most ``limit`` characters, valid JSON, or None when
    ``limit`` is below 2. ``history``: ``value`` is a list of input messages (its middle is cut first)."""
    text = _cap(value, limit, history)[0]
    return None if text is None else clean(text)


def cap_content(value: Any, limit: int, history: bool = False) -> Any:
    """Content as a structured value for an event attribute, its JSON at most ``limit`` characters: the
    caller's own value when it fits whole, else a capped copy; None when ``limit`` is below 2."""
    text, whole = _cap(value, limit, history)
    if text is None:
        return None
    safe = clean(text)
    if whole and safe is text:
        return value
    return json.loads(safe)
