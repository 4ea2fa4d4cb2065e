"""Rollout of any bundle: a bundle a user trains gets a version, can be signed and rolled out,
and then runs on a gateway that checks signatures; the shipped bundles under a public key are
trusted by an explicit, documented setting, never refused in silence.

Real parts: `frugalai train` on a CSV, `fleet keygen`, a real Mosquitto with a real agent
process, `fleet rollout` and `config check` as a user runs them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_fleet_rollout import wait_for
from test_own_site import _sensor_csv

from frugalai.cli import cli
from frugalai.fleet.health import model_info
from frugalai.runtime.bundle import SIGNATURE, shipped_models_dir, verify_bundle
from frugalai.runtime.stamp import content_sha256, time_version

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
FRUGALAI = [sys.executable, "-m", "frugalai"]


def train(tmp_path: Path, out: Path, *extra: str) -> Any:
    src = tmp_path / "sensor.csv"
    if not src.exists():
        _sensor_csv(src, 30, 3600)
    return CliRunner().invoke(cli, ["train", "anomaly", "--data", str(src), "--quantity",
                                    "temperature", "--tz", "+00:00", "--name", "my-sensor",
                                    "--out", str(out), *extra])


def gateway_config(tmp_path: Path, models: Path, public: str, model: str,
                   extra: str = "") -> Path:
    path = tmp_path / "gateway.toml"
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "t.csv").write_text("time,temperature\n2024-01-01T00:00:00,20.5\n")
    path.write_text(f"""
[gateway]
id = "gw-a"
state_dir = "{tmp_path / 'state'}"
models_dir = "{models}"

[models]
public_key = "{public}"
{extra}

