"""A reload, then a full disk: the kept flows store through the live pipeline, nothing is lost.

The real daemon (``frugalai run``) on two emulated TIC meters, a real SIGHUP that keeps flow
``a`` and swaps a new flow ``b`` onto its open port, then the state dir's file system really
fills: it is a small tmpfs mounted for the test (we run as root in CI; without the right to
mount, the test says so and is skipped), filled to ENOSPC by a file. Events wait in memory
(counted in the status files), are stored when the filler is removed, and every one created
is delivered.

Before the flow plans, kept flows stored through the old pipeline object: their events were
held in its memory, never retried, and counted nowhere (908 of 1,197 lost in the probe).
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_helpers import Daemon, flow_toml, gateway_toml, start_meter, status, wait_for

from frugalai.sim.tic_meter import TicMeterEmulator


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(state)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the state dir (needs root and "
                    f"CAP_SYS_ADMIN): {mount.stderr.strip()}")
    yield state
    subprocess.run(["umount", "-l", str(state)], check=False)


@pytest.fixture
def meters(tmp_path: Path) -> Iterator[dict[str, TicMeterEmulator]]:
    started = {name: start_meter(tmp_path / f"tty{name}") for name in ("a", "b")}
    yield started
    for meter in started.values():
        meter.close()


def fill(state: Path) -> Path:
    """Write a file until the file system says ENOSPC."""
    filler = state / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC, err
    finally:
        os.close(fd)
    return filler


def prom(path: Path, name: str) -> float:
    try:
        text = path.read_text()
    except OSError:
        return -1.0
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else -1.0


def delivered(path: Path) -> Counter[str]:
    """Delivered event ids per flow (alarm/clear only), duplicates collapsed."""
    ids = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event["kind"] != "summary":
            ids[event["id"]] = event["sensor"]
    return Counter(ids.values())


def test_after_a_reload_a_full_disk_loses_nothing(tmp_path: Path, small_disk: Path,
                                                  meters: dict) -> None:
    state = small_disk
    events = tmp_path / "events.jsonl"
    prom_file = tmp_path / "frugalai.prom"  # outside the full disk, to watch it fill
    config = tmp_path / "gateway.toml"

    def write(b_on: float) -> None:
        flows = [flow_toml("a", tmp_path / "ttya", 1),
                 flow_toml("b", tmp_path / "ttyb", 2).replace("on = 2000.0", f"on = {b_on}")]
        config.write_text(gateway_toml(state, flows, [f"file://{events}"],
                                       f'prometheus_textfile = "{prom_file}"'))

    write(2000.0)
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        wait_for(lambda: events.exists() and min(delivered(events)[f] for f in "ab") >= 2,
                 30, "events from both flows")
        write(2100.0)  # flow b's policy changes (a new flow on its open port), a is kept
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "1 flow(s) kept, started: none; new model/settings on the open "
                         "source: b" in daemon.log_text(), 30, "the reload")
        filler = fill(state)
        held = wait_for(lambda: prom(prom_file, "frugalai_outbox_held_in_memory") >= 4, 60,
                        "events held in memory while the disk is full")
        assert held
        assert "held" in daemon.log_text() or "holding" in daemon.log_text()
        filler.unlink()  # space comes back
        wait_for(lambda: prom(prom_file, "frugalai_outbox_held_in_memory") == 0, 60,
                 "the held events stored")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        if daemon.alive():
            daemon.kill()
    final = status(state)
    assert final["state"] == "stopped"
    assert final["outbox"]["lost"] == 0 and final["outbox"]["held_in_memory"] == 0
    got = delivered(events)
    # Flow a ran through the reload and the full disk: every event it created was delivered.
    assert got["a"] == final["flows"]["a"]["events"] > 0, (got, final["flows"]["a"])
    assert prom(prom_file, "frugalai_events_lost_total") == 0
