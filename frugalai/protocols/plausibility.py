"""Plausibility gates for meter values (pure): a checksum-valid frame can still lie.

The TIC checksum is 6 bits of a byte sum, so some corruptions pass it: flipping bit 6 (0x40)
of a character leaves ``sum & 0x3F`` unchanged, and two flips that cancel out (+0x20 on one
character, -0x20 on another) do too. When such a flip hits the label ``HCHP``, the frame
simply lacks the peak-hours index, the historique total drops by ~7 MWh, and the power
derived from it read 5.26e9 W on c1edaa6. A gate per quantity refuses what the meter cannot
have measured:

* an **energy index** (``*_wh``, ``*_varh``) never decreases, and never grows faster than
  the subscription allows (``limit_va`` x elapsed time);
* a **power** (VA, W) is never negative nor above ``limit_va``, the subscription with a
  margin: ``ISOUSC`` (A, per phase) x 200 VA x phases (historique) or ``PREF`` (VA, standard),
  times ``margin``; before
  either is seen, 36 kVA (the largest French residential subscription) x ``margin``.

A refused value is removed from the reading and counted, never turned into a value. A
genuine reset (a meter replaced, an index restarted) shows as the *same* refusal frame after
frame: after ``accept_after`` consecutive refusals of one index, the new level is taken as
the truth (counted in ``rebased``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

#: the largest French residential (C5) subscription, kVA -> VA
DEFAULT_SUBSCRIPTION_VA = 36_000.0
#: historique subscriptions are a current; Enedis counts 200 VA per ampere (30 A = 6 kVA)
VA_PER_SUBSCRIBED_A = 200.0
#: an index may move by a few Wh within one frame period without any power (quantisation)
INDEX_SLACK_WH = 10.0


def is_index(name: str) -> bool:
    """Energy indexes: quantities in Wh or VArh (``energy_total_wh``, ``reactive_..._varh``)."""
    return name.endswith("_wh") or name.endswith("_varh")


def is_power(name: str) -> bool:
    """Instantaneous powers: ``*_va`` and ``*_w`` (apparent, active, load curve)."""
    return (name.endswith("_va") or name.endswith("_w")) and not name.startswith(
        ("subscribed_", "cutoff_"))


@dataclass
class _Index:
    ts: float
    value: float
    refused: int = 0
    candidate: Optional[float] = None


@dataclass
class PlausibilityGate:
    """Per-meter gate; ``check`` returns the values to keep and the names refused.

    >>> g = PlausibilityGate()
    >>> g.check(0.0, {"subscribed_current_a": 30.0, "apparent_power_va": 1200.0,
    ...               "energy_total_wh": 8_888_888.0})[1]
    []
    >>> g.limit_va
    18000.0
    >>> kept, refused = g.check(2.0, {"apparent_power_va": 5.26e9, "energy_total_wh": 1_234_567.0})
    >>> kept, refused
    ({}, ['apparent_power_va', 'energy_total_wh'])
    >>> g.check(4.0, {"energy_total_wh": 8_888_889.0})
    ({'energy_total_wh': 8888889.0}, [])
    """

    margin: float = 3.0
    accept_after: int = 10
    refused: int = 0
    rebased: int = 0
    subscription_va: Optional[float] = None
    _indexes: dict[str, _Index] = field(default_factory=dict)

    @property
    def limit_va(self) -> float:
        return (self.subscription_va or DEFAULT_SUBSCRIPTION_VA) * self.margin

    def _subscription(self, values: dict[str, float]) -> None:
        amps = values.get("subscribed_current_a")
        kva = values.get("subscribed_power_va")
        if amps is not None and 0 < amps <= 200:
            # historique three-phase meters give ISOUSC per phase
            phases = 3 if any(k in values for k in ("current_l2_a", "current_l3_a")) else 1
            self.subscription_va = amps * VA_PER_SUBSCRIBED_A * phases
        elif kva is not None and 0 < kva <= 500_000:
            self.subscription_va = kva

    def check(self, ts: float, values: dict[str, float]) -> tuple[dict[str, float], list[str]]:
        """(values kept, names refused) for one reading at ``ts`` (seconds)."""
        self._subscription(values)
        kept: dict[str, float] = {}
        refused: list[str] = []
        for name, value in values.items():
            ok = math.isfinite(value)
            if ok and is_power(name):
                ok = 0.0 <= value <= self.limit_va
            elif ok and is_index(name):
                ok = self._index_ok(name, ts, value)
            if ok:
                kept[name] = value
            else:
                refused.append(name)
        self.refused += len(refused)
        return kept, refused

    def _index_ok(self, name: str, ts: float, value: float) -> bool:
        last = self._indexes.get(name)
        if last is None:
            if value < 0:
                return False
            self._indexes[name] = _Index(ts, value)
            return True
        dt = ts - last.ts
        # a clock step back gives no time for growth: only the direction is checked then
        most = self.limit_va * max(dt, 0.0) / 3600.0 + INDEX_SLACK_WH
        if last.value <= value <= last.value + most:
            self._indexes[name] = _Index(ts, value)
            return True
        # refused; the same new level frame after frame is a reset or a new meter
        same = last.candidate is not None and abs(value - last.candidate) <= (
            self.limit_va * 60.0 / 3600.0 + INDEX_SLACK_WH)
        last.refused = last.refused + 1 if same else 1
        last.candidate = value
        if last.refused >= self.accept_after and value >= 0:
            self._indexes[name] = _Index(ts, value)
            self.rebased += 1
            return True
        return False
