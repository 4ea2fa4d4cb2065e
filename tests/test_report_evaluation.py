"""The evaluation a territory can sign (issue 28): no total with an unknown part, the IPMVP
before/after checked by hand on the Dutch demand series, the coast per season against the card,
the need-for-AI decision, plain numbers, charts equal to the tables, French and English, and the
PDF read back page by page (pdftoppm, pdftotext from poppler-utils).

The hand computations below do not call the report's code: they read the raw CSV with the
``csv`` module and compute the baseline profile and the per-alert energy with numpy.
"""

from __future__ import annotations

import csv
import doctest
import json
import math
import re
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from frugalai.cli import cli
from frugalai.config import loads_config
from frugalai.report import edition, fmt, html, i18n, mv, svgchart
from frugalai.report.build import build_report, write_report
from frugalai.report.lifecycle import SET_BOARD

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DUTCH = DATA / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
SHIPPED_BENCH = ROOT / "benchmarks" / "results" / "energy_per_inference.json"

BENCH = {"created": "2026-01-01", "meter": {"meter": "estimate:pi-4b", "estimated": True,
                                            "profile": {"name": "pi-4b"}},
         "results": [{"model": "profile", "backend": "python", "precision": "fp64", "batch": 1,
                      "uj_per_inference": 6.18, "model_bytes": 0},
                     {"model": "encode-binary", "backend": "python", "precision": "-",
                      "batch": 1, "uj_per_inference": 2.0, "model_bytes": 0}]}
SUMMARY = {"flows": {"linky": {"events": 8, "bytes_read": 437_760, "readings": 2827}},
           "events": 8, "raw_bytes_read": 437_760, "upstream_bytes_binary": 88,
           "simulated_hours": 48.0}


def _config(energy: dict[str, Any], model: str = "profile") -> Any:
    return loads_config({"gateway": {"id": "mairie"},
                         "flow": [{"name": "linky", "model": model, "window_s": 900,
                                   "source": "serial:///dev/ttyUSB0?protocol=tic"}],
                         "energy": energy})


def test_doctests_of_the_report_modules() -> None:
    for module in (fmt, mv, edition, html, svgchart):
        assert doctest.testmod(module).failed == 0, module.__name__


# --- plain numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "fr"])
def test_numbers_are_plain_rounded_and_read_back(lang: str) -> None:
    for exp in range(-3, 10):
        for mantissa in (1.0, 1.234567, 6.31, 9.996):
            x = mantissa * 10 ** exp
            text = fmt.num(x, lang)
            assert "e" not in text.lower(), text
            back = fmt.parse(text, lang)
            assert len(back) == 1 and fmt.matches(x, back[0]), (x, text, back)
            assert abs(back[0] - x) <= max(abs(x) * 0.005, 0.0006), (x, text)
    assert fmt.num(6.31e-06, lang).startswith("<")  # the "6.31e-06 kWh/year"
    assert fmt.energy(27_200.0, lang, "/year").startswith("27")
    assert fmt.money(3.014, lang) in ("3.01 €", "3,01 €")


def test_both_languages_have_every_sentence_with_the_same_fields() -> None:
    en, fr = i18n.strings("en"), i18n.strings("fr")
    assert set(en) == set(fr)
    field = re.compile(r"\{(\w+)\}")
    for key in en:
        assert set(field.findall(en[key])) == set(field.findall(fr[key])), key
    assert en["summary"] != fr["summary"] and en["decision_rule"] != fr["decision_rule"]


# --- an unknown part stops the totals ---------------------------------------------------------

def test_unknown_board_prints_no_total_and_one_line_saying_what_to_set() -> None:
    rep = build_report(_config({"board": "generic-x86"}), BENCH, SUMMARY)
    lc = rep["life_cycle"]
    assert lc["kwh_per_year"] is None and lc["eur_per_year"] is None
    assert lc["kg_co2e_per_year"] is None and lc["kg_co2e_per_year_use"] is None
    assert rep["gateway_energy"]["kwh_per_year"] is None
    assert all(s["per_year"]["kwh"] is None for s in rep["scenarios"])
    for lang in ("en", "fr"):
        t = i18n.strings(lang)
        md = edition.to_markdown({**rep, "impact": None, "coast": None}, lang)
        summary = md[:md.index("<!-- pagebreak -->")]
        rows = {r["key"]: r for r in edition.summary_rows(rep, lang)}
        assert rows["kwh_year"]["value"] == t["not_total"]
        assert rows["eur_year"]["value"] == t["not_total"]
        assert rows["co2_use_year"]["value"] == t["not_total"]
        said = t["set_" + SET_BOARD]
        lines = [ln for ln in summary.splitlines() if "pi-4b" in ln]
        assert lines == [said], lines  # one line, saying what to set
        assert not re.search(r"\d[eE][-+]?\d", md), "scientific notation"
        assert "0.0 %" not in md and "0,0 %" not in md


