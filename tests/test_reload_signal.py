"""``models install`` never signals a PID it cannot prove is the service (issue 14, item 3).

``status.json`` is written by the service user; a forged one naming another process must not
make ``models install`` (run as root) send it SIGHUP. A real ``sleep`` is the victim: SIGHUP
would kill it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from frugalai.cli import cli
from frugalai.runtime.bundle import write_card
from frugalai.service.reload import is_frugalai_run


def test_a_forged_status_file_does_not_get_another_process_signalled(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\nstate_dir = "{state}"\nmodels_dir = "{tmp_path / "m"}"\n'
                      '[[flow]]\nname = "a"\nsource = "serial:///dev/null?protocol=tic"\n')
    bundle = tmp_path / "b"
    bundle.mkdir()
    np.savez(bundle / "weights.npz", w=np.arange(3.0))
    write_card(bundle, {"name": "anomaly", "version": "1", "task": "anomaly"})
    victim = subprocess.Popen(["sleep", "60"])
    try:
        now = time.time()
        (state / "status.json").write_text(json.dumps({
            "state": "running", "pid": victim.pid, "started": now, "updated": now,
            "status_interval_s": 10.0, "flows": {}, "uplinks": []}))
        result = CliRunner().invoke(cli, ["models", "install", str(bundle), "--config",
                                          str(config)])
        assert result.exit_code == 0, result.output
        assert f"pid {victim.pid} named in status.json is not a 'frugalai run'" in result.output
        time.sleep(0.3)
        assert victim.poll() is None, "the forged PID received SIGHUP"
        assert not is_frugalai_run(victim.pid, config)
    finally:
        victim.kill()
        victim.wait()


def test_under_systemd_the_unit_is_reloaded_and_status_json_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No systemd runs in the test machine: a stand-in systemctl on PATH answers the two calls
    # reload_service makes and records them (a mock only where the real part cannot run).
    from frugalai.service import reload

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n'
                    'case "$1" in show) echo 4242;; reload) exit 0;; esac\n')
    fake.chmod(0o755)
    booted = tmp_path / "run-systemd-system"
    booted.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setattr(reload, "SYSTEMD_RUNTIME", str(booted))
    state = tmp_path / "state"
    state.mkdir()
    (state / "status.json").write_text('{"state": "running", "pid": 1}')  # forged: ignored
    message = reload.reload_service(state, tmp_path / "gateway.toml", "gw-unit")
    assert message == "asked systemd to reload gw-unit (main pid 4242)"
    assert calls.read_text().splitlines() == ["show -p MainPID --value gw-unit",
                                              "reload gw-unit"]