[[flow]]
name = "sensor"
source = "replay://{tmp_path / 't.csv'}"
quantity = "temperature"
model = "{model}"
""")
    return path


def test_train_writes_a_time_version_and_its_content_hash(tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    before = time.time()
    res = train(tmp_path, tmp_path / "b1")
    assert res.exit_code == 0, res.output
    card = verify_bundle(tmp_path / "b1").card
    # the UTC time of the training, YYYY.MMDD.HHMMSS: a later training is a newer version
    assert re.fullmatch(r"\d{4}\.\d{4}\.\d{6}", card["version"]), card["version"]
    assert time_version(before - 1) <= card["version"] <= time_version(time.time() + 1)
    assert card["content_sha256"] == content_sha256(card)
    printed = res.stdout[res.stdout.index("{"):]
    assert f'{card["version"]}@' in printed, printed  # the run says which version it wrote
    given = train(tmp_path, tmp_path / "b2", "--version", "2.1")
    assert given.exit_code == 0 and verify_bundle(tmp_path / "b2").card["version"] == "2.1"
    # a version a rollout could not take is refused before any training (exit 2, no output)
    bad = train(tmp_path, tmp_path / "b3", "--version", "v2-final")
    assert bad.exit_code == 2 and "1 to 4 dotted numbers" in bad.output
    assert not (tmp_path / "b3").exists()


def test_models_sign_makes_a_bundle_a_keyed_gateway_accepts(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="signatures need the 'sign' extra")
    import shutil

    key = tmp_path / "op.key"
    assert CliRunner().invoke(cli, ["fleet", "keygen", "--out", str(key)]).exit_code == 0
    public = (tmp_path / "op.key.pub").read_text().strip()
    mine = tmp_path / "incoming" / "my-meter"
    shutil.copytree(shipped_models_dir() / "energy-anomaly", mine)
    config = gateway_config(tmp_path, tmp_path / "models", public, "energy-anomaly")
    installed = CliRunner().invoke(cli, ["models", "install", str(mine), "--config",
                                         str(config), "--no-reload"])
    assert installed.exit_code == 1 and "unsigned bundle" in installed.output
    # the shipped card has no version: signing says how to give one
    unversioned = CliRunner().invoke(cli, ["models", "sign", str(mine), "--key", str(key)])
    assert unversioned.exit_code == 1 and "--version 1.0" in unversioned.output
    signed = CliRunner().invoke(cli, ["models", "sign", str(mine), "--key", str(key),
                                      "--version", "1.0"])
    assert signed.exit_code == 0, signed.output
    assert f'[models] public_key = "{public}"' in signed.output
    assert (mine / SIGNATURE).is_file()
    installed = CliRunner().invoke(cli, ["models", "install", str(mine), "--config",
                                         str(config), "--no-reload"])
    assert installed.exit_code == 0, installed.output
    assert "energy-anomaly: installed 1.0@" in installed.output
    # the shipped directory itself is never rewritten
    shipped = CliRunner().invoke(cli, ["models", "sign", str(shipped_models_dir() /
                                                             "energy-anomaly"),
                                       "--key", str(key), "--version", "9"])
    assert shipped.exit_code == 1 and "copy it" in shipped.output
    assert not (shipped_models_dir() / "energy-anomaly" / SIGNATURE).exists()


def test_shipped_bundles_under_a_public_key_are_trusted_by_an_explicit_setting(
        tmp_path: Path) -> None:
    public = "ab" * 32
    config = gateway_config(tmp_path, tmp_path / "models", public, "energy-anomaly")
    checked = CliRunner().invoke(cli, ["config", "check", "--explain", str(config)])
    assert checked.exit_code == 0, checked.output
    assert re.search(r"^default\s+models\.trust_shipped\s+True$", checked.output, re.M)
    doctor = subprocess.run([*FRUGALAI, "doctor", "--config", str(config), "--user", "root",
                             "--unit-dir", str(tmp_path)], capture_output=True, text=True,
                            env=ENV, timeout=120)
    line = next(ln for ln in doctor.stdout.splitlines() if ln.startswith("✓ model sensor"))
    assert "shipped: trusted unsigned ([models] trust_shipped)" in line, doctor.stdout
    # the setting off: refused by name, with both ways out, by config check as run would
    strict = gateway_config(tmp_path, tmp_path / "models", public, "energy-anomaly",
                            "trust_shipped = false")
    refused = CliRunner().invoke(cli, ["config", "check", str(strict)])
    assert refused.exit_code == 2, refused.output
    assert "flow.sensor.model" in refused.output and "unsigned bundle" in refused.output
    assert "set [models] trust_shipped = true, or sign a copy" in refused.output
    run = subprocess.run([*FRUGALAI, "run", "--config", str(strict), "--duration", "1"],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert run.returncode == 2 and "trust_shipped" in run.stderr, run.stderr


def test_a_user_trained_bundle_rolls_out_and_runs_where_signatures_are_checked(
        mosquitto: Any, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    pytest.importorskip("cryptography", reason="rollouts need the 'sign' extra")
    res = train(tmp_path, tmp_path / "my-sensor")
    assert res.exit_code == 0, res.output
    version = verify_bundle(tmp_path / "my-sensor").card["version"]
    assert not (tmp_path / "my-sensor" / SIGNATURE).exists()  # trained, never signed by hand
    keygen = subprocess.run([*FRUGALAI, "fleet", "keygen", "--out", str(tmp_path / "op.key")],
                            capture_output=True, text=True, env=ENV, timeout=60)
    assert keygen.returncode == 0, keygen.stderr
    public = (tmp_path / "op.key.pub").read_text().strip()
    models = tmp_path / "gw-a" / "models"
    config = gateway_config(tmp_path / "gw-a", models, public, "my-sensor")
    agent = subprocess.Popen([*FRUGALAI, "fleet", "agent", "--config", str(config), "--broker",
                              mosquitto.url, "--status-interval", "1"], env=ENV,
                             stdout=open(tmp_path / "agent.log", "wb"),  # noqa: SIM115
                             stderr=subprocess.STDOUT)
    try:
        def online() -> bool:
            st = subprocess.run([*FRUGALAI, "fleet", "status", "--broker", mosquitto.url,
                                 "--wait", "1"], capture_output=True, text=True, env=ENV,
                                timeout=60)
            return "1 gateway(s)" in st.stdout
        wait_for(online, 60, "the agent online")
        done = subprocess.run([*FRUGALAI, "fleet", "rollout", str(tmp_path / "my-sensor"),
                               "--broker", mosquitto.url, "--key", str(tmp_path / "op.key"),
                               "--timeout", "60"], capture_output=True, text=True, env=ENV,
                              timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr + (tmp_path / "agent.log").read_text()
        assert "gw-a: installed" in done.stdout
    finally:
        agent.terminate()
        agent.wait(30)
    assert model_info(models, "my-sensor")["version"] == version
    # the rollout signed the card it sent: the gateway, which checks signatures, runs it
    assert (models / "my-sensor" / SIGNATURE).is_file()
    checked = CliRunner().invoke(cli, ["config", "check", str(config)])
    assert checked.exit_code == 0, checked.output
