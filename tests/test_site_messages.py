"""Operator messages: a missing extra, serial permission denied, why a device is down.

Each test runs the real CLI or source; "not installed" is produced by blocking the import
(``sys.modules[name] = None`` in a ``-c`` wrapper), and "permission denied" by a real pty whose
mode is 0000, opened without the capabilities that let root ignore it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from frugalai.service.health.status import format_status

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def run_cli_without(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from frugalai.cli import main\n"
            "sys.argv = ['frugalai'] + sys.argv[1:]\n"
            "main()\n")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


@pytest.mark.parametrize("module,args,extra", [
    ("sklearn", ["evaluate", "energy-anomaly", "--data-dir", str(ROOT)], "train"),
    ("sklearn", ["train", "coastal", "--data-dir", str(ROOT), "--out", "x"], "train"),
    ("onnxruntime", ["evaluate", "energy-anomaly", "--data-dir", str(ROOT), "--backend", "onnx"],
     "onnx"),
    ("skl2onnx", ["train", "anomaly", "--data-dir", str(ROOT), "--out", "x"], "train"),
])
def test_a_missing_extra_is_one_line_naming_it_and_exit_2(
        tmp_path: Path, module: str, args: list[str], extra: str) -> None:
    result = run_cli_without(module, args, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"error: frugalai {args[0]}")
    assert f"pip install 'frugalai[{extra}]'" in lines[0]


def test_missing_extra_helper_names_extra_through_a_wrapped_error() -> None:
    from frugalai.errors import ModelError
    from frugalai.extras import missing_extra, require

    try:
        try:
            import not_a_frugalai_module  # type: ignore[import-not-found]  # noqa: F401
        except ImportError as inner:
            raise ModelError("backend needs it") from inner
    except ModelError as err:
        assert missing_extra(err) is None
    cause = ModuleNotFoundError("No module named 'paho'", name="paho")
    wrapped = ModelError("mqtt uplink")
    wrapped.__cause__ = cause
    found = missing_extra(wrapped)
    assert found is not None and found.extra == "mqtt" and "frugalai[mqtt]" in str(found)
    require("onnx")  # installed in the test environment: no error


SETPRIV = shutil.which("setpriv")


def test_serial_permission_denied_says_so_and_names_dialout(tmp_path: Path) -> None:
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        os.chmod(path, 0)
        code = ("import logging, threading, sys\n"
                "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
                "from frugalai.sources.serial_source import SerialSource\n"
                f"src = SerialSource({path!r}, sensor='linky', mode='historique')\n"
                "stop = threading.Event()\n"
                "threading.Timer(1.5, stop.set).start()\n"
                "print(sum(1 for _ in src.readings(stop)))\n"
                "print(src.stats.last_error)\n")
        cmd = [sys.executable, "-c", code]
        if os.geteuid() == 0:  # root ignores file modes unless it drops these capabilities
            if SETPRIV is None:
                pytest.skip("running as root without setpriv (util-linux): cannot be refused")
            cmd = [SETPRIV, "--bounding-set", "-dac_override,-dac_read_search", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    finally:
        os.close(master)
        os.close(slave)
    assert result.returncode == 0, result.stderr
    assert "permission denied" in result.stderr and "device lost" not in result.stderr
    assert "'dialout'" in result.stderr and "usermod -aG dialout" in result.stderr
    assert result.stderr.count("retrying with backoff") == 1  # once per outage, not per retry
    assert "permission denied on serial port" in result.stdout


def test_status_text_says_why_a_device_is_down() -> None:
    status = {"state": "running", "pid": 1, "started": 1.0, "updated": 2.0, "flows": {"linky": {
        "state": "running", "device_up": False, "readings": 0, "readings_per_s": 0.0,
        "last_error": "SourceError: permission denied on serial port '/dev/ttyAMA0': ...dialout",
        "model": "profile", "model_version": "builtin"}},
        "outbox": {"depth": 0, "last_event": {}}, "uplinks": []}
    text = format_status(status, now=3.0)
    assert "device DOWN" in text
    assert "    device down: SourceError: permission denied on serial port '/dev/ttyAMA0'" in text
    status["flows"]["linky"]["device_up"] = True
    assert "device down:" not in format_status(status, now=3.0)
