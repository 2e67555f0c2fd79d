"""Token usage as the providers report it, normalised to one shape."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_TOKENS", "Usage", "invalid_usage", "new_usage"]

MAX_TOKENS = 1_000_000_000
"""Most tokens one count of one call may report: a count above it (or negative, fractional, a string, a
boolean) is not a usage any provider bills, and the whole usage of that call is taken as invalid."""


@dataclass(slots=True)
class Usage:
    """Token counts of one call; ``None`` means the provider did not say.

    ``input_tokens`` includes cached reads, cache writes and audio input (the conventions' billable input);
    ``output_tokens`` includes reasoning and audio output tokens. The other fields are subsets of those two.
    ``invalid``: the provider sent a count outside any real range; the counts are then all ``None`` and the
    call is neither counted, priced nor added to spend.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    audio_input_tokens: int | None = None
    audio_output_tokens: int | None = None
    invalid: bool = False

    def is_empty(self) -> bool:
        return self.input_tokens is None and self.output_tokens is None


_new = object.__new__


def new_usage(
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    audio_input_tokens: int | None = None,
    audio_output_tokens: int | None = None,
) -> Usage:
    """``Usage(...)`` without the dataclass's Python ``__init__`` (on Python 3.11 a class call whose ``__init__``
    is Python code re-enters the interpreter from C): the parsers make one per call."""
    usage = _new(Usage)
    usage.input_tokens = input_tokens
    usage.output_tokens = output_tokens
    usage.cache_read_tokens = cache_read_tokens
    usage.cache_write_tokens = cache_write_tokens
    usage.reasoning_tokens = reasoning_tokens
    usage.audio_input_tokens = audio_input_tokens
    usage.audio_output_tokens = audio_output_tokens
    usage.invalid = False
    return usage


def invalid_usage() -> Usage:
    """The usage of a call whose provider reported a count outside any real range: no counts, marked."""
    usage = new_usage(None, None)
    usage.invalid = True
    return usage
