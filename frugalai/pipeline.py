"""The wiring of flows from their plans: source -> window -> scorer -> policy -> outbox -> uplinks.

:meth:`Pipeline.from_config` plans the config (:mod:`frugalai.plan`) and builds each flow from
its plan. One thread per flow runs the one flow loop, :func:`run_flow` (sources block on I/O),
storing through a ``store`` callable; the caller's thread delivers the outbox to the uplinks.
Hooks, not private calls, let a host compose it: ``on_stored`` (events stored), ``on_event``
(an event delivered), a :class:`StepWatch` (each step's start and end). Pure pieces (features,
policies, codecs) know nothing of this file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol

from frugalai import registry
from frugalai.config import FLOW_DEFAULTS, Config, FlowConfig
from frugalai.errors import UplinkError
from frugalai.events.codec import encode_binary
from frugalai.events.event import Event
from frugalai.events.policy import RateLimit, SummaryAccumulator
from frugalai.features.window import WindowAggregator, WindowStats
from frugalai.health import monitor as health_monitor
from frugalai.lograte import EVERY_S, LogRate
from frugalai.reading import Reading
from frugalai.scoring import BatchScorer, Policy, ProfileScorer, Score, Scorer, ThresholdScorer
from frugalai.sources.base import Source
from frugalai.uplink.base import Sink
from frugalai.uplink.outbox import Outbox, OutboxError

if TYPE_CHECKING:
    from frugalai.plan import FlowPlan, GatewayPlan

log = logging.getLogger("frugalai.pipeline")

#: ProfileScorer and ThresholdScorer live in frugalai.scoring; imported from here too.
__all__ = ["Flow", "Pipeline", "ProfileScorer", "RunSummary", "Sink", "StepWatch",
           "ThresholdScorer", "build_scorer", "run_flow"]


def build_scorer(flow: FlowConfig, models_dir: Optional[str] = None,
                 public_key: Optional[bytes] = None) -> Scorer:
    """The scorer a flow's ``model`` key names (``profile``, ``threshold``, a bundle name or
    path), through the flow's plan: the same resolution and checks as ``run``.

    Kept for callers holding one FlowConfig; :func:`frugalai.plan.build_plans` plans a whole
    config.
    """
    from frugalai.plan import models_dir as default_models_dir
    from frugalai.plan import plan_flow

    mdir = Path(models_dir) if models_dir else default_models_dir(Config())[0]
    return plan_flow(flow, 0, mdir, public_key).build_scorer()


@dataclass
class FlowStats:
    readings: int = 0
    windows: int = 0
    scored: int = 0
    events: int = 0
    errors: int = 0
    model_ok: int = 0  # windows the model scored without raising
    last_score: Optional[float] = None


#: at most this many windows wait for one model call in a batched flow (Flow.batch_windows)
BATCH_WINDOWS = 64
#: ... and at most this long (wall clock) after the first of them closed
BATCH_DELAY_S = 0.05


@dataclass
class _WindowBatch:
    """Closed windows waiting for their model call: (window, value, prepared features)."""

    scorer: BatchScorer
    max_windows: int
    max_delay_s: float
    items: list[tuple[WindowStats, float, object]] = field(default_factory=list)
    since: float = 0.0


#: readings after which a flow that never found its quantity says so (once).
QUANTITY_WARN_AFTER = 50
#: quantity names remembered for that message.
_SEEN_MAX = 40


class Flow:
    """One configured flow. ``process`` is pure computation; the source I/O is the loop's.

    Args:
        config: the flow's settings; card-owned keys left unset take the built-in defaults
            (:meth:`from_plan` passes the plan's resolved ones).
        source: where its Readings come from.
        scorer: windows -> :class:`~frugalai.scoring.Score`.
        policy: scores -> alarm/clear (default: built from ``config.policy`` through the
            policy registry).
    """

    def __init__(self, config: FlowConfig, source: Source, scorer: Scorer,
                 policy: Optional[Policy] = None) -> None:
        self.config = config
        self.source = source
        self.scorer = scorer
        self.window = WindowAggregator(int(config.window_s or FLOW_DEFAULTS["window_s"]))
        if policy is None:
            factory = registry.policies.get(config.policy.kind,
                                            key=f"flow.{config.name}.policy.kind")
            policy = factory(config.policy)
        self.policy: Policy = policy
        self.limit = (RateLimit(config.policy.max_per_hour, config.policy.burst)
                      if config.policy.max_per_hour > 0 else None)
        self.stats = FlowStats()
        # The periodic summary: counts since the last one (guarded: the flow thread updates,
        # the pipeline thread takes).
        self.period = SummaryAccumulator(start=time.time())
        self._period_lock = threading.Lock()
        #: readings processed since start, and up to the last summary: the period's count is
        #: their difference, so the per-reading path takes no lock.
        self._readings_in = 0
        self._readings_seen = 0
        self._bad_frames_seen = 0
        self._implausible_seen = 0
        self._dropped_seen = 0
        self._lost_seen = 0
        self.next_summary = time.monotonic() + config.summary_s if config.summary_s else None
        #: current class of a classifier flow (0 = normal until told otherwise).
        self.label = 0
        self._matched = False
        self._seen: set[str] = set()
        self.quantity_warned = False
        #: the sensor health checks (frugalai.health), None when the flow's ``health`` is off
        self.health = health_monitor.for_flow(config, scorer)
        #: monotonic time of the first failure since the model last worked (None: working).
        self.failing_since: Optional[float] = None
        self.last_model_error = ""
        #: windows waiting for one model call (:meth:`batch_windows`); None: per window
        self._batch: Optional[_WindowBatch] = None

    @classmethod
    def from_plan(cls, plan: FlowPlan, source: Optional[Source] = None,
                  scorer: Optional[Scorer] = None, **source_kwargs: Any) -> Flow:
        """A flow as planned: resolved settings, its scorer and policy from the registries."""
        return cls(plan.config, source if source is not None else plan.open_source(
            **source_kwargs), scorer if scorer is not None else plan.build_scorer(),
            plan.build_policy())

    def continue_from(self, old: Flow) -> None:
        """Take over a reloaded flow's running accounts when it keeps its source (a model or
        policy change): the counters and the summary period go on, so the next summary
        counts each reading and rejected frame once, and ``status`` does not drop to zero."""
        if old.source is not self.source:
            raise ValueError("continue_from needs the same source")
        kept = dataclasses.replace(old.stats, last_score=None)  # the score was the old model's
        self.stats = kept
        with old._period_lock:
            self.period = old.period
        self._bad_frames_seen, self._implausible_seen = old._bad_frames_seen, \
            old._implausible_seen
        self._dropped_seen, self._lost_seen = old._dropped_seen, old._lost_seen
        if self.config.summary_s == old.config.summary_s:
            self.next_summary = old.next_summary
        if (self.config.window_s, self.config.quantity) == (old.config.window_s,
                                                            old.config.quantity):
            self.window = old.window  # the window in progress is not thrown away
        self._matched, self._seen, self.quantity_warned = old._matched, old._seen, \
            old.quantity_warned

    def process(self, reading: Reading) -> list[Event]:
        """Feed one Reading; return the events it caused (usually none): the sensor's health
        events first, then the model's (held while the sensor is unhealthy, if told so)."""
        health = self.health
        if health is None:
            return self._process(reading)
        events = health.reading(reading, time.time())
        if events:
            self.stats.events += len(events)
            with self._period_lock:
                for _ in events:
                    self.period.event_one()
            if self._batch is not None and self._batch.items:
                # the windows before this reading decide first, as they did one by one
                events = self.flush() + events
        windows = self.stats.windows
        decided = health.hold(self._process(reading), self.stats.windows != windows, reading.ts)
        return events + decided if events else decided

    def _process(self, reading: Reading) -> list[Event]:
        self.stats.readings += 1
        self._readings_in += 1  # the period's count is taken from it (no lock per reading)
        value = reading.values.get(self.config.quantity)
        if value is None:
            self._no_quantity(reading)
            return []
        self._matched = True
        closed = self.window.update(reading.ts, value)
        if closed is None:
            return []
        x = closed.get(self.config.aggregate)
        if x != x:  # NaN: a window with one sample has no rate
            return []
        # Counted here and in the period summary alike: windows with a value.
        self.stats.windows += 1
        batch = self._batch
        if batch is not None:
            return self._defer(batch, closed, x)
        return self._decided(closed, x, self.scorer.score_one(closed, x))

    def _decided(self, closed: WindowStats, x: float, result: Optional[Score]) -> list[Event]:
        """The window's events once the model has scored it (the per-window path, and each
        window of a batch, in order)."""
        self.stats.model_ok += 1
        self.failing_since = None
        with self._period_lock:  # a window counts while the model learns too
            self.period.window_one(x, None if result is None else result.value)
        if result is None:
            return []
        self.stats.scored += 1
        self.stats.last_score = result.value
        if result.label is not None:
            events = self._classified(closed, x, result)
        else:
            events = self._scored(closed, x, result.value)
        self.stats.events += len(events)
        with self._period_lock:
            for _ in events:
                self.period.event_one()
        return events

    # -- batched model calls ------------------------------------------------------------------

    def batch_windows(self, max_windows: int = BATCH_WINDOWS,
                      max_delay_s: float = BATCH_DELAY_S) -> bool:
        """Gather up to ``max_windows`` closed windows (or ``max_delay_s`` of wall time) and
        score them with one model call, when nothing waits on a window's decision: the
        source is unpaced and ends (a replay at ``speed=max`` with ``end=stop``), the scorer
        can split its feature and model steps (:class:`~frugalai.scoring.BatchScorer`) with
        a backend whose batch rows are its one-row outputs bit for bit (``batch_exact``:
        not the reference fp32, whose matrix product sums in another order), and no sensor
        check holds decisions back. Returns whether batching is on.

        Why: a window's model call costs more than its readings (onnxruntime's int8 call
        ~25 µs) and most of it is the call, not the rows, so a replay pays it once per batch.
        The features still run window by window in order and each window's decision is
        taken in order from its own row, so the events are the per-window path's (the
        backend's batch output must equal its one-row output: tests/test_batch_windows.py).
        A live flow is never batched: its latency stays one window. The caller (the flow
        loop) must :meth:`flush` at the end of the source.
        """
        if self._batch is not None:
            return True
        scorer = self.scorer
        if not (getattr(self.source, "unpaced", False) and isinstance(scorer, BatchScorer)
                and scorer.batch_exact
                and (self.health is None or not self.health.hold_enabled)
                and max_windows > 1):
            return False
        self._batch = _WindowBatch(scorer, max_windows, max_delay_s)
        return True

    def _defer(self, batch: _WindowBatch, closed: WindowStats, x: float) -> list[Event]:
        if not batch.items:
            batch.since = time.monotonic()
        batch.items.append((closed, x, batch.scorer.prepare_one(closed, x)))
        if len(batch.items) >= batch.max_windows or \
                time.monotonic() - batch.since >= batch.max_delay_s:
            return self.flush()
        return []

    def flush(self) -> list[Event]:
        """Score the windows gathered for a batch and return their events, in window order
        (nothing when not batching). A batch the model fails on is scored window by window,
        each failure counted like a failing window of the per-window path."""
        batch = self._batch
        if batch is None or not batch.items:
            return []
        items, batch.items = batch.items, []
        scorer = batch.scorer
        events: list[Event] = []
        try:
            results = scorer.finish_many([p for _, _, p in items])
        except Exception:  # one window's failure must not cost the others their decision
            for closed, x, prepared in items:
                try:
                    result = scorer.finish_one(prepared)
                except Exception as err:
                    self.count_error(err)
                    if self.stats.errors in (1, 10) or self.stats.errors % 1000 == 0:
                        log.exception("%s: processing failed (%d failures so far)",
                                      self.config.name, self.stats.errors)
                    continue
                events += self._decided(closed, x, result)
            return events
        for (closed, x, _), result in zip(items, results):
            events += self._decided(closed, x, result)
        return events

    def _no_quantity(self, reading: Reading) -> None:
        """Say once, with what the source does give, that the quantity never shows up."""
        if self._matched or self.quantity_warned:
            return
        if len(self._seen) < _SEEN_MAX:
            self._seen.update(list(reading.values)[:_SEEN_MAX])
        if self.stats.readings >= QUANTITY_WARN_AFTER:
            self.quantity_warned = True
            log.warning("flow %s: quantity %r is in none of the %d readings so far; the source "
                        "gives: %s (check [[flow]] quantity)", self.config.name,
                        self.config.quantity, self.stats.readings,
                        ", ".join(sorted(self._seen)) or "no values at all")

    def _scored(self, closed: WindowStats, x: float, score: float) -> list[Event]:
        """Anomaly flows: the policy turns the score into alarm/clear (rate limited)."""
        kinds = []
        transition = self.policy.update_one(score)
        if transition is not None and (self.limit is None or self.limit.allow(
                self.config.name, transition, closed.end)):
            kinds.append(transition)
        if self.limit is not None:  # a state held back by the rate limit, once allowed
            kinds += [kind for _, kind, _ in self.limit.poll(closed.end)]
        return [Event(kind, self.config.name, closed.end, score=score, value=x,
                      sensor_id=self.config.sensor_id, model_id=self.config.model_id)
                for kind in kinds]

    def _classified(self, closed: WindowStats, x: float, result: Score) -> list[Event]:
        """Classifier flows: an Event of kind ``class`` when the class changes (from 0)."""
        if result.label == self.label:
            return []
        self.label = int(result.label or 0)
        return [Event("class", self.config.name, closed.end, score=result.value, value=x,
                      label=self.label, sensor_id=self.config.sensor_id,
                      model_id=self.config.model_id)]

    def take_summary(self, now: float, dropped_total: int = 0, lost_total: int = 0) -> Event:
        """The ``summary`` event of the period ending now (wall clock), and start a new one.

        Args:
            now: UNIX time.
            dropped_total: the outbox's overflow drop count for this sensor, since forever.
            lost_total: this sensor's events lost in memory (outbox unwritable), since start.
        """
        bad = self.source.stats.frames_bad
        implausible = getattr(self.source.stats, "implausible", 0)
        readings = self._readings_in
        with self._period_lock:
            self.period.readings += readings - self._readings_seen
            self.period.error_one(bad - self._bad_frames_seen)
            self.period.implausible_one(implausible - self._implausible_seen)
            stats = self.period.take(now, dropped=dropped_total - self._dropped_seen,
                                     lost=lost_total - self._lost_seen)
        self._bad_frames_seen, self._dropped_seen = bad, dropped_total
        self._readings_seen = readings
        self._implausible_seen, self._lost_seen = implausible, lost_total
        return Event("summary", self.config.name, now, value=stats.mean,
                     score=0.0 if stats.max_score != stats.max_score else stats.max_score,
                     sensor_id=self.config.sensor_id, model_id=self.config.model_id,
                     stats=stats)

    def count_error(self, err: Optional[BaseException] = None) -> None:
        """A reading the model failed on (contained by the loop, counted here)."""
        self.stats.errors += 1
        if err is not None:
            self.last_model_error = f"{type(err).__name__}: {err}"
        if self.failing_since is None:
            self.failing_since = time.monotonic()
        with self._period_lock:
            self.period.error_one()


