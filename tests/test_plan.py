"""Flow plans: config over card over defaults, and ``config check`` refusing what ``run`` would.

Every check goes through the real CLI (``frugalai config check``): exit code 2 and the key
named, as a user sees it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from policy_flow import policy_flow_config

from frugalai import registry
from frugalai.cli import cli
from frugalai.config import loads_config
from frugalai.errors import ConfigError
from frugalai.runtime.bundle import shipped_models_dir, write_card

ROOT = Path(__file__).resolve().parents[1]

LINKY = """
[gateway]
id = "gw1"
state_dir = "{state}"

[[flow]]
name = "linky"
source = "serial:///dev/ttyUSB0?protocol=tic&mode=historique"
sensor_id = 1
model = "energy-anomaly"
{linky}

[[uplink]]
url = "{uplink}"
"""

COASTAL = """
[gateway]
state_dir = "{state}"

[[flow]]
name = "tide"
source = "lora:///dev/ttyUSB1?modem=rak3172&decoder=fb&node=7"
quantity = "water_level_m"
aggregate = "mean"
model = "coastal-submersion"
{tide}
"""


def check(tmp_path: Path, text: str, *args: str) -> Result:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return CliRunner().invoke(cli, ["config", "check", str(path), *args])


def linky(tmp_path: Path, linky: str = "", uplink: str = "stdout://") -> str:
    return LINKY.format(state=tmp_path / "state", linky=linky, uplink=uplink)


def coastal(tmp_path: Path, tide: str = "") -> str:
    return COASTAL.format(state=tmp_path / "state", tide=tide)


def explained(result: Result) -> dict[str, tuple[str, str]]:
    """key -> (origin, value) from ``config check --explain``."""
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] in ("config", "card", "default"):
            rows[parts[1]] = (parts[0], parts[2])
    return rows


def refused(result: Result, key: str, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert key in result.output, result.output
    for word in words:
        assert word in result.output, result.output


# --- card values are defaults under explicit config values ------------------------------------

def test_a_coastal_flow_without_window_s_gets_the_cards_step(tmp_path: Path) -> None:
    rows = explained(check(tmp_path, coastal(tmp_path), "--explain"))
    assert rows["flow.tide.window_s"] == ("card", "3600")
    assert rows["flow.tide.horizon_h"] == ("card", "3")
    assert rows["flow.tide.threshold_m"] == ("card", "1.987")
    assert rows["flow.tide.decision"] == ("card", "'baseline'")  # the card's decision.default
    assert rows["flow.tide.decision.thresholds"][0] == "card"
    explicit = explained(check(tmp_path, coastal(tmp_path, "window_s = 3600\nthreshold_m = 2.1"),
                               "--explain"))
    assert explicit["flow.tide.window_s"] == ("config", "3600")
    assert explicit["flow.tide.threshold_m"] == ("config", "2.1")


def test_a_window_contradicting_the_card_is_refused(tmp_path: Path) -> None:
    refused(check(tmp_path, coastal(tmp_path, "window_s = 900")), "flow.tide.window_s",
            "3600")


def test_a_horizon_contradicting_the_card_is_refused(tmp_path: Path) -> None:
    refused(check(tmp_path, coastal(tmp_path, "horizon_h = 6")), "flow.tide.horizon_h",
            "trained for a 3 h horizon")


def test_the_policy_default_comes_from_the_card_not_the_built_in(tmp_path: Path) -> None:
    rows = explained(check(tmp_path, linky(tmp_path), "--explain"))
    assert rows["flow.linky.policy.on"] == ("card", "5.0")  # the built-in default is 4.0
    assert rows["flow.linky.policy.off"] == ("card", "2.0")
    assert rows["flow.linky.window_s"] == ("card", "900")
    mine = explained(check(tmp_path, linky(tmp_path, "  [flow.policy]\n  on = 6.5"), "--explain"))
    assert mine["flow.linky.policy.on"] == ("config", "6.5")
    # A flow without a bundle gets the built-in defaults.
    profile = explained(check(tmp_path, linky(tmp_path).replace('model = "energy-anomaly"', ""),
                              "--explain"))
    assert profile["flow.linky.policy.on"] == ("default", "4.0")
    assert profile["flow.linky.profile.tz_offset_h"] == ("default", "1.0")
    assert profile["flow.linky.window_s"] == ("default", "900")


def test_a_written_key_is_config_even_when_it_equals_the_default(tmp_path: Path) -> None:
    # origins used to be guessed by comparing values with the defaults: `id = "frugalai"`,
    # `quantity = "energy_total_wh"` written in the file were reported as "default"
    text = linky(tmp_path, 'quantity = "energy_total_wh"\naggregate = "rate"\nsummary_s = 3600\n'
                           '  [flow.policy]\n  kind = "hysteresis"').replace(
        'id = "gw1"', 'id = "frugalai"') + '\n[service]\nstall_s = 60.0\n'
    rows = explained(check(tmp_path, text, "--explain"))
    for key in ("gateway.id", "gateway.state_dir", "service.stall_s", "flow.linky.quantity",
                "flow.linky.aggregate", "flow.linky.summary_s", "flow.linky.policy.kind",
                "flow.linky.sensor_id"):
        assert rows[key][0] == "config", (key, rows[key])
    for key in ("gateway.outbox_max", "service.watchdog_s", "flow.linky.backend",
                "flow.linky.policy.burst", "energy.lora_dr"):
        assert rows[key][0] == "default", (key, rows[key])


def test_the_profile_time_zone_defaults_to_the_cards(tmp_path: Path) -> None:
    rows = explained(check(tmp_path, linky(tmp_path), "--explain"))
    assert rows["flow.linky.profile.tz_offset_h"] == ("card", "0.0")  # not the built-in 1.0
    mine = explained(check(tmp_path, linky(tmp_path, "  [flow.profile]\n  tz_offset_h = 1.0"),
                           "--explain"))
    assert mine["flow.linky.profile.tz_offset_h"] == ("config", "1.0")


def test_the_resolved_values_reach_the_running_scorer(tmp_path: Path) -> None:
    from frugalai.pipeline import Pipeline

    cfg = loads_config({"gateway": {"state_dir": str(tmp_path)},
                        "flow": [{"name": "linky", "source": "serial:///dev/null?protocol=tic",
                                  "model": "energy-anomaly"}], "uplink": []})
    pipeline = Pipeline.from_config(cfg)
    try:
        flow = pipeline.flows[0]
        assert flow.window.window_s == 900
        assert (flow.policy.on, flow.policy.off) == (5.0, 2.0)  # type: ignore[attr-defined]
        assert flow.scorer.features.tz_offset_h == 0.0  # type: ignore[attr-defined]
    finally:
        pipeline.close()


def test_decision_is_checked_once_and_only_for_classifiers(tmp_path: Path) -> None:
    refused(check(tmp_path, coastal(tmp_path, 'decision = "oracle"')), "flow.tide.decision",
            "'model' or 'baseline'")
    refused(check(tmp_path, linky(tmp_path, 'decision = "baseline"')), "flow.linky.decision",
            "coastal classifier")


# --- config check refuses what run would refuse ------------------------------------------------

def test_an_unknown_uplink_scheme_is_refused(tmp_path: Path) -> None:
    refused(check(tmp_path, linky(tmp_path, uplink="stdot://")), "uplink[0].url",
            "unknown uplink 'stdot'", "stdout")


def test_an_unknown_serial_protocol_is_refused(tmp_path: Path) -> None:
    text = linky(tmp_path).replace("protocol=tic", "protocol=tik")
    refused(check(tmp_path, text), "flow.linky.source", "tik")


def test_an_unknown_tic_mode_is_refused(tmp_path: Path) -> None:
    text = linky(tmp_path).replace("mode=historique", "mode=histo")
    refused(check(tmp_path, text), "flow.linky.source", "histo")


def test_a_misspelt_uplink_option_is_refused_without_connecting(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    url = f"mqtt://gw@127.0.0.1:1?passwrd_file={secret}"
    refused(check(tmp_path, linky(tmp_path, uplink=url)), "uplink[0].url", "passwrd_file",
            "known options")
    # The right spelling passes, and nothing connects (port 1 has no broker).
    ok = check(tmp_path, linky(tmp_path, uplink=url.replace("passwrd", "password")))
    assert ok.exit_code == 0, ok.output
    shown = check(tmp_path, linky(tmp_path, uplink="mqtt://gw:s3cret@127.0.0.1:1"), "--explain")
    assert shown.exit_code == 0 and "gw:***@" in shown.output and "s3cret" not in shown.output


def test_a_model_that_does_not_resolve_is_refused(tmp_path: Path) -> None:
    text = linky(tmp_path).replace('"energy-anomaly"', '"energy-anomoly"')
    refused(check(tmp_path, text), "flow.linky.model", "no model bundle 'energy-anomoly'",
            "energy-anomaly")


def test_a_quantity_the_protocol_never_produces_is_refused(tmp_path: Path) -> None:
    text = linky(tmp_path, 'quantity = "energy_total_kwh"')
    refused(check(tmp_path, text), "flow.linky.quantity", "did you mean 'energy_total_wh'")
    refused(check(tmp_path, coastal(tmp_path).replace("water_level_m", "water_level")),
            "flow.tide.quantity", "did you mean 'water_level_m'")
    assert check(tmp_path, coastal(tmp_path).replace('"water_level_m"', '"rssi_dbm"').replace(
        'model = "coastal-submersion"', 'model = "threshold"')).exit_code == 0


def test_a_precision_the_bundle_lacks_and_an_unknown_policy_are_refused(tmp_path: Path) -> None:
    refused(check(tmp_path, linky(tmp_path, "  [flow.policy]\n  kind = \"hysteresys\"")),
            "flow.linky.policy.kind", "unknown policy 'hysteresys'", "hysteresis")


# --- the model search path ----------------------------------------------------------------------

def test_models_dir_defaults_to_the_state_dir_then_the_shipped_bundles(tmp_path: Path) -> None:
    rows = explained(check(tmp_path, linky(tmp_path), "--explain"))
    assert rows["gateway.models_dir"] == ("default", str(tmp_path / "state" / "models"))
    assert rows["flow.linky.model.bundle"][1].startswith(
        str(shipped_models_dir() / "energy-anomaly"))
    # A bundle installed in models_dir is found first.
    mine = tmp_path / "state" / "models" / "energy-anomaly"
    shutil.copytree(shipped_models_dir() / "energy-anomaly", mine)
    card = json.loads((mine / "card.json").read_text())
    write_card(mine, {**card, "version": "9.9"})
    rows = explained(check(tmp_path, linky(tmp_path), "--explain"))
    assert rows["flow.linky.model.bundle"][1].startswith(str(mine) + " 9.9@")


def test_a_relative_models_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "gateway.toml").write_text(
        linky(tmp_path).replace('id = "gw1"', 'id = "gw1"\nmodels_dir = "mymodels"'))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "frugalai", "config", "check", "--explain",
                           str(site / "gateway.toml")], cwd=elsewhere, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if " gateway.models_dir " in x)
    assert line.split() == ["config", "gateway.models_dir", str(site / "mymodels")]
    with pytest.raises(ConfigError) as err:  # no file to be relative to: refused
        loads_config({"gateway": {"models_dir": "models"},
                      "flow": [{"name": "a", "source": "replay://a.csv"}]})
    assert err.value.key == "gateway.models_dir"


# --- a policy registered by a third-party entry point, end to end ------------------------------

PLUGIN = '''
class EveryWindow:
    """Alarm on every window whose score reaches ``on`` (no hysteresis)."""

    def __init__(self, on):
        self.on = on

    def update_one(self, score):
        return "alarm" if score >= self.on else None


def every_window(policy):
    return EveryWindow(policy.on)
'''


def test_a_policy_plugin_works_from_config_check_to_run(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    (plugins / "frugalai_every").mkdir(parents=True)
    (plugins / "frugalai_every" / "__init__.py").write_text(PLUGIN)
    dist = plugins / "frugalai_every-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: frugalai-every\nVersion: 0.1\n")
    group = registry.policies.group  # frugalai.policies
    (dist / "entry_points.txt").write_text(f"[{group}]\nevery = frugalai_every:every_window\n")
    # 60-s windows: means 0, 20, 20, 0, 20, 0 -> hysteresis alarms twice, this policy 3 times
    events = tmp_path / "events.jsonl"
    config = policy_flow_config(tmp_path, "every", f"file://{events}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(plugins)])}
    ok = subprocess.run([sys.executable, "-m", "frugalai", "config", "check", str(config)],
                        capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "frugalai", "config", "check", str(config)],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})  # plugin not installed
    assert bad.returncode == 2 and "flow.x.policy.kind" in bad.stderr
    # run: the replay ends, the flow is finished (not restarted), run flushes and exits 0
    run = subprocess.run([sys.executable, "-m", "frugalai", "run", "--config", str(config)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "every flow's source has ended" in run.stderr
    kinds = [json.loads(line)["kind"] for line in events.read_text().splitlines()]
    assert kinds == ["alarm", "alarm", "alarm"], kinds
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["flows"]["x"]["state"] == "finished" and status["flows"]["x"]["restarts"] == 0


def test_an_installed_package_finds_its_bundles_in_frugalai_models(tmp_path: Path) -> None:
    """The contract with the wheel: shipped bundles live in ``frugalai/_models/<name>/``; a
    git checkout falls back to ``<repo>/models``. Checked on a copy of the package laid out as
    in site-packages, from another directory."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "frugalai", site / "frugalai",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(shipped_models_dir() / "energy-anomaly",
                    site / "frugalai" / "_models" / "energy-anomaly")
    code = ("from frugalai.runtime.bundle import resolve_bundle, shipped_models_dir; "
            "print(shipped_models_dir()); print(resolve_bundle('energy-anomaly', '/nowhere'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(site / "frugalai" / "_models"),
                                  str(site / "frugalai" / "_models" / "energy-anomaly")]
    # this checkout: the repository's models/ (or a frugalai/_models the build put there)
    assert shipped_models_dir() in (ROOT / "models", ROOT / "frugalai" / "_models")