def test_a_known_board_gives_totals_and_the_manufacture_needs_its_figure() -> None:
    rep = build_report(_config({"board": "pi-4b"}), BENCH, SUMMARY)
    lc = rep["life_cycle"]
    assert lc["kwh_per_year"] == pytest.approx(rep["gateway_energy"]["kwh_per_year"])
    assert lc["kwh_per_year"] > 20  # a Pi 4 board all year, not 6.31e-06
    assert lc["kg_co2e_per_year"] is None  # manufacture unknown: no life-cycle total
    assert lc["missing"] == [lc["parts"][0]["set"]] and "board_embodied_kg_co2e" in \
        lc["missing"][0]
    given = build_report(_config({"board": "pi-4b", "board_embodied_kg_co2e": 10.0,
                                  "board_embodied_source": "test figure",
                                  "board_lifetime_years": 5.0}), BENCH, SUMMARY)["life_cycle"]
    assert given["missing"] == []
    assert given["kg_co2e_per_year"] == pytest.approx(10.0 / 5 + given["kg_co2e_per_year_use"])


def test_lifecycle_config_is_checked_and_names_the_key() -> None:
    from frugalai.errors import ConfigError

    for energy, key in (({"co2_scope": "lifecycle"}, "co2_scope"),
                        ({"electricity_price_date": "Feb 2025"}, "electricity_price_date"),
                        ({"board_embodied_kg_co2e": 12.0}, "board_embodied_source"),
                        ({"board_lifetime_years": 0.0}, "board_lifetime_years")):
        with pytest.raises(ConfigError, match=key):
            _config(energy)


# --- the chart says what the table says --------------------------------------------------------

@pytest.mark.parametrize("lang", ["en", "fr"])
def test_the_chart_labels_are_the_table_numbers(lang: str) -> None:
    rep = build_report(_config({"board": "pi-4b"}), BENCH, SUMMARY)
    svg = edition.charts(rep, lang)["lifecycle"]
    assert "log scale" not in svg and "échelle log" not in svg
    drawn = re.findall(r'<text x="[^"]+" y="[^"]+" text-anchor="end">([^<]+)</text>'
                       r'<rect[^>]*><title>[^<]*</title></rect><text [^>]*class="value">'
                       r"([^<]+)</text>", svg)
    table = {row[0]: row[1] for row in edition.lifecycle_rows(rep, lang)}
    assert len(drawn) == 5
    for label, value in drawn:
        assert table[label.replace("&#x27;", "'")] == value.replace("&lt;", "<"), label
    # bar lengths are linear in the values
    widths = [float(w) for w in re.findall(r'<rect x="[^"]+" y="[^"]+" width="([^"]+)" '
                                           r'height="[^"]+" fill="#\w+"><title>', svg)]
    assert len(widths) == 5
    values = [v for _, v in edition.chart_values(rep, lang)]
    big = max(values)
    for w, v in zip(widths, values):
        assert w == pytest.approx(v / big * widths[values.index(big)], abs=0.06)


def test_long_chart_titles_are_wrapped_not_cut() -> None:
    title = "word " * 60
    svg = svgchart.hbar(["a", "b"], [1.0, 2.0], "u", title)
    lines = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg)
    assert len(lines) > 1 and all(len(t) <= svgchart.TITLE_CHARS for t in lines)
    assert " ".join(lines) == title.strip()


# --- IPMVP on the Dutch demand series, checked by hand ------------------------------------------

def _hand_series() -> tuple[np.ndarray, np.ndarray]:
    ts, kw = [], []
    with open(DUTCH, newline="") as fh:
        for row in csv.DictReader(fh):
            dt = datetime.strptime(row["timestamp"], "%Y-%m-%d %H:%M").replace(
                tzinfo=timezone.utc)
            ts.append(dt.timestamp())
            kw.append(float(row["value"]))
    return np.array(ts), np.array(kw)


