"""Before and after, the way energy managers measure it (IPMVP conventions).

IPMVP (International Performance Measurement and Verification Protocol, EVO, "Core Concepts"
2022) asks for: a **baseline period** before the change, a **reporting period** after it, a
baseline model fitted on the first and projected over the second (the "adjusted baseline"), the
**avoided energy** = adjusted baseline - reporting-period energy, the **adjustments** stated,
and the savings' **uncertainty**.

Here the baseline model is the gateway's own per-day-type profile
(:class:`~frugalai.features.profile.DailyProfile`: per 15-min slot, weekday and weekend apart,
the median of every baseline value of that slot), fitted once on the baseline period and frozen.
Routine adjustment: none, unless a temperature series is given; then **degree-days**: the
baseline days' energy is regressed on their heating degree-days (base 18 °C, the French DJU
convention) with one intercept per day type, ``E_day = a_type + b * HDD_day``, and each window of
the adjusted baseline is the profile's value plus ``(a_type + b * HDD_day - P_type) / 24`` W,
P_type the profile's own energy for a day of that type: the profile keeps the shape of the day,
the regression carries the weather.
Uncertainty: the fractional savings uncertainty of ASHRAE Guideline 14-2014
(Annex B, Reddy & Claridge 2000), the formula IPMVP's uncertainty appendix refers to::

    FSU = t * 1.26 * CV(RMSE) * sqrt((n / n') * (1 + 2 / n) * (1 / m)) / F

taken on whole days (the model's errors are day-level: a day's weather, a day's occupancy):
n baseline days, n' = n (1 - rho) / (1 + rho) with rho the lag-1 autocorrelation of the
baseline's daily residuals, m reporting days, F = |avoided| / adjusted baseline, t for 90 %
confidence (1.645). CV(RMSE) = RMSE of the daily baseline fit (n - p degrees of freedom, p = 2
day types, + 1 slope with degree-days) over the mean baseline day. The fit of the 15-min
profile itself is reported too (its CV(RMSE), p = its slots).

Per alert: each alarm episode of the reporting period (from the flow's model and policy,
scored offline through the gateway's own code) gets its energy above (+) or below (-) the
adjusted baseline. Pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional

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


#: base temperature of heating degree-days (°C): the DJU convention of Météo-France and ADEME
HDD_BASE_C = 18.0


def degree_days(ts: FloatArray, temp_ts: FloatArray, temp_c: FloatArray, tz_offset_h: float,
                base_c: float = HDD_BASE_C) -> FloatArray:
    """Heating degree-days of the local day of each time in ``ts`` (NaN: no temperature that
    day): ``max(0, base - mean temperature of the day)``.

    >>> t = np.arange(48) * 3600.0
    >>> degree_days(np.array([0.0, 86400.0]), t, np.where(t < 86400, 8.0, 20.0), 0.0)
    array([10.,  0.])
    """
    tday = np.floor((temp_ts + tz_offset_h * 3600) / 86400).astype(np.int64)
    ok = np.isfinite(temp_c)
    days, inv = np.unique(tday[ok], return_inverse=True)
    mean = np.bincount(inv, weights=temp_c[ok]) / np.bincount(inv)
    hdd = dict(zip(days.tolist(), np.maximum(0.0, base_c - mean).tolist()))
    wday = np.floor((ts + tz_offset_h * 3600) / 86400).astype(np.int64)
    return np.array([hdd.get(d, np.nan) for d in wday.tolist()])


def _weekend(ts: FloatArray, tz_offset_h: float) -> npt.NDArray[np.bool_]:
    day = np.floor((ts + tz_offset_h * 3600) / 86400).astype(np.int64)
    return np.asarray((day + 3) % 7 >= 5)  # 1970-01-01 was a Thursday


def degree_day_adjustment(ts: FloatArray, watts: FloatArray, expected: FloatArray,
                          hdd: FloatArray, base: npt.NDArray[np.bool_], slot_s: int,
                          tz_offset_h: float) -> tuple[FloatArray, dict[str, Any]]:
    """(W to add to each window's expected power, the fit): ``E_day = a_type + b * HDD``
    fitted on the complete baseline days."""
    h = slot_s / 3600.0
    day = np.floor((ts + tz_offset_h * 3600) / 86400).astype(np.int64)
    weekend = _weekend(ts, tz_offset_h)
    per_day = 86400 // slot_s
    rows, energy = [], []
    for d in np.unique(day[base]).tolist():
        sel = base & (day == d) & np.isfinite(watts)
        if sel.sum() < per_day or not np.isfinite(hdd[sel][0]):
            continue  # only whole days with a temperature
        we = bool(weekend[sel][0])
        rows.append([0.0 if we else 1.0, 1.0 if we else 0.0, float(hdd[sel][0])])
        energy.append(float(np.sum(watts[sel])) * h)
    X = np.array(rows)
    if len(rows) < 4 or np.ptp(X[:, 2]) == 0:
        raise ConfigError("the temperature series gives fewer than 4 whole baseline days with "
                          "different degree-days: no degree-day fit", key="temperature")
    coef, *_ = np.linalg.lstsq(X, np.array(energy), rcond=None)
    slope = float(coef[2])
    # the profile's own daily energy per day type: the regression's day is spread over the
    # profile's shape, so a day of the baseline's typical weather gets back the profile itself
    profile_day = {}
    for we in (False, True):
        sel = base & (weekend == we) & np.isfinite(expected)
        profile_day[we] = float(np.mean(expected[sel])) * 24.0 if sel.any() else 0.0
    intercept = np.where(weekend, coef[1], coef[0])
    target = intercept + slope * hdd  # Wh of the day
    own = np.where(weekend, profile_day[True], profile_day[False])
    add = np.where(np.isfinite(hdd), (target - own) / 24.0, np.nan)
    hdd_b = {we: float(np.mean(X[X[:, 1] == (1.0 if we else 0.0), 2]))
             if (X[:, 1] == (1.0 if we else 0.0)).any() else 0.0 for we in (False, True)}
    return add, {"kind": "degree-days", "base_c": HDD_BASE_C, "wh_per_degree_day": slope,
                 "wh_per_day_weekday": float(coef[0]), "wh_per_day_weekend": float(coef[1]),
                 "baseline_days": len(rows), "baseline_mean_hdd": hdd_b[False],
                 "baseline_mean_hdd_weekend": hdd_b[True]}


def whole_days(ts: FloatArray, watts: FloatArray, expected: FloatArray,
               mask: npt.NDArray[np.bool_], slot_s: int, tz_offset_h: float
               ) -> tuple[FloatArray, FloatArray]:
    """(observed Wh, expected Wh) of every complete local day inside ``mask``."""
    h = slot_s / 3600.0
    day = np.floor((ts + tz_offset_h * 3600) / 86400).astype(np.int64)
    per_day = 86400 // slot_s
    obs, exp_ = [], []
    for d in np.unique(day[mask]).tolist():
        sel = mask & (day == d)
        if int(sel.sum()) == per_day:
            obs.append(float(np.sum(watts[sel])) * h)
            exp_.append(float(np.sum(expected[sel])) * h)
    return np.array(obs), np.array(exp_)


def measure(ts: FloatArray, watts: FloatArray, baseline: Period, reporting: Period,
            alarm: npt.NDArray[np.bool_], eur_per_kwh: float, slot_s: int = 900,
            tz_offset_h: float = 0.0,
            temperature: Optional[tuple[FloatArray, FloatArray]] = None) -> dict[str, Any]:
    """The M&V result: baseline fit quality, avoided energy with its uncertainty, per alert.

    ``watts``: mean power of each window (W); ``alarm``: the policy state after each window;
    ``temperature``: (times, °C) for the degree-day adjustment, else no adjustment.
    Energies are in Wh (one window = ``watts * slot_s / 3600``).
    """
    if baseline.end > reporting.start:
        raise ConfigError("the baseline period must end before the reporting period starts "
                          f"({baseline.text} vs {reporting.text})", key="baseline")
    profile = fit_baseline(ts, watts, baseline, slot_s, tz_offset_h)
    expected = predict(profile, ts)
    h = slot_s / 3600.0
    adjustment: Any = "none"
    if temperature is not None:
        hdd = degree_days(ts, temperature[0], temperature[1], tz_offset_h)
        add, adjustment = degree_day_adjustment(ts, watts, expected, hdd, baseline.mask(ts),
                                                slot_s, tz_offset_h)
        expected = expected + add
        rep_mask = reporting.mask(ts)
        adjustment["reporting_mean_hdd"] = float(np.nanmean(hdd[rep_mask])) \
            if np.isfinite(hdd[rep_mask]).any() else None
    ok = np.isfinite(watts) & np.isfinite(expected)
    b = baseline.mask(ts) & ok
    r = reporting.mask(ts) & ok
    if b.sum() < 2 or not r.any():
        raise ConfigError(f"no data in the {'baseline' if b.sum() < 2 else 'reporting'} "
                          f"period ({baseline.text if b.sum() < 2 else reporting.text})",
                          key="baseline" if b.sum() < 2 else "reporting")
    resid = watts[b] - expected[b]
    n = int(b.sum())
    p = len(profile._history.slots) + (1 if temperature is not None else 0)
    rmse = math.sqrt(float(np.sum(resid ** 2)) / max(n - p, 1))
    cv = rmse / float(np.mean(watts[b]))
    m = int(r.sum())
    adjusted_wh = float(np.sum(expected[r])) * h
    actual_wh = float(np.sum(watts[r])) * h
    avoided = adjusted_wh - actual_wh
    f = abs(avoided) / adjusted_wh if adjusted_wh else 0.0
    # the uncertainty is taken on whole days: the model's errors are day-level (a day's
    # weather, a day's occupancy), which 15-min residuals hide behind their own noise
    bo, be = whole_days(ts, watts, expected, b, slot_s, tz_offset_h)
    ro, _ = whole_days(ts, watts, expected, r, slot_s, tz_offset_h)
    unit = "days" if len(bo) >= 3 and len(ro) >= 1 else "windows"
    if unit == "days":
        u_resid, u_mean, u_p, u_m = bo - be, float(np.mean(bo)), 2 + (temperature is not None), \
            len(ro)
    else:
        u_resid, u_mean, u_p, u_m = resid, float(np.mean(watts[b])), p, m
    u_n = len(u_resid)
    u_cv = math.sqrt(float(np.sum(u_resid ** 2)) / max(u_n - u_p, 1)) / u_mean
    rho = float(np.corrcoef(u_resid[:-1], u_resid[1:])[0, 1]) \
        if u_n > 2 and np.std(u_resid) > 0 else 0.0
    rho = min(max(rho, 0.0), 0.99)
    n_eff = u_n * (1 - rho) / (1 + rho)
    spread = T_90 * ASHRAE_FACTOR * u_cv * math.sqrt((u_n / n_eff) * (1 + 2 / u_n) / u_m)
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
                     "cv_rmse": cv},
        "reporting": {"period": reporting.text, "windows": m, "actual_wh": actual_wh,
                      "adjusted_baseline_wh": adjusted_wh},
        "adjustment": adjustment,
        "avoided_wh": avoided, "avoided_eur": avoided / 1000 * eur_per_kwh,
        "avoided_fraction": avoided / adjusted_wh if adjusted_wh else 0.0,
        "uncertainty": {"confidence": 0.90, "t": T_90, "fractional": fsu,
                        "wh": spread * adjusted_wh, "on": unit, "n": u_n, "m": u_m,
                        "parameters": u_p, "cv_rmse": u_cv, "residual_autocorrelation": rho,
                        "effective_n": n_eff,
                        "significant": bool(fsu < 0.5),
                        "formula": "t x 1.26 x CV(RMSE) x sqrt((n/n') x (1 + 2/n) / m) / F"},
        "eur_per_kwh": eur_per_kwh, "slot_s": slot_s, "tz_offset_h": tz_offset_h,
        "alerts": alerts,
        "alerts_excess_wh": sum(float(x["excess_wh"]) for x in alerts if x["excess_wh"] > 0),
        "alerts_deficit_wh": sum(float(x["excess_wh"]) for x in alerts if x["excess_wh"] < 0),
    }
