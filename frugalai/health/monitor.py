"""One flow's sensor health: its checks fed each Reading, health events when a state changes,
its model's decisions held while the sensor is unhealthy (``hold_when_unhealthy``). Pure.

The pipeline calls :meth:`FlowHealth.reading` on every Reading (before the model),
:meth:`FlowHealth.hold` on the model's events, and :meth:`FlowHealth.tick` from its own thread
(a live source gone silent is a gap before any reading says so). A ``health`` event carries the
failing checks' mask (``label``), the check that changed (``model_id``, its code) and that
check's figure (``value``); its ``score`` is 1 when the flow holds its decisions.

The thresholds come from the flow's data sheet (``spec``) and what the flow is: an energy
index (``aggregate = "rate"``) must never go backwards; a coastal flow's reference is the
bundle's own tide, so the spikes, noise and drift are judged on the surge, not on the tide.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any, Optional

from frugalai.events.event import Event
from frugalai.health.checks import (
    DRIFT,
    FAULTS,
    GAP,
    LINK,
    NOISE,
    PARTNER,
    RANGE,
    SPIKE,
    STUCK,
    Limits,
    LinkHealth,
    PartnerCheck,
    SensorHealth,
    names,
)
from frugalai.health.stats import DayBook
from frugalai.reading import Reading

if TYPE_CHECKING:  # a coastal flow's scorer brings the tide; others never import it
    from frugalai.features.tide import Tide

#: the checks that make values untrustworthy: a flow told to hold does not decide on them
#: (a gap or a weak radio link leaves the values that do arrive right)
HOLD_MASK = STUCK | RANGE | SPIKE | NOISE | DRIFT | PARTNER
#: a reading stamped within this of the wall clock comes from a live source: tick() may raise a
#: gap by the clock (a replayed file's times are not the wall clock's)
LIVE_SKEW_S = 120.0
DECISIONS = ("alarm", "clear", "class")
#: readings looked at for radio figures (RSSI, SNR, frame counter, battery) before a flow is
#: taken for a wired one and the link check stops looking
RADIO_PROBES = 20


class Reference:
    """A tide as a reference at any time: predicted in blocks on a 5-minute grid, linear in
    between (a third of a millimetre at Providence, overtides included; 1.3 mm on a 10-minute
    grid), one numpy call per block (42 hours), plain floats per reading.

    A stream whose readings fall on that grid at a wider spacing (an hourly gauge: one grid
    time in twelve) is served from a block at its own spacing instead (``block`` readings,
    21 days for an hourly gauge): a reading on the grid takes the grid's value there, the
    tide predicted at that very time, for a twelfth of the tide evaluations (issue 26: the
    reference was a third of an hourly coastal reading's cost). The same floats as the 5-min
    blocks on Providence 1970-1999 (tests/test_sensor_health.py); in general to the last
    bit only, as the 5-min blocks are between their own origins (the nodal factors go
    through numpy's vector ``exp``, whose last bit can depend on the batch).
    """

    def __init__(self, tide: Tide, step_s: float = 300.0, block: int = 512) -> None:
        self.tide = tide
        self.step_s = step_s
        self.block = block
        self._t0 = math.nan
        self._values: list[float] = []
        # the readings' own grid: origin, spacing (a whole multiple of step_s), values
        self._s0 = math.nan
        self._stride = math.nan
        self._svalues: list[float] = []
        self._prev = math.nan
        self._whole = float(step_s).is_integer() and step_s > 0

    def at(self, ts: float) -> float:
        prev, self._prev = self._prev, ts
        j = (ts - self._s0) / self._stride  # NaN without a block
        if 0.0 <= j < self.block:
            i = int(j)
            if self._s0 + i * self._stride == ts:  # exact: a time of the stride block
                return self._svalues[i]
        d = ts - prev
        if self._whole and d > self.step_s and ts % self.step_s == 0.0 and \
                d % self.step_s == 0.0 and abs(ts) + d * self.block < _EXACT:
            # on the grid, one or more grid steps after the previous reading: a block at
            # the readings' spacing (times exact: whole seconds far below 2**53)
            self._s0, self._stride = ts, d
            self._svalues = [float(v) for v in self.tide.predict(
                [ts + i * d for i in range(self.block)])]
            return self._svalues[0]
        k = (ts - self._t0) / self.step_s
        if not 0.0 <= k < self.block - 1:
            if ts != ts:
                return math.nan
            self._t0 = math.floor(ts / self.step_s) * self.step_s
            times = [self._t0 + i * self.step_s for i in range(self.block)]
            self._values = [float(v) for v in self.tide.predict(times)]
            k = (ts - self._t0) / self.step_s
        i = int(k)
        a = self._values[i]
        return a + (self._values[i + 1] - a) * (k - i)


#: times whose sums with whole steps are exact in float64 (a margin below 2**53)
_EXACT = 2.0 ** 52


def limits_for(spec: Any, aggregate: str = "mean") -> Limits:
    """The checks' thresholds from a flow's ``spec`` (:class:`~frugalai.config.SpecConfig`)
    and what it measures (an energy index read as a ``rate`` is a counter)."""
    low, high = (spec.range[0], spec.range[1]) if spec.range else (-math.inf, math.inf)
    if aggregate == "rate":
        # A counter (an energy index): it must never go back. Staying put is no consumption
        # (a night, a holiday), not a stuck sensor; its steps and their changes are the
        # consumption itself, not noise or spikes of the sensor.
        return Limits(period_s=float(spec.period_s or 0.0), low=low, high=high,
                      monotonic=True, stuck_n=0, spike_k=math.inf, noise_ratio=math.inf,
                      battery_min_v=spec.battery_min_v)
    return Limits(period_s=float(spec.period_s or 0.0), low=low, high=high,
                  battery_min_v=spec.battery_min_v)


class FlowHealth:
    """The health of one flow's sensor.

    Args:
        name: the flow's name (the events' sensor).
        quantity: the Reading value checked.
        limits: thresholds.
        sensor_id: the flow's sensor id on the wire.
        reference: what the value should follow (a coastal flow's tide), or None.
        hold: hold the model's decisions while unhealthy.
        battery: the Reading value holding a LoRa node's battery voltage.
    """

    def __init__(self, name: str, quantity: str, limits: Optional[Limits] = None,
                 sensor_id: int = 0, reference: Optional[Reference] = None, hold: bool = False,
                 battery: str = "battery_v") -> None:
        self.name = name
        self.quantity = quantity
        self.sensor_id = sensor_id
        self.reference = reference
        self.hold_enabled = hold
        self.battery = battery
        self.checks = SensorHealth(limits)
        self.limits = self.checks.limits
        self.link: Optional[LinkHealth] = None
        self.mate: Optional[PartnerCheck] = None
        #: the partner flow's health (set by the pipeline when the config names one)
        self.partner: Optional[FlowHealth] = None
        self.book = DayBook(self.limits.period_s or math.nan, self.checks.noise)
        self._radio: Optional[bool] = None  # does the source report a radio link? (LoRa)
        self._probes = 0
        self.faults = 0
        self.since = math.nan
        self.figure = math.nan
        self.changes = 0
        self.held = 0
        self._live = False
        self._sent: Optional[tuple[str, int]] = None   # the last decision that left
        self._pending: Optional[Event] = None           # the last decision held back
        self._tainted = False  # the sensor was unhealthy during the current window
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FlowHealth({self.name!r}, {self.limits!r}, faults={names(self.faults)})"

    @property
    def holding(self) -> bool:
        """True while the flow holds its model's decisions."""
        return self.hold_enabled and bool(self.faults & HOLD_MASK)

    def set_partner(self, other: FlowHealth) -> None:
        self.partner = other
        self.mate = PartnerCheck(self.limits)

    # -- per reading -------------------------------------------------------------------------

    def reading(self, reading: Reading, arrived: float = math.nan) -> list[Event]:
        """Run the checks on one Reading; the health events of the checks that changed.

        ``arrived``: the wall clock when it arrived (tells a live source from a replay)."""
        ts = reading.ts
        values = reading.values
        x = values.get(self.quantity)
        with self._lock:
            self._live = abs(arrived - ts) < LIVE_SKEW_S
            if x is None:
                changed = 0
            else:
                ref = self.reference.at(ts) if self.reference is not None else math.nan
                changed = self.checks.update(ts, x, ref)
                if x == x:
                    self.book.reading(ts, x - ref if ref == ref else x)
            f = self.checks.faults
            if self.mate is not None or self._radio is not False:
                f |= self._extra(ts, x, values)
                changed |= (self.faults ^ f) & (PARTNER | LINK)
            if f & HOLD_MASK:
                self._tainted = True
            return self._changed(ts, changed, f) if changed else []

    def _extra(self, ts: float, x: Optional[float], values: Any) -> int:
        """The partner and link checks: their bits of the mask."""
        f = 0
        mate = self.mate
        partner = self.partner
        if mate is not None and partner is not None and x is not None:
            pc = partner.checks
            if abs(ts - pc.last_ts) <= self.limits.gap_periods * (pc.period or math.inf):
                if mate.update(x, pc.last_x):
                    f |= PARTNER
            elif mate.bad:
                f |= PARTNER
        if self._radio is False:
            return f
        rssi = values.get("rssi_dbm")
        snr = values.get("snr_db")
        fcnt = values.get("f_cnt")
        batt = values.get(self.battery)
        if self._radio is None:  # probed on the first readings: a LoRa source says at once
            if not (rssi is None and snr is None and fcnt is None and batt is None):
                self._radio = True
            else:
                self._probes += 1
                if self._probes >= RADIO_PROBES:
                    self._radio = False
        link = self.link
        if link is None and (rssi is not None or snr is not None or fcnt is not None
                             or batt is not None):
            link = self.link = LinkHealth(self.limits)
        if link is not None:
            nan = math.nan
            if link.update(nan if batt is None else batt, nan if rssi is None else rssi,
                           nan if snr is None else snr, nan if fcnt is None else fcnt):
                f |= LINK
        return f

    def _changed(self, ts: float, changed: int, f: int) -> list[Event]:
        if not changed:
            return []
        checks = self.checks
        self.faults = f
        self.since = ts
        self.changes += 1
        self.book.change(ts, f, checks.figure if changed & GAP and not f & GAP else 0.0)
        held = 1.0 if self.holding else 0.0
        out = []
        for i in range(len(FAULTS)):
            if changed >> i & 1:
                bit = 1 << i
                figure = (self.mate.figure if bit == PARTNER and self.mate is not None else
                          self.link.figure if bit == LINK and self.link is not None else
                          checks.figure)
                if not -1e300 < figure < 1e300:
                    figure = math.nan  # an infinite value: no figure (JSON carries null)
                self.figure = figure
                out.append(Event("health", self.name, ts, score=held, value=figure, label=f,
                                 sensor_id=self.sensor_id, model_id=i))
        return out

    def tick(self, now: float) -> list[Event]:
        """The wall clock: a live source silent for ``gap_periods`` periods is a gap now."""
        with self._lock:
            if not self._live:
                return []
            changed = self.checks.tick(now)
            return self._changed(now, changed, self.faults | changed) if changed else []

    # -- the model's decisions ---------------------------------------------------------------

    def hold(self, events: list[Event], closed: bool, ts: float) -> list[Event]:
        """The model's events, without its decisions on windows the sensor was unhealthy in.

        Args:
            events: what the model's policy emitted for this reading.
            closed: a window closed at this reading (a decision was taken on it).
            ts: the reading's time (a decision held back is re-sent at the first healthy
                window, if the receiver does not already have it).

        Held decisions are counted in :attr:`held`; a decision the receiver already has (a
        clear of an alarm it never got) is not sent.
        """
        tainted = self._tainted
        if closed:
            self._tainted = self.holding  # the next window starts unhealthy, or not
        if not self.hold_enabled:
            return events
        decisions = [e for e in events if e.kind in DECISIONS]
        if tainted:
            if decisions:
                self.held += len(decisions)
                self._pending = decisions[-1]
                return [e for e in events if e.kind not in DECISIONS]
            return events
        if decisions:
            self._pending = None
        elif closed and self._pending is not None:
            decisions = [self._pending]
            self._pending = None
            e = decisions[0]
            events = [*events, Event(e.kind, e.sensor, ts, score=e.score, value=e.value,
                                     label=e.label, sensor_id=e.sensor_id,
                                     model_id=e.model_id)]
        out = []
        for e in events:
            if e.kind in DECISIONS:
                state = (e.kind, e.label)
                if state == self._sent or (self._sent is None and e.kind == "clear") or (
                        self._sent is None and e.kind == "class" and e.label == 0):
                    continue  # the receiver already believes this
                self._sent = state
            out.append(e)
        return out

    # -- what the status says ----------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The flow's health for status.json, the fleet status and Prometheus."""
        checks = self.checks
        return {
            "healthy": self.faults == 0, "faults": names(self.faults),
            "since": None if self.since != self.since else self.since,
            "figure": None if self.figure != self.figure else self.figure,
            "holding": self.holding, "held_decisions": self.held,
            "reason": (f"decisions held: sensor {', '.join(names(self.faults & HOLD_MASK))}"
                       if self.holding else None),
            "period_s": None if checks.period != checks.period else round(checks.period, 3),
            "noise": None if checks.noise() != checks.noise() else round(checks.noise(), 6),
            "changes": self.changes,
        }


def for_flow(config: Any, scorer: Any = None) -> Optional[FlowHealth]:
    """A flow's health from its config (:class:`~frugalai.config.FlowConfig`), None when its
    ``health`` is off. The reference is the scorer's tide when it has one (a coastal bundle)."""
    if not config.health:
        return None
    features = getattr(scorer, "features", None)
    tide = getattr(features, "tide", None)
    reference = (Reference(tide) if tide is not None and callable(getattr(tide, "predict", None))
                 else None)
    return FlowHealth(config.name, config.quantity, limits_for(config.spec, config.aggregate),
                      config.sensor_id, reference,
                      config.hold_when_unhealthy, config.spec.battery)


def link_partners(healths: list[Optional[FlowHealth]], partners: list[str]) -> None:
    """Give each flow that names a ``partner`` the partner flow's health to compare with."""
    by_name = {h.name: h for h in healths if h is not None}
    for h, partner in zip(healths, partners):
        if h is not None and partner and partner in by_name:
            h.set_partner(by_name[partner])


def save_days(healths: list[FlowHealth], health_dir: Any, close_at: Optional[float],
              lograte: Any) -> None:
    """Merge each flow's finished days into its statistics file (``close_at``: a stop, the
    current day too). A write that fails is logged once per outage and kept for the next try."""
    from frugalai.health import store

    for h in healths:
        with h._lock:  # the flow thread writes the book
            if close_at is not None:
                h.book.close(close_at)
            days = h.book.flush()
        if not days:
            continue
        try:
            store.append(store.path_for(health_dir, h.name), days, flow=h.name,
                         period_s=h.checks.period if h.checks.period == h.checks.period else None)
        except (OSError, ValueError) as err:
            h.book.days[:0] = days
            lograte.error("health-store", "sensor statistics not written (%s); kept in memory",
                          err)
