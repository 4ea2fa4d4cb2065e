"""Reading a user's time series from the CSV they have, whatever its dialect.

Users export from a tide-gauge portal, a spreadsheet or the Enedis customer area: ``;`` or ``,``
separated, UTF-8 or Latin-1, sometimes gzip-compressed, decimal commas with ``;``, local or
UTC times with or without an offset, or UNIX seconds. :func:`read_points` turns any of these
into sorted UNIX seconds and floats, naming the problem in one line
(:class:`~frugalai.learn.data.DataError`) when it cannot; :func:`to_grid` puts them on a
regular grid with NaN for the gaps.

The file is streamed: memory grows with the rows kept (two floats each), not with the file's
bytes, and a line longer than :data:`MAX_LINE` characters (a binary file, a JSON blob in a
cell) is refused at that line instead of being read whole. Named zones are applied with their
daylight-saving rules: a repeated autumn hour is read as its two occurrences in file order,
and local times that do not exist (the spring gap) are counted and reported.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import math
import re
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import IO, Optional, Union

import numpy as np
import numpy.typing as npt

from frugalai.errors import FrugalError
from frugalai.features.localtime import Localiser, is_named, parse_zone, zone_label

FloatArray = npt.NDArray[np.float64]
_HAS_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)\s*$")
_ISOISH = re.compile(r"\d[-/:]\d")
#: Longest line read (characters). A meter's row is a few dozen; a longer line is not a table.
MAX_LINE = 1 << 20
#: UNIX seconds a time column may hold to be recognised as such: 1979-07 to 2106-02.
UNIX_RANGE = (3.0e8, 4.29e9)
_CHUNK = 65536


class DataError(FrugalError, ValueError):
    """A data file is missing or has no usable rows; the message names the file."""


def parse_tz(text: Optional[str]) -> tzinfo:
    """``+01:00``, ``-05:00``, ``UTC``, ``Z`` or an IANA name (``Europe/Paris``); see
    :func:`frugalai.features.localtime.parse_zone`."""
    try:
        return parse_zone(text)
    except ValueError as err:
        raise DataError(str(err)) from None


tz_label = zone_label


def parse_when(text: str, tz: tzinfo, option: str = "--start") -> float:
    """UNIX seconds of an ISO date (``2004-11-01``: its local midnight) or datetime given on
    the command line; naive values are in ``tz``. One-line DataError otherwise."""
    t = text.strip()
    try:
        dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"{option} {text!r} is not an ISO date or datetime (e.g. 2004-11-01 or "
                        f"2004-11-01T06:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def _detect_encoding(open_binary: Callable[[], IO[bytes]], name: str) -> str:
    """The first of UTF-8, CP-1252, Latin-1 that decodes the whole stream (read in chunks)."""
    for enc in ("utf-8-sig", "cp1252"):
        dec = codecs.getincrementaldecoder(enc)()
        try:
            with open_binary() as fh:
                while True:
                    block = fh.read(1 << 20)
                    if not block:
                        dec.decode(b"", final=True)
                        break
                    dec.decode(block)
            return enc
        except UnicodeDecodeError:
            continue
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{name}: corrupt gzip file ({err})") from None
    return "latin-1"


def open_text(path: Union[str, Path]) -> tuple[IO[str], str]:
    """The file as a text stream (gzip by magic bytes; encoding found by a first pass) and
    its encoding. The caller closes the stream."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"

    def open_binary() -> IO[bytes]:
        return gzip.open(path, "rb") if gz else open(path, "rb")  # type: ignore[return-value]

    enc = _detect_encoding(open_binary, path.name)
    return io.TextIOWrapper(open_binary(), encoding=enc, newline=""), enc


def read_text(path: Union[str, Path], limit: int = 64 << 20) -> tuple[str, str]:
    """The file's text (gzip by magic bytes) and the encoding that decoded it, for small files
    (labels); a file over ``limit`` characters is refused."""
    fh, enc = open_text(path)
    with fh:
        text = fh.read(limit + 1)
    if len(text) > limit:
        raise DataError(f"{Path(path).name}: larger than {limit >> 20} MiB; not a labels file")
    return text, enc


def _lines(fh: IO[str], name: str) -> Iterator[str]:
    n = 0
    while True:
        line = fh.readline(MAX_LINE + 1)
        if not line:
            return
        n += 1
        if len(line) > MAX_LINE:
            raise DataError(f"{name}: line {n} is longer than {MAX_LINE} characters: not a "
                            f"table of readings (or a cell holds a whole document)")
        yield line


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