@pytest.mark.skipif(not DUTCH.is_file(), reason=f"real data not found: {DUTCH}")
def test_dutch_per_alert_energy_agrees_with_a_hand_computation(tmp_path: Path) -> None:
    """Baseline January-March 1997, reporting April-December: each alert's energy above or
    below the baseline, from the report's JSON, against numpy on the raw CSV (1 %)."""
    cfg = tmp_path / "site.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n\n[[flow]]\nname = "linky"'
                   '\nsource = "serial:///dev/ttyUSB0?protocol=tic"\nmodel = "energy-anomaly"\n'
                   '\n[energy]\nboard = "pi-4b"\n')
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["report", "--config", str(cfg), "--bench",
                                   str(SHIPPED_BENCH), "--out", str(out), "--no-html",
                                   "--impact-data", str(DUTCH), "--value-col", "value",
                                   "--power-unit", "kW", "--baseline", "1997-01/1997-03",
                                   "--reporting", "1997-04/1997-12"])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "frugality_report.json").read_text())
    im = rep["impact"]
    assert im["adjustment"] == "none" and im["baseline"]["period"] == "1997-01/1997-03"

    ts, kw = _hand_series()
    days = (ts // 86400).astype(int)
    weekend = ((days + 3) % 7) >= 5  # 1970-01-01 was a Thursday: day 0 -> weekday index 3
    slot = ((ts % 86400) // 900).astype(int)
    end_of_march = datetime(1997, 4, 1, tzinfo=timezone.utc).timestamp()
    base = ts < end_of_march
    median = {(w, s): float(np.median(kw[base & (weekend == w) & (slot == s)]))
              for w in (False, True) for s in range(96)}
    expected = np.array([median[(w, s)] for w, s in zip(weekend, slot)])

    alerts = im["alerts"]
    assert len(alerts) >= 5  # the holidays of the reporting period are among them
    labelled = {d for d, lab in zip(days, _labels()) if lab}
    hit = {int(a["start_ts"] // 86400) for a in alerts}
    assert len(hit & labelled) >= 5, (sorted(hit), sorted(labelled))
    for a in alerts:
        sel = (ts >= a["start_ts"]) & (ts < a["end_ts"])
        hand_wh = float(np.sum(kw[sel] - expected[sel])) * 0.25 * 1000  # kW over 15 min
        assert a["excess_wh"] == pytest.approx(hand_wh, rel=0.01), a
        assert a["excess_eur"] == pytest.approx(hand_wh / 1000 * rep["life_cycle"]["factors"][
            "electricity"]["eur_per_kwh"], rel=0.01)
    # the reporting period as a whole: adjusted baseline - actual
    rp = ts >= end_of_march
    hand_avoided = float(np.sum(expected[rp] - kw[rp])) * 0.25 * 1000
    assert im["avoided_wh"] == pytest.approx(hand_avoided, rel=0.01)
    u = im["uncertainty"]
    assert u["wh"] > 0 and math.isfinite(u["fractional"])
    assert u["wh"] == pytest.approx(u["fractional"] * abs(im["avoided_wh"]), rel=1e-6)


def _labels() -> list[int]:
    with open(DUTCH, newline="") as fh:
        return [int(r["label"]) for r in csv.DictReader(fh)]


def test_bad_periods_are_one_line_and_exit_2(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("time,value\n2024-01-01 00:00,1\n")
    cfg = tmp_path / "s.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path}"\n[[flow]]\nname = "x"\n'
                   'source = "serial:///dev/ttyUSB0?protocol=tic"\n')
    runner = CliRunner()
    res = runner.invoke(cli, ["report", "--config", str(cfg), "--bench", str(SHIPPED_BENCH),
                              "--baseline", "2024-01/2024-02"])
    assert res.exit_code == 2 and "--impact-data" in res.output
    meter = tmp_path / "meter.csv"
    meter.write_text("time,power\n" + "".join(
        f"2024-01-{d:02d} {h:02d}:00,{100 + h}\n" for d in range(1, 29) for h in range(24)))
    for period, said in (("x", "baseline: expected START/END"),
                         ("2024-01-20/2024-01-28", "baseline: the baseline period must end "
                                                   "before")):
        res = runner.invoke(cli, ["report", "--config", str(cfg), "--bench",
                                  str(SHIPPED_BENCH), "--impact-data", str(meter),
                                  "--baseline", period, "--reporting", "2024-01-10/2024-01-28",
                                  "--out", str(tmp_path / "out")])
        assert res.exit_code == 2 and said in res.output, res.output
        assert "Traceback" not in res.output
    with pytest.raises(Exception, match="reporting"):
        mv.parse_period("2024-03/2024-01", "reporting")
    with pytest.raises(Exception, match="baseline.*YYYY-MM"):
        mv.parse_period("last winter/now", "baseline")


# --- the coast, per season, against the card ---------------------------------------------------

PROVIDENCE = DATA / "coastal" / "providence_8454000"


@pytest.mark.skipif(not PROVIDENCE.is_dir(), reason=f"real data not found: {PROVIDENCE}")
def test_coast_seasons_add_up_to_the_cards_validation_episodes() -> None:
    from frugalai.report.impact import coast_seasons
    from frugalai.runtime.model import load_model, shipped_models_dir

    model = load_model(shipped_models_dir() / "coastal-submersion")
    co = coast_seasons(model, DATA)
    card = model.card["metrics"]["validation"]
    for side, key in (("model", "model_fp32"), ("rule", "baseline")):
        ep = card[key]["flood_events"]
        s = co["seasons"][side]
        assert sum(x["floods"] for x in s.values()) == ep["episodes"]
        assert sum(x["warned"] for x in s.values()) == ep["episodes_detected"]
        assert sum(x["alerts"] for x in s.values()) == ep["predicted_episodes"]
        false = sum(x["false"] for x in s.values())
        assert false == round(ep["predicted_episodes"] * (1 - ep["episode_precision"]))
    assert co["decision"] == model.card["decision"]["default"] == "baseline"


def test_coastal_flow_says_the_rule_is_used_because_the_model_did_not_beat_it() -> None:
    cfg = loads_config({"gateway": {"id": "quai"}, "flow": [{
        "name": "tide", "source": "lora:///dev/ttyUSB1?modem=rak3172&decoder=fb",
        "model": "coastal-submersion", "quantity": "water_level_m", "aggregate": "mean",
        "window_s": 3600}], "energy": {"board": "pi-4b"}})
    rep = build_report(cfg, json.loads(SHIPPED_BENCH.read_text()))
    (flow,) = rep["flows"]
    assert flow["decision"] == "baseline"
    assert edition.flow_decision(flow) == "decision_rule"
    for lang in ("en", "fr"):
        md = edition.to_markdown({**rep, "impact": None, "coast": None}, lang)
        assert i18n.strings(lang)["decision_rule"] in md
        assert "AFNOR Spec 2314" in md


# --- the PDF, read back ------------------------------------------------------------------------

def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed: scripts/install-sysdeps installs poppler-utils "
                    "and chromium (make test does)")
    return found


def _numbers(doc: Any) -> list[float]:
    if isinstance(doc, bool):
        return []
    if isinstance(doc, (int, float)):
        return [float(doc)]
    if isinstance(doc, str):
        return fmt.parse(doc, "en") + fmt.parse(doc, "fr")
    if isinstance(doc, dict):
        return [x for v in doc.values() for x in _numbers(v)]
    if isinstance(doc, list):
        return [x for v in doc for x in _numbers(v)]
    return []


_DATES = re.compile(r"\d{4}-\d{2}(-\d{2})?( \d{2}:\d{2})?( UTC)?(/\d{4}-\d{2}(-\d{2})?)?")
_BOUNDS = re.compile(r"[<>] ?-?[\d.,]+")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_pdf_pages_are_whole_and_the_summary_numbers_are_in_the_json(tmp_path: Path,
                                                                     lang: str) -> None:
    from PIL import Image  # Pillow: in the dev extra

    _tool("chromium")
    pdftoppm, pdftotext = _tool("pdftoppm"), _tool("pdftotext")
    cfg = _config({"board": "pi-4b"}, model="energy-anomaly")
    paths = write_report(cfg, SHIPPED_BENCH, tmp_path / "out", summary_path=_summary(tmp_path),
                         lang=lang, pdf=True)
    pdf = paths["pdf"]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run([pdftoppm, "-r", "40", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for page in pages:  # nothing touches the page's edges: the margins are white
        im = Image.open(page).convert("L")
        w, h = im.size
        m = max(2, int(0.02 * w))
        for box in ((0, 0, w, m), (0, h - m, w, h), (0, 0, m, h), (w - m, 0, w, h)):
            assert im.crop(box).getextrema()[0] > 240, (page.name, box)
    text = subprocess.run([pdftotext, "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=120).stdout
    flat = re.sub(r"\s+", " ", text)
    md = paths["md"].read_text()
    for title in re.findall(r"^#{1,3} (.+)$", md, flags=re.M):
        words = re.sub(r"\\(.)", r"\1", title)
        assert re.sub(r"\s+", " ", words) in flat, title  # every section title is printed
    first = subprocess.run([pdftotext, "-f", "1", "-l", "1", str(pdf), "-"],
                           capture_output=True, text=True, check=True, timeout=60).stdout
    t = i18n.strings(lang)
    assert t["summary"] in first and t["annex_title"] not in first
    second = subprocess.run([pdftotext, "-f", "2", "-l", "2", str(pdf), "-"],
                            capture_output=True, text=True, check=True, timeout=60).stdout
    assert re.sub(r"\s+", " ", second).startswith(t["lc_title"])  # the summary is one page
    rep = json.loads(paths["json"].read_text())
    known = _numbers(rep)
    shown = fmt.parse(_BOUNDS.sub(" ", _DATES.sub(" ", first)), lang)
    assert len(shown) >= 5, first
    for x in shown:
        assert any(fmt.matches(v, x) for v in known), (x, first)


def _summary(tmp_path: Path) -> Path:
    p = tmp_path / "run.json"
    p.write_text(json.dumps({"summary": SUMMARY}))
    return p


# --- the degree-day adjustment -----------------------------------------------------------------

def _weather_site(saving: float, seed: int = 3) -> tuple[np.ndarray, ...]:
    """120 days of a building whose heating follows the degree-days (100 W per degree-day,
    2,400 Wh a day), a cold baseline and a mild reporting period, and a true ``saving`` of its
    non-heating load in the reporting period. The truth is known by construction."""
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()  # a Monday
    days = 120
    ts = start + np.arange(days * 96) * 900.0
    day = np.arange(days * 96) // 96
    slot = np.arange(days * 96) % 96
    weekend = (day % 7) >= 5
    temp_day = np.where(np.arange(days) < 60, 5.0, 12.0) + rng.normal(0, 3, days)
    hdd = np.maximum(0.0, 18.0 - temp_day)
    shape = 1000 + 800 * np.sin(np.pi * slot / 96) ** 2
    base_load = shape * np.where(weekend, 0.6, 1.0)
    after = ts >= start + 60 * 86400
    watts = base_load * np.where(after, 1 - saving, 1.0) + 100.0 * hdd[day] + \
        rng.normal(0, 20, len(ts))
    temp_ts = start + np.arange(days * 24) * 3600.0
    temp = np.repeat(temp_day, 24) + rng.normal(0, 0.5, days * 24)
    true_saving_wh = float(np.sum(base_load[after])) * saving * 0.25
    return ts, watts, temp_ts, temp, np.array([true_saving_wh])


@pytest.mark.parametrize("saving", [0.0, 0.05])
def test_degree_days_remove_the_weather_and_keep_the_saving(saving: float) -> None:
    ts, watts, temp_ts, temp, truth = _weather_site(saving)
    b = mv.parse_period("2024-01-01/2024-02-29")
    r = mv.parse_period("2024-03-01/2024-04-29", "reporting")
    alarm = np.zeros(len(ts), dtype=bool)
    raw = mv.measure(ts, watts, b, r, alarm, 0.2)
    adj = mv.measure(ts, watts, b, r, alarm, 0.2, temperature=(temp_ts, temp))
    assert raw["adjustment"] == "none"
    assert adj["adjustment"]["kind"] == "degree-days"
    assert adj["adjustment"]["wh_per_degree_day"] == pytest.approx(2400, rel=0.05)
    # unadjusted, the mild spring looks like a saving of about 7 DD x 2.4 kWh x 60 days
    assert raw["avoided_wh"] - truth[0] > 500_000
    # adjusted, the result is the true saving to 1 % of the adjusted baseline (the weather's
    # effect removed was 20 times that), and its uncertainty is stated on whole days
    error = abs(adj["avoided_wh"] - truth[0])
    assert error < 0.01 * adj["reporting"]["adjusted_baseline_wh"], (adj["avoided_wh"], truth)
    assert adj["uncertainty"]["on"] == "days" and adj["uncertainty"]["n"] == 60
    assert 0 < adj["uncertainty"]["wh"] < 0.01 * adj["reporting"]["adjusted_baseline_wh"]
    md = edition._adjustment_text(adj, "fr")
    assert "degrés-jours" in md and "18" in md
