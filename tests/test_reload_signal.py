"""``models install`` never signals a PID it cannot prove is the service (issue 14, item 3).

``status.json`` is written by the service user; a forged one naming another process must not
make ``models install`` (run as root) send it SIGHUP. A real ``sleep`` is the victim: SIGHUP
would kill it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
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
