"""Streaming features of the submersion nowcast: surge, its change, rise rate, tide ahead.

Each hourly water level ``L(t)`` (m, same datum as the tide fit) becomes, with ``T`` the
predicted tide, ``thr`` the site's flood threshold and ``H`` the horizon (hours)::

    0 L(t) - thr               4 L(t) - L(t-1)                    (rate of rise, m/h)
    1 s(t) = L(t) - T(t)       5..4+H T(t+k) - thr, k = 1..H       (tide ahead)
    2 s(t) - s(t-1)            5+H   max_k T(t+k) + s(t) - thr    (the physical baseline's margin,
    3 s(t) - s(t-3)                                           k = 0..H

All are in metres relative to the threshold, so the same model serves another threshold.
Levels must come hourly: a gap (or a NaN) restarts the 3-hour memory, and no row is produced
until 3 consecutive past hours are known. ``transform_many`` is this same loop over a series.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import Optional

import numpy as np
import numpy.typing as npt

from frugalai.features.tide import Tide
from frugalai.features.tide_block import TideAhead

FloatArray = npt.NDArray[np.float64]


def _max(values: list[float]) -> float:
    """``np.max`` of floats: NaN if any is NaN (Python's ``max`` would depend on the order)."""
    top = values[0]
    for v in values:
        if v != v:
            return v
        if v > top:
            top = v
    return top


def n_features(horizon_h: int) -> int:
    return 6 + horizon_h


class CoastalFeatures:
    """Hour-by-hour feature rows for the submersion classifier.

    Args:
        tide: the fitted astronomical tide.
        threshold_m: the site's flood threshold (same datum).
        horizon_h: hours ahead the classifier looks.
        step_s: expected spacing of levels (3600).
    """

    def __init__(self, tide: Tide, threshold_m: float, horizon_h: int = 3,
                 step_s: float = 3600.0) -> None:
        if horizon_h < 1:
            raise ValueError(f"horizon_h must be >= 1, got {horizon_h}")
        self.tide = tide
        self.threshold_m = threshold_m
        self.horizon_h = horizon_h
        self.step_s = step_s
        self._past: deque[tuple[float, float]] = deque(maxlen=4)  # (level, surge)
        # the tide at ts, ts + step, ..., ts + horizon: predicted a block of readings at a time
        self._tide_ahead = TideAhead(tide, step_s, horizon_h)
        self._last_ts: Optional[float] = None

    def update_one(self, ts: float, level: float) -> Optional[FloatArray]:
        """Feed the level observed at ``ts``; return a feature row or None (warming up)."""
        if self._last_ts is not None and abs(ts - self._last_ts - self.step_s) > 0.25 * self.step_s:
            self._past.clear()
        self._last_ts = ts
        if level != level or math.isinf(level):
            self._past.clear()
            return None
        tide = self._tide_ahead.levels(ts)
        surge = level - tide[0]
        past = self._past
        past.append((level, surge))
        if len(past) < 4:
            return None
        thr = self.threshold_m
        level_1, surge_1 = past[-2]
        # Plain floats from here: the same float64 operations as on the arrays, without a
        # numpy call per element (this runs on every reading of a coastal flow).
        row = [level - thr, surge, surge - surge_1, surge - past[0][1], level - level_1]
        row += [t - thr for t in tide[1:]]
        row.append(_max(tide) + surge - thr)
        return np.array(row, dtype=np.float64)

    def transform_many(self, ts: Iterable[float], levels: Iterable[float]
                       ) -> tuple[FloatArray, FloatArray]:
        """Run ``update_one`` over a series; return (times of the rows, rows)."""
        times: list[float] = []
        rows: list[FloatArray] = []
        for t, v in zip(ts, levels):
            row = self.update_one(float(t), float(v))
            if row is not None:
                times.append(float(t))
                rows.append(row)
        return (np.array(times, dtype=np.float64),
                np.array(rows, dtype=np.float64).reshape(-1, n_features(self.horizon_h)))

    def __repr__(self) -> str:
        return (f"CoastalFeatures(threshold_m={self.threshold_m}, horizon_h={self.horizon_h}, "
                f"step_s={self.step_s})")
