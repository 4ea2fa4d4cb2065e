"""``frugalai run``: every configured flow in one process, supervised, systemd-native.

Threads: one per flow (reading, model, outbox append), one delivering the outbox to the
uplinks, and the main thread, which writes the health files, pings the systemd watchdog (only
while every flow and the delivery are really alive: none stuck in one step for longer than
``service.stall_s``) and acts on signals. Delivery has its own thread so that an uplink that
hangs cannot hold the stop or the reload hostage.

* SIGTERM / SIGINT: each flow finishes its current step, the outbox is flushed, exit 0 within
  ``service.stop_timeout_s`` (events that could not leave stay in the outbox for next time).
* SIGHUP: reload the config file. An invalid file (or one whose flows cannot be built) is
  refused with the reason logged, and the service keeps running on the old config. What the
  new config changes is rebuilt, and nothing else: flows whose settings and model version did
  not change keep running, with their learned state; a flow whose source URL did not change
  but whose model (``models install``, a fleet rollout) or policy did gets a new flow on its
  *open* source (the serial port is not reopened; counters and the summary period go on);
  uplinks and the outbox are kept when their settings did not change; the fleet status
  publisher is rebuilt when the uplinks, the gateway id or the models dir change.

* Every flow finished (finite sources, e.g. a replay read to its end): flush, exit 0.
* A flow's model failed on every window for ``service.model_failure_exit_s``: stop, exit 4
  (:data:`EXIT_MODEL_FAILING`); a run that ends with a flow whose every model call failed
  exits 4 too, never 0.

The service composes the pipeline through its public seams only: the flows run the one flow
loop (:func:`frugalai.pipeline.run_flow`) storing through the *live* pipeline, the pipeline's
``on_stored`` hook wakes the delivery thread, the runners time each step. A reload builds new
plans, and swaps the whole pipeline; what the old one still held (events waiting for a full
disk, counters) moves into the new one, so nothing is left behind in an old object.

Signal handlers only set flags; the work happens in the loop.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from frugalai import __version__
from frugalai.config import Config, PolicyConfig, load_config
from frugalai.errors import FrugalError
from frugalai.events.event import Event
from frugalai.fileio import atomic_write
from frugalai.fleet import health as fleet_health
from frugalai.lograte import LogRate
from frugalai.pipeline import Flow, Pipeline, Sink, StepWatch, run_flow
from frugalai.plan import FlowPlan, GatewayPlan, build_plans
from frugalai.redact import redact
from frugalai.service.counters import LifetimeCounters
from frugalai.service.health import prometheus
from frugalai.service.health.status import STATUS_FILE, outbox_view
from frugalai.service.notify import Notifier
from frugalai.service.supervisor import FlowRunner, TrackedSink
from frugalai.uplink.outbox import Outbox

log = logging.getLogger("frugalai.service")


@dataclass
class FlowStatus:
    """One flow in ``status.json`` (keys as written)."""

    source: str
    model: str
    model_version: str
    state: str
    device_up: bool
    restarts: int
    last_error: str
    readings: int
    readings_per_s: float
    decode_errors: int
    implausible: int  # values refused by a plausibility gate
    events: int
    bytes_read: int
    model_errors: int
    outages: int
    last_reading_ts: float  # the reading's own time (a meter's clock)
    last_received: float  # when the gateway got it (its wall clock): liveness
    last_score: Optional[float]
    #: the sensor's health (frugalai.health.monitor.FlowHealth.status), None when not checked
    health: Optional[dict[str, Any]] = None
    why: str = ""  # when state is degraded: the reason (device down, model failing...)
    parity_errors: int = 0  # bytes with a wrong parity bit (7E1 framed in software)
    framing: str = ""  # serial flows: the framing in use


@dataclass
class ServiceStatus:
    """``status.json`` and the Prometheus file's source (keys as written)."""

    version: str
    pid: int
    config: str
    state: str
    healthy: bool
    started: float
    updated: float
    status_interval_s: float
    reloads: int
    reloads_refused: int
    flows: dict[str, FlowStatus]
    outbox: dict[str, Any]
    uplinks: list[dict[str, Any]]
    bytes: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Service:
    """The daemon. ``run()`` returns the exit code."""

    def __init__(self, config_path: str, config: Config, notifier: Optional[Notifier] = None,
                 tick: float = 1.0, retry_s: float = 1.0, handle_signals: bool = False) -> None:
        self.config_path = config_path
        self.config = config
        self.notifier = notifier or Notifier()
        self.tick = tick
        self.retry_s = retry_s
        self.started = time.time()
        self.state = "starting"
        self.stop_requested = threading.Event()
        self.reload_requested = threading.Event()
        self._wake = threading.Event()
        self.runners: dict[str, FlowRunner] = {}
        self.reloads = 0
        self.reloads_refused = 0
        #: per flow: (monotonic time, readings, the source object counted) of the last status.
        self._rates: dict[str, tuple[float, int, int]] = {}
        self._unhealthy: Optional[str] = None
        #: why the run stopped for a failing model ("" when it did not).
        self.model_failed = ""
        self._flush_error = ""
        self._deliver_lock = threading.Lock()
        self._deliver_stop = threading.Event()
        self._deliver_wake = threading.Event()
        self._deliver_busy_since: Optional[float] = None
        self._deliverer: Optional[threading.Thread] = None
        #: guards which pipeline is live: flows store through it, a reload swaps it.
        self._live_lock = threading.Lock()
        if handle_signals:  # before building: a SIGTERM during start must not be lost
            self.install_signal_handlers()
        self.plans = build_plans(config)
        #: counters over the gateway's life (state dir), across reloads and restarts
        self.lifetime = LifetimeCounters(Path(config.gateway.state_dir))
        self.pipeline, _ = self._build(self.plans, None)
        self.fleet = fleet_health.for_config(config)  # None unless an MQTT uplink has fleet=1

    # ----------------------------------------------------------------- building
    def _build(self, plans: GatewayPlan, old: Optional[Pipeline]
               ) -> tuple[Pipeline, dict[str, FlowRunner]]:
        """A pipeline for ``plans``: flows whose plan did not change are kept (with their
        learned state) when the outbox stays; a flow whose source did not change but whose
        model or other settings did gets a new flow on the *same* source (the device stays
        open: a rollout or a policy edit does not reopen a serial port); the outbox and
        uplinks are reused when their settings did not change. Returns it and the runners
        it keeps (a kept runner whose flow is new is swapped by :meth:`_swap`)."""
        config = plans.config
        same_state = old is not None and config.gateway.state_dir == self.config.gateway.state_dir
        same_up = (old is not None and same_state and config.uplink == self.config.uplink
                   and config.gateway.id == self.config.gateway.id)
        kept: dict[str, FlowRunner] = {}
        flows: list[Flow] = []
        try:
            for plan in plans.flows:
                runner = self.runners.get(plan.name) if same_state else None
                before = self.plans.flow(plan.name) if runner is not None else None
                if runner is not None and before is not None and before.identity == plan.identity:
                    kept[plan.name] = runner
                    flows.append(runner.flow)
                elif runner is not None and before is not None and \
                        before.config.source == plan.config.source and \
                        runner.state in ("running", "restarting"):
                    kept[plan.name] = runner  # same source: a new flow on it, swapped in
                    flows.append(Flow.from_plan(
                        plan, source=runner.flow.source,
                        scorer=runner.flow.scorer if same_scorer(before, plan) else None))
                else:
                    flows.append(Flow.from_plan(plan))
            outbox = old.outbox if old is not None and same_state else Outbox(
                plans.outbox_path, sync=config.gateway.outbox_sync,
                max_pending=config.gateway.outbox_max)
            sinks: list[Sink] = list(old.sinks) if old is not None and same_up else [
                TrackedSink(sink, uc.url)
                for sink, uc in zip(Pipeline.open_sinks(config), config.uplink)]
        except BaseException:
            for flow in flows:
                if not self._running_source(flow):
                    flow.source.close()  # built, never opened
            raise
        return Pipeline(flows, outbox, sinks, on_stored=self._on_stored,
                        health_dir=Path(plans.config.gateway.state_dir) / "health"), kept

    def _running_source(self, flow: Flow) -> bool:
        """True if ``flow`` reads through a source a running flow uses (never close it)."""
        return any(flow.source is r.flow.source for r in self.runners.values())

    def _on_stored(self, events: list[Event]) -> None:
        """Wake the delivery thread as soon as events are stored, so it can sleep the rest of
        the time (an idle gateway polls nothing) and still send alarms at once."""
        self._deliver_wake.set()

    def store(self, events: list[Event]) -> list[Event]:
        """Store through the live pipeline (its outbox, or its held events on a full disk)."""
        with self._live_lock:
            return self.pipeline.store(events)

    def _loop(self, flow: Flow, stop: threading.Event, watch: StepWatch) -> None:
        runner = watch if isinstance(watch, FlowRunner) else None  # its flow may be swapped
        run_flow(flow, stop, self.store, watch,
                 live=(lambda: runner.flow) if runner is not None else None)

    def _runner(self, plan: FlowPlan, flow: Flow) -> FlowRunner:
        return FlowRunner(flow, self._loop, plan.open_source, model_version=plan.model_version,
                          on_end=self._wake.set)

    # ----------------------------------------------------------------- signals
    def install_signal_handlers(self) -> None:
        def on_stop(signum: int, _frame: Any) -> None:
            self.stop_requested.set()
            self._wake.set()

        def on_hup(signum: int, _frame: Any) -> None:
            self.reload_requested.set()
            self._wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)

    # ----------------------------------------------------------------- loop
    def run(self, duration: Optional[float] = None) -> int:
        cfg = self.config.service
        for plan, flow in zip(self.plans.flows, self.pipeline.flows):
            self.runners[plan.name] = self._runner(plan, flow).start()
        self._deliverer = threading.Thread(target=self._deliver_loop, daemon=True,
                                           name="delivery")
        self._deliverer.start()
        self.state = "running"
        log.info("running %d flow(s) from %s: %s", len(self.runners), self.config_path,
                 ", ".join(self.runners))
        self.write_health()
        self.notifier.ready(self._status_line())
        ping_every = self.notifier.ping_every
        tick = min(self.tick, ping_every, cfg.status_interval_s) if ping_every else \
            min(self.tick, cfg.status_interval_s)
        now = time.monotonic()
        deadline = None if duration is None else now + duration
        next_health = now + cfg.status_interval_s
        next_ping = now
        while not self.stop_requested.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if ping_every is not None and now >= next_ping:
                self._watchdog()
                next_ping = now + ping_every
            self._wake.wait(tick)
            self._wake.clear()
            try:
                if self.reload_requested.is_set():
                    self.reload_requested.clear()
                    self.reload()
                if time.monotonic() >= next_health:
                    next_health = time.monotonic() + self.config.service.status_interval_s
                    self.write_health()
            except Exception:  # a bug here must not stop the flows; the log says where
                log.exception("service loop error (the flows go on)")
            if self.runners and all(r.state == "finished" for r in self.runners.values()):
                log.info("every flow's source has ended: flushing and exiting")
                break
            failing = self.model_failing()
            if failing:
                self.model_failed = failing
                log.error("%s; exiting with code %d so that the service is restarted",
                          failing, EXIT_MODEL_FAILING)
                break
        return self.shutdown()

    def model_failing(self, now: Optional[float] = None) -> str:
        """Why a flow's model failed on every window for ``service.model_failure_exit_s``,
        or "" (0 disables the check)."""
        limit = self.config.service.model_failure_exit_s
        if not limit:
            return ""
        now = time.monotonic() if now is None else now
        for name, runner in self.runners.items():
            since = runner.flow.failing_since
            if since is not None and now - since >= limit:
                return (f"flow {name}: the model failed on every window for {now - since:.0f} s"
                        f" (service.model_failure_exit_s = {limit:g}; last: "
                        f"{redact(runner.flow.last_model_error)})")
        return ""

    def _all_model_calls_failed(self) -> str:
        """At exit: a flow whose model was called and never once succeeded, or ""."""
        for name, runner in self.runners.items():
            st = runner.flow.stats
            if st.errors and not st.model_ok and runner.flow.failing_since is not None:
                return f"flow {name}: every model call of this run failed ({st.errors})"
        return ""

    def _watchdog(self) -> None:
        reason = self.health()
        if reason is None:
            self.notifier.watchdog()
            if self._unhealthy is not None:
                log.warning("healthy again")
                self.notifier.status(self._status_line())
        elif reason != self._unhealthy:
            log.error("unhealthy, watchdog pings withheld: %s", reason)
            self.notifier.status(f"unhealthy: {reason}")
        self._unhealthy = reason

    def health(self) -> Optional[str]:
        """None when every flow and the delivery are alive and not stuck, else why not."""
        now = time.monotonic()
        stall_s = self.config.service.stall_s
        for runner in self.runners.values():
            reason = runner.health(stall_s, now)
            if reason:
                return reason
        busy = self._deliver_busy_since
        if busy is not None and now - busy > stall_s:
            return f"delivery to the uplinks stuck for {now - busy:.0f} s"
        if self._deliverer is not None and not self._deliverer.is_alive() and \
                self.state == "running":
            return "delivery thread ended"
        return None

    #: events come in bursts: woken by one, the delivery gathers for this long, then one
    #: round (one fsync, one send, one mark) takes them all; an alarm waits at most this.
    DELIVER_GATHER_S = 0.05

    def _deliver_loop(self) -> None:
        """Deliver the outbox when events arrive (and every ``retry_s`` for what is left),
        with one last flush after the stop."""
        while True:
            stopping = self._deliver_stop.is_set()
            self._deliver_wake.clear()
            with self._deliver_lock:
                self._flush()
            if stopping:
                return
            if self._deliver_wake.wait(self.retry_s):
                self._deliver_stop.wait(self.DELIVER_GATHER_S)

    def _flush(self) -> None:
        self._deliver_busy_since = time.monotonic()
        try:
            self.pipeline.emit_summaries()  # periodic per-flow summary events, when due
            self.pipeline.flush()
        except Exception as err:  # an uplink bug must not kill the service
            text = f"{type(err).__name__}: {err}"
            if text != self._flush_error:
                log.exception("delivery failed; events stay in the outbox")
            self._flush_error = text
        else:
            self._flush_error = ""
        finally:
            self._deliver_busy_since = None

    def _status_line(self) -> str:
        running = sum(r.state == "running" for r in self.runners.values())
        return (f"{running}/{len(self.runners)} flows running, "
                f"{self.pipeline.delivered} events delivered")

    # ----------------------------------------------------------------- reload
    def reload(self) -> bool:
        """Reload the config file; on any problem keep the running config. True if applied."""
        self.notifier.reloading()
        log.info("reloading %s", self.config_path)
        fleet: Any = self.fleet
        try:
            plans = build_plans(load_config(self.config_path))
            new_fleet = _fleet_key(plans.config) != _fleet_key(self.config)
            if new_fleet:  # broker, gateway id or models dir changed: a new status publisher
                fleet = fleet_health.for_config(plans.config)
            try:
                pipeline, kept = self._build(plans, self.pipeline)
            except BaseException:
                if new_fleet and fleet is not None:
                    fleet.close("reload refused")
                raise
        except Exception as err:  # a plugin's constructor may raise anything
            self.reloads_refused += 1
            if not isinstance(err, (FrugalError, OSError)):
                err = RuntimeError(f"{type(err).__name__}: {err}")
            reason = redact(str(err))  # a plugin's own exception may quote its URL
            log.error("reload refused, still running the previous config: %s", reason)
            self.notifier.ready(f"reload refused ({reason}); " + self._status_line())
            return False
        if not self._deliver_lock.acquire(timeout=self.config.service.stop_timeout_s):
            self.reloads_refused += 1
            log.error("reload refused: delivery to the uplinks is stuck; still running the "
                      "previous config")
            self._discard(pipeline, kept)
            if fleet is not self.fleet and fleet is not None:
                fleet.close("reload refused")
            self.notifier.ready("reload refused (delivery stuck); " + self._status_line())
            return False
        try:
            self._swap(plans, pipeline, kept)
        finally:
            self._deliver_lock.release()
        if fleet is not self.fleet:
            old_fleet, self.fleet = self.fleet, fleet
            if old_fleet is not None:
                old_fleet.close("reconfigured")
            log.info("fleet status publisher rebuilt for the new config")
        self.reloads += 1
        self.write_health()
        self.notifier.ready(self._status_line())
        return True

    def _discard(self, pipeline: Pipeline, kept: dict[str, FlowRunner]) -> None:
        """Close what a refused reload built (never the running flows, outbox or uplinks)."""
        for flow in pipeline.flows:
            if not self._running_source(flow):
                flow.source.close()
        if pipeline.outbox is not self.pipeline.outbox:
            pipeline.outbox.close()
        for sink in pipeline.sinks:
            if not any(sink is s for s in self.pipeline.sinks):
                sink.close()

    def _swap(self, plans: GatewayPlan, pipeline: Pipeline,
              kept: dict[str, FlowRunner]) -> None:
        """Make ``pipeline`` the live one: stop the flows it does not keep, move what the old
        pipeline holds into it, start its new flows."""
        for name, runner in self.runners.items():
            if name not in kept:
                runner.stop()
        for name, runner in self.runners.items():
            if name not in kept:
                if not runner.join(self.config.service.stop_timeout_s):
                    log.error("flow %s did not stop within %.0f s; abandoning its thread",
                              name, self.config.service.stop_timeout_s)
                runner.close()
                self.lifetime.fold(name, runner.counts())
                self._rates.pop(name, None)
        old = self.pipeline
        self._flush()  # what the old flows produced, through the old uplinks
        with self._live_lock:  # from here on, every flow stores through the new pipeline
            pipeline.adopt(old)
            self.pipeline = pipeline
        if pipeline.outbox is not old.outbox:
            old.outbox.close()
        for sink in old.sinks:
            if not any(sink is s for s in pipeline.sinks):
                sink.close()
        old.flows.clear()
        old.sinks.clear()
        self.plans, self.config = plans, plans.config
        runners: dict[str, FlowRunner] = {}
        swapped = []
        for plan, flow in zip(plans.flows, pipeline.flows):
            keep = kept.get(plan.name)
            if keep is not None and keep.flow is not flow:  # same source, new model/settings
                keep.swap(flow, plan.open_source, plan.model_version)
                swapped.append(plan.name)
            runners[plan.name] = keep if keep is not None else self._runner(plan, flow).start()
        self.runners = runners
        started = sorted(set(runners) - set(kept))
        log.info("reloaded: %d flow(s) kept, started: %s%s", len(kept) - len(swapped),
                 ", ".join(started) or "none",
                 f"; new model/settings on the open source: {', '.join(swapped)}"
                 if swapped else "")

    # ----------------------------------------------------------------- stop
    def shutdown(self) -> int:
        """Finish the current steps, flush the outbox, close; bounded by stop_timeout_s."""
        self.state = "stopping"
        self.notifier.stopping()
        log.info("stopping: finishing current steps and flushing the outbox")
        deadline = time.monotonic() + self.config.service.stop_timeout_s
        for runner in self.runners.values():
            runner.stop()
        for runner in self.runners.values():
            if not runner.join(max(0.0, deadline - time.monotonic())):
                log.error("flow %s still busy at the stop deadline", runner.name)
        self._deliver_stop.set()  # the delivery thread flushes once more, then ends
        self._deliver_wake.set()
        if self._deliverer is None:
            self._flush()
        else:
            self._deliverer.join(max(0.5, deadline - time.monotonic()))
        flushed = self._deliverer is None or not self._deliverer.is_alive()
        depth = self.pipeline.outbox.depth() if flushed else -1
        self.state = "stopped"
        self.write_health()
        if self.fleet is not None:
            self.fleet.close()
        if flushed:
            for runner in self.runners.values():
                runner.close()
            summary = self.pipeline.summary()
            self.pipeline.close()
            log.info("stopped: %d events delivered, %d left in the outbox",
                     summary["events"], depth)
        else:  # leave the database alone: an in-flight write must not race a close
            log.error("delivery still running at the stop deadline; undelivered events stay "
                      "in the outbox for the next start")
        self.notifier.close()
        code = exit_code(self.pipeline.lost + (0 if flushed else self.pipeline.held))
        failed = self.model_failed or self._all_model_calls_failed()
        if code == 0 and failed:
            log.error("exiting with code %d: %s", EXIT_MODEL_FAILING, failed)
            return EXIT_MODEL_FAILING
        return code

    # ----------------------------------------------------------------- health
    def status(self) -> ServiceStatus:
        """What ``status.json`` says now."""
        now_wall, now = time.time(), time.monotonic()
        flows: dict[str, FlowStatus] = {}
        for name, runner in self.runners.items():
            flow = runner.flow
            st = flow.source.stats
            # A rate needs two counts of the same source: a reloaded or restarted flow's
            # counter starts again, and its first rate is 0, never negative.
            prev = self._rates.get(name)
            rate = 0.0
            if prev is not None and prev[2] == id(st) and now > prev[0] and \
                    st.readings >= prev[1] and runner.state == "running":
                rate = (st.readings - prev[1]) / (now - prev[0])
            self._rates[name] = (now, st.readings, id(st))
            state, why = runner.condition(now)
            total = self.lifetime.total(name, runner.counts())  # since the gateway's start
            flows[name] = FlowStatus(
                source=redact(flow.config.source), model=flow.config.model,
                model_version=runner.model_version, state=state, why=why,
                parity_errors=total["parity_errors"], framing=getattr(st, "framing", ""),
                device_up=runner.device_up(), restarts=runner.restarts,
                last_error=runner.last_error or st.last_error,
                readings=total["readings"], readings_per_s=round(rate, 3),
                decode_errors=total["frames_bad"], implausible=total["implausible"],
                events=total["events"], bytes_read=total["bytes_read"],
                model_errors=total["model_errors"], outages=total["outages"],
                last_reading_ts=st.last_reading_ts, last_received=st.last_received,
                last_score=flow.stats.last_score,
                health=None if flow.health is None else flow.health.status())
        uplinks = [s.snapshot() if isinstance(s, TrackedSink) else {"url": repr(s)}
                   for s in self.pipeline.sinks]
        return ServiceStatus(
            version=__version__, pid=os.getpid(), config=self.config_path, state=self.state,
            healthy=self.state == "running" and self.health() is None,
            started=self.started, updated=now_wall,
            status_interval_s=self.config.service.status_interval_s,
            reloads=self.reloads, reloads_refused=self.reloads_refused, flows=flows,
            outbox={**outbox_view(self.plans.outbox_path, now_wall),
                    "held_in_memory": self.pipeline.held, "lost": self.pipeline.lost},
            uplinks=uplinks,
            # the counters frugalai.footprint computes the upstream ratio from (lifetime)
            bytes=self._lifetime_bytes())

    def _live_counts(self) -> tuple[dict[str, Counter[str]], dict[str, int]]:
        """What the live runners and pipeline count now (the lifetime base excluded)."""
        return ({name: r.counts() for name, r in self.runners.items()},
                {"upstream_bytes": self.pipeline.upstream_bytes,
                 "delivered": self.pipeline.delivered})

    def _lifetime_bytes(self) -> dict[str, int]:
        snap = self.lifetime.snapshot(*self._live_counts())
        return {"raw_read": sum(int(f.get("bytes_read", 0)) for f in snap["flows"].values()),
                "upstream": int(snap["gateway"].get("upstream_bytes", 0))}

    def snapshot(self) -> dict[str, Any]:
        """:meth:`status` as the dict written to ``status.json``."""
        return self.status().as_dict()

    def write_health(self) -> None:
        """Rewrite status.json and the Prometheus textfile; a failure is logged, not fatal."""
        import json

        state_dir = Path(self.config.gateway.state_dir)
        prom = self.config.service.prometheus_textfile or str(state_dir / "frugalai.prom")
        for runner in self.runners.values():
            runner.note_decode_errors()
        errors = []
        files: tuple[tuple[Path, str], ...] = ()
        try:
            snap = self.snapshot()
            if self.fleet is not None:  # before the files: a full disk must not silence it
                self.fleet.publish(snap)
            files = ((state_dir / STATUS_FILE, json.dumps(snap, indent=1, default=str)),
                     (Path(prom), prometheus.render(snap)))
        except (OSError, ValueError) as err:
            errors.append(f"status: {err}")
        # Each file on its own: a full state dir must not also blind a textfile kept elsewhere.
        for path, text in files:
            try:
                atomic_write(path, text)
            except OSError as err:
                errors.append(f"{path}: {err}")
        try:
            self.lifetime.save(*self._live_counts(), state_dir)
        except OSError as err:
            errors.append(f"counters: {err}")
        if errors:  # a full disk lasts: the first, then a count every few minutes
            _HEALTH_LOG.warning("health", "cannot write the health files: %s", "; ".join(errors))
        else:
            _HEALTH_LOG.end("health")


