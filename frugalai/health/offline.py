"""The gateway's sensor checks run over a recorded series: the health timeline of a CSV.

Same :class:`~frugalai.health.checks.SensorHealth` as on the gateway, fed one sample at a
time in time order (NaN samples are readings without a value: a recorded gap). What comes out
is a list of :class:`Change` (a check turning on or off, with its figure) and the episodes they
delimit; :func:`write_timeline` writes them as CSV or JSON, :func:`plot_timeline` as a PNG when
matplotlib is there.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.health.checks import FAULTS, GAP, Limits, SensorHealth


@dataclass(frozen=True)
class Change:
    """One check turning on (``on`` True) or off at ``ts``, with the figure it reported."""

    ts: float
    check: str
    on: bool
    figure: float


@dataclass(frozen=True)
class Episode:
    """A fault from ``start`` to ``end`` (NaN while still on at the end of the series)."""

    check: str
    start: float
    end: float
    figure: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}


def run_checks(ts: Iterable[float], values: Iterable[float],
               ref: Optional[Iterable[float]] = None, limits: Optional[Limits] = None
               ) -> tuple[list[Change], SensorHealth]:
    """Feed the series to one sensor's checks; return every change and the final state.

    A gap is reported by the reading after it: its change is dated when it began (the last
    reading, plus ``gap_periods`` periods: when the live gateway would have said so).
    """
    health = SensorHealth(limits)
    gap_after = health.limits.gap_periods
    out: list[Change] = []
    refs: Iterable[float] = ref if ref is not None else _nans()
    for t, x, r in zip(ts, values, refs):
        last = health.last_ts
        changed = health.update(float(t), float(x), float(r))
        if not changed:
            continue
        if changed & GAP:
            out.append(Change(last + gap_after * health.period, "gap", True, health.figure))
            out.append(Change(float(t), "gap", False, health.figure))
            changed &= ~GAP
        for i, name in enumerate(FAULTS):
            if changed >> i & 1:
                out.append(Change(float(t), name, bool(health.faults >> i & 1), health.figure))
    return out, health


def _nans() -> Iterable[float]:
    while True:
        yield math.nan


def episodes(changes: Sequence[Change]) -> list[Episode]:
    """Pair each check's on/off changes into episodes (in order of start)."""
    open_: dict[str, Change] = {}
    out: list[Episode] = []
    for c in changes:
        if c.on:
            open_.setdefault(c.check, c)
        elif c.check in open_:
            start = open_.pop(c.check)
            out.append(Episode(c.check, start.ts, c.ts, start.figure))
    out += [Episode(c.check, c.ts, math.nan, c.figure) for c in open_.values()]
    return sorted(out, key=lambda e: (e.start, e.check))


def write_timeline(path: Union[str, Path], eps: Sequence[Episode],
                   summary: Optional[dict[str, Any]] = None) -> Path:
    """The episodes as CSV (``.csv``) or JSON (anything else, with ``summary``)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["check", "start_utc", "end_utc", "start", "end", "figure"])
            for e in eps:
                w.writerow([e.check, _iso(e.start), _iso(e.end), e.start,
                            "" if math.isnan(e.end) else e.end, f"{e.figure:.6g}"])
    else:
        doc = {"summary": summary or {}, "episodes": [e.as_dict() for e in eps]}
        path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def _iso(t: float) -> str:
    if math.isnan(t):
        return ""
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def summarize(changes: Sequence[Change], health: SensorHealth, first: float, last: float,
              samples: int, valid: int) -> dict[str, Any]:
    """Counts per check, the series' span and completeness, the measured noise."""
    eps = episodes(changes)
    span = max(last - first, 0.0)
    expected = span / health.period + 1 if health.period == health.period and span else valid
    per = {name: {"episodes": sum(e.check == name for e in eps),
                  "hours": round(sum(((e.end if not math.isnan(e.end) else last) - e.start)
                                     for e in eps if e.check == name) / 3600.0, 2)}
           for name in FAULTS}
    return {"first": _iso(first), "last": _iso(last), "samples": samples, "valid": valid,
            "period_s": round(health.period, 3),
            "completeness": round(valid / expected, 4) if expected else None,
            "noise": round(health.noise(), 6), "faults_at_end": [n for i, n in enumerate(FAULTS)
                                                                 if health.faults >> i & 1],
            "checks": per}


def plot_timeline(path: Union[str, Path], ts: Sequence[float], values: Sequence[float],
                  eps: Sequence[Episode], title: str = "") -> Optional[Path]:
    """A PNG of the series with its fault episodes shaded; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import datetime as dt

    def d(t: float) -> Any:  # matplotlib takes datetimes where its stubs say float
        return dt.datetime.fromtimestamp(t, dt.timezone.utc)

    fig, ax = plt.subplots(figsize=(12, 4))
    ax.plot([d(t) for t in ts], values, lw=0.6, color="0.2")
    colors = dict(zip(FAULTS, ("tab:gray", "tab:red", "tab:purple", "tab:orange", "tab:olive",
                               "tab:blue", "tab:cyan", "tab:brown")))
    seen: set[str] = set()
    for e in eps:
        end = e.end if not math.isnan(e.end) else ts[-1]
        ax.axvspan(d(e.start), d(max(end, e.start + 1800)), color=colors[e.check], alpha=0.3,
                   label=None if e.check in seen else e.check)
        seen.add(e.check)
    if seen:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
