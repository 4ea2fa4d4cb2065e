"""The model on the sensor node: the generated header, the C features and policy, the sketch.

``firmware_bridge/src/fa_energy_anomaly.h`` is generated from the shipped bundle (committed so
that a node build needs no Python); regenerating it must give the same file. The node's code
(``fa_energy_features.h`` + the header's integer-only int8 net) runs here on the host over the
real Dutch load curve and must give the gateway's scores (EnergyFeatures + the reference int8
backend + Hysteresis) bit for bit, and the same alarms. The example sketch
(``examples/energy_edge_node``) builds on the host like the other sketches.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from frugalai.events.policy import Hysteresis
from frugalai.features.energy import EnergyFeatures
from frugalai.runtime import load_model
from frugalai.runtime.model import shipped_models_dir
from frugalai.runtime.native import node_header

FB = Path(__file__).resolve().parent.parent / "firmware_bridge"
BUNDLE = shipped_models_dir() / "energy-anomaly"
CC = shutil.which("cc") or shutil.which("gcc")
CXX = shutil.which("g++") or shutil.which("c++")


def test_committed_node_header_is_what_the_generator_gives() -> None:
    committed = (FB / "src" / "fa_energy_anomaly.h").read_text()
    assert committed == node_header(BUNDLE), (
        "regenerate: python -m frugalai.runtime.native models/energy-anomaly "
        "firmware_bridge/src/fa_energy_anomaly.h")


@pytest.mark.skipif(CC is None, reason="no C compiler (scripts/install-sysdeps installs gcc)")
@pytest.mark.parametrize("overrides", [{}, {"day_types": 1, "floor_abs": 40.0,
                                            "tz_offset_h": 1.0}])
def test_node_scores_and_alarms_equal_the_gateway_reference(tmp_path: Path, data_dir: Path,
                                                            overrides: dict) -> None:
    """The shipped card, and a card with the other feature options (one day type, an
    absolute floor, a time zone), through the generated header."""
    bundle = BUNDLE
    if overrides:
        bundle = tmp_path / "bundle"
        shutil.copytree(BUNDLE, bundle)
        card = json.loads((bundle / "card.json").read_text())
        card["features"]["params"].update(overrides)
        (bundle / "card.json").write_text(json.dumps(card))
    include = tmp_path / "include"
    include.mkdir()
    (include / "fa_energy_anomaly.h").write_text(node_header(bundle))
    exe = tmp_path / "edge"
    subprocess.run([str(CC), "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2",
                    f"-I{include}", f"-I{FB / 'src'}", "-o", str(exe),
                    str(FB / "test" / "edge_energy.c"), "-lm"], check=True)
    path = data_dir / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
    with open(path) as fh:
        rows = [(datetime.fromisoformat(r["timestamp"]).replace(tzinfo=timezone.utc).timestamp(),
                 float(r["value"])) for r in csv.DictReader(fh)]
    rows = rows[:12000]
    rows[9000] = (rows[9000][0], rows[9000][1] * 3.0)  # an anomaly, so the policy fires
    del rows[5000:5010]  # a gap, so the sliding vector restarts
    text = "\n".join(f"{ts!r} {v!r}" for ts, v in rows) + "\n"
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True,
                         timeout=60).stdout.split("\n")[:-1]
    card = load_model(bundle).card
    features = EnergyFeatures(**card["features"]["params"])
    model = load_model(bundle, "reference", "int8")
    policy = Hysteresis(**card["policy"])
    assert len(out) == len(rows)
    scored = events = 0
    for (ts, value), line in zip(rows, out):
        row = features.update_one(ts, value)
        if row is None:
            assert line == "-", (ts, line)
            continue
        score = float(model.predict_one(row))
        kind = policy.update_one(score)
        got_score, got_event = line.split()
        assert float(got_score) == score, (ts, got_score, score)
        assert int(got_event) == {None: 0, "alarm": 1, "clear": -1}[kind]
        scored += 1
        events += kind is not None
    assert scored > 8000 and events >= 2


@pytest.mark.skipif(CXX is None or CC is None, reason="no C/C++ compiler")
def test_edge_sketch_builds_on_the_host_and_sends_nothing_while_it_learns(
        tmp_path: Path) -> None:
    obj = tmp_path / "fb_frame.o"
    subprocess.run([str(CC), "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{FB / 'src'}", "-c",
                    str(FB / "src" / "fb_frame.c"), "-o", str(obj)], check=True)
    exe = tmp_path / "edge_node"
    proc = subprocess.run(
        [str(CXX), "-std=c++11", "-Wall", "-Wextra", "-Werror", f"-I{FB / 'test' / 'arduino'}",
         f"-I{FB / 'src'}", "-include", "Arduino.h", "-x", "c++",
         str(FB / "examples" / "energy_edge_node" / "energy_edge_node.ino"), "-x", "none",
         str(FB / "test" / "arduino" / "host_main.cpp"), str(obj), "-o", str(exe)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # 31 minutes at a steady 1,440 W: two windows close, the slots are still learning (a slot
    # needs 3 days of history): no event, so nothing goes on the air.
    done = subprocess.run([str(exe), "1860", "2500", "700"], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout == ""
