"""The astronomical tide from harmonic constituents (pure numpy).

``h(t) = z0 + trend * years + sum_k a_k cos(w_k t) + b_k sin(w_k t)`` with ``t`` in hours since
:data:`EPOCH` and ``w_k`` the constituent speeds below (degrees per hour, Schureman / NOAA).
Fitted once by least squares at training time (:func:`fit_tide`) and shipped in the model card;
the gateway only evaluates it (:meth:`Tide.predict`). Nodal (18.6-year) modulation is not
modelled: the fit spans about one nodal cycle, and the model uses the current surge (observed
minus predicted), which absorbs slowly varying errors. The linear trend captures sea-level rise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Constituent speeds, degrees per mean solar hour.
SPEEDS: dict[str, float] = {
    "M2": 28.9841042, "S2": 30.0, "N2": 28.4397295, "K2": 30.0821373, "K1": 15.0410686,
    "O1": 13.9430356, "P1": 14.9589314, "Q1": 13.3986609, "NU2": 28.5125831,
    "2N2": 27.8953548, "MU2": 27.9682084, "L2": 29.5284789, "M4": 57.9682084,
    "MS4": 58.9841042, "MN4": 57.4238337, "M6": 86.9523127, "SA": 0.0410686, "SSA": 0.0821373,
}
#: UNIX time of the time origin (2000-01-01 00:00 UTC), for numerically tame phases.
EPOCH = 946684800.0
HOURS_PER_YEAR = 8766.0


@dataclass(frozen=True)
class Tide:
    """A fitted tide: mean level, trend (m/year) and (cos, sin) amplitudes per constituent."""

    constituents: tuple[str, ...]
    z0: float
    trend: float
    cos: tuple[float, ...]
    sin: tuple[float, ...]

    def predict(self, ts: npt.ArrayLike) -> FloatArray:
        """Predicted level at UNIX times ``ts`` (same datum as the fit).

        >>> Tide(("M2",), 1.0, 0.0, (0.5,), (0.0,)).predict([EPOCH]).tolist()
        [1.5]
        """
        hours = (np.asarray(ts, dtype=np.float64) - EPOCH) / 3600.0
        return np.asarray(_design(hours, self.constituents) @ self.coefficients())

    def coefficients(self) -> FloatArray:
        return np.array([self.z0, self.trend, *self.cos, *self.sin], dtype=np.float64)

    def amplitudes(self) -> dict[str, float]:
        """Amplitude (m) per constituent."""
        return {c: float(np.hypot(a, b)) for c, a, b in zip(self.constituents, self.cos, self.sin)}

    def to_dict(self) -> dict[str, Any]:
        return {"constituents": list(self.constituents), "z0": self.z0, "trend_m_per_year":
                self.trend, "cos": list(self.cos), "sin": list(self.sin), "epoch": EPOCH}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tide:
        if float(d.get("epoch", EPOCH)) != EPOCH:
            raise ValueError(f"tide epoch {d.get('epoch')} differs from {EPOCH}")
        return cls(tuple(d["constituents"]), float(d["z0"]), float(d["trend_m_per_year"]),
                   tuple(float(x) for x in d["cos"]), tuple(float(x) for x in d["sin"]))


def _design(hours: FloatArray, constituents: Sequence[str]) -> FloatArray:
    w = np.radians([SPEEDS[c] for c in constituents])
    phase = np.outer(hours, w)
    return np.hstack([np.ones((len(hours), 1)), (hours / HOURS_PER_YEAR)[:, None],
                      np.cos(phase), np.sin(phase)])


def fit_tide(ts: npt.ArrayLike, level: npt.ArrayLike,
             constituents: Sequence[str] = tuple(SPEEDS)) -> Tide:
    """Least-squares fit of mean, trend and constituents to the finite samples."""
    t = np.asarray(ts, dtype=np.float64)
    y = np.asarray(level, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(y)
    A = _design((t[ok] - EPOCH) / 3600.0, constituents)
    coef, *_ = np.linalg.lstsq(A, y[ok], rcond=None)
    n = len(constituents)
    return Tide(tuple(constituents), float(coef[0]), float(coef[1]),
                tuple(float(x) for x in coef[2:2 + n]), tuple(float(x) for x in coef[2 + n:]))
