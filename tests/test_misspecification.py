"""Issue 25: wrong-but-plausible invocations of train / evaluate / score, through the CLI.

Each case's expected outcome is written first, in the table below: either exit 2 with one
line naming the problem (``ERR`` and a pattern of that line), or the right figure with a
warning (``WARN`` and a pattern of the warning, plus the figure it must equal). No case may
give a different figure silently. Small files are generated here; the shared data (the
Providence record, the NAB windows) are used where the real thing matters.

| case                     | invocation                                    | expected
|--------------------------|-----------------------------------------------|--------------------------------
| zone_from_card           | evaluate coastal, Providence 2000-05, no --tz | F1 = --tz -05:00's, origin "card"
| wrong_zone_given         | same with --tz +00:00                         | WARN differs from the card's zone
| data_as_labels           | --labels = the data file                      | ERR the data file itself
| data_copy_as_labels      | --labels = a copy of the data CSV             | ERR not an ISO 8601 ... number
| labels_end_before_start  | a window whose end precedes its start         | ERR ends ... before it starts
| labels_out_of_span       | windows in 1990, data in 2024                 | ERR outside the data
| labels_overlap           | two windows overlapping                       | ERR overlap
| labels_cover_most        | one window over 90 % of the data              | ERR cover 9x% of the data
| day_of_year_labels       | CSV windows "45,47"                           | ERR day of the year
| nab_points_as_windows    | NAB combined_labels.json layout (points)      | ERR combined_windows.json
| nab_windows_other_file   | NAB windows without the data's entry          | ERR no entry for
| empty_labels             | []                                            | ERR no window
| labels_not_json          | a truncated JSON file                         | ERR not valid JSON
| swapped_columns          | --time-col value --value-col time             | ERR no parseable time
| value_col_is_time        | --value-col time --time-col time              | ERR is the time column
| unknown_column           | --value-col power                             | ERR no column 'power'
| semicolon_decimal_comma  | the same data as ; CSV with , decimals        | same figures as the , CSV
| unix_seconds             | the same data with a UNIX-seconds time column | same figures as the ISO CSV
| oversized_line           | a 2 MiB line                                  | ERR longer than
| oversized_field          | a 300 kB quoted field                         | ERR field larger than
| dst_repeated_hour        | Paris file, the autumn hour twice  | WARN repeated hour, no row lost
| dst_gap                  | Paris file stamped 02:30 on the spring day | WARN DST gap
| fixed_offset_on_dst_file | --tz +01:00 on that autumn file               | WARN duplicate time(s)
| no_zone_train            | train anomaly, naive times, no --tz           | WARN read as UTC + slots UTC+1
| empty_validation         | train coastal, --train-until DATE, no flood | WARN no flood episode, rule
| start_after_data         | --start 2030-01-01                            | ERR select no row
| end_before_start         | --start after --end                           | ERR not after
| start_not_a_date         | --start "last week"                           | ERR not an ISO date
| sampled_slower           | 15-min bundle on hourly data                  | ERR sampled every 3600 s
| too_short                | 3 rows                                        | ERR shorter than the warm-up
| unknown_zone             | --tz Mars/Olympus                             | ERR unknown time zone
| corrupt_gzip             | gzip magic, then garbage                      | ERR corrupt gzip
| coastal_labels_used      | evaluate coastal --labels                     | truth = labels, said on stderr
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from click.testing import CliRunner, Result

from frugalai.cli import cli

ROOT = Path(__file__).resolve().parents[1]
COASTAL = str(ROOT / "models" / "coastal-submersion")
ENERGY = str(ROOT / "models" / "energy-anomaly")
PARIS = ZoneInfo("Europe/Paris")
#: Injected anomalies (local Paris time, 6 h each) in the scored part of the synthetic series.
ANOMALIES = [datetime(2024, 9, 10, 9), datetime(2024, 9, 24, 14), datetime(2024, 10, 8, 2)]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, [*args])


def one_error(res: Result, pattern: str) -> None:
    """Exit 2, exactly one ``error:`` line, matching ``pattern``, no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.stderr)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert re.search(pattern, errors[0]), errors[0]
    assert "Traceback" not in res.stderr


