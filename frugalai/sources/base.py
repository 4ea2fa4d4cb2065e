"""What every source shares: counters, reconnect backoff, and the outage logging rule.

The rule for outages: log once when a device disappears and once when it comes back (with how
long it was gone), never once per retry. A gateway that loses its USB dongle for a night must not
fill the SD card with a line every second.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Protocol

from frugalai.reading import Reading

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
    readings: int = 0
    outages: int = 0
    reconnects: int = 0
    last_error: str = ""
    last_reading_ts: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class Source(Protocol):
    """A source yields Readings until ``stop`` is set; it never raises on bad data."""

    sensor: str

    @property
    def stats(self) -> SourceStats: ...  # read-only here, so a subclass of SourceStats fits

    def readings(self, stop: threading.Event) -> Iterator[Reading]: ...

    def close(self) -> None: ...


class Backoff:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped, reset on success.

    >>> b = Backoff(initial=1.0, cap=4.0, jitter=0.0)
    >>> [b.next_delay() for _ in range(4)]
    [1.0, 2.0, 4.0, 4.0]
    """

    def __init__(self, initial: float = 0.5, cap: float = 30.0, jitter: float = 0.1) -> None:
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * 2)
        return delay * (1.0 + random.uniform(-self.jitter, self.jitter)) if self.jitter else delay

    def reset(self) -> None:
        self._next = self.initial


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
