"""The collector's PostgreSQL store: a territory's events in the database it already runs.

``frugalai collect --db postgresql://user@host/db`` writes here instead of a SQLite file (psycopg
3, from the ``central`` extra, imported late). What it promises:

* **Nothing twice**: one batch is one multi-row ``INSERT ... ON CONFLICT DO NOTHING`` on the
  dedup key (gateway, sensor, seq, ts) -- the same key as the SQLite store; the event id alone
  (``sensor:seq``) repeats across gateways and wraps on the 16-bit binary wire.
* **Nothing lost**: the batch is committed before the collector acknowledges its MQTT
  messages; a collector killed at any instant leaves the broker holding what it had not
  committed, and the copy it sends again is dropped by the key.
* **A versioned schema**: :data:`MIGRATIONS` in order, recorded in ``frugalai_schema``; applied
  by ``collect --migrate`` (under an advisory lock: two collectors may start together), and a
  database newer than the code is refused with both versions named.
* **No password in a message**: every error quotes the connection string through
  :func:`frugalai.redact.redact`.

Tables: ``events``, ``quarantine`` (messages refused, with the reason and the raw bytes,
bounded), ``gateway_health`` (the retained status of every gateway, each change kept),
``rollouts`` (every rollout report), ``collector_counters`` and ``collector_health`` (one row per
collector: last commit, lag, queue). Views answer what a territory asks:
``events_per_site_day``, ``silent_gateways`` (nothing heard for over an hour),
``rollout_state`` (the last report per gateway and model), ``collector_status``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.errors import ConfigError, UplinkError
from frugalai.fleet.records import Gaps, Record, stats_json, stream_gaps, write_csv
from frugalai.fleet.store import Batch, Refused, StoreError
from frugalai.redact import redact

log = logging.getLogger("frugalai.collect")

#: at most this many bytes of a refused message are kept in ``quarantine`` (as in SQLite).
QUARANTINE_BYTES = 4096
TEXT_KEPT = 1024

#: (version, SQL), applied in order; a released migration is never edited, only added to.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE events (
    gateway      text NOT NULL,
    sensor       text NOT NULL,
    kind         text NOT NULL,
    ts           double precision NOT NULL,
    value        double precision,
    score        double precision,
    label        integer NOT NULL DEFAULT 0,
    seq          bigint NOT NULL,
    event_id     text NOT NULL,
    wire         text NOT NULL,
    stats        jsonb,
    received     double precision NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    collector    text,
    PRIMARY KEY (gateway, sensor, seq, ts)
);
CREATE INDEX events_time ON events (ts);
CREATE TABLE quarantine (
    id        bigserial PRIMARY KEY,
    topic     text NOT NULL,
    payload   bytea NOT NULL,
    size      integer NOT NULL,
    reason    text NOT NULL,
    received  timestamptz NOT NULL DEFAULT now(),
    collector text
);
CREATE TABLE gateway_health (
    gateway  text NOT NULL,
    updated  double precision NOT NULL,
    online   boolean,
    state    text,
    healthy  boolean,
    status   jsonb NOT NULL,
    received timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, updated)
);
CREATE TABLE rollouts (
    gateway  text NOT NULL,
    id       text,
    model    text,
    version  text,
    action   text,
    outcome  text,
    final    boolean,
    ts       double precision NOT NULL,
    report   jsonb NOT NULL,
    received timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, ts)
);
CREATE TABLE collector_counters (
    collector text NOT NULL,
    name      text NOT NULL,
    value     bigint NOT NULL,
    PRIMARY KEY (collector, name)
);
CREATE TABLE collector_health (
    collector   text PRIMARY KEY,
    last_commit timestamptz,
    lag_s       double precision,
    queue       integer,
    batch       integer,
    updated     timestamptz NOT NULL DEFAULT now()
);
CREATE VIEW events_per_site_day AS
    SELECT gateway, sensor, kind, (to_timestamp(ts) AT TIME ZONE 'UTC')::date AS day,
           count(*) AS events, max(score) AS max_score
    FROM events GROUP BY gateway, sensor, kind, day;
CREATE VIEW last_heard AS
    SELECT gateway, max(heard) AS last_heard FROM (
        SELECT gateway, to_timestamp(max(received)) AS heard FROM events GROUP BY gateway
        UNION ALL
        SELECT gateway, max(received) FROM gateway_health WHERE online IS NOT FALSE
        GROUP BY gateway) AS heard
    GROUP BY gateway;
CREATE VIEW silent_gateways AS
    SELECT gateway, last_heard, now() - last_heard AS silent_for
    FROM last_heard WHERE last_heard < now() - interval '1 hour';
CREATE VIEW rollout_state AS
    SELECT DISTINCT ON (gateway, model) gateway, model, version, action, outcome, final,
           to_timestamp(ts) AS at
    FROM rollouts ORDER BY gateway, model, ts DESC;
CREATE VIEW collector_status AS
    SELECT h.collector, h.last_commit, now() - h.last_commit AS since_commit, h.lag_s, h.queue,
           h.batch, coalesce(c.stored, 0) AS stored, coalesce(c.duplicates, 0) AS duplicates,
           coalesce(c.quarantined, 0) AS quarantined
    FROM collector_health h LEFT JOIN (
        SELECT collector,
               sum(value) FILTER (WHERE name = 'stored') AS stored,
               sum(value) FILTER (WHERE name = 'duplicates') AS duplicates,
               sum(value) FILTER (WHERE name = 'quarantined') AS quarantined
        FROM collector_counters GROUP BY collector) c USING (collector);
"""),
)
LATEST = MIGRATIONS[-1][0]

