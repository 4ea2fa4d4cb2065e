"""A sensor's field record: day figures kept by the gateway, and what they say against its data
sheet. Pure: the file is read and written by :mod:`frugalai.health.store`.

The gateway never keeps raw readings. Per sensor and UTC day it keeps one small row
(:class:`Day`): readings received and expected, seconds in each fault, fault onsets, the
mean residual against the reference (or the mean value) and the measured noise. A year is a
few tens of kilobytes; from it :func:`field_report` computes completeness, uptime, mean time
between failures, gaps, noise and drift per year with its confidence, each "kept / not kept"
against the ``spec``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from frugalai.health.checks import FAULTS

DAY_S = 86400.0
YEAR_S = 365.25 * DAY_S


@dataclass
class Day:
    """One sensor's figures for one UTC day (``day`` = days since 1970-01-01)."""

    day: int
    readings: int = 0
    expected: float = 0.0
    mean: float = math.nan
    noise: float = math.nan
    fault_s: dict[str, float] = field(default_factory=dict)
    onsets: dict[str, int] = field(default_factory=dict)
    #: times of the day's first and last readings
    first: float = math.nan
    last: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("mean", "noise", "first", "last"):
            if isinstance(d[k], float) and math.isnan(d[k]):
                d[k] = None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Day:
        return cls(int(d["day"]), int(d.get("readings", 0)), float(d.get("expected", 0.0)),
                   math.nan if d.get("mean") is None else float(d["mean"]),
                   math.nan if d.get("noise") is None else float(d["noise"]),
                   {str(k): float(v) for k, v in (d.get("fault_s") or {}).items()},
                   {str(k): int(v) for k, v in (d.get("onsets") or {}).items()},
                   math.nan if d.get("first") is None else float(d["first"]),
                   math.nan if d.get("last") is None else float(d["last"]))


