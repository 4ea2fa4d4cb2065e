"""Fleet health over a real Mosquitto: a real ``frugalai run`` publishes its retained status
(``fleet=1`` on its MQTT uplink), ``frugalai fleet status`` lists it, and the gateway's last
will marks it offline when the process dies without a word."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from service_helpers import ROOT, Daemon, flow_toml, gateway_toml, start_meter, wait_for

from frugalai.fleet import status as fstatus
from frugalai.fleet.health import HealthPublisher, read_statuses
from frugalai.fleet.link import parse_broker


def fleet_status(broker: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frugalai", "fleet", "status", "--broker",
                           broker.url, "--wait", "2", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)


def verdicts(broker: Any, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    done = fleet_status(broker, "--json", *args)
    return done.returncode, {v["gateway"]: v for v in json.loads(done.stdout or "[]")}


def test_a_running_gateway_is_listed_healthy_and_its_last_will_marks_it_offline(
        mosquitto: Any, tmp_path: Path) -> None:
    meter = start_meter(tmp_path / "ttya")
    state = tmp_path / "state"
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(state, [flow_toml("linky", tmp_path / "ttya", 1)],
                                   [f"{mosquitto.url}?fleet=1&fleet_interval=0.5&keepalive=5"]))
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        wait_for(lambda: (verdicts(mosquitto)[1].get("test-gw", {}).get("status", {})
                          .get("last_event_ts")) is not None, 40, "a status with an event")
        code, got = verdicts(mosquitto)
        gw = got["test-gw"]
        assert code == 0 and gw["verdict"] == "ok", gw
        st = gw["status"]
        assert st["online"] and st["flows"]["linky"]["state"] == "running"
        assert st["flows"]["linky"]["model_version"] == "builtin:threshold"
        assert st["outbox"]["lost"] == 0 and st["version"]
        table = fleet_status(mosquitto)
        assert table.returncode == 0 and "test-gw" in table.stdout and " ok " in table.stdout
        assert "1 gateway(s), 0 flagged" in table.stdout
        daemon.kill()  # no clean disconnect: only the broker's last will can tell
        wait_for(lambda: verdicts(mosquitto)[1]["test-gw"]["verdict"] == "offline", 30,
                 "the last will")
        code, got = verdicts(mosquitto)
        assert code == 1 and got["test-gw"]["why"] == "connection lost (last will)"
    finally:
        if daemon.alive():
            daemon.kill()
        meter.close()


def test_a_clean_stop_says_offline_too(mosquitto: Any, tmp_path: Path) -> None:
    meter = start_meter(tmp_path / "ttya")
    state = tmp_path / "state"
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(state, [flow_toml("linky", tmp_path / "ttya", 1)],
                                   [f"{mosquitto.url}?fleet=1"]))
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        wait_for(lambda: "test-gw" in read_statuses(parse_broker(mosquitto.url), 1.0), 20,
                 "a status")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        code, got = verdicts(mosquitto)
        assert code == 1 and got["test-gw"]["verdict"] == "offline"
        assert got["test-gw"]["why"] == "stopped"
    finally:
        if daemon.alive():
            daemon.kill()
        meter.close()


def snap(**over: Any) -> dict[str, Any]:
    base = {"version": "0.1", "state": "running", "healthy": True, "updated": time.time(),
            "status_interval_s": 10,
            "flows": {"linky": {"state": "running", "device_up": True, "model": "threshold",
                                "model_version": "builtin:threshold"}},
            "outbox": {"depth": 0, "oldest_age_s": None, "lost": 0, "dropped": 0,
                       "last_event": {}}}
    return {**base, **over}


def test_stale_and_degraded_gateways_are_flagged(mosquitto: Any, tmp_path: Path) -> None:
    broker = parse_broker(mosquitto.url)
    pubs = {name: HealthPublisher(broker, name, tmp_path) for name in ("good", "old", "sick")}
    try:
        for p in pubs.values():
            p.link.wait_connected(10)
        pubs["good"].publish(snap())
        pubs["old"].publish(snap(updated=time.time() - 120))
        pubs["sick"].publish(snap(healthy=False, flows={"linky": {
            "state": "running", "device_up": False, "last_error": "no frame for 30 s",
            "model": "threshold"}}))
        wait_for(lambda: len(read_statuses(broker, 1.0)) == 3, 10, "3 statuses")
        code, got = verdicts(mosquitto)
        assert code == 1
        assert {g: v["verdict"] for g, v in got.items()} == {
            "good": "ok", "old": "stale", "sick": "degraded"}
        assert got["sick"]["why"] == "flow linky running, device down: no frame for 30 s"
        code, got = verdicts(mosquitto, "--stale-s", "600")
        assert got["old"]["verdict"] == "ok"
    finally:
        for p in pubs.values():
            p.close()


def test_judge_reads_garbage_as_degraded_not_a_crash() -> None:
    v = fstatus.judge("gw", b"not json", time.time())
    assert v.verdict == "degraded" and v.why.startswith("unreadable status")


def test_an_unchanged_status_waits_its_interval_but_not_after_a_reconnect(
        mosquitto: Any, tmp_path: Path) -> None:
    broker = parse_broker(mosquitto.url)
    pub = HealthPublisher(broker, "gw", tmp_path, interval_s=600)
    try:
        pub.link.wait_connected(10)
        pub.publish(snap())
        pub.publish(snap())  # nothing changed: not sent again within 600 s
        assert pub.published == 1
        mosquitto.restart()  # no persistence: the retained status is gone with the broker
        wait_for(lambda: pub.link.connections == 2 and pub.link.connected.is_set(), 20,
                 "the reconnection")
        pub.publish(snap())
        assert pub.published == 2
        wait_for(lambda: "gw" in read_statuses(broker, 1.0), 10, "the status again")
    finally:
        pub.close()


def test_the_status_names_the_models_installed_in_the_default_models_dir_and_gateway_time(
        mosquitto: Any, tmp_path: Path) -> None:
    """Found by following docs/fleet.md: a gateway leaving models_dir unset (bundles go to
    <state_dir>/models) reported no model at all, and a meter's clock made the last event
    "-91099s ago"; the liveness of the last event is the gateway's own storing time."""
    import shutil

    from frugalai.config import loads_config
    from frugalai.fleet.health import for_config, model_info
    from frugalai.runtime.bundle import shipped_models_dir

    state = tmp_path / "state"
    shutil.copytree(shipped_models_dir() / "energy-anomaly", state / "models" / "energy-anomaly")
    cfg = loads_config({"gateway": {"id": "gw-m", "state_dir": str(state)},
                        "flow": [{"name": "linky", "source": "serial:///dev/null",
                                  "model": "energy-anomaly"}],
                        "uplink": [{"url": f"{mosquitto.url}?fleet=1"}]})
    publisher = for_config(cfg)
    assert publisher is not None
    try:
        assert Path(publisher.models_dir) == state / "models"
        assert model_info(publisher.models_dir, "energy-anomaly")["sha256"]
    finally:
        publisher.close()
    snap = {"state": "running", "healthy": True, "flows": {"linky": {
        "model": "energy-anomaly", "state": "running", "device_up": True}},
        "outbox": {"last_event": {"linky": {"ts": time.time() + 91099,
                                            "stored": time.time() - 5}}}}
    status = fstatus.from_snapshot("gw-m", snap, {"energy-anomaly": {"version": "", "sha256": "x"}})
    assert status["last_event_ts"] == snap["outbox"]["last_event"]["linky"]["stored"]
    line = fstatus.table([fstatus.judge("gw-m", json.dumps(status).encode(), time.time(),
                                        None)], time.time())[1]
    assert " 5s ago" in line or " 6s ago" in line, line