_INSERT_EVENTS = """
INSERT INTO events (gateway, sensor, kind, ts, value, score, label, seq, event_id, wire, stats,
                    received, collector)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[],
                     %s::float8[], %s::int4[], %s::int8[], %s::text[], %s::text[], %s::jsonb[],
                     %s::float8[], %s::text[])
ON CONFLICT (gateway, sensor, seq, ts) DO NOTHING
RETURNING gateway, sensor, seq, ts
"""
_BUMP = ("INSERT INTO collector_counters (collector, name, value) VALUES (%s, %s, %s) "
         "ON CONFLICT (collector, name) DO UPDATE SET value = collector_counters.value + "
         "excluded.value")


def _text(text: str) -> str:
    """Bounded, valid UTF-8 without NUL (PostgreSQL text refuses NUL): a quarantine row must
    not fail because of what it describes."""
    return text[:TEXT_KEPT].replace("\x00", "\\x00").encode("utf-8", "backslashreplace"
                                                             ).decode("utf-8")


def _short(value: Any) -> Optional[str]:
    """A status or report field as bounded text (None stays None)."""
    return None if value is None else _text(str(value))[:200]


def _bool(value: Any) -> Optional[bool]:
    return value if isinstance(value, bool) else None


def is_postgres(target: Union[str, Path]) -> bool:
    """True for a ``postgresql://`` / ``postgres://`` connection string."""
    return str(target).startswith(("postgresql://", "postgres://"))


