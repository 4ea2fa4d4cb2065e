"""The MQTT uplink against a real Mosquitto: outages, SIGKILL, TLS, auth, overflow, discovery."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from frugalai import registry
from frugalai.errors import ConfigError, UplinkError
from frugalai.events.codec import decode_binary
from frugalai.events.event import Event
from frugalai.pipeline import Pipeline
from frugalai.uplink.outbox import Outbox

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (extra 'mqtt')")

from mqtt_broker import MOSQUITTO, Mosquitto
from mqtt_subscriber import Subscriber

from frugalai.uplink.mqtt import MqttSink

ROOT = Path(__file__).resolve().parents[1]
FAST = "retry_min=1&retry_max=2&timeout=5"


def events(n: int, sensor: str = "linky", kind: str = "alarm", t0: float = 1.7e9) -> list[Event]:
    return [Event(kind, sensor, t0 + i, score=5.0, value=100.0 + i, sensor_id=1)
            for i in range(n)]


def wait_until(cond, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def assert_in_order_without_loss(received: list[str], expected: list[str]) -> None:
    assert set(received) == set(expected), f"missing: {sorted(set(expected) - set(received))[:10]}"
    first_seen = list(dict.fromkeys(received))
    for sensor in {i.split(":")[0] for i in expected}:
        seqs = [int(i.split(":")[1]) for i in first_seen if i.startswith(sensor + ":")]
        assert seqs == sorted(seqs), f"{sensor}: out of order {seqs[:20]}"


def test_registry_knows_mqtt_and_mqtts() -> None:
    assert {"mqtt", "mqtts"} <= set(registry.uplinks.names())


@pytest.mark.parametrize("url, message", [
    ("mqtt://host?codec=xml", "unknown codec .xml.; known: .*json"),
    ("mqtt://host?qos=0", "qos must be 1 or 2"),
    ("mqtt://host?topic=a/{nope}", "may use only"),
    ("mqtt://host?topic=a/%23", "wildcards"),
    ("mqtt://host?ca=/x.pem", "need the mqtts:// scheme"),
    ("mqtt://u:p@host?password_env=X", "give the password once"),
    ("mqtt://host?password_env=FRUGALAI_TEST_UNSET_VAR", "password needs a user name"),
    ("mqtt://u@host?password_env=FRUGALAI_TEST_UNSET_VAR", "is not set"),
    ("mqtt://u@host?password_file=/nonexistent/pass", "cannot read password_file"),
    ("mqtt://host?ha_discovery=1&codec=binary", "needs codec=json"),
    ("mqtt://host?bogus=1", "unknown option"),
    ("mqtts://host?ca=/nonexistent/ca.pem", "TLS files"),
])
def test_bad_urls_name_the_problem(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        MqttSink.from_url(url, key="uplink[0].url")
    assert info.value.key == "uplink[0].url"


def test_outage_events_accumulate_then_all_arrive_in_order(mosquitto: Mosquitto,
                                                            tmp_path: Path) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, ("frugalai/gw/+/event", "frugalai/gw/status"))
    sink = MqttSink.from_url(f"{mosquitto.url}?{FAST}", gateway="gw")
    box = Outbox(tmp_path / "outbox.sqlite")
    pipeline = Pipeline([], box, [sink])
    try:
        assert sink.wait_connected(10), sink.last_error
        box.append_many(events(5, "linky") + events(5, "water", kind="class"))
        assert pipeline.flush() == 10
        assert sub.wait_ids(10)

        mosquitto.stop()
        assert wait_until(lambda: not sink._connected.is_set())
        for k in range(5):  # events keep coming during the outage, in several batches
            box.append_many(events(8, "linky", t0=1.8e9 + 10 * k) + events(2, "water", "clear"))
            assert pipeline.flush() == 0
        assert box.depth() == 50
        with pytest.raises(UplinkError, match="not connected"):
            sink.send(box.pending(5))

        mosquitto.start()
        assert sink.wait_connected(20), sink.last_error
        assert sub.subscribed.wait(20)
        assert pipeline.flush() == 50 and box.depth() == 0
        assert sub.wait_ids(60), f"got {len(set(sub.ids()))} distinct ids"
    finally:
        pipeline.close()
        sub.close()
    expected = [f"linky:{i}" for i in range(45)] + [f"water:{i}" for i in range(15)]
    assert_in_order_without_loss(sub.ids(), expected)
    assert box is not None and sub.payloads("frugalai/gw/status")[-1] == b"offline"


def test_sigkill_mid_delivery_loses_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    n = 1500
    db = tmp_path / "state" / "outbox.sqlite"
    url = f"{mosquitto.url}?{FAST}"
    sub = Subscriber(mosquitto.host, mosquitto.port, ("frugalai/crash/+/event",
                                                      "frugalai/crash/status"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "tests" / "mqtt_driver.py"), str(db), url, str(n)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        assert sub.wait_ids(300, timeout=60), f"only {len(set(sub.ids()))} before the kill"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        with Outbox(db) as box:
            left = box.depth()
        assert 0 < left < n, f"the kill did not land mid-delivery ({left} pending of {n})"
        # The broker saw the connection die without DISCONNECT: it published the last will.
        assert sub.wait_for(lambda: b"offline" in sub.payloads("frugalai/crash/status"), 10)

        again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "stored" not in again.stdout, "the restarted process must not store them again"
        assert sub.wait_ids(n, timeout=30), f"{len(set(sub.ids()))} of {n} arrived"
    finally:
        if proc.poll() is None:
            proc.kill()
        sub.close()
    ids = sub.ids()
    expected = [f"s{s}:{i}" for s in (0, 1) for i in range(n // 2)]
    assert set(ids) == set(expected)
    duplicates = sum(c - 1 for c in Counter(ids).values())
    # At-least-once: only what was in flight at the kill may arrive twice (a batch is 10).
    assert duplicates <= 20, f"{duplicates} duplicates"
    with Outbox(db) as box:
        assert box.counts()["pending"] == 0 and box.counts()["stored"] == n


def _make_ca(tmp: Path, name: str):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def write(path: Path, key, cert) -> None:  # type: ignore[no-untyped-def]
        path.with_suffix(".key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        path.with_suffix(".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    write(tmp / f"{name}-ca", ca_key, ca)
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    write(tmp / f"{name}-server", key, cert)
    return tmp / f"{name}-ca.pem", tmp / f"{name}-server.pem", tmp / f"{name}-server.key"


@pytest.fixture
def tls_broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    pytest.importorskip("cryptography", reason="cryptography not installed (extra 'sign')")
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed: run scripts/install-sysdeps (make test does)")
    ca, cert, key = _make_ca(tmp_path, "good")
    broker = Mosquitto(tmp_path / "broker", users={"gw": "s3cret"}, tls=(ca, cert, key)).start()
    yield broker, ca
    broker.stop()


def test_tls_with_password_file_delivers(tls_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broker, ca = tls_broker
    secret = tmp_path / "mqtt.pass"
    secret.write_text("s3cret\n")
    sub = Subscriber(broker.host, broker.port, ("frugalai/+/+/event",), "gw", "s3cret", str(ca))
    url = f"mqtts://gw@{broker.host}:{broker.port}?ca={ca}&password_file={secret}&{FAST}"
    with MqttSink.from_url(url, gateway="tls") as sink:
        assert sink.wait_connected(10), sink.last_error
        sent = sink.send([replace_seq(e, i) for i, e in enumerate(events(3))])
        assert len(sent) == 3
    assert sub.wait_ids(3)
    sub.close()


def replace_seq(event: Event, seq: int) -> Event:
    from dataclasses import replace

    return replace(event, seq=seq)


def test_tls_wrong_password_is_a_clear_error(tls_broker, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    broker, ca = tls_broker
    monkeypatch.setenv("FRUGALAI_TEST_MQTT_PASS", "wrong")
    url = (f"mqtts://gw@{broker.host}:{broker.port}?ca={ca}"
           f"&password_env=FRUGALAI_TEST_MQTT_PASS&{FAST}")
    with MqttSink.from_url(url, gateway="tls") as sink:
        assert not sink.wait_connected(3)
        with pytest.raises(UplinkError, match=r"refused the connection: .*(authori|password).*"
                                              r"check the user name and password"):
            sink.send(events(1))


def test_tls_unknown_ca_is_a_clear_error(tls_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broker, _ = tls_broker
    other_ca, _, _ = _make_ca(tmp_path, "other")
    url = f"mqtts://gw:s3cret@{broker.host}:{broker.port}?ca={other_ca}&{FAST}"
    with MqttSink.from_url(url, gateway="tls") as sink:
        assert not sink.wait_connected(3)
        with pytest.raises(UplinkError, match="certificate was not accepted"):
            sink.send(events(1))


def test_outbox_cap_applies_policy_and_counts_while_broker_down(mosquitto: Mosquitto,
                                                                 tmp_path: Path) -> None:
    mosquitto.stop()
    sink = MqttSink.from_url(f"{mosquitto.url}?{FAST}", gateway="cap")
    box = Outbox(tmp_path / "o.sqlite", max_pending=20)
    pipeline = Pipeline([], box, [sink])
    try:
        for k in range(6):
            box.append_many(events(2, "linky", t0=1e9 + k * 10)
                            + events(5, "linky", kind="summary", t0=1e9 + k * 10 + 5))
            assert pipeline.flush() == 0
        counts = box.counts()
        assert counts == {"stored": 42, "sent": 0, "pending": 20, "dropped": 22}
        assert box.dropped("linky") == 22
        mosquitto.start()
        sub = Subscriber(mosquitto.host, mosquitto.port, ("frugalai/cap/+/event",))
        assert sink.wait_connected(20), sink.last_error
        assert pipeline.flush() == 20
        assert sub.wait_ids(20)
        got = sub.events()
        sub.close()
    finally:
        pipeline.close()
    kinds = Counter(e["kind"] for e in got)
    assert kinds == {"alarm": 12, "summary": 8}, "every alarm kept; the oldest summaries dropped"
    summary_seqs = sorted(e["seq"] for e in got if e["kind"] == "summary")
    newest = sorted(s for k in range(6) for s in range(7 * k + 2, 7 * k + 7))[-8:]
    assert summary_seqs == newest


def test_birth_will_discovery_and_binary_codec(mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port, ("#",))
    url = f"{mosquitto.url}?ha_discovery=1&client_id=gw-{{gateway}}&{FAST}"
    with MqttSink.from_url(url, gateway="mairie") as sink:
        assert sink.client_id == "gw-mairie"
        assert sink.wait_connected(10)
        sink.send([replace_seq(events(1)[0], 0)])
        assert sub.wait_for(lambda: len([m for m in sub.messages
                                         if m[0].startswith("homeassistant/")]) >= 3)
    assert sub.wait_for(lambda: sub.payloads("frugalai/mairie/status")[-1:] == [b"offline"])
    assert sub.payloads("frugalai/mairie/status")[0] == b"online"
    configs = {t: json.loads(p) for t, p, _ in sub.messages if t.startswith("homeassistant/")}
    alarm = configs["homeassistant/binary_sensor/mairie/linky_alarm/config"]
    assert alarm["state_topic"] == "frugalai/mairie/linky/event"
    assert alarm["availability_topic"] == "frugalai/mairie/status"
    assert {c["unique_id"] for c in configs.values()} == {
        "frugalai_mairie_linky_alarm", "frugalai_mairie_linky_score", "frugalai_mairie_linky_mean"}
    sub.close()
    # Discovery configs and the status are retained: a client that comes later still gets them.
    late = Subscriber(mosquitto.host, mosquitto.port, ("homeassistant/#", "frugalai/+/status"))
    assert late.wait_for(lambda: len(late.messages) >= 4)
    assert all(retained for _, _, retained in late.messages)
    late.close()

    sub = Subscriber(mosquitto.host, mosquitto.port, ("bin/#",))
    url = f"{mosquitto.url}?codec=binary&topic=bin/{{sensor_id}}/{{kind}}&{FAST}"
    with MqttSink.from_url(url, gateway="g") as sink:
        assert sink.wait_connected(10)
        sink.send([replace_seq(events(1)[0], 3)])
        assert sub.wait_for(lambda: len(sub.messages) >= 1)
    topic, payload, _ = sub.messages[0]
    assert topic == "bin/1/alarm" and len(payload) == 11
    assert decode_binary(payload)["seq"] == 3
    sub.close()
