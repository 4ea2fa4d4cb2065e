"""The wiring of flows from config: source -> window -> scorer -> policy -> outbox -> uplinks.

One thread per flow reads its source (sources block on I/O); the caller's thread delivers the
outbox to the uplinks. Pure pieces (features, policies, codecs) know nothing of this file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from frugalai import registry
from frugalai.config import Config, FlowConfig
from frugalai.errors import ConfigError, UplinkError
from frugalai.events.codec import encode_binary
from frugalai.events.event import Event
from frugalai.events.policy import Hysteresis, RateLimit, SummaryAccumulator
from frugalai.features.profile import DailyProfile
from frugalai.features.window import WindowAggregator, WindowStats
from frugalai.lograte import LogRate
from frugalai.reading import Reading
from frugalai.sources import open_source
from frugalai.sources.base import Source
from frugalai.uplink.outbox import Outbox, OutboxError

log = logging.getLogger("frugalai.pipeline")


class WindowScorer(Protocol):
    """Scores one closed feature window; None while it cannot score yet (learning)."""

    def update_one(self, window: WindowStats, value: float) -> Optional[float]: ...


class ProfileScorer:
    """The ``profile`` model: robust z-score against the meter's own learned daily profile.

    Windows scored as anomalous (>= ``learn_below``) are not learned, so an anomaly does not
    become the new normal.
    """

    def __init__(self, profile: DailyProfile, learn_below: float = 4.0) -> None:
        self.profile = profile
        self.learn_below = learn_below

    def update_one(self, window: WindowStats, value: float) -> Optional[float]:
        score = self.profile.score_one(window.start, value)
        if score is None or score < self.learn_below:
            self.profile.learn_one(window.start, value)
        return score


class ThresholdScorer:
    """The ``threshold`` model: the window value is the score, so ``policy.on``/``off`` are
    plain thresholds in the quantity's unit (alarm above 6000 VA, clear below 4500 VA)."""

    def update_one(self, window: WindowStats, value: float) -> Optional[float]:
        return value


class ClassifierScorer(Protocol):
    """Classifies one closed window: (class index, probability), None while warming up."""

    def classify_one(self, window: WindowStats, value: float) -> Optional[tuple[int, float]]: ...


def build_scorer(flow: FlowConfig, models_dir: Optional[str] = None,
                 public_key: Optional[bytes] = None) -> Any:
    """The scorer a flow's ``model`` key names: ``profile``, ``threshold``, or a bundle (name
    or path).

    A bundle's task decides the kind: anomaly bundles give a WindowScorer, classifier bundles a
    ClassifierScorer. Loading verifies every file's sha256, and the card's signature when the
    config sets ``[models] public_key`` (the same check ``models install`` makes).
    """
    if flow.model == "profile":
        p = flow.profile
        return ProfileScorer(
            DailyProfile(slot_s=p.slot_s, history=p.history, min_history=p.min_history,
                         floor=p.floor, tz_offset_h=p.tz_offset_h),
            learn_below=flow.policy.on,
        )
    if flow.model == "threshold":
        return ThresholdScorer()
    from frugalai.errors import ModelError
    from frugalai.runtime import load_model, runtime_available
    from frugalai.runtime.scorers import AnomalyScorer, ClassScorer

    key = f"flow.{flow.name}"
    missing = runtime_available(flow.backend)
    if missing:
        raise ConfigError(f"backend {flow.backend!r} cannot run here: {missing}",
                          key=f"{key}.backend")
    try:
        model = load_model(flow.model, flow.backend, flow.precision, models_dir=models_dir,
                           public_key=public_key)
        if model.task == "classification":
            return ClassScorer(model, flow.threshold_m, flow.horizon_h, flow.decision)
    except ModelError as err:
        raise ConfigError(str(err), key=f"{key}.model") from err
    if flow.decision != "model":
        raise ConfigError(f"decision {flow.decision!r} applies to coastal classifier bundles; "
                          f"{flow.model!r} is an anomaly model", key=f"{key}.decision")
    try:
        return AnomalyScorer(model, tz_offset_h=flow.profile.tz_offset_h)
    except ModelError as err:
        raise ConfigError(str(err), key=f"{key}.model") from err


@dataclass
class FlowStats:
    readings: int = 0
    windows: int = 0
    scored: int = 0
    events: int = 0
    errors: int = 0
    last_score: Optional[float] = None


