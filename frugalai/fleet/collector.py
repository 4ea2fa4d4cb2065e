"""``frugalai collect``: every gateway's events into one SQLite table, once each.

The collector subscribes to ``frugalai/+/+/event`` with QoS 1 under a fixed client id and a
persistent session (clean_session false): while it is down the broker queues the events for it,
and it gets them at its next start. A message is stored (and committed) before paho acks it, so a
crash loses nothing: an unacked message comes again and the dedup key drops the copy.

Every message is checked whole before anything is stored (:mod:`frugalai.events.schema`, the
module the gateways encode with; the topic's gateway must be a valid identity). A message out of
the schema goes to the ``quarantine`` table with the reason, its topic and its first
:data:`RAW_KEPT` bytes, and is acknowledged: it is never redelivered, so one poisoned message
can neither stall the collector nor make it exit. A message that passes the schema but that
SQLite refuses to bind is quarantined the same way (the same bytes would fail again). An error
of the database itself (:data:`STORE_FAULTS`: disk full, I/O error, read-only, locked) stops the
collector with the reason and a non-zero exit, without acknowledging the message: the unit
restarts it and the message, kept by the broker, is stored then. The counts reconcile, per run
and per database: received = stored + duplicates + quarantined.
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
from dataclasses import dataclass, field
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
from frugalai.lograte import LogRate

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
CREATE TABLE IF NOT EXISTS quarantine (
    received REAL NOT NULL,
    topic    TEXT NOT NULL,
    reason   TEXT NOT NULL,
    raw      BLOB NOT NULL,
    size     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: Bytes of a quarantined message kept (its size is kept too); topics and reasons are cut
#: at :data:`TEXT_KEPT` characters.
RAW_KEPT = 4096
TEXT_KEPT = 1024
#: What happened to one message.
OUTCOMES = ("stored", "duplicates", "quarantined")

COLUMNS = ("gateway", "sensor", "kind", "ts", "value", "score", "label", "seq", "event_id",
           "wire", "stats", "received")


def _text(text: str) -> str:
    """Bounded, and always valid UTF-8 (a lone surrogate is escaped): a quarantine row must not
    fail because of what it describes."""
    return text[:TEXT_KEPT].encode("utf-8", "backslashreplace").decode("utf-8")


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
        return self.add_message([record], received) > 0

    def add_message(self, records: list[Record], received: Optional[float] = None) -> int:
        """Store the records of one message in one transaction; how many were new.

        Counts the message as received, and as stored (any record new) or a duplicate. On an
        error nothing of it is kept (rolled back) and the error is raised.
        """
        now = time.time() if received is None else received
        with self._lock:
            try:
                new = 0
                for record in records:
                    cur = self._db.execute(
                        f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(COLUMNS))})",
                        (record.gateway, record.sensor, record.kind, record.ts, record.value,
                         record.score, record.label, record.seq, record.event_id, record.wire,
                         stats_json(record), now))
                    new += cur.rowcount == 1
                self._bump("received")
                self._bump("stored" if new else "duplicates")
                self._db.commit()
            except BaseException:
                self._rollback()
                raise
            return new

    def quarantine(self, topic: str, payload: bytes, reason: str,
                   received: Optional[float] = None) -> None:
        """Keep a refused message (topic, reason, first :data:`RAW_KEPT` bytes and its size);
        counts it as received and quarantined. Raises if the database cannot take it."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?)",
                                 (time.time() if received is None else received,
                                  _text(topic), _text(reason), bytes(payload[:RAW_KEPT]),
                                  len(payload)))
                self._bump("received")
                self._bump("quarantined")
                self._db.commit()
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        try:
            self._db.rollback()
        except sqlite3.Error:
            pass  # the connection is gone: the caller's error says why

    def counters(self) -> dict[str, int]:
        """This database's totals since it was created: received, stored, duplicates,
        quarantined (received = the other three)."""
        with self._lock:
            rows = self._db.execute("SELECT name, value FROM counters").fetchall()
        out = {"received": 0, "stored": 0, "duplicates": 0, "quarantined": 0}
        out.update({str(k): int(v) for k, v in rows if k in out})
        return out

    def quarantined(self) -> list[tuple[str, str, bytes, int]]:
        """(topic, reason, raw bytes kept, size) of every quarantined message, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT topic, reason, raw, size FROM quarantine "
                                    "ORDER BY rowid").fetchall()
        return [(str(t), str(r), bytes(b), int(n)) for t, r, b, n in rows]

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


#: Errors of the database itself, whatever the message: the collector stops on them (a
#: message-made error, e.g. a value SQLite cannot bind, quarantines that message instead).
STORE_FAULTS = (sqlite3.OperationalError, sqlite3.InternalError, sqlite3.NotSupportedError)


class StoreError(UplinkError):
    """The database failed (one of :data:`STORE_FAULTS`, or the quarantine row could not be
    written): the collector must stop without acknowledging the message."""


@dataclass
class Intake:
    """Check, then store or quarantine, one message at a time: what the MQTT thread calls for
    each message (and what the fuzz benchmark calls directly).

    :meth:`handle` returns the message's outcome or raises :class:`StoreError`; nothing else
    leaves it, whatever the bytes. ``counts`` are this run's (received = stored + duplicates +
    quarantined, in messages: a ChirpStack frame of several events is one message, stored if
    any of its events was new).
    """

    store: EventStore
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("received",
                                                                           *OUTCOMES), 0))
    # a flood of bad messages is one line a minute with a count, not one line each
    rate: LogRate = field(default_factory=lambda: LogRate(log, every_s=60.0))

    def handle(self, topic: str, payload: bytes) -> str:
        self.counts["received"] += 1
        outcome = self._handle(topic, payload)
        self.counts[outcome] += 1
        return outcome

    def _handle(self, topic: str, payload: bytes) -> str:
        try:
            if topic.startswith("application/"):
                records = decode_chirpstack(topic, payload)
            else:
                records = [decode_message(topic, payload)]
        except (DecodeError, ValueError, TypeError) as err:
            return self._quarantine(topic, payload, str(err))
        except Exception as err:  # a decoder bug must not stall the fleet either
            log.exception("decoding a message on %s failed", topic)
            return self._quarantine(topic, payload, f"decoder failed: {type(err).__name__}: "
                                                    f"{err}")
        try:
            new = self.store.add_message(records)
        except STORE_FAULTS as err:
            # the database, not the message (disk full, I/O error, read-only, locked):
            # stop without acknowledging; the message waits on the broker for the next start
            self.counts["received"] -= 1
            raise StoreError(f"cannot store events in {self.store.path}: "
                             f"{type(err).__name__}: {err}") from err
        except Exception as err:
            # in the schema, but this message cannot be stored (a value the database refuses
            # to bind): the same bytes would fail again, so keep them apart and go on
            return self._quarantine(topic, payload, f"store refused it: "
                                                    f"{type(err).__name__}: {err}")
        return "stored" if new else "duplicates"

    def _quarantine(self, topic: str, payload: bytes, reason: str) -> str:
        self.rate.warning("quarantine", "quarantined a message on %.200s: %.300s", topic, reason)
        try:
            self.store.quarantine(topic, payload, reason)
        except Exception as err:
            self.counts["received"] -= 1  # not handled: it comes again
            raise StoreError(f"cannot store events in {self.store.path}: {type(err).__name__}: "
                             f"{err}") from err
        return "quarantined"

    def summary(self) -> str:
        c = self.counts
        return (f"this run received {c['received']} message(s): {c['stored']} stored, "
                f"{c['duplicates']} duplicate(s), {c['quarantined']} quarantined")


class Collector:
    """Subscribes and stores; ``stop()`` (or leaving the ``with`` block) disconnects cleanly."""

    def __init__(self, broker: Broker, store: EventStore, client_id: str = "frugalai-collector",
                 topic: str = EVENTS_FILTER, chirpstack: bool = False) -> None:
        self.store = store
        self.intake = Intake(store)
        self.error: Optional[str] = None
        subs: tuple[tuple[str, int], ...] = ((topic, 1),)
        if chirpstack:
            subs += ((CHIRPSTACK_FILTER, 1),)
        self.link = Link(broker, client_id, clean_session=False, on_message=self._on_message,
                         subscriptions=subs)

    def _on_message(self, topic: str, payload: bytes, _retain: bool) -> None:
        try:
            self.intake.handle(topic, payload)
        except StoreError as err:
            # not acked: the broker keeps it (and what follows) for the next start; raising
            # ends paho's thread, run() sees self.error and the process exits non-zero
            self.error = str(err)
            log.error("%s; stopping without acknowledging the message", self.error)
            raise

    def stop(self) -> None:
        self.link.close()
        self.intake.rate.flush()

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
        connect_timeout: float = 30.0, chirpstack: bool = False,
        intake: Optional[list[Intake]] = None) -> EventStore:
    """Collect until ``duration`` seconds passed or ``stop`` is set; return the (open) store.

    Raises :class:`StoreError` (the store failed; nothing of the message was acknowledged).
    ``intake``, if given, receives this run's :class:`Intake` (its counts) even then.
    """
    store = EventStore(out)
    stop = stop or threading.Event()
    try:
        collector = Collector(broker, store, client_id=client_id, chirpstack=chirpstack)
    except BaseException:
        store.close()
        raise
    if intake is not None:
        intake.append(collector.intake)
    previous_hook = threading.excepthook

    def quiet(args: Any) -> None:
        # paho's thread ends on a StoreError by design (no PUBACK); the error is reported
        # below as one line, not as a traceback from that thread
        if not isinstance(args.exc_value, StoreError):
            previous_hook(args)

    threading.excepthook = quiet
    try:
        collector.link.wait_connected(connect_timeout)
        log.info("collecting from %s into %s", broker.name, out)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            if collector.error:
                raise StoreError(f"{collector.error}; the broker keeps the unacknowledged "
                                 f"events for the next start")
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(1.0 if left is None else min(1.0, left))
    except BaseException:
        collector.stop()
        store.close()
        raise
    finally:
        threading.excepthook = previous_hook
    collector.stop()
    return store
