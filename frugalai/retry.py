"""Exponential backoff with jitter, shared by sources, uplinks and the service supervisor.

It sits at the bottom of the package (no frugalai imports) so that the incoming side
(``sources/``), the outgoing side (``uplink/``) and the service can all use it without one
importing another.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Optional


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


#: seconds a link must work before an outage counts as over: a broker that flaps every few
#: seconds is one episode in the log (its first fault, its first return, counts every few
#: minutes), not lines at every flap.
STABLE_S = 60.0


class Episode:
    """Whether a link's outage is still "the same one" for logging: it starts at a failure
    and ends only after the link has worked for ``stable_s`` seconds without a failure.

    >>> now = [0.0]
    >>> ep = Episode(stable_s=60, clock=lambda: now[0])
    >>> ep.failed(), ep.failed()   # news once
    (True, False)
    >>> now[0] = 5; ep.worked()    # back: news once
    True
    >>> now[0] = 10; ep.failed(), ep.worked()   # a flap: counted, not news
    (False, False)
    >>> now[0] = 80; ep.worked(), ep.active      # up for 70 s: the outage is over
    (False, False)
    >>> ep.failed()
    True
    """

    def __init__(self, stable_s: float = STABLE_S, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.stable_s = stable_s
        self.clock = clock
        self.active = False
        self._back_said = False
        self._ok_since: Optional[float] = None

    def failed(self) -> bool:
        """A failure: True if it starts an outage (say it)."""
        self._ok_since = None
        if self.active:
            return False
        self.active, self._back_said = True, False
        return True

    def worked(self) -> bool:
        """A success: True the first time the link works in this outage (say it is back);
        the outage ends once it has worked for ``stable_s``."""
        if not self.active:
            return False
        now = self.clock()
        if self._ok_since is None:
            self._ok_since = now
        elif now - self._ok_since >= self.stable_s:
            self.active = False
            return False
        if self._back_said:
            return False
        self._back_said = True
        return True
