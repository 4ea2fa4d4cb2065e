"""Sensor health in a running flow: a replayed real gauge record with a stuck sensor and a value
out of its stated range -> health events through the outbox to a file uplink, decoded by the
JavaScript codec under node; the flow told to hold its decisions does not alarm on the bad
value and says so; the statistics file it leaves feeds ``frugalai sensors report``.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_payload_codec_js import run_node

from frugalai.cli import cli
from frugalai.config import load_config
from frugalai.pipeline import Pipeline

PROVIDENCE = "coastal/providence_8454000/providence_8454000_hourly_2000_2005.csv.gz"


def faulty_copy(data_dir: Path, out: Path) -> tuple[str, str]:
    """The first 60 days of 2000, the sensor stuck for 12 h at row 900, 9.9 m at row 1200."""
    with gzip.open(data_dir / PROVIDENCE, "rt") as fh:
        rows = fh.read().splitlines()[:1 + 24 * 60]
    body = [r.split(",") for r in rows[1:]]
    for i in range(900, 912):
        body[i][1] = body[899][1]
    body[1200][1] = "9.9"
    out.write_text("\n".join([rows[0]] + [",".join(r) for r in body]) + "\n")
    return body[900][0], body[1200][0]


def test_health_events_reach_the_uplink_and_decode_in_the_js_codec(
        data_dir: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "gauge.csv"
    stuck_at, _ = faulty_copy(data_dir, csv_path)
    events_file = tmp_path / "events.txt"
    cfg = tmp_path / "g.toml"
    cfg.write_text(f"""
[gateway]
id = "gw"
state_dir = "{tmp_path / 'state'}"

[[flow]]
name = "gauge"
sensor_id = 7
source = "replay://{csv_path}?speed=max&time=datetime&value=water_level_m_mllw:level_m:m&tz=-05:00"
quantity = "level_m"
aggregate = "mean"
window_s = 3600
model = "threshold"
hold_when_unhealthy = true
spec = {{ accuracy = 0.05, drift_per_year = 0.05, range = [-1, 5], period_s = 3600 }}

  [flow.policy]
  on = 3.0
  off = 2.0