class Flow:
    """One configured flow. ``process`` is pure computation; ``run`` adds the source I/O."""

    def __init__(self, config: FlowConfig, source: Source, scorer: Any) -> None:
        self.config = config
        self.source = source
        self.scorer = scorer
        self.window = WindowAggregator(config.window_s)
        self.policy = Hysteresis(config.policy.on, config.policy.off, config.policy.debounce)
        self.limit = (RateLimit(config.policy.max_per_hour, config.policy.burst)
                      if config.policy.max_per_hour > 0 else None)
        self.stats = FlowStats()
        # The periodic summary: counts since the last one (guarded: the flow thread updates,
        # the pipeline thread takes).
        self.period = SummaryAccumulator(start=time.time())
        self._period_lock = threading.Lock()
        self._bad_frames_seen = 0
        self._implausible_seen = 0
        self._dropped_seen = 0
        self._lost_seen = 0
        self.next_summary = time.monotonic() + config.summary_s if config.summary_s else None
        #: current class of a classifier flow (0 = normal until told otherwise).
        self.label = 0

    def process(self, reading: Reading) -> list[Event]:
        """Feed one Reading; return the events it caused (usually none)."""
        self.stats.readings += 1
        with self._period_lock:
            self.period.reading_one()
        value = reading.get(self.config.quantity)
        if value is None:
            return []
        closed = self.window.update(reading.ts, value)
        if closed is None:
            return []
        x = closed.get(self.config.aggregate)
        if x != x:  # NaN: a window with one sample has no rate
            return []
        # Counted here and in the period summary alike: windows with a value.
        self.stats.windows += 1
        if hasattr(self.scorer, "classify_one"):
            return self._classify(closed, x)
        score = self.scorer.update_one(closed, x)
        with self._period_lock:
            self.period.window_one(x, score)
        if score is None:
            return []
        self.stats.scored += 1
        self.stats.last_score = score
        kinds = []
        transition = self.policy.update_one(score)
        if transition is not None and (self.limit is None or self.limit.allow(
                self.config.name, transition, closed.end)):
            kinds.append(transition)
        if self.limit is not None:  # a state held back by the rate limit, once allowed
            kinds += [kind for _, kind, _ in self.limit.poll(closed.end)]
        events = [Event(kind, self.config.name, closed.end, score=score, value=x,
                        sensor_id=self.config.sensor_id, model_id=self.config.model_id)
                  for kind in kinds]
        self.stats.events += len(events)
        with self._period_lock:
            for _ in events:
                self.period.event_one()
        return events

    def take_summary(self, now: float, dropped_total: int = 0, lost_total: int = 0) -> Event:
        """The ``summary`` event of the period ending now (wall clock), and start a new one.

        Args:
            now: UNIX time.
            dropped_total: the outbox's overflow drop count for this sensor, since forever.
            lost_total: this sensor's events lost in memory (outbox unwritable), since start.
        """
        bad = self.source.stats.frames_bad
        implausible = getattr(self.source.stats, "implausible", 0)
        with self._period_lock:
            self.period.error_one(bad - self._bad_frames_seen)
            self.period.implausible_one(implausible - self._implausible_seen)
            stats = self.period.take(now, dropped=dropped_total - self._dropped_seen,
                                     lost=lost_total - self._lost_seen)
        self._bad_frames_seen, self._dropped_seen = bad, dropped_total
        self._implausible_seen, self._lost_seen = implausible, lost_total
        return Event("summary", self.config.name, now, value=stats.mean,
                     score=0.0 if stats.max_score != stats.max_score else stats.max_score,
                     sensor_id=self.config.sensor_id, model_id=self.config.model_id,
                     stats=stats)

    def _classify(self, closed: WindowStats, x: float) -> list[Event]:
        """Classifier flows: an Event of kind ``class`` when the class changes (from 0)."""
        result = self.scorer.classify_one(closed, x)
        with self._period_lock:  # a window counts while the features warm up too
            self.period.window_one(x, None if result is None else result[1])
        if result is None:
            return []
        label, prob = result
        self.stats.scored += 1
        self.stats.last_score = prob
        if label == self.label:
            return []
        self.label = label
        self.stats.events += 1
        with self._period_lock:
            self.period.event_one()
        return [Event("class", self.config.name, closed.end, score=prob, value=x, label=label,
                      sensor_id=self.config.sensor_id, model_id=self.config.model_id)]


