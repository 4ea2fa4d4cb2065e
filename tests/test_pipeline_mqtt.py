"""End to end with real parts: emulated Linky on a pty -> pipeline -> real Mosquitto.

Alarms and the periodic summaries (the heartbeat that makes silence mean "gateway dead")
arrive at the broker as JSON; the summary counts what the flow really saw.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (extra 'mqtt')")

from mqtt_subscriber import Subscriber

from frugalai.config import FlowConfig, PolicyConfig, loads_config
from frugalai.demo import DEMO_START, fit_history
from frugalai.pipeline import Flow, Pipeline
from frugalai.sim.clock import SimClock
from frugalai.sim.household import HouseholdProfile, demo_anomalies
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.sources.serial_source import SerialSource
from frugalai.uplink.mqtt import MqttSink
from frugalai.uplink.outbox import Outbox


def test_linky_on_a_pty_to_mqtt_with_alarms_and_summaries(mosquitto, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seconds, hours = 8.0, 48.0
    clock = SimClock(DEMO_START, hours * 3600 / seconds)
    house = HouseholdProfile(seed=1, anomalies=demo_anomalies(DEMO_START))
    meter = TicMeterEmulator(house, clock, frame_period_s=60.0, corrupt_rate=0.02, seed=1)
    scorer = fit_history(1, 28)
    policy = scorer.model.card["policy"]
    config = FlowConfig(name="linky", source=f"serial://{meter.path}?protocol=tic", sensor_id=1,
                        policy=PolicyConfig(on=policy["on"], off=policy["off"],
                                            debounce=policy["debounce"]), summary_s=2)
    source = SerialSource(meter.path, sensor="linky", protocol="tic", mode="historique",
                          clock=clock)
    flow = Flow(config, source, scorer)
    sub = Subscriber(mosquitto.host, mosquitto.port, ("frugalai/mairie/#",))
    sink = MqttSink.from_url(f"{mosquitto.url}?retry_min=1&retry_max=2", gateway="mairie")
    assert sink.wait_connected(10)
    pipeline = Pipeline([flow], Outbox(tmp_path / "outbox.sqlite"), [sink])
    try:
        meter.start(until=DEMO_START + hours * 3600)
        pipeline.run(threading.Event(), duration=seconds)
        pipeline.emit_summaries(force=True)
        pipeline.flush()
        got = pipeline.summary()
    finally:
        meter.close()
        pipeline.close()
    assert sub.wait_ids(got["outbox"]["stored"], timeout=10)
    sub.close()
    events = sub.events()
    summaries = [e for e in events if e["kind"] == "summary"]
    assert any(e["kind"] == "alarm" for e in events)
    assert len(summaries) >= 3
    assert sum(s["stats"]["readings"] for s in summaries) == got["readings"]
    assert sum(s["stats"]["windows"] for s in summaries) == got["flows"]["linky"]["windows"]
    assert sum(s["stats"]["errors"] for s in summaries) == got["frames_rejected"] > 0
    assert sum(s["stats"]["events"] for s in summaries) == got["flows"]["linky"]["events"]
    full = [s["stats"] for s in summaries if s["stats"]["windows"]]
    assert full and all(s["min"] <= s["mean"] <= s["max"] for s in full)
    assert got["outbox"]["pending"] == 0


def test_config_keys_for_outbox_and_summaries() -> None:
    from frugalai.errors import ConfigError

    cfg = loads_config({"gateway": {"outbox_max": 10, "outbox_sync": "full"},
                        "flow": [{"name": "a", "source": "serial:///dev/x", "summary_s": 0,
                                  "policy": {"max_per_hour": 2.0}}]})
    assert cfg.gateway.outbox_max == 10 and cfg.flow[0].summary_s == 0
    for data, key in (({"gateway": {"outbox_sync": "often"}}, "gateway.outbox_sync"),
                      ({"gateway": {"outbox_max": 0}}, "gateway.outbox_max"),
                      ({"flow": [{"name": "a", "source": "s://", "summary_s": -1}]},
                       "flow[0].summary_s"),
                      ({"flow": [{"name": "a", "source": "s://", "policy": {"burst": 0}}]},
                       "flow[0].policy.burst")):
        data.setdefault("flow", [{"name": "a", "source": "serial:///dev/x"}])
        with pytest.raises(ConfigError) as info:
            loads_config(data)
        assert info.value.key == key
