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
from frugalai.features.tide import EPOCH, Tide, _design, fit_harmonics, rayleigh_constituents
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


def test_fast_predict_matches_the_former_formula_on_the_shipped_bundle() -> None:
    """Precomputed speeds (issue 16) change no number: the shipped card's tide through the old
    design-matrix formula and through predict / predict_one agree within 1e-12 m."""
    card = json.loads((Path(__file__).resolve().parents[1] / "models" / "coastal-submersion"
                       / "card.json").read_text())
    tide = Tide.from_dict(card["features"]["tide"])
    ts = _utc(1995) + 3600.0 * np.arange(0, 24 * 3000, 7.3)
    hours = (ts - EPOCH) / 3600.0
    old = _design(hours, tide.constituents) @ tide.coefficients()
    assert np.max(np.abs(tide.predict(ts) - old)) < 1e-12
    one = np.array([tide.predict_one(float(t)) for t in ts[:500]])
    assert np.max(np.abs(one - old[:500])) < 1e-12


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