class DayBook:
    """Builds the :class:`Day` rows of one sensor from its readings and fault changes.

    ``reading(ts, residual, faults)`` per reading (cheap: sums), ``change(ts, mask_before,
    mask_after)`` when a check changes; a finished day is appended to :attr:`days`.
    """

    def __init__(self, period_s: float = math.nan,
                 noise: Optional[Callable[[], float]] = None) -> None:
        self.days: list[Day] = []
        self.period_s = period_s
        #: the sensor's measured noise, asked once per day (at its close)
        self.noise = noise
        self._cur: Optional[Day] = None
        self._sum = 0.0
        self._n = 0
        self._faults = 0
        self._since = math.nan

    def _day(self, ts: float) -> Day:
        d = int(ts // DAY_S)
        cur = self._cur
        if cur is None or cur.day != d:
            if cur is not None:
                self._close(cur, (cur.day + 1) * DAY_S)
            cur = self._cur = Day(d)
            self._sum, self._n = 0.0, 0
        return cur

    def _account(self, ts: float) -> None:
        """Fault time up to ``ts`` into the current day."""
        cur = self._cur
        if cur is None or not self._faults or self._since != self._since:
            self._since = ts
            return
        dt = max(0.0, ts - self._since)
        for i, name in enumerate(FAULTS):
            if self._faults >> i & 1:
                cur.fault_s[name] = cur.fault_s.get(name, 0.0) + dt
        self._since = ts

    def _close(self, cur: Day, end: float) -> None:
        self._account(end)
        cur.mean = self._sum / self._n if self._n else math.nan
        if self.period_s == self.period_s and self.period_s > 0:
            cur.expected = DAY_S / self.period_s
        if self.noise is not None:
            cur.noise = self.noise()
        self.days.append(cur)

    def reading(self, ts: float, residual: float) -> None:
        """One reading (its residual against the reference, or its value): sums only."""
        cur = self._cur
        if cur is None or cur.day != ts // DAY_S:
            cur = self._day(ts)
        if self._faults:
            self._account(ts)
        else:
            self._since = ts
        cur.readings += 1
        if cur.first != cur.first:
            cur.first = ts
        cur.last = ts
        if residual == residual:
            self._sum += residual
            self._n += 1

    def change(self, ts: float, faults: int, pulse_s: float = 0.0) -> None:
        """The fault mask is now ``faults``; ``pulse_s``: a gap that began and ended (its
        length), reported by the reading after it."""
        cur = self._day(ts)
        self._account(ts)
        new = faults & ~self._faults
        for i, name in enumerate(FAULTS):
            if new >> i & 1:
                cur.onsets[name] = cur.onsets.get(name, 0) + 1
        if pulse_s > 0:
            cur.onsets["gap"] = cur.onsets.get("gap", 0) + 1
            cur.fault_s["gap"] = cur.fault_s.get("gap", 0.0) + pulse_s
        self._faults = faults

    def close(self, now: float) -> None:
        """Close the current day at ``now`` (a stop): its row is ready to flush, and a later
        reading of the same day starts a new row (the file sums them)."""
        cur = self._cur
        if cur is not None:
            self._close(cur, now)
            self._cur = None
            self._sum, self._n = 0.0, 0

    def flush(self) -> list[Day]:
        """The finished days since the last flush (and forget them)."""
        out, self.days = self.days, []
        return out


def drift_per_year(ts: Sequence[float], residual: Sequence[float]) -> dict[str, Any]:
    """The linear drift of a residual (per year, value unit) with a 95 % interval, from its day
    means (:func:`slope_per_year`).

    >>> ts = [i * 3600.0 for i in range(24 * 200)]
    >>> round(drift_per_year(ts, [t / 365.25 / 86400 * 0.2 for t in ts])["per_year"], 4)
    0.2
    """
    sums: dict[int, list[float]] = {}
    for t, r in zip(ts, residual):
        if r == r:
            s = sums.setdefault(int(t // DAY_S), [0.0, 0.0])
            s[0] += r
            s[1] += 1
    days = sorted(sums)
    return slope_per_year([d + 0.5 for d in days], [sums[d][0] / sums[d][1] for d in days])


#: days per block for the interval: a tide gauge's day means are not independent (weather
#: surges last days; at Providence the lag-1 correlation of day means is 0.5, and still 0.1-0.15
#: at 10-90 days), so the scatter is judged on fortnight means
BLOCK_DAYS = 15.0
#: Student's t, 97.5 % quantile, for 1-4 degrees of freedom (beyond: Cornish-Fisher)
_T975 = (12.706, 4.303, 3.182, 2.776)


def t975(dof: float) -> float:
    """Student's t 97.5 % quantile (two-sided 95 %), within 0.5 % for dof >= 3.

    >>> round(t975(10), 2), round(t975(1e9), 2)
    (2.23, 1.96)
    """
    if dof < 4.5:
        return _T975[max(0, min(3, round(dof) - 1))]
    z = 1.959964
    return z + (z ** 3 + z) / 4 / dof + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96 / dof ** 2


def _ols(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, list[float]]:
    """Slope, sum of squares of x about its mean, residuals."""
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx > 0 else math.nan
    return b, sxx, [y - my - b * (x - mx) for x, y in zip(xs, ys)]


def slope_per_year(days: Sequence[float], means: Sequence[float],
                   block_days: float = BLOCK_DAYS) -> dict[str, Any]:
    """Least-squares slope of day means (x in days) per year, with its 95 % interval.

    The slope is ordinary least squares on the day means (for a linear trend in stationary
    noise it is as efficient as generalized least squares, Grenander 1954: nothing to gain
    from modelling the persistence). The interval is not taken from the day means as if they
    were independent: their residuals are averaged over ``block_days`` blocks, the slope's
    standard error taken from those block means, widened by their own lag-1 correlation
    (effective sample size ``n (1-r)/(1+r)``), with Student's t on that many points. On
    200-day windows of the clean Providence record (true slope 0) it holds the truth in
    about 85 % of windows, not 95 %: persistence of months to years (mean sea level) cannot
    be seen inside one window (benchmarks/results/sensor_health.md).
    """
    pairs = [(d, m) for d, m in zip(days, means) if m == m]
    n = len(pairs)
    if n < 10:
        return {"per_year": None, "ci95": None, "days": n}
    b, sxx, res = _ols([d for d, _ in pairs], [m for _, m in pairs])
    if sxx <= 0:
        return {"per_year": None, "ci95": None, "days": n}
    # block means of the residuals
    d0 = pairs[0][0]
    blocks: dict[int, list[float]] = {}
    for (d, _), e in zip(pairs, res):
        acc = blocks.setdefault(int((d - d0) // block_days), [0.0, 0.0, 0.0])
        acc[0] += d
        acc[1] += e
        acc[2] += 1.0
    keys = sorted(blocks)
    bx = [blocks[k][0] / blocks[k][2] for k in keys]
    be = [blocks[k][1] / blocks[k][2] for k in keys]
    nb = len(keys)
    if nb < 5:  # under 75 days: the day means, lag-1 corrected
        bx, be, nb = [d for d, _ in pairs], res, n
    _, bsxx, eb = _ols(bx, be)  # the block residuals about their own line
    var = sum(e * e for e in eb) / (nb - 2)
    den = sum(e * e for e in eb)
    rho = sum(a * c for a, c in zip(eb, eb[1:])) / den if den > 0 else 0.0
    rho = max(0.0, min(0.95, rho))
    n_eff = max(3.0, nb * (1 - rho) / (1 + rho))
    se = math.sqrt(var / bsxx * nb / n_eff) if bsxx > 0 else math.nan
    return {"per_year": round(b * 365.25, 5),
            "ci95": round(t975(n_eff - 2.0) * se * 365.25, 5), "days": n}


def field_report(days: Sequence[Day], spec: dict[str, Any], period_s: float = math.nan
                 ) -> dict[str, Any]:
    """One sensor's field performance from its day rows, against its data sheet.

    Returns a dict with the figures and ``lines``: (figure, measured, promised, kept) where
    kept is True, False, or None when the data sheet says nothing or the record is too short.
    """
    days = sorted(days, key=lambda d: d.day)
    if not days:
        return {"days": 0, "lines": []}
    span_s = (days[-1].day - days[0].day + 1) * DAY_S
    readings = sum(d.readings for d in days)
    period = float(spec.get("period_s") or period_s or math.nan)
    first = min((d.first for d in days if d.first == d.first), default=math.nan)
    last = max((d.last for d in days if d.last == d.last), default=math.nan)
    if first == first and last == last and period == period:
        span_s = max(last - first + period, period)  # from the first reading to the last
    expected = span_s / period if period == period and period > 0 else math.nan
    completeness = readings / expected if expected == expected and expected else math.nan
    fault_s = {name: sum(d.fault_s.get(name, 0.0) for d in days) for name in FAULTS}
    onsets = {name: sum(d.onsets.get(name, 0) for d in days) for name in FAULTS}
    # a failure: the sensor stops telling the truth (gap, stuck, out of range, drift)
    failing = ("gap", "stuck", "range", "drift")
    down_s = min(span_s, sum(fault_s[k] for k in failing))
    failures = sum(onsets[k] for k in failing)
    uptime = 1.0 - down_s / span_s
    mtbf_h = (span_s - down_s) / failures / 3600.0 if failures else math.nan
    noises = sorted(d.noise for d in days if d.noise == d.noise)
    noise = noises[len(noises) // 2] if noises else math.nan
    drift = slope_per_year([d.day + 0.5 for d in days], [d.mean for d in days])
    lines: list[tuple[str, str, str, Optional[bool]]] = []
    lines.append(("completeness", _pct(completeness), "100 %" if period == period else "-",
                  None if completeness != completeness else completeness >= 0.99))
    lines.append(("uptime", _pct(uptime), "-", None))
    lines.append(("MTBF", "none failed" if failures == 0 else f"{mtbf_h:.0f} h", "-", None))
    lines.append(("gaps", f"{onsets['gap']} ({fault_s['gap'] / 3600:.1f} h)", "-", None))
    acc = spec.get("accuracy")
    lines.append(("noise (1 sigma)", _num(noise), "-" if acc is None else f"<= {acc:g}",
                  None if acc is None or noise != noise else noise <= float(acc)))
    dpy = spec.get("drift_per_year")
    per_year, ci = drift["per_year"], drift["ci95"]
    measured = "too short" if per_year is None else f"{per_year:+.4g} +- {ci:.2g} /year"
    kept: Optional[bool] = None
    if dpy is not None and per_year is not None and days[-1].day - days[0].day >= 60:
        if abs(per_year) - ci > float(dpy):
            kept = False  # beyond the promise even at the favourable end of the interval
        elif abs(per_year) + ci <= float(dpy):
            kept = True
    lines.append(("drift", measured, "-" if dpy is None else f"<= {dpy:g} /year", kept))
    rng = spec.get("range")
    lines.append(("out of range", f"{onsets['range']} time(s)",
                  "-" if not rng else f"[{rng[0]:g}, {rng[1]:g}]",
                  None if not rng else onsets["range"] == 0))
    lines.append(("stuck", f"{onsets['stuck']} time(s)", "never", onsets["stuck"] == 0))
    return {"days": len(days), "first_day": days[0].day, "last_day": days[-1].day,
            "readings": readings, "completeness": completeness, "uptime": uptime,
            "mtbf_h": mtbf_h, "failures": failures, "noise": noise, "drift": drift,
            "fault_s": fault_s, "onsets": onsets, "lines": lines}


def _pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.2f} %"


def _num(x: float) -> str:
    return "-" if x != x else f"{x:.4g}"
