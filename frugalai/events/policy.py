"""Event policies: turn a stream of scores into a few Events (pure).

A policy sees every score and emits an Event only on a change worth telling upstream. Silence
means "nothing new", which is why a heartbeat policy exists beside them.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

from frugalai.events.event import Stats


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


class Debounce:
    """Report a new class only after ``n`` consecutive windows agree on it (classifier flows).

    >>> d = Debounce(n=2)
    >>> [d.update_one(c) for c in (0, 0, 3, 0, 3, 3, 3)]
    [None, 0, None, None, None, 3, None]
    """

    def __init__(self, n: int = 2) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.current: Optional[int] = None
        self._candidate: Optional[int] = None
        self._streak = 0

    def update_one(self, label: int) -> Optional[int]:
        """Feed one class index; return it when it becomes the reported class, else None."""
        if label == self.current:
            self._candidate, self._streak = None, 0
            return None
        if label == self._candidate:
            self._streak += 1
        else:
            self._candidate, self._streak = label, 1
        if self._streak < self.n:
            return None
        self.current, self._candidate, self._streak = label, None, 0
        return label

    def __repr__(self) -> str:
        return f"Debounce(n={self.n})"


class RateLimit:
    """Token bucket per sensor: at most ``burst`` events at once, refilled at ``per_hour``.

    A flapping sensor must not eat the uplink budget (a LoRaWAN device has ~30 s of airtime
    a day). Suppression is never silent and never loses the *state*: a suppressed event is
    counted in ``suppressed``, and the latest suppressed state (alarm/clear, class) is held and
    released by :meth:`poll` once a token is back, unless it equals the last state sent, so
    the receiver always ends up with the true current state. Kinds in ``exempt`` (summaries,
    heartbeats: periodic by construction) always pass.

    Time is the caller's (event ``ts``), so this stays pure and testable.

    >>> r = RateLimit(per_hour=1, burst=1)
    >>> r.allow("a", "alarm", 0.0), r.allow("a", "clear", 10.0), r.allow("a", "alarm", 20.0)
    (True, False, False)
    >>> r.suppressed, r.poll(30.0), r.poll(3600.0)
    (2, [], [])
    """

    def __init__(self, per_hour: float = 6.0, burst: int = 3,
                 exempt: tuple[str, ...] = ("summary", "heartbeat")) -> None:
        if per_hour <= 0:
            raise ValueError(f"per_hour must be > 0, got {per_hour}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.per_hour = per_hour
        self.burst = burst
        self.exempt = exempt
        self.suppressed = 0
        self._tokens: dict[str, tuple[float, float]] = {}  # sensor -> (tokens, at)
        self._held: dict[str, tuple[str, object]] = {}
        self._last_sent: dict[str, tuple[str, object]] = {}

    def _take(self, sensor: str, now: float) -> bool:
        tokens, at = self._tokens.get(sensor, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.per_hour / 3600.0)
        ok = tokens >= 1.0
        self._tokens[sensor] = (tokens - 1.0 if ok else tokens, now)
        return ok

    def allow(self, sensor: str, kind: str, now: float, state: object = None) -> bool:
        """May this event go? ``state`` distinguishes states of one kind (a class index)."""
        if kind in self.exempt:
            return True
        if self._take(sensor, now):
            self._held.pop(sensor, None)
            self._last_sent[sensor] = (kind, state)
            return True
        self.suppressed += 1
        self._held[sensor] = (kind, state)
        return False

    def poll(self, now: float) -> list[tuple[str, str, object]]:
        """Held states whose token came back: (sensor, kind, state) to emit now."""
        out: list[tuple[str, str, object]] = []
        for sensor, held in list(self._held.items()):
            if held == self._last_sent.get(sensor):
                del self._held[sensor]  # the state upstream already knows: nothing to say
                continue
            if self._take(sensor, now):
                del self._held[sensor]
                kind, state = held
                self._last_sent[sensor] = (kind, state)
                out.append((sensor, kind, state))
        return out

    def __repr__(self) -> str:
        return f"RateLimit(per_hour={self.per_hour}, burst={self.burst}, exempt={self.exempt})"


class SummaryAccumulator:
    """Counts and min/mean/max of one flow over one period, for the periodic ``summary`` event.

    ``take`` returns the period's :class:`~frugalai.events.event.Stats` and starts a new period.

    >>> acc = SummaryAccumulator(start=0.0)
    >>> for v, s in ((2.0, 0.5), (4.0, 1.5)): acc.window_one(v, s)
    >>> acc.reading_one(); acc.event_one()
    >>> st = acc.take(now=900.0)
    >>> (st.period_s, st.readings, st.windows, st.events, st.min, st.mean, st.max, st.max_score)
    (900, 1, 2, 1, 2.0, 3.0, 4.0, 1.5)
    """

    def __init__(self, start: float) -> None:
        self.start = start
        self._reset()

    def _reset(self) -> None:
        self.readings = 0
        self.windows = 0
        self.events = 0
        self.errors = 0
        self.implausible = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._max_score = -math.inf

    def reading_one(self) -> None:
        self.readings += 1

    def error_one(self, n: int = 1) -> None:
        self.errors += n

    def implausible_one(self, n: int = 1) -> None:
        self.implausible += n

    def event_one(self) -> None:
        self.events += 1

    def window_one(self, value: float, score: Optional[float]) -> None:
        """A closed window's key value and its score (None while the model learns)."""
        if math.isnan(value):
            return
        self.windows += 1
        self._sum += value
        self._min = min(self._min, value)
        self._max = max(self._max, value)
        if score is not None and not math.isnan(score):
            self._max_score = max(self._max_score, score)

    def take(self, now: float, dropped: int = 0, lost: int = 0) -> Stats:
        """The period ending at ``now``; the accumulator restarts at ``now``."""
        n = self.windows
        stats = Stats(
            period_s=round(max(0.0, now - self.start)), readings=self.readings,
            windows=n, events=self.events, errors=self.errors, dropped=dropped,
            implausible=self.implausible, lost=lost,
            min=self._min if n else math.nan, mean=self._sum / n if n else math.nan,
            max=self._max if n else math.nan,
            max_score=self._max_score if self._max_score > -math.inf else math.nan,
        )
        self.start = now
        self._reset()
        return stats

    def __repr__(self) -> str:
        return f"SummaryAccumulator(start={self.start})"


