"""Before and after, the way energy managers measure it (IPMVP conventions).

IPMVP (International Performance Measurement and Verification Protocol, EVO, "Core Concepts"
2022) asks for: a **baseline period** before the change, a **reporting period** after it, a
baseline model fitted on the first and projected over the second (the "adjusted baseline"), the
**avoided energy** = adjusted baseline - reporting-period energy, the **adjustments** stated,
and the savings' **uncertainty**.

Here the baseline model is the gateway's own per-day-type profile
(:class:`~frugalai.features.profile.DailyProfile`: per 15-min slot, weekday and weekend apart,
the median of every baseline value of that slot), fitted once on the baseline period and frozen.
Routine adjustment: none, unless a temperature series is given (not implemented yet: the report
says "none" and why). Uncertainty: the fractional savings uncertainty of ASHRAE Guideline 14-2014
(Annex B, Reddy & Claridge 2000), the formula IPMVP's uncertainty appendix refers to::

    FSU = t * 1.26 * CV(RMSE) * sqrt((n / n') * (1 + 2 / n) * (1 / m)) / F

n baseline windows, n' = n (1 - rho) / (1 + rho) with rho the lag-1 autocorrelation of the
baseline residuals, m reporting windows, F = |avoided| / adjusted baseline, t for 90 %
confidence (1.645, n large). CV(RMSE) = RMSE of the baseline fit (n - p degrees of freedom,
p = the profile's slots) over the baseline mean.

Per alert: each alarm episode of the reporting period (from the flow's model and policy,
scored offline through the gateway's own code) gets its energy above (+) or below (-) the
adjusted baseline. Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalai.errors import ConfigError
from frugalai.features.profile import DailyProfile

FloatArray = npt.NDArray[np.float64]
#: two-sided 90 % Student t for large n (ASHRAE 14 reports savings at 68 % or 90 %)
T_90 = 1.645
#: ASHRAE Guideline 14 empirical factor for autocorrelated hourly/sub-hourly models
ASHRAE_FACTOR = 1.26


@dataclass(frozen=True)
class Period:
    """[start, end) in UNIX seconds, with the text the user gave."""

    start: float
    end: float
    text: str

    def mask(self, ts: FloatArray) -> npt.NDArray[np.bool_]:
        return (ts >= self.start) & (ts < self.end)


def _day(text: str, key: str, end: bool) -> float:
    for fmt in ("%Y-%m-%d", "%Y-%m"):
        try:
            dt = datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        if end:  # an inclusive end: the day after, or the month after
            if fmt == "%Y-%m":
                dt = dt.replace(year=dt.year + dt.month // 12, month=dt.month % 12 + 1)
            else:
                return dt.timestamp() + 86400.0
        return dt.timestamp()
    raise ConfigError(f"expected YYYY-MM-DD or YYYY-MM, got {text!r}", key=key)


def parse_period(text: str, key: str = "baseline", tz_offset_h: float = 0.0) -> Period:
    """``START/END``, both inclusive, days or months, in the series' local time.

    >>> p = parse_period("1997-01/1997-03")
    >>> (p.end - p.start) / 86400
    90.0
    >>> parse_period("1997-04-01/1997-12-31", "reporting").text
    '1997-04-01/1997-12-31'
    """
    a, sep, b = text.partition("/")
    if not sep or not a or not b:
        raise ConfigError(f"expected START/END (e.g. 1997-01/1997-03), got {text!r}", key=key)
    start = _day(a.strip(), key, False) - tz_offset_h * 3600
    end = _day(b.strip(), key, True) - tz_offset_h * 3600
    if end <= start:
        raise ConfigError(f"the period ends before it starts: {text!r}", key=key)
    return Period(start, end, text)


def fit_baseline(ts: FloatArray, watts: FloatArray, period: Period, slot_s: int = 900,
                 tz_offset_h: float = 0.0) -> DailyProfile:
    """The per-day-type profile of the baseline period: every value kept (history = days)."""
    keep = period.mask(ts) & np.isfinite(watts)
    days = math.ceil((period.end - period.start) / 86400) + 1
    profile = DailyProfile(slot_s=slot_s, history=days, min_history=1, floor=0.0,
                           floor_rel=0.0, tz_offset_h=tz_offset_h)
    return profile.learn_many(zip(ts[keep].tolist(), watts[keep].tolist()))


def predict(profile: DailyProfile, ts: FloatArray) -> FloatArray:
    """The baseline's expected power at each time (NaN where a slot was never seen)."""
    out = np.full(len(ts), np.nan)
    for i, t in enumerate(ts.tolist()):
        e = profile.expected(t)
        if e is not None:
            out[i] = e[0]
    return out


