"""The per-sensor statistics file: ``<state_dir>/health/<flow>.json``, one row per UTC day.

The only I/O of :mod:`frugalai.health`: rows from :class:`~frugalai.health.stats.DayBook` are
merged into the file (a day written twice, e.g. a partial day at a stop and the rest after the
restart, is summed), the newest :data:`KEEP_DAYS` kept, written atomically. A year is a few tens
of kilobytes; raw readings are never stored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

from frugalai.errors import FrugalError
from frugalai.fileio import atomic_write
from frugalai.health.stats import Day

VERSION = 1
KEEP_DAYS = 800


class StatsError(FrugalError, ValueError):
    """A statistics file that cannot be read (what it is and why, on one line)."""


def path_for(health_dir: Union[str, Path], flow: str) -> Path:
    return Path(health_dir) / f"{flow}.json"


def load(path: Union[str, Path]) -> tuple[list[Day], dict[str, Any]]:
    """The day rows and the header of one file ([] and {} when it does not exist yet)."""
    p = Path(path)
    if not p.exists():
        return [], {}
    try:
        doc = json.loads(p.read_text())
        days = [Day.from_dict(d) for d in doc.get("days", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise StatsError(f"{p}: not a sensor statistics file ({err})") from err
    return days, {k: v for k, v in doc.items() if k != "days"}


def _merge(a: Day, b: Day) -> Day:
    n = a.readings + b.readings
    if a.mean != a.mean:
        mean = b.mean
    elif b.mean != b.mean:
        mean = a.mean
    else:
        mean = (a.mean * a.readings + b.mean * b.readings) / n if n else math.nan
    fault_s = dict(a.fault_s)
    for k, v in b.fault_s.items():
        fault_s[k] = fault_s.get(k, 0.0) + v
    onsets = dict(a.onsets)
    for k, c in b.onsets.items():
        onsets[k] = onsets.get(k, 0) + c
    return Day(a.day, n, max(a.expected, b.expected), mean,
               b.noise if b.noise == b.noise else a.noise, fault_s, onsets,
               min(a.first, b.first) if a.first == a.first else b.first,
               max(a.last, b.last) if a.last == a.last else b.last)


def append(path: Union[str, Path], days: Sequence[Day], **header: Any) -> Path:
    """Merge ``days`` into the file (created with its directory); return its path."""
    p = Path(path)
    old, head = load(p)
    by_day = {d.day: d for d in old}
    for d in days:
        by_day[d.day] = _merge(by_day[d.day], d) if d.day in by_day else d
    rows = [by_day[k] for k in sorted(by_day)][-KEEP_DAYS:]
    head.update(header)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, json.dumps({"v": VERSION, **head, "days": [d.as_dict() for d in rows]},
                               separators=(",", ":")) + "\n")
    return p
