"""What the emulators share: a daemon thread's life cycle, and lockstep with the gateway.

Lockstep is for compressed time (the demos run days in seconds): at 17,280x, 10 ms of thread
scheduling is three simulated minutes, and a 15-minute energy rate (or an hourly tide mean)
computed from readings stamped on arrival is noise. In lockstep a sender emits its next frame
or packet only once the gateway has consumed the previous one (a busy gateway slows the
simulation instead of receiving a backlog), and :meth:`Emulator.gateway_clock` tells the
gateway the simulated instant of what it is decoding.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Optional, TypeVar

from frugalai.sim.pty import PtyPort

E = TypeVar("E", bound="Emulator")


class Lockstep:
    """Units sent (bytes, packets) with their instants, against units the gateway consumed."""

    def __init__(self, clock: Callable[[], float], consumed: Callable[[], int]) -> None:
        self.clock = clock
        self.consumed = consumed
        self._ends: deque[tuple[int, float]] = deque()  # (units sent when it ends, instant)
        self._sent = 0
        self._lost = 0  # units the gateway will never consume (flushed, missed by its modem)
        self._current: Optional[float] = None

    def sent(self, units: int, ts: float) -> None:
        self._sent += units
        self._ends.append((self._sent, ts))

    def wait(self, stop: threading.Event, timeout: float = 1.0) -> None:
        """Until the gateway has consumed all that was sent. On timeout what it has not
        consumed counts as lost (a real device does not wait, so neither does this one long)."""
        deadline = time.monotonic() + timeout
        while self.consumed() + self._lost < self._sent:
            if stop.wait(0.0002):
                return
            if time.monotonic() >= deadline:
                self._lost = self._sent - self.consumed()
                return

    def instant(self) -> float:
        """The instant of the last unit consumed whole (the shared clock before the first)."""
        done = self.consumed() + self._lost
        while self._ends and self._ends[0][0] <= done:
            self._current = self._ends.popleft()[1]
        return self.clock() if self._current is None else self._current


class Emulator:
    """An emulator whose ``run`` goes in a daemon thread: start, stop, ``with``.

    Subclasses create ``_stop`` and ``_thread = None`` in ``__init__`` and implement ``run``
    (which returns when ``_stop`` is set); senders call :meth:`_lockstep_wait` before and
    :meth:`_lockstep_sent` after each emission.
    """

    thread_name = "emulator"
    clock: Callable[[], float]
    _stop: threading.Event
    _thread: Optional[threading.Thread]
    _lockstep: Optional[Lockstep] = None

    def run(self, *args: Any) -> None:
        raise NotImplementedError

    def _thread_label(self) -> str:
        return self.thread_name

    def _start_thread(self, *args: Any) -> None:
        self._thread = threading.Thread(target=self.run, args=args, daemon=True,
                                        name=self._thread_label())
        self._thread.start()

    def start(self: E) -> E:
        """Run in a daemon thread."""
        self._start_thread()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()

    def __enter__(self: E) -> E:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- lockstep (see the module docstring) ------------------------------------------------
    def lockstep_with(self, consumed: Callable[[], int]) -> None:
        """Run in lockstep with a gateway that has consumed ``consumed()`` units so far."""
        self._lockstep = Lockstep(self.clock, consumed)

    def gateway_clock(self) -> float:
        """A clock for the gateway's source: the simulated instant of the last frame or packet
        it consumed whole in lockstep, else the shared clock."""
        return self._lockstep.instant() if self._lockstep is not None else self.clock()

    def _lockstep_wait(self) -> None:
        if self._lockstep is not None:
            self._lockstep.wait(self._stop)

    def _lockstep_sent(self, units: int, ts: float) -> None:
        if self._lockstep is not None:
            self._lockstep.sent(units, ts)


def stop_when_done(running: Callable[[], bool], stop: threading.Event,
                   settle_s: float) -> threading.Thread:
    """Set ``stop`` ``settle_s`` after ``running()`` turns false: a demo then covers its whole
    simulated span however long a loaded machine takes, and its last readings are scored."""

    def watch() -> None:
        while running() and not stop.is_set():
            stop.wait(0.05)
        stop.wait(settle_s)
        stop.set()

    thread = threading.Thread(target=watch, daemon=True, name="demo-end")
    thread.start()
    return thread


class EmulatedDevice(Emulator):
    """An emulator that owns a pty (``port``), released by :meth:`close`."""

    port: PtyPort

    def close(self) -> None:
        """Stop and release the pty (a device unplugged for good); safe to call twice."""
        self.stop()
        self.port.close()