[[uplink]]
url = "file://{events_file}?codec=binary"
""")
    config = load_config(cfg)
    pipeline = Pipeline.from_config(config, source_kwargs={"clock": time.time})
    try:
        pipeline.start(threading.Event())
        for t in pipeline._threads:
            t.join(timeout=60)
        pipeline.flush()
        (flow,) = pipeline.flows
        assert flow.stats.readings == 24 * 60
        assert flow.health is not None
        status = flow.health.status()
    finally:
        pipeline.close()

    payloads = [bytes.fromhex(line.strip()) for line in events_file.read_text().splitlines()]
    decoded = [r["data"] for r in run_node(payloads)]
    health = [d for d in decoded if d["kind"] == "health"]
    assert health, decoded
    assert all(d["sensor_id"] == 7 for d in health)
    stuck_on = [d for d in health if d["check"] == "stuck" and "stuck" in d["faults"]]
    range_on = [d for d in health if d["check"] == "range" and "range" in d["faults"]]
    assert len(stuck_on) == 1 and len(range_on) == 1
    assert range_on[0]["value"] == 9.8984375  # 9.9 m as a half float: the value out of range
    assert stuck_on[0]["time"][:13] > stuck_at[:10]
    # the bad value would have alarmed (9.9 >= on); the flow held it and said so
    assert not [d for d in decoded if d["kind"] == "alarm"]
    assert status["held_decisions"] >= 1

    stats_file = tmp_path / "state" / "health" / "gauge.json"
    doc = json.loads(stats_file.read_text())
    assert doc["flow"] == "gauge" and len(doc["days"]) >= 59
    assert sum(d["readings"] for d in doc["days"]) == 24 * 60

    result = CliRunner().invoke(cli, ["sensors", "report", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    lines = {ln.split()[0]: ln for ln in result.output.splitlines()[1:]}
    assert "NOT KEPT" in lines["stuck"] and "NOT KEPT" in lines["out"]
    assert "kept" in lines["completeness"] and "100.00 %" in lines["completeness"]
    as_json = json.loads(CliRunner().invoke(cli, ["sensors", "report", "--config", str(cfg),
                                                  "--json"]).output)
    assert as_json[0]["onsets"]["stuck"] == 1 and as_json[0]["onsets"]["range"] == 1


def test_sensors_check_cli_on_a_csv(data_dir: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "gauge.csv"
    faulty_copy(data_dir, csv_path)
    out = tmp_path / "timeline.json"
    result = CliRunner().invoke(cli, ["sensors", "check", "--data", str(csv_path), "--tz",
                                      "-05:00", "--range", "-1", "5", "--reference",
                                      "coastal-submersion", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["checks"]["stuck"]["episodes"] == 1
    assert summary["checks"]["range"]["episodes"] == 1
    doc = json.loads(out.read_text())
    assert {e["check"] for e in doc["episodes"]} >= {"stuck", "range"}
    bad = CliRunner().invoke(cli, ["sensors", "check", "--data", str(csv_path), "--value-col",
                                   "nope"])
    assert bad.exit_code == 2 and "no column 'nope'" in bad.output


def test_status_text_prometheus_and_fleet_status_show_the_sensor() -> None:
    import re

    from frugalai.fleet.status import from_snapshot
    from frugalai.health.checks import Limits
    from frugalai.health.monitor import FlowHealth
    from frugalai.reading import Reading
    from frugalai.service.health import prometheus
    from frugalai.service.health.status import format_status

    h = FlowHealth("gauge", "x", Limits(period_s=60.0, high=5.0), hold=True)
    h.reading(Reading(100.0, "gauge", {"x": 7.0}))
    snap = {"version": "0", "pid": 1, "state": "running", "healthy": True, "started": 1.0,
            "updated": 200.0,
            "flows": {"gauge": {"model": "threshold", "state": "running", "device_up": True,
                                "readings": 1, "health": h.status()},
                      "meter": {"model": "profile", "state": "running", "device_up": True,
                                "readings": 1, "health": None}},
            "outbox": {"depth": 0, "last_event": {}}, "uplinks": []}
    text = prometheus.render(snap)
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\\n]|\\.)*",?)*\})? -?[0-9.e+]+$')
    assert all(ln.startswith("# ") or sample.match(ln) for ln in text.splitlines())
    assert 'frugalai_sensor_healthy{flow="gauge"} 0' in text
    assert 'frugalai_sensor_fault{flow="gauge",check="range"} 1' in text
    assert 'flow="meter"' not in text.split("frugalai_sensor_healthy")[1].split("# HELP")[0]
    shown = format_status(snap, now=160.0)
    assert "    sensor: range since 60 s ago; decisions held: sensor range" in shown
    fleet = from_snapshot("gw", snap, {})
    assert fleet["flows"]["gauge"]["sensor"] == {"faults": ["range"], "holding": True}
    assert "sensor" not in fleet["flows"]["meter"]


def test_partner_flows_are_linked_and_a_disagreement_is_reported(
        data_dir: Path, tmp_path: Path) -> None:
    """Two co-located gauges (the same real levels, the second 3 cm lower and its own noise):
    after the second one jumps 30 cm, the partner check of the first fails."""
    import random

    from frugalai.config import loads_config
    from frugalai.pipeline import Flow
    from frugalai.reading import Reading
    from frugalai.scoring import ThresholdScorer
    from frugalai.uplink.outbox import Outbox

    with gzip.open(data_dir / PROVIDENCE, "rt") as fh:
        rows = [r.split(",") for r in fh.read().splitlines()[1:1 + 24 * 40]]
    config = loads_config({"flow": [
        {"name": "a", "source": "replay://a.csv", "quantity": "level", "aggregate": "mean",
         "model": "threshold", "partner": "b"},
        {"name": "b", "source": "replay://b.csv", "quantity": "level", "aggregate": "mean",
         "model": "threshold"}]})
    flows = [Flow(fc, source=None, scorer=ThresholdScorer())  # type: ignore[arg-type]
             for fc in config.flow]
    pipeline = Pipeline(flows, Outbox(tmp_path / "o.sqlite"), [])
    try:
        a, b = pipeline.flows
        assert a.health is not None and a.health.partner is b.health
        rng = random.Random(3)
        t0 = 946_684_800.0
        events = []
        for i, (_, level) in enumerate(rows):
            ts = t0 + 3600.0 * i
            jump = 0.3 if i >= 24 * 30 else 0.0
            b.process(Reading(ts, "b", {"level": float(level) - 0.03 + jump
                                        + rng.gauss(0, 0.005)}))
            events += a.process(Reading(ts, "a", {"level": float(level)}))
    finally:
        pipeline.outbox.close()  # no sources to close: the readings are fed by hand
    partner = [e for e in events if e.kind == "health" and e.model_id == 6]
    jumped = t0 + 3600.0 * 24 * 30
    assert partner and jumped <= partner[0].ts <= jumped + 86400  # nothing before, soon after
    assert partner[0].label & (1 << 6) and partner[0].value < 0  # a is now below b's level


def test_a_lora_node_whose_battery_fails_through_an_emulated_modem() -> None:
    """A Cayenne LPP node heard by an emulated RN2483 on a real pty: temperature on channel 3,
    battery voltage on channel 5; when the battery falls under the data sheet's floor, the
    flow's link check fails and says so with the voltage."""
    from lora_helpers import collect
    from test_lora_p2p import feed_when_listening

    from frugalai import registry
    from frugalai.config import loads_config
    from frugalai.pipeline import Flow
    from frugalai.protocols.lpp import encode
    from frugalai.scoring import ThresholdScorer
    from frugalai.sim.lora_modem import Rn2483Emulator

    volts = [3.7, 3.7, 3.6, 3.6, 3.1, 3.0]
    packets = [(encode([(3, "temperature", 12.0 + 0.1 * i), (5, "voltage", v)]), -85.0, 6.0)
               for i, v in enumerate(volts)]
    with Rn2483Emulator() as emu:
        url = f"lora://{emu.path}?modem=rn2483&decoder=lpp"
        src = registry.sources.get("lora")(url, sensor="node")
        config = loads_config({"flow": [{
            "name": "node", "source": url, "quantity": "temperature_3", "aggregate": "mean",
            "model": "threshold", "spec": {"battery": "voltage_5", "battery_min_v": 3.3}}]})
        flow = Flow(config.flow[0], source=src, scorer=ThresholdScorer())
        feed_when_listening(emu, *packets)
        readings = collect(src, len(packets))
        src.close()
    assert [r.values["voltage_5"] for r in readings] == volts
    events = [e for r in readings for e in flow.process(r)]
    link = [e for e in events if e.kind == "health" and e.model_id == 7]
    assert len(link) == 1 and link[0].value == 3.1 and link[0].label == 1 << 7
    assert flow.health is not None and flow.health.status()["faults"] == ["link"]


