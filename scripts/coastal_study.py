#!/usr/bin/env python3
"""Can a learned model beat the physical baseline for the Providence flood nowcast?

Issue 4 asks the coastal classifier to beat "predicted tide + current surge >= threshold" and to
reach flood recall >= 0.9 with precision >= 0.8 (hourly, 1991-2005). This script measures what
the water-level record alone allows: each candidate is trained on <= 1990 and its decision
threshold is chosen on the training years (F1 of the flood class); the last rows use thresholds
tuned on the validation years themselves, an optimistic bound no deployment could reach.

    .venv/bin/python scripts/coastal_study.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from frugalai.features.coastal import CoastalFeatures
from frugalai.features.tide import fit_tide
from frugalai.learn.coastal import PROVIDENCE_HAT_M, labels_for, max_level_ahead, year_start
from frugalai.learn.data import load_providence


def f1(pred: Any, truth: Any) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    p, r = tp / max(pred.sum(), 1), tp / max(truth.sum(), 1)
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def best_threshold(score: Any, truth: Any) -> float:
    cands = np.quantile(score, np.linspace(0.98, 0.9999, 400))
    return float(max((f1(score >= c, truth)[0], c) for c in cands)[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import StandardScaler

    series = load_providence(args.data_dir)
    in_tide = (series.ts >= year_start(1971)) & (series.ts < year_start(1991))
    tide = fit_tide(series.ts[in_tide], series.values[in_tide])
    ts, X = CoastalFeatures(tide, PROVIDENCE_HAT_M, 3).transform_many(series.ts, series.values)
    y = labels_for(ts, series, PROVIDENCE_HAT_M, 3, 0.15)
    m = max_level_ahead(ts, series, 3) - PROVIDENCE_HAT_M
    ok = y >= 0
    ts, X, y, m = ts[ok], X[ok], y[ok], m[ok]
    tr = ts < year_start(1991)
    va = (ts >= year_start(1991)) & (ts < year_start(2006))
    flood_tr, flood_va = y[tr] == 2, y[va] == 2
    margin = X[:, -1]  # max predicted tide ahead + current surge - threshold: the baseline
    rows: list[tuple[str, tuple[float, float, float]]] = []
    rows.append(("baseline (margin >= 0)", f1(margin[va] >= 0, flood_va)))
    c = best_threshold(margin[tr], flood_tr)
    rows.append(("baseline, offset tuned on training", f1(margin[va] >= c, flood_va)))

    sc = StandardScaler().fit(X[tr])
    for name, cols in (("logistic on the margin", [8]), ("logistic on all 9 features",
                                                       list(range(9)))):
        s = StandardScaler().fit(X[tr][:, cols])
        lr = LogisticRegression(max_iter=500).fit(s.transform(X[tr][:, cols]), flood_tr)
        p_tr = lr.predict_proba(s.transform(X[tr][:, cols]))[:, 1]
        p_va = lr.predict_proba(s.transform(X[va][:, cols]))[:, 1]
        rows.append((name, f1(p_va >= best_threshold(p_tr, flood_tr), flood_va)))

    rng = np.random.default_rng(0)
    keep = tr & ((y > 0) | (rng.random(len(y)) < 0.15))
    clf = MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-4, max_iter=200, random_state=0,
                        tol=1e-5).fit(sc.transform(X[keep]), y[keep])
    p_tr = clf.predict_proba(sc.transform(X[tr]))[:, 2]
    p_va = clf.predict_proba(sc.transform(X[va]))[:, 2]
    rows.append(("MLP 9-16-3 classifier (shipped architecture)",
                 f1(p_va >= best_threshold(p_tr, flood_tr), flood_va)))

    reg = MLPRegressor(hidden_layer_sizes=(16,), random_state=0, max_iter=50,
                       early_stopping=True).fit(sc.transform(X[tr]), m[tr] - margin[tr])
    s_tr = margin[tr] + reg.predict(sc.transform(X[tr]))
    s_va = margin[va] + reg.predict(sc.transform(X[va]))
    rows.append(("MLP regression of the baseline's error",
                 f1(s_va >= best_threshold(s_tr, flood_tr), flood_va)))
    rows.append(("(optimistic) baseline, offset tuned on validation",
                 f1(margin[va] >= best_threshold(margin[va], flood_va), flood_va)))
    rows.append(("(optimistic) MLP regression, threshold tuned on validation",
                 f1(s_va >= best_threshold(s_va, flood_va), flood_va)))

    print(f"validation 1991-2005: {int(flood_va.sum())} flood hours of {int(va.sum())}\n")
    print("| candidate | flood F1 | precision | recall |\n|---|---:|---:|---:|")
    for name, (f, p, r) in rows:
        print(f"| {name} | {f:.3f} | {p:.3f} | {r:.3f} |")


if __name__ == "__main__":
    main()
