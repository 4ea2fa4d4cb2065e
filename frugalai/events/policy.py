"""Event policies: turn a stream of scores into a few Events (pure).

A policy sees every score and emits an Event only on a change worth telling upstream. Silence
means "nothing new", which is why a heartbeat policy exists beside them.
"""

from __future__ import annotations

from typing import Optional


class Hysteresis:
    """Threshold with hysteresis: alarm when ``score >= on``, clear when ``score <= off``.

    With ``debounce`` N, the alarm (and the clear) needs N consecutive scores past its threshold,
    so one noisy window does not page anybody.

    >>> h = Hysteresis(on=4.0, off=2.0)
    >>> [h.update_one(s) for s in (1.0, 5.0, 3.0, 1.5, 0.5)]
    [None, 'alarm', None, 'clear', None]
    """

    def __init__(self, on: float = 4.0, off: float = 2.0, debounce: int = 1) -> None:
        if off > on:
            raise ValueError(f"off ({off}) must be <= on ({on})")
        if debounce < 1:
            raise ValueError(f"debounce must be >= 1, got {debounce}")
        self.on = on
        self.off = off
        self.debounce = debounce
        self.active = False
        self._streak = 0

    def update_one(self, score: float) -> Optional[str]:
        """Feed one score; return ``"alarm"``, ``"clear"`` or None."""
        crossing = score <= self.off if self.active else score >= self.on
        self._streak = self._streak + 1 if crossing else 0
        if self._streak < self.debounce:
            return None
        self._streak = 0
        self.active = not self.active
        return "alarm" if self.active else "clear"

    def __repr__(self) -> str:
        return f"Hysteresis(on={self.on}, off={self.off}, debounce={self.debounce})"
