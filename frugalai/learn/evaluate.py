"""``frugalai evaluate``: recompute a shipped bundle's metrics from the real data.

The bundle is loaded like the gateway loads it (sha256 checked, chosen backend and precision);
features are recomputed from the raw data with the parameters in its card; the metrics are
compared with those the card claims.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from frugalai.errors import ModelError
from frugalai.runtime.model import BundleModel


def evaluate_bundle(model: BundleModel, data_dir: Path) -> dict[str, Any]:
    """Metrics of ``model`` on its reference data, beside those in its card."""
    kind = model.card.get("features", {}).get("kind")
    precision = model.backend.precision
    if kind == "energy_residuals":
        from frugalai.learn.data import load_dutch
        from frugalai.learn.energy import evaluate_days, features_for

        params = model.card["features"]["params"]
        series = load_dutch(data_dir)
        ts, X = features_for(series, params, int(model.card["data"].get("warm_start_days", 0)))
        span = (float(ts[0]), float(ts[-1]))
        scores = np.asarray(model.predict_many(X), dtype=np.float64)
        got = evaluate_days(ts, scores, series, float(params["tz_offset_h"]),
                            model.card["policy"])
        claimed = model.card["metrics"].get(precision)
    elif kind == "coastal":
        from frugalai.features.coastal import CoastalFeatures
        from frugalai.features.tide import Tide
        from frugalai.learn.coastal import class_metrics, labels_for, year_start
        from frugalai.learn.data import load_providence

        spec, data = model.card["features"], model.card["data"]
        p = spec["params"]
        series = load_providence(data_dir)
        a, b = data["valid_years"]
        keep = (series.ts >= year_start(a) - 86400) & (series.ts < year_start(b + 1))
        from frugalai.learn.data import Series

        sub = Series(series.ts[keep], series.values[keep], None, series.source)
        feats = CoastalFeatures(Tide.from_dict(spec["tide"]), p["threshold_m"], p["horizon_h"])
        ts, X = feats.transform_many(sub.ts, sub.values)
        y = labels_for(ts, series, p["threshold_m"], p["horizon_h"], p["watch_margin_m"])
        ok = (y >= 0) & (ts >= year_start(a))
        span = (float(ts[ok][0]), float(ts[ok][-1]))
        from frugalai.learn.coastal import _f1, episode_f1

        got = class_metrics(y[ok], np.asarray(model.predict_many(X[ok])))
        got["flood"]["f1"] = _f1(got["flood"]["precision"], got["flood"]["recall"])
        got["flood_events"]["episode_f1"] = episode_f1(got)
        claimed = model.card["metrics"]["validation"].get(f"model_{precision}")
    else:
        raise ModelError(f"{model.name}: no evaluation for features {kind!r}")
    return {"model": model.info(), "metrics": got, "card_metrics": claimed, "span": span}


def reference_rows(bundle_dir: Path, data_dir: Path) -> tuple[Any, Any, str]:
    """A shipped bundle's int8 calibration rows and held-out rows, rebuilt from the card and
    the reference data without refitting (coastal: the training and validation hours;
    energy: every scored window, the fit being unsupervised), and what the held-out rows are."""
    from frugalai.runtime.bundle import verify_bundle

    card = verify_bundle(bundle_dir).card
    kind = card.get("features", {}).get("kind")
    if kind == "coastal":
        from frugalai.learn.coastal import VALIDATION_ROWS_ABOUT, rows_from_card
        from frugalai.learn.data import load_providence

        calibration, valid = rows_from_card(card, load_providence(data_dir))
        return calibration, valid, VALIDATION_ROWS_ABOUT
    if kind == "energy_residuals":
        from frugalai.learn.data import load_dutch
        from frugalai.learn.energy import ALL_ROWS_ABOUT, features_for

        _, X = features_for(load_dutch(data_dir), card["features"]["params"],
                            int(card["data"].get("warm_start_days", 0)))
        return X, X, ALL_ROWS_ABOUT
    raise ModelError(f"{card.get('name')}: no reference rows for features {kind!r}")
