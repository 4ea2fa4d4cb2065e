"""Supervision of flows and uplinks: a failing source is restarted, a failing uplink is noticed.

Each flow runs the pipeline's one flow loop (:func:`frugalai.pipeline.run_flow`) in its own
thread, inside a :class:`FlowRunner`, which the loop tells when each step starts and ends.
When that loop raises (a source bug, a device error the source did not handle), the runner logs
it once, closes the source, waits with exponential backoff and reopens it; the other flows never
notice. A crash in a model's code is already contained per reading by the flow loop; the runner
also times every step so that a model stuck in an endless loop makes the flow *unhealthy*, which
withholds the systemd watchdog ping: systemd then restarts the whole service, the one cure for a
thread Python cannot kill.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Callable, Optional

from frugalai.events.event import Event
from frugalai.lograte import EVERY_S, LogRate
from frugalai.pipeline import Flow, Sink, StepWatch
from frugalai.redact import redact
from frugalai.service.counters import flow_counts, source_counts
from frugalai.sources.base import Backoff, Source

log = logging.getLogger("frugalai.service")

#: the flow loop a runner runs: (flow, stop, step watch); ends when the source ends.
FlowLoop = Callable[[Flow, threading.Event, StepWatch], None]


class FlowRunner:
    """Runs one flow in a thread and restarts its source when the loop fails.

    Args:
        flow: the flow (its scorer state survives source restarts).
        loop: the flow loop (``Pipeline.run_flow``, or ``run_flow`` bound to a live store).
        reopen: builds a fresh source for this flow.
        model_version: what ``status`` and the Prometheus file report for the model.
        backoff: delays between restarts (reset after a run of ``stable_s`` seconds).
        on_end: called from the flow's thread once its state is final (a finite source
            ended, or the flow stopped): the service wakes at once instead of noticing on its
            next tick (a batch run ends the moment its file is read).
    """

    def __init__(self, flow: Flow, loop: FlowLoop, reopen: Callable[[], Source],
                 model_version: str = "", backoff: Optional[Backoff] = None,
                 stable_s: float = 60.0, on_end: Optional[Callable[[], None]] = None) -> None:
        self.flow = flow
        self.on_end = on_end
        self.loop = loop
        self.reopen = reopen
        self.model_version = model_version
        self.backoff = backoff or Backoff(initial=1.0, cap=60.0)
        self.stable_s = stable_s
        self.stop_event = threading.Event()
        self.state = "idle"
        self.restarts = 0
        self.last_error = ""
        self.busy_since: Optional[float] = None
        self._thread: Optional[threading.Thread] = None
        self._frames_bad_seen = 0
        self._decode_log = LogRate(log)
        #: what the sources this runner replaced had counted (see :meth:`counts`)
        self.retired: Counter[str] = Counter()

    @property
    def name(self) -> str:
        return self.flow.config.name

    # StepWatch: the loop times each step for the stall check.
    def step_started(self) -> None:
        self.busy_since = time.monotonic()

    def step_done(self) -> None:
        self.busy_since = None

    def start(self) -> FlowRunner:
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"flow-{self.name}")
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._supervise()
        finally:
            if self.on_end is not None:
                self.on_end()

    def _supervise(self) -> None:
        stop = self.stop_event
        need_source = False
        while not stop.is_set():
            if need_source:
                try:
                    fresh = self.reopen()
                    self.retired.update(source_counts(self.flow.source.stats))
                    self.flow.source = fresh
                except Exception as err:  # any failure: retry later
                    self.last_error = redact(f"{type(err).__name__}: {err}")
                    log.warning("flow %s: cannot reopen its source (%s)", self.name, err)
                    if stop.wait(self.backoff.next_delay()):
                        break
                    continue
                need_source = False
            began = time.monotonic()
            self.state = "running"
            try:
                self.loop(self.flow, stop, self)
            except Exception as err:  # supervision: contain, log, restart
                self.restarts += 1
                self.last_error = redact(f"{type(err).__name__}: {err}")
                self.state = "restarting"
                if time.monotonic() - began > self.stable_s:
                    self.backoff.reset()
                delay = self.backoff.next_delay()
                log.error("flow %s: source failed (%s); restart %d in %.1f s", self.name,
                          self.last_error, self.restarts, delay,
                          exc_info=self.restarts == 1)
                self._close_source()
                need_source = True
                if stop.wait(delay):
                    break
                continue
            if not stop.is_set():  # a finite source (a replay) came to its end
                self.state = "finished"
                log.info("flow %s: source ended", self.name)
                return
        self.state = "stopped"

    def counts(self) -> Counter[str]:
        """What this flow counted under this runner: the live source and flow, plus the
        sources restarted before (the service adds earlier runners and runs)."""
        out = Counter(self.retired)
        out.update(flow_counts(self.flow))
        return out

    def swap(self, flow: Flow, reopen: Callable[[], Source], model_version: str) -> None:
        """A reload that keeps this flow's source: from the next reading on, ``flow`` (built
        on the same source, see :meth:`Flow.continue_from`) processes what the source reads;
        the thread, the open device and the restart backoff stay."""
        if flow.source is not self.flow.source:
            raise ValueError(f"flow {self.name}: swap needs the same source")
        flow.continue_from(self.flow)
        self.reopen = reopen
        self.model_version = model_version
        self.flow = flow

    def _close_source(self) -> None:
        try:
            self.flow.source.close()
        except Exception as err:  # a broken source may fail to close
            log.debug("flow %s: closing the source failed: %s", self.name, err)

    def note_decode_errors(self) -> None:
        """Log rejected frames seen since the last call: the first burst at once, then a
        count every few minutes while frames keep being rejected (never one line each)."""
        stats = self.flow.source.stats
        bad = stats.frames_bad
        new = bad - self._frames_bad_seen if bad >= self._frames_bad_seen else bad  # reopened
        self._frames_bad_seen = bad
        if new > 0:
            self._decode_log.warning("decode", "flow %s: %d frame(s) rejected (last: %s)",
                                     self.name, new, stats.last_error or "no detail",
                                     count=new)

    def stop(self) -> None:
        """Ask the flow to stop after its current step."""
        self.stop_event.set()

    def join(self, timeout: Optional[float]) -> bool:
        """Wait for the thread; True if it ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._close_source()

    def health(self, stall_s: float, now: Optional[float] = None) -> Optional[str]:
        """None when healthy, else why not."""
        now = time.monotonic() if now is None else now
        if self.state == "finished":
            return None
        if self._thread is None or not self._thread.is_alive():
            return f"flow {self.name}: thread not running ({self.state})"
        busy = self.busy_since
        if busy is not None and now - busy > stall_s:
            return f"flow {self.name}: stuck in one step for {now - busy:.0f} s"
        return None

    def condition(self, now: Optional[float] = None) -> tuple[str, str]:
        """The flow's state for ``status`` and why, when it is not well.

        ``degraded`` while it retries by itself: the source is being restarted, its device is
        down (the reason is the source's last error: a port that fails to reopen says why),
        or the model failed on every window since its last success. The other states are the
        runner's own (running, finished, stopped, idle).
        """
        now = time.monotonic() if now is None else now
        if self.state == "restarting":
            return "degraded", f"source restarting: {self.last_error}"
        if self.state != "running":
            return self.state, ""
        stats = self.flow.source.stats
        if not self.device_up():
            return "degraded", f"device down: {stats.last_error or 'no detail'}"
        since = self.flow.failing_since
        if since is not None:
            return "degraded", (f"model failing for {now - since:.0f} s: "
                                f"{redact(self.flow.last_model_error) or 'no detail'}")
        return "running", ""

    def device_up(self) -> bool:
        stats = self.flow.source.stats
        return self.state == "running" and stats.outages <= stats.reconnects


