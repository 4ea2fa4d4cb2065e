"""Issue 17: a user's own gauge or meter: reading their CSV, the tide from their record or from
published constants, training, and one-line errors (exit 2) on bad input."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from frugalai.cli import cli
from frugalai.features.tide import (
    EPOCH,
    SPEEDS,
    Tide,
    _design,
    fit_harmonics,
    rayleigh_constituents,
)
from frugalai.learn.csvio import DataError, read_points, to_grid
from frugalai.learn.data import Series, load_providence

LOCAL = timezone(timedelta(hours=-5))  # the Providence file's local standard time


@pytest.fixture(scope="module")
def providence(data_dir: Path) -> Series:
    return load_providence(data_dir)


@pytest.fixture(scope="module")
def noaa_tide(data_dir: Path) -> Tide:
    from frugalai.learn.tide_stations import find_station, load_table, station_tide

    tide, skipped = station_tide(find_station(load_table(data_dir), "noaa/8454000"))
    assert set(skipped) <= {"MM", "MF", "MSF"}  # zero amplitude in NOAA's table
    return tide


def _utc(y: int, m: int = 1, d: int = 1) -> float:
    return datetime(y, m, d, tzinfo=timezone.utc).timestamp()


# -- the tide ----------------------------------------------------------------------------------

def test_noaa_constants_and_the_tide_fitted_on_1938_2005_agree(providence: Series,
                                                                noaa_tide: Tide) -> None:
    """NOAA's published constants (epoch 1983-2001, UTC phases) against our nodal-corrected fit
    of the whole record read as UTC-5: RMS of the difference of the two predictions over
    1983-2001 below 3 cm (measured 2.5 cm) with M2 within 1 cm and 2 degrees."""
    fit = fit_harmonics(providence.ts, providence.values)
    sel = (providence.ts >= _utc(1983)) & (providence.ts < _utc(2002))
    d = fit.predict(providence.ts[sel]) - noaa_tide.predict(providence.ts[sel])
    assert float(np.sqrt(np.mean((d - d.mean()) ** 2))) < 0.03
    assert abs(fit.amplitudes()["M2"] - noaa_tide.amplitudes()["M2"]) < 0.01
    assert abs(fit.phases()["M2"] - noaa_tide.phases()["M2"]) < 2.0
    # The file's local time matters: read as UTC, the observations disagree far more.
    obs = providence.values[sel]
    good = np.nanstd(obs - noaa_tide.predict(providence.ts[sel]))
    shifted = np.nanstd(obs - noaa_tide.predict(providence.ts[sel] - 5 * 3600))
    assert good < 0.16 < shifted


def test_a_tide_fitted_on_60_days_matches_the_published_constants(providence: Series,
                                                                   noaa_tide: Tide) -> None:
    """60 days of 2000 (Rayleigh: 24 constituents, P1 and K2 inferred): RMS difference with the
    NOAA prediction below 4.5 cm in the window (measured 3.5) and 5 cm on the next 30 days
    (measured 4.2), mean levels aside."""
    a = _utc(2000, 4, 10)
    win = (providence.ts >= a) & (providence.ts < a + 60 * 86400)
    fit = fit_harmonics(providence.ts[win], providence.values[win])
    assert {"M2", "S2", "N2", "K1", "O1", "P1", "K2"} <= set(fit.constituents)
    assert "SA" not in fit.constituents and fit.meta and fit.meta["inferred"]
    for sel, limit in ((win, 0.045), ((providence.ts >= a + 60 * 86400)
                                      & (providence.ts < a + 90 * 86400), 0.05)):
        d = fit.predict(providence.ts[sel]) - noaa_tide.predict(providence.ts[sel])
        assert float(np.sqrt(np.mean((d - d.mean()) ** 2))) < limit


def test_rayleigh_criterion_picks_constituents_by_record_length() -> None:
    month = set(rayleigh_constituents(29 * 24))
    assert {"M2", "S2", "N2", "K1", "O1"} <= month
    assert not month & {"K2", "P1", "SA", "SSA"}  # unresolved in a month
    year = set(rayleigh_constituents(366 * 24))
    assert {"K2", "P1", "SA", "SSA"} <= year
    with pytest.raises(ValueError, match="at least 29 days"):
        t = EPOCH + 3600.0 * np.arange(20 * 24)
        fit_harmonics(t, np.cos(t / 3600))


def test_fast_predict_matches_the_former_formula() -> None:
    """Precomputed speeds (issue 16) change no number: a plain-basis tide (the first bundles')
    through the former design-matrix formula and through predict / predict_one agree within
    1e-12 m; the shipped bundle's tide gives the same level by either path."""
    rng = np.random.default_rng(1)
    names = tuple(SPEEDS)
    tide = Tide(names, 0.64, -0.0009, tuple(rng.normal(0, 0.1, len(names))),
                tuple(rng.normal(0, 0.1, len(names))))
    ts = _utc(1995) + 3600.0 * np.arange(0, 24 * 3000, 7.3)
    old = _design((ts - EPOCH) / 3600.0, tide.constituents) @ tide.coefficients()
    assert np.max(np.abs(tide.predict(ts) - old)) < 1e-12
    one = np.array([tide.predict_one(float(t)) for t in ts[:500]])
    assert np.max(np.abs(one - old[:500])) < 1e-12
    card = json.loads((Path(__file__).resolve().parents[1] / "models" / "coastal-submersion"
                       / "card.json").read_text())
    shipped = Tide.from_dict(card["features"]["tide"])
    one = np.array([shipped.predict_one(float(t)) for t in ts[:500]])
    assert np.max(np.abs(one - shipped.predict(ts[:500]))) < 1e-12


def test_astronomical_predict_one_equals_predict(noaa_tide: Tide) -> None:
    ts = _utc(2021, 3, 1) + 1800.0 * np.arange(24 * 40)
    one = np.array([noaa_tide.predict_one(float(t)) for t in ts])
    assert np.max(np.abs(one - noaa_tide.predict(ts))) < 1e-12
    back = Tide.from_dict(json.loads(json.dumps(noaa_tide.to_dict())))
    assert back == noaa_tide and back.basis == "astronomical"


# -- reading CSVs ------------------------------------------------------------------------------

def test_csv_dialects_semicolon_latin1_gzip_decimal_comma_and_tz_names(tmp_path: Path) -> None:
    rows = [("2024-03-30 23:00", 1.5), ("2024-03-31 01:00", 2.25), ("2024-03-31 03:00", 3.0)]
    plain = tmp_path / "a.csv"
    plain.write_text("time,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    semi = tmp_path / "b.csv.gz"
    with gzip.open(semi, "wt", encoding="latin-1") as fh:
        fh.write("Horodaté;Valeur (kW)\n" + "".join(f"{t};{str(v).replace('.', ',')}\n"
                                                    for t, v in rows))
    a = read_points(plain, tz="+01:00")
    b = read_points(semi, tz="Europe/Paris")  # DST starts 2024-03-31 02:00 local
    assert b.delimiter == ";" and b.encoding != "utf-8-sig" and b.value_col == "Valeur (kW)"
    assert a.values.tolist() == b.values.tolist() == [1.5, 2.25, 3.0]
    assert a.ts[0] == b.ts[0] == datetime(2024, 3, 30, 22, tzinfo=timezone.utc).timestamp()
    assert b.ts[2] - b.ts[1] == 3600.0  # 01:00 CET -> 03:00 CEST is one hour
    grid, vals = to_grid(b.ts, b.values, 3600.0)
    assert len(grid) == 4 and np.isnan(vals[1])  # the missing hour is a NaN, not dropped


# -- training on a user's gauge ---------------------------------------------------------------

def _write_gauge(path: Path, s: Series, a: float, b: float, sep: str = ";",
                 skip: tuple[float, float] = (0.0, 0.0), const: bool = False) -> None:
    """The Providence record between UNIX a and b as a user's export: local time, decimal
    commas, Latin-1 header, blanks for missing hours, gzip when the name says so."""
    sel = (s.ts >= a) & (s.ts < b)
    lines = [f"Date (heure locale){sep}Hauteur d'eau (m) — capteur n°1\n"]
    for t, v in zip(s.ts[sel], s.values[sel]):
        if skip[0] <= t < skip[1]:
            continue
        stamp = datetime.fromtimestamp(t, tz=LOCAL).strftime("%Y-%m-%d %H:%M")
        val = "" if v != v else f"{1.0 if const else v:.3f}"
        lines.append(f"{stamp}{sep}{val.replace('.', ',') if sep == ';' else val}\n")
    text = "".join(lines).replace("—", "-")
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode("latin-1")))
    else:
        path.write_text(text, encoding="latin-1")


