"""Aligned fixed-length windows over a stream of (timestamp, value) pairs.

Windows are aligned on multiples of ``window_s`` since the UNIX epoch (a 15-min window starts at
:00, :15, :30, :45), so the gateway and the training code cut the same windows. A window closes
when the first sample past its end arrives; a window with no sample (an outage) is never emitted,
so a gap is visible as a missing window, not as a fake zero.

Readings carry wall-clock timestamps, and a wall clock can step (NTP correcting a drifted RTC,
an operator setting the date). A step *back* of more than ``max_skew_s`` re-anchors the windows
at the new time: the window in progress, filled under the wrong clock, is discarded and the
next window starts at once, instead of every sample being ignored until the clock catches up
with the old window (a 1-hour step used to blind a flow for an hour). A jump *forward* of more
than ``max_jump_s`` is counted and logged the same way (the window in progress still closes, as
for any gap). Each step is logged once and counted in ``clock_steps``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Optional

log = logging.getLogger("frugalai.features")

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
        max_skew_s: a sample older than the last one by more than this is a clock step back
            (less: late jitter across a window boundary, ignored as before).
        max_jump_s: a sample newer than the last one by more than this is a clock jump forward.

    >>> w = WindowAggregator(window_s=60)
    >>> w.update(0.0, 1.0) is None and w.update(30.0, 3.0) is None
    True
    >>> w.update(61.0, 5.0).mean
    2.0
    """

    def __init__(self, window_s: float = 900.0, max_skew_s: float = 5.0,
                 max_jump_s: float = 366 * 86_400.0) -> None:
        if not 0 < window_s < math.inf:
            raise ValueError(f"window_s must be > 0 and finite, got {window_s}")
        self.window_s = window_s
        self.max_skew_s = max_skew_s
        self.max_jump_s = max_jump_s
        #: wall-clock steps seen (back by more than max_skew_s, forward by more than max_jump_s)
        self.clock_steps = 0
        self._start: Optional[float] = None
        self._last_ts: Optional[float] = None
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        # first and last sample of the window (valid once _n > 0): plain floats, no tuples,
        # since this runs once per reading.
        self._first_ts = self._first_v = self._last_t = self._last_v = math.nan

    def update(self, ts: float, value: float) -> Optional[WindowStats]:
        """Add one sample; return the window it closed, if any. NaN samples are ignored."""
        closed = None
        if not -math.inf < ts < math.inf:  # NaN or infinite
            return None
        start = math.floor(ts / self.window_s) * self.window_s
        last = self._last_ts
        if last is not None and ts - last > self.max_jump_s:
            self._step(ts - last)
        if start != self._start and self._start is not None:
            if start < self._start:
                if last is None or last - ts <= self.max_skew_s:
                    return None  # a late sample across a window boundary: ignored, not merged
                self._step(ts - last)  # the clock went back: start again from here
            else:
                closed = self.get()
            self._reset()
        self._start = start
        self._last_ts = ts
        if value != value:  # NaN
            return closed
        if self._n == 0:
            self._first_ts = ts
            self._first_v = value
        self._n += 1
        self._sum += value
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        self._last_t = ts
        self._last_v = value
        return closed

    def _step(self, delta: float) -> None:
        self.clock_steps += 1
        log.warning("wall clock stepped %+.0f s between two samples: windows re-anchored at the "
                    "new time (clock step %d)", delta, self.clock_steps)

    def get(self) -> Optional[WindowStats]:
        """The statistics of the window in progress (None when it is empty)."""
        if self._start is None or self._n == 0:
            return None
        dt = self._last_t - self._first_ts
        rate = (self._last_v - self._first_v) * 3600.0 / dt if dt > 0 else math.nan
        return WindowStats(self._start, self._start + self.window_s, self._n,
                           self._sum / self._n, self._min, self._max, rate)

    def __repr__(self) -> str:
        return f"WindowAggregator(window_s={self.window_s})"
