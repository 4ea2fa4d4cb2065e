"""``frugalai doctor``: passing and failing checks on real parts.

Devices are real ptys (and a path that does not exist), the broker a real Mosquitto
(``tests/mqtt_broker.py``) or a free 127.0.0.1 port nobody listens on, the unit file the one
``service install`` writes.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_broker import free_port

from frugalai.service.doctor import FAIL, OK, check_clock, device_access, report, run_checks


@pytest.fixture
def pty_path() -> Iterator[str]:
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def write_config(tmp_path: Path, device: str, uplink: str, model: str = "profile") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[gateway]
id = "mairie-annexe"
state_dir = "{tmp_path / 'state'}"

[[flow]]
name = "linky"
source = "serial://{device}?protocol=tic&mode=historique"
sensor_id = 1
quantity = "energy_total_wh"
aggregate = "rate"
model = "{model}"

[[uplink]]
url = "{uplink}"
""")
    return path


def doctor_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frugalai", "doctor", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=120,
                          cwd=config.parent)


def lines_by_name(out: str) -> dict[str, str]:
    got = {}
    for line in out.splitlines():
        assert line[:2] in ("✓ ", "✗ ", "? "), line  # one line per check, marked
        got[line[2:].split(": ")[0]] = line
    return got


def install_unit(config: Path, tmp_path: Path, user: str) -> Path:
    units = tmp_path / "units"
    done = subprocess.run([sys.executable, "-m", "frugalai", "service", "install", "--config",
                           str(config), "--user", user, "--unit-dir", str(units)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return units


def test_doctor_passes_on_a_ready_gateway(tmp_path: Path, pty_path: str, mosquitto) -> None:  # type: ignore[no-untyped-def]
    user = pwd.getpwuid(os.geteuid()).pw_name
    config = write_config(tmp_path, pty_path, mosquitto.url)
    units = install_unit(config, tmp_path, user)
    out = doctor_cli(config, "--user", user, "--unit-dir", str(units))
    lines = lines_by_name(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert lines["config"].startswith(OK) and lines["model linky"].startswith(OK)
    assert lines[f"device {pty_path}"].startswith(OK)
    assert lines["extra mqtt"].startswith(OK)
    assert lines["unit"].startswith(OK) and "matches the config" in lines["unit"]
    assert lines[f"broker 127.0.0.1:{mosquitto.port}"].startswith(OK)
    assert lines["disk"].startswith(OK)
    assert lines["clock"][0] in (OK, "?")  # this machine may or may not run timedatectl


def test_doctor_fails_each_broken_part_with_a_hint(tmp_path: Path, pty_path: str) -> None:
    port = free_port()  # nobody listens there
    config = write_config(tmp_path, "/dev/ttyUSB-frugalai-absent", f"mqtt://127.0.0.1:{port}",
                          model="no-such-model")
    out = doctor_cli(config, "--unit-dir", str(tmp_path / "no-units"))
    assert out.returncode == 1, out.stdout + out.stderr
    lines = lines_by_name(out.stdout)
    assert lines["device /dev/ttyUSB-frugalai-absent"].startswith(FAIL)
    assert "no such device" in lines["device /dev/ttyUSB-frugalai-absent"]
    assert lines["model linky"].startswith(FAIL) and "no-such-model" in lines["model linky"]
    assert lines[f"broker 127.0.0.1:{port}"].startswith(FAIL)
    assert "no TCP connection" in lines[f"broker 127.0.0.1:{port}"]
    assert lines["unit"].startswith(FAIL) and "sudo frugalai service install" in lines["unit"]
    assert "Traceback" not in out.stderr


def test_a_user_missing_the_devices_group_is_never_told_to_join_a_privileged_group(
        pty_path: str) -> None:
    # a pty belongs to group tty, mode 0620: a user outside that group cannot use it, and
    # joining tty would let the user write to every terminal: the fix is the device's group
    check = device_access(pty_path, "nobody")
    assert check.failed, check.line()
    group = check.detail.split("group ")[1].split(",")[0]
    assert f"not in group {group}" in check.detail
    assert "usermod" not in check.hint and "group=dialout,mode=660" in check.hint, check.hint
    os.chmod(pty_path, 0o666)  # world read-write: now anyone may
    assert device_access(pty_path, "nobody").mark == OK


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a device to group root needs root")
def test_a_root_owned_device_is_given_to_dialout_never_root_to_the_user(pty_path: str) -> None:
    os.chown(pty_path, 0, 0)
    os.chmod(pty_path, 0o660)
    check = device_access(pty_path, "nobody")
    assert check.failed and "not in group root" in check.detail, check.line()
    assert "usermod -aG root" not in check.hint and "do not add nobody to it" in check.hint
    assert "dialout" in check.hint


def test_only_device_groups_are_offered_to_join() -> None:
    from frugalai.service.doctor import DEVICE_GROUPS, group_hint

    for group in ("root", "tty", "disk", "sudo", "adm", "video"):
        hint = group_hint("/dev/ttyUSB0", "/dev/ttyUSB0", group, "gw", True)
        assert "usermod" not in hint, (group, hint)
        assert 'KERNEL=="ttyUSB0", GROUP="dialout", MODE="0660"' in hint, hint
    for group in DEVICE_GROUPS:
        assert group_hint("/dev/i2c-1", "/dev/i2c-1", group, "gw", True) == \
            f"sudo usermod -aG {group} gw"
    # a path outside /dev (a node made by mknod, a socat link): chgrp, not usermod
    assert group_hint("/srv/tty0", "/srv/tty0", "root", "gw", True).endswith(
        "sudo chgrp dialout /srv/tty0 && sudo chmod g+rw /srv/tty0")


def test_a_port_outside_dev_is_checked_not_ignored(tmp_path: Path, pty_path: str) -> None:
    # a socat or emulator link under /run or /tmp is a serial device too: present, it is
    # checked through the link; absent, it is "no such device", never "no serial device"
    link = tmp_path / "ttyV0"
    link.symlink_to(pty_path)
    config = write_config(tmp_path, str(link), "stdout://")
    checks = {c.name: c for c in run_checks(str(config), user="root",
                                            unit_path=str(tmp_path / "none.service"))}
    assert "devices" not in checks, checks.get("devices")
    assert checks[f"device {link}"].mark == OK and pty_path in checks[f"device {link}"].detail
    absent = tmp_path / "ttyV9"
    config = write_config(tmp_path, str(absent), "stdout://")
    checks = {c.name: c for c in run_checks(str(config), user="root",
                                            unit_path=str(tmp_path / "none.service"))}
    line = checks[f"device {absent}"]
    assert line.failed and "no such device" in line.detail and "socat" in line.hint, line.line()


def test_tls_broker_check_fails_the_handshake_against_a_plain_listener(
        tmp_path: Path, pty_path: str, mosquitto) -> None:  # type: ignore[no-untyped-def]
    config = write_config(tmp_path, pty_path, f"mqtts://127.0.0.1:{mosquitto.port}")
    checks = {c.name: c for c in run_checks(str(config), user="root",
                                            unit_path=str(tmp_path / "none.service"))}
    broker = checks[f"broker 127.0.0.1:{mosquitto.port}"]
    assert broker.failed and "TLS handshake failed" in broker.detail


def test_invalid_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[gateway]\nid = "has space"\n[[flow]]\nname = "a"\nsource = "serial:///dev/x"\n')
    out = doctor_cli(path)
    assert out.returncode == 2 and out.stdout.startswith("✗ config:") and "gateway.id" in out.stdout


def test_clock_check_reads_ntp_state() -> None:
    assert check_clock(lambda: True).mark == OK
    assert check_clock(lambda: False).failed and "set-ntp" in check_clock(lambda: False).hint
    assert check_clock(lambda: None).mark == "?"
    text, code = report([check_clock(lambda: None)])
    assert code == 0 and text.startswith("? clock")


def test_a_native_flow_is_checked_for_its_compiler_and_python_headers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalai.config import load_config
    from frugalai.runtime import native_call
    from frugalai.service.doctor import UNKNOWN, check_native

    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[gateway]
state_dir = "{tmp_path / 'state'}"

[[flow]]
name = "nl"
source = "replay://{tmp_path / 'x.csv'}"
quantity = "power_kw"
model = "energy-anomaly"
backend = "native"
precision = "int8"
""")
    config = load_config(str(path))
    (line,) = check_native(config)
    if isinstance(native_call.headers(), tuple):  # this machine has them
        assert line.mark == OK and "flow nl" in line.detail, line.line()
    # the headers gone (a Pi OS without python3-dev): still runs, the hint says how to speed up
    monkeypatch.setattr(native_call.sysconfig, "get_paths",
                        lambda: {"include": str(tmp_path / "nowhere")})
    (line,) = check_native(config)
    assert line.mark == UNKNOWN and "python3-dev" in line.hint, line.line()
    # no compiler: the flow cannot load its model
    monkeypatch.setenv("CC", str(tmp_path / "no-cc"))
    monkeypatch.setenv("PATH", str(tmp_path))
    (line,) = check_native(config)
    assert line.mark == FAIL and "gcc" in line.hint, line.line()
    # no native flow: no line
    path.write_text(path.read_text().replace('backend = "native"', 'backend = "reference"'))
    assert check_native(load_config(str(path))) == []
