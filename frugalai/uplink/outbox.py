"""SQLite store-and-forward outbox: events wait here until an uplink has delivered them.

Every event is written before anybody tries to send it, and leaves the pending set only when a
sink reports it delivered (``mark_sent``). The outbox gives each event its per-sensor sequence
number from a persisted counter, so ids (``<sensor>:<seq>``) never repeat across restarts and a
receiver can drop the duplicates that at-least-once delivery produces.

Journal: WAL, so a reader (``frugalai status``) never blocks the writer and a crash at any
instant leaves the database consistent.

Durability (``sync``), chosen per operation, because the two writes do not cost the same when
lost:

* ``append`` (default): appends commit with ``synchronous=FULL`` (the WAL is fsynced before the
  commit returns: a stored event survives ``kill -9`` *and* power loss); ``mark_sent`` commits
  with ``synchronous=NORMAL`` (no fsync). Losing a ``mark_sent`` to a power cut only means the
  event is delivered once more, which at-least-once delivery with ids already allows; losing an
  append would lose an alarm. The next append's fsync makes earlier marks durable too.
* ``full``: every commit fsynced (twice the fsyncs, nothing gained but fewer duplicates).
* ``normal``: no commit fsynced, only checkpoints: survives ``kill -9`` (the WAL is in the page
  cache) but a power cut can roll back the last seconds of appends. For benchmarks, or a
  gateway on a UPS.
* ``group`` (the gateway's default, ``gateway.outbox_sync``): appends are committed at once
  without waiting for the disk (so ``kill -9`` loses nothing an append returned: the WAL
  write is in the kernel), and fsynced in groups: the first append after ``sync_interval_s``
  (0.1 s) fsyncs every commit before it, and **no event is handed to an uplink before it is
  fsynced** (:meth:`pending` fsyncs first). So nothing acknowledged upstream can be lost, even
  to a power cut; a power cut can lose at most the events of the last 0.1 s that no uplink
  has seen yet (as it loses the readings in memory). One fsync per group instead of one per
  event: a coastal flow with thousands of events a run spent a fifth of its CPU and half its
  wall time in fsyncs (issue 26).

Why not ``normal`` everywhere to spare the SD card? Events are rare (alarms, a summary per flow
per period): an fsync per append batch costs a few 4 KiB page writes, on the order of a
megabyte a day, far below what wears out even a cheap card; the fsyncs that *would* matter are
those per reading, and readings never touch this database. Appends are batched (one transaction
and one fsync per batch, ``append_many``) and delivered rows are pruned in the same transaction
as their marking, so the file stays small (``keep_sent`` delivered rows are kept for
``frugalai status``).

Overflow: ``max_pending`` caps the undelivered events (an uplink dead for weeks must not fill
the card). When an append goes past it, the policy ``drop-lowest-oldest`` deletes pending
events with the lowest priority first (heartbeats, then summaries older than their sensor's
newest one, then classes, then each sensor's newest summary, alarms last), oldest first among
equals, and counts them (``counts()["dropped"]``, per sensor in ``dropped(sensor)``; the
periodic summary reports them upstream) and logs a warning.

A dropped summary's counts are never lost with it: they are kept (table ``carry``) and merged
into the next summary stored for that sensor (:func:`~frugalai.events.policy.merge_stats`).
So the summaries that carry the drop counts are not the first thing dropped, and what
upstream receives adds up to every drop, however long the outage.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Optional, Union

from frugalai.errors import FrugalError
from frugalai.events.event import Event, Stats
from frugalai.events.policy import merge_stats
from frugalai.lograte import LogRate

log = logging.getLogger("frugalai.outbox")

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
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS carry (sensor TEXT PRIMARY KEY, stats TEXT NOT NULL);
"""

#: Drop order: a rank per pending row, highest dropped first (then oldest first). A sensor's
#: newest summary ranks between classes and alarms: it carries the counts of the summaries
#: dropped before it.
_DROP_RANK = """
    CASE WHEN priority = 2 AND rowid IN (SELECT MAX(rowid) FROM events
                                         WHERE sent_at IS NULL AND priority = 2 GROUP BY sensor)
         THEN 0.5 ELSE priority END
"""

SYNC_POLICIES = ("append", "full", "normal", "group")
#: ``group``: the longest an append waits for its fsync while appends keep coming.
SYNC_INTERVAL_S = 0.1
OVERFLOW_POLICY = "drop-lowest-oldest"


