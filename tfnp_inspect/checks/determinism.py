"""The determinism memory of a ``stateful=False`` function: same input contents, same outputs."""

from __future__ import annotations

from typing import Any


class DeterminismMemory:
    """Bounded map from input contents to output contents for one stateless function."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int = 512) -> None:
        self._seen: dict[Any, tuple[Any, int]] = {}
        self._limit = limit

    def observe(self, input_key: Any, output_key: Any, seq: int) -> int | None:
        """Remember this pair; return the seq of an earlier call that disagreed, if any."""
        previous = self._seen.get(input_key)
        if previous is None:
            if len(self._seen) >= self._limit:
                try:
                    del self._seen[next(iter(self._seen))]
                except (StopIteration, KeyError, RuntimeError):  # raced with another thread
                    pass
            self._seen[input_key] = (output_key, seq)
            return None
        if previous[0] != output_key:
            return previous[1]
        return None
