"""The impact sections' data, computed from real records through the gateway's own code.

- :func:`energy_impact`: a meter's record, read as the flow would window it, scored by the
  flow's model and policy (:func:`frugalai.learn.offline.score_series`), measured IPMVP-style
  (:func:`frugalai.report.mv.measure`).
- :func:`coast_seasons`: a gauge's record, scored by the coastal model and by the physical
  rule on the same hours (:mod:`frugalai.learn.coastal`), counted per season: floods, alerts
  issued, warned, missed, false, lead time. Episodes are counted as the card counts them
  (:func:`frugalai.learn.coastal._events`: a flood warned up to 3 hours before it; an alert
  is false when no flood is within those hours); each episode belongs to the season it starts
  in (meteorological seasons, the gauge's local time).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from frugalai.report import mv
from frugalai.runtime.model import BundleModel

SEASONS = ("DJF", "MAM", "JJA", "SON")
_SEASON_OF_MONTH = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM", 6: "JJA",
                    7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}
SLACK_H = 3
LEAD_WINDOW_H = 12


def energy_impact(model: BundleModel, data: Path, baseline: str, reporting: str,
                  eur_per_kwh: float, watts_per_unit: float = 1.0,
                  value_col: Optional[str] = None,
                  temperature: Optional[Path] = None) -> dict[str, Any]:
    """IPMVP measurement of ``data`` (a meter CSV: time and power columns); ``temperature``
    (a CSV: time and °C) adds the degree-day adjustment."""
    from frugalai.learn.csvio import read_points
    from frugalai.learn.offline import read_for_bundle, score_series

    params = model.card.get("features", {}).get("params", {})
    tz = float(params.get("tz_offset_h", 0.0))
    slot = int(params.get("slot_s", 900))
    series = read_for_bundle(model, data, value_col=value_col)
    scored = score_series(model, series)
    b = mv.parse_period(baseline, "baseline", tz)
    r = mv.parse_period(reporting, "reporting", tz)
    temp = None
    if temperature is not None:
        pts = read_points(temperature, None, None, None, "UTC")  # naive times as the meter's
        temp = (pts.ts, pts.values)
    out = mv.measure(scored.ts, scored.values * watts_per_unit, b, r, scored.alarm, eur_per_kwh,
                     slot, tz, temp)
    out.update({"data": str(data), "watts_per_unit": watts_per_unit, "model": model.name,
                "policy": scored.extra.get("policy")})
    return out


def _season(t: float, tz_offset_h: float) -> str:
    return _SEASON_OF_MONTH[datetime.fromtimestamp(t + tz_offset_h * 3600, tz=timezone.utc).month]


def season_counts(ts: npt.NDArray[np.float64], level_minus_thr: npt.NDArray[np.float64],
                  y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], tz_offset_h: float
                  ) -> dict[str, dict[str, Any]]:
    """Per season: floods (episodes of flood-class hours), alerts issued (episodes of flood
    predictions), warned, missed, false, and the median lead time (hours from the first alert
    within 12 h before the level reaches the threshold)."""
    from frugalai.learn.coastal import _runs

    truth, alert = y == 2, pred == 2
    out: dict[str, dict[str, Any]] = {
        s: {"floods": 0, "warned": 0, "missed": 0, "alerts": 0, "false": 0} for s in SEASONS}
    leads: dict[str, list[float]] = {s: [] for s in SEASONS}
    widened = np.zeros(len(truth) + SLACK_H, dtype=bool)
    for a, b in _runs(truth):
        widened[max(0, a - SLACK_H):b + SLACK_H] = True
        row = out[_season(float(ts[a]), tz_offset_h)]
        row["floods"] += 1
        hit = bool(alert[max(0, a - SLACK_H):b].any())
        row["warned" if hit else "missed"] += 1
    for a, b in _runs(alert):
        row = out[_season(float(ts[a]), tz_offset_h)]
        row["alerts"] += 1
        if not widened[a:b].any():
            row["false"] += 1
    for a, _ in _runs(level_minus_thr >= 0):
        near = np.where((ts >= ts[a] - LEAD_WINDOW_H * 3600) & (ts <= ts[a]) & alert)[0]
        if len(near):
            leads[_season(float(ts[a]), tz_offset_h)].append(float(ts[a] - ts[near[0]]) / 3600)
    for season, row in out.items():
        row["median_lead_h"] = float(np.median(leads[season])) if leads[season] else None
    return out


def coast_seasons(model: BundleModel, data: Path, years: Optional[tuple[int, int]] = None
                  ) -> dict[str, Any]:
    """Per-season flood warnings of the model and the rule on a gauge's record: a directory
    holding the Providence files (then the card's validation years, never its training
    years), or one level CSV (all of it)."""
    from frugalai.features.coastal import CoastalFeatures
    from frugalai.features.tide import Tide
    from frugalai.learn import coastal as lc
    from frugalai.learn.data import PROVIDENCE_UTC_OFFSET_H, Series, load_providence, read_level_csv

    spec = model.card["features"]
    p = spec["params"]
    tz = PROVIDENCE_UTC_OFFSET_H
    if data.is_dir():
        series = load_providence(data)
        a, b = years or tuple(model.card["data"]["valid_years"])
        keep = (series.ts >= lc.year_start(a) - 86400) & (series.ts < lc.year_start(b + 1))
        series = Series(series.ts[keep], series.values[keep], None, series.source)
        start, period = lc.year_start(a), f"{a}-{b}"
    else:
        series = read_level_csv(data)
        tz = 0.0
        start, period = -math.inf, data.name
    feats = CoastalFeatures(Tide.from_dict(spec["tide"]), p["threshold_m"], p["horizon_h"])
    ts, X = feats.transform_many(series.ts, series.values)
    y = lc.labels_for(ts, series, p["threshold_m"], p["horizon_h"], p["watch_margin_m"])
    ok = (y >= 0) & (ts >= start)
    ts, X, y = ts[ok], X[ok], y[ok]
    preds = {"model": np.asarray(model.predict_many(X), dtype=np.int64),
             "rule": lc.baseline(X, int(p["horizon_h"]), float(p["watch_margin_m"]))}
    decision = model.card.get("decision", {})
    return {
        "data": str(data), "period": period, "hours": len(ts),
        "threshold_m": float(p["threshold_m"]), "horizon_h": int(p["horizon_h"]),
        "seasons": {k: season_counts(ts, X[:, 0], y, pred, tz) for k, pred in preds.items()},
        "decision": decision.get("default", "model"), "why": decision.get("why", ""),
        "definition": f"a flood = a run of hours whose level within the next "
                      f"{int(p['horizon_h'])} h reaches {p['threshold_m']} m; warned when an "
                      f"alert falls in it or up to {SLACK_H} h before; an alert is false when no "
                      f"flood is within {SLACK_H} h; lead = hours from the first alert within "
                      f"{LEAD_WINDOW_H} h before the level reaches the threshold",
    }