class TimeParser:
    """Times of a column, chunk after chunk: ISO 8601 (naive = local time in ``tz``, DST as
    :class:`~frugalai.features.localtime.Localiser` decides), UNIX seconds, or ``fmt`` (strptime).
    Counts what it had to decide: naive rows, rows in a DST gap, rows of a repeated hour."""

    def __init__(self, tz: tzinfo, fmt: Optional[str] = None) -> None:
        self.tz = tz
        self.fmt = fmt
        self.naive = 0
        self._local = Localiser(tz)

    @property
    def dst_gap(self) -> int:
        return self._local.gap

    @property
    def dst_repeat(self) -> int:
        return self._local.repeat

    def __call__(self, texts: list[str]) -> FloatArray:
        out = np.full(len(texts), np.nan)
        fixed = None if is_named(self.tz) else self.tz.utcoffset(None)
        if self.fmt is None and fixed is not None and not any(
                _HAS_OFFSET.search(t) for t in texts) and any(_ISOISH.search(t) for t in texts[:5]):
            # Fast path: ISO 8601 without offset, read by numpy (offsets take the path below).
            try:
                arr = np.array([t.strip().replace("T", " ") for t in texts],
                               dtype="datetime64[s]")
                self.naive += len(texts)
                secs = np.asarray(arr.astype(np.int64), np.float64) - fixed.total_seconds()
                return np.where(np.isnat(arr), np.nan, secs)
            except ValueError:
                pass
        for i, text in enumerate(texts):
            text = text.strip()
            if not text:
                continue
            try:
                if self.fmt:
                    dt = datetime.strptime(text, self.fmt)
                else:
                    try:
                        x = float(text)
                        # UNIX seconds only: a small number is a value, not a 1970 time
                        out[i] = x if UNIX_RANGE[0] <= x <= UNIX_RANGE[1] else math.nan
                        continue
                    except ValueError:
                        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                continue
            if dt.tzinfo is None:
                self.naive += 1
                dt = self._local(dt)
            out[i] = dt.timestamp()
        return out


def _parse_times(texts: list[str], fmt: Optional[str], tz: tzinfo) -> FloatArray:
    """UNIX seconds of each text (NaN when unparseable). Naive times are in ``tz``."""
    return TimeParser(tz, fmt)(texts)


def _looks_unix(texts: list[str]) -> bool:
    vals = [_number(t, False) for t in texts if t.strip()]
    if not vals or not all(math.isfinite(v) for v in vals):
        return False
    return all(UNIX_RANGE[0] <= v <= UNIX_RANGE[1] for v in vals)


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
    naive_rows: int = 0
    duplicates: int = 0
    dst_gap_rows: int = 0
    dst_repeated_rows: int = 0
    unix_seconds: bool = False

    def warnings(self, name: str) -> list[str]:
        """What the reader decided that changes a figure if it guessed wrong."""
        out = []
        if self.skipped:
            out.append(f"{name}: {self.skipped} row(s) without a readable time and number "
                       f"skipped (gaps, or text in {self.value_col!r} / {self.time_col!r})")
        if self.dst_gap_rows:
            out.append(f"{name}: {self.dst_gap_rows} row(s) stamped in the spring DST gap "
                       f"(local times that do not exist), read with the winter offset")
        if self.dst_repeated_rows:
            out.append(f"{name}: {self.dst_repeated_rows} row(s) of the repeated autumn hour "
                       f"read as its second occurrence (file order)")
        if self.duplicates:
            out.append(f"{name}: {self.duplicates} duplicate time(s), the last value kept"
                       + (" (a local clock with DST read at a fixed offset? give --tz as a "
                          "zone name like Europe/Paris)" if self.naive_rows else ""))
        return out


def read_points(path: Union[str, Path], time_col: Optional[str] = None,
                value_col: Optional[str] = None, time_format: Optional[str] = None,
                tz: Union[str, tzinfo, None] = None) -> Points:
    """Samples of ``value_col`` at ``time_col`` (both guessed when None: the first column
    whose values parse as ISO times, else as UNIX seconds, then the first numeric one). Rows
    with an unparseable time or value are skipped and counted; duplicates keep the last
    value (and are counted)."""
    path = Path(path)
    zone = tz if isinstance(tz, tzinfo) else parse_tz(tz)
    fh, encoding = open_text(path)
    with fh:
        lines = _lines(fh, path.name)
        first: list[str] = []
        for line in lines:
            first.append(line)
            if len(first) >= 20:
                break
        delim = _delimiter("".join(first)[:8192])
        reader = csv.reader(_chain(first, lines), delimiter=delim)
        try:
            return _read_rows(path.name, reader, delim, encoding, zone, time_col, value_col,
                              time_format)
        except csv.Error as err:
            raise DataError(f"{path.name}: line {reader.line_num}: {err}") from None
        except (OSError, EOFError, zlib.error) as err:  # a gzip truncated after the first pass
            raise DataError(f"{path.name}: unreadable ({err})") from None


