"""Token usage as the providers report it, normalised to one shape."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Usage", "new_usage"]


@dataclass(slots=True)
class Usage:
    """Token counts of one call; ``None`` means the provider did not say.

    ``input_tokens`` includes cached reads and cache writes (the conventions' billable input);
    ``output_tokens`` includes reasoning tokens. The other fields are subsets of those two.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    def is_empty(self) -> bool:
        return self.input_tokens is None and self.output_tokens is None


_new = object.__new__


def new_usage(
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> Usage:
    """``Usage(...)`` without the dataclass's Python ``__init__`` (on Python 3.11 a class call whose ``__init__``
    is Python code re-enters the interpreter from C): the parsers make one per call."""
    usage = _new(Usage)
    usage.input_tokens = input_tokens
    usage.output_tokens = output_tokens
    usage.cache_read_tokens = cache_read_tokens
    usage.cache_write_tokens = cache_write_tokens
    usage.reasoning_tokens = reasoning_tokens
    return usage
