"""The astronomical tide from harmonic constituents (pure numpy, no tide library on the gateway).

Two bases, both stored in a model card as a :class:`Tide`:

* ``"plain"`` (the first bundles): ``h(t) = z0 + trend * years + sum_k a_k cos(w_k t) +
  b_k sin(w_k t)`` with ``t`` in hours since :data:`EPOCH`; no nodal modulation.
* ``"astronomical"``: ``h(t) = z0 + trend * years + sum_k f_k(t) [a_k cos(V_k(t) + u_k(t)) +
  b_k sin(V_k(t) + u_k(t))]`` with ``V_k`` the Greenwich equilibrium argument (Doodson numbers on
  the mean longitudes T, s, h, p, p1), ``f_k, u_k`` the nodal corrections (Schureman's formulas,
  as tabulated by Pugh 1987, table 4.3). Then ``a_k = H_k cos G_k`` and ``b_k = H_k sin G_k``
  with ``H`` the amplitude and ``G`` the Greenwich phase lag: published constants (NOAA CO-OPS,
  TICON-4) load without refitting (:func:`from_constants`), and a fit (:func:`fit_harmonics`)
  yields constants comparable with the published ones.

Nodal factors change over 18.6 years; they are evaluated once per UTC day (noon), in the batch
and in the one-instant path alike, so training and the gateway compute the same numbers.
Approximations (documented, sub-centimetre at the stations we checked): L2 takes M2's nodal
factors and M1 O1's (their exact factors also depend on the perigee).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Constituent speeds, degrees per mean solar hour (the "plain" basis).
SPEEDS: dict[str, float] = {
    "M2": 28.9841042, "S2": 30.0, "N2": 28.4397295, "K2": 30.0821373, "K1": 15.0410686,
    "O1": 13.9430356, "P1": 14.9589314, "Q1": 13.3986609, "NU2": 28.5125831,
    "2N2": 27.8953548, "MU2": 27.9682084, "L2": 29.5284789, "M4": 57.9682084,
    "MS4": 58.9841042, "MN4": 57.4238337, "M6": 86.9523127, "SA": 0.0410686, "SSA": 0.0821373,
}
#: UNIX time of the time origin (2000-01-01 00:00 UTC), for numerically tame phases.
EPOCH = 946684800.0
#: times predicted per matrix: 36 constituents x 16,384 times = 4.7 MB a temporary, where
#: thirty years of hourly readings at once took several hundred MB (``frugalai score``).
PREDICT_CHUNK = 16_384
HOURS_PER_YEAR = 8766.0
#: J2000.0 (2000-01-01 12:00 UT) in UNIX seconds: origin of the mean longitudes below.
J2000 = 946728000.0

# Mean longitudes (deg) at J2000 and rates (deg/day): T (mean solar hour angle + 180), s (moon),
# h (sun), p (lunar perigee), p1 (solar perigee); N (lunar node) drives the nodal factors.
_LON0 = np.array([0.0, 218.3164477, 280.4664567, 83.3532465, 282.9373])
_RATE = np.array([360.0, 13.17639648, 0.98564736, 0.11140353, 0.00004708])
_N0, _NRATE = 125.0445479, -0.05295377

# Nodal factor families: (f coefficients on cos 0..3N, u coefficients on sin 1..3N, degrees).
_NODAL_BASE: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "M2": ((1.0004, -0.0373, 0.0002, 0.0), (-2.14, 0.0, 0.0)),
    "K1": ((1.0060, 0.1150, -0.0088, 0.0006), (-8.86, 0.68, -0.07)),
    "O1": ((1.0089, 0.1871, -0.0147, 0.0014), (10.80, -1.34, 0.19)),
    "K2": ((1.0241, 0.2863, 0.0083, -0.0015), (-17.74, 0.68, -0.04)),
    "J1": ((1.0129, 0.1676, -0.0170, 0.0016), (-12.94, 1.34, -0.19)),
    "OO1": ((1.1027, 0.6504, 0.0317, -0.0014), (-36.68, 4.02, -0.57)),
    "MF": ((1.043, 0.414, 0.0, 0.0), (-23.74, 2.68, -0.38)),
    "MM": ((1.0, -0.130, 0.0, 0.0), (0.0, 0.0, 0.0)),
}
_BASES = tuple(_NODAL_BASE)
#: A call with at most this many times takes its days' nodal factors from a per-day cache.
_FEW_TIMES = 32
#: Days that cache holds (it starts over when full: a flow moves forward a day at a time).
_CACHED_DAYS = 16

#: Astronomical constituents: Doodson numbers on (T, s, h, p, p1), phase offset (deg), and the
#: nodal exponents {base: power} (f = prod f_base**power, u = sum power * u_base).
CONSTITUENTS: dict[str, tuple[tuple[int, int, int, int, int], float, dict[str, int]]] = {
    "M2": ((2, -2, 2, 0, 0), 0.0, {"M2": 1}),
    "S2": ((2, 0, 0, 0, 0), 0.0, {}),
    "N2": ((2, -3, 2, 1, 0), 0.0, {"M2": 1}),
    "K2": ((2, 0, 2, 0, 0), 0.0, {"K2": 1}),
    "K1": ((1, 0, 1, 0, 0), -90.0, {"K1": 1}),
    "O1": ((1, -2, 1, 0, 0), 90.0, {"O1": 1}),
    "P1": ((1, 0, -1, 0, 0), 90.0, {}),
    "Q1": ((1, -3, 1, 1, 0), 90.0, {"O1": 1}),
    "NU2": ((2, -3, 4, -1, 0), 0.0, {"M2": 1}),
    "2N2": ((2, -4, 2, 2, 0), 0.0, {"M2": 1}),
    "MU2": ((2, -4, 4, 0, 0), 0.0, {"M2": 1}),
    "L2": ((2, -1, 2, -1, 0), 180.0, {"M2": 1}),
    "LAM2": ((2, -1, 0, 1, 0), 180.0, {"M2": 1}),
    "T2": ((2, 0, -1, 0, 1), 0.0, {}),
    "R2": ((2, 0, 1, 0, -1), 180.0, {}),
    "2SM2": ((2, 2, -2, 0, 0), 0.0, {"M2": -1}),
    "MKS2": ((2, -2, 4, 0, 0), 0.0, {"M2": 1, "K2": 1}),
    "EP2": ((2, -5, 4, 1, 0), 0.0, {"M2": 1}),
    "S1": ((1, 0, 0, 0, 0), 0.0, {}),
    "J1": ((1, 1, 1, -1, 0), -90.0, {"J1": 1}),
    "OO1": ((1, 2, 1, 0, 0), -90.0, {"OO1": 1}),
    "M1": ((1, -1, 1, 1, 0), -90.0, {"O1": 1}),
    "RHO1": ((1, -3, 3, -1, 0), 90.0, {"O1": 1}),
    "2Q1": ((1, -4, 1, 2, 0), 90.0, {"O1": 1}),
    "SIG1": ((1, -4, 3, 0, 0), 90.0, {"O1": 1}),
    "MM": ((0, 1, 0, -1, 0), 0.0, {"MM": 1}),
    "MF": ((0, 2, 0, 0, 0), 0.0, {"MF": 1}),
    "MSF": ((0, 2, -2, 0, 0), 0.0, {"M2": -1}),
    "SA": ((0, 0, 1, 0, 0), 0.0, {}),
    "SSA": ((0, 0, 2, 0, 0), 0.0, {}),
    "M3": ((3, -3, 3, 0, 0), 0.0, {"M2": 1}),  # f = fM2**1.5 approximated by fM2
    "S3": ((3, 0, 0, 0, 0), 0.0, {}),
    "MK3": ((3, -2, 3, 0, 0), -90.0, {"M2": 1, "K1": 1}),
    "2MK3": ((3, -4, 3, 0, 0), 90.0, {"M2": 2, "K1": -1}),
    "M4": ((4, -4, 4, 0, 0), 0.0, {"M2": 2}),
    "MS4": ((4, -2, 2, 0, 0), 0.0, {"M2": 1}),
    "MN4": ((4, -5, 4, 1, 0), 0.0, {"M2": 2}),
    "N4": ((4, -6, 4, 2, 0), 0.0, {"M2": 2}),
    "S4": ((4, 0, 0, 0, 0), 0.0, {}),
    "2MK5": ((5, -4, 5, 0, 0), -90.0, {"M2": 2, "K1": 1}),
    "2MO5": ((5, -6, 5, 0, 0), 90.0, {"M2": 2, "O1": 1}),
    "M6": ((6, -6, 6, 0, 0), 0.0, {"M2": 3}),
    "2MS6": ((6, -4, 4, 0, 0), 0.0, {"M2": 2}),
    "S6": ((6, 0, 0, 0, 0), 0.0, {}),
    "M8": ((8, -8, 8, 0, 0), 0.0, {"M2": 4}),
}
#: Other names the published tables use.
ALIASES = {"RHO": "RHO1", "LAMBDA2": "LAM2", "LDA2": "LAM2", "SGM": "SIG1", "MSK2": "MKS2"}

#: Order in which a fit admits constituents (most energetic first); the Rayleigh criterion
#: decides how far down the list a record of a given length may go.
PRIORITY = ("M2", "K1", "S2", "O1", "N2", "SA", "K2", "P1", "Q1", "M4", "MS4", "MN4", "M6",
            "NU2", "2N2", "MU2", "L2", "SSA", "T2", "J1", "M1", "OO1", "MK3", "2MK3", "M3",
            "S4", "LAM2", "RHO1", "2Q1", "M8", "MF", "MM", "MSF", "2SM2", "R2", "S1")
#: Inference for records too short to separate a pair: equilibrium amplitude ratio, same phase.
INFERRED = {"P1": ("K1", 0.331), "K2": ("S2", 0.272)}
#: Shortest record a fit accepts (one lunar month, the classic minimum for M2/S2/N2/K1/O1).
MIN_FIT_DAYS = 29.0


def astro_speed(name: str) -> float:
    """Speed (deg/h) of an astronomical constituent, from its Doodson numbers."""
    d, _, _ = CONSTITUENTS[name]
    return float(np.dot(d, _RATE) / 24.0)


def _nodal_matrix(names: Sequence[str]) -> FloatArray:
    E = np.zeros((len(names), len(_BASES)))
    for i, n in enumerate(names):
        for base, power in CONSTITUENTS[n][2].items():
            E[i, _BASES.index(base)] = power
    return E


def _nodal_base(days: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(log f, u radians) of each nodal family at J2000 days ``days`` -> shape (n, bases).

    Sums of elementwise products in a fixed order, not matrix products: a BLAS product's
    rounding depends on the matrix's shape (one day vs several), and a day's factors must not
    depend on which other days were asked with it (see :meth:`Tide.predict`).
    """
    kN = np.radians(_N0 + _NRATE * days)[:, None] * _K123  # N, 2N, 3N
    c, s = np.cos(kN), np.sin(kN)
    f = _FC[:, 0] + c[:, 0:1] * _FC[:, 1]
    u = s[:, 0:1] * _UC[:, 0]
    for k in (2, 3):
        f = f + c[:, k - 1:k] * _FC[:, k]
        u = u + s[:, k - 1:k] * _UC[:, k - 1]
    return np.log(f), np.radians(u)