@dataclass
class RunSummary:
    """What a run did, per flow and in total (``demo --json`` writes it as ``summary``)."""

    flows: dict[str, dict[str, Any]]
    readings: int
    frames_rejected: int
    events: int
    outbox: dict[str, int]
    held_in_memory: int
    lost: int
    raw_bytes_read: int
    upstream_bytes_binary: int
    uplinks: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class StepWatch(Protocol):
    """Told when a flow starts and ends each step (the service's stall check)."""

    def step_started(self) -> None: ...

    def step_done(self) -> None: ...


Store = Callable[[list[Event]], object]


def run_flow(flow: Flow, stop: threading.Event, store: Store,
             watch: Optional[StepWatch] = None,
             live: Optional[Callable[[], Flow]] = None) -> None:
    """The one flow loop: read the source until it ends or ``stop``, process each reading,
    hand the events to ``store``. A model error is contained per reading (counted, logged
    sparingly); a source error propagates to the caller (the supervisor restarts it).

    ``store`` is looked up by the caller, so a service that swaps its pipeline on reload
    passes its live one (never an old object's). ``live``, when given, names the flow that
    processes each reading: a reload that changes only the model or the policy swaps in a
    new flow on the *same* source, which keeps reading (a serial port stays open).

    A flow on an unpaced source that ends (a replay at ``speed=max``) scores its windows in
    batches (:meth:`Flow.batch_windows`); the windows still waiting are decided and stored
    when the source ends, fails or ``stop`` is set, and before a swapped-in flow's.
    """
    batching = flow.batch_windows()
    previous = flow
    try:
        for reading in flow.source.readings(stop):
            current = live() if live is not None else flow
            if current is not previous:  # a reload swapped the flow: its windows decide first
                if batching:
                    _store_flushed(previous, store)
                    batching = current.batch_windows()
                previous = current
            if watch is not None:
                watch.step_started()
            try:
                events = current.process(reading)
            except Exception as err:  # a bug in one model must not kill the flow
                current.count_error(err)
                if current.stats.errors in (1, 10) or current.stats.errors % 1000 == 0:
                    log.exception("%s: processing failed (%d failures so far)",
                                  current.config.name, current.stats.errors)
                continue
            finally:
                if watch is not None:
                    watch.step_done()
            if events:
                store(events)
    finally:
        # the source ended, failed (a truncated file) or stop: the windows already read
        # decide before the loop ends, as they did one by one
        if batching:
            _store_flushed(previous, store)


