"""The footprint figures against a case computed by hand (issue 18).

Every expected number below is worked out in the test from the inputs with the formulas of
docs/energy.md (LoRa time on air of Semtech AN1200.13 written out), not by calling the code
under test: the whole gateway, the three scenarios, the euro and CO2e conversions, the value of
the alarmed periods, and the one upstream ratio ``demo``, ``status`` and ``report`` print.
"""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import pytest

from frugalai import footprint
from frugalai.config import loads_config
from frugalai.report import worth
from frugalai.report.build import build_report, to_markdown

DAY = 86400.0


def toa_sf7(app_payload: int) -> float:
    """EU868 DR5 (SF7, 125 kHz, CR 4/5, explicit header, CRC, 8-symbol preamble), by hand."""
    tsym = 2 ** 7 / 125_000
    pl = app_payload + 13
    n_payload = 8 + max(math.ceil((8 * pl - 4 * 7 + 28 + 16) / (4 * 7)) * 5, 0)
    return (8 + 4.25) * tsym + n_payload * tsym


def test_hand_toa_matches_the_documented_check() -> None:
    assert toa_sf7(10) == pytest.approx(0.061696)  # docs/energy.md: 10 B at SF7 -> 61.696 ms
    assert toa_sf7(11) == pytest.approx(0.061696)
    assert toa_sf7(242) == pytest.approx(0.399616)
    assert toa_sf7(56) == pytest.approx(0.128256)


def test_doctests() -> None:
    assert doctest.testmod(footprint).failed == 0
    assert doctest.testmod(worth).failed == 0


# The case: a Pi 4 (3.1 W idle, profile), one Linky flow counted over 48 h: 2,000,000 bytes
# read, 8 events sent; 96 inferences a day at 50 µJ; encoding 10 µJ/event; radio 0.1 W at DR5;
# storage 3200 µJ per write, 2 writes per event; 32 gCO2e/kWh; 0.20 EUR/kWh; 0.10 EUR/MB.
HOURS, RAW, EVENTS = 48.0, 2_000_000, 8
CONFIG = {
    "gateway": {"id": "mairie"},
    "flow": [{"name": "linky", "source": "serial:///dev/ttyUSB0?protocol=tic",
              "model": "profile", "window_s": 900}],
    "energy": {"board": "pi-4b", "radio_tx_w": 0.1, "lora_dr": 5,
               "electricity_eur_per_kwh": 0.20, "cellular_eur_per_mb": 0.10,
               "storage_uj_per_write": 3200.0, "co2_g_per_kwh": 32.0},
}
BENCH = {"created": "2026-01-01", "meter": {"meter": "estimate:pi-4b", "estimated": True,
                                            "profile": {"name": "pi-4b"}},
         "results": [{"model": "profile", "backend": "python", "precision": "fp64", "batch": 1,
                      "uj_per_inference": 50.0, "model_bytes": 1},
                     {"model": "encode-binary", "backend": "python", "precision": "-",
                      "batch": 1, "uj_per_inference": 10.0, "model_bytes": 0}]}
SUMMARY = {"simulated_hours": HOURS, "events": EVENTS, "raw_bytes_read": RAW,
           "upstream_bytes_binary": EVENTS * 11,
           "flows": {"linky": {"events": EVENTS, "bytes_read": RAW, "readings": 2880}},
           "alarm_windows": [[900, 3000.0, 1000.0], [900, 3000.0, 1000.0],
                             [900, 0.0, 400.0]]}


def _report() -> dict:  # type: ignore[type-arg]
    return build_report(loads_config(CONFIG), BENCH, SUMMARY)


