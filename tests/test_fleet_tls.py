"""The fleet tools over TLS with a password (mqtts://), against a real Mosquitto with a TLS
listener: a status published and listed, an event collected; a wrong CA is a clear error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mqtt_broker import MOSQUITTO, Mosquitto
from test_mqtt_uplink import _make_ca

from frugalai.events.event import Event
from frugalai.fleet.collector import Collector, EventStore
from frugalai.fleet.health import HealthPublisher
from frugalai.fleet.link import parse_broker
from frugalai.uplink.mqtt import MqttSink

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tls(tmp_path: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("cryptography", reason="cryptography not installed (extra 'sign')")
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed: run scripts/install-sysdeps (make test does)")
    ca, cert, key = _make_ca(tmp_path, "good")
    broker = Mosquitto(tmp_path / "broker", users={"gw1": "s3cret", "operator": "op"},
                       tls=(ca, cert, key)).start()
    yield broker, ca
    broker.stop()


def test_status_and_events_over_tls(tls: Any, tmp_path: Path) -> None:
    broker, ca = tls
    secret = tmp_path / "pass"
    secret.write_text("s3cret\n")
    gw_url = f"mqtts://gw1@{broker.host}:{broker.port}?ca={ca}&password_file={secret}"
    op_url = f"mqtts://operator:op@{broker.host}:{broker.port}?ca={ca}"
    store = EventStore(tmp_path / "events.sqlite")
    pub = HealthPublisher(parse_broker(gw_url), "gw1", tmp_path)
    try:
        with Collector(parse_broker(op_url), store) as col:
            col.link.wait_connected(10)
            pub.link.wait_connected(10)
            pub.publish_status({"v": 1, "gateway": "gw1", "online": True, "healthy": True,
                                "state": "running", "updated": time.time(),
                                "status_interval_s": 10, "flows": {}, "models": {},
                                "outbox": {}})
            with MqttSink.from_url(gw_url, gateway="gw1") as sink:
                assert sink.wait_connected(10)
                sink.send([Event("alarm", "linky", 1.7e9, score=5.0, seq=0)])
            deadline = time.monotonic() + 10
            while store.count() < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
        assert store.count() == 1
        done = subprocess.run([sys.executable, "-m", "frugalai", "fleet", "status", "--broker",
                               op_url, "--json", "--wait", "2"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert done.returncode == 0, done.stderr
        assert [v["verdict"] for v in json.loads(done.stdout)] == ["ok"]
    finally:
        pub.close()
        store.close()


def test_a_broker_certificate_from_another_ca_is_a_clear_error(tls: Any, tmp_path: Path
                                                               ) -> None:
    broker, _ = tls
    other_ca, _, _ = _make_ca(tmp_path, "other")
    done = subprocess.run([sys.executable, "-m", "frugalai", "fleet", "status", "--broker",
                           f"mqtts://operator:op@{broker.host}:{broker.port}?ca={other_ca}"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1
    assert "TLS: the broker's certificate was not accepted" in done.stderr, done.stderr
