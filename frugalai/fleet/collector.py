"""``frugalai collect``: every gateway's events into one table, once each (SQLite, or
PostgreSQL through :mod:`frugalai.fleet.pgstore`).

The collector subscribes to ``frugalai/+/+/event`` with QoS 1 under a fixed client id and a
persistent MQTT 5 session (no clean start, no expiry): while it is down the broker queues the
events for it, and it gets them at its next start. The network thread only checks each message
(:class:`Intake`) and queues it; one writer thread stores up to ``batch_max`` messages (or what
came in ``batch_wait_s``) in one transaction, then acknowledges each of them (manual PUBACKs, in
order). So a crash loses nothing: an unacked message comes again and the dedup key drops the
copy. With ``share=GROUP`` several collectors split the events of one shared subscription
(``$share/GROUP/...``) into the same database.

Every message is checked whole before anything is stored (:mod:`frugalai.events.schema`, the
module the gateways encode with; the topic's gateway must be a valid identity). A message out of
the schema goes to the ``quarantine`` table with the reason, its topic and its first
:data:`RAW_KEPT` bytes, and is acknowledged: it is never redelivered, so one poisoned message
can neither stall the collector nor make it exit. A message that passes the schema but that
the database refuses to bind (found by storing the batch's messages one by one) is quarantined
the same way (the same bytes would fail again). An error
of the database itself (:data:`STORE_FAULTS`: disk full, I/O error, read-only, locked) stops the
collector with the reason and a non-zero exit, without acknowledging the batch: the unit
restarts it and the messages, kept by the broker, are stored then. The counts reconcile, per run
and per database: received = stored + duplicates + quarantined.
With ``chirpstack=True`` it also takes ChirpStack v4's uplinks (``application/+/device/+/event/
up``): frugalai nodes sending their binary events over LoRaWAN land in the same table.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.errors import ConfigError, DecodeError
from frugalai.fleet.link import Broker, Link
from frugalai.fleet.records import (
    COLUMNS,
    Gaps,
    Record,
    decode_chirpstack,
    decode_message,
    stats_json,
    stream_gaps,
    write_csv,
)
from frugalai.fleet.store import Batch, Refused, StoreError
from frugalai.fleet.topics import (
    EVENTS_FILTER,
    FLEET,
    REPORT_FILTER,
    STATUS_FILTER,
    gateway_of,
    share_problem,
)
from frugalai.lograte import LogRate

log = logging.getLogger("frugalai.collect")

__all__ = ["Batch", "Collector", "EventStore", "Intake", "Refused", "StoreError", "open_store",
           "run"]

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
#: how long the writer naps while a batch fills (its deadline is ``batch_wait_s``).
NAP_S = 0.005



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

    kind = "sqlite"

    def add(self, record: Record, received: Optional[float] = None) -> bool:
        """Store one record; False when it was a duplicate."""
        return self.add_message([record], received) > 0

    def add_message(self, records: list[Record], received: Optional[float] = None) -> int:
        """Store the records of one message in one transaction; how many were new."""
        return self.write(Batch(events=[(records, time.time() if received is None
                                         else received)]))[0]

    def quarantine(self, topic: str, payload: bytes, reason: str,
                   received: Optional[float] = None) -> None:
        """Keep a refused message (topic, reason, first :data:`RAW_KEPT` bytes and its size);
        counts it as received and quarantined. Raises if the database cannot take it."""
        self.write(Batch(quarantine=[(topic, payload, reason,
                                      time.time() if received is None else received)]))

    def write(self, batch: Batch, *, queue: Optional[int] = None,
              lag_s: Optional[float] = None) -> list[int]:
        """Store a batch in one transaction (one fsync); per event message, how many of its
        records were new. Counts each message as received, and as stored (any record new), a
        duplicate or quarantined. Raises :class:`StoreError` when the database fails and
        :class:`Refused` when it refuses a value; either way nothing of the batch is kept."""
        news: list[int] = []
        with self._lock:
            try:
                for records, received in batch.events:
                    new = 0
                    for record in records:
                        cur = self._db.execute(
                            f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES "
                            f"({', '.join('?' * len(COLUMNS))})",
                            (record.gateway, record.sensor, record.kind, record.ts,
                             record.value, record.score, record.label, record.seq,
                             record.event_id, record.wire, stats_json(record), received))
                        new += cur.rowcount == 1
                    news.append(new)
                for topic, payload, reason, received in batch.quarantine:
                    self._db.execute("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?)",
                                     (received, _text(topic), _text(reason),
                                      bytes(payload[:RAW_KEPT]), len(payload)))
                stored = sum(1 for n in news if n)
                for name, n in (("received", len(news) + len(batch.quarantine)),
                                ("stored", stored), ("duplicates", len(news) - stored),
                                ("quarantined", len(batch.quarantine))):
                    if n:
                        self._bump(name, n)
                self._db.commit()
            except STORE_FAULTS as err:
                self._rollback()
                raise StoreError(f"cannot store events in {self.path}: "
                                 f"{type(err).__name__}: {err}") from err
            except (sqlite3.Error, OverflowError, ValueError, TypeError) as err:
                self._rollback()
                raise Refused(f"{type(err).__name__}: {err}") from err
        return news

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
        return stream_gaps(rows)

    def export_csv(self, path: Union[str, Path]) -> int:
        return write_csv(path, self.rows())

    def close(self) -> None:
        with self._lock:
            self._db.close()


#: Errors of the database itself, whatever the message: the collector stops on them (a
#: message-made error, e.g. a value SQLite cannot bind, quarantines that message instead).
STORE_FAULTS = (sqlite3.OperationalError, sqlite3.InternalError, sqlite3.NotSupportedError)


@dataclass
class Decided:
    """One message once checked: ``kind`` is "events" (``value``: its records), "quarantine"
    (``value``: the reason), "health" or "reports" (``value``: the row to keep)."""

    topic: str
    payload: bytes
    kind: str
    value: Any
    received: float


@dataclass
class Intake:
    """Check, then store or quarantine, messages: :meth:`decide` is what the MQTT thread runs
    on each message (pure: decode and check, nothing stored), :meth:`store` what the writer
    runs on a batch of them (one transaction), :meth:`handle` both for one message (the fuzz
    benchmark calls it directly).

    Nothing but an outcome or a :class:`StoreError` leaves them, whatever the bytes.
    ``counts`` are this run's (received = stored + duplicates + quarantined, in event
    messages: a ChirpStack frame of several events is one message, stored if any of its events
    was new; gateway statuses and rollout reports are not counted there). ``observers`` are
    called with each event message's outcome, in the order the messages came.
    """

    store: Any
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("received",
                                                                           *OUTCOMES), 0))
    # a flood of bad messages is one line a minute with a count, not one line each
    rate: LogRate = field(default_factory=lambda: LogRate(log, every_s=60.0))
    observers: list[Any] = field(default_factory=list)

    def handle(self, topic: str, payload: bytes) -> str:
        """Decide and store one message; its outcome."""
        return self.store_batch([self.decide(topic, payload)])[0]

    def decide(self, topic: str, payload: bytes, received: Optional[float] = None) -> Decided:
        """Decode and check one message (the event schema, the topic); never raises."""
        now = time.time() if received is None else received
        try:
            if topic.startswith(f"{FLEET}/") and topic.endswith(("/status", "/rollout")):
                return self._fleet_message(topic, payload, now)
            if topic.startswith("application/"):
                records = decode_chirpstack(topic, payload)
            else:
                records = [decode_message(topic, payload)]
        except (DecodeError, ValueError, TypeError, OverflowError, RecursionError) as err:
            return Decided(topic, payload, "quarantine", str(err), now)
        except Exception as err:  # a decoder bug must not stall the fleet either
            log.exception("decoding a message on %s failed", topic)
            return Decided(topic, payload, "quarantine",
                           f"decoder failed: {type(err).__name__}: {err}", now)
        return Decided(topic, payload, "events", records, now)

    @staticmethod
    def _fleet_message(topic: str, payload: bytes, now: float) -> Decided:
        gateway = gateway_of(topic)
        doc = json.loads(payload) if payload[:1] == b"{" and len(payload) <= RAW_KEPT * 16 \
            else None
        if gateway is None or not isinstance(doc, dict):
            raise DecodeError(f"not a fleet status or report message on {topic!r}")
        if topic.endswith("/status"):
            updated = doc.get("updated")
            return Decided(topic, payload, "health", {
                "gateway": gateway, "status": doc, "online": doc.get("online"),
                "state": doc.get("state"), "healthy": doc.get("healthy"),
                "updated": float(updated) if isinstance(updated, (int, float)) else now}, now)
        ts = doc.get("ts")
        return Decided(topic, payload, "reports", {
            "gateway": gateway, "report": doc,
            "ts": float(ts) if isinstance(ts, (int, float)) else now,
            **{k: doc.get(k) for k in ("id", "model", "version", "action", "outcome", "final")}},
            now)

    def store_batch(self, items: Sequence[Decided], *, queue: Optional[int] = None,
                    lag_s: Optional[float] = None) -> list[str]:
        """Store ``items`` in one transaction; the outcome of each ("stored", "duplicates",
        "quarantined", or "history" for a status or report). A value the database refuses
        sends the items one by one, and the one refused is quarantined. Raises
        :class:`StoreError` (nothing of the batch kept, nothing to acknowledge)."""
        batch = Batch()
        for d in items:
            if d.kind == "events":
                batch.events.append((d.value, d.received))
            elif d.kind == "quarantine":
                batch.quarantine.append((d.topic, d.payload, d.value, d.received))
            else:
                getattr(batch, d.kind).append(d.value)
        try:
            news = self.store.write(batch, queue=queue, lag_s=lag_s)
        except Refused:
            if len(items) == 1:
                d = items[0]
                reason = f"store refused it: {_refusal(self.store, d)}"
                return self.store_batch([Decided(d.topic, d.payload, "quarantine", reason,
                                                 d.received)])
            return [out for d in items for out in self.store_batch([d])]
        outcomes, it = [], iter(news)
        for d in items:
            if d.kind == "events":
                out = "stored" if next(it) else "duplicates"
            elif d.kind == "quarantine":
                out = "quarantined"
                self.rate.warning("quarantine", "quarantined a message on %.200s: %.300s",
                                  d.topic, d.value)
            else:
                outcomes.append("history")
                continue
            self.counts["received"] += 1
            self.counts[out] += 1
            for observe in self.observers:
                observe(out)
            outcomes.append(out)
        return outcomes

    def summary(self) -> str:
        c = self.counts
        return (f"this run received {c['received']} message(s): {c['stored']} stored, "
                f"{c['duplicates']} duplicate(s), {c['quarantined']} quarantined")


def _refusal(store: Any, item: Decided) -> str:
    """Why the store refused this one item (it is written alone to learn it)."""
    try:
        store.write(Batch(events=[(item.value, item.received)]))
    except Refused as err:
        return str(err)
    except StoreError:
        raise
    return "refused in a batch"  # pragma: no cover - it went through alone


class Collector:
    """Subscribes, checks on the network thread, stores in batches on a writer thread, and
    acknowledges each batch once committed; ``stop()`` (or leaving the ``with`` block) stores
    what was taken and disconnects.

    If the store fails, nothing of the batch is acked, :attr:`error` says why and no more
    messages are taken (``run`` raises :class:`StoreError`; the unit restarts the process).

    Args:
        share: an MQTT 5 shared-subscription group: collectors with the same group split the
            events between them (``$share/<group>/frugalai/+/+/event``), each under its own
            client id.
        history: also keep the gateways' retained statuses and rollout reports (default: when
            the store keeps them, the PostgreSQL one).
    """

    def __init__(self, broker: Broker, store: Any, client_id: str = "frugalai-collector",
                 topic: str = EVENTS_FILTER, chirpstack: bool = False,
                 share: Optional[str] = None, batch_max: int = 1000,
                 batch_wait_s: float = 0.05, history: Optional[bool] = None) -> None:
        self.store = store
        self.intake = Intake(store)
        self.error: Optional[str] = None
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.last_commit: Optional[float] = None
        self.lag_s: Optional[float] = None  # received -> committed, the last batch's oldest
        self.batches = 0
        self._queue: queue.Queue[tuple[Decided, Any]] = queue.Queue()
        self._stopping = threading.Event()
        self._stopped = False
        problem = None if share is None else share_problem(share)
        if problem:  # before the writer starts: a '/' would subscribe to another filter
            raise ConfigError(problem, key="--share")
        prefix = f"$share/{share}/" if share else ""
        subs: tuple[tuple[str, int], ...] = ((prefix + topic, 1),)
        if chirpstack:
            subs += ((prefix + CHIRPSTACK_FILTER, 1),)
        if history if history is not None else getattr(store, "kind", "") == "postgresql":
            subs += ((STATUS_FILTER, 1), (REPORT_FILTER, 1))  # retained: each gateway's last
        self._writer = threading.Thread(target=self._write_loop, name="collector-writer",
                                        daemon=True)
        self._writer.start()
        self.link = Link(broker, client_id, clean_session=False, on_message=self._on_message,
                         subscriptions=subs, mqtt5=True, manual_ack=True,
                         receive_maximum=min(65535, max(batch_max * 2, 20)))

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def _on_message(self, topic: str, payload: bytes, _retain: bool, ack: Any) -> None:
        # after a store error, or once stopping, nothing more is taken (nor acked): the
        # broker keeps it for the next start. Checked here, on the network thread, so that
        # checking the next batch overlaps the database's work on this one.
        if self.error is None and not self._stopping.is_set():
            self._queue.put((self.intake.decide(topic, payload), ack))

    def _write_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stopping.is_set():
                    return  # what was taken is stored and acked
                continue
            items = [first]
            deadline = time.monotonic() + self.batch_wait_s
            get = self._queue.get_nowait
            while len(items) < self.batch_max:
                try:
                    items.append(get())
                except queue.Empty:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    # nap rather than block on the queue: a writer woken by every message
                    # took the GIL from the network thread once per message
                    time.sleep(min(left, NAP_S))
            oldest = min(d.received for d, _ in items)
            try:
                self.intake.store_batch([d for d, _ in items], queue=self._queue.qsize(),
                                        lag_s=time.time() - oldest)
            except StoreError as err:
                # not acked: the broker keeps these (and what follows) for the next start
                self.error = str(err)
                log.error("%s; stopping without acknowledging %d message(s)", err, len(items))
                return
            now = time.time()
            self.last_commit, self.lag_s, self.batches = now, now - oldest, self.batches + 1
            for _d, ack in items:
                ack()

    def stop(self) -> None:
        """Take no more messages, store and acknowledge those taken, then disconnect; safe
        twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        try:
            self._writer.join(timeout=60)
        finally:
            self.link.close()
            self.intake.rate.flush()

    def metrics(self) -> dict[str, Any]:
        """The collector's own health: queue, lag, last commit, batches, error."""
        return {"queue": self.queued, "lag_s": self.lag_s, "last_commit": self.last_commit,
                "batches": self.batches, "connected": self.link.connected.is_set(),
                "error": self.error}

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