def warned(res: Result, pattern: str) -> None:
    assert res.exit_code == 0, (res.output, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert any(re.search(pattern, ln) for ln in lines), res.stderr


def body(res: Result) -> dict[str, Any]:
    return dict(json.loads(res.stdout))


# -- data --------------------------------------------------------------------------------------

def _series() -> tuple[list[datetime], np.ndarray]:
    """Hourly temperature-like series, Paris local time, 2024-07-01 to 2024-10-20 (before the
    autumn change): a daily cycle, noise, and +12 for 6 h at each of ANOMALIES."""
    rng = np.random.default_rng(3)
    start = datetime(2024, 7, 1)
    times = [start + timedelta(hours=k) for k in range(24 * 111)]
    hours = np.array([t.hour for t in times], dtype=float)
    v = 20 + 5 * np.sin(2 * np.pi * (hours - 9) / 24) + rng.normal(0, 0.4, len(times))
    for a in ANOMALIES:
        for k, t in enumerate(times):
            if a <= t < a + timedelta(hours=6):
                v[k] += 12
    return times, v


def _write(path: Path, times: list[datetime], v: np.ndarray, sep: str = ",",
           dec: str = ".", header: str = "time,value") -> Path:
    lines = [header.replace(",", sep)]
    for t, x in zip(times, v):
        lines.append(f"{t:%Y-%m-%d %H:%M}{sep}{f'{x:.4f}'.replace('.', dec)}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The synthetic series (, ; and UNIX-seconds versions), its labels and a bundle trained
    on its first two months through the CLI."""
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    d = tmp_path_factory.mktemp("site")
    times, v = _series()
    data = _write(d / "site.csv", times, v)
    semi = _write(d / "site_semi.csv", times, v, sep=";", dec=",")
    unix = d / "site_unix.csv"
    unix.write_text("ts,value\n" + "".join(
        f"{int(t.replace(tzinfo=PARIS).timestamp())},{x:.4f}\n" for t, x in zip(times, v)))
    labels = d / "labels.json"
    labels.write_text(json.dumps([[f"{a:%Y-%m-%d %H:%M}", f"{a + timedelta(hours=8):%Y-%m-%d %H:%M}"]
                                  for a in ANOMALIES]))
    bundle = d / "bundle"
    res = run("train", "anomaly", "--data", str(data), "--tz", "Europe/Paris", "--quantity",
              "temperature", "--window", "3600", "--day-types", "single", "--end", "2024-09-01",
              "--out", str(bundle))
    assert res.exit_code == 0, res.stderr
    return {"dir": d, "data": data, "semi": semi, "unix": unix, "labels": labels,
            "bundle": str(bundle), "times": times, "v": v}


def _evaluate(site: dict[str, Any], *extra: str, data: Optional[Path] = None,
              labels: Optional[Path] = None) -> Result:
    return run("evaluate", site["bundle"], "--data", str(data or site["data"]), "--labels",
               str(labels or site["labels"]), "--start", "2024-09-01", *extra)


def _labels(site: dict[str, Any], name: str, text: str) -> Path:
    p = Path(site["dir"]) / name
    p.write_text(text)
    return p


# -- the bundle's zone -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def providence_0005(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = data_dir / "coastal/providence_8454000/providence_8454000_hourly_2000_2005.csv.gz"
    if not src.is_file():
        pytest.skip(f"shared data not found: {src}")
    return src


def test_zone_from_card_gives_the_figure_of_the_right_zone(providence_0005: Path) -> None:
    args = ["evaluate", COASTAL, "--data", str(providence_0005), "--time-col", "datetime",
            "--value-col", "water_level_m_mllw"]
    implicit, explicit = run(*args), run(*args, "--tz", "-05:00")
    assert implicit.exit_code == explicit.exit_code == 0, implicit.stderr
    a, b = body(implicit), body(explicit)
    assert a["model"]["flood"]["f1"] == b["model"]["flood"]["f1"] > 0.3  # UTC gave 0.011
    assert a["provenance"]["tz"]["from"].startswith("card")
    assert "tz=UTC-05:00 (card" in implicit.stderr


def test_wrong_zone_given_is_loud(providence_0005: Path) -> None:
    res = run("evaluate", COASTAL, "--data", str(providence_0005), "--tz", "+00:00",
              "--start", "2004-01-01")
    warned(res, r"differs from the bundle's zone")
    assert any("differs" in w for w in body(res)["warnings"])


def test_coastal_evaluate_uses_labels_and_says_so(providence_0005: Path,
                                                   tmp_path: Path) -> None:
    labels = tmp_path / "floods.csv"
    labels.write_text("start,end\n2005-01-23 00:00,2005-01-23 12:00\n"
                      "2005-10-25 06:00,2005-10-25 10:00\n")
    args = ["evaluate", COASTAL, "--data", str(providence_0005), "--start", "2004-01-01"]
    plain, with_labels = run(*args), run(*args, "--labels", str(labels))
    assert plain.exit_code == with_labels.exit_code == 0, with_labels.stderr
    a, b = body(plain), body(with_labels)
    assert b["truth"].startswith("labels: 2 window(s) from floods.csv")
    assert "truth: 2 window(s)" in with_labels.stderr
    assert b["baseline"]["flood_events"]["episodes"] == 2
    assert a["baseline"]["flood_events"]["episodes"] != 2
    assert b["provenance"]["labels"]["from"] == "--labels floods.csv"


# -- labels ------------------------------------------------------------------------------------

LABEL_ERRORS: list[tuple[str, Callable[[dict[str, Any]], Path], str]] = [
    ("data_as_labels", lambda s: s["data"], r"is the data file itself"),
    ("data_copy_as_labels", lambda s: Path(shutil.copy(s["data"], Path(s["dir"]) / "c.csv")),
     r"not an ISO 8601 .*number"),
    ("labels_end_before_start", lambda s: _labels(
        s, "rev.json", '[["2024-09-10 12:00", "2024-09-10 09:00"]]'), r"ends .* before it starts"),
    ("labels_out_of_span", lambda s: _labels(
        s, "old.json", '[["1990-09-10 09:00", "1990-09-10 12:00"]]'), r"outside the data"),
    ("labels_overlap", lambda s: _labels(
        s, "ov.json", '[["2024-09-10 09:00", "2024-09-10 18:00"], '
                      '["2024-09-10 12:00", "2024-09-11 00:00"]]'), r"overlap"),
    ("labels_cover_most", lambda s: _labels(
        s, "most.json", '[["2024-07-02 00:00", "2024-10-19 00:00"]]'), r"cover 9\d% of the"),
    ("day_of_year_labels", lambda s: _labels(s, "doy.csv", "start,end\n254,256\n"),
     r"day of the year"),
    ("nab_points_as_windows", lambda s: _labels(
        s, "points.json", '{"realKnownCause/site.csv": ["2024-09-10 09:00:00"]}'),
     r"combined_windows\.json"),
    ("nab_windows_other_file", lambda s: _labels(
        s, "other.json", '{"realKnownCause/other.csv": [["2024-09-10 09:00:00", '
                         '"2024-09-10 12:00:00"]]}'), r"no entry for 'site.csv'"),
    ("empty_labels", lambda s: _labels(s, "empty.json", "[]"), r"no window"),
    ("labels_not_json", lambda s: _labels(s, "broken.json", '[["2024-09-10'), r"not valid JSON"),
]


@pytest.mark.parametrize("case,make,pattern", LABEL_ERRORS, ids=[c[0] for c in LABEL_ERRORS])
def test_bad_labels_are_one_line_errors(site: dict[str, Any], case: str,
                                        make: Callable[[dict[str, Any]], Path],
                                        pattern: str) -> None:
    one_error(_evaluate(site, labels=make(site)), pattern)


def test_good_labels_give_a_figure_with_provenance(site: dict[str, Any]) -> None:
    res = _evaluate(site)
    assert res.exit_code == 0, res.stderr
    out = body(res)
    assert out["windows_in_scored_span"] == 3
    assert out["provenance"]["tz"] == {"value": "Europe/Paris", "from": "card data.time_zone"}
    assert out["warnings"] == []


def test_nab_windows_file_is_read(site: dict[str, Any], data_dir: Path) -> None:
    """NAB's combined_windows.json layout, microsecond stamps included."""
    nab = _labels(site, "nab.json", json.dumps({"realKnownCause/site.csv": [
        [f"{a:%Y-%m-%d %H:%M:%S}.000000", f"{a + timedelta(hours=8):%Y-%m-%d %H:%M:%S}.000000"]
        for a in ANOMALIES]}))
    a, b = _evaluate(site, labels=nab), _evaluate(site)
    assert a.exit_code == b.exit_code == 0, a.stderr
    assert body(a)["window_recall"] == body(b)["window_recall"]


# -- columns and dialects ----------------------------------------------------------------------

OPTION_ERRORS = [
    ("swapped_columns", ["--time-col", "value", "--value-col", "time"], r"no parseable time"),
    ("value_col_is_time", ["--time-col", "time", "--value-col", "time"], r"is the time column"),
    ("unknown_column", ["--value-col", "power"], r"no column 'power'"),
    ("unknown_zone", ["--tz", "Mars/Olympus"], r"unknown time zone"),
    ("start_not_a_date", ["--end", "last week"], r"not an ISO date"),
    ("end_before_start", ["--end", "2024-08-01"], r"not after --start"),
]


@pytest.mark.parametrize("case,extra,pattern", OPTION_ERRORS, ids=[c[0] for c in OPTION_ERRORS])
def test_bad_columns_and_options_are_one_line_errors(site: dict[str, Any], case: str,
                                                     extra: list[str], pattern: str) -> None:
    one_error(_evaluate(site, *extra), pattern)


def test_start_after_the_data(site: dict[str, Any]) -> None:
    one_error(run("evaluate", site["bundle"], "--data", str(site["data"]), "--labels",
                  str(site["labels"]), "--start", "2030-01-01"), r"select no row")


def test_semicolon_csv_with_decimal_commas_gives_the_same_figures(site: dict[str, Any]) -> None:
    a, b = _evaluate(site), _evaluate(site, data=site["semi"])
    assert a.exit_code == b.exit_code == 0, b.stderr
    keep = ("window_recall", "alarms_outside_windows", "window_auc", "alarm_times_utc")
    assert {k: body(a)[k] for k in keep} == {k: body(b)[k] for k in keep}


def test_unix_seconds_time_column_gives_the_same_figures(site: dict[str, Any]) -> None:
    a = _evaluate(site)
    b = run("evaluate", site["bundle"], "--data", str(site["unix"]), "--labels",
            str(_labels(site, "unix_labels.json", Path(site["labels"]).read_text())),
            "--start", "2024-09-01")
    assert a.exit_code == 0 and b.exit_code == 0, b.stderr
    assert body(b)["provenance"]["time_format"]["from"] == "UNIX seconds (recognised)"
    keep = ("window_recall", "alarms_outside_windows", "window_auc", "alarm_times_utc")
    assert {k: body(a)[k] for k in keep} == {k: body(b)[k] for k in keep}


def test_oversized_line_and_field(site: dict[str, Any], tmp_path: Path) -> None:
    line = tmp_path / "line.csv"
    with open(line, "w") as fh:
        fh.write("time,value\n2024-09-01 00:00,1\n2024-09-01 01:00," + "9" * (2 << 20) + "\n")
    one_error(_evaluate(site, data=line), r"line 3 is longer than")
    cell = tmp_path / "cell.csv"
    with open(cell, "w") as fh:
        fh.write('time,value\n2024-09-01 00:00,1\n2024-09-01 01:00,"' + "9" * 300_000 + '"\n')
    one_error(_evaluate(site, data=cell), r"line 3: field larger than")


def test_corrupt_gzip(site: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + b"not gzip at all" * 10)
    one_error(_evaluate(site, data=bad), r"corrupt gzip")


# -- time zones and DST ------------------------------------------------------------------------

def _autumn(path: Path) -> Path:
    """Every 15 min over 2024-10-26..28, Paris local, the repeated 02:00-02:59 written twice."""
    rows = []
    t = datetime(2024, 10, 26, tzinfo=timezone.utc)
    while t < datetime(2024, 10, 28, 12, tzinfo=timezone.utc):
        local = t.astimezone(PARIS)
        rows.append(f"{local:%Y-%m-%d %H:%M},{10 + local.hour % 5}")
        t += timedelta(minutes=15)
    path.write_text("time,value\n" + "\n".join(rows) + "\n")
    return path


def test_dst_repeated_hour_is_read_as_two_hours(site: dict[str, Any], tmp_path: Path) -> None:
    src = _autumn(tmp_path / "autumn.csv")
    out = tmp_path / "s.csv"
    res = run("score", site["bundle"], "--data", str(src), "--out", str(out))
    warned(res, r"4 row\(s\) of the repeated autumn hour")
    assert len(out.read_text().splitlines()) - 1 == 60  # every UTC hour, none merged


def test_fixed_offset_on_a_dst_file_is_loud(site: dict[str, Any], tmp_path: Path) -> None:
    src = _autumn(tmp_path / "autumn.csv")
    res = run("score", site["bundle"], "--data", str(src), "--tz", "+01:00", "--out",
              str(tmp_path / "s.csv"))
    warned(res, r"4 duplicate time\(s\).*zone name")
    warned(res, r"differs from the bundle's zone")


def test_dst_gap_is_loud(site: dict[str, Any], tmp_path: Path) -> None:
    src = tmp_path / "spring.csv"
    t0 = datetime(2024, 3, 30, 12, tzinfo=timezone.utc)
    rows = [f"{(t0 + timedelta(minutes=15 * k)).astimezone(PARIS):%Y-%m-%d %H:%M},{5 + k % 3}"
            for k in range(192)]
    rows.insert(60, "2024-03-31 02:30,6")  # a clock that did not jump
    src.write_text("time,value\n" + "\n".join(rows) + "\n")
    res = run("score", site["bundle"], "--data", str(src), "--out", str(tmp_path / "s.csv"))
    warned(res, r"1 row\(s\) stamped in the spring DST gap")


def test_named_zone_slots_follow_dst(site: dict[str, Any]) -> None:
    card = json.loads((Path(site["bundle"]) / "card.json").read_text())
    assert card["features"]["params"]["time_zone"] == "Europe/Paris"
    assert card["day_types"]["choice"] == "single" and card["day_types"]["from"] == "--day-types"
    assert card["data"]["end"] == "2024-09-01"


def test_no_zone_when_training_is_loud(site: dict[str, Any], tmp_path: Path) -> None:
    res = run("train", "anomaly", "--data", str(site["data"]), "--quantity", "temperature",
              "--window", "3600", "--end", "2024-08-15", "--out", str(tmp_path / "b"))
    warned(res, r"read as UTC")
    warned(res, r"UTC\+1 all year")
    assert any("read as UTC" in w for w in body(res)["warnings"])


# -- windows and warm-up -----------------------------------------------------------------------

def test_sampled_slower_than_the_bundle_windows(site: dict[str, Any]) -> None:
    one_error(run("evaluate", ENERGY, "--data", str(site["data"]), "--labels",
                  str(site["labels"])), r"sampled every 3600 s")


def test_too_short_series(site: dict[str, Any], tmp_path: Path) -> None:
    short = _write(tmp_path / "short.csv", site["times"][-3:], site["v"][-3:])
    one_error(run("score", site["bundle"], "--data", str(short), "--out",
                  str(tmp_path / "o.csv")), r"shorter than the model's warm-up")


# -- coastal training: split at a date, empty validation ---------------------------------------

def test_train_coastal_split_at_a_date_with_no_flood_after_it(tmp_path: Path) -> None:
    """A synthetic gauge (M2 + S2, surges in its first five months only), split on
    2001-06-15: accepted as a date, and the empty validation period is said out loud."""
    pytest.importorskip("sklearn", reason="training needs the 'train' extra")
    rng = np.random.default_rng(0)
    t = datetime(2000, 11, 1, tzinfo=timezone.utc).timestamp() + 3600.0 * np.arange(24 * 300)
    h = (t - t[0]) / 3600.0
    level = (1.0 * np.cos(2 * np.pi * h / 12.4206) + 0.3 * np.cos(2 * np.pi * h / 12.0)
             + rng.normal(0, 0.05, len(t)))
    for k in range(10):  # a storm every two weeks, November to March
        c = 24 * (7 + 14 * k) + 6
        level[c - 12:c + 12] += 0.9 * np.hanning(24)
    src = tmp_path / "gauge.csv"
    src.write_text("when;level\n" + "".join(
        f"{datetime.fromtimestamp(x, tz=timezone(timedelta(hours=1))):%Y-%m-%d %H:%M};"
        f"{y:.3f}".replace(".", ",") + "\n" for x, y in zip(t, level)))
    res = run("train", "coastal", "--data", str(src), "--tz", "+01:00", "--level-col", "level",
              "--threshold", "1.7", "--train-until", "2001-06-15", "--out", str(tmp_path / "b"))
    warned(res, r"no flood episode")
    assert "--level-col is now --value-col" in res.stderr
    card = json.loads((tmp_path / "b" / "card.json").read_text())
    assert card["data"]["train_end_utc"] == "2001-06-14 23:00 UTC"
    assert card["decision"]["default"] == "baseline"
    assert "no flood episode" in card["decision"]["why"]


def test_int8_not_shipped_is_said() -> None:
    """train prints this line (and puts it in its JSON) when export kept no int8 model."""
    from frugalai.cli.train import trained_warnings

    card = {"warnings": ["w"], "int8": {
        "kept": False, "min_decision_agreement": 0.995, "max_error_over_output_span": 0.05,
        "decision_agreement_with_fp32": {"reference_tflite_int8": 0.97},
        "error_over_output_span": {"reference_tflite_int8": 0.2}}}
    lines = trained_warnings(card)
    assert lines[0] == "w" and re.match(r"int8 not shipped: decision agreement 0.97 \(min 0.995\)",
                                        lines[1])
    assert trained_warnings({"int8": {"kept": True}}) == []


def test_data_dir_refuses_options_it_would_ignore(tmp_path: Path) -> None:
    one_error(run("train", "coastal", "--data-dir", str(tmp_path), "--start", "2000-01-01",
                  "--out", str(tmp_path / "b")), r"do not apply")
