"""``frugalai emulate`` in one process, ``frugalai run`` in another, on the printed path.

At ``--speed`` 1800 a 15-minute window lasts half a real second; the gateway's windows close on
the meter's time (``time=meter``: TIC standard ``DATE``), which is January 2026 for the
``anomalies`` scenario, so an event stamped with the wall clock could not pass.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from frugalai.sim.launch import ANOMALY_START


def start_emulator(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "frugalai", "emulate", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("# end of config"):
            break
    return proc, lines


def config_text(lines: list[str]) -> str:
    """What emulate printed between its path and its end mark: a config to save as is."""
    return "\n".join(ln for ln in lines[1:] if not ln.startswith("# ")) + "\n"


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def test_emulated_tic_at_speed_drives_a_real_run(tmp_path: Path) -> None:
    proc, lines = start_emulator("tic", "--speed", "1800", "--scenario", "anomalies")
    try:
        path = lines[0]
        assert path.startswith("/dev/") and Path(path).exists(), lines
        block = config_text(lines)
        assert f"source = \"serial://{path}?protocol=tic&mode=standard&time=meter\"" in block
        # the printed config as is (its state in ./state, where run starts), with a plain
        # threshold so that every closed window raises or clears (the point is the windows)
        block = block.replace('model = "energy-anomaly"', 'model = "threshold"\n[flow.policy]\n'
                              'on = 1500.0\noff = 1000.0\ndebounce = 1')
        config = tmp_path / "gateway.toml"
        config.write_text(block)
        check = subprocess.run([sys.executable, "-m", "frugalai", "config", "check", str(config)],
                               capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        run = subprocess.run([sys.executable, "-m", "frugalai", "run", "--config", str(config),
                              "--duration", "15"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    finally:
        out = stop(proc)
    assert run.returncode == 0, run.stderr
    assert "stopped the emulated tic" in out
    events = [json.loads(ln) for ln in run.stdout.splitlines() if ln.startswith("{")]
    kinds = [e.get("kind") for e in events]
    assert "alarm" in kinds, run.stdout + run.stderr[-2000:]
    alarm_ts = [float(e["ts"]) for e in events if e.get("kind") in ("alarm", "clear")]
    # stamped with the meter's simulated time, hours into January 2026, not with today's
    assert all(ANOMALY_START <= ts <= ANOMALY_START + 2 * 86400 for ts in alarm_ts), alarm_ts


def test_each_emulated_device_prints_a_path_and_a_whole_config(tmp_path: Path) -> None:
    for device, key in (("modbus", "protocol=modbus"), ("fb-node", "protocol=fb"),
                        ("rak3172", "lora://"), ("rn2483", "lorawan://")):
        proc, lines = start_emulator(device)
        try:
            assert lines[0].startswith("/dev/") and Path(lines[0]).exists(), lines
            assert any(key in ln and lines[0] in ln for ln in lines), lines
            # the printed config is whole: a gateway, a flow, an uplink; config check takes it
            config = tmp_path / f"{device}.toml"
            config.write_text(config_text(lines))
            text = config.read_text()
            assert "[gateway]" in text and "[[flow]]" in text and "[[uplink]]" in text, text
            check = subprocess.run([sys.executable, "-m", "frugalai", "config", "check",
                                    str(config)], capture_output=True, text=True, cwd=tmp_path,
                                   timeout=60)
            assert check.returncode == 0, check.stdout + check.stderr
        finally:
            out = stop(proc)
        assert f"stopped the emulated {device}" in out


def test_the_anomalies_scenario_starts_where_the_demo_puts_its_anomalies() -> None:
    from frugalai.demo import DEMO_START

    assert ANOMALY_START == DEMO_START
