"""Offline scoring and evaluation of any bundle on a user's CSV, through the gateway's own code.

The CSV becomes windows exactly as a flow cuts them (:class:`~frugalai.features.window.
WindowAggregator` for meters, the nearest sample to each hour for gauges); each window goes
through the same scorer a flow builds (:mod:`frugalai.runtime.scorers`) and the card's policy
(:class:`~frugalai.events.policy.Hysteresis`), so what ``frugalai score`` prints is what the
gateway would have sent. Nothing here needs scikit-learn.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import numpy.typing as npt

from frugalai.errors import ModelError
from frugalai.events.policy import Hysteresis
from frugalai.features.window import WindowStats
from frugalai.learn.csvio import DataError, parse_tz
from frugalai.learn.data import Series, grid_from_points, windows_from_points
from frugalai.learn.labels import Windows
from frugalai.learn.run_meta import iso_utc
from frugalai.learn.userdata import DataOptions, Resolved, read, resolve
from frugalai.runtime.model import BundleModel

if TYPE_CHECKING:
    from frugalai.scoring import BatchScorer, Score

FloatArray = npt.NDArray[np.float64]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def is_coastal(model: BundleModel) -> bool:
    return bool(model.card.get("features", {}).get("kind") == "coastal")


def load_for_bundle(model: BundleModel, path: Union[str, Path], opts: DataOptions
                    ) -> tuple[Series, Resolved]:
    """The CSV as the bundle's flow would see it (hourly levels, or the card's windows), read
    with the user's options and the card's defaults (zone, columns), and what was resolved."""
    res = resolve(opts, model.card)
    pts, res = read(path, res)
    name = Path(path).name
    if is_coastal(model):
        series = grid_from_points(pts, 3600.0, name)
        res.origins["threshold_m"] = "card features.params.threshold_m"
        res.origins["horizon_h"] = "card features.params.horizon_h"
    else:
        params = model.card.get("features", {}).get("params", {})
        series = windows_from_points(pts, int(params.get("slot_s", 900)), "mean", name)
        res.origins["window_s"] = "card features.params.slot_s"
        res.origins["policy"] = "card policy"
    return series, res


def read_for_bundle(model: BundleModel, path: Union[str, Path], time_col: Optional[str] = None,
                    value_col: Optional[str] = None, time_format: Optional[str] = None,
                    tz: Optional[str] = None) -> Series:
    """:func:`load_for_bundle` without the provenance."""
    return load_for_bundle(model, path, DataOptions(time_col, value_col, time_format, tz))[0]


def span(series: Series, start: Optional[float] = None) -> tuple[float, float]:
    """First and last time of ``series`` with a value, from ``start`` (UNIX s)."""
    ok = np.isfinite(series.values)
    if start is not None:
        ok &= series.ts >= start
    if not ok.any():
        raise DataError(f"{series.source}: no value to use")
    return float(series.ts[ok][0]), float(series.ts[ok][-1])


@dataclass
class Scored:
    """Per-window output of a bundle over a series."""

    ts: FloatArray
    values: FloatArray
    score: FloatArray  # anomaly score, or the reported class for a classifier (NaN: warming)
    alarm: npt.NDArray[np.bool_]  # policy state after the window (alarm active / flood)
    raised: list[float]  # times an alarm was raised (anomaly) or a flood announced (coastal)
    extra: dict[str, Any] = field(default_factory=dict)


def score_series(model: BundleModel, series: Series, start: Optional[float] = None,
                 decision: Optional[str] = None, end: Optional[float] = None) -> Scored:
    """Run the flow's scorer and policy over ``series`` (from ``start`` to before ``end``,
    UNIX s)."""
    from frugalai.runtime.scorers import AnomalyScorer, ClassScorer

    keep = ((series.ts >= (-math.inf if start is None else start))
            & (series.ts < (math.inf if end is None else end)))
    if not keep.any():
        raise DataError(f"{series.source}: no window between --start and --end")
    ts, vals = series.ts[keep], series.values[keep]
    score = np.full(len(ts), np.nan)
    alarm = np.zeros(len(ts), dtype=bool)
    raised: list[float] = []
    extra: dict[str, Any] = {}
    if is_coastal(model):
        chosen = decision or model.card.get("decision", {}).get("default", "model")
        if chosen not in ("model", "baseline"):  # the card's default: checked like a flow's
            raise ModelError(f"{model.name}: decision must be 'model' or 'baseline', got "
                             f"{chosen!r}")
        from frugalai.features.tide import Tide

        # The flow's ClassScorer, its two decisions both kept: the model's (class and
        # probability) and the rule's, from the same feature row.
        scorer = ClassScorer(model)
        model_class = np.full(len(ts), np.nan)
        probability = np.full(len(ts), np.nan)
        rule_class = np.full(len(ts), np.nan)

        def rows() -> Iterator[tuple[int, FloatArray]]:
            for i, (t, v) in enumerate(zip(ts.tolist(), vals.tolist())):
                row = scorer.features.update_one(t, v)
                if row is not None:
                    rule_class[i] = scorer.rule_class(row)
                    yield i, row

        for i, score_i in _finish_in_blocks(scorer, rows()):
            assert score_i is not None and score_i.label is not None
            model_class[i], probability[i] = score_i.label, score_i.value
        score = rule_class if chosen == "baseline" else model_class
        alarm = score == 2
        prev = False
        for t, a in zip(ts.tolist(), alarm.tolist()):
            if a and not prev:
                raised.append(t)
            prev = a
        tide = Tide.from_dict(model.card["features"]["tide"]).predict(ts)
        extra = {"decision": chosen, "model_class": model_class, "probability": probability,
                 "rule_class": rule_class, "tide_m": tide, "surge_m": vals - tide}
        return Scored(ts, vals, score, alarm, raised, extra)
    if model.task != "anomaly":
        raise ModelError(f"{model.name}: no offline scoring for task {model.task!r}")
    scorer_a = AnomalyScorer(model)
    pol = model.card.get("policy") or {"on": 5.0, "off": 2.0, "debounce": 1}
    policy = Hysteresis(float(pol["on"]), float(pol["off"]), int(pol.get("debounce", 1)))
    slot = float(model.card["features"]["params"].get("slot_s", 900))
    # the features window by window, the model in blocks, the policy in order
    prepared = ((i, scorer_a.prepare_one(WindowStats(t, t + slot, 1, v, v, v, math.nan), v))
                for i, (t, v) in enumerate(zip(ts.tolist(), vals.tolist())))
    for i, result in _finish_in_blocks(scorer_a, prepared):
        t = float(ts[i])
        s = None if result is None else result.value
        if s is None:
            alarm[i] = policy.active
            continue
        score[i] = s
        if policy.update_one(s) == "alarm":
            raised.append(t)
        alarm[i] = policy.active
    extra = {"policy": dict(pol), "warm_start": scorer_a.warm}
    rule = (model.card.get("metrics") or {}).get("fixed_thresholds_rule") or {}
    if "thresholds" in rule:  # the card's no-AI baseline: fixed bounds on the window mean
        lo, hi = (float(x) for x in rule["thresholds"])
        extra["rule_alarm"] = (vals < lo) | (vals > hi)
    return Scored(ts, vals, score, alarm, raised, extra)


#: feature rows per model call in ``score`` (a few hundred kB of floats at a time)
SCORE_BLOCK = 4096


def _finish_in_blocks(scorer: BatchScorer, prepared: Iterable[tuple[int, Any]]
                      ) -> Iterator[tuple[int, Optional[Score]]]:
    """``(i, scorer.finish_one(p))`` of each ``(i, p)``, in order: one model call per
    :data:`SCORE_BLOCK` rows when the backend's batch is its one-row output bit for bit
    (``batch_exact``), else row by row (the reference fp32). Why: ``score`` called the model
    once per window, and a runtime's call costs more than its row (onnxruntime's int8 ~25 us);
    the decisions are the same either way (tests/test_batch_windows.py). The rows are taken
    a block at a time from ``prepared`` (the features run as they are consumed), so no more
    than a block of them is held."""
    if not scorer.batch_exact:
        yield from ((i, scorer.finish_one(p)) for i, p in prepared)
        return
    block: list[tuple[int, Any]] = []
    for item in prepared:
        block.append(item)
        if len(block) == SCORE_BLOCK:
            yield from zip([i for i, _ in block], scorer.finish_many([p for _, p in block]))
            block = []
    if block:
        yield from zip([i for i, _ in block], scorer.finish_many([p for _, p in block]))


def read_windows(path: Union[str, Path], data_name: Union[str, Path], tz: Optional[str] = None,
                 span: Optional[tuple[float, float]] = None) -> list[tuple[float, float]]:
    """Labelled windows, parsed and checked by :func:`frugalai.learn.labels.read_windows`."""
    from frugalai.learn.labels import read_windows as strict

    return strict(path, data_name, parse_tz(tz), span).spans


def auc(scores: FloatArray, truth: npt.NDArray[np.bool_]) -> Optional[float]:
    """ROC AUC by ranks (ties averaged); None when one class is absent."""
    ok = np.isfinite(scores)
    s, y = scores[ok], truth[ok]
    n1, n0 = int(y.sum()), int((~y).sum())
    if not n1 or not n0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ranks[order] = np.arange(1, len(s) + 1)
    for v in np.unique(s[np.r_[False, np.diff(s[order]) == 0]] if len(s) else []):
        ranks[s == v] = ranks[s == v].mean()
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def evaluate_windows(sc: Scored, windows: list[tuple[float, float]]) -> dict[str, Any]:
    """Window recall, alarms outside the windows per month, AUC, lead time."""
    inside = np.zeros(len(sc.ts), dtype=bool)
    for a, b in windows:
        inside |= (sc.ts >= a) & (sc.ts <= b)
    scored = [(a, b) for a, b in windows if b >= sc.ts[0] and a <= sc.ts[-1]]
    if not scored:
        raise DataError(f"no labelled window between {_iso(float(sc.ts[0]))} and "
                        f"{_iso(float(sc.ts[-1]))} UTC (the scored span): no recall to give")
    warnings = ([f"{len(windows) - len(scored)} labelled window(s) outside the scored span "
                 "(before --start or after --end) not counted"]
                if len(scored) < len(windows) else [])
    alarmed, leads, peaks = [], [], []
    for a, b in scored:
        inw = sc.score[(sc.ts >= a) & (sc.ts <= b)]
        peaks.append(round(float(np.nanmax(inw)), 3) if np.isfinite(inw).any() else None)
        hits = [t for t in sc.raised if a <= t <= b]
        active_at_start = bool(sc.alarm[(sc.ts >= a) & (sc.ts <= b)][:1].any())
        alarmed.append(bool(hits) or active_at_start)
        if hits:
            leads.append((hits[0] - a) / 3600.0)
    outside = [t for t in sc.raised if not any(a <= t <= b for a, b in windows)]
    months = max((sc.ts[-1] - sc.ts[0]) / 86400.0 / 30.44, 1e-9)
    per_month: dict[str, int] = {}
    for t in outside:
        key = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m")
        per_month[key] = per_month.get(key, 0) + 1
    area = auc(sc.score, inside)
    return {
        "scored_from_utc": _iso(float(sc.ts[0])), "scored_to_utc": _iso(float(sc.ts[-1])),
        "months_scored": round(months, 2), "windows_in_scored_span": len(scored),
        "windows_alarmed": int(sum(alarmed)),
        "window_recall": round(sum(alarmed) / len(scored), 4) if scored else None,
        "alarms_outside_windows": len(outside),
        "alarms_outside_per_month": round(len(outside) / months, 3),
        "alarms_outside_max_in_a_month": max(per_month.values(), default=0),
        "window_auc": round(area, 4) if area is not None else None,
        "max_score_per_window": peaks,
        "hours_from_window_start_to_first_alarm": [round(x, 1) for x in leads],
        "median_lead_h": float(np.median(leads)) if leads else None,
        "alarm_times_utc": [_iso(t) for t in sc.raised],
        **{k: v for k, v in sc.extra.items() if k in ("policy", "warm_start", "decision")},
        "warnings": warnings,
    }


def evaluate_coastal(model: BundleModel, series: Series, start: Optional[float] = None,
                     end: Optional[float] = None, windows: Optional[Windows] = None
                     ) -> dict[str, Any]:
    """Hourly and per-episode metrics of the model and of the rule on a gauge's record. The
    flood hours are the user's labelled windows when given, else they come from the observed
    levels and the card's threshold (as at training). The lead-time window is the card's
    horizon."""
    from frugalai.features.coastal import CoastalFeatures
    from frugalai.features.tide import Tide
    from frugalai.learn import coastal as lc

    spec = model.card["features"]
    p = spec["params"]
    horizon = int(p["horizon_h"])
    feats = CoastalFeatures(Tide.from_dict(spec["tide"]), p["threshold_m"], p["horizon_h"])
    ts, X = feats.transform_many(series.ts, series.values)
    y = lc.labels_for(ts, series, p["threshold_m"], p["horizon_h"], p["watch_margin_m"])
    ok = ((y >= 0) & (ts >= (start if start is not None else -math.inf))
          & (ts < (end if end is not None else math.inf)))
    if not ok.any():
        raise DataError(f"{series.source}: no hour to evaluate (the record is shorter than the "
                        f"{horizon} h look-ahead, all gaps, or outside --start/--end)")
    ts, X, y = ts[ok], X[ok], y[ok]
    if windows is not None:
        inside = np.zeros(len(ts), dtype=bool)
        for a, b in windows.spans:
            inside |= (ts >= a) & (ts <= b)
        y = np.where(inside, 2, 0).astype(np.int64)
        truth = f"labels: {windows.describe()}; flood hours = hours inside a window"
    else:
        truth = (f"levels: flood = observed level >= card threshold {p['threshold_m']} m within "
                 f"{horizon} h")
    out: dict[str, Any] = {"rows": len(y), "from_utc": _iso(float(ts[0])),
                           "to_utc": _iso(float(ts[-1])), "truth": truth}
    preds = {"model": np.asarray(model.predict_many(X)),
             "baseline": lc.baseline(X, horizon, float(p["watch_margin_m"]))}
    warnings: list[str] = []
    if not (y == 2).any():
        warnings.append(f"{series.source}: no flood hour in the evaluated period: recall and "
                        "episode figures are undefined (null)")
    for k, pred in preds.items():
        m = lc.class_metrics(y, pred)
        m["flood"]["f1"] = lc._f1(m["flood"]["precision"], m["flood"]["recall"])
        m["flood_events"]["episode_f1"] = lc.episode_f1(m)
        level = X[:, 0] if windows is None else np.where(y == 2, 0.0, -1.0)
        m["lead_time"] = lc.lead_time_hours(ts, level, pred, window_h=horizon)
        out[k] = m
    out["decision_default"] = model.card.get("decision", {}).get("default")
    out["warnings"] = warnings
    return out


def evaluate_user(model: BundleModel, data: Union[str, Path], opts: DataOptions,
                  labels: Optional[Union[str, Path]] = None) -> dict[str, Any]:
    """``frugalai evaluate BUNDLE --data``: the metrics, with ``provenance`` (each reading
    option's value and origin), ``labels`` (where the truth came from) and ``warnings``."""
    series, res = load_for_bundle(model, data, opts)
    span = _span(series)
    windows = (read_labels(labels, data, res, span) if labels is not None else None)
    if is_coastal(model):
        result = evaluate_coastal(model, series, res.start, res.end, windows)
        warnings = [*res.warnings, *result.pop("warnings")]
    else:
        if windows is None:
            raise DataError("an anomaly bundle needs --labels (the windows to find)")
        sc = score_series(model, series, res.start, end=res.end)
        _check_scored(model, series, sc)
        result = evaluate_windows(sc, windows.spans)
        warnings = [*res.warnings, *result.pop("warnings", [])]
    return {"data": Path(data).name, **result,
            "labels": windows.describe() if windows is not None else None,
            "provenance": res.provenance(), "warnings": warnings, "span": span}


def _check_scored(model: BundleModel, series: Series, sc: Scored) -> None:
    """No score at all is no figure: say why (too short, or sampled slower than the windows)."""
    if np.isfinite(sc.score).any():
        return
    params = model.card["features"]["params"]
    slot = float(params.get("slot_s", 900))
    step = float(np.median(np.diff(series.ts))) if len(series.ts) > 1 else slot
    why = (f"the data are sampled every {step:.0f} s, slower than the bundle's {slot:.0f} s "
           f"windows: most windows are empty" if step > slot * 1.5 else
           f"the series ({len(sc.ts)} windows) is shorter than the model's warm-up "
           f"({int(params.get('window', 4))} consecutive windows with a learned slot)")
    raise DataError(f"{series.source}: no window scored: {why}")


def _span(series: Series) -> tuple[float, float]:
    fin = np.isfinite(series.values)
    t = series.ts[fin] if fin.any() else series.ts
    return float(t[0]), float(t[-1])


def read_labels(labels: Union[str, Path], data: Union[str, Path], res: Resolved,
                span: tuple[float, float]) -> Windows:
    """The checked windows, naive times in the data's resolved zone."""
    from frugalai.learn.labels import read_windows as strict

    windows = strict(labels, data, res.zone, span)
    res.origins["labels"] = f"--labels {Path(labels).name}"
    return windows


@dataclass
class ScoreRun:
    """What ``frugalai score`` computed, and where its inputs came from."""

    scored: Scored
    windows: Optional[Windows]
    provenance: dict[str, Any]
    warnings: list[str]


def score_user(model: BundleModel, data: Union[str, Path], opts: DataOptions,
               decision: Optional[str] = None,
               labels: Optional[Union[str, Path]] = None) -> ScoreRun:
    """``frugalai score BUNDLE --data``: per-window output over the resolved period."""
    series, res = load_for_bundle(model, data, opts)
    windows = read_labels(labels, data, res, _span(series)) if labels is not None else None
    sc = score_series(model, series, res.start, decision, res.end)
    warnings = list(res.warnings)
    if not is_coastal(model):
        _check_scored(model, series, sc)
    if is_coastal(model):
        res.origins["decision"] = "--decision" if decision else "card decision.default"
    return ScoreRun(sc, windows, res.provenance(), warnings)


#: the per-row columns of ``frugalai score --out`` (docs/json-outputs.md)
COASTAL_COLUMNS = ("time_utc", "value", "tide_m", "surge_m", "class", "model_class",
                   "model_probability", "rule_class", "flood", "raised")
ANOMALY_COLUMNS = ("time_utc", "value", "score", "alarm_active", "raised", "rule_alarm")


def _num(x: float, fmt: str) -> str:
    return "" if x != x else format(x, fmt)


def write_scores(sc: Scored, path: Union[str, Path], coastal: bool) -> list[str]:
    """One CSV row per window: time (UTC, ``YYYY-MM-DDTHH:MM:SSZ``), value, the score or class
    and probability, the decision the run took (``class``/``flood``, ``alarm_active``), the rule's decision
    (``rule_class``; ``rule_alarm``, empty when the card has no rule) and, for a gauge, the
    predicted tide and the surge. Returns the column names."""
    raised = set(sc.raised)
    cols = COASTAL_COLUMNS if coastal else ANOMALY_COLUMNS
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i, (t, v, s, a) in enumerate(zip(sc.ts.tolist(), sc.values.tolist(),
                                              sc.score.tolist(), sc.alarm.tolist())):
            head = [iso_utc(t), _num(v, ".6g")]
            if coastal:
                e = sc.extra
                w.writerow([*head, _num(float(e["tide_m"][i]), ".4f"),
                            _num(float(e["surge_m"][i]), ".4f"), _num(s, ".0f"),
                            _num(float(e["model_class"][i]), ".0f"),
                            _num(float(e["probability"][i]), ".4f"),
                            _num(float(e["rule_class"][i]), ".0f"), int(a), int(t in raised)])
            else:
                rule = sc.extra.get("rule_alarm")
                w.writerow([*head, _num(s, ".4f"), int(a), int(t in raised),
                            "" if rule is None else int(rule[i])])
    return list(cols)


def plot_scores(sc: Scored, windows: list[tuple[float, float]], path: Union[str, Path],
                title: str, on: Optional[float] = None, off: Optional[float] = None
                ) -> Optional[str]:
    """Series, score, thresholds, alarms and labelled windows; None when done, else why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'frugalai[bench]')"
    days = (sc.ts - sc.ts[0]) / 86400.0
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
    a1.plot(days, sc.values, lw=0.6, color="0.25")
    a1.set_ylabel("value")
    a2.plot(days, sc.score, lw=0.6, color="tab:blue")
    a2.set_ylabel("score")
    for v, style in ((on, "--"), (off, ":")):
        if v is not None:
            a2.axhline(v, color="tab:red", ls=style, lw=0.8)
    for t in sc.raised:
        a2.axvline((t - sc.ts[0]) / 86400.0, color="tab:red", lw=0.6, alpha=0.7)
    for a, b in windows:
        for ax in (a1, a2):
            ax.axvspan((a - sc.ts[0]) / 86400.0, (b - sc.ts[0]) / 86400.0, color="orange",
                       alpha=0.2)
    a2.set_xlabel(f"days since {_iso(float(sc.ts[0]))} UTC (shaded: labelled windows; red: "
                  f"alarms)")
    a1.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


#: most points ``frugalai tide`` prints in one call (a year at 1 min is 525,600)
MAX_TIDE_POINTS = 1_000_000


def predicted_tide(model: BundleModel, start: float, end: float, step_s: float
                   ) -> tuple[FloatArray, FloatArray]:
    """The coastal bundle's predicted tide (m, the data's datum, the card's constituents and
    nodal corrections) at ``start``, ``start + step_s``, ... up to ``end`` included (UNIX s)."""
    from frugalai.features.tide import Tide

    if not is_coastal(model):
        raise DataError(f"{model.name}: not a coastal bundle: it holds no tide")
    if not end > start:
        raise DataError(f"the end ({_iso(end)} UTC) must come after the start ({_iso(start)} UTC)")
    if not step_s > 0:
        raise DataError(f"the step must be positive, got {step_s:g} s")
    n = math.floor((end - start) / step_s) + 1
    if n > MAX_TIDE_POINTS:
        raise DataError(f"{n} points asked (at most {MAX_TIDE_POINTS}): a longer step or a "
                        "shorter period")
    ts = start + step_s * np.arange(n, dtype=np.float64)
    return ts, Tide.from_dict(model.card["features"]["tide"]).predict(ts)
