"""Labelled windows a user gives to ``evaluate`` and ``score``, parsed strictly and checked
against the data they label.

A window list is the truth a recall and a lead time are computed from: a wrong one gives a
wrong figure with exit 0, the worst outcome. So every window time must be an ISO 8601 date or
datetime (a number such as ``950`` or a day of the year is refused, not read as 1970), a
window must end after it starts, lie at least partly inside the data's span, and not overlap
another; and the whole set must cover some but not most of the data. Each failure is one
line naming the window (:class:`~frugalai.learn.csvio.DataError`, exit 2 at the CLI).

Formats: JSON ``[[start, end], ...]``; NAB's ``combined_windows.json`` (``{"dir/file.csv":
[[start, end], ...]}``, the entry whose file name is the data's); a CSV whose first two
columns are start and end (a header row is allowed). Naive times are in the data's zone.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.features.localtime import is_named
from frugalai.learn.csvio import DataError, read_text

#: Labels covering more than this share of the data's span are refused (not anomalies).
MAX_COVER = 0.5
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?)?"
                  r"(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class Windows:
    """Checked windows (UNIX seconds, sorted) and where they came from."""

    spans: list[tuple[float, float]]
    source: str
    fmt: str
    cover: float  # share of the data's span inside a window

    def describe(self) -> str:
        return (f"{len(self.spans)} window(s) from {self.source} ({self.fmt}), covering "
                f"{self.cover:.1%} of the data's span")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _when(text: Any, zone: tzinfo, where: str) -> float:
    s = str(text).strip()
    if not isinstance(text, str) or not _ISO.match(s):
        hint = (" (a number: a day of the year, an index or a value? window times are dates)"
                if re.fullmatch(r"[+-]?\d+([.,]\d+)?", s) else "")
        raise DataError(f"{where}: {s[:40]!r} is not an ISO 8601 date or datetime{hint}")
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
        if is_named(zone):
            back = dt.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None)
            if back != dt.replace(tzinfo=None):
                raise DataError(f"{where}: {s!r} does not exist in {zone} (DST gap)")
    return dt.timestamp()


def _pairs_json(doc: Any, name: str, data_name: str) -> tuple[list[Any], str]:
    fmt = "JSON list"
    if isinstance(doc, dict):
        hits = [k for k in doc if Path(k).name == Path(data_name).name]
        if not hits:
            raise DataError(f"{name}: no entry for {Path(data_name).name!r} (NAB layout: keys "
                            f"are the data files' names, e.g. {next(iter(doc), '?')!r})")
        doc, fmt = doc[hits[0]], "NAB windows"
    if not isinstance(doc, list):
        raise DataError(f"{name}: expected a list of [start, end] windows")
    for i, w in enumerate(doc):
        if isinstance(w, str):
            raise DataError(f"{name}: window {i + 1} is one time {w!r}, not [start, end] (NAB's "
                            f"combined_labels.json holds points; give combined_windows.json)")
        if not isinstance(w, (list, tuple)) or len(w) != 2:
            raise DataError(f"{name}: window {i + 1} is {json.dumps(w)[:60]}, not [start, end]")
    return list(doc), fmt


def _pairs_csv(text: str, name: str) -> list[Any]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    delim = ";" if lines and lines[0].count(";") > lines[0].count(",") else ","
    rows = list(csv.reader(lines, delimiter=delim))
    if rows and not _ISO.match(rows[0][0].strip()):
        rows = rows[1:]  # a header
    pairs = []
    for i, r in enumerate(rows):
        if len(r) < 2:
            raise DataError(f"{name}: row {i + 1} has {len(r)} column(s); a window is start, end")
        if len(r) > 2 and any(c.strip() for c in r[2:]):
            raise DataError(f"{name}: row {i + 1} has {len(r)} columns; a labels CSV has two "
                            f"(start, end)")
        pairs.append([r[0], r[1]])
    return pairs


def read_windows(path: Union[str, Path], data_path: Union[str, Path], zone: tzinfo,
                 span: Optional[tuple[float, float]] = None) -> Windows:
    """The checked windows of ``path`` for the data file ``data_path`` whose times span
    ``span`` (UNIX s; None skips the span checks)."""
    path, data_path = Path(path), Path(data_path)
    if path.resolve() == data_path.resolve():
        raise DataError(f"--labels {path.name} is the data file itself; give the windows file")
    text, _ = read_text(path)
    name = path.name
    head = text.lstrip()[:1]
    if path.suffix.lower() == ".json" or head in ("[", "{"):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{name}: not valid JSON ({err.msg} at line {err.lineno})") from None
        raw, fmt = _pairs_json(doc, name, data_path.name)
    else:
        raw, fmt = _pairs_csv(text, name), "CSV"
    if not raw:
        raise DataError(f"{name}: no window for {data_path.name}: nothing to find (a recall "
                        f"needs at least one labelled window)")
    spans = []
    for i, (a, b) in enumerate(raw):
        where = f"{name}: window {i + 1}"
        ta, tb = _when(a, zone, where), _when(b, zone, where)
        if tb <= ta:
            raise DataError(f"{where} ends ({b}) before it starts ({a})")
        spans.append((ta, tb))
    spans.sort()
    for (a0, b0), (a1, b1) in zip(spans, spans[1:]):
        if a1 < b0:
            raise DataError(f"{name}: windows {_iso(a0)}..{_iso(b0)} and {_iso(a1)}..{_iso(b1)} "
                            f"overlap")
    cover = 0.0
    if span is not None:
        first, last = span
        for a, b in spans:
            if b < first or a > last:
                raise DataError(f"{name}: window {_iso(a)}..{_iso(b)} lies outside the data "
                                f"({_iso(first)} to {_iso(last)}): wrong file, or wrong --tz?")
        inside = sum(min(b, last) - max(a, first) for a, b in spans)
        cover = inside / max(last - first, 1.0)
        if cover > MAX_COVER:
            raise DataError(f"{name}: the windows cover {cover:.0%} of the data's span; labels "
                            f"mark the exceptions (at most {MAX_COVER:.0%}): wrong file?")
    return Windows(spans, name, fmt, cover)
