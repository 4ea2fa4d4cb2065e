"""Rate-limited logging for faults that repeat: the first occurrence, then a count.

An operator reads journald. During a broker outage, a full outbox or a burst of corrupt frames
the same fault happens once per event, per flush or per frame; one line each buries everything
else (1,040 lines a minute were seen with a full outbox). :class:`LogRate` logs the first
occurrence of a key at once, counts the next ones, and writes one line with the count (and the
latest details) at the first occurrence after ``every_s`` seconds, and at :meth:`end` (the
episode is over: the next occurrence is news again) or :meth:`flush` (the service stops).

>>> import logging, sys
>>> log = logging.getLogger("doctest.lograte")
>>> log.addHandler(logging.StreamHandler(sys.stdout)); log.propagate = False
>>> now = [0.0]
>>> rate = LogRate(log, every_s=300, clock=lambda: now[0])
>>> for t in range(0, 400, 10):   # one failure every 10 s for 400 s
...     now[0] = float(t)
...     _ = rate.warning("uplink", "uplink failed: %s", f"refused at {t}")
uplink failed: refused at 0
uplink failed: refused at 300 (30 more in the last 300 s)
>>> rate.end("uplink")
uplink failed: refused at 390 (9 more in the last 90 s)

A link that flaps (a broker up 5 s, down 5 s) is one fault, not one per outage: with
``settle_s``, :meth:`recovered` says the fault is over *for now*, and it comes back within
``settle_s`` as the same episode, counted; only a fault that stayed away that long is news again
(the count still unsaid is written just before it, or at :meth:`flush`).

>>> flap = LogRate(log, every_s=300, settle_s=300, clock=lambda: now[0])
>>> for t in range(0, 400, 10):   # down, then back 5 s later, every 10 s
...     now[0] = float(t)
...     _ = flap.warning("link", "link down at %s", t)
...     now[0] = t + 5.0
...     flap.recovered("link")
link down at 0
link down at 300 (30 more in the last 300 s)
>>> now[0] = 1000.0
>>> _ = flap.warning("link", "link down at %s", 1000)   # quiet for 600 s: news again
link down at 390 (9 more in the last 95 s)
link down at 1000
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

#: how often a repeating fault is summarised by default: a few minutes.
EVERY_S = 300.0


@dataclass
class _Episode:
    since: float  # when the last line for this key was written
    suppressed: int = 0  # occurrences since, not written
    level: int = logging.WARNING
    msg: str = ""
    args: tuple[Any, ...] = ()
    recovered: Optional[float] = None  # when the fault was last said to be over


class LogRate:
    """First occurrence of each key logged at once, later ones counted (thread-safe).

    Args:
        logger: where the lines go.
        every_s: at most one line per key in this many seconds while the fault repeats.
        clock: monotonic seconds (a test passes its own).
        settle_s: a fault :meth:`recovered` that comes back within this many seconds belongs
            to the same episode (0: :meth:`recovered` ends it at once, like :meth:`end`).
    """

    def __init__(self, logger: logging.Logger, every_s: float = EVERY_S,
                 clock: Callable[[], float] = time.monotonic, settle_s: float = 0.0) -> None:
        self.logger = logger
        self.every_s = every_s
        self.clock = clock
        self.settle_s = settle_s
        self._episodes: dict[str, _Episode] = {}
        self._lock = threading.Lock()

    def log(self, level: int, key: str, msg: str, *args: Any, count: int = 1) -> bool:
        """Log ``msg % args`` if it is news for ``key``; else count it. True if written.

        ``count`` is how many occurrences this call stands for (frames rejected since the last
        call, events dropped by one append).
        """
        now = self.clock()
        earlier: Optional[tuple[str, tuple[Any, ...]]] = None
        with self._lock:
            ep = self._episodes.get(key)
            if ep is not None and ep.recovered is not None and \
                    now - ep.recovered >= self.settle_s:  # the last episode is over: news
                earlier = self._summary(ep, ep.recovered) if ep.suppressed else None
                earlier_level = ep.level
                ep = None
            if ep is None:
                self._episodes[key] = _Episode(since=now, level=level, msg=msg, args=args)
                write: Optional[tuple[str, tuple[Any, ...]]] = (msg, args)
            else:
                ep.recovered = None
                ep.suppressed += count
                ep.level, ep.msg, ep.args = level, msg, args
                write = None
                if now - ep.since >= self.every_s:
                    write = self._summary(ep, now)
                    ep.since, ep.suppressed = now, 0
        if earlier is not None:
            self.logger.log(earlier_level, earlier[0], *earlier[1])
        if write is not None:
            self.logger.log(level, write[0], *write[1])
        return write is not None

    def warning(self, key: str, msg: str, *args: Any, count: int = 1) -> bool:
        return self.log(logging.WARNING, key, msg, *args, count=count)

    def error(self, key: str, msg: str, *args: Any, count: int = 1) -> bool:
        return self.log(logging.ERROR, key, msg, *args, count=count)

    def info(self, key: str, msg: str, *args: Any, count: int = 1) -> bool:
        return self.log(logging.INFO, key, msg, *args, count=count)

    def recovered(self, key: str) -> None:
        """The fault ``key`` is over for now: with ``settle_s``, it ends only if it stays
        away that long (a flapping link is one episode); without, this is :meth:`end`."""
        if not self.settle_s:
            self.end(key)
            return
        with self._lock:
            ep = self._episodes.get(key)
            if ep is not None and ep.recovered is None:
                ep.recovered = self.clock()

    def active(self, key: str) -> bool:
        """True while an episode of ``key`` is open (logged and not ended)."""
        with self._lock:
            return key in self._episodes

    def end(self, key: str) -> None:
        """The fault ``key`` is over: write what was counted, and forget it."""
        with self._lock:
            ep = self._episodes.pop(key, None)
            write = self._summary(ep, self.clock()) if ep is not None and ep.suppressed else None
        if ep is not None and write is not None:
            self.logger.log(ep.level, write[0], *write[1])

    def recovered_all(self) -> None:
        """:meth:`recovered` for every open episode (a link that came back)."""
        with self._lock:
            keys = list(self._episodes)
        for key in keys:
            self.recovered(key)

    def flush(self) -> None:
        """End every open episode (at stop): no count is left unsaid."""
        with self._lock:
            keys = list(self._episodes)
        for key in keys:
            self.end(key)

    @staticmethod
    def _summary(ep: _Episode, now: float) -> tuple[str, tuple[Any, ...]]:
        return (ep.msg + " (%d more in the last %.0f s)",
                (*ep.args, ep.suppressed, now - ep.since))


__all__ = ["EVERY_S", "LogRate"]