#: health-file write failures (a full disk lasts): the first, then a count every few minutes.
_HEALTH_LOG = LogRate(log)

#: exit code of a run that lost events (disk full past the memory cap, or at exit): not a
#: success, so systemd marks the unit failed and a supervisor's script notices.
EXIT_EVENTS_LOST = 3
#: exit code of a run in which a flow's model failed on every window for
#: ``service.model_failure_exit_s`` (or on every window of a run that ended): the unit's
#: Restart= starts it again, which reloads the model; a supervisor sees the failure.
EXIT_MODEL_FAILING = 4


#: flow settings that act after the model (what happens to its scores), not on what it learns
_AFTER_THE_MODEL: dict[str, Any] = {"policy": PolicyConfig(), "summary_s": 0, "sensor_id": 0,
                                    "model_id": 0}


def same_scorer(before: FlowPlan, after: FlowPlan) -> bool:
    """True if a reload from ``before`` to ``after`` leaves the scorer's inputs as they were:
    same model content and settings but for the policy, the summary period and the ids, and
    the same ``policy.on`` (the profile model learns only below it). Then the new flow keeps
    the running scorer, with what it learned (a profile's days of history)."""
    import dataclasses

    if before.scorer != after.scorer or before.model_version != after.model_version or \
            before.policy_on != after.policy_on:
        return False
    return bool(dataclasses.replace(before.config, **_AFTER_THE_MODEL) ==
                dataclasses.replace(after.config, **_AFTER_THE_MODEL))


def _fleet_key(config: Config) -> tuple[Any, ...]:
    """What the fleet status publisher is built from (a reload compares it)."""
    return (tuple(u.url for u in config.uplink), config.gateway.id, config.gateway.models_dir)


def exit_code(lost: int) -> int:
    """0, or :data:`EXIT_EVENTS_LOST` (said in the log) when events were lost."""
    if lost:
        log.error("exiting with code %d: %d event(s) were lost in this run", EXIT_EVENTS_LOST,
                  lost)
        return EXIT_EVENTS_LOST
    return 0


def run_service(config_path: str, config: Config, duration: Optional[float] = None) -> int:
    """Build, install signal handlers, run; the exit code."""
    return Service(config_path, config, handle_signals=True).run(duration)
