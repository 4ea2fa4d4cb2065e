"""A simulated clock that runs ``speed`` times faster than the real one.

The demo and the tests compress days into seconds; the emulator and the pipeline share one
SimClock so that a Reading's timestamp is the simulated instant its frame was sent.
"""

from __future__ import annotations

import time


class SimClock:
    """``now()`` = ``start + (monotonic elapsed) * speed``."""

    def __init__(self, start: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.start = start
        self.speed = speed
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._t0) * self.speed

    def real_delay(self, sim_seconds: float) -> float:
        """Real seconds that ``sim_seconds`` of simulated time take."""
        return sim_seconds / self.speed

    def real_time_of(self, sim_ts: float) -> float:
        """The ``time.monotonic()`` instant at which the clock reads ``sim_ts``."""
        return self._t0 + (sim_ts - self.start) / self.speed

    def __repr__(self) -> str:
        return f"SimClock(start={self.start}, speed={self.speed})"