_K123 = np.array([1.0, 2.0, 3.0])
_FC = np.array([_NODAL_BASE[b][0] for b in _BASES])  # (bases, 4): f on cos 0..3N
_UC = np.array([_NODAL_BASE[b][1] for b in _BASES])  # (bases, 3): u on sin 1..3N


@dataclass(frozen=True)
class Tide:
    """Mean level, trend (m/year) and (cos, sin) coefficients per constituent (see module)."""

    constituents: tuple[str, ...]
    z0: float
    trend: float
    cos: tuple[float, ...]
    sin: tuple[float, ...]
    basis: str = "plain"
    #: where the constants came from (station, source, licence, attribution); not compared.
    meta: Optional[dict[str, Any]] = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.basis not in ("plain", "astronomical"):
            raise ValueError(f"tide basis must be 'plain' or 'astronomical', got {self.basis!r}")
        # Precomputed once: predict() used to rebuild these on every call (issue 16).
        a, b = np.array(self.cos, np.float64), np.array(self.sin, np.float64)
        if self.basis == "plain":
            w = np.radians([SPEEDS[c] for c in self.constituents])
            v0 = np.zeros(len(w))
            E = np.zeros((len(w), len(_BASES)))
        else:
            w = np.radians([astro_speed(c) for c in self.constituents])
            doodson = np.array([CONSTITUENTS[c][0] for c in self.constituents],
                               np.float64).reshape(-1, 5)
            offset = np.array([CONSTITUENTS[c][1] for c in self.constituents])
            # V at EPOCH (2000-01-01 00:00 UTC): J2000 days = -0.5.
            v0 = np.radians(doodson @ (_LON0 + _RATE * -0.5) + offset)
            E = _nodal_matrix(self.constituents)
        object.__setattr__(self, "_w", np.asarray(w, np.float64))
        object.__setattr__(self, "_v0", v0)
        object.__setattr__(self, "_a", a)
        object.__setattr__(self, "_b", b)
        # The nodal families of each constituent, as (family index, power) columns: term j
        # of every constituent is its j-th family in _BASES order (power 0 when it has fewer).
        used = [np.flatnonzero(row) for row in E]
        terms = max([len(k) for k in used] + [1])
        object.__setattr__(self, "_powers", [
            (np.array([k[j] if j < len(k) else 0 for k in used], np.intp),
             np.array([row[k[j]] if j < len(k) else 0.0 for row, k in zip(E, used)]))
            for j in range(terms)])
        object.__setattr__(self, "_day_cache", [math.nan, [], []])
        object.__setattr__(self, "_nodal_cache", {})  # UTC day -> (f, u) rows (see _fu)
        object.__setattr__(self, "_terms", list(zip(np.asarray(w, np.float64).tolist(),
                                                    np.asarray(v0, np.float64).tolist(),
                                                    a.tolist(), b.tolist())))

    # -- evaluation -----------------------------------------------------------------------

    def _fu(self, ts: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Nodal (f, u) per row and constituent, evaluated at noon of each UTC day.

        A day's factors depend on that day alone (:func:`_nodal_base`, :meth:`_fu_days`), so a
        short call (a reading's times: one or two days) takes them from a small per-day cache
        and a long one (a fit over years) computes each distinct day once; same numbers."""
        days = np.floor(ts / 86400.0)
        if len(days) > _FEW_TIMES:
            uniq, inv = np.unique(days, return_inverse=True)
            logf, u = self._fu_days(uniq)
            return np.exp(logf)[inv], u[inv]
        keys = days.tolist()
        cache: dict[float, tuple[FloatArray, FloatArray]] = self._nodal_cache  # type: ignore[attr-defined]
        rows = {d: cache.get(d) for d in keys}
        missing = [d for d, r in rows.items() if r is None]
        if missing:
            logf, u = self._fu_days(np.array(missing))
            f = np.exp(logf)
            if len(cache) + len(missing) > _CACHED_DAYS:
                cache.clear()
            for j, d in enumerate(missing):
                rows[d] = cache[d] = (f[j], u[j])
        got = [rows[d] for d in keys]
        return (np.array([r[0] for r in got]),  # type: ignore[index]
                np.array([r[1] for r in got]))  # type: ignore[index]

    def _fu_days(self, days: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(log f, u) per UTC day number ``days`` (floor(UNIX time / 86400)), evaluated at noon.
        f = exp(sum_b power_b log f_b) and u = sum_b power_b u_b are summed base by base in a
        fixed order (not ``logf @ E.T``: a BLAS product rounds differently for one day or
        several)."""
        logf, u = _nodal_base((days * 86400.0 + 43200.0 - J2000) / 86400.0)
        (index, power), *more = self._powers  # type: ignore[attr-defined]
        log_fk, u_k = logf[:, index] * power, u[:, index] * power
        for index, power in more:
            log_fk = log_fk + logf[:, index] * power
            u_k = u_k + u[:, index] * power
        return log_fk, u_k

    def predict(self, ts: npt.ArrayLike) -> FloatArray:
        """Predicted level at UNIX times ``ts`` (same datum as the fit or the constants).

        >>> Tide(("M2",), 1.0, 0.0, (0.5,), (0.0,)).predict([EPOCH]).tolist()
        [1.5]
        """
        t = np.atleast_1d(np.asarray(ts, dtype=np.float64))
        if t.size > PREDICT_CHUNK:  # a constituent x time matrix per chunk, not per record
            return np.concatenate([self.predict(t[k:k + PREDICT_CHUNK])
                                   for k in range(0, t.size, PREDICT_CHUNK)])
        hours = (t - EPOCH) / 3600.0
        arg = np.outer(hours, self._w)  # type: ignore[attr-defined]
        arg += self._v0  # type: ignore[attr-defined]
        # Elementwise, then one sum per row: a time's level never depends on the other times of
        # the batch (a matrix product's rounding would), so a block predicted ahead gives the
        # very numbers of a call per reading (frugalai.features.tide_block). In place: the
        # same operations as f * (cos(arg) * a + sin(arg) * b) without a temporary per step.
        f: Optional[FloatArray] = None
        if self.basis == "astronomical":
            f, u = self._fu(t)
            arg += u
        harm = np.cos(arg)
        harm *= self._a  # type: ignore[attr-defined]
        sin = np.sin(arg, out=arg)
        sin *= self._b  # type: ignore[attr-defined]
        harm += sin
        if f is not None:
            harm *= f
        return np.asarray(self.z0 + self.trend * (hours / HOURS_PER_YEAR) + harm.sum(axis=1))

    def predict_one(self, ts: float) -> float:
        """The level at one instant in plain Python floats (no arrays to build; same numbers
        to 1e-12). A coastal flow takes its tide from :mod:`frugalai.features.tide_block`."""
        hours = (ts - EPOCH) / 3600.0
        terms = self._terms  # type: ignore[attr-defined]
        harm = 0.0
        if self.basis == "astronomical":
            day = math.floor(ts / 86400.0)
            cache = self._day_cache  # type: ignore[attr-defined]
            if cache[0] != day:
                f, u = self._fu(np.array([ts]))
                cache[:] = [day, f[0].tolist(), u[0].tolist()]
            for (w, v0, a, b), f_k, u_k in zip(terms, cache[1], cache[2]):
                arg = hours * w + v0 + u_k
                harm += f_k * (math.cos(arg) * a + math.sin(arg) * b)
        else:
            for w, v0, a, b in terms:
                arg = hours * w + v0
                harm += math.cos(arg) * a + math.sin(arg) * b
        return self.z0 + self.trend * (hours / HOURS_PER_YEAR) + harm

    # -- description ----------------------------------------------------------------------

    def coefficients(self) -> FloatArray:
        return np.array([self.z0, self.trend, *self.cos, *self.sin], dtype=np.float64)

    def amplitudes(self) -> dict[str, float]:
        """Amplitude (m) per constituent."""
        return {c: float(np.hypot(a, b)) for c, a, b in zip(self.constituents, self.cos, self.sin)}

    def phases(self) -> dict[str, float]:
        """Greenwich phase lag (deg, 0-360) per constituent (astronomical basis only)."""
        return {c: float(np.degrees(np.arctan2(b, a)) % 360.0)
                for c, a, b in zip(self.constituents, self.cos, self.sin)}

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"constituents": list(self.constituents), "z0": self.z0,
                             "trend_m_per_year": self.trend, "cos": list(self.cos),
                             "sin": list(self.sin), "epoch": EPOCH}
        if self.basis != "plain":
            d["basis"] = self.basis
            d["nodal"] = "Schureman/Pugh f,u evaluated at noon of each UTC day"
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tide:
        if float(d.get("epoch", EPOCH)) != EPOCH:
            raise ValueError(f"tide epoch {d.get('epoch')} differs from {EPOCH}")
        return cls(tuple(d["constituents"]), float(d["z0"]), float(d["trend_m_per_year"]),
                   tuple(float(x) for x in d["cos"]), tuple(float(x) for x in d["sin"]),
                   str(d.get("basis", "plain")), d.get("meta"))


def _design(hours: FloatArray, constituents: Sequence[str]) -> FloatArray:
    w = np.radians([SPEEDS[c] for c in constituents])
    phase = np.outer(hours, w)
    return np.hstack([np.ones((len(hours), 1)), (hours / HOURS_PER_YEAR)[:, None],
                      np.cos(phase), np.sin(phase)])


def fit_tide(ts: npt.ArrayLike, level: npt.ArrayLike,
             constituents: Sequence[str] = tuple(SPEEDS)) -> Tide:
    """Least-squares fit of mean, trend and constituents to the finite samples (plain basis)."""
    t = np.asarray(ts, dtype=np.float64)
    y = np.asarray(level, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(y)
    A = _design((t[ok] - EPOCH) / 3600.0, constituents)
    coef, *_ = np.linalg.lstsq(A, y[ok], rcond=None)
    n = len(constituents)
    return Tide(tuple(constituents), float(coef[0]), float(coef[1]),
                tuple(float(x) for x in coef[2:2 + n]), tuple(float(x) for x in coef[2 + n:]))


# -- the astronomical basis: choosing, fitting, loading published constants -------------------

def rayleigh_constituents(span_hours: float, rayleigh: float = 1.0,
                          priority: Sequence[str] = PRIORITY) -> tuple[str, ...]:
    """Constituents a record of ``span_hours`` resolves: taken in priority order, each kept
    only if its speed differs from the mean (0) and from every one kept by at least
    ``rayleigh * 360 / span`` deg/h (the Rayleigh criterion). Long-period terms (MF, MM, SA...)
    need a year: on a shorter record they would fit storm surges, not the tide.

    >>> rayleigh_constituents(29 * 24)[:6]
    ('M2', 'K1', 'S2', 'O1', 'N2', 'Q1')
    >>> {'SA', 'K2', 'P1'} <= set(rayleigh_constituents(366 * 24))
    True
    """
    min_sep = rayleigh * 360.0 / span_hours
    kept: list[str] = []
    speeds = [0.0]
    for name in priority:
        s = astro_speed(name)
        if s < 5.0 and span_hours < 365 * 24:
            continue  # long-period terms of a short record would only fit the weather
        if all(abs(s - o) >= min_sep for o in speeds):
            kept.append(name)
            speeds.append(s)
    return tuple(kept)


def _astro_columns(t: FloatArray, names: Sequence[str]) -> tuple[FloatArray, FloatArray]:
    """f cos(V+u), f sin(V+u) for each constituent at times ``t`` (unit coefficients)."""
    unit = Tide(tuple(names), 0.0, 0.0, (0.0,) * len(names), (0.0,) * len(names), "astronomical")
    hours = (t - EPOCH) / 3600.0
    f, u = unit._fu(t)
    arg = np.outer(hours, unit._w) + unit._v0 + u  # type: ignore[attr-defined]
    return f * np.cos(arg), f * np.sin(arg)


def fit_harmonics(ts: npt.ArrayLike, level: npt.ArrayLike,
                  constituents: Optional[Sequence[str]] = None, trend: Optional[bool] = None,
                  min_days: float = MIN_FIT_DAYS, chunk: int = 200_000) -> Tide:
    """Least-squares harmonic analysis with nodal corrections (astronomical basis).

    Constituents default to those the record resolves (:func:`rayleigh_constituents` on the
    hours its valid samples cover: a gap of months is fitted around, not counted);
    P1 and K2, when unresolved, are inferred from K1 and S2 (equilibrium ratio, same phase).
    A linear trend is fitted only on records of 2 years or more (default). Long records are
    accumulated in chunks (normal equations), so 70 years of hourly data fit in little memory.
    Raises ValueError when the finite samples span less than ``min_days``.
    """
    t = np.asarray(ts, dtype=np.float64)
    y = np.asarray(level, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    span_h = float(t.max() - t.min()) / 3600.0 if len(t) > 1 else 0.0
    # Hours actually covered (a record with a gap of months resolves no more than its data).
    step_h = float(np.median(np.diff(t))) / 3600.0 if len(t) > 1 else 0.0
    covered_h = min(span_h, len(t) * step_h)
    if covered_h < min_days * 24:
        raise ValueError(f"the record holds {covered_h / 24:.1f} days of valid levels; a tide "
                         f"fit needs at least {min_days:g} days")
    names = (tuple(constituents) if constituents is not None
             else rayleigh_constituents(covered_h))
    inferred = {k: v for k, v in INFERRED.items() if k not in names and v[0] in names}
    use_trend = span_h >= 2 * HOURS_PER_YEAR if trend is None else trend
    n = len(names)
    p = 1 + int(use_trend) + 2 * n
    AtA, Aty = np.zeros((p, p)), np.zeros(p)
    for i in range(0, len(t), chunk):
        tc = t[i:i + chunk]
        c, s = _astro_columns(tc, names)
        if inferred:
            ci, si = _astro_columns(tc, tuple(inferred))
            for j, (parent, ratio) in enumerate(inferred.values()):
                k = names.index(parent)
                c[:, k] += ratio * ci[:, j]
                s[:, k] += ratio * si[:, j]
        cols = [np.ones((len(tc), 1))]
        if use_trend:
            cols.append(((tc - EPOCH) / 3600.0 / HOURS_PER_YEAR)[:, None])
        A = np.hstack([*cols, c, s])
        AtA += A.T @ A
        Aty += A.T @ y[i:i + chunk]
    coef = np.linalg.lstsq(AtA, Aty, rcond=None)[0]
    off = 1 + int(use_trend)
    a, b = list(coef[off:off + n]), list(coef[off + n:])
    all_names = list(names)
    for child, (parent, ratio) in inferred.items():
        k = names.index(parent)
        all_names.append(child)
        a.append(ratio * a[k])
        b.append(ratio * b[k])
    meta = {"source": "fitted", "span_days": round(span_h / 24, 1),
            "covered_days": round(covered_h / 24, 1), "samples": len(t),
            "rayleigh": 1.0, "inferred": {k: f"{v[1]} x {v[0]}" for k, v in inferred.items()}}
    return Tide(tuple(all_names), float(coef[0]), float(coef[1]) if use_trend else 0.0,
                tuple(float(x) for x in a), tuple(float(x) for x in b), "astronomical", meta)


def from_constants(constituents: Sequence[dict[str, Any]], z0: float = 0.0,
                   meta: Optional[dict[str, Any]] = None) -> tuple[Tide, list[str]]:
    """A Tide from published constants ``[{name, amplitude (m), phase (deg, Greenwich lag)}]``.

    Returns the tide and the names skipped (unknown to this engine, or zero amplitude).
    """
    names: list[str] = []
    a: list[float] = []
    b: list[float] = []
    skipped: list[str] = []
    for c in constituents:
        name = ALIASES.get(str(c["name"]).upper(), str(c["name"]).upper())
        amp, g = float(c["amplitude"]), math.radians(float(c["phase"]))
        if name not in CONSTITUENTS or amp == 0.0 or name in names:
            skipped.append(str(c["name"]))
            continue
        names.append(name)
        a.append(amp * math.cos(g))
        b.append(amp * math.sin(g))
    return Tide(tuple(names), z0, 0.0, tuple(a), tuple(b), "astronomical", meta), skipped