def _train(args: list[str]) -> Any:
    return CliRunner().invoke(cli, ["train", "coastal", *args])


def test_train_coastal_on_a_user_gauge_with_gaps(providence: Series, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    from frugalai.runtime import load_model, self_test

    src = tmp_path / "gauge.csv.gz"
    # Two years with a three-month gap (fitted around) and the file's own missing hours.
    _write_gauge(src, providence, _utc(1999), _utc(2001),
                 skip=(_utc(1999, 9, 1), _utc(1999, 12, 1)))
    out = tmp_path / "my-gauge"
    res = _train(["--data", str(src), "--tz", "-05:00", "--threshold", "1.8",
                  "--out", str(out), "--name", "my-gauge"])
    assert res.exit_code == 0, res.output
    card_text = (out / "card.json").read_text()
    card = json.loads(card_text)
    assert str(tmp_path) not in card_text  # the file's name and hash, never a path
    assert card["data"]["file"] == "gauge.csv.gz" and len(card["data"]["sha256"]) == 64
    assert 85 < card["data"]["longest_gap_days"] < 95
    assert card["decision"]["default"] in ("model", "baseline")
    assert card["flow_defaults"]["decision"] == card["decision"]["default"]
    v = card["metrics"]["validation"]
    assert v["baseline"]["flood_events"]["episodes"] > 0
    assert "median_h" in v["lead_time"]["model_fp32"]
    assert card["features"]["tide"]["basis"] == "astronomical"
    assert "Warning" not in res.stderr and "WARNING" not in res.stderr
    assert load_model(out).name == "my-gauge"
    self_test(out)


def test_train_coastal_with_published_constants_ships_them_with_attribution(
        providence: Series, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    src = tmp_path / "gauge.csv"
    _write_gauge(src, providence, _utc(2000), _utc(2001), sep=",")
    out = tmp_path / "b"
    res = _train(["--data", str(src), "--tz", "-05:00", "--threshold", "1.75",
                  "--tide", "noaa/8454000", "--tide-table",
                  str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                  "--out", str(out)])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "card.json").read_text())
    assert card["tide_constants"]["station"] == "noaa/8454000"
    assert card["tide_constants"]["license"] == "public domain"
    tide = card["features"]["tide"]
    assert tide["meta"]["source"] == "published constants" and "M2" in tide["constituents"]
    assert card["metrics"]["tide_fit"]["kind"] == "published constants"


