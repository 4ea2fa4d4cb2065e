"""``frugalai collect`` against a real Mosquitto, fed by the real MQTT uplink (MqttSink).

Dedup by event id, JSON and binary events in one table, a collector killed (SIGKILL) and
restarted while a gateway publishes loses nothing (persistent session), gaps in the sequence
numbers are reported per gateway and sensor.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from frugalai.events.event import Event
from frugalai.fleet.collector import Collector, EventStore, gap_lines
from frugalai.fleet.link import parse_broker
from frugalai.fleet.records import find_gaps, unwrap
from frugalai.uplink.mqtt import MqttSink

ROOT = Path(__file__).resolve().parents[1]


def sink(broker: Any, gateway: str, codec: str = "json") -> MqttSink:
    s = MqttSink.from_url(f"{broker.url}?codec={codec}&timeout=10", gateway=gateway)
    assert s.wait_connected(10)
    return s


def ev(seq: int, sensor: str = "linky", kind: str = "alarm") -> Event:
    return Event(kind, sensor, 1_700_000_000.0 + seq, score=5.0, value=2000.0 + seq,
                 sensor_id=1, seq=seq)


def wait_for(cond: Any, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def rows(db: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT gateway, sensor, kind, seq, value, score, wire FROM events "
                           "ORDER BY gateway, sensor, seq").fetchall()
    finally:
        con.close()


def test_duplicates_are_dropped_and_both_codecs_land_in_one_table(mosquitto: Any,
                                                                   tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    with Collector(parse_broker(mosquitto.url), store) as col:
        col.link.wait_connected(10)
        with sink(mosquitto, "gw1") as js, sink(mosquitto, "gw2", "binary") as bn:
            assert len(js.send([ev(0), ev(1)])) == 2
            assert len(js.send([ev(1)])) == 1  # the same event again (a lost PUBACK)
            assert len(bn.send([ev(0, "meter"), ev(0, "meter")])) == 2
            wait_for(lambda: sum(store.counters()[k] for k in ("stored", "duplicates")) == 5,
                     what="5 messages handled")
    got = rows(tmp_path / "events.sqlite")
    assert [(r[0], r[1], r[3], r[6]) for r in got] == [
        ("gw1", "linky", 0, "json"), ("gw1", "linky", 1, "json"), ("gw2", "meter", 0, "binary")]
    assert got[2][2] == "alarm" and got[2][4] == 2000.0 and got[2][5] == 5.0
    assert store.counters() == {"received": 5, "stored": 3, "duplicates": 2, "quarantined": 0}
    n = store.export_csv(tmp_path / "events.csv")
    with open(tmp_path / "events.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert n == 3 and [r["event_id"] for r in table] == ["linky:0", "linky:1", "meter:0"]
    store.close()


def test_garbage_is_counted_and_kept_not_dropped(mosquitto: Any, tmp_path: Path) -> None:
    store = EventStore(tmp_path / "events.sqlite")
    with Collector(parse_broker(mosquitto.url), store) as col:
        col.link.wait_connected(10)
        from frugalai.fleet.link import Link

        pub = Link(parse_broker(mosquitto.url), "garbage")
        pub.wait_connected(10)
        pub.publish("frugalai/gw1/linky/event", b"\x01\x02\x03")
        pub.publish("frugalai/gw1/linky/event", b'{"v": 1, "kind": "nope"}')
        pub.close()
        wait_for(lambda: store.counters()["quarantined"] == 2, what="2 quarantined")
    assert store.count() == 0
    store.close()


def collector_proc(broker: Any, db: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "frugalai", "collect", "--broker", broker.url,
                             "--out", str(db), "--client-id", "test-collector"],
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_collector_killed_and_restarted_while_gateways_publish_loses_nothing(
        mosquitto: Any, tmp_path: Path) -> None:
    db, log = tmp_path / "events.sqlite", tmp_path / "collect.log"
    proc = collector_proc(mosquitto, db, log)
    wait_for(lambda: "test-collector" in mosquitto.log_text()
             and "Sending CONNACK to test-collector" in mosquitto.log_text(), what="connect")
    total = 300
    done = threading.Event()

    def gateway(name: str, codec: str) -> None:
        with sink(mosquitto, name, codec) as s:
            for seq in range(total):
                s.send([ev(seq)])
                time.sleep(0.004)
        done.set()

    threads = [threading.Thread(target=gateway, args=(f"gw{i}", c))
               for i, c in ((1, "json"), (2, "binary"))]
    for t in threads:
        t.start()
    wait_for(lambda: db.exists() and len(rows(db)) > 50, what="some events stored")
    proc.send_signal(signal.SIGKILL)  # a crash: no clean disconnect
    proc.wait(10)
    stored_at_kill = len(rows(db))
    time.sleep(0.5)  # the gateways keep publishing; the broker queues for the session
    proc = collector_proc(mosquitto, db, log)
    try:
        for t in threads:
            t.join(60)
        wait_for(lambda: len(rows(db)) == 2 * total, timeout=60,
                 what=f"all {2 * total} events (have {len(rows(db))})")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    assert stored_at_kill < 2 * total  # the kill happened while events were still flowing
    store = EventStore(db)
    assert [(g.gateway, g.first, g.last, g.missing) for g in store.gaps()] == [
        ("gw1", 0, total - 1, 0), ("gw2", 0, total - 1, 0)]
    store.close()
    out = log.read_text()
    assert f"{db}: {2 * total} events" in out and "gw2/linky: seq 0..299, 300 received, 0 " \
        "missing" in out


def test_gaps_are_reported_per_gateway(mosquitto: Any, tmp_path: Path) -> None:
    db = tmp_path / "events.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "frugalai", "collect", "--broker",
                             mosquitto.url, "--out", str(db), "--export", "csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(lambda: "Sending CONNACK to frugalai-collector" in mosquitto.log_text(),
                 what="collector connected")
        with sink(mosquitto, "gw1") as a, sink(mosquitto, "gw2", "binary") as b:
            a.send([ev(s) for s in range(10) if s not in (4, 5)])
            b.send([ev(s) for s in (0, 1, 2, 7)])
        wait_for(lambda: db.exists() and len(rows(db)) == 12, what="12 events")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "gw1/linky: seq 0..9, 8 received, 2 missing (4-5)" in out
    assert "gw2/linky: seq 0..7, 4 received, 4 missing (3-6)" in out
    assert "exported 12 rows" in out and (tmp_path / "events.csv").is_file()


def test_gap_logic() -> None:
    assert unwrap([65535, 1, 2]) == [65535, 65537, 65538]
    g = find_gaps("gw", "s", unwrap([65534, 65535, 1]))
    assert (g.first, g.last, g.missing, g.ranges) == (65534, 65537, 1, ((65536, 65536),))
    assert gap_lines([find_gaps("gw", "s", [3, 4])]) == ["gw/s: seq 3..4, 2 received, "
                                                         "0 missing"]


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://h?bogus=1", "mqtt://h?ca=x"])
def test_bad_broker_urls_are_config_errors(url: str) -> None:
    from frugalai.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_broker(url)


def test_the_fleet_modules_doctests() -> None:
    import doctest

    from frugalai.fleet import acl, manifest, records, rollout, status, topics

    for module in (acl, manifest, records, rollout, status, topics):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def chirpstack_uplink(dev_eui: str, f_cnt: int, data: bytes) -> bytes:
    import base64
    import json

    return json.dumps({"deduplicationId": f"d-{f_cnt}", "deviceInfo": {
        "applicationId": "app-1", "devEui": dev_eui, "deviceName": "node"}, "fCnt": f_cnt,
        "fPort": 10, "dr": 5, "data": base64.b64encode(data).decode(),
        "rxInfo": [{"rssi": -80, "snr": 7.5}]}).encode()


def test_chirpstack_uplinks_land_in_the_same_table(mosquitto: Any, tmp_path: Path) -> None:
    from frugalai.events.codec import encode_binary
    from frugalai.events.event import Stats
    from frugalai.fleet.link import Link

    store = EventStore(tmp_path / "events.sqlite")
    dev = "0102030405060708"
    topic = f"application/app-1/device/{dev}/event/up"
    packed = encode_binary(ev(0)) + encode_binary(ev(1))  # two 11-byte events in one frame
    summary = encode_binary(Event("summary", "linky", 1_700_000_100.0, sensor_id=1, seq=2,
                                  stats=Stats(period_s=3600, readings=100, mean=1.5)))
    with Collector(parse_broker(mosquitto.url), store, chirpstack=True) as col:
        col.link.wait_connected(10)
        with sink(mosquitto, "gw1") as js:  # and an MQTT gateway at the same time
            js.send([ev(0)])
        ns = Link(parse_broker(mosquitto.url), "chirpstack")
        ns.wait_connected(10)
        ns.publish(topic, chirpstack_uplink(dev, 1, packed))
        ns.publish(topic, chirpstack_uplink(dev, 1, packed))  # delivered twice
        ns.publish(topic, chirpstack_uplink(dev, 2, summary))
        ns.publish(topic, chirpstack_uplink(dev, 3, b"\x00" * 5))
        ns.close()
        wait_for(lambda: store.counters()["quarantined"] == 1 and store.count() == 4,
                 what="4 events and 1 quarantined")
    got = rows(tmp_path / "events.sqlite")
    assert [(r[0], r[1], r[2], r[3], r[6]) for r in got] == [
        (dev, "sensor-1", "alarm", 0, "lorawan"), (dev, "sensor-1", "alarm", 1, "lorawan"),
        (dev, "sensor-1", "summary", 2, "lorawan"), ("gw1", "linky", "alarm", 0, "json")]
    # counted in messages: the frame of two events delivered twice is one duplicate message
    assert store.counters() == {"received": 5, "stored": 3, "duplicates": 1, "quarantined": 1}
    assert [(g.gateway, g.missing) for g in store.gaps()] == [(dev, 0), ("gw1", 0)]
    store.close()
