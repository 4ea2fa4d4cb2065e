"""Sensor health checks: is the sensor still telling the truth? Pure, O(1), run per reading.

A model's decision is only as good as its input: a stuck, drifting, noisy or dying sensor must
not be taken for a real event. :class:`SensorHealth` watches one sensor's values and says which
*faults* are active, as an 8-bit mask (one bit per check, :data:`FAULTS`), so that the caller
sends an event only when the mask changes, never per reading.

The checks (each a few float operations; no numpy, no allocation on the hot path):

* ``gap``: no reading for ``gap_periods`` sampling periods (the period is the data sheet's
  ``period_s``, else learned from the readings). Known when the next reading arrives (offline,
  replay) or from :meth:`SensorHealth.tick` with the wall clock (live).
* ``stuck``: the value has not moved by more than ``stuck_tol`` for ``stuck_n`` readings.
* ``range``: outside the stated range (``spec.range``); for a counter (an energy index), going
  backwards (a reset or a meter swap).
* ``spike``: an isolated jump, far beyond the usual step, that comes back at the next reading.
  The steps are those of the residual against the reference when there is one (the predicted
  tide), so the tide's own motion is not taken for spikes.
* ``noise``: the reading-to-reading roughness (second differences) well above its long-run
  level.
* ``drift``: for a sensor with a reference (a tide gauge and its predicted tide), the mean
  residual over weeks leaves the level it held: the tide does not drift, a fouled or sinking
  sensor does.
* ``partner``: the difference to a co-located sensor (a flow's ``partner``) leaves its usual
  level.
* ``link``: a LoRa node's battery below its floor, its RSSI/SNR falling well below their
  usual level, or its frame counter skipping (uplinks lost).

The state is a handful of plain floats in ``__slots__`` (:func:`state_bytes`); the thresholds
live in one shared frozen :class:`Limits`.

>>> h = SensorHealth(Limits(period_s=3600.0, stuck_n=4, learn_n=0))
>>> [h.update(3600.0 * i, 1.25) for i in range(6)]
[0, 0, 0, 2, 0, 0]
>>> names(h.faults)
['stuck']
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Optional

from frugalai.events.event import HEALTH_CHECKS

#: check names, by bit: bit i of a mask is FAULTS[i]; the code of a check on the wire is i.
FAULTS: tuple[str, ...] = HEALTH_CHECKS
GAP, STUCK, RANGE, SPIKE, NOISE, DRIFT, PARTNER, LINK = (1 << i for i in range(8))
NAN = math.nan
_DAY = 86400.0


def names(mask: int) -> list[str]:
    """The check names of a mask.

    >>> names(0b100010)
    ['stuck', 'drift']
    """
    return [name for i, name in enumerate(FAULTS) if mask >> i & 1]


def mask_of(checks: list[str]) -> int:
    """The mask of check names (the inverse of :func:`names`); ValueError on an unknown one."""
    out = 0
    for c in checks:
        if c not in FAULTS:
            raise ValueError(f"unknown health check {c!r}; known: {', '.join(FAULTS)}")
        out |= 1 << FAULTS.index(c)
    return out


@dataclass(frozen=True)
class Limits:
    """The thresholds of the checks: the data sheet's figures and the defaults below.

    Attributes:
        period_s: expected sampling period, s (0: learned from the readings).
        gap_periods: a gap is this many periods without a reading.
        low, high: the sensor's stated range (infinite: not checked).
        monotonic: the value is a counter (an energy index): going backwards is a fault.
        stuck_n: readings within ``stuck_tol`` of each other that make a stuck sensor (at
            least twice the longest such run seen in the first ``learn_n`` readings; 0: never).
        stuck_tol: the "same value" tolerance (0: exactly equal).
        spike_k: a spike is a step beyond this many times the usual step (robust scale),
            coming back, with the point this far from the mean of its two neighbours.
        noise_ratio: noise is flagged when the short-run roughness exceeds the long-run one
            by this factor (cleared below half of it).
        noise_alpha: weight of each reading in the short-run roughness (1/readings it
            averages).
        drift_limit: drift flagged when the weeks-long mean residual moves this far (value
            unit; NaN: derived from the day-to-day scatter learned at first, ``drift_k``).
        drift_k: multiplier of that scatter.
        drift_days: days of the mean residual's time constant (how many weeks it averages).
        base_days: days learned before the drift check judges (and the baseline's memory is
            ``base_days * 12``).
        partner_k: partner check: robust-scale multiplier of the difference's departure.
        battery_min_v: a LoRa node's battery floor, V.
        rssi_drop_db: RSSI fallen this far below its long-run level.
        snr_min_db: SNR under this (near the demodulation floor of SF12).
        loss_max: fraction of uplinks lost (frame counter gaps) over the recent ones.
        warmup: readings before spike, noise and partner judge (their scales are learned).
        learn_n: readings during which the stuck check learns how long the sensor's own
            values repeat (and judges nothing).
        clear_n: readings without the fault before a spike, range or link fault clears.
    """

    period_s: float = 0.0
    gap_periods: float = 2.5
    low: float = -math.inf
    high: float = math.inf
    monotonic: bool = False
    stuck_n: int = 5
    stuck_tol: float = 0.0
    spike_k: float = 5.0
    noise_ratio: float = 2.0
    noise_alpha: float = 0.05
    drift_limit: float = NAN
    drift_k: float = 6.0
    drift_days: float = 15.0
    base_days: float = 60.0
    partner_k: float = 6.0
    battery_min_v: float = 3.3
    rssi_drop_db: float = 12.0
    snr_min_db: float = -17.0
    loss_max: float = 0.25
    warmup: int = 48
    learn_n: int = 480
    clear_n: int = 12

    def __post_init__(self) -> None:
        # the thresholds the per-reading path reads, as one tuple (one attribute lookup)
        object.__setattr__(self, "hot", (
            self.period_s, self.gap_periods, self.low, self.high, self.monotonic,
            self.stuck_tol, self.learn_n, self.stuck_n, self.warmup, self.spike_k,
            self.noise_ratio, self.clear_n, self.noise_alpha))
        # the link's and the partner's, likewise (their per-reading cost is most of the total)
        object.__setattr__(self, "hot_link", (
            self.battery_min_v, self.warmup, self.rssi_drop_db, self.snr_min_db,
            self.loss_max, self.clear_n))
        object.__setattr__(self, "hot_partner", (self.warmup, self.partner_k))

    def __repr__(self) -> str:
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
                   if getattr(self, f.name) != f.default
                   and not (isinstance(f.default, float) and math.isnan(f.default)
                            and math.isnan(getattr(self, f.name)))]
        return f"Limits({', '.join(changed)})"


class SensorHealth:
    """The checks of one sensor. ``update(ts, x, ref)`` per reading returns the changed bits.

    Args:
        limits: thresholds (shared, immutable).

    Attributes:
        faults: the active faults, a mask of :data:`FAULTS` bits.
        figure: the figure of the last change (gap s, stuck s, the value out of range, the
            spike's size, the noise ratio, the drift, the partner difference, the link figure):
            what the health event carries.
    """

    __slots__ = (
        "base",
        "base_var",
        "cand",
        "day",
        "day_n",
        "day_sum",
        "days",
        "faults",
        "figure",
        "flat_max",
        "flat_n",
        "flat_ts",
        "flat_x",
        "last_d",
        "last_r",
        "last_ts",
        "last_x",
        "level",
        "limits",
        "n",
        "period",
        "range_quiet",
        "rough_fast",
        "rough_slow",
        "scale",
        "spike_quiet",
    )

    def __init__(self, limits: Optional[Limits] = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self.faults = 0
        self.figure = NAN
        self.n = 0
        self.last_ts = NAN
        self.period = self.limits.period_s or NAN
        self.last_x = NAN
        self.last_r = NAN   # last residual (value - reference)
        self.last_d = NAN   # last step of the residual
        self.cand = 0.0     # a spike candidate's step, 0 when none
        self.scale = NAN    # mean absolute step (robust: clipped)
        self.flat_n = 0
        self.flat_max = 0
        self.flat_x = NAN
        self.flat_ts = NAN
        self.rough_fast = NAN
        self.rough_slow = NAN
        self.spike_quiet = 0
        self.range_quiet = 0
        self.day = NAN      # the UTC day being averaged (drift)
        self.day_sum = 0.0
        self.day_n = 0
        self.base = NAN     # the residual's long-run level
        self.base_var = 0.0  # variance of the day means while learning the base
        self.level = NAN    # the residual's weeks-long level
        self.days = 0       # days closed

    def __repr__(self) -> str:
        return f"SensorHealth({self.limits!r}, faults={names(self.faults)})"

    # -- the hot path ------------------------------------------------------------------------

    def update(self, ts: float, x: float, ref: float = NAN) -> int:
        """Feed one reading; return the mask of checks whose state changed (0 almost always).

        ``x`` NaN is no reading (a recorded gap, a frame without the quantity): ignored;
        ``ref`` is the reference the value should follow (the predicted tide), NaN if none.
        A gap is reported when the reading after it arrives: the GAP bit is in the returned
        mask while not in :attr:`faults` (it began and ended), :attr:`figure` its length in
        seconds; after :meth:`tick` raised it, the same reading clears it.

        One flat function on purpose (the per-reading cost: no call per check, the thresholds
        unpacked from one tuple).
        """
        if not -1e300 < x < 1e300:
            if x != x:
                return 0
            return self._infinite(x)  # never into the running sums: it would poison them
        (period_s, gap_periods, low, high, monotonic, stuck_tol, learn_n, stuck_n, warmup,
         spike_k, noise_ratio, clear_n, noise_alpha) = self.limits.hot  # type: ignore[attr-defined]
        old = f = self.faults
        pulse = 0
        dt = ts - self.last_ts
        if dt > 0.0:  # NaN on the first reading; <= 0: a clock stepped back, not judged
            period = self.period
            if period != period:
                if period_s <= 0:
                    self.period = dt
            elif dt > gap_periods * period:
                if not f & GAP:
                    pulse = GAP
                f &= ~GAP
                self.figure = dt
                self.last_r = NAN  # steps across a gap say nothing
                self.last_d = NAN
                self.cand = 0.0
                self.flat_n = 0
                self.flat_x = NAN
            else:
                f &= ~GAP  # raised by tick(), ended by this reading
                if period_s <= 0 and dt < 2.0 * period:
                    self.period = period + (dt - period) * 0.05
            self.last_ts = ts
        elif dt != dt:
            self.last_ts = ts
        n = self.n = self.n + 1
        # range, and a counter going backwards
        last_x = self.last_x
        back = monotonic and x < last_x
        if x < low or x > high or back:
            self.range_quiet = 0
            if not f & RANGE:
                f |= RANGE
                self.figure = x - last_x if back else x
        elif f & RANGE:
            self.range_quiet += 1
            if self.range_quiet >= (clear_n if monotonic else 1):
                f &= ~RANGE
        # stuck: the value stays put (longer than it did while the checks learned it: a
        # meter's integer VA or a counter at night repeats, a tide never does)
        if abs(x - self.flat_x) <= stuck_tol:
            flat = self.flat_n = self.flat_n + 1
            if n <= learn_n:
                if flat > self.flat_max:
                    self.flat_max = flat
            elif (flat >= stuck_n and flat >= 2 * self.flat_max and not f & STUCK
                  and stuck_n > 0):
                f |= STUCK
                self.figure = ts - self.flat_ts
        else:
            self.flat_n = 1
            self.flat_x = x
            self.flat_ts = ts
            f &= ~STUCK
        self.last_x = x
        # the residual against the reference (the value itself without one)
        has_ref = ref == ref
        r = x - ref if has_ref else x
        d = r - self.last_r
        self.last_r = r
        if d == d:
            # spike and noise, from the step d of the residual
            scale = self.scale
            ad = d if d >= 0 else -d
            warm = n > warmup
            cand = self.cand
            judge = True
            if cand:
                self.cand = 0.0
                # a spike comes back: the next step goes the other way, most of the way, and
                # the point stands out from both neighbours (its departure from their mean,
                # (cand - d) / 2, beyond the threshold too): one step alone is not enough, as
                # white noise makes a 4-sigma step (a low then a high) in 1 of ~14,000 readings
                if ((d > 0) != (cand > 0) and ad > 0.5 * (cand if cand > 0 else -cand)
                        and (cand - d if cand > 0 else d - cand) > 2.0 * spike_k * scale):
                    if not f & SPIKE:
                        f |= SPIKE
                        self.figure = cand
                    self.spike_quiet = 0
                    self.last_d = NAN
                    judge = False
                # else a step to a new level: judged as any step below
            elif warm and ad > spike_k * scale:
                self.cand = d
                self.last_d = NAN
                judge = False
            if judge:
                if scale != scale:
                    self.scale = ad
                else:
                    top = 3.0 * scale
                    self.scale = scale + ((ad if ad < top else top) - scale) * 0.02
                if f & SPIKE:
                    self.spike_quiet += 1
                    if self.spike_quiet >= clear_n:
                        f &= ~SPIKE
                # roughness: the second difference of the residual
                e = d - self.last_d
                self.last_d = d
                if e == e:
                    ae = e if e >= 0 else -e
                    fast = self.rough_fast
                    if fast != fast:
                        self.rough_fast = self.rough_slow = ae
                    else:
                        fast += (ae - fast) * noise_alpha
                        self.rough_fast = fast
                        slow = self.rough_slow
                        # a running mean first, then a memory of ~2000 readings; slower while
                        # flagged (a lasting change becomes the new normal, ~8000 readings)
                        rate = 1.0 / n if n < 2000 else 0.0005
                        slow += (ae - slow) * (rate * 0.25 if f & NOISE else rate)
                        self.rough_slow = slow
                        if warm and slow > 0:
                            ratio = fast / slow
                            if not f & NOISE:
                                if ratio > noise_ratio:
                                    f |= NOISE
                                    self.figure = ratio
                            elif ratio < 0.5 * (1.0 + noise_ratio):
                                f &= ~NOISE
        # drift: day means of the residual against a reference
        if has_ref:
            day = ts // 86400.0
            if day != self.day:
                if self.day_n:
                    f = self._close_day(self.day_sum / self.day_n, f)
                self.day = day
                self.day_sum = 0.0
                self.day_n = 0
            self.day_sum += r
            self.day_n += 1
        self.faults = f
        return (old ^ f) | pulse

    def _infinite(self, x: float) -> int:
        """An infinite (or absurd) value: out of any range, and nothing else is learned."""
        self.range_quiet = 0
        if self.faults & RANGE:
            return 0
        self.faults |= RANGE
        self.figure = x
        return RANGE

    def _close_day(self, mean: float, f: int) -> int:
        """One day's mean residual: learn the base level, then follow the weeks-long level."""
        lim = self.limits
        self.days += 1
        days = self.days
        base = self.base
        if base != base:
            self.base = self.level = mean
            return f
        if days <= lim.base_days:  # learning: running mean and variance of the day means
            dev = mean - base
            base += dev / days
            self.base = base
            self.base_var += (dev * (mean - base) - self.base_var) / days
            self.level = base
            return f
        level = self.level + (mean - self.level) / lim.drift_days
        self.level = level
        limit = lim.drift_limit
        if limit != limit:
            limit = lim.drift_k * math.sqrt(self.base_var / lim.drift_days)
        off = level - base
        if not f & DRIFT:
            self.base = base + (mean - base) / (lim.base_days * 12.0)
            if abs(off) > limit:
                f |= DRIFT
                self.figure = off
        elif abs(off) < 0.5 * limit:
            f &= ~DRIFT
        return f

    def tick(self, now: float) -> int:
        """The clock, without a reading: raise a gap that is going on (live sources).

        Returns the changed mask (GAP when the gap starts now). ``now`` must be on the
        readings' clock: the caller only calls it for a source that stamps with the wall clock.
        """
        period = self.period
        if (not self.faults & GAP and period == period
                and now - self.last_ts > self.limits.gap_periods * period):
            self.faults |= GAP
            self.figure = now - self.last_ts
            return GAP
        return 0

    def noise(self) -> float:
        """The measured noise, value unit: the roughness as a standard deviation (the second
        difference of white noise of deviation s has a mean absolute value sqrt(6) 0.798 s = 1.954 s)."""
        return self.rough_slow / 1.954 if self.rough_slow == self.rough_slow else NAN


class LinkHealth:
    """A LoRa node's link: battery floor, RSSI/SNR against their long-run level, lost uplinks.

    ``update(battery_v, rssi_dbm, snr_db, f_cnt)`` with NaN for what the reading lacks; returns
    True while the link is faulty. :attr:`figure` is the figure that tripped it.
    """

    __slots__ = (
        "bad",
        "fcnt",
        "figure",
        "limits",
        "loss",
        "n",
        "quiet",
        "rssi_fast",
        "rssi_slow",
        "snr_fast",
    )

    def __init__(self, limits: Optional[Limits] = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self.bad = False
        self.figure = NAN
        self.rssi_fast = NAN
        self.rssi_slow = NAN
        self.snr_fast = NAN
        self.fcnt = NAN
        self.loss = 0.0
        self.quiet = 0
        self.n = 0

    def update(self, battery_v: float = NAN, rssi_dbm: float = NAN, snr_db: float = NAN,
               f_cnt: float = NAN) -> bool:
        """One uplink's figures (NaN: not in this reading); True while the link is faulty.

        Written for the per-reading cost (locals, the thresholds from one tuple, the loss
        average not touched while nothing is lost): same arithmetic as a plain version.
        """
        battery_min_v, warmup, rssi_drop_db, snr_min_db, loss_max, clear_n = \
            self.limits.hot_link  # type: ignore[attr-defined]
        n = self.n = self.n + 1
        bad = self.bad
        why = NAN
        if battery_v < battery_min_v:  # False for NaN
            why = battery_v
        if rssi_dbm == rssi_dbm:
            fast = self.rssi_fast
            if fast != fast:
                self.rssi_fast = self.rssi_slow = rssi_dbm
            else:
                self.rssi_fast = fast = fast + (rssi_dbm - fast) * 0.1
                slow = self.rssi_slow
                if not bad:
                    self.rssi_slow = slow = slow + (rssi_dbm - slow) * 0.005
                if n > warmup and fast < slow - rssi_drop_db:
                    why = fast
        if snr_db == snr_db:
            snr = self.snr_fast
            self.snr_fast = snr = snr_db if snr != snr else snr + (snr_db - snr) * 0.1
            if snr < snr_min_db:
                why = snr
        if f_cnt == f_cnt:
            last = self.fcnt
            if f_cnt > last:  # False on the first (NaN) and on a counter reset
                lost = f_cnt - last - 1.0
                loss = self.loss
                if lost or loss:
                    loss += (lost / (lost + 1.0) - loss) * 0.1
                    self.loss = loss = loss if loss > 1e-12 else 0.0
                    if loss > loss_max:
                        why = loss
            self.fcnt = f_cnt
        if why == why:
            self.quiet = 0
            if not bad:
                self.bad = True
                self.figure = why
            return True
        if bad:
            quiet = self.quiet = self.quiet + 1
            if quiet >= clear_n:
                self.bad = False
                return False
        return bad


#: partner check: the slow average of the difference follows the 10-reading one, every
#: PARTNER_SLOW_EVERY readings with this weight (a memory of ~100 readings, four days at hourly
#: sampling; nine readings in ten skip it), and its scatter is learned over the first
#: PARTNER_SLOW_LEARN readings after the warm-up before it judges
PARTNER_SLOW_EVERY = 10
PARTNER_SLOW_ALPHA = 0.1
PARTNER_SLOW_LEARN = 1000


class PartnerCheck:
    """Two co-located sensors of one quantity: their difference should keep its level.

    ``update(x, partner_x)`` returns True while the difference is off its usual level: its
    10-reading average by more than ``partner_k`` robust scales (a mean absolute departure,
    learned at first: a partner that jumps, sticks or fails), or its slow average (~100
    readings, updated every :data:`PARTNER_SLOW_EVERY`) by more than ``partner_k`` times that
    average's own scatter, learned over :data:`PARTNER_SLOW_LEARN` readings (a drift of one
    of the two: the weather is common to both, so the difference keeps only the instruments'
    noise and a drift stands out of it in weeks, where against a predicted tide it takes
    months). The learned scatter is the
    slow average's own, so a pair whose difference persists (two sensors that answer waves
    or temperature differently) gets the wider threshold it needs.
    """

    __slots__ = ("bad", "base", "fast", "figure", "limits", "n", "scale", "slow", "slow_var")

    def __init__(self, limits: Optional[Limits] = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self.bad = False
        self.figure = NAN
        self.base = NAN
        self.scale = NAN
        self.fast = NAN
        self.slow = NAN
        self.slow_var = 0.0  # mean square of (slow average - base) while learning
        self.n = 0

    def update(self, x: float, partner_x: float) -> bool:
        """One pair of readings; True while the difference is off its usual level."""
        diff = x - partner_x
        if diff != diff:
            return self.bad
        n = self.n = self.n + 1
        base = self.base
        if base != base:
            self.base = self.fast = self.slow = diff
            self.scale = 0.0
            return False
        warmup, partner_k = self.limits.hot_partner  # type: ignore[attr-defined]
        fast = self.fast
        fast = self.fast = fast + (diff - fast) * 0.1
        dev = diff - base
        if dev < 0.0:
            dev = -dev
        scale = self.scale
        if n <= warmup:
            # the slow average starts from the warm-up's mean, not from one noisy difference
            # (whose decay would inflate the scatter it learns next, and its threshold)
            self.base = self.slow = base + (diff - base) / n
            self.scale = scale + (dev - scale) / n
            return False
        bad = self.bad
        if not bad:
            self.base = base = base + (diff - base) * 0.001
            top = 3.0 * scale
            self.scale = scale = scale + ((dev if dev < top else top) - scale) * 0.01
        off = fast - base
        if off < 0.0:
            off = -off
        limit = partner_k * scale
        drifting = False
        if not n % PARTNER_SLOW_EVERY:
            # the slow average: its scatter learned first, then judged
            slow = self.slow
            slow = self.slow = slow + (fast - slow) * PARTNER_SLOW_ALPHA
            soff = slow - base
            k = n - warmup
            slow_var = self.slow_var
            if k <= PARTNER_SLOW_LEARN:
                m = (k - 1) // PARTNER_SLOW_EVERY + 1  # learning updates so far
                self.slow_var = slow_var + (soff * soff - slow_var) / m
            else:
                drifting = soff * soff > partner_k * partner_k * slow_var and slow_var > 0.0
        if not bad:
            if off > limit and scale > 0:
                self.bad = True
                self.figure = fast - base
                return True
            if drifting:
                self.bad = True
                self.figure = self.slow - base
                return True
            return False
        if off < 0.5 * limit:
            soff = self.slow - base
            if (n - warmup <= PARTNER_SLOW_LEARN
                    or soff * soff < 0.25 * partner_k * partner_k * self.slow_var):
                self.bad = False
                return False
        return True


def state_bytes(obj: object) -> int:
    """Bytes of state as packed 8-byte numbers: one per slot but the shared ``limits``.

    What a C port or the statistics file holds per sensor; the CPython object is bigger
    (every float is an object): :func:`python_bytes`.
    """
    slots: tuple[str, ...] = getattr(type(obj), "__slots__", ())
    return 8 * sum(1 for s in slots if s != "limits")


def python_bytes(obj: object) -> int:
    """The CPython footprint: the object plus the float objects it holds (not the shared
    limits, not small ints and booleans that CPython shares)."""
    import sys

    total = sys.getsizeof(obj)
    slots: tuple[str, ...] = getattr(type(obj), "__slots__", ())
    for s in slots:
        v = getattr(obj, s)
        if isinstance(v, float) or (isinstance(v, int) and not -5 <= v <= 256
                                    and not isinstance(v, bool)):
            total += sys.getsizeof(v)
    return total
