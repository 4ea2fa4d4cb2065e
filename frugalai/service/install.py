"""``frugalai service install``: the systemd unit for a config file, hardened, and its user.

The unit comes from the template ``frugalai.service`` shipped in this package. What varies with
the config is filled in: the state dir is the only writable path (``ReadWritePaths``; under
``/var/lib`` systemd also creates it, ``StateDirectory=``), and the serial devices the flows and
uplinks name are the only devices (``DevicePolicy=closed`` + ``DeviceAllow``). A stable
``/dev/serial/by-id/...`` link may point at a new ``ttyUSBn``/``ttyACMn`` node after a replug, so
for such links the whole USB-serial device class is allowed instead of one node.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from frugalai.config import Config
from frugalai.errors import ConfigError, FrugalError
from frugalai.fileio import atomic_write
from frugalai.registry import split_url

#: kernel device classes (``/proc/devices`` names) by device-node prefix.
DEVICE_CLASSES = {"ttyUSB": "char-ttyUSB", "ttyACM": "char-ttyACM", "ttyAMA": "char-ttyAMA",
                  "ttyS": "char-ttyS"}


def template() -> str:
    return resources.files("frugalai.service").joinpath("frugalai.service").read_text()


def serial_devices(config: Config) -> list[str]:
    """Device paths (``/dev/...``) named by flows and uplinks, in config order."""
    devices: list[str] = []
    urls = [f.source for f in config.flow] + [u.url for u in config.uplink]
    for url in urls:
        try:
            _, rest, _ = split_url(url)
        except ConfigError:
            continue
        if rest.startswith("/dev/") and rest not in devices:
            devices.append(rest)
    return devices


def device_allow(devices: list[str]) -> list[str]:
    """``DeviceAllow=`` lines: the node itself, or the USB-serial classes for a stable link."""
    lines: list[str] = []
    for dev in devices:
        name = os.path.basename(dev)
        prefix = name.rstrip("0123456789")
        if dev.startswith("/dev/") and prefix in DEVICE_CLASSES and os.path.dirname(dev) == "/dev":
            entry = f"DeviceAllow={dev} rw"
        else:  # a symlink (by-id, by-path, udev alias): its target changes on replug
            entry = "DeviceAllow=char-ttyUSB rw\nDeviceAllow=char-ttyACM rw"
        for line in entry.splitlines():
            if line not in lines:
                lines.append(line)
    return lines or ["# no serial device in the config: no device is allowed"]


def exec_start() -> str:
    """This Python running frugalai: stays right inside a virtualenv."""
    return f"{shlex.quote(sys.executable)} -m frugalai"


_UNSAFE_IN_UNIT = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_IN_PATH = re.compile(r"[\s\"'\\$;]")


def unit_value(value: str, key: str, *, path: bool = False) -> str:
    """``value`` made safe for one setting of a unit file, or ConfigError naming ``key``.

    A newline would start a new setting (``User=root``), so control characters are refused;
    ``%`` starts a systemd specifier and is doubled. A path must be absolute and hold no
    whitespace, quote, backslash, ``$`` or ``;``: systemd splits path lists on spaces and
    expands ``$`` in ``ExecStart``.
    """
    if _UNSAFE_IN_UNIT.search(value):
        raise ConfigError(f"control characters (newline, tab...) cannot go into a systemd unit,"
                          f" got {value!r}", key=key)
    if path:
        if not os.path.isabs(value):
            raise ConfigError(f"must be an absolute path for a service, got {value!r}", key=key)
        if _UNSAFE_IN_PATH.search(value):
            raise ConfigError("a path in a systemd unit cannot hold spaces, quotes, '\\', '$' "
                              f"or ';', got {value!r}", key=key)
    return value.replace("%", "%%")


def render_unit(config_path: str, config: Config, user: str = "frugalai") -> str:
    """The unit text for ``config_path``; ConfigError if the config cannot run as a service."""
    state = config.gateway.state_dir
    if not os.path.isabs(state):
        raise ConfigError(f"must be an absolute path for a service (like /var/lib/frugalai), "
                          f"got {state!r}", key="gateway.state_dir")
    if not user or not user.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"invalid user name {user!r}", key="--user")
    state = os.path.normpath(state)
    rw = [state]
    prom = config.service.prometheus_textfile
    if prom and not os.path.abspath(prom).startswith(state + os.sep):
        rw.append(os.path.dirname(os.path.abspath(prom)))  # node_exporter's textfile dir
        unit_value(rw[-1], "service.prometheus_textfile", path=True)
    state_directory = ""
    if state.startswith("/var/lib/"):
        state_directory = (f"StateDirectory={unit_value(state[len('/var/lib/'):], 'gateway.state_dir')}\n"
                           "StateDirectoryMode=0750\n")
    svc = config.service
    values = {
        "@CONFIG@": unit_value(os.path.abspath(config_path), "--config", path=True),
        "@GATEWAY_ID@": unit_value(config.gateway.id, "gateway.id"),
        "@EXEC@": exec_start(),
        "@WATCHDOG_S@": f"{svc.watchdog_s:g}",
        "@TIMEOUT_STOP_S@": f"{svc.stop_timeout_s + 5:g}",
        "@USER@": user,
        "@STATE_DIRECTORY@": state_directory,
        "@STATE_DIR@": unit_value(state, "gateway.state_dir", path=True),
        "@READ_WRITE_PATHS@": " ".join(unit_value(p, "gateway.state_dir", path=True)
                                       for p in rw),
        "@DEVICE_ALLOW@": "\n".join(device_allow(serial_devices(config))),
    }
    text = template()
    for mark, value in values.items():
        text = text.replace(mark, value)
    return text


def install_unit(text: str, config: Config, *, user: str, unit_dir: str,
                 unit_name: str = "frugalai") -> Iterator[str]:
    """Create the user (root only), the state dir, write the unit; yield what was done."""
    if not _user_exists(user):
        if os.geteuid() != 0:
            raise FrugalError(f"user {user!r} does not exist and only root can create it")
        cmd = ["useradd", "--system", "--no-create-home", "--home-dir",
               config.gateway.state_dir, "--shell", "/usr/sbin/nologin", "--user-group",
               "--groups", "dialout", user]
        subprocess.run(cmd, check=True)
        yield f"created system user {user} (groups: dialout)"
    state = Path(config.gateway.state_dir)
    if not state.is_dir():
        state.mkdir(parents=True, mode=0o750)
        if os.geteuid() == 0:
            pw = pwd.getpwnam(user)
            os.chown(state, pw.pw_uid, pw.pw_gid)
        yield f"created state dir {state}"
    unit = Path(unit_dir) / f"{unit_name}.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(unit, text)
    yield f"wrote {unit}"
    yield f"next: systemctl daemon-reload && systemctl enable --now {unit_name}"


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True
