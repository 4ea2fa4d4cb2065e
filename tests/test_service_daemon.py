"""The real ``frugalai run`` process: emulated meters on ptys, a real Mosquitto, signals, crashes.

Every test runs the daemon as a subprocess, exactly as systemd would, against TIC emulators on
real pseudo-terminals; events go through the MQTT uplink (QoS 1) to a real Mosquitto started on
a free loopback port, where a paho subscriber counts them by id.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from service_helpers import (
    ROOT,
    Daemon,
    NotifySocket,
    Received,
    ReceivedFile,
    created_ids,
    flow_toml,
    gateway_toml,
    pending_count,
    start_meter,
    status,
    wait_for,
)

from frugalai import registry
from frugalai.runtime.bundle import write_card
from frugalai.sim.tic_meter import TicMeterEmulator


@pytest.fixture
def meters(tmp_path: Path) -> Iterator[dict[str, TicMeterEmulator]]:
    started = {name: start_meter(tmp_path / f"tty{name}") for name in ("a", "b")}
    yield started
    for meter in started.values():
        meter.close()


@pytest.fixture
def received(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Where the daemon's events arrive: a real Mosquitto and a paho subscriber (the MQTT
    uplink, QoS 1); on a branch without the MQTT uplink, the JSON-lines file uplink."""
    if "mqtt" in registry.uplinks.names():
        sub: Any = Received(request.getfixturevalue("mosquitto"))
    else:
        print("MQTT uplink not built in here: events go to a file:// uplink")
        sub = ReceivedFile(tmp_path / "events.jsonl")
    yield sub
    sub.close()


def write_config(tmp_path: Path, received: Any, names: tuple[str, ...] = ("a", "b"),
                 extra: str = "") -> Path:
    flows = [flow_toml(n, tmp_path / f"tty{n}", i + 1) for i, n in enumerate(names)]
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "state", flows, [received.url], extra))
    return config


def events_of(ids: dict[str, int], flow: str) -> int:
    return sum(1 for i in ids if i.startswith(flow + ":"))


