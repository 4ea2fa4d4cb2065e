"""``frugalai collect``: every gateway's events into one SQLite table, once each.

The collector subscribes to ``frugalai/+/+/event`` with QoS 1 under a fixed client id and a
persistent session (clean_session false): while it is down the broker queues the events for it,
and it gets them at its next start. A message is stored (and committed) before paho acks it, so a
crash loses nothing: an unacked message comes again and the dedup key drops the copy.
Undecodable messages are counted and kept in ``rejected`` with the reason, never dropped silently.
With ``chirpstack=True`` it also takes ChirpStack v4's uplinks (``application/+/device/+/event/
up``): frugalai nodes sending their binary events over LoRaWAN land in the same table.
"""

from __future__ import annotations

import csv
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.errors import DecodeError, UplinkError
from frugalai.fleet.link import Broker, Link
from frugalai.fleet.records import (
    Gaps,
    Record,
    decode_chirpstack,
    decode_message,
    find_gaps,
    stats_json,
    unwrap,
)
from frugalai.fleet.topics import EVENTS_FILTER

log = logging.getLogger("frugalai.collect")

#: ChirpStack v4's MQTT integration: every application's uplinks.
CHIRPSTACK_FILTER = "application/+/device/+/event/up"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    gateway  TEXT NOT NULL,
    sensor   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    ts       REAL NOT NULL,
    value    REAL,
    score    REAL,
    label    INTEGER NOT NULL DEFAULT 0,
    seq      INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    wire     TEXT NOT NULL,
    stats    TEXT,
    received REAL NOT NULL,
    PRIMARY KEY (gateway, sensor, seq, ts)
);
CREATE TABLE IF NOT EXISTS rejected (topic TEXT, payload BLOB, reason TEXT, received REAL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

COLUMNS = ("gateway", "sensor", "kind", "ts", "value", "score", "label", "seq", "event_id",
           "wire", "stats", "received")


class EventStore:
    """The collector's SQLite database (WAL; every insert committed before it returns)."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._db.commit()

    def _bump(self, name: str, n: int = 1) -> None:
        self._db.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value = value + excluded.value", (name, n))

    def add(self, record: Record, received: Optional[float] = None) -> bool:
        """Store one record; False when it was a duplicate."""
        with self._lock:
            cur = self._db.execute(
                f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES "
                f"({', '.join('?' * len(COLUMNS))})",
                (record.gateway, record.sensor, record.kind, record.ts, record.value,
                 record.score, record.label, record.seq, record.event_id, record.wire,
                 stats_json(record), time.time() if received is None else received))
            new = cur.rowcount == 1
            self._bump("stored" if new else "duplicates")
            self._db.commit()
            return new

    def reject(self, topic: str, payload: bytes, reason: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO rejected VALUES (?, ?, ?, ?)",
                             (topic, payload, reason, time.time()))
            self._bump("rejected")
            self._db.commit()

    def counters(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT name, value FROM counters").fetchall()
        out = {"stored": 0, "duplicates": 0, "rejected": 0}
        out.update({str(k): int(v) for k, v in rows})
        return out

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def rows(self) -> Iterator[tuple[Any, ...]]:
        with self._lock:
            rows = self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM events "
                                    "ORDER BY gateway, sensor, ts, seq").fetchall()
        yield from rows

    def gaps(self) -> list[Gaps]:
        """Per (gateway, sensor): missing sequence numbers (binary streams unwrapped)."""
        with self._lock:
            rows = self._db.execute("SELECT gateway, sensor, wire, seq FROM events "
                                    "ORDER BY gateway, sensor, ts, seq").fetchall()
        streams: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
        for gateway, sensor, wire, seq in rows:
            js, bins = streams.setdefault((gateway, sensor), ([], []))
            (js if wire == "json" else bins).append(int(seq))
        out = []
        for (gateway, sensor), (js, bins) in sorted(streams.items()):
            out.append(find_gaps(gateway, sensor, js if js else unwrap(bins)))
        return out

    def export_csv(self, path: Union[str, Path]) -> int:
        n = 0
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            for row in self.rows():
                w.writerow(["" if v is None else v for v in row])
                n += 1
        return n

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Collector:
    """Subscribes and stores; ``stop()`` (or leaving the ``with`` block) disconnects cleanly."""

    def __init__(self, broker: Broker, store: EventStore, client_id: str = "frugalai-collector",
                 topic: str = EVENTS_FILTER, chirpstack: bool = False) -> None:
        self.store = store
        self.error: Optional[str] = None
        subs: tuple[tuple[str, int], ...] = ((topic, 1),)
        if chirpstack:
            subs += ((CHIRPSTACK_FILTER, 1),)
        self.link = Link(broker, client_id, clean_session=False, on_message=self._on_message,
                         subscriptions=subs)

    def _on_message(self, topic: str, payload: bytes, _retain: bool) -> None:
        try:
            if topic.startswith("application/"):
                records = decode_chirpstack(topic, payload)
            else:
                records = [decode_message(topic, payload)]
        except (DecodeError, ValueError, TypeError) as err:
            log.warning("rejected a message on %s: %s", topic, err)
            self.store.reject(topic, payload, str(err))
            return
        try:
            for record in records:
                self.store.add(record)
        except sqlite3.Error as err:
            # not acked: the broker keeps it (and what follows) for the next start
            self.error = f"cannot store events in {self.store.path}: {err}"
            log.error("%s; stopping without acknowledging the message", self.error)
            raise

    def stop(self) -> None:
        self.link.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def gap_lines(gaps: list[Gaps]) -> list[str]:
    """One human line per stream: 'gw1/linky: seq 0..99, 100 received, 0 missing'."""
    out = []
    for g in gaps:
        text = (f"{g.gateway}/{g.sensor}: seq {g.first}..{g.last}, {g.received} received, "
                f"{g.missing} missing")
        if g.ranges:
            text += " (" + ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in g.ranges)
            text += ")"
        out.append(text)
    return out


def run(broker: Broker, out: Union[str, Path], *, client_id: str = "frugalai-collector",
        duration: Optional[float] = None, stop: Optional[threading.Event] = None,
        connect_timeout: float = 30.0, chirpstack: bool = False) -> EventStore:
    """Collect until ``duration`` seconds passed or ``stop`` is set; return the (open) store."""
    store = EventStore(out)
    stop = stop or threading.Event()
    collector = Collector(broker, store, client_id=client_id, chirpstack=chirpstack)
    try:
        collector.link.wait_connected(connect_timeout)
        log.info("collecting from %s into %s", broker.name, out)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            if collector.error:
                raise UplinkError(f"{collector.error}; the broker keeps the unacknowledged "
                                  f"events for the next start")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(1.0 if left is None else min(1.0, left))
    finally:
        collector.stop()
    return store
