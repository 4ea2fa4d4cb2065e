"""``frugalai service install``: the systemd unit for a config file, hardened, and its user.

The unit comes from the template ``frugalai.service`` shipped in this package. What varies with
the config is filled in: the state dir is the only writable path (``ReadWritePaths``; under
``/var/lib`` systemd also creates it, ``StateDirectory=``), and the serial devices the flows and
uplinks name are the only devices (``DevicePolicy=closed`` + ``DeviceAllow``). A stable
``/dev/serial/by-id/...`` link may point at a new ``ttyUSBn``/``ttyACMn`` node after a replug, so
for such links the whole USB-serial device class is allowed as well as the node the link names
now; a fixed alias (the Pi's ``/dev/serial0`` -> ``ttyAMA0``/``ttyS0``) allows its target.

``ExecStart`` is the Python running this command, which must be reachable by the service user
under the unit's sandbox: ``ProtectHome=yes`` hides ``/home``, ``/root`` and ``/run/user``, so a
virtualenv there is refused with what to do instead (a venv under ``/opt``).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Optional

from frugalai.config import Config
from frugalai.errors import ConfigError, FrugalError
from frugalai.fileio import atomic_write
from frugalai.registry import split_url

#: kernel device classes (``/proc/devices`` names) by device-node prefix.
DEVICE_CLASSES = {"ttyUSB": "char-ttyUSB", "ttyACM": "char-ttyACM", "ttyAMA": "char-ttyAMA",
                  "ttyS": "char-ttyS"}
#: links whose target changes on replug: the target's whole class is allowed.
HOTPLUG_LINK_DIRS = ("/dev/serial/by-id/", "/dev/serial/by-path/")
#: what ``ProtectHome=yes`` makes inaccessible to the service.
PROTECTED_HOME = ("/home", "/root", "/run/user")
#: what ``PrivateTmp=yes`` replaces by an empty directory of the service's own.
PRIVATE_TMP = ("/tmp", "/var/tmp")


def template() -> str:
    return resources.files("frugalai.service").joinpath("frugalai.service").read_text()


#: URL schemes whose path is a device (a serial port or a modem on one).
DEVICE_SCHEMES = ("serial", "lora", "lorawan")


def device_ports(config: Config) -> list[str]:
    """Every absolute path a flow or uplink opens as a device, in config order, wherever it
    lives (``/dev/ttyUSB0``, a socat link under ``/run``, a path that does not exist yet)."""
    ports: list[str] = []
    for url in [f.source for f in config.flow] + [u.url for u in config.uplink]:
        try:
            scheme, rest, _ = split_url(url)
        except ConfigError:
            continue
        if scheme in DEVICE_SCHEMES and rest.startswith("/") and rest not in ports:
            ports.append(rest)
    return ports


def serial_devices(config: Config) -> list[str]:
    """Device paths (``/dev/...``) named by flows and uplinks, in config order."""
    devices: list[str] = []
    urls = [f.source for f in config.flow] + [u.url for u in config.uplink]
    for url in urls:
        try:
            _, rest, _ = split_url(url)
        except ConfigError:
            continue
        # /dev nodes, and absolute links elsewhere (a udev or socat alias) to device nodes
        if (rest.startswith("/dev/") or (rest.startswith("/") and os.path.islink(rest))) \
                and rest not in devices:
            devices.append(rest)
    return devices


def _device_class(node: str) -> Optional[str]:
    return DEVICE_CLASSES.get(os.path.basename(node).rstrip("0123456789"))


def device_allow(devices: list[str]) -> list[str]:
    """``DeviceAllow=`` lines for the configured device paths.

    A node (``/dev/ttyUSB0``) is allowed itself. A symlink is followed: its current target is
    allowed too (systemd matches device numbers, and ``/dev/serial0`` names ``ttyAMA0``); a
    hot-plug link (``/dev/serial/by-id/...``) also allows its target's class, since a replug
    may give a new ``ttyUSBn``; a hot-plug link absent now allows the USB-serial classes.
    """
    lines: list[str] = []

    def add(line: str) -> None:
        if line not in lines:
            lines.append(line)

    for dev in devices:
        hotplug = dev.startswith(HOTPLUG_LINK_DIRS)
        if dev.startswith("/dev/"):
            add(f"DeviceAllow={dev} rw")
        target = os.path.realpath(dev) if os.path.islink(dev) else None
        if target and target != dev and target.startswith("/dev/"):
            add(f"DeviceAllow={target} rw")
            cls = _device_class(target)
            if hotplug and cls:
                add(f"DeviceAllow={cls} rw")
        elif hotplug:  # unplugged at install time: whichever USB-serial node it comes back as
            add("DeviceAllow=char-ttyUSB rw")
            add("DeviceAllow=char-ttyACM rw")
    return lines or ["# no serial device in the config: no device is allowed"]


def _under(path: str, roots: tuple[str, ...]) -> Optional[str]:
    for root in roots:
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return root
    return None


def _user_ids(user: str) -> tuple[Optional[int], set[int]]:
    """uid and gids of ``user`` (a user still to be created: no uid, group dialout)."""
    gids: set[int] = set()
    try:
        gids.add(grp.getgrnam("dialout").gr_gid)
    except KeyError:
        pass
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None, gids
    gids.add(pw.pw_gid)
    gids.update(g.gr_gid for g in grp.getgrall() if user in g.gr_mem)
    return pw.pw_uid, gids


def _blocked_dir(path: str, user: str) -> Optional[str]:
    """The first directory on ``path`` the user cannot traverse (no x bit for it), or None."""
    uid, gids = _user_ids(user)
    if uid == 0:
        return None
    current = "/"
    for part in Path(path).parts[1:-1]:
        current = os.path.join(current, part)
        try:
            st = os.stat(current)
        except OSError:
            return None  # a path that does not exist here is not ours to judge
        if st.st_uid == uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in gids:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return current
    return None


def home_binds(executable: str, protected: tuple[str, ...] = PROTECTED_HOME) -> list[str]:
    """Directories under a protected home the service needs: the venv, the interpreter's own
    prefix, the installed package (its site-packages or, editable, the checkout)."""
    package_root = str(Path(__file__).resolve().parents[2])
    real_exe = os.path.realpath(executable)
    wanted = [sys.prefix if executable == sys.executable else str(Path(executable).parents[1]),
              sys.base_prefix if executable == sys.executable
              else str(Path(real_exe).parents[1]),
              package_root]
    binds: list[str] = []
    for path in wanted:
        path = os.path.normpath(path)
        if _under(path, protected) and not any(_under(path, (b,)) for b in binds):
            binds = [b for b in binds if not _under(b, (path,))] + [path]
    return binds


def check_interpreter(executable: str, user: str,
                      protected: tuple[str, ...] = PROTECTED_HOME) -> list[str]:
    """The paths to bind into the unit for ``user`` to run ``executable`` and import frugalai
    (``ProtectHome=yes`` hides homes); ConfigError when a directory outside the homes has no
    search permission for the user, with what to do instead."""
    package = str(Path(__file__).resolve().parents[1])
    binds = home_binds(executable, protected)
    fix = ("install frugalai where the service can reach it, e.g. "
           "`sudo python3 -m venv /opt/frugalai && sudo /opt/frugalai/bin/pip install "
           "frugalai-*.whl`, then run `sudo /opt/frugalai/bin/frugalai service install ...`")
    for path in (executable, os.path.realpath(executable), package + "/__init__.py"):
        if _under(path, protected):
            continue  # reached through BindReadOnlyPaths=, whatever the home's own mode
        blocked = _blocked_dir(path, user)
        if blocked is not None:
            raise ConfigError(f"user {user!r} cannot reach {path} (no search permission on "
                              f"{blocked}); {fix}", key="ExecStart")
    return binds


def private_tmp_paths(config_path: str, config: Config,
                      executable: Optional[str] = None) -> list[tuple[str, str]]:
    """(what, path) for everything the service needs that lives under ``/tmp`` or
    ``/var/tmp``: with ``PrivateTmp=yes`` the unit sees an empty directory there, so a venv, a
    config, a model, a key, a replayed file or a socat link under /tmp is missing for it (and a
    state dir there is one nobody else sees). ``service install`` warns with each one."""
    executable = executable or sys.executable
    found: list[tuple[str, str]] = []

    def add(what: str, path: str) -> None:
        if path and os.path.isabs(path) and _under(os.path.normpath(path), PRIVATE_TMP) and \
                (what, path) not in found:
            found.append((what, path))

    add("the interpreter (ExecStart)", executable)
    add("the frugalai package", str(Path(__file__).resolve().parents[1]))
    add("the config", os.path.abspath(config_path))
    add("gateway.state_dir", config.gateway.state_dir)
    add("gateway.models_dir", config.gateway.models_dir)
    add("service.prometheus_textfile", config.service.prometheus_textfile)
    add("models.public_key", config.models.public_key)
    urls = [(f"flow {f.name}", f.source) for f in config.flow]
    urls += [(f"uplink[{i}]", u.url) for i, u in enumerate(config.uplink)]
    for label, url in urls:
        try:
            _, rest, options = split_url(url)
        except ConfigError:
            continue
        add(label, rest)
        for name, value in options.items():
            add(f"{label} ({name}=)", value)
    return found


def exec_start(executable: Optional[str] = None) -> str:
    """This Python running frugalai: stays right inside a virtualenv."""
    return f"{shlex.quote(executable or sys.executable)} -m frugalai"


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


def render_unit(config_path: str, config: Config, user: str = "frugalai",
                executable: Optional[str] = None) -> str:
    """The unit text for ``config_path``; ConfigError if the config cannot run as a service
    (or the interpreter is out of the service user's reach)."""
    state = config.gateway.state_dir
    if not os.path.isabs(state):
        raise ConfigError(f"must be an absolute path for a service (like /var/lib/frugalai), "
                          f"got {state!r}", key="gateway.state_dir")
    if not user or not user.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"invalid user name {user!r}", key="--user")
    executable = executable or sys.executable
    binds = check_interpreter(executable, user)
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
        "@EXEC@": exec_start(executable),
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
    if binds:  # a venv or interpreter in a home: empty homes, with only these paths inside
        text = text.replace("ProtectHome=yes\n", (
            "# frugalai runs from under a home directory: homes are empty for the service\n"
            "# except these paths, read-only (a venv under /opt avoids this).\n"
            "ProtectHome=tmpfs\n"
            f"BindReadOnlyPaths={' '.join(unit_value(b, 'ExecStart', path=True) for b in binds)}\n"))
    return text