def _chain(head: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from head
    yield from rest


def _read_rows(name: str, reader: Iterator[list[str]], delim: str, encoding: str,
               zone: tzinfo, time_col: Optional[str], value_col: Optional[str],
               time_format: Optional[str]) -> Points:
    head: list[list[str]] = []
    for r in reader:
        if any(c.strip() for c in r):
            head.append(r)
            if len(head) >= 200:
                break
    if not head:
        raise DataError(f"{name}: empty file")
    hi = _header_row(head, time_col)
    header = [h.strip() for h in head[hi]]
    probe_rows = head[hi + 1:hi + 51]
    ncol = len(header)
    decimal_comma = delim == ";"

    def col_index(col: str, what: str) -> int:
        if col in header:
            return header.index(col)
        raise DataError(f"{name}: no column {col!r}; columns are {header} (use {what})")

    cols = [[r[i] if i < len(r) else "" for r in probe_rows] for i in range(ncol)]
    unix = False
    if time_col is not None:
        ti = col_index(time_col, "--time-col")
    else:
        ti = -1
        for i in range(ncol):
            sample = _parse_times(cols[i], time_format, zone)
            looks_iso = any(_ISOISH.search(c) for c in cols[i])
            if cols[i] and looks_iso and np.isfinite(sample).mean() >= 0.8:
                ti = i
                break
        if ti < 0 and time_format is None:
            for i in range(ncol):
                if cols[i] and _looks_unix(cols[i]):
                    ti, unix = i, True
                    break
        if ti < 0:
            raise DataError(f"{name}: no parseable time column among {header} (give "
                            f"--time-col and --time-format)")
    if value_col is not None:
        vi = col_index(value_col, "--value-col")
        if vi == ti:
            raise DataError(f"{name}: --value-col {value_col!r} is the time column")
    else:
        vi = -1
        for i in range(ncol):
            if i != ti and cols[i] and np.isfinite([_number(c, decimal_comma)
                                                    for c in cols[i]]).mean() >= 0.5:
                vi = i
                break
        if vi < 0:
            raise DataError(f"{name}: no numeric value column among {header}")
    parser = TimeParser(zone, time_format)
    ts_out, v_out = array("d"), array("d")
    t_chunk: list[str] = []
    v_chunk: list[str] = []
    rows = 0

    def flush() -> None:
        ts_out.extend(parser(t_chunk).tolist())
        v_out.extend(_number(c, decimal_comma) for c in v_chunk)
        t_chunk.clear()
        v_chunk.clear()

    def body() -> Iterator[list[str]]:
        yield from head[hi + 1:]
        yield from reader

    for r in body():
        if not any(c.strip() for c in r):
            continue
        rows += 1
        t_chunk.append(r[ti] if ti < len(r) else "")
        v_chunk.append(r[vi] if vi < len(r) else "")
        if len(t_chunk) >= _CHUNK:
            flush()
    flush()
    if rows < 2:
        raise DataError(f"{name}: fewer than 2 data rows")
    times = np.frombuffer(ts_out, dtype=np.float64) if len(ts_out) else np.array([])
    values = np.frombuffer(v_out, dtype=np.float64) if len(v_out) else np.array([])
    if time_col is not None and np.isfinite(times).sum() == 0:
        raise DataError(f"{name}: column {time_col!r} has no parseable time (e.g. "
                        f"{cols[ti][0] if cols[ti] else ''!r}; ISO 8601, UNIX seconds, or give "
                        f"--time-format)")
    ok = np.isfinite(times) & np.isfinite(values)
    if ok.sum() < 2:
        raise DataError(f"{name}: fewer than 2 rows with a time and a number in "
                        f"{header[ti]!r} / {header[vi]!r}")
    t, v = times[ok], values[ok]
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    last = np.append(t[1:] != t[:-1], True)  # duplicates: keep the last
    return Points(t[last], v[last], header[ti], header[vi], delim, encoding,
                  int((~ok).sum()), parser.naive, int((~last).sum()), parser.dst_gap,
                  parser.dst_repeat, unix)


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
