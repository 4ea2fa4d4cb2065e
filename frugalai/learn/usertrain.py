"""The user's side of ``train anomaly`` and ``train coastal``: their CSV read with the shared
options (:mod:`frugalai.learn.userdata`), the period and split they asked for, the feature
parameters their options imply, and the warnings they must see.

Kept out of the CLI so the command only parses and calls, and so the same decisions (which
zone, which day types, which split) are testable without a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from frugalai.features.localtime import is_named
from frugalai.features.slots import DAY_TYPES
from frugalai.learn.csvio import DataError, parse_when, tz_label
from frugalai.learn.data import Series, grid_from_points, windows_from_points
from frugalai.learn.userdata import DataOptions, Resolved, read, resolve


@dataclass
class Prepared:
    """A series ready to train on, and what the command must record and say."""

    series: Series
    resolved: Resolved
    info: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _cut(series: Series, start: Optional[float], end: Optional[float], what: str) -> Series:
    keep = ((series.ts >= (-np.inf if start is None else start))
            & (series.ts < (np.inf if end is None else end)))
    if keep.sum() < 2:
        raise DataError(f"{series.source}: fewer than 2 {what} between --start and --end")
    return Series(series.ts[keep], series.values[keep], None, series.source)


def day_types_of(choice: Optional[str], quantity: str) -> tuple[int, str]:
    """Profiles per slot and where that came from: ``--day-types``, else the quantity's
    historical default (weekday/weekend for power, one for anything else)."""
    if choice is not None:
        return DAY_TYPES[choice], "--day-types"
    return (2 if quantity == "power" else 1), f"default for --quantity {quantity}"


def prepare_anomaly(data: Union[str, Path], opts: DataOptions, *, quantity: str = "power",
                    day_types: Optional[str] = None, window_s: Optional[int] = None,
                    aggregate: str = "mean", tz_offset_h: Optional[float] = None,
                    file_info: Optional[dict[str, Any]] = None) -> Prepared:
    """The windows to train an anomaly model on, and its slot parameters. A named zone makes
    slots and day types follow its DST; an offset is fixed all year; no zone at all keeps the
    old default (slots at UTC+1) and says so."""
    res = resolve(opts)
    win = window_s or (900 if quantity == "power" else 3600)
    if 86400 % win:
        raise DataError(f"--window {win} s does not divide a day")
    pts, res = read(data, res)
    series = windows_from_points(pts, win, aggregate, Path(data).name)
    series = _cut(series, res.start, res.end, "windows")
    warnings = list(res.warnings)
    zone_given = opts.tz is not None
    params: dict[str, Any] = {"slot_s": win}
    if tz_offset_h is not None:
        params["tz_offset_h"] = tz_offset_h
        res.origins["slots_zone"] = "--tz-offset"
    elif zone_given:
        delta = res.zone.utcoffset(datetime(2001, 1, 15))
        params["tz_offset_h"] = delta.total_seconds() / 3600 if delta is not None else 0.0
        res.origins["slots_zone"] = "--tz"
        if is_named(res.zone):
            params["time_zone"] = tz_label(res.zone)
    else:
        params["tz_offset_h"] = 1.0
        res.origins["slots_zone"] = "default (UTC+1)"
        warnings.append("no --tz: day slots follow UTC+1 all year (give --tz Europe/Paris or "
                        "an offset for the site's own day)")
    n_types, origin = day_types_of(day_types, quantity)
    params["day_types"] = n_types
    res.origins["day_types"] = origin
    info = {**(file_info or {"file": Path(data).name}), "time_col": pts.time_col,
            "value_col": pts.value_col, "time_zone": tz_label(res.zone),
            "provenance": res.provenance()}
    if opts.start:
        info["start"] = opts.start
    if opts.end:
        info["end"] = opts.end
    return Prepared(series, res, info, params, warnings)


def _split_time(text: Optional[str], zone: tzinfo, option: str, year_end: bool
                ) -> Optional[float]:
    """A year (``1990``: the end of that local year when ``year_end``, else its start) or an
    ISO date/datetime in ``zone``."""
    if text is None:
        return None
    t = text.strip()
    if t.isdigit() and len(t) == 4:
        y = int(t) + (1 if year_end else 0)
        return datetime(y, 1, 1, tzinfo=zone).timestamp()
    return parse_when(t, zone, option)


def coastal_split(res: Resolved, train_until: Optional[str], valid_from: Optional[str],
                  valid_to: Optional[str]) -> dict[str, Any]:
    """Keyword arguments of :func:`frugalai.learn.coastal.train_coastal` for a split at any
    date: ``--train-until 2004-10-15`` (or a year, whole), the validation from there (or
    ``valid_from``) to ``valid_to`` (or the end of the record)."""
    end = _split_time(train_until, res.zone, "--train-until", year_end=True)
    a = _split_time(valid_from, res.zone, "--valid-years", year_end=False)
    b = _split_time(valid_to, res.zone, "--valid-years", year_end=True)
    if end is None and a is None:
        return {}
    out: dict[str, Any] = {"train_end_s": end if end is not None else a,
                           "train_until": None, "valid_years": None}
    if a is not None or b is not None:
        start_v = a if a is not None else out["train_end_s"]
        out["valid_s"] = (start_v, b if b is not None else float("inf"))
    return out


def prepare_coastal(data: Union[str, Path], opts: DataOptions,
                    file_info: Optional[dict[str, Any]] = None) -> Prepared:
    """The gauge's hourly levels over ``--start``..``--end``, read in the resolved zone."""
    res = resolve(opts)
    pts, res = read(data, res)
    series = grid_from_points(pts, 3600.0, Path(data).name)
    if res.start is not None or res.end is not None:
        series = _cut(series, res.start, res.end, "hours")
    info = {**(file_info or {"file": Path(data).name}), "time_col": pts.time_col,
            "level_col": pts.value_col, "time_zone": tz_label(res.zone),
            "provenance": res.provenance()}
    return Prepared(series, res, info, {}, list(res.warnings))


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
