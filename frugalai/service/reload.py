"""Ask the running service to reload, without trusting a PID someone else wrote.

``models install`` / ``rollback`` usually run as root; ``status.json`` is written by the service
user. Signalling the PID found in that file would let the service user (or anything running as
it) make root send SIGHUP to any process: for most daemons, and for a plain ``sleep``, SIGHUP is
fatal. So a PID is never taken on trust:

1. When systemd runs the unit, systemd is asked (``systemctl reload <unit>``): it signals the
   unit's main PID, which it tracks itself.
2. Otherwise the PID in ``status.json`` is only a hint. It is signalled only if
   ``/proc/<pid>/cmdline`` is a ``frugalai run`` of this very config file (same real path) and
   the process belongs to the owner of the state dir's status file (or to us). The process is
   pinned with a pidfd before the check where the kernel has them, so a PID reused between the
   check and the signal is never hit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Optional, Union

from frugalai.service.health.status import STATUS_FILE, read_status

#: exists when systemd is the running init (sd_booted()).
SYSTEMD_RUNTIME = "/run/systemd/system"


def _systemctl() -> Optional[str]:
    if not os.path.isdir(SYSTEMD_RUNTIME):
        return None
    return shutil.which("systemctl")


def systemd_main_pid(unit: str) -> Optional[int]:
    """The unit's MainPID as systemd tracks it, or None (no systemd, unit not running)."""
    systemctl = _systemctl()
    if systemctl is None:
        return None
    try:
        out = subprocess.run([systemctl, "show", "-p", "MainPID", "--value", unit],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    value = out.stdout.strip()
    return int(value) if out.returncode == 0 and value.isdigit() and int(value) > 0 else None


def _argv(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        return [a.decode("utf-8", "surrogateescape") for a in fh.read().split(b"\0") if a]


def is_frugalai_run(pid: int, config_path: Union[str, Path]) -> bool:
    """True if process ``pid`` is ``frugalai run --config <config_path>`` (same real file)."""
    try:
        argv = _argv(pid)
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    names = [os.path.basename(a) for a in argv[:3]]
    via_module = "-m" in argv[:3] and "frugalai" in argv[:4]
    if not (via_module or "frugalai" in names) or "run" not in argv:
        return False
    given: Optional[str] = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            given = argv[i + 1]
        elif arg.startswith("--config="):
            given = arg.split("=", 1)[1]
    if given is None:
        return False
    theirs = os.path.realpath(os.path.join(cwd, given))
    return theirs == os.path.realpath(config_path)


def _process_uid(pid: int) -> Optional[int]:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _signal_checked(pid: int, config_path: Union[str, Path], allowed_uids: set[int],
                    unit: str) -> str:
    """SIGHUP ``pid`` if it is our service; a message saying what was done."""
    pidfd: Optional[int] = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)  # pins the process: a reused PID is a different pidfd
        except OSError:
            return f"pid {pid} from {STATUS_FILE} is gone; nothing signalled"
    try:
        if not is_frugalai_run(pid, config_path) or _process_uid(pid) not in allowed_uids:
            return (f"pid {pid} named in {STATUS_FILE} is not a 'frugalai run' of "
                    f"{config_path} owned by the service user: NOT signalled (run: systemctl "
                    f"reload {unit})")
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, signal.SIGHUP)
        else:  # pragma: no cover - kernels older than 5.3
            os.kill(pid, signal.SIGHUP)
    except OSError as err:
        return f"could not signal the service (pid {pid}): {err}; run: systemctl reload {unit}"
    finally:
        if pidfd is not None:
            os.close(pidfd)
    return f"asked the running service (pid {pid}) to reload"


def reload_service(state_dir: Union[str, Path], config_path: Union[str, Path],
                   unit: str = "frugalai") -> str:
    """Ask the service running ``config_path`` to reload; a message saying what was done."""
    main_pid = systemd_main_pid(unit)
    systemctl = _systemctl()
    if main_pid is not None and systemctl is not None:
        try:
            done = subprocess.run([systemctl, "reload", unit], capture_output=True, text=True,
                                  timeout=30)
        except (OSError, subprocess.SubprocessError) as err:
            return f"systemctl reload {unit} failed: {err}"
        if done.returncode != 0:
            return f"systemctl reload {unit} failed: {done.stderr.strip()}"
        return f"asked systemd to reload {unit} (main pid {main_pid})"
    report = read_status(state_dir)
    pid = report.get("pid")
    if report.get("state") != "running" or not isinstance(pid, int) or pid <= 0:
        return "no running service found; it will load the model at its next start"
    allowed = {os.geteuid()}
    try:
        allowed.add(os.stat(Path(state_dir) / STATUS_FILE).st_uid)
    except OSError:
        pass
    return _signal_checked(pid, config_path, allowed, unit)