class TrackedSink:
    """Wraps an uplink to know its state; logs when it goes down and when it comes back."""

    def __init__(self, sink: Sink, url: str) -> None:
        self.sink = sink
        self.url = redact(url)
        self.state = "unknown"
        self.last_error = ""
        self.last_ok_ts = 0.0
        self.sent = 0
        self._log = LogRate(log, settle_s=EVERY_S)

    def send(self, events: Sequence[Event]) -> list[Event]:
        try:
            delivered = self.sink.send(events)
        except Exception as err:
            self.last_error = redact(f"{type(err).__name__}: {err}")
            if self.state != "failing":
                self._log.warning("down", "uplink %s down (%s); events wait in the outbox",
                                  self.url, self.last_error)
            self.state = "failing"
            raise
        if self.state == "failing":  # a flapping link: one episode, counted (LogRate)
            self._log.warning("back", "uplink %s back", self.url)
            self._log.recovered_all()
        self.state = "ok"
        self.last_ok_ts = time.time()
        self.sent += len(delivered)
        return delivered

    def close(self) -> None:
        self._log.flush()
        self.sink.close()

    def snapshot(self) -> dict[str, Any]:
        return {"url": self.url, "state": self.state, "last_error": self.last_error,
                "last_ok_ts": self.last_ok_ts, "sent": self.sent}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)