def test_a_coastal_flow_without_window_s_classifies_hurricane_bob(data_dir: Path) -> None:
    """The bug the plans fix: a coastal flow that leaves ``window_s`` unset used 900-s windows
    and never produced a feature row. Planned, it takes the card's 3600-s step and announces
    the flood of 1991-08-19 (Providence, 3.07 m) before the level reaches the threshold."""
    from frugalai.learn.data import load_providence
    from frugalai.pipeline import Flow
    from frugalai.plan import build_plans
    from frugalai.reading import Reading
    from frugalai.sources.base import SourceStats

    cfg = loads_config({"gateway": {"state_dir": "/nonexistent"}, "uplink": [],
                        "flow": [{"name": "tide", "model": "coastal-submersion",
                                  "source": "serial:///dev/null?protocol=fb",
                                  "quantity": "water_level_m", "aggregate": "mean"}]})
    plan = build_plans(cfg).flows[0]
    flow = Flow.from_plan(plan, source=type("S", (), {"stats": SourceStats()})())
    s = load_providence(data_dir)
    start = int(s.ts.searchsorted(679_000_000))  # 1991-07-08
    events, first_over = [], None
    for t, v in zip(s.ts[start:start + 24 * 60], s.values[start:start + 24 * 60]):
        for dt in (0.0, 1800.0):  # readings every half hour; the plan's windows are hourly
            events += flow.process(Reading(float(t + dt), "tide", {"water_level_m": float(v)}))
        if first_over is None and v >= 1.987:
            first_over = t
    assert flow.stats.scored > 1000  # a class every hour once warm
    floods = [e for e in events if e.label == 2]
    assert first_over is not None and floods and floods[0].ts <= first_over + 3600


def test_a_replay_without_tz_reads_in_the_cards_zone(tmp_path: Path) -> None:
    """Issue 25: like evaluate and score, a flow replaying a record kept in local time reads
    its naive times in the zone the bundle was trained in, and --explain says so."""
    text = coastal(tmp_path).replace("lora:///dev/ttyUSB1?modem=rak3172&decoder=fb&node=7",
                                     f"replay://{tmp_path / 'gauge.csv'}?speed=max")
    (tmp_path / "gauge.csv").write_text("timestamp,water_level_m\n2000-01-01 00:00,0.5\n")
    rows = explained(check(tmp_path, text, "--explain"))
    assert rows["flow.tide.source.tz"] == ("card", "'UTC-05:00 (card data.time_zone)'")
    assert rows["flow.tide.source"][1].endswith("?speed=max&tz=UTC-05:00'")
    explicit = explained(check(tmp_path, text.replace("speed=max", "speed=max&tz=%2B01:00"),
                               "--explain"))
    assert "flow.tide.source.tz" not in explicit
    assert explicit["flow.tide.source"][1].endswith("tz=%2B01:00'")
