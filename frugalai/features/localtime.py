"""Zones and local clock times, the one way every reader of a user's file uses them (the CSV
reader of train/evaluate/score and the ``replay://`` source).

A zone is a fixed offset (``-05:00``, ``UTC``) or an IANA name (``Europe/Paris``), and a name
keeps its daylight-saving rules: a summer time is read at the summer offset. Two local times
have no single answer. In the autumn the hour before the change happens twice: its first
occurrence in the file is the summer one, a repeat of the same clock time the winter one (a
logger writes in time order). In the spring the skipped hour does not exist: such a time is
read with the offset before the change and counted, so the reader can say so. Pure: no I/O.

>>> z = parse_zone("Europe/Paris")
>>> loc = Localiser(z)
>>> from datetime import datetime
>>> [loc(datetime(2024, 10, 27, 2, 30)).utcoffset().seconds // 3600 for _ in range(2)]
[2, 1]
>>> loc(datetime(2024, 3, 31, 2, 30)).utcoffset().seconds // 3600, loc.gap
(1, 1)
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Optional

_OFFSET = re.compile(r"^(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def parse_zone(text: Optional[str]) -> tzinfo:
    """``+01:00``, ``-05:00``, ``-5``, ``UTC``, ``Z`` or an IANA name; a card's longer
    spelling (``UTC-05:00 (local standard time, ...)``) reads as its first word. ValueError
    naming the accepted forms otherwise."""
    if text is not None and " (" in text:
        text = text.split(" (", 1)[0]
    if text is not None and text[:1] == " " and text.strip()[:1].isdigit():
        text = "+" + text.strip()  # "+01:00" in a URL query arrives as " 01:00"
    if text is None or text.strip().upper() in ("", "UTC", "Z", "GMT"):
        return timezone.utc
    m = _OFFSET.match(text.strip())
    if m:
        h, mins = int(m.group(2)), int(m.group(3) or 0)
        if h > 14 or mins >= 60:
            raise ValueError(f"time zone offset {text!r} out of range (use ±HH:MM)")
        sign = -1 if m.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=h, minutes=mins))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(text.strip())
    except Exception:
        raise ValueError(f"unknown time zone {text!r} (use ±HH:MM or a name like "
                         f"Europe/Paris)") from None


def is_named(tz: tzinfo) -> bool:
    """True for an IANA zone (its offset changes with daylight saving)."""
    return hasattr(tz, "key")


def zone_label(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz.tzname(None) or tz)


class Localiser:
    """Naive local datetimes -> aware ones in ``tz``, deciding DST's two ambiguous cases as
    the module says and counting them (``repeat``, ``gap``)."""

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self.named = is_named(tz)
        self.gap = 0
        self.repeat = 0
        self._seen: set[datetime] = set()

    def __call__(self, dt: datetime) -> datetime:
        a = dt.replace(tzinfo=self.tz)
        if not self.named:
            return a
        b = dt.replace(tzinfo=self.tz, fold=1)
        if a.utcoffset() == b.utcoffset():
            return a
        back = a.astimezone(timezone.utc).astimezone(self.tz).replace(tzinfo=None)
        if back != dt:
            self.gap += 1
            return a
        if dt in self._seen:
            self.repeat += 1
            return b
        self._seen.add(dt)
        return a


def card_zone(card: dict[str, Any]) -> Optional[tuple[str, str]]:
    """(zone text, where in the card) of the zone a bundle's training data were read in: what
    ``evaluate``, ``score`` and a flow's ``replay://`` source read naive times in by default.
    None when the card does not say: an anomaly card's ``UTC+1``-style ``flow_defaults`` zone
    and its ``tz_offset_h`` are the day slots' offset, not the zone its data were read in."""
    data = card.get("data") or {}
    flow = card.get("flow_defaults") or {}
    if data.get("time_zone"):
        return str(data["time_zone"]), "card data.time_zone"
    text = str(flow.get("time_zone") or "")
    if text and not re.fullmatch(r"UTC[+-]\d+(\.\d+)?", text):
        return text, "card flow_defaults.time_zone"
    return None