class PgEventStore:
    """Events, quarantine, health and rollouts in PostgreSQL (see the module docstring).

    Args:
        dsn: ``postgresql://user[:password]@host[:port]/db[?sslmode=...]`` (libpq's URI form;
            a password is better kept in ``~/.pgpass`` or ``PGPASSWORD``).
        collector: this collector's name in the counters and health tables (its client id).
        migrate: apply the migrations the database lacks (else they must be there already).
    """

    kind = "postgresql"

    def __init__(self, dsn: str, *, collector: str = "frugalai-collector",
                 migrate: bool = False) -> None:
        import psycopg  # the 'central' extra: a missing one is named by frugalai.extras
        self.path = redact(dsn)  # what messages show: never the password
        self.collector = collector
        self._psycopg = psycopg
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(dsn, autocommit=False, connect_timeout=10)
        except psycopg.Error as err:
            raise UplinkError(f"cannot connect to {self.path}: {redact(str(err))}") from None
        if migrate:
            self.migrate()
        self.check_version()

    # -- schema -------------------------------------------------------------------------------

    def schema_version(self) -> Optional[int]:
        """The database's schema version, None when it has no frugalai schema."""
        with self._lock, self._db.cursor() as cur:
            cur.execute("SELECT to_regclass('frugalai_schema') IS NOT NULL")
            row = cur.fetchone()
            if not row or not row[0]:
                self._db.rollback()
                return None
            cur.execute("SELECT max(version) FROM frugalai_schema")
            got = cur.fetchone()
            self._db.rollback()
            return None if got is None or got[0] is None else int(got[0])

    def check_version(self) -> None:
        have = self.schema_version()
        if have is None:
            raise ConfigError(f"{self.path} has no frugalai schema: run frugalai collect --db "
                              f"... --migrate once (it creates the tables)", key="--db")
        if have > LATEST:
            raise ConfigError(f"{self.path} has schema version {have}, newer than this "
                              f"frugalai's {LATEST}: upgrade frugalai on this collector "
                              f"(migrations only go forward)", key="--db")
        if have < LATEST:
            raise ConfigError(f"{self.path} has schema version {have}; this frugalai needs "
                              f"{LATEST}: run frugalai collect --db ... --migrate", key="--db")

    def migrate(self) -> list[int]:
        """Apply the missing migrations in one transaction; the versions applied."""
        from frugalai import __version__

        applied = []
        with self._lock:
            try:
                with self._db.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext('frugalai_schema'))")
                    cur.execute("CREATE TABLE IF NOT EXISTS frugalai_schema (version integer "
                                "PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now(), "
                                "code text NOT NULL)")
                    cur.execute("SELECT coalesce(max(version), 0) FROM frugalai_schema")
                    row = cur.fetchone()
                    have = int(row[0]) if row else 0
                    if have > LATEST:
                        self._db.rollback()
                        raise ConfigError(f"{self.path} has schema version {have}, newer than "
                                          f"this frugalai's {LATEST}: upgrade frugalai",
                                          key="--db")
                    for version, sql in MIGRATIONS:
                        if version > have:
                            cur.execute(sql)
                            cur.execute("INSERT INTO frugalai_schema (version, code) VALUES "
                                        "(%s, %s)", (version, f"frugalai {__version__}"))
                            applied.append(version)
                self._db.commit()
            except self._psycopg.Error as err:
                self._db.rollback()
                raise UplinkError(f"migrating {self.path}: {redact(str(err))}") from None
        if applied:
            log.info("%s: schema migrated to version %d", self.path, LATEST)
        return applied

    # -- writes ---------------------------------------------------------------------------------

    def write(self, batch: Batch, *, queue: Optional[int] = None,
              lag_s: Optional[float] = None) -> list[int]:
        """Store a batch in one transaction; per event message, how many of its records were
        new. Counts each message as received, and as stored (any record new), a duplicate or
        quarantined. Raises :class:`~frugalai.fleet.collector.StoreError` when the database
        fails (connection, disk, server) and :class:`~frugalai.fleet.collector.Refused` when
        it refuses a value; either way nothing of the batch is kept."""
        psycopg = self._psycopg
        cols: list[list[Any]] = [[] for _ in range(13)]
        owner: dict[tuple[str, str, int, float], int] = {}
        for k, (records, received) in enumerate(batch.events):
            for r in records:
                owner.setdefault((r.gateway, r.sensor, r.seq, r.ts), k)
                for i, v in enumerate((r.gateway, r.sensor, r.kind, r.ts, r.value, r.score,
                                       r.label, r.seq, r.event_id, r.wire, stats_json(r),
                                       received, self.collector)):
                    cols[i].append(v)
        news = [0] * len(batch.events)
        with self._lock:
            try:
                with self._db.cursor() as cur:
                    if cols[0]:
                        cur.execute(_INSERT_EVENTS, cols)
                        for key in cur.fetchall():
                            msg = owner.get((key[0], key[1], int(key[2]), float(key[3])))
                            if msg is not None:
                                news[msg] += 1
                    for topic, payload, reason, received in batch.quarantine:
                        cur.execute("INSERT INTO quarantine (topic, payload, size, reason, "
                                    "received, collector) VALUES (%s, %s, %s, %s, "
                                    "to_timestamp(%s), %s)",
                                    (_text(topic), bytes(payload[:QUARANTINE_BYTES]),
                                     len(payload), _text(reason), received, self.collector))
                    for h in batch.health:
                        cur.execute("INSERT INTO gateway_health (gateway, updated, online, "
                                    "state, healthy, status) VALUES (%s, %s, %s, %s, %s, %s) "
                                    "ON CONFLICT DO NOTHING",
                                    (h["gateway"], h["updated"], _bool(h.get("online")),
                                     _short(h.get("state")), _bool(h.get("healthy")),
                                     json.dumps(h["status"])))
                    for rep in batch.reports:
                        cur.execute("INSERT INTO rollouts (gateway, id, model, version, action, "
                                    "outcome, final, ts, report) VALUES (%s, %s, %s, %s, %s, "
                                    "%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                    (rep["gateway"], _short(rep.get("id")),
                                     _short(rep.get("model")), _short(rep.get("version")),
                                     _short(rep.get("action")), _short(rep.get("outcome")),
                                     _bool(rep.get("final")), rep["ts"],
                                     json.dumps(rep["report"])))
                    stored = sum(1 for n in news if n)
                    for name, n in (("received", len(news) + len(batch.quarantine)),
                                    ("stored", stored), ("duplicates", len(news) - stored),
                                    ("quarantined", len(batch.quarantine))):
                        if n:
                            cur.execute(_BUMP, (self.collector, name, n))
                    cur.execute("INSERT INTO collector_health (collector, last_commit, lag_s, "
                                "queue, batch, updated) VALUES (%s, now(), %s, %s, %s, now()) "
                                "ON CONFLICT (collector) DO UPDATE SET last_commit = now(), "
                                "lag_s = excluded.lag_s, queue = excluded.queue, "
                                "batch = excluded.batch, updated = now()",
                                (self.collector, lag_s, queue, len(news)))
                self._db.commit()
            except (psycopg.DataError, psycopg.IntegrityError) as err:
                self._rollback()
                raise Refused(redact(str(err)).splitlines()[0]) from None
            except (psycopg.Error, OSError) as err:
                self._rollback()
                raise StoreError(f"cannot store events in {self.path}: "
                                 f"{redact(str(err)).splitlines()[0] if str(err) else type(err).__name__}"
                                 ) from None
        return news

    def _rollback(self) -> None:
        try:
            self._db.rollback()
        except self._psycopg.Error:
            pass  # the connection is gone: the caller's error says why

    def add(self, record: Record, received: Optional[float] = None) -> bool:
        return self.write(Batch(events=[([record], time.time() if received is None
                                         else received)]))[0] > 0

    def quarantine(self, topic: str, payload: bytes, reason: str,
                   received: Optional[float] = None) -> None:
        self.write(Batch(quarantine=[(topic, payload, reason,
                                      time.time() if received is None else received)]))

    # -- reads ----------------------------------------------------------------------------------

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                with self._db.cursor() as cur:
                    cur.execute(sql, args)
                    rows = cur.fetchall()
                self._db.rollback()
            except self._psycopg.Error as err:
                self._db.rollback()
                raise UplinkError(f"reading {self.path}: {redact(str(err))}") from None
        return rows

    def counters(self) -> dict[str, int]:
        """This database's totals, every collector together: received, stored, duplicates,
        quarantined (received = the other three)."""
        out = {"received": 0, "stored": 0, "duplicates": 0, "quarantined": 0}
        for name, value in self._query("SELECT name, sum(value) FROM collector_counters "
                                       "GROUP BY name"):
            if str(name) in out:
                out[str(name)] = int(value)
        return out

    def quarantined(self) -> list[tuple[str, str, bytes, int]]:
        """(topic, reason, raw bytes kept, size) of every quarantined message, oldest first."""
        return [(str(t), str(r), bytes(b), int(n)) for t, r, b, n in self._query(
            "SELECT topic, reason, payload, size FROM quarantine ORDER BY id")]

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM events")[0][0])

    def rows(self) -> Iterator[tuple[Any, ...]]:
        yield from self._query(
            "SELECT gateway, sensor, kind, ts, value, score, label, seq, event_id, wire, "
            "stats::text, received FROM events ORDER BY gateway, sensor, ts, seq")

    def gaps(self) -> list[Gaps]:
        rows = self._query("SELECT gateway, sensor, wire, seq FROM events "
                           "ORDER BY gateway, sensor, ts, seq")
        return stream_gaps(rows)

    def latest_statuses(self) -> dict[str, bytes]:
        """{gateway: its last status payload}, as ``fleet status`` reads them from the broker."""
        rows = self._query("SELECT DISTINCT ON (gateway) gateway, status::text FROM "
                           "gateway_health ORDER BY gateway, updated DESC")
        return {str(g): str(s).encode() for g, s in rows}

    def collectors(self) -> list[dict[str, Any]]:
        """One row per collector that wrote here: last commit, lag, queue, counts."""
        cols = ("collector", "last_commit", "since_commit_s", "lag_s", "queue", "batch",
                "stored", "duplicates", "quarantined")
        rows = self._query("SELECT collector, extract(epoch FROM last_commit), "
                           "extract(epoch FROM since_commit), lag_s, queue, batch, stored, "
                           "duplicates, quarantined FROM collector_status ORDER BY collector")
        return [{k: (float(v) if k in ("last_commit", "since_commit_s", "lag_s") and v is not None
                     else v) for k, v in zip(cols, row)} for row in rows]

    def export_csv(self, path: Union[str, Path]) -> int:
        return write_csv(path, self.rows())

    def close(self) -> None:
        with self._lock:
            self._db.close()
