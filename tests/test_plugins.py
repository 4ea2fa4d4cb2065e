"""A third-party plugin works end to end without touching core files.

``tests/plugins/frugalai_testplugin`` is its own distribution (installed in the dev venv by the
Makefile, as a user installs a plugin with pip) registering, by entry point only, a backend
(``twin``), an uplink (``tap://``) and a codec (``csv``). These tests check that
``frugalai plugins`` lists them with their origin, ``frugalai config check`` accepts a config
naming them, and ``frugalai run`` really uses them: the flow's model runs on the plugin backend,
events leave through the plugin uplink, encoded by the plugin codec, and the built-in ``file://``
uplink takes the plugin codec too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from policy_flow import policy_flow_config

from frugalai import registry
from frugalai.cli import cli
from frugalai.runtime.model import shipped_models_dir

PLUGIN = Path(__file__).parent / "plugins" / "frugalai_testplugin"
DIST = "frugalai-testplugin"


@pytest.fixture(scope="module", autouse=True)
def plugin_installed() -> None:
    if "twin" not in registry.backends:
        pytest.fail(f"the test plugin is not installed in this venv: run `make "
                    f".venv/.test-installed` (pip install --no-deps -e {PLUGIN})")


def test_plugins_lists_each_kind_with_its_origin() -> None:
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert set(found) >= {"source", "protocol", "uplink", "backend", "codec", "decoder", "meter"}
    by_name = {(kind, e["name"]): e for kind, entries in found.items() for e in entries}
    for kind, name, target in [("backend", "twin", "frugalai_testplugin:TwinBackend"),
                               ("uplink", "tap", "frugalai_testplugin:TapSink.from_url"),
                               ("codec", "csv", "frugalai_testplugin:CSV")]:
        entry = by_name[(kind, name)]
        assert entry["origin"] == "plugin" and entry["target"] == target
        assert entry["distribution"].startswith(DIST + " ")
    reference = by_name[("backend", "reference")]
    assert reference == {"name": "reference", "origin": "built-in",
                         "target": "frugalai.runtime.backends:ReferenceBackend"}
    # Every built-in name's target really imports (the listing is not a hand-kept copy).
    for kind, reg in registry.ALL.items():
        for e in reg.entries():
            if e.origin == "built-in":
                assert callable(e.load()) or kind == "codec", (kind, e.name)


def test_plugins_text_listing_names_the_distribution() -> None:
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0
    line = next(ln for ln in result.output.splitlines() if ln.strip().startswith("twin"))
    assert "plugin" in line and DIST in line and "frugalai_testplugin:TwinBackend" in line
    assert "backends (entry points: frugalai.backends):" in result.output


def _config(tmp_path: Path, data_dir: Path, backend: str = "twin") -> Path:
    csv = data_dir / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[gateway]
id = "gw"
state_dir = "{tmp_path / 'state'}"
models_dir = "{shipped_models_dir()}"

[[flow]]
name = "nl"
source = "replay://{csv}?speed=max&value=value:power_kw:kW&limit=2880&end=wait"
quantity = "power_kw"
aggregate = "mean"
window_s = 900
model = "energy-anomaly"
backend = "{backend}"
summary_s = 1

[[uplink]]
url = "tap://{tmp_path / 'tap.csv'}"

[[uplink]]
url = "file://{tmp_path / 'file.csv'}?codec=csv"
""")
    return path


def test_config_check_accepts_plugin_names_and_refuses_unknown_ones(tmp_path: Path,
                                                                    data_dir: Path) -> None:
    ok = CliRunner().invoke(cli, ["config", "check", str(_config(tmp_path, data_dir))])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(cli, ["config", "check", str(_config(tmp_path, data_dir, "twim"))])
    assert bad.exit_code == 2
    assert "flow[0].backend" in bad.output and "twin" in bad.output  # the plugin is listed


def test_run_uses_the_plugin_backend_uplink_and_codec(tmp_path: Path, data_dir: Path) -> None:
    """30 days of real 15-min data replayed through ``frugalai run``: the energy-anomaly model
    runs on ``twin``, and every event reaches both uplinks as a ``csv`` line."""
    log = tmp_path / "twin.log"
    env = {**os.environ, "FRUGALAI_TESTPLUGIN_LOG": str(log)}
    out = subprocess.run([sys.executable, "-m", "frugalai", "run", "--config",
                          str(_config(tmp_path, data_dir)), "--duration", "8"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    calls = log.read_text().splitlines()
    assert calls and all(c.startswith(("twin predict_one rows=1", "twin predict_many rows="))
                         for c in calls)
    csv = registry.codecs.get("csv")
    tap = [csv.decode(line.encode()) for line in (tmp_path / "tap.csv").read_text().splitlines()]
    filed = [csv.decode(line.encode())
             for line in (tmp_path / "file.csv").read_text().splitlines()]
    assert tap and tap == filed
    assert all(e["sensor"] == "nl" for e in tap)
    # A summary (one a second, wall clock) carries the period's highest model score: the
    # replay ends within the first period, so the first summary holds the twin's scores.
    summaries = [e for e in tap if e["kind"] == "summary"]
    assert summaries and summaries[0]["score"] > 0


def test_a_plugin_policy_decides_the_events_of_a_run(tmp_path: Path) -> None:
    """``[flow.policy] kind = "edge"`` (the plugin's), on = 10, off = 5: a threshold flow whose
    60-s windows (aligned to the minute, the data starts at :20) have means 0, 10, 20, 6.7,
    13.3, 6.7, 0 alarms on each window >= 10 (3 alarms; hysteresis would give one) and clears
    at the first one below 5; config check lists the plugin policy when a name is wrong."""
    out = tmp_path / "events.csv"

    def config(kind: str) -> Path:
        return policy_flow_config(tmp_path, kind, f"tap://{out}", name=kind,
                                  policy_extra="  max_per_hour = 0\n")

    bad = CliRunner().invoke(cli, ["config", "check", str(config("edgy"))])
    assert bad.exit_code == 2 and "flow.x.policy.kind" in bad.output and "edge" in bad.output
    ok = CliRunner().invoke(cli, ["config", "check", str(config("edge"))])
    assert ok.exit_code == 0, ok.output
    run = subprocess.run([sys.executable, "-m", "frugalai", "run", "--config",
                          str(config("edge")), "--duration", "4"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    csv = registry.codecs.get("csv")
    kinds = [csv.decode(line.encode())["kind"] for line in out.read_text().splitlines()]
    assert kinds == ["alarm", "alarm", "alarm", "clear"], kinds