def test_the_whole_gateway_by_hand() -> None:
    g = _report()["gateway_energy"]
    events_day = 8 * 24 / 48                     # 4 events a day
    board = 3.1 * DAY                            # 267,840 J
    inference = 96 * 50e-6                       # 0.0048 J
    encode = events_day * 10e-6                  # 0.00004 J
    radio = events_day * 0.061696 * 0.1          # 0.0246784 J
    storage = events_day * 2 * 3200e-6           # 0.0256 J
    total = board + inference + encode + radio + storage
    assert total == pytest.approx(267_840.0551184)
    assert g["board_j"] == pytest.approx(board)
    assert g["inference_j"] == pytest.approx(inference)
    assert g["encode_j"] == pytest.approx(encode)
    assert g["radio_j"] == pytest.approx(radio)
    assert g["storage_j"] == pytest.approx(storage)
    assert g["total_j"] == pytest.approx(total)
    assert g["ai_share"] == pytest.approx(inference / total)
    kwh_year = total / 3.6e6 * 365               # 27.156 kWh
    assert g["kwh_per_year"] == pytest.approx(kwh_year)
    assert g["kwh_per_year"] == pytest.approx(27.156, rel=1e-4)
    assert g["co2_kg_per_year"] == pytest.approx(kwh_year * 32 / 1000)   # 0.869 kg
    assert g["eur_per_year"] == pytest.approx(kwh_year * 0.20)           # 5.43 EUR


def test_the_three_scenarios_by_hand() -> None:
    rep = _report()
    a, b, c = rep["scenarios"]
    board = 3.1 * DAY
    # (a) events only: 4 x 11 B a day, one uplink each
    assert a["upstream_bytes_per_day"] == 44 and a["uplinks_per_day"] == 4
    assert a["airtime_s_per_day"] == pytest.approx(4 * 0.061696)
    assert a["airtime_verdict"].startswith("fits: 0.8%")
    a_total = board + 96 * 50e-6 + 4 * (10e-6 + 0.0061696 + 2 * 3200e-6)
    assert a["energy_per_day"]["total_j"] == pytest.approx(a_total)
    mb_a = 44 * 365 / 12 / 1e6
    assert a["per_year"]["cellular_mb_per_month"] == pytest.approx(mb_a)
    assert a["per_year"]["cellular_eur"] == pytest.approx(mb_a * 12 * 0.10)
    # (b) the raw stream: 1,000,000 B a day = 4132 full 242-byte uplinks + one of 56 B
    assert 4132 * 242 + 56 == 1_000_000
    airtime = 4132 * 0.399616 + 0.128256          # 1651.37 s: beyond the 864 s duty cycle
    assert b["upstream_bytes_per_day"] == pytest.approx(1_000_000)
    assert b["uplinks_per_day"] == 4133
    assert b["airtime_s_per_day"] == pytest.approx(airtime)
    assert b["airtime_verdict"].startswith("impossible") and "864" in b["airtime_verdict"]
    b_total = board + airtime * 0.1 + 4133 * 3200e-6
    assert b["energy_per_day"]["total_j"] == pytest.approx(b_total)
    assert b["energy_per_day"]["inference_j"] == 0
    mb_b = 1_000_000 * 365 / 12 / 1e6            # 30.4 MB a month
    assert b["per_year"]["cellular_mb_per_month"] == pytest.approx(mb_b)
    assert b["per_year"]["cellular_eur"] == pytest.approx(mb_b * 12 * 0.10)   # 36.5 EUR
    b_kwh = b_total / 3.6e6 * 365
    assert b["per_year"]["kwh"] == pytest.approx(b_kwh)
    assert b["per_year"]["co2_kg"] == pytest.approx(b_kwh * 0.032)
    assert b["per_year"]["electricity_eur"] == pytest.approx(b_kwh * 0.20)
    assert b["per_year"]["total_eur"] == pytest.approx(b_kwh * 0.20 + mb_b * 12 * 0.10)
    # (c) no AI: the profile flow's card records no baseline alarm rate: same events as (a),
    # no inference
    c_total = board + 4 * (10e-6 + 0.0061696 + 2 * 3200e-6)
    assert c["energy_per_day"]["total_j"] == pytest.approx(c_total)
    assert c["energy_per_day"]["inference_j"] == 0
    assert "same events as (a)" in c["notes"][0]


