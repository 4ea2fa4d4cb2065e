"""The wiring of flows from config: source -> window -> scorer -> policy -> outbox -> uplinks.

One thread per flow reads its source (sources block on I/O); the caller's thread delivers the
outbox to the uplinks. Pure pieces (features, policies, codecs) know nothing of this file.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

from frugalai import registry
from frugalai.config import Config, FlowConfig
from frugalai.errors import ConfigError, UplinkError
from frugalai.events.codec import BINARY_SIZE
from frugalai.events.event import Event
from frugalai.events.policy import Hysteresis
from frugalai.features.profile import DailyProfile
from frugalai.features.window import WindowAggregator, WindowStats
from frugalai.reading import Reading
from frugalai.sources import open_source
from frugalai.sources.base import Source
from frugalai.uplink.outbox import Outbox

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


def build_scorer(flow: FlowConfig) -> WindowScorer:
    """The scorer a flow's ``model`` key names."""
    if flow.model == "profile":
        p = flow.profile
        return ProfileScorer(
            DailyProfile(slot_s=p.slot_s, history=p.history, min_history=p.min_history,
                         floor=p.floor, tz_offset_h=p.tz_offset_h),
            learn_below=flow.policy.on,
        )
    raise ConfigError(f"unknown model {flow.model!r}; known: profile", key=f"flow.{flow.name}.model")


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

    def __init__(self, config: FlowConfig, source: Source, scorer: WindowScorer) -> None:
        self.config = config
        self.source = source
        self.scorer = scorer
        self.window = WindowAggregator(config.window_s)
        self.policy = Hysteresis(config.policy.on, config.policy.off, config.policy.debounce)
        self.stats = FlowStats()

    def process(self, reading: Reading) -> list[Event]:
        """Feed one Reading; return the events it caused (usually none)."""
        self.stats.readings += 1
        value = reading.get(self.config.quantity)
        if value is None:
            return []
        closed = self.window.update(reading.ts, value)
        if closed is None:
            return []
        self.stats.windows += 1
        x = closed.get(self.config.aggregate)
        if x != x:  # NaN: a window with one sample has no rate
            return []
        score = self.scorer.update_one(closed, x)
        if score is None:
            return []
        self.stats.scored += 1
        self.stats.last_score = score
        transition = self.policy.update_one(score)
        if transition is None:
            return []
        self.stats.events += 1
        return [Event(transition, self.config.name, closed.end, score=score, value=x,
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
        for i, fc in enumerate(config.flow):
            source = open_source(fc.source, sensor=fc.name, key=f"flow[{i}].source",
                                 **(source_kwargs or {}))
            flows.append(Flow(fc, source, build_scorer(fc)))  # type: ignore[arg-type]
        if outbox is None:
            outbox = Outbox(Path(config.gateway.state_dir) / "outbox.sqlite")
        if sinks is None:
            sinks = []
            for i, uc in enumerate(config.uplink):
                scheme, _, _ = registry.split_url(uc.url, key=f"uplink[{i}].url")
                factory = registry.uplinks.get(scheme, key=f"uplink[{i}].url")
                sinks.append(factory(uc.url, key=f"uplink[{i}].url", gateway=config.gateway.id))
        return cls(flows, outbox, list(sinks))

    def _flow_loop(self, flow: Flow, stop: threading.Event) -> None:
        for reading in flow.source.readings(stop):
            try:
                events = flow.process(reading)
            except Exception:  # a bug in one model must not kill the flow
                flow.stats.errors += 1
                log.exception("%s: processing failed", flow.config.name)
                continue
            if events:
                self.outbox.append_many(events)

    def start(self, stop: threading.Event) -> None:
        for flow in self.flows:
            t = threading.Thread(target=self._flow_loop, args=(flow, stop), daemon=True,
                                 name=f"flow-{flow.config.name}")
            t.start()
            self._threads.append(t)

    def flush(self, limit: int = 100) -> int:
        """Deliver pending events to every sink; return how many left the outbox."""
        total = 0
        while True:
            pending = self.outbox.pending(limit)
            if not pending:
                return total
            delivered: Optional[list[Event]] = None
            for sink in self.sinks:
                try:
                    sent = sink.send(pending)
                except UplinkError as err:
                    log.warning("uplink failed, events stay in the outbox: %s", err)
                    return total
                delivered = sent if delivered is None else [e for e in delivered if e in sent]
            delivered = pending if delivered is None else delivered
            self.outbox.mark_sent(delivered)
            for event in delivered:
                self.upstream_bytes += BINARY_SIZE
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
            "raw_bytes_read": raw,
            "upstream_bytes_binary": self.upstream_bytes,
            "uplinks": {repr(s): s.summary() for s in self.sinks if hasattr(s, "summary")},
        }

    def close(self) -> None:
        for flow in self.flows:
            flow.source.close()
        for sink in self.sinks:
            sink.close()
        self.outbox.close()


def dump_summary(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, default=str)
