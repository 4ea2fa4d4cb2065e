"""Training code paths on small slices (fast), the user CSV path, features and tide."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from frugalai.features.energy import EnergyFeatures
from frugalai.features.tide import EPOCH, SPEEDS, Tide, fit_tide
from frugalai.runtime import load_model, self_test
from frugalai.sim.household import Anomaly, HouseholdProfile

pytest.importorskip("sklearn", reason="training needs the 'train' extra")


def _user_csv(path: Path, days: int = 30, seed: int = 5) -> None:
    """A meter export as users have them: irregular 1-4 min timestamps, gaps, blanks, junk."""
    start = 1_767_567_600.0  # Monday, 00:00 Paris
    house = HouseholdProfile(seed=seed)
    rng = np.random.default_rng(seed)
    t = start
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["when", "watts", "note"])
        while t < start + days * 86400:
            t += float(rng.integers(60, 240))
            if start + 10 * 86400 < t < start + 10.5 * 86400:  # a half-day outage
                continue
            r = rng.random()
            value = "" if r < 0.01 else ("n/a" if r < 0.015 else f"{house.power(t):.1f}")
            stamp = np.datetime64(int(t), "s").astype(str)  # ISO, naive UTC
            w.writerow([stamp, value, "x"])


def test_train_anomaly_on_a_user_csv_with_gaps_and_irregular_times(tmp_path: Path) -> None:
    src = tmp_path / "my.csv"
    _user_csv(src)
    out = tmp_path / "my-meter"
    from frugalai.cli import cli

    res = CliRunner().invoke(cli, ["train", "anomaly", "--data", str(src), "--time-col", "when",
                                   "--value-col", "watts", "--out", str(out), "--name", "mine"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    assert summary["rows"] > 1000
    model = load_model(out, "reference", "fp32")
    assert model.name == "mine"
    self_test(out)
    # The trained model flags a night load on this household and not a normal night.
    from frugalai.features.window import WindowStats
    from frugalai.runtime.scorers import AnomalyScorer

    house = HouseholdProfile(seed=5)
    start = 1_767_567_600.0 + 30 * 86400
    bad = HouseholdProfile(seed=5, anomalies=[Anomaly(start + 2 * 3600, 3600, "night_load",
                                                      2000.0)])
    for profile, expect in ((house, False), (bad, True)):
        scorer = AnomalyScorer(model, tz_offset_h=1.0)
        for i, v in enumerate(house.series(start - 21 * 86400, 900, 21 * 96)):
            scorer.learn_one(start - 21 * 86400 + i * 900, float(v))
        scores = []
        for i, v in enumerate(profile.series(start, 900, 16)):
            t = start + i * 900
            s = scorer.update_one(WindowStats(t, t + 900, 15, v, v, v, v), float(v))
            scores.append(s or 0.0)
        assert (max(scores) >= model.card["policy"]["on"]) == expect, scores


def test_train_anomaly_refuses_a_csv_without_the_named_columns(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("a,b\n1,2\n")
    from frugalai.cli import main  # noqa: F401  (exit codes are main()'s job)
    from frugalai.learn.data import DataError, read_user_csv

    with pytest.raises(DataError, match="no column 'timestamp'"):
        read_user_csv(src)


def test_train_coastal_on_a_slice(data_dir: Path, tmp_path: Path) -> None:
    from frugalai.learn.coastal import train_coastal, year_start
    from frugalai.learn.data import Series, load_providence

    s = load_providence(data_dir)
    keep = (s.ts >= year_start(1985)) & (s.ts < year_start(1993))
    card = train_coastal(Series(s.ts[keep], s.values[keep], None, s.source), tmp_path / "c",
                         tide_years=(1985, 1990), valid_years=(1991, 1992), hidden=8)
    v = card["metrics"]["validation"]
    assert v["baseline"]["flood"]["true_hours"] == v["model_fp32"]["flood"]["true_hours"] > 0
    model = load_model(tmp_path / "c")
    assert model.task == "classification" and model.classes == ["normal", "watch", "flood"]
    self_test(tmp_path / "c")


def test_tide_fit_recovers_constituents() -> None:
    ts = EPOCH + 3600.0 * np.arange(24 * 400)
    true = Tide(("M2", "K1"), 1.0, 0.0, (0.6, 0.05), (0.1, -0.07))
    rng = np.random.default_rng(0)
    fitted = fit_tide(ts, true.predict(ts) + rng.normal(0, 0.05, len(ts)), ("M2", "K1", "S2"))
    assert abs(fitted.amplitudes()["M2"] - np.hypot(0.6, 0.1)) < 0.01
    assert fitted.amplitudes()["S2"] < 0.01
    assert Tide.from_dict(json.loads(json.dumps(fitted.to_dict()))) == fitted
    assert set(SPEEDS) >= {"M2", "S2", "N2", "K1", "O1"}


def test_energy_features_restart_after_a_long_gap_and_ignore_nan() -> None:
    f = EnergyFeatures(slot_s=900, history=3, min_history=1, window=2, tz_offset_h=0.0)
    day = 86400.0
    monday = 4 * day  # 1970-01-05
    for d in range(2):
        for k in range(96):
            f.update_one(monday + d * day + k * 900, 100.0)
    t = monday + 2 * day
    assert f.update_one(t, 100.0) is not None  # consecutive: the vector continues
    assert f.update_one(t + 900, float("nan")) is None
    assert f.update_one(t + 10 * 900, 100.0) is None  # long gap: restart, needs 2 windows
    row = f.update_one(t + 11 * 900, 400.0)
    assert row is not None and row[-1] > 5
