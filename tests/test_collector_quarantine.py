"""The collector's quarantine, against a real Mosquitto (issue 24).

Issue 24's findings reproduced as they were measured: valid JSON on a gateway's own topic with
``"seq": 2**70`` (an OverflowError in the receive thread), ``"stats": 5``, ``"label": {"a": 1}``
(the collector exited at every start: the unacknowledged message came back), timestamps of
+-1e308, NaN values, and messages attributed to someone else. Each now lands in the quarantine
table with its reason, the collector goes on, and received = stored + duplicates + quarantined.
A database that cannot be written stops ``frugalai collect`` with the reason and a non-zero
exit, and the message it could not store is stored at the next start. A fuzz run of 2,000 typed
events through the real broker (``make fuzz`` runs 10^5: benchmarks/fuzz_events.py).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from frugalai.events.codec import encode_binary, encode_json
from frugalai.events.event import Event
from frugalai.fleet.collector import RAW_KEPT, Collector, EventStore
from frugalai.fleet.link import Link, parse_broker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def good(seq: int, sensor: str = "linky") -> bytes:
    return encode_json(Event("alarm", sensor, 1_700_000_000.0 + seq, score=5.0, value=2.0,
                             sensor_id=1, seq=seq))


def edited(n: int, **changes: Any) -> bytes:
    data = json.loads(good(n))
    data.update(changes)
    return json.dumps(data).encode()


def wait_for(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def counters(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    con = sqlite3.connect(db)
    try:
        return {str(k): int(v) for k, v in con.execute("SELECT name, value FROM counters")}
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


TOPIC = "frugalai/gw1/linky/event"
inf_half = bytearray(encode_binary(Event("alarm", "linky", 1.7e9, value=1.0, sensor_id=1,
                                         seq=5)))
inf_half[9:11] = b"\x7c\x00"  # binary16 +infinity as the key value
POISON: list[tuple[str, bytes, str]] = [
    (TOPIC, edited(100, seq=2**70, id=f"linky:{2**70}"), "seq: must be an integer"),
    (TOPIC, edited(101, kind="summary", stats=5), "stats: must be an object or null"),
    (TOPIC, edited(102, label={"a": 1}), "label: must be an integer"),
    (TOPIC, edited(103, ts=1e308), "ts: must be a finite number"),
    (TOPIC, edited(104, ts=-1e308), "ts: must be a finite number"),
    (TOPIC, good(105).replace(b'"value":2.0', b'"value":NaN'), "NaN is not a JSON number"),
    (TOPIC, good(106).replace(b'"score":5.0', b'"score":1e999'), "score: must be a finite"),
    (TOPIC, bytes(inf_half), "value: must be a finite number"),
    # attribution: another sensor's event on this topic; a gateway id the fleet reserves
    (TOPIC, good(107, sensor="meter"), "JSON event of sensor 'meter' on the topic of 'linky'"),
    ("frugalai/rollout/linky/event", good(108), "gateway id 'rollout' is a word of the fleet"),
    ("frugalai/fleet/gw1/event", good(109), "not an event topic"),
    (TOPIC, b"{" + b" " * 6000 + b"}", "payload of 6002 bytes"),
]


def test_the_issue_findings_are_quarantined_and_the_collector_goes_on(mosquitto: Any,
                                                                       tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    sent = []
    with Collector(parse_broker(mosquitto.url), store) as col:
        col.link.wait_connected(10)
        pub = Link(parse_broker(mosquitto.url), "gw1")
        pub.wait_connected(10)
        for i, (topic, payload, _) in enumerate(POISON):
            pub.publish(TOPIC, good(i))  # a good event before each poisoned one
            pub.publish(topic, payload)
            sent += [TOPIC, topic]
        pub.publish(TOPIC, good(0))  # and a duplicate
        pub.close()
        n = len(sent) + 1
        wait_for(lambda: col.intake.counts["received"] == n, what=f"{n} messages handled")
        assert col.error is None and col.link.connected.is_set()
    c = store.counters()
    assert c == col.intake.counts == {"received": n, "stored": len(POISON), "duplicates": 1,
                                      "quarantined": len(POISON)}
    assert c["received"] == c["stored"] + c["duplicates"] + c["quarantined"]
    kept = store.quarantined()
    for (topic, payload, words), (q_topic, reason, raw, size) in zip(POISON, kept):
        assert words in reason and q_topic == topic
        assert raw == payload[:RAW_KEPT] and size == len(payload)
    assert [r[7] for r in store.rows()] == list(range(len(POISON)))  # seq of the good ones
    store.close()


def collect(broker: Any, db: Path, log: Path, fsize: int = 0) -> subprocess.Popen[bytes]:
    def limit() -> None:  # a disk that fills: writes past fsize bytes fail (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))

    return subprocess.Popen([sys.executable, "-m", "frugalai", "collect", "--broker", broker.url,
                             "--out", str(db), "--client-id", "test-collector"],
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=limit if fsize else None)


def connected(broker: Any, after: int) -> Callable[[], bool]:
    return lambda: broker.log_text().count("Sending CONNACK to test-collector") > after


def test_a_poisoned_message_is_quarantined_once_and_never_stops_the_collector(
        mosquitto: Any, tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    pub = Link(parse_broker(mosquitto.url), "gw1")
    pub.wait_connected(10)
    for run in range(2):
        log = tmp_path / f"collect{run}.log"
        proc = collect(mosquitto, db, log)
        try:
            wait_for(connected(mosquitto, run), what="the collector connected")
            if run == 0:  # the message that made the collector exit at every start
                pub.publish(TOPIC, edited(50, label={"a": 1}))
            pub.publish(TOPIC, good(run))
            wait_for(lambda want=run + 1: counters(db).get("stored", 0) == want, what="stored")
            assert proc.poll() is None, log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0, log.read_text()
        out = log.read_text()
        # the second run never sees the poisoned message again: it was acknowledged
        assert f"this run received {2 - run} message(s): 1 stored, 0 duplicate(s), " \
               f"{1 - run} quarantined" in out, out
    assert "this database: 3 received, 2 stored, 0 duplicate(s), 1 quarantined" in out
    pub.close()


def test_a_store_that_cannot_write_stops_collect_with_the_reason_and_loses_nothing(
        mosquitto: Any, tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    EventStore(db).close()  # the tables exist; the WAL is what grows
    pub = Link(parse_broker(mosquitto.url), "gw1")
    pub.wait_connected(10)
    log = tmp_path / "full.log"
    proc = collect(mosquitto, db, log, fsize=40_000)  # the -shm (32 KiB) fits, the WAL not long
    try:
        wait_for(connected(mosquitto, 0), what="the collector connected")
        # the collector commits in batches (far fewer WAL pages than one commit per event):
        # publish until the disk it sees is full and it stops
        for seq in range(5000):
            pub.publish(TOPIC, good(seq))
            if proc.poll() is not None:
                break
            if seq % 50 == 49:
                time.sleep(0.2)  # let a batch commit: the WAL grows commit by commit
        assert proc.wait(30) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    lines = [ln for ln in out.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "cannot store events in" in lines[0], out
    assert "OperationalError" in lines[0] and "Traceback" not in out, out
    assert "the broker keeps the unacknowledged events" in lines[0], out
    stored_before = counters(db).get("stored", 0)
    assert 0 < stored_before < seq + 1, out  # it stopped part way, on the store
    # the space is back: the next start stores what was not acknowledged, nothing is lost
    proc = collect(mosquitto, db, tmp_path / "after.log")
    try:
        wait_for(lambda: counters(db).get("stored", 0) == seq + 1, what=f"all {seq + 1} events")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, (tmp_path / "after.log").read_text()
    assert counters(db).get("quarantined", 0) == 0
    pub.close()


def test_two_thousand_fuzzed_events_through_the_real_broker(tmp_path: Path) -> None:
    from mqtt_broker import MOSQUITTO

    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed: run scripts/install-sysdeps (make test does)")
    from fuzz_events import run_broker

    r = run_broker(2000, tmp_path, seed=7, work=tmp_path, timeout=300)
    c = r["counts"]
    assert r["stalls"] == 0 and r["foreign_exceptions"] == 0, r
    assert c["received"] == r["sent"] == 2000 and r["reconciled"], r
    assert c["stored"] > 100 and c["quarantined"] > 1000, c  # both paths were exercised
    assert r["valid_not_stored"] == [] and r["rows_out_of_range"] == [], r