def install_unit(text: str, config: Config, *, user: str, unit_dir: str,
                 unit_name: str = "frugalai") -> Iterator[str]:
    """Create the user (root only), the state dir, write the unit; yield what was done."""
    yield from install_files(text, config.gateway.state_dir, user=user, unit_dir=unit_dir,
                             unit_name=unit_name)


def install_files(text: str, state_dir: Optional[str], *, user: str, unit_dir: str,
                  unit_name: str, groups: tuple[str, ...] = ("dialout",)) -> Iterator[str]:
    """The gateway's and the collector's install: the system user (in ``groups``; root
    only), the state dir owned by it (none for a collector that writes nothing locally: its
    home is then ``/nonexistent``, as Debian's system users), the unit file; yield what was
    done."""
    if not _user_exists(user):
        if os.geteuid() != 0:
            raise FrugalError(f"user {user!r} does not exist and only root can create it")
        cmd = ["useradd", "--system", "--no-create-home", "--home-dir",
               state_dir or "/nonexistent", "--shell", "/usr/sbin/nologin", "--user-group", user]
        if groups:
            cmd[-1:-1] = ["--groups", ",".join(groups)]
        subprocess.run(cmd, check=True)
        yield f"created system user {user} (groups: {', '.join(groups) or 'its own'})"
    state = Path(state_dir) if state_dir is not None else None
    if state is not None and not state.is_dir():
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