#: the outbox database's file name in ``gateway.state_dir`` (one name for the pipeline, the
#: status reader and the demos).
OUTBOX_FILE = "outbox.sqlite"


def _body(event: Event) -> str:
    return json.dumps(event.as_dict(), separators=(",", ":"))


class OutboxError(FrugalError, OSError):
    """The outbox database cannot be written (disk full, read-only, corrupt file)."""


class _Pending:
    """A batch waiting for a group commit, then its outcome."""

    __slots__ = ("done", "error", "events", "stored")

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.stored: list[Event] = []
        self.error: Optional[BaseException] = None
        self.done = False


class Outbox:
    """A persistent queue of events (thread-safe; one writer process).

    Args:
        path: database file (``:memory:`` for tests that need no persistence).
        durable: shorthand for ``sync="full"`` (kept for callers of the first version).
        sync: ``append`` (default), ``full``, ``normal`` or ``group``; see the module
            docstring.
        sync_interval_s: ``group``: an append more than this after the last fsync fsyncs.
        max_pending: cap on undelivered events; past it the overflow policy drops some.
        keep_sent: delivered rows kept for inspection; older ones are pruned.
    """

    def __init__(self, path: Union[str, Path], durable: bool = False, *,
                 sync: str = "append", max_pending: int = 100_000,
                 keep_sent: int = 1000, sync_interval_s: float = SYNC_INTERVAL_S) -> None:
        if sync not in SYNC_POLICIES:
            raise ValueError(f"sync must be one of {', '.join(SYNC_POLICIES)}, got {sync!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.path = str(path)
        self.sync = "full" if durable else sync
        self.max_pending = max_pending
        self.keep_sent = keep_sent
        self.sync_interval_s = sync_interval_s
        #: ``group``: commits since the last fsync, and when that fsync was.
        self._unsynced = False
        self._synced_at = -math.inf
        self._lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []  # batches waiting for the next group commit
        self._synchronous = ""
        #: drops at the cap happen once per append while it lasts: logged once, then counted.
        self._drop_log = LogRate(log)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA journal_size_limit=1048576")
                self._db.executescript(SCHEMA)
                self._db.execute("BEGIN IMMEDIATE")
                # A database from the first version has rows but no counters: start from them.
                self._db.execute(
                    "INSERT OR IGNORE INTO counters SELECT 'appended', COUNT(*) FROM events")
                self._db.execute(
                    "INSERT OR IGNORE INTO counters SELECT 'sent', COUNT(sent_at) FROM events")
                self._db.execute("INSERT OR IGNORE INTO counters VALUES ('dropped', 0)")
                self._db.execute("COMMIT")
        except (sqlite3.Error, OSError) as err:
            raise OutboxError(f"outbox {self.path}: cannot open: {err}") from err

    # -- internals -----------------------------------------------------------------------

    def _set_sync(self, level: str) -> None:
        if self.sync == "full":
            level = "FULL"
        elif self.sync == "normal":
            level = "NORMAL"
        if level != self._synchronous:
            self._db.execute(f"PRAGMA synchronous={level}")
            self._synchronous = level

    def _bump(self, name: str, n: int) -> None:
        self._db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                         "value = value + excluded.value", (name, n))

    def _counter(self, name: str) -> int:
        row = self._conn().execute("SELECT value FROM counters WHERE name = ?",
                                   (name,)).fetchone()
        return int(row[0]) if row else 0

    def _overflow(self) -> None:
        pending = self._db.execute(
            "SELECT COUNT(*) FROM events WHERE sent_at IS NULL").fetchone()[0]
        excess = pending - self.max_pending
        if excess <= 0:
            return
        victims = self._db.execute(
            "SELECT rowid, sensor, body FROM events WHERE sent_at IS NULL "
            f"ORDER BY {_DROP_RANK} DESC, rowid ASC LIMIT ?", (excess,)).fetchall()
        self._db.executemany("DELETE FROM events WHERE rowid = ?", [(r[0],) for r in victims])
        bodies = [json.loads(r[2]) for r in victims]
        self._keep_counts([b for b in bodies if b.get("kind") == "summary" and b.get("stats")])
        per_sensor = Counter(r[1] for r in victims)
        kinds = Counter(b["kind"] for b in bodies)
        self._bump("dropped", len(victims))
        for sensor, n in per_sensor.items():
            self._bump(f"dropped:{sensor}", n)
        self._drop_log.warning("dropped", "outbox full (%d pending, cap %d): dropped %d "
                               "event(s) by policy %s: %s", pending, self.max_pending,
                               len(victims), OVERFLOW_POLICY, dict(kinds), count=len(victims))

    def _keep_counts(self, summaries: list[dict[str, object]]) -> None:
        """Keep the counts of dropped summaries (table ``carry``) for the sensor's next one.

        Never merged into a summary already pending: a sink may be sending that one right now,
        and marking it sent would then lose what was merged in after it was read.
        """
        for body in summaries:
            sensor = str(body["sensor"])
            dropped = Stats.from_dict(body["stats"])  # type: ignore[arg-type]
            carried = self._db.execute("SELECT stats FROM carry WHERE sensor = ?",
                                       (sensor,)).fetchone()
            if carried is not None:
                dropped = merge_stats(Stats.from_dict(json.loads(carried[0])), dropped)
            self._db.execute("INSERT OR REPLACE INTO carry (sensor, stats) VALUES (?, ?)",
                             (sensor, json.dumps(dropped.as_dict())))

    def _with_carry(self, event: Event) -> Event:
        """A summary takes in the counts of the sensor's summaries dropped with no heir."""
        if event.kind != "summary" or event.stats is None:
            return event
        carried = self._db.execute("SELECT stats FROM carry WHERE sensor = ?",
                                   (event.sensor,)).fetchone()
        if carried is None:
            return event
        self._db.execute("DELETE FROM carry WHERE sensor = ?", (event.sensor,))
        return replace(event, stats=merge_stats(Stats.from_dict(json.loads(carried[0])),
                                                event.stats))

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError(f"outbox {self.path} is closed")
        return self._db

    def _transaction(self, level: str) -> sqlite3.Connection:
        self._conn()
        self._set_sync(level)
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    # -- public --------------------------------------------------------------------------

    def append(self, event: Event) -> Event:
        """Store one event; return it with its sequence number."""
        return self.append_many([event])[0]

    def append_many(self, events: Iterable[Event]) -> list[Event]:
        """Store events in one transaction (one fsync for the batch); return them with seq.

        Group commit: batches appended by other threads while a commit is under way (its fsync
        takes most of the time) wait for it to end and are then committed together, in the
        order they came, by one of them: one transaction and one fsync for the group. Each
        call still returns only once its own events are committed (durable as ``sync`` says),
        and a failed group stores none of its batches.

        Raises:
            OutboxError: the database cannot be written (nothing of the batch is stored).
        """
        item = _Pending(list(events))
        with self._queue_lock:
            self._queue.append(item)
        with self._lock:
            if not item.done:  # nobody committed it while we waited: lead the next group
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._commit_group(group)
        if item.error is not None:
            raise item.error
        return item.stored

    def _commit_group(self, group: list[_Pending]) -> None:
        """One transaction for every batch of ``group`` (called with ``self._lock`` held)."""
        now = time.time()
        rows = 0
        level = "FULL"
        if self.sync == "group" and time.monotonic() - self._synced_at < self.sync_interval_s:
            level = "NORMAL"  # committed now, fsynced with the next group or before sending
        try:
            try:
                db = self._transaction(level)
                try:
                    next_seq: dict[str, int] = {}
                    for item in group:
                        for event in item.events:
                            seq = next_seq.get(event.sensor)
                            if seq is None:
                                row = db.execute("SELECT next FROM sequences WHERE sensor = ?",
                                                 (event.sensor,)).fetchone()
                                seq = row[0] if row else 0
                            next_seq[event.sensor] = seq + 1
                            event = self._with_carry(replace(event, seq=seq))
                            db.execute(
                                "INSERT INTO events (sensor, seq, priority, created, body) "
                                "VALUES (?, ?, ?, ?, ?)",
                                (event.sensor, seq, event.priority, now, _body(event)),
                            )
                            item.stored.append(event)
                            rows += 1
                    db.executemany("INSERT OR REPLACE INTO sequences (sensor, next) "
                                   "VALUES (?, ?)", list(next_seq.items()))
                    self._bump("appended", rows)
                    self._overflow()
                    db.execute("COMMIT")
                except BaseException:
                    # SQLite rolls back by itself on some errors (SQLITE_FULL: the disk is
                    # full); a second ROLLBACK would then hide that cause behind its own.
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot store {rows or 'the'} "
                                  f"event(s): {err}") from err
        except BaseException as err:
            for item in group:
                item.stored = []
                item.error = err
                item.done = True
            return
        self._committed(level)
        for item in group:
            item.done = True

    def _committed(self, level: str) -> None:
        """Note whether the commit just made was fsynced (``group`` keeps count)."""
        if level == "FULL" or self.sync == "full":
            self._unsynced = False
            self._synced_at = time.monotonic()
        elif self.sync == "group":
            self._unsynced = True

    def _sync_unsynced(self) -> None:
        """``group``: fsync the commits not yet fsynced (one tiny FULL commit: SQLite fsyncs
        the WAL up to it); called with ``self._lock`` held, before events leave."""
        if not self._unsynced:
            return
        try:
            db = self._transaction("FULL")
            try:
                self._bump("syncs", 1)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise OutboxError(f"outbox {self.path}: cannot sync stored events: {err}") from err
        self._committed("FULL")

    def pending(self, limit: int = 100) -> list[Event]:
        """Events not yet delivered, most urgent first, then oldest first (fsynced first:
        what an uplink is given is on disk, whatever the ``sync`` policy's grouping)."""
        with self._lock:
            self._sync_unsynced()
            rows = self._conn().execute(
                "SELECT body FROM events WHERE sent_at IS NULL "
                "ORDER BY priority, rowid LIMIT ?", (limit,)
            ).fetchall()
        return [Event.from_dict(json.loads(body)) for (body,) in rows]

    def mark_sent(self, events: Iterable[Event]) -> int:
        """Mark events delivered (one transaction, no fsync); return how many were pending."""
        now = time.time()
        keys = [(now, e.sensor, e.seq) for e in events]
        if not keys:
            return 0
        with self._lock:
            try:
                db = self._transaction("NORMAL")
                try:
                    before = db.total_changes
                    db.executemany("UPDATE events SET sent_at = ? WHERE sensor = ? AND seq = ? "
                                   "AND sent_at IS NULL", keys)
                    marked = db.total_changes - before
                    self._bump("sent", marked)
                    db.execute(
                        "DELETE FROM events WHERE sent_at IS NOT NULL AND rowid <= "
                        "(SELECT rowid FROM events WHERE sent_at IS NOT NULL "
                        " ORDER BY rowid DESC LIMIT 1 OFFSET ?)", (self.keep_sent,))
                    db.execute("COMMIT")
                except BaseException:
                    # SQLite rolls back by itself on some errors (SQLITE_FULL: the disk is
                    # full); a second ROLLBACK would then hide that cause behind its own.
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise OutboxError(f"outbox {self.path}: cannot mark events sent: {err}") from err
        return marked

    def depth(self) -> int:
        """How many events wait for delivery."""
        with self._lock:
            return int(self._conn().execute(
                "SELECT COUNT(*) FROM events WHERE sent_at IS NULL").fetchone()[0])

    def oldest_pending_ts(self) -> Optional[float]:
        """When the oldest undelivered event was stored (None when nothing waits)."""
        with self._lock:
            row = self._conn().execute(
                "SELECT MIN(created) FROM events WHERE sent_at IS NULL").fetchone()
        return None if row[0] is None else float(row[0])

    def dropped(self, sensor: Optional[str] = None) -> int:
        """Events dropped by the overflow policy since the database was created."""
        with self._lock:
            return self._counter("dropped" if sensor is None else f"dropped:{sensor}")

    def counts(self) -> dict[str, int]:
        """Totals since the database was created: stored, sent, pending, dropped."""
        with self._lock:
            pending = int(self._conn().execute(
                "SELECT COUNT(*) FROM events WHERE sent_at IS NULL").fetchone()[0])
            return {"stored": self._counter("appended"), "sent": self._counter("sent"),
                    "pending": pending, "dropped": self._counter("dropped")}

    def close(self) -> None:
        """Close the database; safe to call twice."""
        self._drop_log.flush()
        with self._lock:
            if self._db is not None:
                try:
                    self._sync_unsynced()  # a clean stop leaves every stored event on disk
                except OutboxError as err:
                    log.error("%s", err)
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Outbox({self.path!r}, sync={self.sync!r}, max_pending={self.max_pending}, "
                f"overflow={OVERFLOW_POLICY!r})")
