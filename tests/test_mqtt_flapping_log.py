"""A broker that flaps writes a few log lines, not three per flap; an outage after the link
stayed up is news again. The MQTT uplink against a real Mosquitto stopped and started."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (extra 'mqtt')")

from mqtt_broker import MOSQUITTO, Mosquitto

from frugalai.uplink import mqtt as mqtt_uplink
from frugalai.uplink.mqtt import MqttSink

pytestmark = pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed: run "
                                                          "scripts/install-sysdeps")


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "frugalai.mqtt" and r.levelno >= logging.INFO]


def flap(broker: Mosquitto, sink: MqttSink) -> None:
    broker.stop()
    deadline = time.monotonic() + 20
    while sink._connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # a reconnect attempt is refused meanwhile
    broker.start()
    assert sink.wait_connected(20)


def test_flaps_are_counted_and_a_later_outage_is_news(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mqtt_uplink, "LINK_SETTLE_S", 4.0)
    broker = Mosquitto(tmp_path / "broker").start()
    sink = MqttSink.from_url(f"{broker.url}?retry_min=1&retry_max=1&timeout=3", gateway="gw")
    try:
        assert sink.wait_connected(20)
        with caplog.at_level(logging.INFO, logger="frugalai.mqtt"):
            for _ in range(4):
                flap(broker, sink)
            during = lines(caplog)
            time.sleep(4.5)  # the link stays up past LINK_SETTLE_S: the episode is over
            sink.send([])  # the delivery thread's regular call writes the counts
            flap(broker, sink)
        after = lines(caplog)[len(during):]
    finally:
        sink.close()
        broker.stop()
    # 4 flaps: the first disconnect, refusal and reconnect, nothing per later flap
    assert 2 <= len(during) <= 3, during
    assert any("disconnected" in x for x in during)
    # then the counts, and the next outage written again
    assert any("more in the last" in x for x in after), after
    assert any("disconnected" in x and "more in the last" not in x for x in after), after


def test_the_episode_rule_doctests() -> None:
    import doctest

    from frugalai import retry

    assert doctest.testmod(retry).failed == 0
