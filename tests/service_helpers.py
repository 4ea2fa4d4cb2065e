"""Helpers for the service tests: emulated meters with a known load, the real daemon process.

The meters are the project's TIC emulator on real ptys; only their consumption is a square
wave, so that the ``threshold`` model turns it into a steady stream of alarm/clear events (a
real household profile gives one event a day, too few to count deliveries across crashes).
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

from frugalai.sim.clock import SimClock
from frugalai.sim.pty import PtyPort
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.uplink.outbox import OUTBOX_FILE

ROOT = Path(__file__).resolve().parents[1]


class SquareLoad:
    """Apparent power alternating between ``low`` and ``high`` every ``half_period_s``."""

    def __init__(self, half_period_s: float = 20.0, low: float = 500.0, high: float = 3000.0):
        self.half_period_s = half_period_s
        self.low = low
        self.high = high

    def power(self, ts: float) -> float:
        return self.high if int(ts // self.half_period_s) % 2 else self.low


def start_meter(link: Path, speed: float = 10.0) -> TicMeterEmulator:
    """A TIC meter sending a frame every 0.15 s (real) on a pty reachable at ``link``."""
    clock = SimClock(time.time(), speed)
    return TicMeterEmulator(SquareLoad(), clock, frame_period_s=1.5,  # type: ignore[arg-type]
                            port=PtyPort(link=str(link))).start()


def flow_toml(name: str, link: Path, sensor_id: int) -> str:
    # TIC's own 7E1: some kernels (seen on 6.18) refuse a second 7E1 tcsetattr on the same
    # pty with EINVAL, which every restart of the daemon does; the source then opens 8N1 and
    # checks the parity in software (frugalai/sources/serial_open.py), as a gateway must.
    return f"""
[[flow]]
name = "{name}"
source = "serial://{link}?protocol=tic&mode=historique"
sensor_id = {sensor_id}
quantity = "apparent_power_va"
aggregate = "mean"
window_s = 1
model = "threshold"
  [flow.policy]
  on = 2000.0
  off = 1000.0
"""


def gateway_toml(state: Path, flows: list[str], uplinks: list[str], extra: str = "") -> str:
    ups = "".join(f'\n[[uplink]]\nurl = "{u}"\n' for u in uplinks)
    return (f'[gateway]\nid = "test-gw"\nstate_dir = "{state}"\nmodels_dir = "{state}/models"\n'
            f"\n[service]\nstatus_interval_s = 0.5\nstop_timeout_s = 10.0\n{extra}\n"
            + "".join(flows) + ups)


class Daemon:
    """The real ``frugalai run`` process."""

    def __init__(self, config: Path, log: Path, env: Optional[dict[str, str]] = None) -> None:
        self.config = config
        self.log = log
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        full_env.pop("JOURNAL_STREAM", None)
        self.log_fh = open(log, "ab")  # noqa: SIM115 - closed in wait()/kill()
        self.proc = subprocess.Popen([sys.executable, "-m", "frugalai", "run", "--config",
                                      str(config)], env=full_env, stdout=self.log_fh,
                                     stderr=subprocess.STDOUT)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.log_fh.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def wait_running(self, state: Path, timeout: float = 20.0) -> None:
        """Until the daemon has written a running status (its signal handlers are in place)."""
        wait_for(lambda: status(state).get("pid") == self.proc.pid
                 and status(state).get("state") == "running", timeout, "the daemon running")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "",
             every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")


class Received:
    """Event ids a real MQTT subscriber got from the broker, counted (duplicates > 1)."""

    def __init__(self, broker: Any) -> None:
        from mqtt_subscriber import Subscriber

        self.url = broker.url + "?timeout=3"
        self.subscriber = Subscriber(broker.host, broker.port, ("frugalai/+/+/event",))

    def ids(self) -> Counter[str]:
        return Counter(self.subscriber.ids())

    def settle(self, expected: set[str], timeout: float = 10.0) -> bool:
        """Wait until every expected id has arrived (QoS 1 messages still in flight)."""
        return self.subscriber.wait_for(lambda: set(self.subscriber.ids()) >= expected, timeout)

    def close(self) -> None:
        self.subscriber.close()


class ReceivedFile:
    """The same for the JSON-lines ``file://`` uplink, where the MQTT uplink is not built in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"file://{path}"

    def ids(self) -> Counter[str]:
        ids: Counter[str] = Counter()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    ids[json.loads(line)["id"]] += 1
                except ValueError:  # a line cut by SIGKILL mid-write; not marked sent: resent
                    pass
        return ids

    def settle(self, expected: set[str], timeout: float = 10.0) -> bool:
        return set(self.ids()) >= expected

    def close(self) -> None:
        pass


def created_ids(state: Path) -> set[str]:
    """Ids of every event the pipeline ever stored: seq 0..next-1 per sensor (the outbox's
    persisted counters; delivered rows may have been pruned since)."""
    db = state / OUTBOX_FILE
    if not db.exists():
        return set()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        rows = list(con.execute("SELECT sensor, next FROM sequences"))
    except sqlite3.OperationalError:  # killed before the schema was written
        return set()
    finally:
        con.close()
    return {f"{sensor}:{seq}" for sensor, n in rows for seq in range(n)}


def pending_count(state: Path) -> int:
    db = state / OUTBOX_FILE
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return int(con.execute("SELECT COUNT(*) FROM events WHERE sent_at IS NULL")
                   .fetchone()[0])
    finally:
        con.close()


def status(state: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((state / "status.json").read_text()))
    except (OSError, ValueError):
        return {}


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def collect(self, until: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(self.messages):
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return self.messages

    def close(self) -> None:
        self.sock.close()


def unit_user() -> str:
    """Who the unit tests render a unit for: a dedicated service user (``gw``, not created)
    when this checkout is reachable by one, else the user running the tests.

    ``service install`` rightly refuses an interpreter or package the service user cannot
    reach, and a checkout in a private directory (mode 0700, a new home on Debian 12 when
    outside the homes ProtectHome= hides) is one: the tests below are about the unit's text,
    so they render it for a user who can run this checkout. The refusal itself is tested by
    test_an_interpreter_under_a_home_is_bound_read_only_and_a_closed_dir_refused.
    """
    from frugalai.errors import ConfigError
    from frugalai.service.install import check_interpreter

    try:
        check_interpreter(sys.executable, "gw")
    except ConfigError:
        return pwd.getpwuid(os.geteuid()).pw_name
    return "gw"