def test_no_ai_scenario_takes_the_alarm_counts_of_the_shipped_coastal_card() -> None:
    """The coastal card (validation 1991-2005) records, for the model and for the rule, the
    flood episodes, those detected, the predicted ones and their precision: the scenarios take
    their missed and false alarms from there (read from the card, which retraining changes)."""
    card = json.loads((Path(__file__).resolve().parents[1] / "models" / "coastal-submersion"
                       / "card.json").read_text())
    v = card["metrics"]["validation"]
    model, rule = v["model_fp32"]["flood_events"], v["baseline"]["flood_events"]
    cfg = loads_config({**CONFIG, "flow": [{
        "name": "tide", "source": "lora:///dev/ttyUSB1?modem=rak3172&decoder=fb",
        "model": "coastal-submersion", "quantity": "water_level_m", "aggregate": "mean",
        "window_s": 3600}]})
    summary = {**SUMMARY, "flows": {"tide": {"events": 8, "bytes_read": RAW}}}
    a, _, c = build_report(cfg, BENCH, summary)["scenarios"]
    assert a["alarms"]["missed"] == model["episodes"] - model["episodes_detected"]
    assert a["alarms"]["false"] == round(model["predicted_episodes"]
                                         * (1 - model["episode_precision"]))
    assert c["alarms"]["missed"] == rule["episodes"] - rule["episodes_detected"] == 0
    assert c["alarms"]["false"] == round(rule["predicted_episodes"]
                                         * (1 - rule["episode_precision"]))
    assert c["upstream_bytes_per_day"] == pytest.approx(
        4 * rule["predicted_episodes"] / model["predicted_episodes"] * 11)
    assert "scaled by the baseline's alarm rate" in c["notes"][0]


def test_what_the_anomalies_were_worth_by_hand() -> None:
    w = _report()["anomaly_worth"]
    above = 2 * 900 * (3000 - 1000) / 3.6e6      # 1.0 kWh
    below = 900 * 400 / 3.6e6                    # 0.1 kWh
    assert w["excess_kwh"] == pytest.approx(above) and w["deficit_kwh"] == pytest.approx(below)
    assert w["excess_eur"] == pytest.approx(0.20) and w["hours"] == pytest.approx(0.75)


def test_alarmed_windows_pair_the_log_with_alarm_and_clear() -> None:
    log = [(900.0 * k, 900.0, 100.0 * k, 50.0) for k in range(1, 8)]
    got = worth.alarmed_windows(log, [("alarm", 1800.0), ("clear", 3600.0), ("alarm", 5400.0)])
    # windows ending at 1800 and 2700 (the alarm until its clear), 5400 and 6300 (still open)
    assert [o for _, o, _ in got] == [200.0, 300.0, 600.0, 700.0]
    assert worth.alarmed_windows([(900.0, 900.0, 1.0, None)], [("alarm", 0.0)]) == []


def test_one_ratio_definition() -> None:
    """Bytes read at the input over bytes sent, from the same run's counters; the line
    capacity (an upper bound) is never presented as the measured ratio."""
    rep = _report()
    assert rep["measured_bytes"]["ratio"] == pytest.approx(RAW / (EVENTS * 11))
    assert rep["measured_bytes"]["text"].endswith(f"{RAW / 88:,.0f}x less")
    assert rep["flows"][0]["upstream_ratio"] == pytest.approx(RAW / 88)
    unmeasured = build_report(loads_config(CONFIG), BENCH)
    linky = unmeasured["flows"][0]
    assert linky["bytes_measured"] is False
    assert linky["raw_bytes_per_day"] == 1200 / 10 * DAY   # the line's capacity
    md = to_markdown(unmeasured)
    assert "at most 235,636x (line capacity)" in md       # 10,368,000 / (4 x 11)
    assert unmeasured["measured_bytes"] is None
    # status.json carries the same counters under "bytes"
    status = {"bytes": {"raw_read": RAW, "upstream": 88}}
    assert footprint.summary_bytes(status) == footprint.summary_bytes(SUMMARY) == (RAW, 88)


