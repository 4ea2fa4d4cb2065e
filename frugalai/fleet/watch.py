"""After a model switch: count the gateway's alarms and say when they pass a stated bound.

A bundle can pass its self-test and still be wrong for a site (a threshold too low for this
building): the sign is a burst of alarms right after the switch. The signed manifest may state a
bound, ``"watch": {"window_s": 600, "max_alarms": 5}``; the agent then counts the alarm events
the gateway stored in its outbox (``<state_dir>/outbox.sqlite``, read-only) since the switch and
rolls back by itself when there are more than ``max_alarms`` within ``window_s``.

The outbox prunes delivered rows beyond its ``keep_sent``; polling every second and counting
each (sensor, seq) once keeps the count right unless more than ``keep_sent`` events arrive
between two polls.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Optional, Union


class AlarmWatch:
    """Alarms stored since ``since`` (UNIX time), against a bound over ``window_s``."""

    def __init__(self, outbox: Union[str, Path], since: float, window_s: float,
                 max_alarms: int) -> None:
        self.outbox = Path(outbox)
        self.since = since
        self.window_s = window_s
        self.max_alarms = max_alarms
        self.alarms = 0
        self._seen: dict[str, int] = {}

    @property
    def done(self) -> bool:
        """The window has passed within the bound."""
        return time.time() >= self.since + self.window_s

    def poll(self) -> Optional[str]:
        """Count new alarms; the reason to roll back when the bound is passed, else None."""
        if self.outbox.is_file():
            try:
                con = sqlite3.connect(f"file:{self.outbox}?mode=ro", uri=True, timeout=2.0)
                try:
                    rows = con.execute("SELECT sensor, seq, body FROM events WHERE created >= ?"
                                       " AND created < ? ORDER BY sensor, seq",
                                       (self.since, self.since + self.window_s)).fetchall()
                finally:
                    con.close()
            except sqlite3.Error:
                rows = []  # busy or being created: the next poll counts them
            for sensor, seq, body in rows:
                if seq <= self._seen.get(sensor, -1):
                    continue
                self._seen[sensor] = seq
                try:
                    if json.loads(body).get("kind") == "alarm":
                        self.alarms += 1
                except (ValueError, AttributeError):
                    continue
        if self.alarms > self.max_alarms:
            return (f"{self.alarms} alarm(s) within {self.window_s:g} s after the switch, "
                    f"beyond the manifest's bound of {self.max_alarms}")
        return None
