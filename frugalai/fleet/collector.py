"""``frugalai collect``: every gateway's events into one table, once each (SQLite or PostgreSQL).

The collector subscribes to ``frugalai/+/+/event`` with QoS 1 under a fixed client id and a
persistent MQTT 5 session (no clean start, no expiry): while it is down the broker queues the
events for it, and it gets them at its next start. Messages are stored in batches (one commit
for up to ``batch_max`` messages or ``batch_wait_s``), and a batch is acknowledged only once it
is committed, so a crash loses nothing: an unacked message comes again and the dedup key drops
the copy. With ``share=GROUP`` several collectors split the events of one shared subscription
(``$share/GROUP/...``) into the same database (:mod:`frugalai.fleet.pgstore`).
Undecodable messages are counted and kept in ``rejected`` with the reason, never dropped silently.
With ``chirpstack=True`` it also takes ChirpStack v4's uplinks (``application/+/device/+/event/
up``): frugalai nodes sending their binary events over LoRaWAN land in the same table.
"""

from __future__ import annotations

import csv
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.errors import DecodeError, UplinkError
from frugalai.fleet.link import Broker, Link
from frugalai.fleet.records import (
    COLUMNS,
    Gaps,
    Record,
    decode_chirpstack,
    decode_message,
    find_gaps,
    stats_json,
    unwrap,
)
from frugalai.fleet.topics import EVENTS_FILTER, REPORT_FILTER, STATUS_FILTER, gateway_of

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

    def add_batch(self, records: Sequence[tuple[Record, float]],
                  rejects: Sequence[tuple[str, bytes, str]] = (),
                  health: Sequence[dict[str, Any]] = (),
                  reports: Sequence[dict[str, Any]] = (),
                  queue: Optional[int] = None, lag_s: Optional[float] = None) -> tuple[int, int]:
        """Store a batch in one transaction (one fsync); (stored, duplicates). The SQLite store
        keeps events and rejected messages; gateway health and rollout history are the
        PostgreSQL store's (``health``/``reports`` are ignored here)."""
        with self._lock:
            try:
                stored = 0
                for record, received in records:
                    cur = self._db.execute(
                        f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES "
                        f"({', '.join('?' * len(COLUMNS))})",
                        (record.gateway, record.sensor, record.kind, record.ts, record.value,
                         record.score, record.label, record.seq, record.event_id, record.wire,
                         stats_json(record), received))
                    stored += cur.rowcount == 1
                for topic, payload, reason in rejects:
                    self._db.execute("INSERT INTO rejected VALUES (?, ?, ?, ?)",
                                     (topic, payload[:4096], reason, time.time()))
                for name, n in (("stored", stored), ("duplicates", len(records) - stored),
                                ("rejected", len(rejects))):
                    if n:
                        self._bump(name, n)
                self._db.commit()
            except sqlite3.Error as err:
                self._db.rollback()
                raise UplinkError(f"cannot store events in {self.path}: {err}") from None
        return stored, len(records) - stored

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
    """Subscribes and stores in batches; ``stop()`` (or leaving the ``with`` block) disconnects.

    Messages are queued by paho's thread and written by one writer thread: up to
    ``batch_max`` messages or ``batch_wait_s`` seconds per transaction, then each message of
    the batch is acknowledged (manual PUBACKs, in order). So one commit covers many events, and
    a collector killed before a commit leaves those messages with the broker, which sends them
    again (the dedup key drops any copy). If the store refuses a batch, nothing of it is acked,
    :attr:`error` says why and the collector stops taking messages (``run`` exits non-zero, the
    unit restarts it).

    Args:
        share: an MQTT 5 shared-subscription group: collectors with the same group split the
            events between them (``$share/<group>/frugalai/+/+/event``), each under its own
            client id.
        history: also keep the gateways' retained status and rollout reports (the PostgreSQL
            store's ``gateway_health`` and ``rollouts`` tables).
    """

    def __init__(self, broker: Broker, store: Any, client_id: str = "frugalai-collector",
                 topic: str = EVENTS_FILTER, chirpstack: bool = False,
                 share: Optional[str] = None, batch_max: int = 1000,
                 batch_wait_s: float = 0.05, history: Optional[bool] = None) -> None:
        self.store = store
        self.error: Optional[str] = None
        self.batch_max = batch_max
        self.batch_wait_s = batch_wait_s
        self.last_commit: Optional[float] = None
        self.lag_s: Optional[float] = None  # received -> committed, of the last batch's oldest
        self.batches = 0
        self._queue: queue.Queue[tuple[tuple[str, Any], Any, float]] = queue.Queue()
        self._stopping = threading.Event()
        prefix = f"$share/{share}/" if share else ""
        subs: tuple[tuple[str, int], ...] = ((prefix + topic, 1),)
        if chirpstack:
            subs += ((prefix + CHIRPSTACK_FILTER, 1),)
        if history if history is not None else getattr(store, "kind", "") == "postgresql":
            # retained: every gateway's last status and report, then each change
            subs += ((STATUS_FILTER, 1), (REPORT_FILTER, 1))
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
        # broker keeps it for the next start
        if self.error is not None or self._stopping.is_set():
            return
        received = time.time()
        # Decoded here, on the network thread, so that decoding the next batch overlaps the
        # database's work on this one. A message that cannot be decoded is quarantined, never
        # raised: one odd message must not stop the network thread.
        try:
            item: tuple[str, Any] = self._decode(topic, payload, received)
        except (DecodeError, ValueError, TypeError, OverflowError, RecursionError) as err:
            item = ("reject", (topic, payload, str(err)))
        except Exception as err:  # a bug in a decoder: still quarantined, and said loudly
            log.exception("decoding a message on %s failed", topic)
            item = ("reject", (topic, payload, f"internal error: {type(err).__name__}: {err}"))
        if item[0] == "reject":
            log.warning("rejected a message on %s: %s", topic, item[1][2])
        self._queue.put((item, ack, received))

    def _decode(self, topic: str, payload: bytes, received: float) -> tuple[str, Any]:
        """("records", [(Record, received)...]) or ("health"|"reports", row); raises the
        reason a message cannot be stored."""
        if topic.startswith(f"{EVENTS_FILTER.split('/')[0]}/fleet/"):
            gateway = gateway_of(topic)
            doc = json.loads(payload) if payload[:1] == b"{" else None
            if gateway is None or not isinstance(doc, dict):
                raise DecodeError(f"not a fleet status or report message on {topic!r}")
            if topic.endswith("/status"):
                updated = doc.get("updated")
                return ("health", {
                    "gateway": gateway, "status": doc, "online": doc.get("online"),
                    "state": doc.get("state"), "healthy": doc.get("healthy"),
                    "updated": float(updated) if isinstance(updated, (int, float)) else received})
            ts = doc.get("ts")
            return ("reports", {
                "gateway": gateway, "report": doc,
                "ts": float(ts) if isinstance(ts, (int, float)) else received,
                **{k: doc.get(k) for k in ("id", "model", "version", "action", "outcome",
                                            "final")}})
        if topic.startswith("application/"):
            records = decode_chirpstack(topic, payload)
        else:
            records = [decode_message(topic, payload)]
        for r in records:
            why = unstorable(r)
            if why:
                raise DecodeError(why)
        return ("records", [(r, received) for r in records])

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
            while len(items) < self.batch_max:
                left = deadline - time.monotonic()
                try:
                    items.append(self._queue.get(timeout=left) if left > 0
                                 else self._queue.get_nowait())
                except queue.Empty:
                    break
            batch: dict[str, list[Any]] = {"records": [], "reject": [], "health": [],
                                           "reports": []}
            for (kind, value), _ack, _received in items:
                if kind == "records":
                    batch["records"].extend(value)
                else:
                    batch[kind].append(value)
            oldest = min(received for *_, received in items)
            try:
                self.store.add_batch(batch["records"], batch["reject"], batch["health"],
                                     batch["reports"], queue=self._queue.qsize(),
                                     lag_s=time.time() - oldest)
            except (UplinkError, sqlite3.Error) as err:
                # not acked: the broker keeps these (and what follows) for the next start
                self.error = str(err)
                log.error("%s; stopping without acknowledging %d message(s)", err, len(items))
                return
            now = time.time()
            self.last_commit, self.lag_s, self.batches = now, now - oldest, self.batches + 1
            for _item, ack, _received in items:
                ack()

    def stop(self) -> None:
        """Take no more messages, store and acknowledge those taken, then disconnect."""
        self._stopping.set()
        try:
            self._writer.join(timeout=30)
        finally:
            self.link.close()

    def metrics(self) -> dict[str, Any]:
        """The collector's own health: queue, lag, last commit, batches, error."""
        return {"queue": self.queued, "lag_s": self.lag_s, "last_commit": self.last_commit,
                "batches": self.batches, "connected": self.link.connected.is_set(),
                "error": self.error}

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: the range a stored event's numbers must lie in (PostgreSQL's bigint; UNIX seconds that a
#: timestamp column can hold). Anything else is quarantined with the reason.
_INT64 = (-(1 << 63), (1 << 63) - 1)
_TS_RANGE = (0.0, 253402300799.0)  # 9999-12-31T23:59:59Z


