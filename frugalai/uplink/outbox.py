"""SQLite store-and-forward outbox: events wait here until an uplink has delivered them.

Every event is written before anybody tries to send it, and leaves the pending set only when a
sink reports it delivered (``mark_sent``). The outbox gives each event its per-sensor sequence
number from a persisted counter, so ids never repeat across restarts.

Journal: WAL, so a reader (``frugalai status``) never blocks the writer and a crash leaves the
database consistent. Durability: ``synchronous=NORMAL`` in WAL mode survives a process crash
(``kill -9``) with nothing lost, and on power loss can lose only the last commits since the last
checkpoint; ``synchronous=FULL`` (``durable=True``) fsyncs every commit. See issue notes for
the SD-card wear trade-off.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Optional, Union

from frugalai.events.event import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    rowid     INTEGER PRIMARY KEY AUTOINCREMENT,
    sensor    TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    priority  INTEGER NOT NULL,
    created   REAL    NOT NULL,
    body      TEXT    NOT NULL,
    sent_at   REAL,
    UNIQUE (sensor, seq)
);
CREATE INDEX IF NOT EXISTS events_pending ON events (sent_at, priority, rowid);
CREATE TABLE IF NOT EXISTS sequences (sensor TEXT PRIMARY KEY, next INTEGER NOT NULL);
"""


class Outbox:
    """A persistent queue of events (thread-safe; one writer process).

    Args:
        path: database file (``:memory:`` for tests that need no persistence).
        durable: fsync every commit (``synchronous=FULL``) instead of WAL's NORMAL.
    """

    def __init__(self, path: Union[str, Path], durable: bool = False) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._db.executescript(SCHEMA)

    def append(self, event: Event) -> Event:
        """Store one event; return it with its sequence number."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Store events in one transaction (one fsync for the batch)."""
        stored: list[Event] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for event in events:
                    row = self._db.execute(
                        "SELECT next FROM sequences WHERE sensor = ?", (event.sensor,)
                    ).fetchone()
                    seq = row[0] if row else 0
                    self._db.execute(
                        "INSERT OR REPLACE INTO sequences (sensor, next) VALUES (?, ?)",
                        (event.sensor, seq + 1),
                    )
                    event = replace(event, seq=seq)
                    self._db.execute(
                        "INSERT INTO events (sensor, seq, priority, created, body) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (event.sensor, seq, event.priority, time.time(),
                         json.dumps(event.as_dict())),
                    )
                    stored.append(event)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return stored

    def pending(self, limit: int = 100) -> list[Event]:
        """Events not yet delivered, most urgent first, then oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM events WHERE sent_at IS NULL "
                "ORDER BY priority, rowid LIMIT ?", (limit,)
            ).fetchall()
        return [Event.from_dict(json.loads(body)) for (body,) in rows]

    def mark_sent(self, events: Iterable[Event]) -> int:
        """Mark events delivered; return how many were still pending."""
        keys = [(time.time(), e.sensor, e.seq) for e in events]
        with self._lock:
            before = self._db.total_changes
            self._db.executemany(
                "UPDATE events SET sent_at = ? WHERE sensor = ? AND seq = ? AND sent_at IS NULL",
                keys,
            )
            return self._db.total_changes - before

    def depth(self) -> int:
        """How many events wait for delivery."""
        with self._lock:
            return int(self._db.execute(
                "SELECT COUNT(*) FROM events WHERE sent_at IS NULL").fetchone()[0])

    def oldest_pending_ts(self) -> Optional[float]:
        """When the oldest undelivered event was stored (None when nothing waits)."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(created) FROM events WHERE sent_at IS NULL").fetchone()
        return row[0]

    def counts(self) -> dict[str, int]:
        with self._lock:
            total, sent = self._db.execute(
                "SELECT COUNT(*), COUNT(sent_at) FROM events").fetchone()
        return {"stored": total, "sent": sent, "pending": total - sent}

    def close(self) -> None:
        """Close the database; safe to call twice."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