@pytest.mark.parametrize("case,needle", [
    ("no_time", "no parseable time column"),
    ("constant", "constant"),
    ("short", "at least 29 days"),
    ("below_msl", "below the mean sea level"),
    ("station", "unknown tide station"),
    ("bad_tz", "unknown time zone"),
])
def test_bad_input_is_one_line_exit_2(case: str, needle: str, providence: Series,
                                      tmp_path: Path) -> None:
    src = tmp_path / "g.csv"
    args = ["--data", str(src), "--tz", "-05:00", "--threshold", "1.8", "--out",
            str(tmp_path / "o")]
    if case == "no_time":
        src.write_text("when;level\nyesterday;1,2\ntoday;1,3\nlater;1,1\n")
    else:
        days = 20 if case == "short" else 60
        _write_gauge(src, providence, _utc(2000), _utc(2000) + days * 86400,
                     const=case == "constant")
    if case == "below_msl":
        args[5] = "0.2"
    if case == "station":
        args += ["--tide", "noaa/0000000", "--tide-table",
                 str(Path(__file__).resolve().parents[2] / "shared" / "data")]
    if case == "bad_tz":
        args[3] = "Mars/Olympus"
    res = _train(args)
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.output


def test_missing_train_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    src = tmp_path / "g.csv"
    src.write_text("t,v\n2020-01-01 00:00,1\n2020-01-01 01:00,2\n")
    res = _train(["--data", str(src), "--threshold", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "pip install 'frugalai[train]'" in res.stderr


def test_read_points_names_a_missing_column(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("a;b\n1;2\n3;4\n")
    with pytest.raises(DataError, match="no column 'when'"):
        read_points(src, time_col="when")


# -- any series: train anomaly, evaluate, score ---------------------------------------------

def _sensor_csv(path: Path, days: int, step_s: int, sep: str = ",", anomaly_day: float = -1.0,
                tz_text: str = "") -> None:
    """A temperature-like series with a daily cycle, noise and (optionally) a 6-hour dip."""
    rng = np.random.default_rng(3)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
    lines = [f"Horodate{sep}Température (°C)\n"]
    for k in range(int(days * 86400 / step_s)):
        t = start + k * step_s
        v = 20 + 3 * np.sin(2 * np.pi * (t % 86400) / 86400) + rng.normal(0, 0.2)
        if anomaly_day >= 0 and 0 <= (t - start) / 86400 - anomaly_day < 0.25:
            v -= 8.0
        stamp = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        val = f"{v:.2f}".replace(".", ",") if sep == ";" else f"{v:.2f}"
        lines.append(f"{stamp}{tz_text}{sep}{val}\n")
    path.write_bytes("".join(lines).encode("latin-1"))


@pytest.mark.parametrize("step_s,sep", [(60, ";"), (1800, ","), (3600, ";")])
def test_train_anomaly_on_a_non_power_series_any_step(step_s: int, sep: str,
                                                      tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    from frugalai.runtime import load_model

    src = tmp_path / "t.csv"
    _sensor_csv(src, 20 if step_s == 60 else 40, step_s, sep, tz_text="+01:00")
    out = tmp_path / "b"
    res = CliRunner().invoke(cli, ["train", "anomaly", "--data", str(src), "--quantity",
                                   "temperature", "--tz", "Europe/Paris", "--out", str(out)])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "card.json").read_text())
    p = card["features"]["params"]
    assert p["floor_rel"] == 0 and p["floor_level"] == 0 and p["floor_abs"] > 0
    assert p["day_types"] == 1 and p["slot_s"] == 3600 and p["tz_offset_h"] == 1.0
    assert card["flow_defaults"]["policy"] == card["policy"]
    assert card["warm_profile"]["slots"] and card["data"]["file"] == "t.csv"
    assert load_model(out).card["quantity"] == "temperature"


def test_evaluate_and_score_a_user_series_through_the_flow_code(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train on 30 days, score the next 20 that hold a 6-hour dip; the bundle starts warm."""
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    src = tmp_path / "s.csv"
    _sensor_csv(src, 50, 600, anomaly_day=40.5)
    out = tmp_path / "b"
    res = CliRunner().invoke(cli, ["train", "anomaly", "--data", str(src), "--quantity",
                                   "temperature", "--tz", "+00:00", "--until",
                                   "2024-01-31T00:00", "--out", str(out)])
    assert res.exit_code == 0, res.output
    labels = tmp_path / "w.csv"
    labels.write_text("start,end\n2024-02-10 10:00,2024-02-10 20:00\n")
    common = ["--data", str(src), "--tz", "+00:00", "--start", "2024-01-31T00:00"]
    res = CliRunner().invoke(cli, ["evaluate", str(out), "--labels", str(labels), *common])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["warm_start"] is True and m["windows_in_scored_span"] == 1
    assert m["window_recall"] == 1.0 and m["window_auc"] > 0.9
    assert m["scored_from_utc"].startswith("2024-01-31 00:00")  # warm: scores from the start
    res = CliRunner().invoke(cli, ["score", str(out), "--out", str(tmp_path / "s.out.csv"),
                                   "--plot", str(tmp_path / "s.png"), "--labels", str(labels),
                                   *common])
    assert res.exit_code == 0, res.output
    rows = (tmp_path / "s.out.csv").read_text().splitlines()
    assert rows[0].startswith("time_utc,value,score") and len(rows) > 400
    # Warm: the first score comes once the sliding vector is full (4 windows), not after the
    # days a cold profile needs to learn each slot.
    first = next(i for i, r in enumerate(rows[1:]) if r.split(",")[2])
    assert first <= 3, rows[1:6]
    head = rows[0].split(",")
    assert head == ["time_utc", "value", "score", "alarm_active", "raised", "rule_alarm"]
    cells = [dict(zip(head, r.split(","))) for r in rows[1:]]
    assert sum(int(c["raised"]) for c in cells) == len(m["alarm_times_utc"])
    assert all(c["rule_alarm"] == "" for c in cells)  # a user's card holds no fixed rule
    if (tmp_path / "s.png").exists():
        assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = CliRunner().invoke(cli, ["score", str(out), "--out", str(tmp_path / "s2.csv"),
                                   "--plot", str(tmp_path / "s2.png"), *common])
    # a plot asked for and impossible: exit 2, one line naming the extra, before any scoring
    assert res.exit_code == 2, res.output
    (line,) = res.output.strip().splitlines()  # (the command words come from sys.argv)
    assert line.startswith("error: frugalai ") and line.endswith(
        "--plot needs matplotlib (module matplotlib), from the 'bench' extra: pip install "
        "'frugalai[bench]'"), line
    assert not (tmp_path / "s2.csv").exists()


def test_nab_ambient_through_the_user_path(data_dir: Path, tmp_path: Path) -> None:
    """Train on NAB's office temperature before 2013-12-01 (no labelled window), score the rest:
    both windows alarmed, at most 1 alarm a month outside them (measured: 1 in 5.9 months)."""
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    nab = data_dir / "generic" / "nab_subset"
    src = nab / "ambient_temperature_system_failure.csv"
    out = tmp_path / "amb"
    res = CliRunner().invoke(cli, ["train", "anomaly", "--data", str(src), "--quantity",
                                   "temperature", "--until", "2013-12-01 00:00", "--out",
                                   str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["evaluate", str(out), "--data", str(src), "--labels",
                                   str(nab / "combined_windows.json"), "--start",
                                   "2013-12-01 00:00"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    assert m["windows_in_scored_span"] == 2 and m["window_recall"] >= 0.8
    assert m["alarms_outside_per_month"] <= 1.0


def test_bad_energy_input_is_one_line_exit_2(tmp_path: Path) -> None:
    src = tmp_path / "c.csv"
    src.write_text("t;v\n" + "".join(f"2024-01-{d:02d} {h:02d}:00;5\n" for d in range(1, 29)
                                      for h in range(24)))
    res = CliRunner().invoke(cli, ["train", "anomaly", "--data", str(src), "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2 and "constant" in res.stderr and "Traceback" not in res.output


def test_evaluate_a_coastal_bundle_on_another_year(providence: Series, tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    train_csv, test_csv = tmp_path / "a.csv", tmp_path / "b.csv.gz"
    _write_gauge(train_csv, providence, _utc(1998), _utc(2000))
    _write_gauge(test_csv, providence, _utc(2003), _utc(2004))
    out = tmp_path / "g"
    res = _train(["--data", str(train_csv), "--tz", "-05:00", "--threshold", "1.8", "--out",
                  str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["evaluate", str(out), "--data", str(test_csv), "--tz",
                                   "-05:00"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    for k in ("model", "baseline"):
        assert m[k]["flood_events"]["episodes"] > 0 and "episode_f1" in m[k]["flood_events"]
    assert m["decision_default"] in ("model", "baseline")
    res = CliRunner().invoke(cli, ["score", str(out), "--data", str(test_csv), "--tz", "-05:00",
                                   "--decision", "baseline", "--out", str(tmp_path / "c.csv")])
    assert res.exit_code == 0, res.output
    rows = (tmp_path / "c.csv").read_text().splitlines()
    head = rows[0].split(",")
    assert head == ["time_utc", "value", "tide_m", "surge_m", "class", "model_class",
                    "model_probability", "rule_class", "flood", "raised"] and len(rows) > 8000
    cells = [dict(zip(head, r.split(","))) for r in rows[1:]]
    floods = sum(int(c["flood"]) for c in cells)
    assert floods == m["baseline"]["flood"]["predicted_hours"]  # the rule, hour by hour
    scored = [c for c in cells if c["class"]]
    assert scored and all(c["class"] == c["rule_class"] for c in scored)  # --decision baseline
    assert any(c["model_class"] != c["rule_class"] for c in scored)  # both decisions written
    for c in scored[:200]:  # the level is the predicted tide plus the surge
        assert abs(float(c["tide_m"]) + float(c["surge_m"]) - float(c["value"])) < 1e-3
        assert 0.0 < float(c["model_probability"]) <= 1.0


def test_an_export_with_a_preamble_before_the_table(tmp_path: Path) -> None:
    """Enedis-style: a few lines about the meter, then 'Horodate;Valeur' with offsets."""
    src = tmp_path / "enedis.csv"
    body = "".join(f"2024-01-01T{h:02d}:{m:02d}:00+01:00;{100 + h}\n" for h in range(10)
                   for m in (0, 30))
    src.write_bytes(("Identifiant PRM;Type de donnees;Date de debut;Date de fin;Grandeur\n"
                     "01234567890123;Courbe de charge;01/01/2024;02/01/2024;Puissance active\n"
                     "Horodate;Valeur\n" + body).encode("latin-1"))
    pts = read_points(src)
    assert pts.time_col == "Horodate" and pts.value_col == "Valeur" and len(pts.ts) == 20
    assert pts.ts[0] == datetime(2023, 12, 31, 23, tzinfo=timezone.utc).timestamp()


def test_a_french_gauge_with_ticon_constants_cites_cc_by(data_dir: Path, tmp_path: Path) -> None:
    """A year of levels built from Brest's TICON-4 tide plus a red-noise surge (the shared data
    holds no French observations): trained with --tide, the card carries the CC BY 4.0
    attribution and the published tide explains the levels to within the surge."""
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    from frugalai.learn.tide_stations import find_station, load_table, station_tide

    tide, _ = station_tide(find_station(load_table(data_dir), "brest-3-fra-refmar"))
    ts = _utc(2021) + 3600.0 * np.arange(24 * 365)
    rng = np.random.default_rng(7)
    surge = np.zeros(len(ts))
    for i in range(1, len(ts)):
        surge[i] = 0.97 * surge[i - 1] + rng.normal(0, 0.04)
    level = tide.predict(ts) + surge
    src = tmp_path / "brest.csv"
    paris = timezone(timedelta(hours=1))
    src.write_text("date;hauteur\n" + "".join(
        f"{datetime.fromtimestamp(t, tz=paris):%d/%m/%Y %H:%M};" + f"{v:.3f}\n".replace(".", ",")
        for t, v in zip(ts, level)))
    thr = float(np.quantile(level, 0.999))
    out = tmp_path / "brest"
    res = _train(["--data", str(src), "--time-format", "%d/%m/%Y %H:%M", "--tz", "+01:00",
                  "--threshold", f"{thr:.3f}", "--tide", "brest-3-fra-refmar", "--tide-table",
                  str(data_dir), "--out", str(out)])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "card.json").read_text())
    assert card["tide_constants"]["license"] == "cc-by-4.0"
    assert "CC BY 4.0" in card["tide_constants"]["attribution"]
    assert card["metrics"]["tide_fit"]["residual_rms_m"] < 1.5 * float(np.std(surge))


def test_train_coastal_with_explicit_years_on_a_user_csv(providence: Series,
                                                         tmp_path: Path) -> None:
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    src = tmp_path / "g.csv"
    _write_gauge(src, providence, _utc(1997), _utc(2001))
    out = tmp_path / "o"
    res = _train(["--data", str(src), "--tz", "-05:00", "--threshold", "1.8", "--train-until",
                  "1999", "--valid-years", "2000-2000", "--out", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads((out / "card.json").read_text())["data"]
    assert d["train_end_utc"] == "2000-01-01 05:00 UTC"  # local midnight at UTC-5
    assert d["valid_utc"] == ["2000-01-01 05:00 UTC", "2001-01-01 05:00 UTC"]
    res = _train(["--data", str(src), "--tz", "-05:00", "--threshold", "1.8", "--train-until",
                  "1999", "--out", str(out)])  # issue 25: alone, validation is the rest
    assert res.exit_code == 0, res.stderr
    d = json.loads((out / "card.json").read_text())["data"]
    assert d["train_end_utc"] == d["valid_utc"][0] == "2000-01-01 05:00 UTC"
