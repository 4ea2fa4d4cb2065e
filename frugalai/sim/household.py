"""A household electricity profile with injected anomalies, seeded (pure, no I/O).

The shape follows a French all-electric-ish home: a standby floor (fridge, boxes), a morning
peak, a midday dip, a strong evening peak, and weekends shifted later and fuller. Noise is
multiplicative so the quiet night stays quiet. Anomalies are added on top, at known times, so
tests and the demo can check that they are found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

#: (hour, watts) anchor points of a weekday and a weekend day, interpolated linearly.
WEEKDAY = ((0, 280), (5, 260), (6.5, 900), (8, 1300), (9, 450), (12, 600), (13.5, 450),
           (17, 500), (19, 2200), (21, 1800), (23, 600), (24, 280))
WEEKEND = ((0, 300), (7, 280), (9, 1100), (12, 1600), (14, 900), (17, 800), (19.5, 2300),
           (22, 1500), (24, 300))


@dataclass(frozen=True)
class Anomaly:
    """An anomaly window: ``kind`` in night_load | spike | dropout | flatline."""

    start: float  # UNIX seconds
    duration_s: float
    kind: str
    watts: float = 0.0

    def covers(self, ts: float) -> bool:
        return self.start <= ts < self.start + self.duration_s


def _interp(anchors: Sequence[tuple[float, float]], hour: float) -> float:
    hours = [a[0] for a in anchors]
    watts = [a[1] for a in anchors]
    return float(np.interp(hour, hours, watts))


class HouseholdProfile:
    """Power (W) at any instant: profile x noise + anomalies.

    Args:
        seed: seeds the noise and the appliance switch-ons.
        scale: multiplies the whole profile (a bigger or smaller home).
        anomalies: windows to inject.
        tz_offset_h: local time offset used for the daily shape (Europe/Paris winter = 1).
    """

    def __init__(
        self,
        seed: int = 0,
        scale: float = 1.0,
        anomalies: Sequence[Anomaly] = (),
        tz_offset_h: float = 1.0,
        noise: float = 0.08,
    ) -> None:
        self.seed = seed
        self.scale = scale
        self.anomalies = tuple(anomalies)
        self.tz_offset_h = tz_offset_h
        self.noise = noise
        self._flat_value: dict[Anomaly, float] = {}

    def expected(self, ts: float) -> float:
        """The noiseless profile at ``ts`` (what a perfectly learned model would predict)."""
        local = ts + self.tz_offset_h * 3600
        day = datetime.fromtimestamp(local, tz=timezone.utc)
        hour = day.hour + day.minute / 60 + day.second / 3600
        anchors = WEEKEND if day.weekday() >= 5 else WEEKDAY
        return self.scale * _interp(anchors, hour)

    def power(self, ts: float) -> float:
        """Power in W at ``ts``: deterministic for a given (seed, ts)."""
        # A per-minute noise draw keyed by the seed and the minute, so any two callers asking for
        # the same instant agree, whatever order they ask in.
        minute = int(ts // 60)
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, minute & 0xFFFFFFFF])
        base = self.expected(ts)
        watts = base * math.exp(rng.normal(0.0, self.noise))
        if rng.random() < 0.02:  # a kettle or an oven switched on for this minute
            watts += 1800.0 * self.scale
        for anomaly in self.anomalies:
            if not anomaly.covers(ts):
                continue
            if anomaly.kind == "dropout":
                watts = 0.0
            elif anomaly.kind == "flatline":
                watts = self._flat_value.setdefault(anomaly, base)
            else:  # night_load, spike: extra consumption
                watts += anomaly.watts
        return max(0.0, watts)

    def series(self, start: float, step_s: float, count: int) -> np.ndarray:
        """Mean power over ``count`` consecutive steps (one sample per minute, averaged)."""
        out = np.empty(count)
        per = max(1, int(step_s // 60))
        for i in range(count):
            t0 = start + i * step_s
            out[i] = sum(self.power(t0 + k * 60) for k in range(per)) / per
        return out


def demo_anomalies(start: float) -> tuple[Anomaly, ...]:
    """The anomalies the demo injects, relative to a Monday-midnight ``start``."""
    h = 3600.0
    return (
        Anomaly(start + 1.5 * h, 3 * h, "night_load", 2000.0),
        Anomaly(start + 14 * h, 1 * h, "spike", 6000.0),
        Anomaly(start + 26 * h, 4 * h, "dropout"),
        Anomaly(start + 40 * h, 2 * h, "night_load", 1500.0),
    )
