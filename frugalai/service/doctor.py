"""``frugalai doctor``: is this gateway ready to run its config unattended? One line per check.

Each check gives ✓ (fine), ✗ (will fail: the line says how to fix it) or ? (cannot tell here,
e.g. no ``timedatectl``; not a failure). The checks, in order:

* **config**: the file loads and validates (the rest needs it);
* **model**: each flow's bundle resolves and verifies (every sha256, the signature when a
  public key is set);
* **runtime**: the optional extras each flow and uplink needs import (onnx, tflite, mqtt, sign);
  a ``native`` flow needs a C compiler (✗ without), and runs a row 6x faster with the Python
  headers (? without: it works, through ctypes);
* **device**: each configured serial device (any absolute path a ``serial``, ``lora`` or
  ``lorawan`` URL names, under ``/dev`` or not) exists and the service user may read and write
  it (owner, group — usually ``dialout`` — and mode bits, links followed). The fix never adds
  the user to a group other than ``dialout``, ``gpio`` or ``i2c``: a device owned by ``root`` or
  ``tty`` is given to ``dialout`` (a udev rule) instead;
* **clock**: synchronised (``timedatectl show -p NTPSynchronized``), since events carry time;
* **disk**: free space where ``state_dir`` lives (the outbox grows while the uplink is down);
* **unit**: the systemd unit is installed and is what ``service install`` would write now;
* **broker**: each MQTT endpoint accepts a TCP connection, then a TLS handshake for ``mqtts``;
* **flow**: when the service is running, what its ``status.json`` says of each flow (a
  degraded flow, e.g. a serial port that fails to reopen, is a ✗ with the reason).

The checks only read: nothing is created, no device is opened, no MQTT session is made.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import ssl
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

from frugalai.config import Config
from frugalai.errors import ConfigError, FrugalError
from frugalai.extras import extra_available, install_hint

OK, FAIL, UNKNOWN = "✓", "✗", "?"

#: free space under which the outbox is at risk (a week of a busy gateway is a few MB).
MIN_FREE_BYTES = 100 * 1024 * 1024
BUILTIN_MODELS = ("profile", "threshold")


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    mark: str  # OK, FAIL or UNKNOWN
    detail: str
    hint: str = ""

    @property
    def failed(self) -> bool:
        return self.mark == FAIL

    def line(self) -> str:
        return f"{self.mark} {self.name}: {self.detail}" + (f" — {self.hint}" if self.hint else "")


def run_checks(config_path: str, *, user: str = "frugalai",
               unit_path: str = "/etc/systemd/system/frugalai.service",
               connect_timeout: float = 3.0,
               ntp_status: Optional[Callable[[], Optional[bool]]] = None) -> list[Check]:
    """All checks for ``config_path`` as ``user`` would run it; stops after a bad config."""
    from frugalai.config import load_config

    try:
        config = load_config(config_path)
    except ConfigError as err:
        return [Check("config", FAIL, f"{config_path}: {err}",
                      "fix the key named; `frugalai config schema` lists every key")]
    checks = [Check("config", OK, f"{config_path} valid ({len(config.flow)} flow(s), "
                                  f"{len(config.uplink)} uplink(s))")]
    checks += check_models(config)
    checks += check_runtimes(config)
    checks += check_native(config)
    checks += check_devices(config, user)
    checks.append(check_clock(ntp_status or timedatectl_ntp))
    checks.append(check_disk(config.gateway.state_dir))
    checks.append(check_unit(config_path, config, user, unit_path))
    checks += check_brokers(config, connect_timeout)
    checks += check_running_flows(config.gateway.state_dir)
    return checks


# ------------------------------------------------------------------------------ running flows
def check_running_flows(state_dir: str) -> list[Check]:
    """What the running service says of its flows (its ``status.json``): a degraded flow (a
    device down, a port that fails to reopen, a model failing) is a ✗ with the reason; no
    check at all when the service never ran here."""
    from frugalai.service.health.status import STATUS_FILE, read_status

    if not (Path(state_dir) / STATUS_FILE).is_file():
        return []
    status = read_status(state_dir)
    if not str(status.get("state", "")).startswith("running"):
        return []  # a stopped service's flows say nothing of now
    checks = []
    for name, f in sorted((status.get("flows") or {}).items()):
        if f.get("state") == "degraded" or not f.get("device_up", True):
            why = f.get("why") or f.get("last_error") or "no detail"
            checks.append(Check(f"flow {name}", FAIL, f"degraded: {why}",
                                "the flow retries by itself; `frugalai status` follows it"))
        else:
            checks.append(Check(f"flow {name}", OK, str(f.get("state"))))
    return checks


# ------------------------------------------------------------------------------ models
def check_models(config: Config) -> list[Check]:
    from frugalai.plan import models_dir
    from frugalai.runtime.bundle import card_is_shipped, signature_key, verify_bundle
    from frugalai.runtime.model import resolve_bundle, shipped_models_dir
    from frugalai.service.models import parse_public_key

    out: list[Check] = []
    try:
        key = parse_public_key(config.models.public_key)
    except ConfigError as err:
        return [Check("model", FAIL, str(err), "set [models] public_key to an Ed25519 key")]
    for flow in config.flow:
        if flow.model in BUILTIN_MODELS:
            out.append(Check(f"model {flow.name}", OK, f"built-in '{flow.model}'"))
            continue
        try:
            path = resolve_bundle(flow.model, models_dir(config)[0])  # run's search path
            bundle = verify_bundle(path, public_key=signature_key(
                path, key, config.models.trust_shipped))
        except FrugalError as err:
            out.append(Check(f"model {flow.name}", FAIL, str(err),
                             f"`frugalai models install BUNDLE --config ...`, or name a shipped "
                             f"bundle ({shipped_models_dir()})"))
            continue
        version = f" {bundle.card['version']}" if bundle.card.get("version") else ""
        trust = (", shipped: trusted unsigned ([models] trust_shipped)"
                 if key is not None and config.models.trust_shipped and card_is_shipped(path)
                 else ", signature checked" if key is not None else "")
        out.append(Check(f"model {flow.name}", OK,
                         f"{bundle.name}{version} verified{trust} ({path})"))
    return out


# ------------------------------------------------------------------------------ runtimes
def needed_extras(config: Config) -> dict[str, list[str]]:
    """extra -> what needs it (flows by backend and source, uplinks by scheme, signatures)."""
    from frugalai.registry import split_url
    from frugalai.runtime.backends import backend_extra

    needs: dict[str, list[str]] = {}
    for flow in config.flow:
        extra = backend_extra(flow.backend) if flow.model not in BUILTIN_MODELS else None
        if extra:
            needs.setdefault(extra, []).append(f"flow {flow.name} (backend)")
        if flow.source.startswith("chirpstack://"):
            needs.setdefault("mqtt", []).append(f"flow {flow.name} (source)")
    for uplink in config.uplink:
        try:
            scheme = split_url(uplink.url)[0]
        except ConfigError:
            continue
        if scheme in ("mqtt", "mqtts"):
            needs.setdefault("mqtt", []).append(f"uplink {scheme}://")
    if config.models.public_key:
        needs.setdefault("sign", []).append("[models] public_key")
    return needs


def check_native(config: Config) -> list[Check]:
    """Flows on the ``native`` backend: a C compiler (else they cannot load), and the Python
    headers for the direct row call (else ctypes: slower, not broken). Reads only."""
    from frugalai.runtime.native import NAME, unavailable_reason
    from frugalai.runtime.native_call import headers

    users = [f.name for f in config.flow if f.backend == NAME and f.model not in BUILTIN_MODELS]
    if not users:
        return []
    who = "flow " + ", ".join(users)
    reason = unavailable_reason()
    if reason:
        return [Check("native", FAIL, f"{who}: {reason}", "apt-get install gcc")]
    inc = headers()
    if isinstance(inc, str):
        return [Check("native", UNKNOWN, f"{who}: compiles; {inc}",
                      "apt-get install python3-dev for the direct call (0.1 vs 0.6 us a row)")]
    return [Check("native", OK, f"{who}: C compiler and Python headers found")]


def check_runtimes(config: Config) -> list[Check]:
    out: list[Check] = []
    for extra, users in sorted(needed_extras(config).items()):
        missing = extra_available(extra)
        who = ", ".join(users)
        out.append(Check(f"extra {extra}", FAIL, f"{who}: {missing}", install_hint(extra))
                   if missing else Check(f"extra {extra}", OK, f"imports ({who})"))
    if not out:
        out.append(Check("extras", OK, "none needed (numpy models, serial/stdout/file I/O)"))
    return out


# ------------------------------------------------------------------------------ devices
def _user_ids(user: str) -> tuple[Optional[int], set[int], bool]:
    """(uid, gids, exists); a service user still to be created gets group dialout."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        try:
            return None, {grp.getgrnam("dialout").gr_gid}, False
        except KeyError:
            return None, set(), False
    gids = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    return pw.pw_uid, gids, True


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def device_access(path: str, user: str) -> Check:
    """Whether ``user`` may open ``path`` read-write (links followed), with the fix."""
    name = f"device {path}"
    if not os.path.exists(path):
        hint = ("is it plugged in? `ls -l /dev/serial/by-id/` lists USB serial adapters"
                if "/by-id/" in path or "USB" in path or "ACM" in path else
                "on a Pi, enable the UART (enable_uart=1 in config.txt) and reboot"
                if "serial0" in path or "AMA" in path else
                "a link outside /dev: is the program that makes it (socat, an emulator) running?"
                if not path.startswith("/dev/") else "check the path in the config")
        return Check(name, FAIL, "no such device" + (" (dangling link)"
                                                     if os.path.islink(path) else ""), hint)
    real = os.path.realpath(path)
    st = os.stat(real)
    if not stat.S_ISCHR(st.st_mode):
        return Check(name, FAIL, f"{real} is not a character device", "check the path")
    uid, gids, exists = _user_ids(user)
    where = f"{real}, " if real != path else ""
    desc = (f"{where}owner {pwd.getpwuid(st.st_uid).pw_name if _has_uid(st.st_uid) else st.st_uid}"
            f", group {_group_name(st.st_gid)}, mode {stat.filemode(st.st_mode)}")
    if uid == 0:
        return Check(name, OK, f"{desc}; user {user} is root")
    rw = stat.S_IRUSR | stat.S_IWUSR
    if uid is not None and st.st_uid == uid:
        ok = st.st_mode & rw == rw
    elif st.st_gid in gids:
        ok = st.st_mode & (stat.S_IRGRP | stat.S_IWGRP) == stat.S_IRGRP | stat.S_IWGRP
    else:
        ok = st.st_mode & (stat.S_IROTH | stat.S_IWOTH) == stat.S_IROTH | stat.S_IWOTH
    who = f"user {user}" + ("" if exists else " (not created yet: `service install` creates it "
                                              "in group dialout)")
    if ok:
        return Check(name, OK, f"{desc}; {who} can read and write it")
    group = _group_name(st.st_gid)
    if st.st_gid not in gids:
        return Check(name, FAIL, f"{desc}; {who} is not in group {group}",
                     group_hint(path, real, group, user, exists))
    return Check(name, FAIL, f"{desc}; group {group} may not read and write it",
                 mode_hint(path, real))