def test_ready_watchdog_and_clean_stop_with_outbox_flushed(
        tmp_path: Path, meters: dict, received: Any) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    config = write_config(tmp_path, received)
    daemon = Daemon(config, tmp_path / "log.txt",
                    env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"})
    try:
        msgs = notify.collect(lambda m: any("READY=1" in x for x in m)
                              and m.count("WATCHDOG=1") >= 3)
        assert any(m.startswith("READY=1") and "STATUS=2/2 flows running" in m for m in msgs)
        assert msgs.count("WATCHDOG=1") >= 3, msgs
        wait_for(lambda: events_of(received.ids(), "a") >= 2
                 and events_of(received.ids(), "b") >= 2, what="events from both flows")
        # Health while running: `frugalai status` and the node_exporter textfile.
        shown = subprocess.run([sys.executable, "-m", "frugalai", "status", "--config",
                                str(config)], capture_output=True, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert shown.stdout.startswith("service: running")
        assert re.search(r"flow a: running, [1-9][0-9.]* readings/s, decode errors 0", shown.stdout)
        assert "model threshold (builtin:threshold); last event" in shown.stdout
        assert re.search(r"uplink (mqtt|file)://\S+: ok, [0-9]+ sent", shown.stdout)
        prom = (tmp_path / "state" / "frugalai.prom").read_text()
        assert "frugalai_up 1" in prom and 'frugalai_flow_up{flow="b"} 1' in prom
        assert re.search(r'frugalai_flow_readings_total\{flow="a"\} [1-9]', prom)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.log_text()
        notify.collect(lambda m: any(x.startswith("STOPPING=1") for x in m), timeout=2)
    finally:
        if daemon.alive():
            daemon.kill()
        notify.close()
    assert any(x.startswith("STOPPING=1") for x in notify.messages)
    assert pending_count(tmp_path / "state") == 0, "outbox not flushed"
    created = created_ids(tmp_path / "state")
    assert received.settle(created)
    assert set(received.ids()) == created
    assert "stopped:" in daemon.log_text() and "0 left in the outbox" in daemon.log_text()


def test_sigkill_at_random_moments_loses_nothing_and_dedups_by_id(
        tmp_path: Path, meters: dict, received: Any) -> None:
    config = write_config(tmp_path, received)
    state = tmp_path / "state"
    rng = random.Random(7)
    kills = 22
    for _ in range(kills):
        daemon = Daemon(config, tmp_path / "log.txt")
        time.sleep(rng.uniform(0.3, 3.0))
        assert daemon.alive(), daemon.log_text()
        daemon.kill()
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        before = len(created_ids(state))
        wait_for(lambda: len(created_ids(state)) >= before + 2 and pending_count(state) == 0,
                 30, "new events after the last restart, and the backlog delivered")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.alive():
            daemon.kill()
    created = created_ids(state)
    assert len(created) >= kills // 2, f"too few events to test: {len(created)}"
    assert pending_count(state) == 0
    assert received.settle(created)
    delivered = received.ids()
    assert set(delivered) == created, (
        f"lost: {sorted(created - set(delivered))}, unknown: {sorted(set(delivered) - created)}")
    # At-least-once transport: a kill between the PUBACK and the outbox commit resends. Dedup
    # by id at the receiver leaves each event exactly once.
    dupes = sum(n - 1 for n in delivered.values())
    print(f"{kills} SIGKILLs: {len(created)} events created, all delivered; {dupes} duplicate "
          f"deliveries removed by id")


def test_a_vanished_device_comes_back_while_other_flows_go_on(
        tmp_path: Path, meters: dict, received: Any) -> None:
    daemon = Daemon(write_config(tmp_path, received), tmp_path / "log.txt")
    try:
        wait_for(lambda: events_of(received.ids(), "a") >= 1 and events_of(received.ids(), "b"),
                 what="events from both flows")
        meters["a"].port.unplug()
        wait_for(lambda: status(tmp_path / "state").get("flows", {}).get("a", {})
                 .get("device_up") is False, what="flow a reported down")
        b_before = events_of(received.ids(), "b")
        a_before = events_of(received.ids(), "a")
        wait_for(lambda: events_of(received.ids(), "b") >= b_before + 2,
                 what="flow b producing while a's device is gone")
        # at most one window in flight, and the health event of the gap (a live source silent
        # for 2.5 periods: frugalai.health)
        assert events_of(received.ids(), "a") <= a_before + 2
        meters["a"].port.plug()
        wait_for(lambda: events_of(received.ids(), "a") >= a_before + 3, what="flow a back")
        wait_for(lambda: status(tmp_path / "state")["flows"]["a"]["device_up"],
                 what="flow a reported up")
        flows = status(tmp_path / "state")["flows"]
        assert flows["a"]["outages"] == 1 and flows["a"]["device_up"]
        assert flows["b"]["outages"] == 0
        assert daemon.alive()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.alive():
            daemon.kill()
    log = daemon.log_text()
    assert "device lost" in log and "device back" in log


def test_sighup_with_a_broken_config_keeps_the_old_one(
        tmp_path: Path, meters: dict, received: Any) -> None:
    config = write_config(tmp_path, received, names=("a",))
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        wait_for(lambda: events_of(received.ids(), "a") >= 1, what="events from flow a")
        good = config.read_text()
        config.write_text(good.replace("window_s = 1", "window_s = 1\nwindow_sec = 2"))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in daemon.log_text(), what="the refusal logged")
        assert "flow[0].window_sec: unknown key" in daemon.log_text()
        before = events_of(received.ids(), "a")
        wait_for(lambda: events_of(received.ids(), "a") >= before + 2,
                 what="flow a still producing on the old config")
        assert status(tmp_path / "state")["reloads_refused"] == 1
        # A valid change is applied; the unchanged flow keeps running (no restart).
        write_config(tmp_path, received, names=("a", "b"))
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: events_of(received.ids(), "b") >= 1, what="the new flow b")
        st = status(tmp_path / "state")
        assert st["reloads"] == 1 and set(st["flows"]) == {"a", "b"}
        assert "1 flow(s) kept, started: b" in daemon.log_text()
        # `models install` asks the running service to reload (flows keep running).
        bundle = tmp_path / "bundle"
        bundle.mkdir()
        np.savez(bundle / "weights.npz", w=np.ones(3))
        write_card(bundle, {"name": "anomaly", "version": "2.0"})
        out = subprocess.run([sys.executable, "-m", "frugalai", "models", "install",
                              str(bundle), "--config", str(config)], capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert out.returncode == 0, out.stderr
        assert f"asked the running service (pid {daemon.proc.pid}) to reload" in out.stdout
        wait_for(lambda: status(tmp_path / "state").get("reloads") == 2, what="second reload")
        assert "2 flow(s) kept, started: none" in daemon.log_text()
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.alive():
            daemon.kill()


def test_journald_lines_carry_no_timestamp(tmp_path: Path, meters: dict) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JOURNAL_STREAM": "8:12345"}
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "state", [flow_toml("a", tmp_path / "ttya", 1)],
                                   [f"file://{tmp_path / 'events.jsonl'}"]))
    proc = subprocess.run([sys.executable, "-m", "frugalai", "run", "--config", str(config),
                           "--duration", "1"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines and lines[0].startswith("INFO frugalai.service: running 1 flow(s)"), lines
    assert not any(re.match(r"\d{4}-\d\d-\d\d", line) for line in lines)
