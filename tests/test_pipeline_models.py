"""Bundle models in flows: config keys, the coastal classifier's class events on real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalai.config import loads_config
from frugalai.errors import ConfigError
from frugalai.events.codec import decode_binary, encode_binary
from frugalai.pipeline import Flow, build_scorer
from frugalai.reading import Reading
from frugalai.runtime.model import shipped_models_dir

MODELS = str(shipped_models_dir())


def _flow(**kw: object) -> dict[str, object]:
    return {"gateway": {"models_dir": MODELS},
            # firmware_bridge nodes send both energy and water levels
            "flow": [{"name": "f", "source": "serial:///dev/null?protocol=fb", **kw}]}


def test_bundle_model_keys_are_validated() -> None:
    with pytest.raises(ConfigError) as err:
        loads_config(_flow(model="energy-anomaly", backend="tpu"))
    assert err.value.key == "flow[0].backend"
    with pytest.raises(ConfigError) as err:
        loads_config(_flow(model="energy-anomaly", precision="int4"))
    assert err.value.key == "flow[0].precision"


def test_unknown_bundle_is_a_config_error_naming_the_model_key() -> None:
    cfg = loads_config(_flow(model="no-such-bundle"))
    with pytest.raises(ConfigError) as err:
        build_scorer(cfg.flow[0], MODELS)
    assert err.value.key == "flow.f.model" and "energy-anomaly" in str(err.value)


def test_coastal_horizon_must_match_the_bundle() -> None:
    cfg = loads_config(_flow(model="coastal-submersion", quantity="water_level_m",
                             aggregate="mean", window_s=3600, horizon_h=6))
    with pytest.raises(ConfigError, match="trained for a 3 h horizon"):
        build_scorer(cfg.flow[0], MODELS)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_coastal_flow_raises_flood_before_hurricane_bob_peak(data_dir: Path,
                                                             precision: str) -> None:
    """Hurricane Bob, 1991-08-19 (3.07 m): fed hour by hour as Readings, the flow must go to
    class 2 (flood) before the level first reaches the threshold, and every change is one
    11-byte event carrying the class in ``label``."""
    from frugalai.learn.data import load_providence

    s = load_providence(data_dir)
    cfg = loads_config(_flow(model="coastal-submersion", quantity="water_level_m",
                             aggregate="mean", window_s=3600, precision=precision))
    scorer = build_scorer(cfg.flow[0], MODELS)
    flow = Flow(cfg.flow[0], None, scorer)  # type: ignore[arg-type]
    start = int(s.ts.searchsorted(679_000_000))  # 1991-07-08
    events = []
    threshold = scorer.features.threshold_m
    first_over = None
    for t, v in zip(s.ts[start:start + 24 * 60], s.values[start:start + 24 * 60]):
        # The gauge's hourly sample, repeated within its hour (a window needs no more).
        for dt in (0.0, 1800.0):
            events += flow.process(Reading(float(t + dt), "f", {"water_level_m": float(v)}))
        if first_over is None and v >= threshold:
            first_over = t
    assert first_over is not None
    floods = [e for e in events if e.kind == "class" and e.label == 2]
    assert floods and floods[0].ts <= first_over + 3600, (floods[:1], first_over)
    for e in events:
        back = decode_binary(encode_binary(e))
        assert back["kind"] == "class" and back["label"] == e.label
    assert all(a.label != b.label for a, b in zip(events, events[1:]))


def test_a_configured_public_key_refuses_an_unsigned_bundle_in_a_flow(tmp_path: Path) -> None:
    """``[models] public_key`` applies to what flows load, not only to ``models install``: an
    unsigned bundle is refused. The shipped bundles are unsigned: trusted while
    ``trust_shipped`` (the default) says so, refused by name when it does not."""
    import json
    import shutil

    from frugalai.pipeline import Pipeline
    from frugalai.runtime.bundle import write_card

    key = "ab" * 32  # any 32-byte key: the shipped card carries no signature at all
    base = {"gateway": {"models_dir": MODELS, "state_dir": str(tmp_path)},
            "flow": [{"name": "f", "source": "serial:///dev/null", "model": "energy-anomaly"}]}
    strict = loads_config({**base, "models": {"public_key": key, "trust_shipped": False}})
    with pytest.raises(ConfigError) as err:
        Pipeline.from_config(strict)
    assert err.value.key == "flow.f.model" and "sign" in str(err.value).lower()
    assert "trust_shipped = true" in str(err.value)
    # a bundle of the user's own (here the shipped one with its card changed) is refused
    # unsigned whatever trust_shipped says
    mine = tmp_path / "models" / "mine"
    shutil.copytree(Path(MODELS) / "energy-anomaly", mine)
    card = json.loads((mine / "card.json").read_text())
    card.pop("files")
    write_card(mine, {**card, "version": "7"})
    own = loads_config({**base, "gateway": {"models_dir": str(tmp_path / "models"),
                                            "state_dir": str(tmp_path)},
                        "flow": [{"name": "f", "source": "serial:///dev/null", "model": "mine"}],
                        "models": {"public_key": key}})
    with pytest.raises(ConfigError, match="unsigned bundle") as err:
        Pipeline.from_config(own)
    assert err.value.key == "flow.f.model"


def test_models_cli_group_has_list_show_install_and_rollback() -> None:
    """Both halves of ``frugalai models`` (runtime: list/show; service: install/rollback)."""
    from click.testing import CliRunner

    from frugalai.cli import cli

    runner = CliRunner()
    listing = runner.invoke(cli, ["models", "list"])
    assert listing.exit_code == 0, listing.output
    assert "energy-anomaly" in listing.output and "coastal-submersion" in listing.output
    shown = runner.invoke(cli, ["models", "show", "energy-anomaly"])
    assert shown.exit_code == 0 and "sha256" in shown.output.lower(), shown.output
    helptext = runner.invoke(cli, ["models", "--help"]).output
    assert "install" in helptext and "rollback" in helptext


def test_models_list_shows_what_runs_here_and_names_what_does_not(tmp_path: Path) -> None:
    """A bundle made for a runtime this machine lacks (here a backend no plugin provides) is
    listed with what runs, and the missing backend is named apart with its reason."""
    import json
    import shutil

    from click.testing import CliRunner

    from frugalai.cli import cli
    from frugalai.runtime.bundle import shipped_models_dir, write_card

    mine = tmp_path / "models" / "my-meter"
    shutil.copytree(Path(shipped_models_dir()) / "energy-anomaly", mine)
    card = json.loads((mine / "card.json").read_text())
    card["name"] = "my-meter"
    card["artifacts"]["edgetpu"] = {"int8": "model.int8.tflite"}
    write_card(mine, {k: v for k, v in card.items() if k != "files"})
    out = CliRunner().invoke(cli, ["models", "list", "--models-dir", str(tmp_path / "models")])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    mine_line = next(line for line in lines if line.startswith("my-meter "))
    assert "reference/fp32" in mine_line and "edgetpu" not in mine_line, mine_line
    assert any(line.startswith("not available here: edgetpu: unknown backend 'edgetpu'")
               for line in lines), lines


def test_coastal_baseline_decision_is_the_training_time_baseline(data_dir: Path) -> None:
    """``decision = "baseline"`` runs the physical rule the card compares the model with: on a
    year of real levels fed window by window it gives exactly the classes that
    ``frugalai.learn.coastal.baseline`` computes at training time."""
    import numpy as np

    from frugalai.features.window import WindowStats
    from frugalai.learn.coastal import baseline
    from frugalai.learn.data import load_providence

    s = load_providence(data_dir)
    start = int(s.ts.searchsorted(662_700_000))  # 1991-01
    ts, levels = s.ts[start:start + 24 * 365], s.values[start:start + 24 * 365]
    cfg = loads_config(_flow(model="coastal-submersion", quantity="water_level_m",
                             aggregate="mean", window_s=3600, decision="baseline"))
    scorer = build_scorer(cfg.flow[0], MODELS)
    online = []
    for t, v in zip(ts, levels):
        out = scorer.classify_one(WindowStats(float(t), float(t) + 3600, 1, float(v), float(v),
                                              float(v), float("nan")), float(v))
        if out is not None:
            online.append((float(t), out[0]))
    model_scorer = build_scorer(loads_config(_flow(
        model="coastal-submersion", quantity="water_level_m", aggregate="mean",
        window_s=3600)).flow[0], MODELS)
    rows_ts, X = model_scorer.features.transform_many(ts, levels)
    offline = baseline(X, 3, 0.15)
    assert [t for t, _ in online] == [float(t) for t in rows_ts]
    assert np.array_equal(np.array([c for _, c in online]), offline)
    assert {0, 1, 2} <= set(offline.tolist()), "a year of real data should hold every class"
    from frugalai.plan import build_plans

    with pytest.raises(ConfigError) as err:  # validated in one place: the flow plan
        build_plans(loads_config(_flow(model="coastal-submersion", decision="oracle")))
    assert err.value.key == "flow.f.decision"
    with pytest.raises(ConfigError) as err:  # no baseline rule for an anomaly bundle
        build_scorer(loads_config(_flow(model="energy-anomaly", decision="baseline")).flow[0],
                     MODELS)
    assert err.value.key == "flow.f.decision"