def open_store(target: Union[str, Path], *, collector: str = "frugalai-collector",
               migrate: bool = False) -> Any:
    """The store behind ``target``: a ``postgresql://`` connection string or a SQLite file."""
    from frugalai.fleet.pgstore import PgEventStore, is_postgres

    if is_postgres(target):
        return PgEventStore(str(target), collector=collector, migrate=migrate)
    return EventStore(target)


def write_metrics(path: Union[str, Path], collector: Collector, counters: dict[str, int]) -> None:
    """The collector's health as a node_exporter textfile (atomic rename)."""
    m = collector.metrics()

    def num(x: Optional[float]) -> str:
        return "NaN" if x is None else repr(float(x))  # a UNIX time keeps its digits

    lines = ["# HELP frugalai_collector_queue Messages received, not yet committed.",
             "# TYPE frugalai_collector_queue gauge", f"frugalai_collector_queue {m['queue']}",
             "# HELP frugalai_collector_lag_seconds Received to committed, oldest of the last "
             "batch.", "# TYPE frugalai_collector_lag_seconds gauge",
             f"frugalai_collector_lag_seconds {num(m['lag_s'])}",
             "# HELP frugalai_collector_last_commit_timestamp_seconds Time of the last commit.",
             "# TYPE frugalai_collector_last_commit_timestamp_seconds gauge",
             f"frugalai_collector_last_commit_timestamp_seconds {num(m['last_commit'])}",
             "# HELP frugalai_collector_connected 1 while connected to the broker.",
             "# TYPE frugalai_collector_connected gauge",
             f"frugalai_collector_connected {int(m['connected'])}",
             "# HELP frugalai_collector_messages_total Event messages by outcome, this database.",
             "# TYPE frugalai_collector_messages_total counter"]
    lines += [f'frugalai_collector_messages_total{{outcome="{k}"}} {v}'
              for k, v in sorted(counters.items())]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def run(broker: Broker, out: Union[str, Path], *, client_id: str = "frugalai-collector",
        duration: Optional[float] = None, stop: Optional[threading.Event] = None,
        connect_timeout: float = 30.0, chirpstack: bool = False,
        intake: Optional[list[Intake]] = None, share: Optional[str] = None,
        migrate: bool = False, metrics_path: Optional[Union[str, Path]] = None,
        batch_max: int = 1000) -> Any:
    """Collect until ``duration`` seconds passed or ``stop`` is set; return the (open) store.

    Raises :class:`StoreError` (the store failed; nothing of the batch was acknowledged).
    ``intake``, if given, receives this run's :class:`Intake` (its counts) even then.
    """
    store = open_store(out, collector=client_id, migrate=migrate)
    stop = stop or threading.Event()
    try:
        collector = Collector(broker, store, client_id=client_id, chirpstack=chirpstack,
                              share=share, batch_max=batch_max)
    except BaseException:
        store.close()
        raise
    if intake is not None:
        intake.append(collector.intake)
    try:
        collector.link.wait_connected(connect_timeout)
        log.info("collecting from %s into %s", broker.name, store.path)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            if collector.error:
                break
            if metrics_path is not None:
                write_metrics(metrics_path, collector, store.counters())
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(1.0 if left is None else min(1.0, left))
        collector.stop()
        if collector.error:
            raise StoreError(f"{collector.error}; the broker keeps the unacknowledged events "
                             f"for the next start")
        if metrics_path is not None:
            write_metrics(metrics_path, collector, store.counters())
    except BaseException:
        collector.stop()
        store.close()
        raise
    return store