#: the Stats fields that count (they add up when two periods merge)
COUNTS = ("period_s", "readings", "windows", "events", "errors", "dropped", "implausible", "lost")


def merge_stats(older: Stats, newer: Stats) -> Stats:
    """One summary for two periods: counts add up, min/max/max_score combine, means weigh by
    windows. Used when the outbox drops a summary: its counts move into the next one, so
    what upstream receives always adds up to the totals (a counter is never the thing dropped).

    >>> a = Stats(period_s=900, readings=10, windows=1, dropped=5, min=1.0, mean=1.0, max=1.0)
    >>> b = Stats(period_s=900, readings=20, windows=3, dropped=7, min=2.0, mean=3.0, max=4.0)
    >>> m = merge_stats(a, b)
    >>> (m.period_s, m.readings, m.windows, m.dropped, m.min, m.mean, m.max)
    (1800, 30, 4, 12, 1.0, 2.5, 4.0)
    """
    counts = {name: getattr(older, name) + getattr(newer, name) for name in COUNTS}

    def pick(highest: bool, x: float, y: float) -> float:
        both = [v for v in (x, y) if not math.isnan(v)]
        if not both:
            return math.nan
        return max(both) if highest else min(both)

    n = older.windows + newer.windows
    means = [(s.mean, s.windows) for s in (older, newer) if s.windows and not math.isnan(s.mean)]
    weight = sum(w for _, w in means)
    mean = sum(m * w for m, w in means) / weight if weight else (
        newer.mean if not math.isnan(newer.mean) else older.mean)
    return replace(newer, **counts, min=pick(False, older.min, newer.min),
                   max=pick(True, older.max, newer.max), mean=mean if n else newer.mean,
                   max_score=pick(True, older.max_score, newer.max_score))
