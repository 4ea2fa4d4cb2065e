"""The docs, followed command by command from the wheel (tests/doc_walk.py says how blocks are
marked and matched).

docs/fleet.md's walk-through: a real Mosquitto, two gateways each reading an emulated Linky on
a pty (standing for /dev/ttyUSB0 and /dev/ttyUSB1), a model trained on the Dutch 1997 demand
(../shared/data), rolled out with `fleet rollout`, a restart, the events collected. The wheel is
built with the README's command and installed with the extras the walk names in a fresh venv
outside the checkout; every command runs from a directory of its own.

Slow (a wheel, a venv with the training extras, a fleet): marked ``slow``, run by ``make test``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from doc_walk import Walk, blocks, commands, matches
from test_wheel_install import _clean_env, readme_wheel_command

from frugalai.sim.clock import SimClock
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.tic_meter import TicMeterEmulator

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: the extras docs/fleet.md's walk-through installs the wheel with.
FLEET_EXTRAS = "mqtt,sign,train"


@pytest.fixture(scope="module")
def fleet_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the wheel with the walk's extras (no system packages)."""
    text = (ROOT / "docs" / "fleet.md").read_text()
    assert f"[{FLEET_EXTRAS}]" in text, "the walk-through must name the extras it installs"
    base = tmp_path_factory.mktemp("walk-wheel")
    build = subprocess.run(readme_wheel_command(base / "dist"), capture_output=True, text=True,
                           timeout=600, env=_clean_env(), cwd=ROOT)
    assert build.returncode == 0, build.stderr
    wheel = next((base / "dist").glob("frugalai-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                          f"{wheel}[{FLEET_EXTRAS}]"], capture_output=True, text=True,
                         timeout=1800, env=_clean_env())
    if pip.returncode != 0 and "No matching distribution" in pip.stderr:
        pytest.skip(f"the walk's extras cannot be installed here: {pip.stderr[-300:]}")
    assert pip.returncode == 0, pip.stderr
    return venv / "bin"


@pytest.fixture
def meters() -> Iterator[list[str]]:
    """Two Linkys in standard mode on ptys, their clock at 600x (a window closes in 1.5 s)."""
    started = []
    try:
        for seed in (1, 2):
            meter = TicMeterEmulator(HouseholdProfile(seed=seed), SimClock(time.time(), 600.0),
                                     frame_period_s=60.0, seed=seed, mode="standard")
            meter.start()
            started.append(meter)
        yield [m.path for m in started]
    finally:
        for m in started:
            m.close()


def test_the_walk_marks_are_well_formed() -> None:
    """Every mark of the walk names a known kind, every output block follows commands."""
    doc = ROOT / "docs" / "fleet.md"
    found = blocks(doc, "fleet")
    assert {b.kind for b in found} <= {"run", "file", "output", "wait", "restart", "stop"}
    for before, block in zip(found, found[1:]):
        if block.kind == "output":
            assert before.kind in ("run", "wait", "stop"), block.line
    assert all(commands(b.text) for b in found if b.kind in ("run", "wait", "restart", "stop"))
    assert matches("a ... c\n...\nz\n", "a b c\nx\ny\nz\n") is None
    assert matches("a ... c\n", "a b d\n") == "line 1: expected 'a ... c', got 'a b d'"


def test_docs_fleet_walk_from_the_wheel(fleet_venv: Path, meters: list[str], mosquitto,  # type: ignore[no-untyped-def]
                                        data_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "walk"
    work.mkdir()
    env = {**_clean_env(), "PATH": f"{fleet_venv}{os.pathsep}{os.environ.get('PATH', '')}"}
    data = data_dir / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
    for i, pty in enumerate(meters):  # (links, so that the doc's sed renaming still applies)
        (work / f"ttyUSB{i}").symlink_to(pty)
    walk = Walk(ROOT / "docs" / "fleet.md", "fleet", work, env, subs=[
        ("127.0.0.1:1883", f"127.0.0.1:{mosquitto.port}"),   # the test's broker
        ("/dev/ttyUSB", f"{work}/ttyUSB"),  # links to the emulated meters' ptys
        ("--data power_demand_1997_labeled.csv", f"--data {data}"),  # the shared data
    ])
    try:
        steps = walk.follow()  # a TIC flow that does not reopen its port fails here
    finally:
        walk.close()
    assert any(s.startswith("restarted frugalai run") for s in steps), steps
    import sqlite3

    with sqlite3.connect(work / "events.sqlite") as db:  # both gateways' events collected
        gateways = {row[0] for row in db.execute("SELECT DISTINCT gateway FROM events")}
    assert gateways == {"gw-01", "gw-02"}, gateways


@pytest.fixture
def pi_meter() -> Iterator[str]:
    """A Linky in historique mode (1200 7E1) on a pty: the Pi's /dev/serial0."""
    meter = TicMeterEmulator(HouseholdProfile(seed=3), SimClock(time.time(), 1.0))
    meter.start()
    try:
        yield meter.path
    finally:
        meter.close()


def test_docs_gateway_setup_walk_from_the_wheel(fleet_venv: Path, pi_meter: str,
                                                tmp_path: Path) -> None:
    """docs/gateway-setup.md, section 5: config, `service install`, the service started,
    `status`, `doctor`. What a test cannot do is mapped, each by one declared line: /etc and
    /var/lib go to the walk's directory, `sudo` is dropped (the test runs as its own user, who
    is the unit's --user), and systemd's start is the unit's own ExecStart, run by hand."""
    import pwd

    work = tmp_path / "gw"
    work.mkdir()
    (work / "serial0").symlink_to(pi_meter)
    me = pwd.getpwuid(os.geteuid()).pw_name
    env = {**_clean_env(), "PATH": f"{fleet_venv}{os.pathsep}{os.environ.get('PATH', '')}"}
    units = work / "units"
    walk = Walk(ROOT / "docs" / "gateway-setup.md", "gateway", work, env, subs=[
        ("sudo systemctl daemon-reload && sudo systemctl enable --now frugalai",
         f"$(sed -n 's/^ExecStart=//p' {units}/frugalai.service) &"),
        ("sudo frugalai service install --config",
         f"frugalai service install --user {me} --unit-dir {units} --config"),
        ("sudo frugalai doctor --config",
         f"frugalai doctor --user {me} --unit-dir {units} --config"),
        ("/etc/systemd/system", str(units)),
        ("/etc/frugalai/", f"{work}/etc/"),
        ("/var/lib/frugalai", f"{work}/state"),
        ("/dev/serial0", f"{work}/serial0"),
    ])
    try:
        steps = walk.follow()
    finally:
        walk.close()
    assert any(s.startswith("started $(sed") for s in steps) or any(
        "systemctl" in s for s in steps), steps
    assert (units / "frugalai.service").is_file()
