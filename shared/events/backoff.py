"""Exponential backoff for reconnect loops."""
from __future__ import annotations


class Backoff:
    """Delays that double from `initial` up to `cap` seconds; `reset()` after a success."""

    def __init__(self, initial: float = 0.1, cap: float = 5.0):
        if initial <= 0 or cap < initial:
            raise ValueError("backoff wants 0 < initial <= cap")
        self.initial, self.cap = initial, cap
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.initial