#: the only groups doctor ever tells to add the service user to: each grants its devices and
#: nothing else. ``root``, ``tty``, ``disk``... grant much more (every terminal, raw disks).
DEVICE_GROUPS = ("dialout", "gpio", "i2c")


def group_hint(path: str, real: str, group: str, user: str, exists: bool) -> str:
    """How to give ``user`` the device: join its group only if that group is a device group,
    else give the device to ``dialout`` (a udev rule for a /dev node, chgrp for the rest)."""
    if group in DEVICE_GROUPS:
        if exists:
            return f"sudo usermod -aG {group} {user}"
        return (f"after `service install` creates {user} (in dialout): "
                f"sudo usermod -aG {group} {user}")
    return (f"group {group} grants far more than this device: do not add {user} to it; "
            + mode_hint(path, real, group="dialout"))


def mode_hint(path: str, real: str, group: str = "") -> str:
    """How to make the device group-readable and writable (and owned by ``group``, if given)."""
    owner = f', GROUP="{group}"' if group else ""
    if real.startswith("/dev/pts/"):
        return ("a pseudo-terminal: have the program that creates it set the group and mode "
                f"(socat: `pty,link={path},group={group or 'dialout'},mode=660`)")
    if real.startswith("/dev/"):
        return (f'a udev rule: echo \'KERNEL=="{os.path.basename(real)}"{owner}, MODE="0660"\' '
                "| sudo tee /etc/udev/rules.d/99-frugalai.rules && sudo udevadm trigger")
    chgrp = f"sudo chgrp {group} {real} && " if group else ""
    return f"{chgrp}sudo chmod g+rw {real}"


