"""One way to read a user's data for train, evaluate and score: the same options everywhere
(``--time-col --value-col --time-format --tz --start --end``), the bundle's card filling in
what the user left out, and a record of where each value came from.

Why a module of its own: the three commands used to read the same CSV three ways, and
``evaluate``/``score`` read naive times as UTC whatever zone the bundle was trained in (on a
gauge stamped in UTC-5 the rule's episode F1 came out 0.044 instead of 0.742, exit 0). Here the
zone is resolved once -- ``--tz``, else the card's, else UTC with a warning when the file has
naive times -- and :class:`Resolved` carries ``origins`` (value -> where it came from) and
``warnings`` for the command to print on stderr and put in its JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.features.localtime import card_zone
from frugalai.learn.csvio import DataError, Points, parse_tz, parse_when, read_points, tz_label


@dataclass(frozen=True)
class DataOptions:
    """The reading options as the user typed them (None = not given)."""

    time_col: Optional[str] = None
    value_col: Optional[str] = None
    time_format: Optional[str] = None
    tz: Optional[str] = None
    start: Optional[str] = None
    end: Optional[str] = None


@dataclass
class Resolved:
    """The options in force, where each came from, and what the user should know."""

    zone: tzinfo
    time_col: Optional[str]
    value_col: Optional[str]
    time_format: Optional[str]
    start: Optional[float]
    end: Optional[float]
    origins: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        """JSON-ready: each option's value and origin."""
        def iso(t: Optional[float]) -> Optional[str]:
            return None if t is None else datetime.fromtimestamp(
                t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

        values = {"tz": tz_label(self.zone), "time_col": self.time_col,
                  "value_col": self.value_col, "time_format": self.time_format,
                  "start_utc": iso(self.start), "end_utc": iso(self.end)}
        out: dict[str, Any] = {
            k: {"value": v, "from": self.origins.get(k.replace("_utc", ""), "not given")}
            for k, v in values.items()}
        for k, origin in self.origins.items():
            if k not in out and f"{k}_utc" not in out:
                out[k] = {"from": origin}
        return out


def card_columns(card: dict[str, Any]) -> dict[str, str]:
    """The time and value columns the bundle was trained on, when the card names them."""
    data = card.get("data") or {}
    out = {}
    if data.get("time_col"):
        out["time_col"] = str(data["time_col"])
    value = data.get("value_col") or data.get("level_col")
    if value:
        out["value_col"] = str(value)
    return out


def resolve(opts: DataOptions, card: Optional[dict[str, Any]] = None) -> Resolved:
    """The options in force: the user's, else the card's, else the reader's guess."""
    origins: dict[str, str] = {}
    warnings: list[str] = []
    from_card = card_zone(card) if card is not None else None
    if opts.tz is not None:
        zone = parse_tz(opts.tz)
        origins["tz"] = "--tz"
        if from_card is not None:
            theirs = parse_tz(from_card[0])
            probes = (datetime(2001, 1, 15), datetime(2001, 7, 15))
            if tz_label(theirs) != tz_label(zone) and any(
                    theirs.utcoffset(p) != zone.utcoffset(p) for p in probes):
                warnings.append(f"--tz {opts.tz} differs from the bundle's zone "
                                f"{tz_label(theirs)} ({from_card[1]}): naive times are read "
                                f"in {opts.tz}")
    elif from_card is not None:
        zone = parse_tz(from_card[0])
        origins["tz"] = from_card[1]
    else:
        zone = timezone.utc
        origins["tz"] = "default (UTC)"
    cols = card_columns(card) if card is not None else {}
    time_col, value_col = opts.time_col, opts.value_col
    origins["time_col"] = "--time-col" if time_col else (
        (cols.get("time_col") and "card data.time_col") or "guessed")
    origins["value_col"] = "--value-col" if value_col else (
        (cols.get("value_col") and "card data.value_col") or "guessed")
    time_col = time_col or cols.get("time_col")
    value_col = value_col or cols.get("value_col")
    origins["time_format"] = "--time-format" if opts.time_format else "ISO 8601 or UNIX seconds"
    start = parse_when(opts.start, zone, "--start") if opts.start else None
    end = parse_when(opts.end, zone, "--end") if opts.end else None
    if start is not None:
        origins["start"] = "--start"
    if end is not None:
        origins["end"] = "--end"
    if start is not None and end is not None and end <= start:
        raise DataError(f"--end {opts.end} is not after --start {opts.start}")
    return Resolved(zone, time_col, value_col, opts.time_format, start, end, origins, warnings)


def read(path: Union[str, Path], res: Resolved) -> tuple[Points, Resolved]:
    """The file's points under ``res``; columns the card named but this file lacks fall back
    to the reader's guess (and ``origins`` says so). Adds the reader's warnings, and one when
    naive times were read as UTC for want of a zone."""
    name = Path(path).name
    try:
        pts = read_points(path, res.time_col, res.value_col, res.time_format, res.zone)
    except DataError as err:
        from_card = [k for k in ("time_col", "value_col") if res.origins[k].startswith("card")]
        if not from_card or "no column" not in str(err):
            raise
        for k in from_card:
            res.origins[k] = f"guessed (the card's {getattr(res, k)!r} is not in {name})"
            setattr(res, k, None)
        pts = read_points(path, res.time_col, res.value_col, res.time_format, res.zone)
    res = replace(res, time_col=pts.time_col, value_col=pts.value_col,
                  warnings=[*res.warnings, *pts.warnings(name)])
    if pts.unix_seconds:
        res.origins["time_format"] = "UNIX seconds (recognised)"
    if pts.naive_rows and res.origins.get("tz") == "default (UTC)":
        res.warnings.append(f"{name}: {pts.naive_rows} time(s) without a zone read as UTC: "
                            f"give --tz (e.g. -05:00 or Europe/Paris) if the file is local time")
    if (res.start is not None and res.start > pts.ts[-1]) or (
            res.end is not None and res.end < pts.ts[0]):
        raise DataError(f"{name}: --start/--end select no row (data "
                        f"{_iso(float(pts.ts[0]))} to {_iso(float(pts.ts[-1]))})")
    return pts, res


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
