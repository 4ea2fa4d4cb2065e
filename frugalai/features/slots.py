"""Per-slot history of a daily series and its robust centre and spread (median, MAD).

Shared by the online daily profile (:class:`~frugalai.features.profile.DailyProfile`, the
default model) and the energy-anomaly features
(:class:`~frugalai.features.energy.EnergyFeatures`): both keep, for each slot of the day and
each day type (weekday / weekend), the last ``history`` values, and both need that slot's median
and median absolute deviation. Written once so the two always agree to the bit.

>>> h = SlotHistory(slot_s=43200, history=3, min_history=2, tz_offset_h=0.0)
>>> key = h.key(0.0)
>>> key
(0, 0)
>>> for v in (10.0, 14.0, 11.0):
...     h.add(key, v)
>>> h.median_mad(key)
(11.0, 1.0)
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, tzinfo
from typing import Optional

#: MAD x this estimates the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826

Key = tuple[int, int]
#: ``--day-types`` choices -> profiles kept per slot of the day.
DAY_TYPES = {"single": 1, "weekday-weekend": 2, "iso-week": 7}


class SlotHistory:
    """The last ``history`` values of each (day type, slot of the day).

    Args:
        slot_s: slot length in seconds (must divide a day).
        history: values kept per slot.
        min_history: values a slot needs before :meth:`median_mad` answers.
        tz_offset_h: local time offset, so slots follow the site's day, not UTC's.
        day_types: 2 (weekday and weekend slots apart), 1 (every day alike: a machine, a
            temperature that ignores the calendar) or 7 (each day of the ISO week apart).
        time_zone: an IANA zone name (``Europe/Paris``): the local offset then follows its
            daylight-saving rules, and ``tz_offset_h`` is not used. None: the fixed offset.
    """

    def __init__(self, slot_s: int, history: int, min_history: int, tz_offset_h: float,
                 day_types: int = 2, time_zone: Optional[str] = None) -> None:
        if slot_s <= 0 or 86400 % slot_s:
            raise ValueError(f"slot_s must divide 86400, got {slot_s}")
        if day_types not in DAY_TYPES.values():
            raise ValueError(f"day_types must be 1, 2 or 7, got {day_types}")
        self.time_zone = time_zone
        self._zone = _zone(time_zone)
        self._offsets: dict[int, float] = {}
        self.day_types = day_types
        self.slot_s = slot_s
        self.history = history
        self.min_history = min_history
        self.tz_offset_h = tz_offset_h
        self.slots: dict[Key, deque[float]] = {}

    def key(self, ts: float) -> Key:
        """(1 if weekend else 0, slot index of the local day) of the time ``ts`` (day type
        always 0 with ``day_types=1``)."""
        local = ts + (self.tz_offset_h * 3600 if self._zone is None else self._offset(ts))
        kind = (_weekend(local) if self.day_types == 2 else
                _weekday(local) if self.day_types == 7 else 0)
        return kind, int((local % 86400) // self.slot_s)

    def _offset(self, ts: float) -> float:
        """The zone's UTC offset at ``ts`` (s), cached per quarter hour (offsets change on
        quarter hours in every zone)."""
        q = math.floor(ts / 900.0)
        off = self._offsets.get(q)
        if off is None:
            if len(self._offsets) > 4096:
                self._offsets.clear()
            delta = datetime.fromtimestamp(q * 900.0, self._zone).utcoffset()
            off = self._offsets[q] = delta.total_seconds() if delta is not None else 0.0
        return off

    def add(self, key: Key, value: float) -> None:
        """Remember ``value`` in slot ``key`` (the oldest beyond ``history`` is forgotten)."""
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = deque(maxlen=self.history)
        slot.append(float(value))

    def median(self, key: Key) -> Optional[float]:
        """Median of slot ``key``; None while it has fewer than ``min_history`` values."""
        slot = self.slots.get(key)
        if slot is None or len(slot) < self.min_history:
            return None
        return _median(sorted(slot))

    def median_mad(self, key: Key) -> Optional[tuple[float, float]]:
        """(median, MAD) of slot ``key``; None while it has fewer than ``min_history`` values."""
        slot = self.slots.get(key)
        if slot is None or len(slot) < self.min_history:
            return None
        values = sorted(slot)
        median = _median(values)
        return median, _median(sorted([abs(v - median) for v in values]))


def _zone(name: Optional[str]) -> Optional[tzinfo]:
    if name is None:
        return None
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(name)
    except Exception:
        raise ValueError(f"unknown time zone {name!r}") from None


def _weekday(local: float) -> int:
    """0 (Monday) .. 6 (Sunday) of ``local``, rounded to the microsecond like
    :func:`_weekend`.

    >>> [_weekday(t) for t in (0.0, 4 * 86400.0, 2 * 86400.0 - 0.0000004)]
    [3, 0, 5]
    """
    frac, whole = math.modf(local)
    us = round(frac * 1e6)
    if us >= 1000000:
        whole += 1
    elif us < 0:
        whole -= 1
    return (int(whole) // 86400 + 3) % 7  # 1970-01-01 was a Thursday (3)


def _weekend(local: float) -> int:
    """1 on Saturday and Sunday (UTC date of ``local``), as
    ``datetime.fromtimestamp(local, timezone.utc).weekday() >= 5`` decides it -- including its
    rounding to the microsecond (a time 0.4 us before midnight is the next day) -- without
    building a datetime.

    >>> [_weekend(t) for t in (0.0, 2 * 86400.0 - 0.001, 2 * 86400.0 - 0.0000004, 4 * 86400.0)]
    [0, 0, 1, 0]
    """
    frac, whole = math.modf(local)
    us = round(frac * 1e6)
    if us >= 1000000:
        whole += 1
    elif us < 0:
        whole -= 1
    return int((int(whole) // 86400 + 3) % 7 >= 5)  # 1970-01-01 was a Thursday (3)


def _median(sorted_values: list[float]) -> float:
    n = len(sorted_values)
    mid = n // 2
    return sorted_values[mid] if n % 2 else 0.5 * (sorted_values[mid - 1] + sorted_values[mid])
