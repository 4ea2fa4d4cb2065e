"""Exponential backoff with jitter, shared by sources, uplinks and the service supervisor.

It sits at the bottom of the package (no frugalai imports) so that the incoming side
(``sources/``), the outgoing side (``uplink/``) and the service can all use it without one
importing another.
"""

from __future__ import annotations

import random


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