def _store_flushed(flow: Flow, store: Store) -> None:
    events = flow.flush()
    if events:
        store(events)


@dataclass
class Pipeline:
    """Flows + outbox + uplinks."""

    flows: list[Flow]
    outbox: Outbox
    sinks: list[Sink]
    #: called with each event delivered to every sink.
    on_event: Optional[Callable[[Event], None]] = None
    #: called with each batch stored in the outbox (the service wakes its delivery thread).
    on_stored: Optional[Callable[[list[Event]], None]] = None
    delivered: int = 0
    upstream_bytes: int = 0
    _threads: list[threading.Thread] = field(default_factory=list)
    _last_uplink_error: str = ""
    #: the uplink outage in the log: over once delivery worked for a minute (flapping brokers)
    #: per sink, the ids of pending events it already accepted: an event leaves the outbox
    #: once every sink has it, and a fast sink is not sent it again while a slow one (a LoRaWAN
    #: modem waiting for its duty cycle) catches up. In memory: after a restart the fast sink
    #: may get a few again, which the stable ``id`` lets a receiver drop.
    _accepted: dict[int, set[str]] = field(default_factory=dict)
    #: events the outbox could not store (disk full, SD card gone read-only), oldest first,
    #: stored as soon as it takes writes again. Bounded by ``held_max``: past it the oldest
    #: low-priority events are lost, counted in ``lost`` and logged.
    held_max: int = 10_000
    lost: int = 0
    #: ``lost`` per sensor, for each flow's summary (the counts reach upstream)
    lost_by_sensor: Counter[str] = field(default_factory=Counter)
    _held: deque[Event] = field(default_factory=deque)
    _held_lock: threading.Lock = field(default_factory=threading.Lock)
    #: repeated faults (uplink down, outbox unwritable, losses) logged once, then counted.
    _lograte: LogRate = field(default_factory=lambda: LogRate(log, settle_s=EVERY_S))
    #: where each flow's sensor statistics file is kept (``<state_dir>/health``); None: not kept
    health_dir: Optional[Path] = None

    def __post_init__(self) -> None:
        health_monitor.link_partners([f.health for f in self.flows],
                                     [f.config.partner for f in self.flows])

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        source_kwargs: Optional[dict[str, Any]] = None,
        sinks: Optional[Sequence[Sink]] = None,
        outbox: Optional[Outbox] = None,
        plans: Optional[GatewayPlan] = None,
        on_event: Optional[Callable[[Event], None]] = None,
    ) -> Pipeline:
        """Plan the config (:func:`frugalai.plan.build_plans`) and build it."""
        from frugalai.plan import build_plans

        if plans is None:
            plans = build_plans(config, check_uplinks=sinks is None, source_kwargs=source_kwargs)
        return cls.from_plans(plans, source_kwargs=source_kwargs, sinks=sinks, outbox=outbox,
                              on_event=on_event)

    @classmethod
    def from_plans(
        cls,
        plans: GatewayPlan,
        *,
        source_kwargs: Optional[dict[str, Any]] = None,
        sinks: Optional[Sequence[Sink]] = None,
        outbox: Optional[Outbox] = None,
        on_event: Optional[Callable[[Event], None]] = None,
    ) -> Pipeline:
        """Every planned flow, the outbox in the state dir (unless given), the uplinks."""
        config = plans.config
        flows = [Flow.from_plan(p, **(source_kwargs or {})) for p in plans.flows]
        if outbox is None:
            outbox = Outbox(plans.outbox_path, sync=config.gateway.outbox_sync,
                            max_pending=config.gateway.outbox_max)
        return cls(flows, outbox, list(sinks) if sinks is not None else cls.open_sinks(config),
                   on_event=on_event, health_dir=Path(config.gateway.state_dir) / "health")

    @staticmethod
    def open_sinks(config: Config) -> list[Sink]:
        """The configured uplinks, through ``registry.uplinks``."""
        sinks: list[Sink] = []
        for i, uc in enumerate(config.uplink):
            scheme, _, _ = registry.split_url(uc.url, key=f"uplink[{i}].url")
            factory = registry.uplinks.get(scheme, key=f"uplink[{i}].url")
            sinks.append(factory(uc.url, key=f"uplink[{i}].url", gateway=config.gateway.id,
                                 state_dir=config.gateway.state_dir))
        return sinks

    def run_flow(self, flow: Flow, stop: threading.Event,
                 watch: Optional[StepWatch] = None) -> None:
        """:func:`run_flow` storing into this pipeline."""
        run_flow(flow, stop, self.store, watch)

    def adopt(self, old: Pipeline) -> None:
        """Take over what an old pipeline still holds (a reload): its events held in memory
        (stored here, in order, before anything new), its delivery and loss counts."""
        with old._held_lock:
            held = list(old._held)
            old._held.clear()
        self.delivered += old.delivered
        self.upstream_bytes += old.upstream_bytes
        self.lost += old.lost
        self.lost_by_sensor.update(old.lost_by_sensor)
        old.lost_by_sensor.clear()
        old.lost = old.delivered = old.upstream_bytes = 0
        if held:
            with self._held_lock:
                self._held.extendleft(reversed(held))
            self.retry_held()

    def store(self, events: list[Event]) -> list[Event]:
        """Append to the outbox; what it cannot take is held in memory, never dropped silently.

        Returns the events stored now (none while earlier ones are held: order is kept).
        """
        with self._held_lock:
            if not self._held:
                try:
                    stored = self.outbox.append_many(events)
                except OutboxError as err:
                    self._lograte.error("store", "outbox cannot store events (%s): holding "
                                        "them in memory (up to %d) and retrying", err,
                                        self.held_max)
                else:
                    self._stored(stored)
                    return stored
            self._held.extend(events)
            over = len(self._held) - self.held_max
            if over > 0:
                self._drop_held(over)
        return []

    def _drop_held(self, n: int) -> None:
        """Drop ``n`` held events, lowest priority and oldest first (as the outbox's cap)."""
        order = sorted(range(len(self._held)), key=lambda i: (-self._held[i].priority, i))
        doomed = set(order[:n])
        self.lost_by_sensor.update(self._held[i].sensor for i in doomed)
        kept = [e for i, e in enumerate(self._held) if i not in doomed]
        self._held.clear()
        self._held.extend(kept)
        self.lost += n
        self._lograte.error("lost", "LOST %d event(s): the outbox takes no writes and %d are "
                            "held in memory (%d lost so far)", n, self.held_max, self.lost,
                            count=n)

    def retry_held(self) -> int:
        """Store the held events if the outbox takes writes again; return how many."""
        with self._held_lock:
            if not self._held:
                return 0
            batch = list(self._held)
            try:
                self.outbox.append_many(batch)
            except OutboxError:
                return 0
            self._held.clear()
        self._lograte.end("store")
        self._lograte.end("lost")
        log.warning("outbox writable again: stored %d held event(s)", len(batch))
        self._stored(batch)
        return len(batch)

    def _stored(self, events: list[Event]) -> None:
        if self.on_stored is not None and events:
            self.on_stored(events)

    @property
    def held(self) -> int:
        """Events waiting in memory for the outbox to take writes again."""
        return len(self._held)

    def tick_health(self, close: bool = False) -> None:
        """The sensors' clock-driven checks (a live source gone silent) and their statistics
        files (the days finished; all, at ``close``)."""
        now = time.time()
        events = [e for f in self.flows if f.health is not None for e in f.health.tick(now)]
        if events:
            self.store(events)
        if self.health_dir is not None:
            health_monitor.save_days([f.health for f in self.flows if f.health is not None],
                                     self.health_dir, now if close else None, self._lograte)

    def emit_summaries(self, force: bool = False) -> list[Event]:
        """Store the summary of every flow whose period is over (one transaction for all)."""
        self.tick_health()
        due = [f for f in self.flows if f.next_summary is not None
               and (force or time.monotonic() >= f.next_summary)]
        if not due:
            return []
        now = time.time()
        events = []
        for flow in due:
            flow.next_summary = time.monotonic() + flow.config.summary_s
            events.append(flow.take_summary(now, self.outbox.dropped(flow.config.name),
                                            self.lost_by_sensor[flow.config.name]))
        return self.store(events)

    def start(self, stop: threading.Event) -> None:
        for flow in self.flows:
            t = threading.Thread(target=self.run_flow, args=(flow, stop), daemon=True,
                                 name=f"flow-{flow.config.name}")
            t.start()
            self._threads.append(t)

    def flush(self, limit: int = 100) -> int:
        """Deliver pending events to every sink; return how many left the outbox.

        A sink that fails keeps its events in the outbox without holding back the others; an
        event is marked sent once every sink has accepted it.
        """
        self.retry_held()
        total = 0
        while True:
            pending = self.outbox.pending(limit)
            if not pending:
                return total
            failed = False
            for i, sink in enumerate(self.sinks):
                accepted = self._accepted.setdefault(i, set())
                todo = [e for e in pending if e.id not in accepted]
                if not todo:
                    continue
                try:
                    sent = sink.send(todo)
                except UplinkError as err:
                    # An outage lasts: say it once, then a count every few minutes.
                    self._lograte.warning(f"uplink:{i}", "uplink failed, events stay in the "
                                          "outbox: %s", err)
                    self._last_uplink_error = str(err)
                    failed = True
                    continue
                accepted.update(e.id for e in sent)
            delivered = [e for e in pending
                         if all(e.id in self._accepted.get(i, ()) for i in range(len(self.sinks)))]
            if not delivered:
                return total
            if self._last_uplink_error and not failed:
                # Over for now: a link that fails again within a few minutes (a flapping
                # broker) stays one episode, counted (LogRate settle_s).
                self._lograte.info("uplink back", "uplink back: delivering %d pending "
                                   "event(s)", self.outbox.depth())
                for i in range(len(self.sinks)):
                    self._lograte.recovered(f"uplink:{i}")
                self._lograte.recovered("uplink back")
                self._last_uplink_error = ""
            self.outbox.mark_sent(delivered)
            for accepted in self._accepted.values():
                accepted.difference_update(e.id for e in delivered)
            for event in delivered:
                self.upstream_bytes += len(encode_binary(event))
                if self.on_event is not None:
                    self.on_event(event)
            self.delivered += len(delivered)
            total += len(delivered)
            if len(delivered) < len(pending):
                return total

    def run(self, stop: threading.Event, duration: Optional[float] = None,
            flush_every: float = 0.2) -> None:
        """Run until ``stop`` is set (or ``duration`` seconds), then flush and close."""
        self.start(stop)
        deadline = None if duration is None else time.monotonic() + duration
        try:
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                stop.wait(flush_every)
                self.emit_summaries()
                self.flush()
        finally:
            stop.set()
            for t in self._threads:
                t.join(timeout=5)
            self.flush()

    def run_summary(self) -> RunSummary:
        """Counts for the end-of-run report."""
        uplinks: dict[str, Any] = {}
        for sink in self.sinks:
            summarize = getattr(sink, "summary", None)  # optional in the Sink protocol
            if summarize is not None:
                uplinks[repr(sink)] = summarize()
        return RunSummary(
            flows={f.config.name: {**f.source.stats.as_dict(), **asdict(f.stats)}
                   for f in self.flows},
            readings=sum(f.stats.readings for f in self.flows),
            frames_rejected=sum(f.source.stats.frames_bad for f in self.flows),
            events=self.delivered,
            outbox=self.outbox.counts(),
            held_in_memory=self.held,
            lost=self.lost,
            raw_bytes_read=sum(f.source.stats.bytes_read for f in self.flows),
            upstream_bytes_binary=self.upstream_bytes,
            uplinks=uplinks,
        )

    def summary(self) -> dict[str, Any]:
        """:meth:`run_summary` as the JSON-ready dict ``demo --json`` and ``report`` read."""
        return self.run_summary().as_dict()

    def close(self) -> None:
        self.tick_health(close=True)
        self.retry_held()
        self._lograte.flush()
        if self._held:
            self.lost += len(self._held)
            log.error("LOST %d event(s) held in memory at exit: the outbox %s takes no writes",
                      len(self._held), self.outbox.path)
            self._held.clear()
        for flow in self.flows:
            flow.source.close()
        for sink in self.sinks:
            sink.close()
        self.outbox.close()


def dump_summary(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, default=str)