def unstorable(record: Record) -> Optional[str]:
    """Why ``record`` cannot be stored as it is (None when it can)."""
    if not (_INT64[0] <= record.seq <= _INT64[1]):
        return f"sequence number {record.seq} is outside a 64-bit integer"
    if not (_TS_RANGE[0] <= record.ts <= _TS_RANGE[1]):  # NaN fails both
        return f"timestamp {record.ts!r} is not a time between 1970 and 9999"
    if not (_INT64[0] <= record.label <= _INT64[1]):
        return f"label {record.label} is outside a 64-bit integer"
    return None


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
    lines = ["# HELP frugalai_collector_queue Messages received, not yet committed.",
             "# TYPE frugalai_collector_queue gauge", f"frugalai_collector_queue {m['queue']}",
             "# HELP frugalai_collector_lag_seconds Received to committed, oldest of the last "
             "batch.", "# TYPE frugalai_collector_lag_seconds gauge",
             f"frugalai_collector_lag_seconds {m['lag_s'] if m['lag_s'] is not None else 'NaN'}",
             "# HELP frugalai_collector_last_commit_timestamp_seconds Time of the last commit.",
             "# TYPE frugalai_collector_last_commit_timestamp_seconds gauge",
             "frugalai_collector_last_commit_timestamp_seconds "
             f"{m['last_commit'] if m['last_commit'] is not None else 'NaN'}",
             "# HELP frugalai_collector_connected 1 while connected to the broker.",
             "# TYPE frugalai_collector_connected gauge",
             f"frugalai_collector_connected {int(m['connected'])}",
             "# HELP frugalai_collector_events_total Events by outcome, this database.",
             "# TYPE frugalai_collector_events_total counter"]
    lines += [f'frugalai_collector_events_total{{outcome="{k}"}} {v}'
              for k, v in sorted(counters.items())]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def run(broker: Broker, out: Union[str, Path], *, client_id: str = "frugalai-collector",
        duration: Optional[float] = None, stop: Optional[threading.Event] = None,
        connect_timeout: float = 30.0, chirpstack: bool = False, share: Optional[str] = None,
        migrate: bool = False, metrics_path: Optional[Union[str, Path]] = None,
        batch_max: int = 1000) -> Any:
    """Collect until ``duration`` seconds passed or ``stop`` is set; return the (open) store.

    Raises UplinkError when the store refused a batch (nothing of it was acknowledged: the
    broker sends it again at the next start)."""
    store = open_store(out, collector=client_id, migrate=migrate)
    stop = stop or threading.Event()
    collector = Collector(broker, store, client_id=client_id, chirpstack=chirpstack,
                          share=share, batch_max=batch_max)
    try:
        collector.link.wait_connected(connect_timeout)
        log.info("collecting from %s into %s", broker.name, store.path)
        deadline = None if duration is None else time.monotonic() + duration
        while not stop.is_set():
            if collector.error:
                raise UplinkError(f"{collector.error}; the broker keeps the unacknowledged "
                                  f"events for the next start")
            if metrics_path is not None:
                write_metrics(metrics_path, collector, store.counters())
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(1.0 if left is None else min(1.0, left))
    finally:
        collector.stop()
    if collector.error:
        raise UplinkError(f"{collector.error}; the broker keeps the unacknowledged events for "
                          f"the next start")
    if metrics_path is not None:
        write_metrics(metrics_path, collector, store.counters())
    return store
