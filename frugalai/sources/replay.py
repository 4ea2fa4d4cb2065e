"""Replay a recorded CSV (optionally gzipped) as Readings stamped with the file's timestamps.

URL grammar::

    replay://<path.csv[.gz]>[?speed=N|max][&time=COL][&value=COL[:NAME[:UNIT]],...][&limit=N]

* ``<path>``: relative to the working directory (``replay://../shared/data/x.csv``) or absolute
  (``replay:///srv/data/x.csv.gz``); ``.gz`` files are read through gzip.
* ``speed``: simulated seconds per real second (default 1); ``0`` or ``max`` = as fast as
  possible. ``speed=3600`` plays an hour of data each second.
* ``time``: the timestamp column (default: the first of timestamp, datetime, time, ts, date).
  ISO 8601 (``1997-01-01 00:15``; naive = UTC) or UNIX seconds.
* ``value``: columns to read, comma-separated, each renamed with ``:NAME`` and given a unit with
  ``:UNIT`` (``value=value:power_w:W``). Default: every other column, under its own name.
* ``limit``: stop after N rows.

Rows whose values are all empty are gaps in the record (counted in ``stats.skipped``); a cell
that is not a finite number, or a bad timestamp, is corruption (counted in ``stats.frames_bad``).
Neither stops the replay.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from frugalai.errors import ConfigError, SourceError
from frugalai.reading import Reading
from frugalai.registry import check_options, split_url
from frugalai.sources.base import SourceStats

OPTIONS = {
    "speed": "simulated seconds per real second, or max (default 1)",
    "time": "timestamp column (default: timestamp, datetime, time, ts or date)",
    "value": "columns COL[:NAME[:UNIT]], comma-separated (default: all others)",
    "limit": "stop after N rows",
}
TIME_COLUMNS = ("timestamp", "datetime", "time", "ts", "date")


def parse_time(text: str) -> float:
    """UNIX seconds from ISO 8601 (naive = UTC) or a number; ValueError otherwise."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


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
        clock: object = None,
    ) -> None:
        del clock  # accepted like the live sources take it; a replay's time is the file's
        if speed < 0 or not math.isfinite(speed):
            raise ConfigError(f"speed must be >= 0 or max, got {speed}", key="speed")
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
                       limit=limit, **kwargs)
        except ConfigError as err:
            raise ConfigError(f"{err.reason} (in {url!r})", key=key) from None

    def _open(self) -> io.TextIOBase:
        try:
            if self.path.suffix == ".gz":
                return gzip.open(self.path, "rt", newline="")
            return open(self.path, newline="")  # closed in close()
        except OSError as err:
            raise SourceError(f"cannot open replay file {str(self.path)!r}: {err}") from err

    def readings(self, stop: threading.Event) -> Iterator[Reading]:
        """Yield the file's rows as Readings until the end, ``limit`` or ``stop``."""
        self._file = self._open()
        try:
            reader = csv.DictReader(self._file)
            header = reader.fieldnames or []
            tcol = self.time_column or next((c for c in TIME_COLUMNS if c in header), None)
            if tcol is None or tcol not in header:
                looked = tcol or ", ".join(TIME_COLUMNS)
                raise SourceError(f"{self.path}: no time column (looked for {looked}) in {header}")
            spec = self.value_spec or [(c, c, "") for c in header if c != tcol]
            missing = [c for c, _, _ in spec if c not in header]
            if missing:
                raise SourceError(f"{self.path}: no column(s) {missing}; the file has {header}")
            t0_data: Optional[float] = None
            t0_real = time.monotonic()
            for row in reader:
                if stop.is_set() or (self.limit is not None and self.stats.frames_ok + self.stats.frames_bad
                                     + self.stats.skipped >= self.limit):
                    return
                reading = self._row(row, tcol, spec)
                if reading is None:
                    continue
                if self.speed > 0:
                    if t0_data is None:
                        t0_data = reading.ts
                    delay = t0_real + (reading.ts - t0_data) / self.speed - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        return
                self.stats.readings += 1
                self.stats.last_reading_ts = reading.ts
                yield reading
        except (OSError, EOFError, csv.Error) as err:  # truncated gzip, unreadable file
            self.stats.last_error = f"{type(err).__name__}: {err}"
            raise SourceError(f"replay of {self.path} failed: {err}") from err
        finally:
            self.close()

    def _row(self, row: dict[str, str], tcol: str, spec: list[tuple[str, str, str]]) -> Optional[Reading]:
        self.stats.bytes_read += sum(len(v or "") for v in row.values()) + len(row)
        cells = [(row.get(col) or "").strip() for col, _, _ in spec]
        if not any(cells):
            self.stats.skipped += 1
            return None
        try:
            ts = parse_time(row.get(tcol) or "")
            values: dict[str, float] = {}
            for (_, name, _), cell in zip(spec, cells):
                if not cell:
                    continue
                value = float(cell)
                if not math.isfinite(value):
                    raise ValueError(f"{name}: not a finite number: {cell!r}")
                values[name] = value
        except ValueError as err:
            self.stats.frames_bad += 1
            self.stats.last_error = f"row {self.stats.frames_ok + self.stats.frames_bad}: {err}"
            return None
        self.stats.frames_ok += 1
        units = {name: unit for _, name, unit in spec if unit and name in values}
        return Reading(ts, self.sensor, values, units)

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
