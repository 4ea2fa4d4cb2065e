"""Streaming features of the energy-anomaly model: robust residuals against the meter's own habits.

Why residuals and not raw power: one model ships for every meter (a 300 W flat, a 1.2 MW
research facility). Each 15-min window value is turned into a robust z-score against the same
slot of the day on the last ``history`` days of the same type (weekday / weekend), with a spread
floored relative to the slot's median and to the meter's daily level. The model input is the last
``window`` such residuals: scale-free, so a model trained on one meter scores another.

The same object runs at training time (over a recorded series, ``transform_many``) and on the
gateway (one window at a time, ``update_one``). Values whose residual is already extreme are not
learned (``learn_below``), so an anomaly does not become the new normal.

Memory: 2 day types x 96 slots x ``history`` floats + ``window`` floats.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from frugalai.features.slots import MAD_TO_SIGMA, SlotHistory

FloatArray = npt.NDArray[np.float64]


class EnergyFeatures:
    """Robust per-slot residuals of a power series, as a sliding feature vector.

    Args:
        slot_s: slot (window) length in seconds; must divide a day.
        history: values kept per (day type, slot).
        min_history: values a slot needs before its residual is defined.
        window: residuals per feature vector (consecutive slots).
        floor_rel: spread floor as a fraction of the slot median.
        floor_level: spread floor as a fraction of the meter's mean level for that day type
            (so a quiet night slot does not turn a few watts into a huge score).
        clip: residuals are clipped to [-clip, clip] (int8-friendly input range).
        learn_below: a value whose |residual| reaches this is not learned.
        tz_offset_h: local time offset, so slots follow the site's day.
        max_gap: missing windows bridged before the sliding vector restarts.
        floor_abs: spread floor in the value's own unit (non-power series: the relative floors,
            made for power, are 0 and this one keeps a flat slot from scoring noise).
        day_types: 2 (weekday / weekend profiles, a household or an office), 1 (one profile,
            a machine or a temperature that ignores the calendar) or 7 (one per ISO weekday).
        time_zone: IANA zone name: slots and day types follow its daylight-saving rules
            (``tz_offset_h`` then unused). None: the fixed ``tz_offset_h``.

    >>> f = EnergyFeatures(slot_s=43200, history=3, min_history=2, window=1)
    >>> monday = 4 * 86400.0  # 1970-01-05 (a weekend day would be another day type)
    >>> [f.update_one(monday + k * 43200.0, 100.0) for k in range(4)]
    [None, None, None, None]
    >>> f.update_one(monday + 4 * 43200.0, 100.0).tolist()
    [0.0]
    """

    def __init__(
        self,
        slot_s: int = 900,
        history: int = 8,
        min_history: int = 3,
        window: int = 4,
        floor_rel: float = 0.10,
        floor_level: float = 0.05,
        clip: float = 12.0,
        learn_below: float = 5.0,
        tz_offset_h: float = 1.0,
        max_gap: int = 2,
        floor_abs: float = 0.0,
        day_types: int = 2,
        time_zone: Optional[str] = None,
    ) -> None:
        if not 1 <= min_history <= history:
            raise ValueError(f"min_history must be in 1..history, got {min_history}")
        self.slot_s = slot_s
        self.history = history
        self.min_history = min_history
        self.window = window
        self.floor_rel = floor_rel
        self.floor_level = floor_level
        self.clip = clip
        self.learn_below = learn_below
        self.tz_offset_h = tz_offset_h
        self.max_gap = max_gap
        self.floor_abs = floor_abs
        self.day_types = day_types
        self.time_zone = time_zone
        self._history = SlotHistory(slot_s, history, min_history, tz_offset_h, day_types,
                                    time_zone)
        self._level: dict[int, float] = {}
        self._recent: deque[float] = deque(maxlen=window)
        self._last_slot: Optional[int] = None

    def params(self) -> dict[str, Any]:
        """Constructor arguments (what a model card stores; ``time_zone`` only when set, so
        cards written before it read the same)."""
        out: dict[str, Any] = {
            "slot_s": self.slot_s, "history": self.history, "min_history": self.min_history,
            "window": self.window, "floor_rel": self.floor_rel,
            "floor_level": self.floor_level, "clip": self.clip,
            "learn_below": self.learn_below, "tz_offset_h": self.tz_offset_h,
            "max_gap": self.max_gap, "floor_abs": self.floor_abs,
            "day_types": self.day_types}
        if self.time_zone is not None:
            out["time_zone"] = self.time_zone
        return out

    def residual(self, ts: float, value: float) -> Optional[float]:
        """Robust z-score of ``value`` in the slot of ``ts`` (None while the slot learns)."""
        return self._residual(self._history.key(ts), value)

    def _residual(self, key: tuple[int, int], value: float) -> Optional[float]:
        stats = self._history.median_mad(key)
        if stats is None or value != value:
            return None
        median, mad = stats
        level = self._level.get(key[0], abs(median))
        spread = max(MAD_TO_SIGMA * mad, self.floor_rel * abs(median),
                     self.floor_level * level, self.floor_abs, 1e-9)
        z = (value - median) / spread
        return max(-self.clip, min(self.clip, z))

    def expected(self, ts: float) -> Optional[float]:
        """The learned profile's value for the slot of ``ts`` (its median; None while the slot
        learns): what an alarmed window is compared with to price the anomaly."""
        return self._history.median(self._history.key(ts))

    def learn_one(self, ts: float, value: float) -> None:
        """Remember ``value`` for its slot and update the day-type level. NaN is ignored."""
        if value != value:
            return
        self._learn(self._history.key(ts), value)

    def _learn(self, key: tuple[int, int], value: float) -> None:
        if value != value:
            return
        self._history.add(key, value)
        # Mean level of this day type over about ``history`` days (exponential average).
        alpha = 1.0 / (self.history * 86400 / self.slot_s)
        old = self._level.get(key[0])
        self._level[key[0]] = float(value) if old is None else old + alpha * (value - old)

    def update_one(self, ts: float, value: float) -> Optional[FloatArray]:
        """Feed the value of the window starting at ``ts``; return the feature vector or None.

        A gap of more than ``max_gap`` missing windows restarts the sliding vector, so the model
        never sees residuals hours apart as if they were consecutive; a shorter gap (a stalled
        link, a window without readings) is bridged.
        """
        index = math.floor(ts / self.slot_s)
        if self._last_slot is not None and not 0 < index - self._last_slot <= self.max_gap + 1:
            self._recent.clear()
        self._last_slot = index
        key = self._history.key(ts)  # once for both: the day of week costs more than the model
        z = self._residual(key, value)
        if z is None or abs(z) < self.learn_below:
            self._learn(key, value)
        if z is None:
            self._recent.clear()
            return None
        self._recent.append(z)
        if len(self._recent) < self.window:
            return None
        # fromiter with the count: the same float64 row, without np.array's look at a deque
        return np.fromiter(self._recent, np.float64, self.window)

    def state(self) -> dict[str, Any]:
        """The learned profile as plain data (a bundle ships it so a flow starts warm)."""
        return {"slots": {f"{k[0]}:{k[1]}": list(v) for k, v in sorted(self._history.slots.items())},
                "level": {str(k): v for k, v in self._level.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        """Start from a learned profile (see :meth:`state`); the sliding vector stays empty."""
        self._history.slots.clear()
        for key, values in state.get("slots", {}).items():
            a, b = (int(x) for x in key.split(":"))
            self._history.slots[(a, b)] = deque((float(v) for v in values), maxlen=self.history)
        self._level = {int(k): float(v) for k, v in state.get("level", {}).items()}

    def transform_many(self, ts: Iterable[float], values: Iterable[float]
                       ) -> tuple[FloatArray, FloatArray]:
        """Run ``update_one`` over a series; return (window start times, feature rows)."""
        times: list[float] = []
        rows: list[FloatArray] = []
        for t, v in zip(ts, values):
            row = self.update_one(float(t), float(v))
            if row is not None:
                times.append(float(t))
                rows.append(row)
        out = np.array(rows, dtype=np.float64).reshape(-1, self.window)
        return np.array(times, dtype=np.float64), out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"EnergyFeatures({args})"

