"""Reading a user's time series from the CSV they have, whatever its dialect.

Users export from a tide-gauge portal, a spreadsheet or the Enedis customer area: ``;`` or ``,``
separated, UTF-8 or Latin-1, sometimes gzip-compressed, decimal commas with ``;``, local or
UTC times with or without an offset. :func:`read_points` turns any of these into sorted UNIX
seconds and floats, naming the problem in one line (:class:`~frugalai.learn.data.DataError`)
when it cannot; :func:`to_grid` puts them on a regular grid with NaN for the gaps.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Optional, Union

import numpy as np
import numpy.typing as npt

from frugalai.errors import FrugalError

FloatArray = npt.NDArray[np.float64]
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)\s*$")
_OFFSET = re.compile(r"^(?:UTC)?\s*([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


class DataError(FrugalError, ValueError):
    """A data file is missing or has no usable rows; the message names the file."""


def parse_tz(text: Optional[str]) -> tzinfo:
    """``+01:00``, ``-05:00``, ``UTC``, ``Z`` or an IANA name (``Europe/Paris``)."""
    if text is None or text.strip().upper() in ("", "UTC", "Z", "GMT"):
        return timezone.utc
    m = _OFFSET.match(text.strip())
    if m:
        sign = -1 if m.group(1) == "-" else 1
        h, mins = int(m.group(2)), int(m.group(3) or 0)
        if h > 14 or mins >= 60:
            raise DataError(f"time zone offset {text!r} out of range (use ±HH:MM)")
        return timezone(sign * timedelta(hours=h, minutes=mins))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(text.strip())
    except Exception:
        raise DataError(f"unknown time zone {text!r} (use ±HH:MM or a name like "
                        f"Europe/Paris)") from None


def tz_label(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz.tzname(None) or tz)


def read_text(path: Union[str, Path]) -> tuple[str, str]:
    """The file's text (gzip by magic bytes) and the encoding that decoded it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path.name}: corrupt gzip file ({err})") from None
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path.name}: not a text file")  # pragma: no cover - latin-1 decodes all


