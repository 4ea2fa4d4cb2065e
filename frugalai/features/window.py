"""Aligned fixed-length windows over a stream of (timestamp, value) pairs.

Windows are aligned on multiples of ``window_s`` since the UNIX epoch (a 15-min window starts at
:00, :15, :30, :45), so the gateway and the training code cut the same windows. A window closes
when the first sample past its end arrives; a window with no sample (an outage) is never emitted,
so a gap is visible as a missing window, not as a fake zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

AGGREGATES = ("mean", "rate")


@dataclass(frozen=True)
class WindowStats:
    """What one closed window holds."""

    start: float
    end: float
    count: int
    mean: float
    min: float
    max: float
    #: rate of change per hour from the first to the last sample (energy Wh -> mean power W).
    rate_per_h: float

    def get(self, aggregate: str) -> float:
        """``mean`` or ``rate`` (per hour), by name."""
        return self.mean if aggregate == "mean" else self.rate_per_h


class WindowAggregator:
    """Streaming window statistics, one window at a time (river-style ``update``/``get``).

    Args:
        window_s: window length in seconds.

    >>> w = WindowAggregator(window_s=60)
    >>> w.update(0.0, 1.0) is None and w.update(30.0, 3.0) is None
    True
    >>> w.update(61.0, 5.0).mean
    2.0
    """

    def __init__(self, window_s: float = 900.0) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        self.window_s = window_s
        self._start: Optional[float] = None
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._first: Optional[tuple[float, float]] = None
        self._last: Optional[tuple[float, float]] = None

    def update(self, ts: float, value: float) -> Optional[WindowStats]:
        """Add one sample; return the window it closed, if any. NaN samples are ignored."""
        closed = None
        start = math.floor(ts / self.window_s) * self.window_s
        if self._start is not None and start != self._start:
            if start < self._start:
                return None  # a sample from the past (clock jump): ignored, not merged
            closed = self.get()
            self._reset()
        self._start = start
        if value != value:  # NaN
            return closed
        self._n += 1
        self._sum += value
        self._min = min(self._min, value)
        self._max = max(self._max, value)
        if self._first is None:
            self._first = (ts, value)
        self._last = (ts, value)
        return closed

    def get(self) -> Optional[WindowStats]:
        """The statistics of the window in progress (None when it is empty)."""
        if self._start is None or self._n == 0:
            return None
        assert self._first is not None and self._last is not None
        dt = self._last[0] - self._first[0]
        rate = (self._last[1] - self._first[1]) * 3600.0 / dt if dt > 0 else math.nan
        return WindowStats(self._start, self._start + self.window_s, self._n,
                           self._sum / self._n, self._min, self._max, rate)

    def __repr__(self) -> str:
        return f"WindowAggregator(window_s={self.window_s})"