Sink = Any  # has send(events) -> delivered events, and close()


@dataclass
class Pipeline:
    """Flows + outbox + uplinks."""

    flows: list[Flow]
    outbox: Outbox
    sinks: list[Sink]
    on_event: Optional[Callable[[Event], None]] = None
    delivered: int = 0
    upstream_bytes: int = 0
    _threads: list[threading.Thread] = field(default_factory=list)
    _last_uplink_error: str = ""
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
    _lograte: LogRate = field(default_factory=lambda: LogRate(log))

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        source_kwargs: Optional[dict[str, Any]] = None,
        sinks: Optional[Sequence[Sink]] = None,
        outbox: Optional[Outbox] = None,
    ) -> Pipeline:
        """Build every flow, the outbox in the state dir, and the uplinks."""
        flows = []
        public_key = None
        if config.models.public_key:
            from frugalai.service.models import parse_public_key

            public_key = parse_public_key(config.models.public_key)
        for i, fc in enumerate(config.flow):
            scorer = build_scorer(fc, config.gateway.models_dir, public_key)
            source = open_source(fc.source, sensor=fc.name, key=f"flow[{i}].source",
                                 **(source_kwargs or {}))
            flows.append(Flow(fc, source, scorer))
        if outbox is None:
            outbox = Outbox(Path(config.gateway.state_dir) / "outbox.sqlite",
                            sync=config.gateway.outbox_sync,
                            max_pending=config.gateway.outbox_max)
        if sinks is None:
            sinks = []
            for i, uc in enumerate(config.uplink):
                scheme, _, _ = registry.split_url(uc.url, key=f"uplink[{i}].url")
                factory = registry.uplinks.get(scheme, key=f"uplink[{i}].url")
                sinks.append(factory(uc.url, key=f"uplink[{i}].url", gateway=config.gateway.id,
                                     state_dir=config.gateway.state_dir))
        return cls(flows, outbox, list(sinks))

    def _flow_loop(self, flow: Flow, stop: threading.Event) -> None:
        for reading in flow.source.readings(stop):
            try:
                events = flow.process(reading)
            except Exception:  # a bug in one model must not kill the flow
                flow.stats.errors += 1
                with flow._period_lock:
                    flow.period.error_one()
                if flow.stats.errors in (1, 10) or flow.stats.errors % 1000 == 0:  # no spam
                    log.exception("%s: processing failed (%d failures so far)",
                                  flow.config.name, flow.stats.errors)
                continue
            if events:
                self.store(events)

    def store(self, events: list[Event]) -> list[Event]:
        """Append to the outbox; what it cannot take is held in memory, never dropped silently.

        Returns the events stored now (none while earlier ones are held: order is kept).
        """
        with self._held_lock:
            if not self._held:
                try:
                    return self.outbox.append_many(events)
                except OutboxError as err:
                    self._lograte.error("store", "outbox cannot store events (%s): holding "
                                        "them in memory (up to %d) and retrying", err,
                                        self.held_max)
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
        return len(batch)

    @property
    def held(self) -> int:
        """Events waiting in memory for the outbox to take writes again."""
        return len(self._held)

    def emit_summaries(self, force: bool = False) -> list[Event]:
        """Store the summary of every flow whose period is over (one transaction for all)."""
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
            t = threading.Thread(target=self._flow_loop, args=(flow, stop), daemon=True,
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
                for i in range(len(self.sinks)):
                    self._lograte.end(f"uplink:{i}")
                log.info("uplink back: delivering %d pending event(s)", self.outbox.depth())
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

    def summary(self) -> dict[str, Any]:
        """Counts for the end-of-run report."""
        raw = sum(f.source.stats.bytes_read for f in self.flows)
        return {
            "flows": {
                f.config.name: {**f.source.stats.as_dict(), **vars(f.stats)} for f in self.flows
            },
            "readings": sum(f.stats.readings for f in self.flows),
            "frames_rejected": sum(f.source.stats.frames_bad for f in self.flows),
            "events": self.delivered,
            "outbox": self.outbox.counts(),
            "held_in_memory": self.held,
            "lost": self.lost,
            "raw_bytes_read": raw,
            "upstream_bytes_binary": self.upstream_bytes,
            "uplinks": {repr(s): s.summary() for s in self.sinks if hasattr(s, "summary")},
        }

    def close(self) -> None:
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