def _has_uid(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def check_devices(config: Config, user: str) -> list[Check]:
    from frugalai.service.install import device_ports

    devices = device_ports(config)
    if not devices:
        return [Check("devices", OK, "no serial device in the config")]
    return [device_access(dev, user) for dev in devices]


# ------------------------------------------------------------------------------ clock, disk
def timedatectl_ntp() -> Optional[bool]:
    """NTPSynchronized from timedatectl; None when it cannot tell (no systemd, a container)."""
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = out.stdout.strip()
    if out.returncode != 0 or value not in ("yes", "no"):
        return None
    return value == "yes"


def check_clock(ntp: Callable[[], Optional[bool]]) -> Check:
    synced = ntp()
    if synced is None:
        return Check("clock", UNKNOWN, "synchronisation unknown (timedatectl not available)",
                     "events carry time: make sure NTP runs (systemd-timesyncd or chrony)")
    if synced:
        return Check("clock", OK, "synchronised (NTP)")
    return Check("clock", FAIL, "not synchronised",
                 "sudo timedatectl set-ntp true; a Pi has no RTC: check the network or add one")


def check_disk(state_dir: str, min_free: int = MIN_FREE_BYTES) -> Check:
    path = Path(state_dir).absolute()
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    where = str(path) if probe == path else f"{path} (not created yet; on {probe})"
    text = f"{usage.free / 1e6:.0f} MB free for {where}"
    if usage.free < min_free:
        return Check("disk", FAIL, text, f"free at least {min_free / 1e6:.0f} MB: the outbox "
                                          "grows while the uplink is down")
    return Check("disk", OK, text)


# ------------------------------------------------------------------------------ unit
def check_unit(config_path: str, config: Config, user: str, unit_path: str) -> Check:
    from frugalai.service.install import render_unit

    fix = f"sudo frugalai service install --config {os.path.abspath(config_path)}"
    unit = Path(unit_path)
    if not unit.is_file():
        return Check("unit", FAIL, f"{unit} not installed", fix)
    try:
        want = render_unit(config_path, config, user=user)
    except ConfigError as err:
        return Check("unit", FAIL, f"this config cannot run as a service: {err}", "")
    have = unit.read_text()
    if have == want:
        return Check("unit", OK, f"{unit} matches the config")
    diff = next((f"has {a!r}, expected {b!r}" for a, b in
                 zip(have.splitlines(), want.splitlines()) if a != b), "differs in length")
    return Check("unit", FAIL, f"{unit} differs from what this config needs ({diff})",
                 fix + " && sudo systemctl daemon-reload && sudo systemctl restart frugalai")


# ------------------------------------------------------------------------------ brokers
def broker_endpoints(config: Config) -> list[tuple[str, str, int, bool, dict[str, str]]]:
    """(label, host, port, tls, options) of every MQTT endpoint: uplinks and ChirpStack."""
    from frugalai.registry import split_url

    out = []
    urls = [(f"uplink {i}", u.url) for i, u in enumerate(config.uplink)]
    urls += [(f"flow {f.name}", f.source) for f in config.flow]
    for label, url in urls:
        try:
            scheme, _, options = split_url(url)
        except ConfigError:
            continue
        if scheme not in ("mqtt", "mqtts", "chirpstack"):
            continue
        parts = urlsplit(url)
        tls = scheme == "mqtts" or options.get("tls") in ("1", "true", "yes")
        port = parts.port or (8883 if tls else 1883)
        out.append((label, parts.hostname or "localhost", port, tls, options))
    return out


def check_broker(label: str, host: str, port: int, tls: bool, options: dict[str, str],
                 timeout: float) -> Check:
    name = f"broker {host}:{port}"
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as err:
        return Check(name, FAIL, f"{label}: no TCP connection ({err})",
                     "is the broker running and the port open? (firewall, host name, port)")
    with sock:
        if not tls:
            return Check(name, OK, f"{label}: TCP connection accepted")
        try:
            ctx = ssl.create_default_context(cafile=options.get("ca"))
            if options.get("cert"):
                ctx.load_cert_chain(options["cert"], options.get("key"))
            with ctx.wrap_socket(sock, server_hostname=host) as tls_sock:
                version = tls_sock.version()
        except (OSError, ssl.SSLError) as err:
            return Check(name, FAIL, f"{label}: TLS handshake failed ({err})",
                         "check ca= (the CA that signed the broker's certificate), the host "
                         "name in the certificate, and the clock")
    return Check(name, OK, f"{label}: TCP and TLS handshake ({version}) accepted")


def check_brokers(config: Config, timeout: float) -> list[Check]:
    return [check_broker(*endpoint, timeout=timeout) for endpoint in broker_endpoints(config)]


def report(checks: list[Check]) -> tuple[str, int]:
    """The text and the exit code: 2 for an invalid config, 1 if any check failed, else 0."""
    text = "\n".join(c.line() for c in checks)
    if checks and checks[0].name == "config" and checks[0].failed:
        return text, 2
    return text, 1 if any(c.failed for c in checks) else 0
