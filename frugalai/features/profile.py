"""A learned daily profile and the robust z-score of a window against it.

For each slot of the day (15 min by default), separately for weekdays and weekends, the profile
keeps the last ``history`` values seen in that slot and scores a new value by its distance to
their median in units of their MAD (scaled to a standard deviation). It learns online, so a
gateway needs no training step: it scores once each slot has ``min_history`` values. It can also
be fitted at once from a recorded series (``learn_many``).

Memory: 2 day types x 96 slots x ``history`` floats (8 -> 12 KB as Python floats).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Optional

from frugalai.features.slots import MAD_TO_SIGMA, SlotHistory


class DailyProfile:
    """Robust per-slot daily profile (river-style estimator).

    Args:
        slot_s: slot length in seconds (must divide a day).
        history: values kept per slot (a sliding memory of that many days of that type).
        min_history: values a slot needs before it scores.
        floor: absolute floor of the spread (same unit as the values), so a slot whose history
            happens to be constant does not turn tiny deviations into huge scores.
        floor_rel: relative floor of the spread, as a fraction of the slot median.
        tz_offset_h: local time offset, so slots follow the household's day, not UTC's.
    """

    def __init__(
        self,
        slot_s: int = 900,
        history: int = 8,
        min_history: int = 3,
        floor: float = 50.0,
        floor_rel: float = 0.15,
        tz_offset_h: float = 1.0,
    ) -> None:
        self._history = SlotHistory(slot_s, history, min_history, tz_offset_h)
        self.slot_s = slot_s
        self.history = history
        self.min_history = min_history
        self.floor = floor
        self.floor_rel = floor_rel
        self.tz_offset_h = tz_offset_h

    def learn_one(self, ts: float, value: float) -> None:
        """Remember ``value`` for the slot of ``ts``. NaN is ignored."""
        if value != value:
            return
        self._history.add(self._history.key(ts), value)

    def learn_many(self, pairs: Iterable[tuple[float, float]]) -> DailyProfile:
        for ts, value in pairs:
            self.learn_one(ts, value)
        return self

    def expected(self, ts: float) -> Optional[tuple[float, float]]:
        """(median, spread) for the slot of ``ts``, or None while it is still learning."""
        stats = self._history.median_mad(self._history.key(ts))
        if stats is None:
            return None
        median, mad = stats
        spread = max(MAD_TO_SIGMA * mad, self.floor, self.floor_rel * abs(median))
        return median, spread

    def score_one(self, ts: float, value: float) -> Optional[float]:
        """Robust z-score (absolute) of ``value`` at ``ts``; None while the slot is learning."""
        expected = self.expected(ts)
        if expected is None or value != value:
            return None
        median, spread = expected
        return abs(value - median) / spread

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for saving the learned state in the state dir."""
        return {
            "params": {"slot_s": self.slot_s, "history": self.history,
                       "min_history": self.min_history, "floor": self.floor,
                       "floor_rel": self.floor_rel, "tz_offset_h": self.tz_offset_h},
            "slots": {f"{k[0]}:{k[1]}": list(v) for k, v in self._history.slots.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DailyProfile:
        profile = cls(**data["params"])
        for key, values in data["slots"].items():
            weekend, slot = (int(x) for x in key.split(":"))
            profile._history.slots[(weekend, slot)] = deque(
                (float(v) for v in values), maxlen=profile.history)
        return profile

    def __repr__(self) -> str:
        return (f"DailyProfile(slot_s={self.slot_s}, history={self.history}, "
                f"min_history={self.min_history}, floor={self.floor}, "
                f"floor_rel={self.floor_rel}, tz_offset_h={self.tz_offset_h})")