@pytest.mark.parametrize("extra, key, words", [
    ("spec = { range = [5, 1] }", "flow[0].spec.range", "low < high"),
    ("spec = { range = [1] }", "flow[0].spec.range", "[low, high]"),
    ("spec = { range = 'x' }", "flow[0].spec.range", "expected an array"),
    ("spec = { accuracy = -0.01 }", "flow[0].spec.accuracy", "> 0"),
    ("spec = { period_s = 0 }", "flow[0].spec.period_s", "> 0"),
    ("spec = { acuracy = 0.01 }", "flow[0].spec.acuracy", "unknown key"),
    ('partner = "nope"', "flow[0].partner", "must name another flow"),
    ('partner = "a"', "flow[0].partner", "must name another flow"),
    ("hold_when_unhealthy = 1", "flow[0].hold_when_unhealthy", "true or false"),
])
def test_bad_sensor_settings_exit_2_naming_the_key(tmp_path: Path, extra: str, key: str,
                                                   words: str) -> None:
    path = tmp_path / "g.toml"
    path.write_text(f'[[flow]]\nname = "a"\nsource = "replay://x.csv"\n{extra}\n')
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{key}:" in result.output and words in result.output


def test_report_with_no_record_and_with_a_damaged_one(tmp_path: Path) -> None:
    cfg = tmp_path / "g.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n'
                   '[[flow]]\nname = "a"\nsource = "replay://a.csv"\n'
                   '[[flow]]\nname = "b"\nsource = "replay://b.csv"\n')
    (tmp_path / "state" / "health").mkdir(parents=True)
    (tmp_path / "state" / "health" / "b.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["sensors", "report", "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    assert "a: no record yet" in result.output
    assert "b: unreadable record:" in result.output
    assert "not a sensor statistics file" in result.output


def test_the_frugality_report_has_a_section_per_recorded_sensor(tmp_path: Path) -> None:
    from frugalai.config import loads_config
    from frugalai.health import store
    from frugalai.health.stats import Day
    from frugalai.report.build import build_report, to_markdown

    cfg = loads_config({"gateway": {"state_dir": str(tmp_path)}, "flow": [
        {"name": "tide", "source": "replay:///data/tide.csv", "model": "threshold",
         "spec": {"accuracy": 0.01, "range": [-1, 12], "period_s": 3600}},
        {"name": "other", "source": "replay:///data/other.csv", "model": "threshold"}]})
    days = [Day(20000 + i, readings=24, mean=0.001 * i, noise=0.004, first=(20000 + i) * 86400.0,
                last=(20000 + i) * 86400.0 + 23 * 3600, onsets={"stuck": 1} if i == 3 else {})
            for i in range(30)]
    store.append(store.path_for(tmp_path / "health", "tide"), days, flow="tide")
    rep = build_report(cfg, {"meter": {}, "results": []}, models_dir=tmp_path)
    assert [r["flow"] for r in rep["sensors"]] == ["tide", "other"]
    md = to_markdown(rep)
    assert "## Sensors against their data sheets" in md
    assert "| tide | completeness | 100.00 % | 100 % | kept |" in md
    assert "| tide | stuck | 1 time(s) | never | **not kept** |" in md
    assert "| tide | noise (1 sigma) | 0.004 | <= 0.01 | kept |" in md
    section = md.split("## Sensors against their data sheets")[1].split("\n## ")[0]
    assert "| other |" not in section  # no record: no rows


def test_a_health_event_of_an_infinite_value_passes_the_event_schema() -> None:
    import math

    from frugalai.events.codec import decode_json, encode_json
    from frugalai.health.checks import Limits
    from frugalai.health.monitor import FlowHealth
    from frugalai.reading import Reading

    h = FlowHealth("g", "x", Limits(period_s=60.0))
    (event,) = h.reading(Reading(60.0, "g", {"x": math.inf}))
    assert event.kind == "health" and event.label == 1 << 2 and math.isnan(event.value)
    back = decode_json(encode_json(event))
    assert back.kind == "health" and back.label == 4 and math.isnan(back.value)


def test_a_coastal_flow_judges_its_gauge_against_its_bundles_tide() -> None:
    from frugalai.config import FlowConfig
    from frugalai.health.monitor import for_flow
    from frugalai.runtime import load_model
    from frugalai.runtime.scorers import ClassScorer

    scorer = ClassScorer(load_model("coastal-submersion"))
    config = FlowConfig(name="tide", source="replay://x.csv", quantity="level", aggregate="mean")
    health = for_flow(config, scorer)
    assert health is not None and health.reference is not None
    t = 1_700_000_000.0
    assert abs(health.reference.at(t) - float(scorer.features.tide.predict([t])[0])) < 0.001
    plain = for_flow(FlowConfig(name="m", source="replay://x.csv"), None)
    assert plain is not None and plain.reference is None and plain.limits.monotonic
    assert for_flow(FlowConfig(name="m", source="replay://x.csv", health=False), None) is None
