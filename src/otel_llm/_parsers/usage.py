"""Token usage as the providers report it, normalised to one shape."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Usage"]


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