def test_config_prices_carry_their_source_and_reject_negatives(tmp_path: Path) -> None:
    from frugalai.config import EnergyConfig
    from frugalai.errors import ConfigError

    e = EnergyConfig()
    assert "tarif bleu" in e.electricity_price_source and "2025" in e.electricity_price_source
    assert "contract" in e.electricity_price_source and "1 Aug 2025" in e.electricity_price_source
    assert "check" in e.cellular_price_source and e.electricity_price_date == "2025-02-01"
    with pytest.raises(ConfigError, match="electricity_eur_per_kwh"):
        loads_config({**CONFIG, "energy": {"electricity_eur_per_kwh": -1}})
    rep = _report()
    assert json.loads(json.dumps(rep, default=str))["prices"]["cellular_eur_per_mb"] == 0.10


def test_a_board_meter_replaces_the_profile() -> None:
    """Measured when a board meter took the benchmark: its idle reading is the board power."""
    bench = {**BENCH, "idle_w": 2.7,
             "meter": {"meter": "hwmon:ina226", "label": "INA226 (hwmon)", "estimated": False,
                       "scope": "board"}}
    rep = build_report(loads_config(CONFIG), bench, SUMMARY)
    assert rep["board"]["measured"] is True and rep["board"]["source"].startswith("measured")
    assert rep["gateway_energy"]["board_j"] == pytest.approx(2.7 * DAY)
    # a process-scope estimate never counts as the board: the profile's figure is used
    assert _report()["board"]["measured"] is False
    assert _report()["board"]["idle_w"] == 3.1 and _report()["board"]["active_w"] == \
        pytest.approx(3.1 + 4 * 0.8)


def test_no_board_figure_is_said_not_invented() -> None:
    cfg = loads_config({**CONFIG, "energy": {"board": "generic-x86"}})
    rep = build_report(cfg, BENCH, SUMMARY)
    assert rep["board"] is None and "no board power figure" in rep["board_note"]
    assert rep["gateway_energy"]["board_j"] == 0
    assert "Board power unknown" in to_markdown(rep)


def test_no_ai_scenario_for_energy_takes_the_fixed_threshold_rule_of_the_card() -> None:
    """The shipped energy card: the model alarmed 8 of 9 labelled days with 2 false-alarm days;
    the fixed-threshold rule caught all 8 it scored but alarmed 153 other days."""
    cfg = loads_config({**CONFIG, "flow": [{**CONFIG["flow"][0], "model": "energy-anomaly"}]})
    a, _, c = build_report(cfg, BENCH, SUMMARY)["scenarios"]
    assert (a["alarms"]["missed"], a["alarms"]["false"], a["alarms"]["alarms"]) == (1, 2, 10)
    assert (c["alarms"]["missed"], c["alarms"]["false"], c["alarms"]["alarms"]) == (0, 153, 161)
    assert c["upstream_bytes_per_day"] == pytest.approx(4 * 161 / 10 * 11)
    assert any(n.startswith("the rule: fixed thresholds") for n in c["notes"])


def test_energy_card_fixed_threshold_rule_recomputed_from_real_data(data_dir: Path) -> None:
    from frugalai.learn.data import load_dutch
    from frugalai.learn.energy import fixed_thresholds_rule
    from frugalai.runtime.model import shipped_models_dir

    card = json.loads((shipped_models_dir() / "energy-anomaly" / "card.json").read_text())
    got = fixed_thresholds_rule(load_dutch(data_dir), card["features"]["params"]["tz_offset_h"],
                                card["data"]["warm_start_days"])
    assert got == card["metrics"]["fixed_thresholds_rule"]
    assert got["labelled_days_missed"] == 0 and got["false_alarm_days_total"] > 100
