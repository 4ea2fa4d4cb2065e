"""Replay a recorded CSV (optionally gzipped) as Readings stamped with the file's timestamps.

URL grammar::

    replay://<path.csv[.gz]>[?speed=N|max][&time=COL][&value=COL[:NAME[:UNIT]],...][&limit=N]
                            [&tz=+HH:MM|ZONE][&start=ISO][&until=ISO][&end=stop|wait]

* ``<path>``: relative to the working directory (``replay://../shared/data/x.csv``) or absolute
  (``replay:///srv/data/x.csv.gz``); ``.gz`` files are read through gzip.
* ``speed``: simulated seconds per real second (default 1); ``0`` or ``max`` = as fast as
  possible. ``speed=3600`` plays an hour of data each second.
* ``time``: the timestamp column (default: the first of timestamp, datetime, time, ts, date).
  ISO 8601 (``1997-01-01 00:15``; naive = UTC unless ``tz``) or UNIX seconds.
* ``value``: columns to read, comma-separated, each renamed with ``:NAME`` and given a unit with
  ``:UNIT`` (``value=value:power_w:W``). Default: every other column, under its own name.
* ``limit``: stop after N rows.
* ``tz``: the zone of naive timestamps: a UTC offset (``tz=-05:00`` for a record kept in US
  Eastern standard time, ``tz=+01:00``, ``tz=UTC``) or an IANA name (``tz=Europe/Paris``, read
  with its daylight-saving rules, the repeated autumn hour in file order, as
  :mod:`frugalai.features.localtime` decides for every reader); default UTC. Timestamps that carry their
  own offset (``...Z``, ``...+02:00``) and UNIX seconds are not affected.
* ``start`` / ``until``: replay only the rows from ``start`` and before ``until`` (ISO dates or
  datetimes, naive = in ``tz``): the ``--start`` / ``--end`` of ``train``, ``evaluate`` and
  ``score`` (``end`` was already this URL's end-of-file mode). Rows outside are skipped
  without a count.
* ``end``: what happens after the last row (or ``limit``). ``stop`` (default): the readings
  end, so ``frugalai run`` exits 0 once every flow's source has ended: ``run`` doubles as a batch
  scorer. ``wait``: the source stays open and silent until the gateway stops (a replay feeding a
  long-running service or demo, which must not exit and be restarted by systemd).

Rows whose values are all empty are gaps in the record (counted in ``stats.skipped``); a cell
that is not a finite number, or a bad timestamp, is corruption (counted in ``stats.frames_bad``).
Neither stops the replay.

Speed: at ``speed=max`` the source reads well over 100k rows/s on one core
(benchmarks/fastpath.py): ``csv.reader`` rows by column index (no dict per row), one value
column at full speed in its own lean loop, and ISO timestamps parsed once per day (the epoch
of ``YYYY-MM-DD`` is kept and the time of day added; anything else goes through
``datetime.fromisoformat``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from types import MappingProxyType
from typing import Optional

from frugalai.errors import ConfigError, SourceError
from frugalai.features.localtime import Localiser, is_named, parse_zone
from frugalai.reading import Reading
from frugalai.registry import check_options, split_url
from frugalai.sources.base import SourceStats

OPTIONS = {
    "speed": "simulated seconds per real second, or max (default 1)",
    "time": "timestamp column (default: timestamp, datetime, time, ts or date)",
    "value": "columns COL[:NAME[:UNIT]], comma-separated (default: all others)",
    "limit": "stop after N rows",
    "tz": "zone of naive timestamps: -05:00 or a name like Europe/Paris (default UTC)",
    "end": "after the last row: stop (default; run exits when all sources ended) or wait",
    "start": "replay rows from this ISO date or time (naive = in tz)",
    "until": "replay rows before this ISO date or time (naive = in tz)",
}
END_MODES = ("stop", "wait")
TIME_COLUMNS = ("timestamp", "datetime", "time", "ts", "date")


def parse_time(text: str, tz: tzinfo = timezone.utc,
               local: Optional[Localiser] = None) -> float:
    """UNIX seconds from ISO 8601 (naive = in ``tz``, UTC by default, through ``local`` when
    given: a named zone's DST) or a number; ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = local(dt) if local is not None else dt.replace(tzinfo=tz)
    return dt.timestamp()


_OFFSET = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")


def parse_offset(text: str) -> timezone:
    """A fixed UTC offset from ``-05:00``, ``+0100``, ``-5``, ``UTC`` or ``Z``; ValueError
    otherwise.

    >>> parse_offset("-05:00").utcoffset(None).total_seconds()
    -18000.0
    """
    t = text.strip()
    if t.upper() in ("UTC", "Z", "GMT"):
        return timezone.utc
    m = _OFFSET.match(t)
    if not m or int(m.group(2)) > 23 or int(m.group(3) or 0) > 59:
        raise ValueError(f"tz must be a UTC offset like -05:00, +01:00 or UTC, got {text!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


#: "00".."59" -> 0..59: validates and converts a minute or second field in one lookup.
_SEXAGESIMAL = {f"{i:02d}": i for i in range(60)}
#: "00".."23" -> 0..23, the same for the hour.
_HOURS = {f"{i:02d}": i for i in range(24)}


class TimeParser:
    """``parse_time`` with a one-entry cache of the day: rows ``YYYY-MM-DD HH:MM[:SS]`` (``T``
    or space) of one day share a prefix whose epoch is parsed once, then the hours, minutes
    and seconds are added (hourly records, files mixing ``HH:MM`` and ``HH:MM:SS`` rows stay
    on the fast path). Any other form goes through :func:`parse_time` (UNIX seconds first:
    one ``float``), and so does the first row of each day (which validates the date). Same
    results as :func:`parse_time`. A named zone skips the cache: its days are not all 24
    hours long, and its repeated autumn hour shares a prefix with the first."""

    def __init__(self, tz: tzinfo = timezone.utc) -> None:
        self.tz = tz
        self.local = Localiser(tz) if is_named(tz) else None
        self._day = ""
        self._epoch = 0.0

    def __call__(self, text: str) -> float:
        n = len(text)
        if (n == 16 or (n == 19 and text[16] == ":")) and text[13] == ":" and \
                text[10] in "T " and self.local is None:
            hour = _HOURS.get(text[11:13])
            minute = _SEXAGESIMAL.get(text[14:16])
            second = 0 if n == 16 else _SEXAGESIMAL.get(text[17:19])
            if hour is not None and minute is not None and second is not None:
                offset = hour * 3600 + minute * 60 + second
                if text[:10] == self._day:
                    return self._epoch + offset
                ts = parse_time(text, self.tz)  # validates the date
                if text[4] == "-" and text[7] == "-":
                    self._day = text[:10]
                    self._epoch = ts - offset
                return ts
        if self.local is None:
            try:
                return float(text)
            except ValueError:
                pass
        return parse_time(text, self.tz, self.local)


class ReplaySource:
    """Yields one Reading per CSV row, paced by the row timestamps and ``speed``."""

    def __init__(
        self,
        path: str,
        *,
        sensor: str,
        speed: float = 1.0,
        time_column: Optional[str] = None,
        values: Optional[list[tuple[str, str, str]]] = None,
        limit: Optional[int] = None,
        tz: tzinfo = timezone.utc,
        end: str = "stop",
        clock: object = None,
        start: Optional[float] = None,
        until: Optional[float] = None,
    ) -> None:
        del clock  # accepted like the live sources take it; a replay's time is the file's
        if speed < 0 or not math.isfinite(speed):
            raise ConfigError(f"speed must be >= 0 or max, got {speed}", key="speed")
        if end not in END_MODES:
            raise ConfigError(f"end must be one of {', '.join(END_MODES)}, got {end!r}", key="end")
        self.tz = tz
        self.end = end
        self.start = start
        self.until = until
        self.path = Path(path)
        self.sensor = sensor
        self.speed = speed
        self.time_column = time_column
        self.value_spec = values
        self.limit = limit
        self.stats = SourceStats()
        self._file: Optional[io.TextIOBase] = None

    @classmethod
    def from_url(cls, url: str, *, sensor: str, key: Optional[str] = None, **kwargs: object) -> ReplaySource:
        """Build from ``replay://...``; ConfigError (naming ``key``) on a bad URL."""
        _, path, options = split_url(url, key=key)
        check_options(url, options, OPTIONS, key=key)
        if not path:
            raise ConfigError(f"replay URL names no file: {url!r}", key=key)
        speed_text = options.get("speed", "1")
        try:
            speed = 0.0 if speed_text == "max" else float(speed_text)
            limit = int(options["limit"]) if "limit" in options else None
            tz = parse_zone(options["tz"]) if "tz" in options else timezone.utc
            span = tuple(parse_time(options[k], tz) if k in options else None
                         for k in ("start", "until"))
        except ValueError as err:
            raise ConfigError(f"bad option in {url!r}: {err}", key=key) from None
        values = None
        if options.get("value"):
            values = []
            for item in options["value"].split(","):
                col, _, rest = item.partition(":")
                name, _, unit = rest.partition(":")
                values.append((col, name or col, unit))
        try:
            return cls(path, sensor=sensor, speed=speed, time_column=options.get("time"), values=values,
                       limit=limit, tz=tz, end=options.get("end", "stop"), start=span[0],
                       until=span[1], **kwargs)
        except ConfigError as err:
            raise ConfigError(f"{err.reason} (in {url!r})", key=key) from None

    @property
    def unpaced(self) -> bool:
        """Read as fast as possible and ended by its file (``speed=max``, ``end=stop``):
        nobody waits on a window's decision in real time, so a flow may score its windows in
        batches (:meth:`frugalai.pipeline.Flow.batch_windows`)."""
        return not self.speed > 0 and self.end == "stop"

    def _open(self) -> io.TextIOBase:
        try:
            if self.path.suffix == ".gz":
                return gzip.open(self.path, "rt", newline="")
            return open(self.path, newline="")  # closed in close()
        except OSError as err:
            raise SourceError(f"cannot open replay file {str(self.path)!r}: {err}") from err

    def readings(self, stop: threading.Event) -> Iterator[Reading]:
        """Yield the file's rows as Readings until the end (then, with ``end=wait``, wait for
        ``stop``), ``limit`` or ``stop``."""
        self._file = self._open()
        try:
            reader = csv.reader(self._file)
            header = next(reader, None) or []
            tcol = self.time_column or next((c for c in TIME_COLUMNS if c in header), None)
            if tcol is None or tcol not in header:
                looked = tcol or ", ".join(TIME_COLUMNS)
                raise SourceError(f"{self.path}: no time column (looked for {looked}) in {header}")
            spec = self.value_spec or [(c, c, "") for c in header if c != tcol]
            missing = [c for c, _, _ in spec if c not in header]
            if missing:
                raise SourceError(f"{self.path}: no column(s) {missing}; the file has {header}")
            if len(spec) == 1 and not self.speed > 0:
                yield from self._rows_one(reader, header, tcol, spec[0], stop)
            else:
                yield from self._rows(reader, header, tcol, spec, stop)
            if self.end == "wait" and not stop.is_set():
                self.close()
                stop.wait()
        except (OSError, EOFError, csv.Error) as err:  # truncated gzip, unreadable file
            self.stats.last_error = f"{type(err).__name__}: {err}"
            raise SourceError(f"replay of {self.path} failed: {err}") from err
        finally:
            self.close()

    def _rows(self, reader: Iterator[list[str]], header: list[str], tcol: str,
              spec: list[tuple[str, str, str]], stop: threading.Event) -> Iterator[Reading]:
        """The row loop, kept lean: it is the whole cost of a replay at full speed."""
        width = len(header)
        t_index = header.index(tcol)
        columns = [(header.index(col), name, unit) for col, name, unit in spec]
        units_all = {name: unit for _, name, unit in columns if unit}
        # Read-only, so every reading that has all its values can share it.
        units_shared = MappingProxyType(units_all)
        parse = TimeParser(self.tz)
        span = self.start is not None or self.until is not None
        lo = -math.inf if self.start is None else self.start
        hi = math.inf if self.until is None else self.until
        stats = self.stats
        sensor = self.sensor
        limit = self.limit
        pace = self.speed > 0
        isfinite = math.isfinite
        t0_data: Optional[float] = None
        t0_real = time.monotonic()
        bytes_read = 0
        rows = stats.frames_ok + stats.frames_bad + stats.skipped
        # A row the csv module rejects (a field over its 128 KiB limit, a stray NUL) is
        # counted and skipped like any bad row: the reader goes on at the next line.
        while True:
            try:
                for row in reader:
                    if stop.is_set() or (limit is not None and rows >= limit):
                        break
                    rows += 1
                    n = len(row)
                    bytes_read += sum(map(len, row)) + (n if n > width else width)
                    if n < width:
                        row = row + [""] * (width - n)
                    values: dict[str, float] = {}
                    seen = False
                    bad: Optional[str] = None
                    for i, name, _ in columns:
                        cell = row[i]
                        if not cell:
                            continue
                        cell = cell.strip()
                        if not cell:
                            continue
                        seen = True
                        if bad is None:
                            try:
                                value = float(cell)
                            except ValueError as err:
                                bad = str(err)
                                continue
                            if not isfinite(value):
                                bad = f"{name}: not a finite number: {cell!r}"
                            values[name] = value
                    if not seen:
                        stats.skipped += 1
                        continue
                    try:  # a bad timestamp is reported before a bad value, as it always was
                        ts = parse(row[t_index].strip())
                    except ValueError as err:
                        bad = str(err)
                    if bad is not None:
                        stats.frames_bad += 1
                        stats.last_error = f"row {stats.frames_ok + stats.frames_bad}: {bad}"
                        continue
                    if span and not lo <= ts < hi:
                        continue
                    stats.frames_ok += 1
                    units: Mapping[str, str] = (
                        {k: u for k, u in units_all.items() if k in values}
                        if len(values) != len(columns) else units_shared)
                    reading = Reading(ts, sensor, values, units)
                    if pace:
                        if t0_data is None:
                            t0_data = ts
                        delay = t0_real + (ts - t0_data) / self.speed - time.monotonic()
                        if delay > 0 and stop.wait(delay):
                            break
                    stats.readings += 1
                    stats.last_reading_ts = ts
                    stats.last_received = time.time()
                    if bytes_read:
                        stats.bytes_read += bytes_read
                        bytes_read = 0
                    yield reading
            except csv.Error as err:
                rows += 1
                stats.frames_bad += 1
                stats.last_error = f"row {stats.frames_ok + stats.frames_bad}: {err}"
                continue
            break
        stats.bytes_read += bytes_read

    def _rows_one(self, reader: Iterator[list[str]], header: list[str], tcol: str,
                  spec: tuple[str, str, str], stop: threading.Event) -> Iterator[Reading]:
        """:meth:`_rows` for the usual replay at full speed: one value column, no pacing.

        The same rows, counts and errors as :meth:`_rows` (tests compare both), with the
        per-row work cut to what one column needs: no dict of cells, one shared units map.
        """
        width = len(header)
        t_index = header.index(tcol)
        col, name, unit = spec
        v_index = header.index(col)
        units: Mapping[str, str] = MappingProxyType({name: unit} if unit else {})
        parse = TimeParser(self.tz)
        span = self.start is not None or self.until is not None
        lo = -math.inf if self.start is None else self.start
        hi = math.inf if self.until is None else self.until
        stats = self.stats
        sensor = self.sensor
        limit = math.inf if self.limit is None else self.limit
        stopped = stop.is_set
        isfinite = math.isfinite
        bytes_read = 0
        rows = stats.frames_ok + stats.frames_bad + stats.skipped
        while True:
            try:
                for row in reader:
                    if rows >= limit or stopped():
                        break
                    rows += 1
                    n = len(row)
                    bytes_read += sum(map(len, row)) + (n if n > width else width)
                    cell = row[v_index] if v_index < n else ""
                    if not cell or not (cell := cell.strip()):
                        stats.skipped += 1
                        continue
                    try:
                        value = float(cell)
                        bad: Optional[str] = None
                        if not isfinite(value):
                            bad = f"{name}: not a finite number: {cell!r}"
                    except ValueError as err:
                        bad = str(err)
                    try:  # a bad timestamp is reported before a bad value, as in _rows
                        ts = parse(row[t_index].strip() if t_index < n else "")
                    except ValueError as err:
                        bad = str(err)
                    if bad is not None:
                        stats.frames_bad += 1
                        stats.last_error = f"row {stats.frames_ok + stats.frames_bad}: {bad}"
                        continue
                    if span and not lo <= ts < hi:
                        continue
                    stats.frames_ok += 1
                    stats.readings += 1
                    stats.last_reading_ts = ts
                    stats.last_received = time.time()  # liveness: the gateway's clock
                    stats.bytes_read += bytes_read
                    bytes_read = 0
                    yield Reading(ts, sensor, {name: value}, units)
            except csv.Error as err:
                rows += 1
                stats.frames_bad += 1
                stats.last_error = f"row {stats.frames_ok + stats.frames_bad}: {err}"
                continue
            break
        stats.bytes_read += bytes_read

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ReplaySource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ReplaySource({str(self.path)!r}, sensor={self.sensor!r}, speed={self.speed})"