def episodes(ts: FloatArray, alarm: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[first, last] window indexes of each run of alarmed windows.

    >>> episodes(np.arange(6.0), np.array([0, 1, 1, 0, 0, 1], dtype=bool))
    [(1, 2), (5, 5)]
    """
    out: list[tuple[int, int]] = []
    start = -1
    for i, a in enumerate(alarm.tolist()):
        if a and start < 0:
            start = i
        elif not a and start >= 0:
            out.append((start, i - 1))
            start = -1
    if start >= 0:
        out.append((start, len(alarm) - 1))
    return out


def _iso(t: float, tz_offset_h: float) -> str:
    return datetime.fromtimestamp(t + tz_offset_h * 3600, tz=timezone.utc).strftime(
        "%Y-%m-%d %H:%M")


def measure(ts: FloatArray, watts: FloatArray, baseline: Period, reporting: Period,
            alarm: npt.NDArray[np.bool_], eur_per_kwh: float, slot_s: int = 900,
            tz_offset_h: float = 0.0) -> dict[str, Any]:
    """The M&V result: baseline fit quality, avoided energy with its uncertainty, per alert.

    ``watts``: mean power of each window (W); ``alarm``: the policy state after each window.
    Energies are in Wh (one window = ``watts * slot_s / 3600``).
    """
    if baseline.end > reporting.start:
        raise ConfigError("the baseline period must end before the reporting period starts "
                          f"({baseline.text} vs {reporting.text})", key="baseline")
    profile = fit_baseline(ts, watts, baseline, slot_s, tz_offset_h)
    expected = predict(profile, ts)
    h = slot_s / 3600.0
    ok = np.isfinite(watts) & np.isfinite(expected)
    b = baseline.mask(ts) & ok
    r = reporting.mask(ts) & ok
    if b.sum() < 2 or not r.any():
        raise ConfigError(f"no data in the {'baseline' if b.sum() < 2 else 'reporting'} "
                          f"period ({baseline.text if b.sum() < 2 else reporting.text})",
                          key="baseline" if b.sum() < 2 else "reporting")
    resid = watts[b] - expected[b]
    n = int(b.sum())
    p = len(profile._history.slots)
    rmse = math.sqrt(float(np.sum(resid ** 2)) / max(n - p, 1))
    cv = rmse / float(np.mean(watts[b]))
    rho = float(np.corrcoef(resid[:-1], resid[1:])[0, 1]) if n > 2 and np.std(resid) > 0 else 0.0
    rho = min(max(rho, 0.0), 0.99)
    n_eff = n * (1 - rho) / (1 + rho)
    m = int(r.sum())
    adjusted_wh = float(np.sum(expected[r])) * h
    actual_wh = float(np.sum(watts[r])) * h
    avoided = adjusted_wh - actual_wh
    f = abs(avoided) / adjusted_wh if adjusted_wh else 0.0
    spread = T_90 * ASHRAE_FACTOR * cv * math.sqrt((n / n_eff) * (1 + 2 / n) / m)
    fsu = spread / f if f > 0 else math.inf
    alerts: list[dict[str, Any]] = []
    idx = np.flatnonzero(reporting.mask(ts))
    for a, z in episodes(ts[idx], alarm[idx]):
        sel = idx[a:z + 1]
        sel = sel[ok[sel]]
        obs = float(np.sum(watts[sel])) * h
        exp_ = float(np.sum(expected[sel])) * h
        alerts.append({"start": _iso(float(ts[idx[a]]), tz_offset_h),
                       "end": _iso(float(ts[idx[z]]) + slot_s, tz_offset_h),
                       "start_ts": float(ts[idx[a]]), "end_ts": float(ts[idx[z]]) + slot_s,
                       "windows": len(sel), "observed_wh": obs, "baseline_wh": exp_,
                       "excess_wh": obs - exp_,
                       "excess_eur": (obs - exp_) / 1000 * eur_per_kwh})
    return {
        "convention": "IPMVP (EVO, Core Concepts 2022), option C (whole meter); uncertainty: "
                      "ASHRAE Guideline 14-2014 fractional savings uncertainty",
        "model": f"per-day-type profile (weekday/weekend) x {86400 // slot_s} slots of "
                 f"{slot_s // 60} min, median of the baseline period",
        "baseline": {"period": baseline.text, "windows": n, "mean_w": float(np.mean(watts[b])),
                     "energy_wh": float(np.sum(watts[b])) * h, "parameters": p,
                     "cv_rmse": cv, "residual_autocorrelation": rho,
                     "effective_windows": n_eff},
        "reporting": {"period": reporting.text, "windows": m, "actual_wh": actual_wh,
                      "adjusted_baseline_wh": adjusted_wh},
        "adjustment": "none",
        "avoided_wh": avoided, "avoided_eur": avoided / 1000 * eur_per_kwh,
        "avoided_fraction": avoided / adjusted_wh if adjusted_wh else 0.0,
        "uncertainty": {"confidence": 0.90, "t": T_90, "fractional": fsu,
                        "wh": spread * adjusted_wh,
                        "significant": bool(fsu < 0.5),
                        "formula": "t x 1.26 x CV(RMSE) x sqrt((n/n') x (1 + 2/n) / m) / F"},
        "eur_per_kwh": eur_per_kwh, "slot_s": slot_s, "tz_offset_h": tz_offset_h,
        "alerts": alerts,
        "alerts_excess_wh": sum(float(x["excess_wh"]) for x in alerts if x["excess_wh"] > 0),
        "alerts_deficit_wh": sum(float(x["excess_wh"]) for x in alerts if x["excess_wh"] < 0),
    }
