"""Loaders for the real data sets (``../shared/data``, see its README) and for a user's CSV.

Nothing here is copied into the repository: callers pass the data directory or the file.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

import numpy as np
import numpy.typing as npt

from frugalai.features.window import WindowAggregator
from frugalai.learn.csvio import DataError as DataError  # re-exported: callers import it here
from frugalai.learn.csvio import Points, read_points, to_grid

FloatArray = npt.NDArray[np.float64]

DUTCH = "energy/dutch_power_demand_1997/power_demand_1997_labeled.csv"
NAB = "generic/nab_subset"
PROVIDENCE = "coastal/providence_8454000"
#: The Providence hourly file's time zone is not documented; probably local standard time.
PROVIDENCE_UTC_OFFSET_H = -5.0


def _epoch(text: str, fmt: str, offset_h: float = 0.0) -> float:
    dt = datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
    return dt.timestamp() - offset_h * 3600.0


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataError(f"data file not found: {path} (see ../shared/data/README.md)")
    return path


@dataclass(frozen=True)
class Series:
    """A time series: UNIX seconds, values (NaN = missing), optional 0/1 labels."""

    ts: FloatArray
    values: FloatArray
    labels: Optional[npt.NDArray[np.int64]] = None
    source: str = ""


def load_dutch(data_dir: Union[str, Path]) -> Series:
    """The 1997 facility demand, 15 min; labels mark the 9 weekday holidays (local time, read
    as UTC: the series has no DST handling)."""
    path = _need(Path(data_dir) / DUTCH)
    ts, vals, labels = [], [], []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            ts.append(_epoch(row["timestamp"], "%Y-%m-%d %H:%M"))
            vals.append(float(row["value"]))
            labels.append(int(row["label"]))
    return Series(np.array(ts), np.array(vals), np.array(labels, dtype=np.int64), DUTCH)


def load_nab(data_dir: Union[str, Path], name: str = "ambient_temperature_system_failure"
             ) -> tuple[Series, list[tuple[float, float]]]:
    """A NAB series and its anomaly windows (UNIX seconds)."""
    base = Path(data_dir) / NAB
    path = _need(base / f"{name}.csv")
    ts, vals = [], []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            ts.append(_epoch(row["timestamp"], "%Y-%m-%d %H:%M:%S"))
            vals.append(float(row["value"]))
    windows_all = json.loads(_need(base / "combined_windows.json").read_text())
    windows = [(_epoch(a[:19], "%Y-%m-%d %H:%M:%S"), _epoch(b[:19], "%Y-%m-%d %H:%M:%S"))
               for a, b in windows_all[f"realKnownCause/{name}.csv"]]
    return Series(np.array(ts), np.array(vals), None, f"{NAB}/{name}.csv"), windows


def load_providence(data_dir: Union[str, Path]) -> Series:
    """Hourly water level (m above MLLW), 1938-2005, on a regular hourly grid (NaN = missing).
    Timestamps are read as UTC-5 (see :data:`PROVIDENCE_UTC_OFFSET_H`)."""
    base = Path(data_dir) / PROVIDENCE
    files = sorted(base.glob("providence_8454000_hourly_*.csv.gz"))
    if not files:
        raise DataError(f"no hourly files in {base} (see ../shared/data/README.md)")
    ts, vals = [], []
    for f in files:
        with gzip.open(f, "rt", newline="") as fh:
            reader = csv.reader(fh)
            next(reader)
            for row in reader:
                ts.append(_epoch(row[0], "%Y-%m-%d %H:%M", PROVIDENCE_UTC_OFFSET_H))
                vals.append(float(row[1]) if row[1].strip() else math.nan)
    t = np.array(ts)
    v = np.array(vals)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    grid = np.arange(t[0], t[-1] + 1, 3600.0)
    out = np.full(len(grid), np.nan)
    idx = np.round((t - t[0]) / 3600.0).astype(np.int64)
    out[idx] = v
    return Series(grid, out, None, f"{PROVIDENCE}/providence_8454000_hourly_*.csv.gz")


def windows_from_points(pts: Points, window_s: int = 900, aggregate: str = "mean",
                        source: str = "") -> Series:
    """Sorted points -> one value per aligned window, through the same
    :class:`WindowAggregator` as the gateway; gaps stay gaps (no window is invented)."""
    agg = WindowAggregator(window_s)
    ts, vals = [], []
    for t, v in zip(pts.ts.tolist(), pts.values.tolist()):
        closed = agg.update(t, v)
        if closed is not None:
            x = closed.get(aggregate)
            if x == x:
                ts.append(closed.start)
                vals.append(x)
    last = agg.get()
    if last is not None and last.get(aggregate) == last.get(aggregate):
        ts.append(last.start)
        vals.append(last.get(aggregate))
    return Series(np.array(ts), np.array(vals), None, source)


def grid_from_points(pts: Points, step_s: float = 3600.0, source: str = "") -> Series:
    """Sorted points -> levels on a regular grid (NaN = missing), the sample nearest each
    instant (within half a step) taken as its level."""
    grid, vals = to_grid(pts.ts, pts.values, step_s)
    return Series(grid, vals, None, source)


def read_user_csv(path: Union[str, Path], time_col: Optional[str] = "timestamp",
                  value_col: Optional[str] = "value",
                  time_format: Optional[str] = None, utc_offset_h: float = 0.0,
                  window_s: int = 900, aggregate: str = "mean",
                  tz: Optional[str] = None) -> Series:
    """A user's meter history -> one value per aligned window, as the gateway would see it.

    Any dialect :func:`~frugalai.learn.csvio.read_points` reads (``;`` or ``,``, UTF-8 or
    Latin-1, ``.gz``). Timestamps may be irregular, unsorted or duplicated (sorted, then fed
    through the same :class:`WindowAggregator` as the gateway); empty or non-numeric values are
    skipped; gaps stay gaps (no window is invented). ``time_format`` is a strptime format, or
    None for ISO 8601 or UNIX seconds; naive times are local time in ``tz`` (an offset or an
    IANA name), or at ``utc_offset_h`` when ``tz`` is None.
    """
    zone = tz if tz is not None else f"{utc_offset_h:+03.0f}:{abs(utc_offset_h) % 1 * 60:02.0f}"
    pts = read_points(path, time_col, value_col, time_format, zone)
    return windows_from_points(pts, window_s, aggregate, Path(path).name)


def read_level_csv(path: Union[str, Path], time_col: Optional[str] = None,
                   level_col: Optional[str] = None, time_format: Optional[str] = None,
                   tz: Optional[str] = None, step_s: float = 3600.0) -> Series:
    """A tide gauge's record -> levels on a regular hourly grid (NaN = missing), the sample
    nearest each hour (within half an hour) taken as that hour's level."""
    pts = read_points(path, time_col, level_col, time_format, tz)
    return grid_from_points(pts, step_s, Path(path).name)
