"""A gateway that comes back by itself: the real ``frugalai run`` on two emulated TIC meters
(real ptys), one flow at TIC's 7E1, one at 8N1, through everything the fleet does to it.

A policy edit and a model rollout (``models install``, which sends SIGHUP) swap the flow on its
open port: its reading count goes on. A source change reopens the port (7E1 on a pty opened
before: refused with EINVAL on this kernel, read at 8N1 in software). A meter unplugged shows
its flow ``degraded`` with the reason, ``frugalai status`` exits 1 and ``doctor`` says so; the
flow is healthy again on its own once the meter is back. A restart of the process, too.

60 s is the deadline for "comes back without a human", not a speed claim (the machine is
loaded; the heal time is whatever the backoff and the meters give).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from service_helpers import ROOT, Daemon, gateway_toml, start_meter, status, wait_for
from test_service_models import SHIPPED, copy_bundle, run_cli

from frugalai.service.doctor import FAIL, OK, check_running_flows

pytestmark = pytest.mark.skipif(not SHIPPED.is_dir(),
                                reason="the shipped models/energy-anomaly bundle is missing")

#: the deadline for every flow to be healthy again after an action (not a speed claim)
HEAL_S = 60.0
FRAMING = {"a": "", "b": "&bytesize=8&parity=N"}  # a: TIC's 7E1, b: 8N1


def write_config(tmp_path: Path, *, max_per_hour: int = 0, tail: str = "") -> Path:
    flows = [f"""
[[flow]]
name = "{name}"
source = "serial://{tmp_path / f'tty{name}'}?protocol=tic&mode=historique{framing}{tail}"
sensor_id = {i + 1}
model = "energy-anomaly"
backend = "reference"
precision = "int8"
  [flow.policy]
  max_per_hour = {max_per_hour}
""" for i, (name, framing) in enumerate(FRAMING.items())]
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "state", flows,
                                   [f"file://{tmp_path / 'events.jsonl'}"]))
    return config


def flows(state: Path) -> dict[str, Any]:
    return dict(status(state).get("flows") or {})


def all_healthy(state: Path, after: dict[str, int]) -> bool:
    """Every flow running, its device up, and reading past ``after`` (readings counted)."""
    st = status(state)
    fl = st.get("flows") or {}
    return st.get("state") == "running" and set(fl) == set(FRAMING) and all(
        fl[n]["state"] == "running" and fl[n]["device_up"] and not fl[n].get("why")
        and fl[n]["readings"] > after.get(n, 0) for n in FRAMING)


def readings(state: Path) -> dict[str, int]:
    return {n: int(f["readings"]) for n, f in flows(state).items()}


def cli_status(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frugalai", "status", "--state-dir",
                           str(tmp_path / "state")], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)


def test_every_flow_comes_back_after_reload_rollout_unplug_and_restart(tmp_path: Path) -> None:
    meters = {n: start_meter(tmp_path / f"tty{n}") for n in FRAMING}
    state = tmp_path / "state"
    config = write_config(tmp_path)
    first = run_cli("models", "install", str(copy_bundle(tmp_path / "v1", "1")), "--config",
                    str(config))
    assert first.returncode == 0, first.stderr
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        wait_for(lambda: all_healthy(state, {n: 10 for n in FRAMING}), HEAL_S, "both flows")
        assert cli_status(tmp_path).returncode == 0

        # 1. a policy value changes: the flows are swapped on their open ports
        before = readings(state)
        write_config(tmp_path, max_per_hour=30)
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "new model/settings on the open source: a, b" in daemon.log_text(),
                 HEAL_S, "the policy reload")
        wait_for(lambda: all_healthy(state, before), HEAL_S, "both flows after the policy edit")

        # 2. a rollout: models install sends SIGHUP; the model changes, the ports stay open
        before = readings(state)
        second = run_cli("models", "install", str(copy_bundle(tmp_path / "v2", "2")),
                         "--config", str(config))
        assert second.returncode == 0, second.stderr
        wait_for(lambda: all(f["model_version"].startswith("2@")
                             for f in flows(state).values()), HEAL_S, "version 2 on both")
        wait_for(lambda: all_healthy(state, before), HEAL_S, "both flows after the rollout")
        assert all(f["outages"] == 0 for f in flows(state).values())

        # 3. the source URL changes: new sources reopen the ports (7E1 twice on one pty)
        before = readings(state)
        write_config(tmp_path, max_per_hour=30, tail="&time=wall")
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: daemon.log_text().count("started: a, b") == 1, HEAL_S,
                 "the source reload")
        # the counts are lifetime ones: past what the old sources read, not from zero (the
        # old sources read a little after `before`: the framing says the new ones are open)
        wait_for(lambda: all_healthy(state, before) and all(
            f["framing"] for f in flows(state).values()), HEAL_S, "both flows on reopened ports")
        assert flows(state)["b"]["framing"] == "8N1"
        assert flows(state)["a"]["framing"].startswith("7E1"), flows(state)["a"]

        # 4. meter a unplugged: flow a degraded with the reason, said by status and doctor
        meters["a"].port.unplug()
        wait_for(lambda: flows(state)["a"]["state"] == "degraded", HEAL_S, "a degraded")
        why = flows(state)["a"]["why"]
        assert why.startswith("device down:") and "ttya" in why, why
        down = cli_status(tmp_path)
        assert down.returncode == 1 and "flow a: degraded" in down.stdout, down.stdout
        checks = {c.name: c for c in check_running_flows(str(state))}
        assert checks["flow a"].mark == FAIL and "ttya" in checks["flow a"].detail
        assert checks["flow b"].mark == OK
        before = readings(state)
        meters["a"].port.plug()
        wait_for(lambda: all_healthy(state, before), HEAL_S, "flow a back after the replug")
        assert cli_status(tmp_path).returncode == 0

        # 5. a restart of the process: the counters (state dir) go on from where they were
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        before, raw_before = readings(state), status(state)["bytes"]["raw_read"]
        assert raw_before > 0 and min(before.values()) > 0
        daemon = Daemon(config, tmp_path / "log2.txt")
        daemon.wait_running(state)
        assert status(state)["bytes"]["raw_read"] >= raw_before
        wait_for(lambda: all_healthy(state, before), HEAL_S, "both flows after the restart")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.alive():
            daemon.kill()
        for meter in meters.values():
            meter.close()
