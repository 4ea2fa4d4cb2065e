"""The territory's central store: ``frugalai collect --db postgresql://...`` against a real
PostgreSQL (initdb + pg_ctl in a temporary directory) and a real Mosquitto, fed by the gateway's
own MQTT uplink.

What a territory's IT asks, each checked for real: the schema is versioned and a database newer
than the code is refused; events land once (a duplicate from at-least-once delivery is dropped
by the key); hostile messages are quarantined with the reason and the rest goes on; a collector
SIGKILLed mid-stream and restarted loses nothing and stores nothing twice; two collectors on
one MQTT 5 shared subscription split the events without loss; the views answer; the password
of the connection string never appears in any output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frugalai.events.event import Event
from frugalai.fleet.link import Link, parse_broker
from frugalai.uplink.mqtt import MqttSink

psycopg = pytest.importorskip("psycopg", reason="the 'central' extra (psycopg) is not installed")

import pg_server  # noqa: E402  (tests/ is on the path)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pg() -> Iterator[pg_server.PgServer]:
    why = pg_server.missing_reason()
    if why:
        pytest.skip(why)
    with pg_server.PgServer() as server:
        yield server


@pytest.fixture
def db(pg: pg_server.PgServer) -> Iterator[str]:
    """A fresh database per test (same server)."""
    name = f"t{time.monotonic_ns()}"
    with psycopg.connect(pg.dsn, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    yield pg.dsn.rsplit("/", 1)[0] + f"/{name}"


def collect(broker: Any, dsn: str, *args: str, duration: float = 0.5,
            client_id: str = "test-collector") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "frugalai", "collect", "--broker", broker.url, "--db", dsn,
         "--client-id", client_id, "--duration", str(duration), *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as con:
        return con.execute(sql).fetchall()  # type: ignore[arg-type]


def sink(broker: Any, gateway: str, codec: str = "json") -> MqttSink:
    s = MqttSink.from_url(f"{broker.url}?codec={codec}&timeout=10", gateway=gateway)
    assert s.wait_connected(10)
    return s


def ev(seq: int, sensor: str = "linky") -> Event:
    return Event("alarm", sensor, 1_700_000_000.0 + seq, score=5.0, value=2000.0 + seq,
                 sensor_id=1, seq=seq)


def wait_for(cond: Any, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_schema_is_created_by_migrate_only_and_a_newer_one_is_refused(mosquitto: Any,
                                                                       db: str) -> None:
    got = collect(mosquitto, db)
    assert got.returncode == 2, got.stderr
    assert "no frugalai schema" in got.stderr and "--migrate" in got.stderr
    assert pg_server.PASSWORD not in got.stderr + got.stdout
    got = collect(mosquitto, db, "--migrate")
    assert got.returncode == 0, got.stderr
    assert query(db, "SELECT max(version) FROM frugalai_schema")[0][0] >= 1
    again = collect(mosquitto, db, "--migrate")  # idempotent
    assert again.returncode == 0, again.stderr
    with psycopg.connect(db, autocommit=True) as con:
        con.execute("INSERT INTO frugalai_schema (version, code) VALUES (999, 'future')")
    got = collect(mosquitto, db)
    assert got.returncode == 2
    assert "schema version 999" in got.stderr and "newer" in got.stderr
    assert pg_server.PASSWORD not in got.stderr + got.stdout


def test_wrong_password_is_one_line_without_the_password(mosquitto: Any, pg: Any) -> None:
    wrong = pg.dsn.replace(pg_server.PASSWORD, "not-the-Pa55word")
    got = collect(mosquitto, wrong)
    assert got.returncode != 0
    assert "not-the-Pa55word" not in got.stderr + got.stdout
    assert "Traceback" not in got.stderr
    assert len(got.stderr.strip().splitlines()) == 1, got.stderr


def test_events_once_hostile_messages_quarantined_counts_reconcile(mosquitto: Any,
                                                                   db: str) -> None:
    assert collect(mosquitto, db, "--migrate", duration=0.1).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "frugalai", "collect", "--broker", mosquitto.url, "--db", db,
         "--client-id", "c1", "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: "Sending CONNACK to c1" in mosquitto.log_text(), what="connect")
        with sink(mosquitto, "gw1") as js, sink(mosquitto, "gw2", "binary") as bn:
            assert len(js.send([ev(i) for i in range(50)])) == 50
            assert len(js.send([ev(7)])) == 1  # a duplicate
            assert len(bn.send([ev(i, "meter") for i in range(20)])) == 20
        pub = Link(parse_broker(mosquitto.url), "hostile")
        pub.wait_connected(10)
        good = json.loads(json.dumps({"v": 1, "kind": "alarm", "sensor": "linky",
                                      "ts": 1_700_000_100.0, "seq": 100}))
        hostile = [
            b"\x01\x02\x03",
            json.dumps({**good, "seq": 2**70}).encode(),
            json.dumps({**good, "seq": 101, "ts": 1e308}).encode(),
            json.dumps({**good, "seq": 102, "ts": -1e308}).encode(),
            b"{" * 10_000,
        ]
        for payload in hostile:
            pub.publish("frugalai/gw3/linky/event", payload)
        pub.publish("frugalai/gw3/linky/event", json.dumps(good).encode())  # still goes on
        pub.close()
        wait_for(lambda: query(db, "SELECT count(*) FROM events")[0][0] == 71
                 and query(db, "SELECT count(*) FROM quarantine")[0][0] == len(hostile),
                 what="71 events and the quarantine")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    counters = dict(query(db, "SELECT name, sum(value)::int FROM collector_counters "
                              "GROUP BY name"))
    # messages: 51 + 20 from the gateways (one a duplicate), the hostile ones, the last good one
    assert counters == {"received": 51 + 20 + len(hostile) + 1, "stored": 71, "duplicates": 1,
                        "quarantined": len(hostile)}
    reasons = [r[0] for r in query(db, "SELECT reason FROM quarantine ORDER BY id")]
    assert any("seq: must be an integer" in r for r in reasons)
    assert sum("ts: must be a finite number" in r for r in reasons) == 2
    assert query(db, "SELECT max(size), max(length(payload)) FROM quarantine")[0] == (10_000, 4096)
    assert "71 events" in out and pg_server.PASSWORD not in out + err
    # the views a territory reads
    per_day = query(db, "SELECT gateway, sensor, events FROM events_per_site_day ORDER BY 1, 2")
    assert per_day == [("gw1", "linky", 50), ("gw2", "meter", 20), ("gw3", "linky", 1)]
    health = query(db, "SELECT collector, stored, quarantined FROM collector_status")
    assert health == [("c1", 71, len(hostile))]
    assert query(db, "SELECT count(*) FROM silent_gateways")[0][0] == 0


def test_sigkill_at_any_instant_loses_nothing_and_stores_nothing_twice(mosquitto: Any,
                                                                        db: str) -> None:
    assert collect(mosquitto, db, "--migrate", duration=0.1, client_id="killed").returncode == 0
    total, gateways = 600, ("gw1", "gw2", "gw3")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "frugalai", "collect", "--broker", mosquitto.url, "--db", db,
             "--client-id", "killed"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)})

    def gateway(name: str) -> None:
        with sink(mosquitto, name) as s:
            for seq in range(0, total, 10):
                s.send([ev(i) for i in range(seq, seq + 10)])
                time.sleep(0.01)

    proc = start()
    threads = [threading.Thread(target=gateway, args=(g,)) for g in gateways]
    for t in threads:
        t.start()
    kills = 0
    try:
        for _ in range(3):  # killed mid-stream, three times
            wait_for(lambda: query(db, "SELECT count(*) FROM events")[0][0] > 0, what="rows")
            time.sleep(0.3)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = start()
        for t in threads:
            t.join()
        wait_for(lambda: query(db, "SELECT count(*) FROM events")[0][0] == total * len(gateways),
                 timeout=60, what="every event")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert kills == 3
    per_gw = query(db, "SELECT gateway, count(*), count(DISTINCT seq), min(seq), max(seq) "
                       "FROM events GROUP BY gateway ORDER BY gateway")
    assert per_gw == [(g, total, total, 0, total - 1) for g in gateways]


def test_two_collectors_on_a_shared_subscription_split_the_events(mosquitto: Any,
                                                                  db: str) -> None:
    assert collect(mosquitto, db, "--migrate", duration=0.1).returncode == 0
    procs = [subprocess.Popen(
        [sys.executable, "-m", "frugalai", "collect", "--broker", mosquitto.url, "--db", db,
         "--client-id", f"col-{k}", "--share", "territory", "--duration", "120"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)}) for k in (1, 2)]
    try:
        wait_for(lambda: all(f"Sending CONNACK to col-{k}" in mosquitto.log_text()
                             for k in (1, 2)), what="both connected")
        time.sleep(0.5)  # both subscribed
        with sink(mosquitto, "gw1") as s:
            for seq in range(0, 400, 20):
                assert len(s.send([ev(i) for i in range(seq, seq + 20)])) == 20
        wait_for(lambda: query(db, "SELECT count(*) FROM events")[0][0] == 400, what="400")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.communicate(timeout=60)
    by_collector = dict(query(db, "SELECT collector, count(*) FROM events GROUP BY collector"))
    assert set(by_collector) == {"col-1", "col-2"}, by_collector  # both took a share
    assert sum(by_collector.values()) == 400
    assert query(db, "SELECT count(DISTINCT seq) FROM events")[0][0] == 400


def test_fleet_status_and_rollout_state_from_the_database(mosquitto: Any, db: str) -> None:
    from frugalai.fleet import status as fstatus
    from frugalai.fleet.topics import report_topic, status_topic

    assert collect(mosquitto, db, "--migrate", duration=0.1).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "frugalai", "collect", "--broker", mosquitto.url, "--db", db,
         "--client-id", "c-status", "--duration", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: "Sending CONNACK to c-status" in mosquitto.log_text(), what="connect")
        gw = Link(parse_broker(mosquitto.url), "gw-a")
        gw.wait_connected(10)
        now = time.time()
        ok = {"v": 1, "gateway": "gw-a", "online": True, "state": "running", "healthy": True,
              "updated": now, "status_interval_s": 60, "models": {}, "flows": {},
              "outbox": {"pending": 0}}
        gw.publish(status_topic("gw-a"), fstatus.encode(ok), retain=True)
        gw.publish(status_topic("gw-b"), fstatus.offline_payload("gw-b", "stopped"),
                   retain=True)
        for outcome, ts in (("staged", now - 5), ("installed", now)):
            gw.publish(report_topic("gw-a"), json.dumps(
                {"v": 1, "gateway": "gw-a", "id": "r1", "action": "install",
                 "model": "energy-anomaly", "version": "7", "outcome": outcome,
                 "final": outcome == "installed", "ts": ts}).encode(), retain=True)
        with sink(mosquitto, "gw-a") as s:
            s.send([ev(0)])
        gw.close()
        wait_for(lambda: query(db, "SELECT count(*) FROM gateway_health")[0][0] == 2
                 and query(db, "SELECT count(*) FROM rollouts")[0][0] == 2
                 and query(db, "SELECT count(*) FROM events")[0][0] == 1, what="history")
        got = subprocess.run(
            [sys.executable, "-m", "frugalai", "fleet", "status", "--db", db],
            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert got.returncode == 1, got.stderr  # gw-b is offline: flagged
    lines = got.stdout.splitlines()
    assert any(line.startswith("gw-a") and " ok " in line for line in lines), got.stdout
    assert any(line.startswith("gw-b") and "offline" in line for line in lines), got.stdout
    assert "2 gateway(s), 1 flagged" in got.stdout
    assert any(line.startswith("collector c-status: last commit") and "stored 1" in line
               for line in lines), got.stdout
    assert pg_server.PASSWORD not in got.stdout + got.stderr
    assert query(db, "SELECT gateway, model, version, outcome FROM rollout_state") == [
        ("gw-a", "energy-anomaly", "7", "installed")]
