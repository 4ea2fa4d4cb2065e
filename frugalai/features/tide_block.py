"""The tide ahead of each reading, predicted a block at a time (issue 16: the fast path).

A coastal flow needs, on every reading at ``ts``, the tide at ``ts, ts + step, ...,
ts + ahead * step``. One :meth:`Tide.predict` call per reading costs ten times the model;
the tide is deterministic, so :class:`TideAhead` predicts ``block + ahead`` grid times in one
call and serves the following readings of the same grid from that block (a slice of a list).

Same numbers, bit for bit: :meth:`Tide.predict` computes each time's level with the same
operations whatever the other times of the batch, and a served time is the very float the
per-reading call would predict -- the block is used only when its origin and the step are whole
seconds (below 2**52), so ``ts + j * step`` is exact on both paths.

Off the grid -- a gap longer than the block, a reading between grid times (jitter), time going
back (a clock step), a non-integral time, NaN -- the reading is predicted on its own, as before;
a block is (re)built from a reading whose predecessor was exactly one step before it, so a
stream that never stays on a grid costs one plain call per reading, never a block per reading.
Memory: ``block + ahead`` floats.
"""

from __future__ import annotations

import math

import numpy as np

from frugalai.features.tide import Tide

#: Grid times a block serves (benchmarks/tide_block.py: past the knee; 256 hours = 10 days).
BLOCK = 256
#: Times whose sums with whole steps are exact in float64 (a margin below 2**53).
_EXACT = 2.0 ** 52


class TideAhead:
    """``levels(ts)`` = ``tide.predict(ts + step * arange(ahead + 1)).tolist()``, cheaply.

    Args:
        tide: the tide to predict.
        step_s: the readings' spacing (s).
        ahead: steps ahead predicted beyond ``ts`` (the horizon).
        block: grid times served per :meth:`Tide.predict` call.
    """

    def __init__(self, tide: Tide, step_s: float, ahead: int, block: int = BLOCK) -> None:
        if ahead < 0 or block < 1:
            raise ValueError(f"ahead must be >= 0 and block >= 1, got {ahead}, {block}")
        self.tide = tide
        self.step_s = float(step_s)
        self.ahead = ahead
        self.block = block
        self._offsets = self.step_s * np.arange(ahead + 1)
        self._whole_step = self.step_s.is_integer() and 0 < self.step_s < _EXACT
        self._t0 = math.nan  # origin of the block (no block yet)
        self._values: list[float] = []  # the tide at t0 + k * step, k < block + ahead
        self._prev = math.nan  # the previous reading's time
        #: blocks built and readings served by their own call (a measure of the grid's health)
        self.blocks = 0
        self.singles = 0

    def levels(self, ts: float) -> list[float]:
        """The tide at ``ts + k * step_s`` for k = 0..ahead, as floats."""
        prev, self._prev = self._prev, ts
        k = (ts - self._t0) / self.step_s  # NaN without a block or for a NaN time
        if 0.0 <= k < self.block:
            i = int(k)
            if self._t0 + i * self.step_s == ts:  # exact: on the block's grid
                return self._values[i:i + self.ahead + 1]
        if ts - prev == self.step_s and self._whole_step and ts % 1.0 == 0.0 \
                and abs(ts) + self.step_s * (self.block + self.ahead) < _EXACT:
            return self._new_block(ts)
        self.singles += 1
        return self.tide.predict(ts + self._offsets).tolist()  # type: ignore[no-any-return]

    def _new_block(self, ts: float) -> list[float]:
        times = ts + self.step_s * np.arange(self.block + self.ahead)
        self._values = self.tide.predict(times).tolist()
        self._t0 = ts
        self.blocks += 1
        return self._values[:self.ahead + 1]

    def __repr__(self) -> str:
        return (f"TideAhead(step_s={self.step_s}, ahead={self.ahead}, block={self.block}, "
                f"blocks={self.blocks}, singles={self.singles})")
