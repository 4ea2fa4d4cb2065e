"""A broker that flaps (up 5 s / down 5 s for a minute) under the real ``frugalai run``.

The short version of the ``flapping`` scenario of benchmarks/soak.py (which also measures the
daemon's CPU; no timing is asserted here): every event the outbox numbered reaches a real
subscriber, and the daemon's log says the flapping once and then counts it, instead of a few
lines per outage (a link that fails again within minutes of coming back is the same fault).
"""

from __future__ import annotations

import re
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from mqtt_broker import MOSQUITTO, Mosquitto
from mqtt_subscriber import Subscriber
from service_helpers import Daemon, created_ids, gateway_toml, pending_count, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto is not installed "
                                 "(scripts/install-sysdeps installs it)")]

T0 = 1_700_000_000
FLOWS = 4
OUTAGES = 6


def square_csv(path: Path, seconds: int) -> Path:
    """0.5-s rows alternating 500 VA / 3000 VA every second: one event per 1-s window."""
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(seconds * 2):
            fh.write(f"{T0 + i * 0.5:.1f},{3000 if (i // 2) % 2 else 500}\n")
    return path


def flow(name: str, csv: Path, sensor_id: int) -> str:
    return f"""
[[flow]]
name = "{name}"
source = "replay://{csv}?speed=1&end=wait&value=value:apparent_power_va:VA"
sensor_id = {sensor_id}
quantity = "apparent_power_va"
aggregate = "mean"
window_s = 1
summary_s = 0
model = "threshold"
  [flow.policy]
  on = 2000.0
  off = 1000.0
"""


def test_a_flapping_broker_loses_nothing_and_is_logged_once_then_counted(
        tmp_path: Path) -> None:
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (extra 'mqtt')")
    broker = Mosquitto(tmp_path / "broker", persistence=True).start()  # keeps sub's session
    sub = Subscriber(broker.host, broker.port, ("frugalai/+/+/event",), persistent=True)
    csv = square_csv(tmp_path / "square.csv", 600)
    state = tmp_path / "state"
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(state, [flow(f"f{i}", csv, i + 1) for i in range(FLOWS)],
                                   [f"{broker.url}?timeout=3"]))
    log = tmp_path / "daemon.log"
    daemon = Daemon(config, log)
    try:
        daemon.wait_running(state, 60)
        wait_for(lambda: len(set(sub.ids())) >= FLOWS, 30, "the first events delivered")
        before = len(daemon.log_text().splitlines())
        for _ in range(OUTAGES):
            broker.stop()
            time.sleep(5)
            broker.start()
            time.sleep(5)
        during = daemon.log_text().splitlines()[before:]
        wait_for(lambda: pending_count(state) == 0, 180, "the outbox emptied after the flapping")
        time.sleep(1)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0, daemon.log_text()[-3000:]
        created = created_ids(state)
        assert sub.wait_for(lambda: set(sub.ids()) >= created, 30)
    finally:
        if daemon.alive():
            daemon.kill()
        sub.close()
        broker.stop()
    got = Counter(sub.ids())
    lost = created - set(got)
    assert len(created) >= 10 * OUTAGES * FLOWS, len(created)  # events on both sides of each
    assert not lost, sorted(lost)[:10]
    assert not set(got) - created
    # One episode: each message at most once (its count every 5 min, beyond this minute),
    # whereas each outage used to write its disconnect, refusal, reconnection, "uplink down"
    # and "uplink back" lines again: about 5 x 6 here.
    messages = Counter(re.sub(r"[0-9]+", "N", line.split(" ", 2)[-1]) for line in during)
    assert len(during) <= 12, during
    assert max(messages.values(), default=0) <= 2, during
