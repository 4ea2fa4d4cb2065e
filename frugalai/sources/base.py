"""What every source shares: counters, reconnect backoff, and the outage logging rule.

The rule for outages: log once when a device disappears and once when it comes back (with how
long it was gone), never once per retry. A gateway that loses its USB dongle for a night must not
fill the SD card with a line every second.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Protocol, runtime_checkable

from frugalai.reading import Reading
from frugalai.retry import Backoff

__all__ = ["Backoff", "Clock", "OutageLog", "ReconnectingSource", "Source", "SourceStats"]

log = logging.getLogger("frugalai.sources")

Clock = Callable[[], float]


@dataclass
class SourceStats:
    """Counters of one source, exported by ``frugalai status`` and the Prometheus file."""

    bytes_read: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    frames_lost: int = 0  # inferred from sequence-number gaps (firmware_bridge)
    timeouts: int = 0  # requests left unanswered (Modbus)
    skipped: int = 0  # rows or values without data (replay gaps), not errors
    implausible: int = 0  # values refused by a plausibility gate (protocols/plausibility.py)
    parity_errors: int = 0  # bytes with a wrong parity bit (software framing, serial_open.py)
    readings: int = 0
    outages: int = 0
    reconnects: int = 0
    last_error: str = ""
    last_reading_ts: float = 0.0  # the reading's own time (a meter's clock may be wrong)
    last_received: float = 0.0  # gateway wall time it arrived: what liveness is judged on
    framing: str = ""  # serial sources: the framing in use (e.g. "7E1 in software ...")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@runtime_checkable
class Source(Protocol):
    """A source yields Readings until ``stop`` is set; it never raises on bad data."""

    sensor: str

    @property
    def stats(self) -> SourceStats: ...  # read-only here, so a subclass of SourceStats fits

    def readings(self, stop: threading.Event) -> Iterator[Reading]: ...

    def close(self) -> None: ...


def _permission_denied(err: BaseException) -> bool:
    import errno

    seen: Optional[BaseException] = err
    while seen is not None:
        if isinstance(seen, PermissionError) or getattr(seen, "errno", None) in (errno.EACCES,
                                                                                   errno.EPERM):
            return True
        seen = seen.__cause__
    return False


class OutageLog:
    """Logs the start and the end of an outage once each, and counts outages."""

    def __init__(self, name: str, stats: SourceStats, clock: Clock = time.monotonic) -> None:
        self.name = name
        self.stats = stats
        self.clock = clock
        self.since: Optional[float] = None

    def down(self, err: BaseException) -> None:
        self.stats.last_error = f"{type(err).__name__}: {err}"
        if self.since is None:
            self.since = self.clock()
            self.stats.outages += 1
            # "device lost" misleads when it was never there for us: say what it is.
            what = "permission denied" if _permission_denied(err) else "device lost"
            log.warning("%s: %s (%s); retrying with backoff", self.name, what, err)

    def up(self) -> None:
        if self.since is not None:
            gone = self.clock() - self.since
            self.stats.reconnects += 1
            log.warning("%s: device back after %.1f s", self.name, gone)
            self.since = None


class ReconnectingSource(ABC):
    """The life cycle every device source shares: connect, read, lose the device, back off, retry.

    Written once here for the serial, Modbus and LoRa sources (pyserial's ``SerialBase`` idea):
    a subclass says how to :meth:`connect`, how to :meth:`disconnect` and how to
    :meth:`read_some`; this class owns the loop, the backoff, the outage log (once down, once
    up) and the reading counters. A transport error (any ``OSError``: pyserial's
    ``SerialException`` and our ``SourceError`` are ones) drops the connection and retries;
    bad data never reaches here (framers count it and go on).

    Subclasses set ``sensor``, ``stats``, ``backoff`` and ``_outage`` in their ``__init__``.
    """

    sensor: str
    stats: SourceStats
    backoff: Backoff
    _outage: OutageLog

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the device is open and ready to read."""

    @abstractmethod
    def connect(self) -> None:
        """Open and prepare the device; an ``OSError`` (``SourceError``) if it cannot."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the device; a no-op when not connected, never raises."""

    @abstractmethod
    def read_some(self, stop: threading.Event) -> Iterator[Reading]:
        """Read what the device has now (waiting at most a fraction of a second, or until
        ``stop``) and yield the Readings it makes; an ``OSError`` when the device is lost."""

    def readings(self, stop: threading.Event) -> Iterator[Reading]:
        """Yield Readings until ``stop`` is set, surviving device loss."""
        while not stop.is_set():
            if not self.connected:
                try:
                    self.connect()
                except OSError as err:
                    self._outage.down(err)
                    self.disconnect()
                    stop.wait(self.backoff.next_delay())
                    continue
                self._outage.up()
                self.backoff.reset()
            try:
                for reading in self.read_some(stop):
                    self.stats.readings += 1
                    self.stats.last_reading_ts = reading.ts
                    self.stats.last_received = time.time()
                    yield reading
            except OSError as err:
                self._outage.down(err)
                self.disconnect()

    def close(self) -> None:
        """Release the device; safe to call twice."""
        self.disconnect()

    def __enter__(self) -> ReconnectingSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