def _delimiter(sample: str) -> str:
    lines = [ln for ln in sample.splitlines()[:20] if ln.strip()]
    counts = {d: min((ln.count(d) for ln in lines), default=0) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _number(text: str, decimal_comma: bool) -> float:
    t = text.strip().replace("\u00a0", "").replace(" ", "")
    if decimal_comma:
        t = t.replace(",", ".")
    try:
        return float(t)
    except ValueError:
        return math.nan


def _parse_times(texts: list[str], fmt: Optional[str], tz: tzinfo) -> FloatArray:
    """UNIX seconds of each text (NaN when unparseable). Naive times are in ``tz``."""
    out = np.full(len(texts), np.nan)
    fixed = tz.utcoffset(None) if not hasattr(tz, "key") else None
    if fmt is None and fixed is not None and not any(_HAS_OFFSET.search(t) for t in texts):
        # Fast path: ISO 8601 without offset, read by numpy (offsets take the path below).
        try:
            arr = np.array([t.strip().replace("T", " ") for t in texts], dtype="datetime64[s]")
            return np.asarray(arr.astype(np.int64), np.float64) - fixed.total_seconds()
        except ValueError:
            pass
    for i, text in enumerate(texts):
        text = text.strip()
        if not text:
            continue
        try:
            if fmt:
                dt = datetime.strptime(text, fmt)
            else:
                try:
                    out[i] = float(text)
                    continue
                except ValueError:
                    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            continue
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        out[i] = dt.timestamp()
    return out


@dataclass(frozen=True)
class Points:
    """Sorted samples of one column, with what the reader found out."""

    ts: FloatArray
    values: FloatArray
    time_col: str
    value_col: str
    delimiter: str
    encoding: str
    skipped: int


def read_points(path: Union[str, Path], time_col: Optional[str] = None,
                value_col: Optional[str] = None, time_format: Optional[str] = None,
                tz: Union[str, tzinfo, None] = None) -> Points:
    """Samples of ``value_col`` at ``time_col`` (both guessed when None: the first column
    whose values parse as times, then the first numeric one). Rows with an unparseable time or
    value are skipped and counted; duplicates keep the last value."""
    path = Path(path)
    zone = tz if isinstance(tz, tzinfo) else parse_tz(tz)
    text, encoding = read_text(path)
    delim = _delimiter(text[:8192])
    rows = list(csv.reader(io.StringIO(text), delimiter=delim))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise DataError(f"{path.name}: empty file")
    rows = rows[_header_row(rows, time_col):]
    header = [h.strip() for h in rows[0]]
    for name, what in ((time_col, "--time-col"), (value_col, "--value-col / --level-col")):
        if name is not None and name not in header:
            raise DataError(f"{path.name}: no column {name!r}; columns are {header} "
                            f"(use {what})")
    if len(rows) < 3:
        raise DataError(f"{path.name}: fewer than 2 data rows")
    body = rows[1:]
    ncol = len(header)
    cols = [[r[i] if i < len(r) else "" for r in body] for i in range(ncol)]
    decimal_comma = delim == ";"
    probe = min(len(body), 50)

    def col_index(name: str, what: str) -> int:
        if name in header:
            return header.index(name)
        raise DataError(f"{path.name}: no column {name!r}; columns are {header} "
                        f"(use {what})")

    if time_col is not None:
        ti = col_index(time_col, "--time-col")
        times = _parse_times(cols[ti], time_format, zone)
        if np.isfinite(times).sum() == 0:
            raise DataError(f"{path.name}: column {time_col!r} has no parseable time (e.g. "
                            f"{cols[ti][0]!r}; give --time-format)")
    else:
        ti, times = -1, np.array([])
        for i in range(ncol):
            sample = _parse_times(cols[i][:probe], time_format, zone)
            looks_iso = any(re.search(r"\d[-/:]\d", c) for c in cols[i][:probe])
            if looks_iso and np.isfinite(sample).mean() >= 0.8:
                ti, times = i, _parse_times(cols[i], time_format, zone)
                break
        if ti < 0:
            raise DataError(f"{path.name}: no parseable time column among {header} (give "
                            f"--time-col and --time-format)")
    if value_col is not None:
        vi = col_index(value_col, "--value-col / --level-col")
    else:
        vi = -1
        for i in range(ncol):
            if i != ti and np.isfinite([_number(c, decimal_comma)
                                        for c in cols[i][:probe]]).mean() >= 0.5:
                vi = i
                break
        if vi < 0:
            raise DataError(f"{path.name}: no numeric value column among {header}")
    values = np.array([_number(c, decimal_comma) for c in cols[vi]])
    ok = np.isfinite(times) & np.isfinite(values)
    if ok.sum() < 2:
        raise DataError(f"{path.name}: fewer than 2 rows with a time and a number in "
                        f"{header[ti]!r} / {header[vi]!r}")
    t, v = times[ok], values[ok]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    last = np.append(t[1:] != t[:-1], True)  # duplicates: keep the last
    return Points(t[last], v[last], header[ti], header[vi], delim, encoding,
                  int((~ok).sum()))


def _header_row(rows: list[list[str]], time_col: Optional[str]) -> int:
    """Index of the header: exports (Enedis, tide portals) may open with a few lines about the
    meter or the station before the table. The header is the named time column's row, else
    the first row whose width the next rows share."""
    head = rows[:12]
    if time_col is not None:
        for i, r in enumerate(head):
            if time_col in (c.strip() for c in r):
                return i
        return 0
    widths = [len(r) for r in rows[:200]]
    bulk = max(set(widths), key=widths.count)
    for i in range(min(len(head), max(len(rows) - 3, 0))):
        if all(len(r) == bulk for r in rows[i:i + 4]):
            return i
    return 0


def median_step(ts: FloatArray) -> float:
    d = np.diff(ts)
    d = d[d > 0]
    return float(np.median(d)) if len(d) else math.nan


def to_grid(ts: FloatArray, values: FloatArray, step_s: float) -> tuple[FloatArray, FloatArray]:
    """A regular grid on multiples of ``step_s`` (UNIX epoch aligned), NaN where nothing was
    recorded. Each grid instant takes the sample nearest to it within half a step (a gauge's
    instantaneous level at the top of the hour, as the gateway sees it)."""
    k = np.round(ts / step_s).astype(np.int64)
    err = np.abs(ts - k * step_s)
    first, last = int(k.min()), int(k.max())
    grid = (np.arange(first, last + 1) * step_s).astype(np.float64)
    out = np.full(len(grid), np.nan)
    order = np.argsort(-err, kind="stable")  # nearest written last, so it wins
    out[k[order] - first] = values[order]
    return grid, out


def longest_gap(ts: FloatArray, values: FloatArray) -> tuple[float, float, float]:
    """(seconds, start, end) of the longest run without a finite value on a grid."""
    t = ts[np.isfinite(values)]
    if len(t) < 2:
        return 0.0, math.nan, math.nan
    d = np.diff(t)
    i = int(np.argmax(d))
    return float(d[i]), float(t[i]), float(t[i + 1])
