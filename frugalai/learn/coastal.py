"""Shoreline submersion nowcast: tide fit, features, labels, the physical baseline, the MLP.

Labels (from observations only): for the hour ``t``, let ``M = max L(t..t+H)`` (observed
levels, the current hour included). ``flood`` if ``M >= thr``; ``watch`` if
``M >= thr - watch_margin``; else ``normal``. Rows whose next ``H`` hours are all missing are
dropped.

Physical baseline: ``flood`` if ``max_k T(t+k) + s(t) >= thr`` (predicted tide over the horizon
plus the current surge); ``watch`` with the margin. The model must beat it on the validation
years.

Split by time, never shuffled: tide fitted on 1971-1990 (about one 18.6-year nodal cycle,
training years only); classifier trained on 1938-1990; validated on 1991-2005.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from frugalai.features.coastal import CoastalFeatures
from frugalai.features.tide import fit_tide
from frugalai.learn.data import PROVIDENCE_UTC_OFFSET_H, Series
from frugalai.runtime.dense import DenseNet, Layer
from frugalai.runtime.model import classify

FloatArray = npt.NDArray[np.float64]
SEED = 0
CLASSES = ["normal", "watch", "flood"]
#: Providence: Highest Astronomical Tide, m above MLLW (DATA_SOURCES_from_SLRSIM.md).
PROVIDENCE_HAT_M = 1.987


def year_start(year: int) -> float:
    """UNIX time of local (UTC-5) midnight, 1 January of ``year``."""
    return datetime(year, 1, 1, tzinfo=timezone.utc).timestamp() - PROVIDENCE_UTC_OFFSET_H * 3600


def max_level_ahead(ts: FloatArray, series: Series, horizon_h: int) -> FloatArray:
    """``max L(t..t+H)`` observed for each row time (-inf when those hours are all missing)."""
    idx = np.round((ts - series.ts[0]) / 3600.0).astype(np.int64)
    lv = np.concatenate([series.values, np.full(horizon_h + 1, np.nan)])
    ahead = np.stack([lv[idx + k] for k in range(horizon_h + 1)], axis=1)
    with np.errstate(all="ignore"):
        return np.asarray(np.nanmax(np.where(np.isnan(ahead), -np.inf, ahead), axis=1))


def labels_for(ts: FloatArray, series: Series, threshold_m: float, horizon_h: int,
               watch_margin_m: float) -> npt.NDArray[np.int64]:
    """Class of each row time (-1 when the next hours are all missing)."""
    m = max_level_ahead(ts, series, horizon_h)
    y = np.zeros(len(ts), dtype=np.int64)
    y[m >= threshold_m - watch_margin_m] = 1
    y[m >= threshold_m] = 2
    y[~np.isfinite(m)] = -1
    return y


def baseline(X: FloatArray, horizon_h: int, watch_margin_m: float) -> npt.NDArray[np.int64]:
    """The physical baseline from the feature rows (last column = tide max + surge - thr)."""
    margin = X[:, 5 + horizon_h]
    y = np.zeros(len(X), dtype=np.int64)
    y[margin >= -watch_margin_m] = 1
    y[margin >= 0] = 2
    return y


def class_metrics(y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64]) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(y),
                           "confusion[true][pred]": [[int(((y == a) & (pred == b)).sum())
                                                     for b in range(3)] for a in range(3)]}
    for k, name in ((2, "flood"), (1, "watch")):
        tp = int(((pred >= k) & (y >= k)).sum()) if k == 1 else int(((pred == k) & (y == k)).sum())
        pp = int((pred >= k).sum()) if k == 1 else int((pred == k).sum())
        pos = int((y >= k).sum()) if k == 1 else int((y == k).sum())
        label = name if k == 2 else "watch_or_flood"
        out[label] = {"precision": round(tp / pp, 4) if pp else None,
                      "recall": round(tp / pos, 4) if pos else None, "true_hours": pos,
                      "predicted_hours": pp}
    out["flood_events"] = _events(y == 2, pred == 2)
    return out


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) index runs of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.where(edges == 1)[0].tolist(), np.where(edges == -1)[0].tolist()))


def _events(truth: npt.NDArray[np.bool_], pred: npt.NDArray[np.bool_], slack: int = 3
            ) -> dict[str, Any]:
    """Episode level: runs of flood hours. A true episode is detected if a flood prediction
    falls in it (or ``slack`` rows before: the nowcast warns ahead); a predicted episode is a
    true alarm if it overlaps a true episode widened by ``slack`` rows."""
    true_runs, pred_runs = _runs(truth), _runs(pred)
    widened = np.zeros(len(truth) + slack, dtype=bool)
    for a, b in true_runs:
        widened[max(0, a - slack):b + slack] = True
    detected = sum(bool(pred[max(0, a - slack):b].any()) for a, b in true_runs)
    true_alarms = sum(bool(widened[a:b].any()) for a, b in pred_runs)
    return {"episodes": len(true_runs), "episodes_detected": detected,
            "episode_recall": round(detected / len(true_runs), 4) if true_runs else None,
            "predicted_episodes": len(pred_runs),
            "episode_precision": round(true_alarms / len(pred_runs), 4) if pred_runs else None}


def fit_mlp(X: FloatArray, y: npt.NDArray[np.int64], hidden: int = 16
            ) -> tuple[DenseNet, Any]:
    """A 2-layer MLP on standardised rows (standardisation folded into the first layer).

    Normal hours far outnumber the others: they are subsampled (seeded) for training; the
    decision thresholds (tuned after) restore the balance.
    """
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(SEED)
    keep = (y > 0) | (rng.random(len(y)) < 0.15)
    Xs, ys = X[keep], y[keep]
    mean, std = Xs.mean(axis=0), Xs.std(axis=0) + 1e-9
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=1e-4, max_iter=200,
                        random_state=SEED, early_stopping=False, tol=1e-5)
    clf.fit((Xs - mean) / std, ys)
    W0 = (clf.coefs_[0] / std[:, None]).astype(np.float32)
    b0 = (clf.intercepts_[0] - (mean / std) @ clf.coefs_[0]).astype(np.float32)
    net = DenseNet((Layer(W0, b0, "relu"),
                    Layer(clf.coefs_[1].astype(np.float32),
                          clf.intercepts_[1].astype(np.float32), "linear")))
    return net, clf


def softmax(z: npt.NDArray[np.floating]) -> FloatArray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def tune_thresholds(probs: FloatArray, y: npt.NDArray[np.int64]) -> list[float]:
    """On training rows: for each of watch-or-flood and flood, the tail-probability threshold
    that maximises F1 (no cost matrix is given; F1 weighs a missed hour and a false one alike).

    An earlier version took the highest threshold with recall >= 0.9 (issue 4's recall
    target): on these features that meant flood at P >= 0.06, precision 0.10 and 1,093
    predicted flood episodes for 66 real ones in 1991-2005, a warning nobody would heed.
    """
    tail = np.cumsum(probs[:, ::-1], axis=1)[:, ::-1]
    out = []
    for k in (1, 2):
        truth = y >= k
        cands = np.unique(np.quantile(tail[:, k], np.linspace(0.9, 0.99995, 500)))
        best, best_t = -1.0, 0.5
        for t in cands:
            pred = tail[:, k] >= t
            tp = float((pred & truth).sum())
            f1 = 2 * tp / (pred.sum() + truth.sum()) if pred.sum() + truth.sum() else 0.0
            if f1 > best:
                best, best_t = f1, float(t)
        out.append(min(max(best_t, 1e-4), 0.99))
    return out


def train_coastal(series: Series, out_dir: Optional[Path], threshold_m: float = PROVIDENCE_HAT_M,
                  horizon_h: int = 3, watch_margin_m: float = 0.15,
                  tide_years: tuple[int, int] = (1971, 1990), train_until: int = 1990,
                  valid_years: tuple[int, int] = (1991, 2005), hidden: int = 16,
                  name: str = "coastal-submersion", progress: Any = None) -> dict[str, Any]:
    """Fit, evaluate against the baseline and (if ``out_dir``) export the bundle."""
    step = progress or (lambda msg: None)
    step("tide fit")
    in_tide = (series.ts >= year_start(tide_years[0])) & (series.ts < year_start(tide_years[1] + 1))
    tide = fit_tide(series.ts[in_tide], series.values[in_tide])
    resid = series.values[in_tide] - tide.predict(series.ts[in_tide])
    step("features")
    feats = CoastalFeatures(tide, threshold_m, horizon_h)
    ts, X = feats.transform_many(series.ts, series.values)
    y = labels_for(ts, series, threshold_m, horizon_h, watch_margin_m)
    ok = y >= 0
    ts, X, y = ts[ok], X[ok], y[ok]
    train = ts < year_start(train_until + 1)
    valid = (ts >= year_start(valid_years[0])) & (ts < year_start(valid_years[1] + 1))
    step("fit")
    net, _ = fit_mlp(X[train], y[train], hidden)
    thresholds = tune_thresholds(softmax(np.asarray(net.forward(X[train]))), y[train])
    def decide(raw: npt.NDArray[np.floating]) -> npt.NDArray[np.int64]:
        return classify(softmax(raw), thresholds)

    step("evaluate")
    qnet = net.quantize(X[train])
    metrics: dict[str, Any] = {
        "validation": {
            "years": f"{valid_years[0]}-{valid_years[1]}",
            "model_fp32": class_metrics(y[valid], decide(np.asarray(net.forward(X[valid])))),
            "model_int8": class_metrics(y[valid], decide(qnet.forward_int8(X[valid]))),
            "baseline": class_metrics(y[valid], baseline(X[valid], horizon_h, watch_margin_m)),
        },
        "training": {
            "years": f"{datetime.fromtimestamp(ts[0], tz=timezone.utc).year}-{train_until}",
            "model_fp32": class_metrics(y[train], decide(np.asarray(net.forward(X[train])))),
            "baseline": class_metrics(y[train], baseline(X[train], horizon_h, watch_margin_m)),
        },
        "tide_fit": {"years": f"{tide_years[0]}-{tide_years[1]}",
                     "residual_rms_m": round(float(np.sqrt(np.nanmean(resid ** 2))), 4),
                     "amplitudes_m": {k: round(v, 4) for k, v in tide.amplitudes().items()}},
    }
    v = metrics["validation"]

    def f1(m: dict[str, Any]) -> float:
        p, r = m["flood"]["precision"] or 0.0, m["flood"]["recall"] or 0.0
        return round(2 * p * r / (p + r), 4) if p + r else 0.0

    targets = {
        "flood_recall>=0.9_and_precision>=0.8 (validation, hourly, fp32)":
            bool((v["model_fp32"]["flood"]["recall"] or 0) >= 0.9
                 and (v["model_fp32"]["flood"]["precision"] or 0) >= 0.8),
        "flood_f1_model_fp32": f1(v["model_fp32"]), "flood_f1_baseline": f1(v["baseline"]),
        "beats_baseline_on_flood_f1": f1(v["model_fp32"]) > f1(v["baseline"]),
    }
    card: dict[str, Any] = {
        "name": name,
        "task": "classification",
        "targets": targets,
        "description": "Shoreline submersion nowcast: each hour normal / watch / flood, flood "
                       f"meaning the level reaches the site threshold within {horizon_h} h.",
        "classes": CLASSES,
        "decision": {"thresholds": thresholds,
                     "rule": "class k if P(class >= k) >= thresholds[k-1] (highest k wins); "
                             "probabilities = softmax(net outputs)"},
        "features": {"kind": "coastal",
                     "params": {"threshold_m": threshold_m, "horizon_h": horizon_h,
                                "watch_margin_m": watch_margin_m, "step_s": 3600},
                     "tide": tide.to_dict(),
                     "input": "hourly water level (m, MLLW) at UNIX time (UTC) of the hour "
                              "(centre of the window)",
                     "columns": ["L-thr", "surge", "surge change 1h", "surge change 3h",
                                 "rise 1h", *(f"tide(t+{k})-thr" for k in range(1, horizon_h + 1)),
                                 "max tide ahead + surge - thr"]},
        "labels": {"flood": f"max observed level over t..t+{horizon_h} h >= threshold_m",
                   "watch": f"same max >= threshold_m - {watch_margin_m} m",
                   "normal": "otherwise"},
        "baseline": "flood if max predicted tide over the horizon + current surge >= threshold",
        "data": {"source": series.source,
                 "split": f"train <= {train_until}, validation {valid_years[0]}-"
                          f"{valid_years[1]}, by time, never shuffled",
                 "time_zone": f"data read as UTC{PROVIDENCE_UTC_OFFSET_H:+.0f} (undocumented)",
                 "tide_years": list(tide_years), "train_until": train_until,
                 "valid_years": list(valid_years),
                 "train_rows": int(train.sum()), "validation_rows": int(valid.sum()),
                 "seed": SEED, "normal_subsample": 0.15},
        "model": {"kind": "MLP", "hidden": hidden, "activation": "relu"},
        "metrics": metrics,
    }
    if out_dir is None:
        return card
    from frugalai.learn.export import export_bundle

    step("export")
    return export_bundle(out_dir, net, X[train], X[valid], decide, card, seed=SEED)
