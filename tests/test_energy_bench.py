"""The harness, the benchmark script (quick mode, tiny config) and the frugality report.

No timing thresholds: the tests check the method (windows, baseline, medians), the schema and
that every figure is present and positive.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from frugalai.energy.base import Meter
from frugalai.energy.harness import HarnessConfig, Workload, idle_power, measure
from frugalai.energy.workloads import build
from frugalai.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = [{"kind": "numpy-mlp", "inputs": 4, "hidden": 8, "batch": 1},
        {"kind": "numpy-mlp", "inputs": 4, "hidden": 8, "batch": 4},
        {"kind": "profile", "batch": 1},
        {"kind": "encode"}]
POSITIVE = ("uj_per_inference", "uncertainty_uj", "latency_p50_us", "latency_p99_us",
            "throughput_per_s", "cpu_us_per_inference", "peak_rss_bytes")


class CountingMeter(Meter):
    """A board meter whose 'board' burns 2 J per read plus 1 W idle: tests the arithmetic."""

    name = "counting"
    rel_uncertainty = 0.1

    def __init__(self) -> None:
        self.reads = 0

    def read(self) -> float:
        self.reads += 1
        return float(self.reads)


def test_measure_takes_median_of_windows_and_subtracts_idle() -> None:
    calls = []
    w = Workload("noop", lambda: calls.append(1), batch=2, info={"model": "noop"})
    cfg = HarnessConfig(window_s=0.05, windows=5, min_calls=10, warmup_s=0.01, latency_s=0.01)
    meter = CountingMeter()
    r = measure(w, meter, cfg, idle_w=0.0)
    assert len(r["windows"]) == 5
    for win in r["windows"]:
        assert win["calls"] >= 10 and win["seconds"] >= 0.05
        assert win["joules"] == 1.0  # one read before, one after
        assert win["inferences"] == win["calls"] * 2
    per_inf = sorted(1e6 / win["inferences"] for win in r["windows"])
    assert r["uj_per_inference"] == pytest.approx(per_inf[2])
    r2 = measure(w, CountingMeter(), cfg, idle_w=2.0)
    for win in r2["windows"]:
        assert win["joules_net"] == pytest.approx(1.0 - 2.0 * win["seconds"])
    assert r["meter"]["meter"] == "counting" and r["model"] == "noop"


def test_idle_power_of_a_process_meter_is_near_zero() -> None:
    from frugalai.energy.estimate import PROFILES, EstimateMeter

    assert idle_power(EstimateMeter(PROFILES["pi-4b"]), 0.2) < 0.1 * 0.8


def test_workloads_build_and_run() -> None:
    for spec in TINY:
        w = build(spec)
        out = w.run()
        assert out is not None and w.batch == spec.get("batch", 1)
    mlp = build({"kind": "numpy-mlp", "inputs": 4, "hidden": 8, "batch": 3})
    assert np.asarray(mlp.run()).shape == (3, 1) and mlp.info["model_bytes"] == (32 + 8) * 4
    with pytest.raises(ConfigError, match="unknown workload kind"):
        build({"kind": "gpu"})


def _check_doc(doc: dict, n: int) -> None:  # type: ignore[type-arg]
    assert doc["schema"] == "frugalai.energy_per_inference/1"
    assert doc["meter"]["estimated"] is True and "profile" in doc["meter"]
    assert len(doc["results"]) == n
    for r in doc["results"]:
        for key in POSITIVE:
            assert isinstance(r[key], (int, float)) and r[key] > 0, (r["workload"], key)
        assert r["model_bytes"] >= 0 and len(r["windows"]) == 5
        assert {"model", "backend", "precision", "batch", "meter", "rescaled"} <= set(r)
        assert r["rescaled"]["pi-4b"]["same_cpu_time_uj"] > 0
    assert doc["per_event"]
    for e in doc["per_event"]:
        assert e["radio_uj"] > e["inference_uj"] > 0
        assert e["total_uj"] == pytest.approx(e["inference_uj"] + e["encode_uj"] + e["radio_uj"])


def test_benchmark_script_quick_on_a_tiny_config(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY))
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "energy_per_inference.py"),
                           "--quick", "--spec", str(spec), "--out", str(out),
                           "--meter", "estimate:pi-4b"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "energy_per_inference.json").read_text())
    _check_doc(doc, len(TINY))
    md = (out / "energy_per_inference.md").read_text()
    assert "estimated (pi-4b profile)" in md and "quick mode" in md
    assert md.count("| numpy-mlp-4x8 |") >= 2
    assert (out / "energy_per_inference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4/4" in proc.stderr  # the progress line reached the end
    # the run's provenance, first in the JSON and on top of the Markdown
    assert next(iter(doc)) == "meta" and doc["meta"]["commit"] and doc["meta"]["machine"]["cpu"]
    assert doc["meta"]["published"] is False
    assert md.split("\n")[2].startswith("_Run ") and doc["meta"]["date"] in md
    # energy per event, node vs gateway: the section, with figures where a C compiler exists
    from frugalai.energy.edge import SECTION_TITLE
    from frugalai.runtime.native import find_compiler

    assert f"## {SECTION_TITLE}" in md and SECTION_TITLE in (out / "energy_per_inference.html"
                                                             ).read_text()
    edge = doc["edge_energy"]
    if find_compiler() is None:
        assert "compiler" in edge["not_measured"]
        return
    for side in ("node", "gateway"):
        assert edge[side]["uj_per_event"] > 0 and edge[side]["uj_per_day"] > 0
    assert edge["assumptions"]["node_host_us_per_window"] > 0
    assert "Dutch" in edge["assumptions"]["events_source"]
    # TINY measures no energy-anomaly configuration: the gateway's inference is not invented
    assert edge["gateway"]["inference_uj_per_window"] == 0
    assert "not measured in this run" in edge["assumptions"]["gateway_inference"]
    assert "| inference on the node, events over LoRa |" in md
    assert "| raw reading over LoRa, inference on the gateway |" in md


def test_gateway_inference_is_this_runs_energy_model_at_batch_one() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from energy_per_inference import gateway_inference

    rows = [{"model": "energy-anomaly", "backend": b, "precision": p, "batch": n,
             "uj_per_inference": uj}
            for b, p, n, uj in (("reference", "int8", 1, 30.0), ("native", "int8", 32, 1.0),
                                ("native", "int8", 1, 2.0), ("onnx", "fp32", 1, 9.0))]
    doc = {"results": rows, "meter": {"meter": "estimate", "label": "estimated"}}
    uj, source = gateway_inference(doc)
    assert uj == 2.0 and "native int8, batch 1" in source and "estimated" in source
    uj, source = gateway_inference({**doc, "results": rows[:1]})
    assert uj == 30.0 and "reference int8" in source


def _config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "site.toml"
    cfg.write_text(f"""
[gateway]
id = "mairie"
models_dir = "{tmp_path / 'models'}"

[[flow]]
name = "linky"
source = "serial:///dev/ttyUSB0?protocol=tic"
window_s = 900

[[flow]]
name = "pump"
source = "serial:///dev/ttyUSB1?protocol=tic&baud=9600"
model = "pump-ae"
window_s = 60

[energy]
lora_dr = 0
events_per_day = 10
{extra}
""")
    return cfg


def _bench(tmp_path: Path) -> Path:
    doc = {"created": "2026-01-01T00:00:00Z", "method": {"quick": True},
           "meter": {"meter": "estimate:pi-4b", "label": "estimated (pi-4b profile)",
                     "estimated": True},
           "results": [
               {"model": "profile", "backend": "python", "precision": "fp64", "batch": 1,
                "uj_per_inference": 20.0, "model_bytes": 6144},
               {"model": "pump-ae", "backend": "onnx", "precision": "fp32", "batch": 1,
                "uj_per_inference": 80.0, "model_bytes": 5000},
               {"model": "pump-ae", "backend": "tflite", "precision": "int8", "batch": 1,
                "uj_per_inference": 40.0, "model_bytes": 2000},
               {"model": "encode-binary", "backend": "python", "precision": "-", "batch": 1,
                "uj_per_inference": 10.0, "model_bytes": 0}]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(doc))
    return path


def _card(tmp_path: Path, card: dict) -> None:  # type: ignore[type-arg]
    """A bundle the report can find and verify (the flow plan refuses anything less)."""
    import numpy as np

    from frugalai.runtime.bundle import write_card

    d = tmp_path / "models" / "pump-ae"
    d.mkdir(parents=True)
    np.savez(d / "weights.npz", w=np.zeros(2))
    write_card(d, {"task": "anomaly", "artifacts": {"reference": {"fp32": "weights.npz"},
                                                    "onnx": {"fp32": "weights.npz"}}, **card})


def test_report_figures(tmp_path: Path) -> None:
    from frugalai.config import load_config
    from frugalai.protocols.lorawan import lorawan_time_on_air
    from frugalai.report.build import build_report, load_json

    _card(tmp_path, {"name": "pump-ae", "metrics": {"f1": 0.91, "baseline": {"f1": 0.78,
                                                                             "method": "mean"}}})
    rep = build_report(load_config(_config(tmp_path)), load_json(_bench(tmp_path), "b"))
    linky, pump = rep["flows"]
    assert linky["inferences_per_day"] == 96 and pump["inferences_per_day"] == 1440
    assert pump["uj_per_inference"] == 40.0 and pump["backend"] == "tflite int8"
    assert linky["raw_bytes_per_day"] == 1200 / 10 * 86400
    assert pump["raw_bytes_per_day"] == 9600 / 10 * 86400
    assert pump["upstream_bytes_per_day"] == 10 * 11
    toa = lorawan_time_on_air(11, 0)
    assert rep["lora"]["airtime_s_per_day"] == pytest.approx(2 * 10 * toa)
    j = (96 * 20 + 1440 * 40) / 1e6 + 2 * 10 * (10 + toa * 0.145 * 1e6) / 1e6
    assert rep["j_per_day"] == pytest.approx(j)
    assert rep["co2"]["g_per_day"] == pytest.approx(j / 3600 / 1000 * 32)
    assert pump["metrics"] == {"f1": 0.91} and pump["baseline"]["f1"] == 0.78
    assert pump["comparison"] == [{"metric": "f1", "model": 0.91, "baseline": 0.78,
                                   "delta": pytest.approx(0.13)}]


def test_report_costs_a_flow_on_its_configured_backend(tmp_path: Path) -> None:
    """The footprint is that of what the flow runs: onnx fp32 (80 uJ) when so configured, the
    cheapest benchmarked configuration (tflite int8, 40 uJ) only when the flow's own was not
    measured."""
    from frugalai.config import loads_config
    from frugalai.report.build import build_report, load_json

    _card(tmp_path, {"name": "pump-ae"})
    flows = [{"name": f"pump-{b}", "source": "serial:///dev/ttyUSB1?protocol=tic",
              "model": "pump-ae", "backend": b, "precision": "fp32"}
             for b in ("onnx", "reference")]
    cfg = loads_config({"gateway": {"models_dir": str(tmp_path / "models")}, "flow": flows})
    onnx, reference = build_report(cfg, load_json(_bench(tmp_path), "b"))["flows"]
    assert (onnx["backend"], onnx["uj_per_inference"]) == ("onnx fp32", 80.0)
    assert (reference["backend"], reference["uj_per_inference"]) == ("tflite int8", 40.0)


def test_card_metrics_shapes() -> None:
    from frugalai.report.build import card_metrics, compare, verdict

    # the models' cards: metrics per precision and non-AI candidates compared at training
    card = {"metrics": {"fp32": {"day_roc_auc": 0.995, "false_alarm_days": ["1997-10-04"]},
                        "int8": {"day_roc_auc": 0.994},
                        "candidates": {"pca1_whitened": {"day_roc_auc": 0.995},
                                       "rms_residual (no weights)": {"day_roc_auc": 0.9953,
                                                                     "weights_bytes_fp32": 0}}}}
    model, base = card_metrics(card)
    assert model == {"fp32 day_roc_auc": 0.995, "int8 day_roc_auc": 0.994}
    assert base == {"method": "rms_residual (no weights)", "day_roc_auc": 0.9953,
                    "weights_bytes_fp32": 0}
    rows = compare(model, base)
    assert [r["metric"] for r in rows] == ["fp32 day_roc_auc", "int8 day_roc_auc"]
    assert verdict(rows).startswith("the baseline does as well or better")
    assert "beats its baseline" in verdict(compare({"acc": 0.9}, {"acc": 0.6}))
    assert card_metrics({"baseline": {"name": "threshold 3 kW", "metrics": {"f1": 0.7}}})[1] == \
        {"f1": 0.7, "method": "threshold 3 kW"}
    assert card_metrics(None) == ({}, {}) and card_metrics({"metrics": [1]}) == ({}, {})
    # a classifier card: held-out section with model and baseline side by side, training first
    cls = {"baseline": "flood if tide + surge >= threshold",
           "metrics": {"training": {"baseline": {"flood": {"recall": 0.9}},
                                    "model_fp32": {"flood": {"recall": 0.99}}},
                       "validation": {"baseline": {"flood": {"precision": 0.59, "recall": 0.57},
                                                   "rows": 130874},
                                      "model_fp32": {"flood": {"precision": 0.10,
                                                               "recall": 0.89}},
                                      "model_int8": {"flood": {"precision": 0.11,
                                                               "recall": 0.88}}}}}
    model, base = card_metrics(cls)
    assert model["fp32 flood.recall"] == 0.89 and model["int8 flood.precision"] == 0.11
    assert base == {"flood.precision": 0.59, "flood.recall": 0.57, "rows": 130874,
                    "method": "flood if tide + surge >= threshold"}
    rows = compare(model, base)
    assert len(rows) == 4  # rows (a count) is not compared
    text = verdict(rows)
    assert text.startswith("mixed: the model is better on 2 and worse on 2 of 4")
    assert "flood.precision 0.1 vs 0.59" in text
    assert "not shown" in verdict([])


def test_report_files_and_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from frugalai.cli import cli

    _card(tmp_path, {"name": "pump-ae"})  # no metrics at all: degrade, do not invent
    cfg = _config(tmp_path, 'co2_g_per_kwh = 56.0\nco2_source = "codecarbon France"\n'
                            'board = "pi-4b"')
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"summary": {"simulated_hours": 48, "events": 6,
                                               "raw_bytes_read": 2_000_000,
                                               "upstream_bytes_binary": 66,
                                               "flows": {"linky": {"events": 6,
                                                                   "bytes_read": 2_000_000}}}}))
    out = tmp_path / "report"
    res = CliRunner().invoke(cli, ["report", "--config", str(cfg), "--bench",
                                   str(_bench(tmp_path)), "--summary", str(summary),
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    md = (out / "frugality_report.md").read_text()
    assert "56 gCO2eq/kWh (codecarbon France, 2023, production-based)" in md
    assert "estimated (pi-4b profile)" in md
    assert "no metrics in the card" in md and "need for AI is not shown" in md
    assert "| linky | 1,000,000 | 33 |" in md  # 48 h -> per day; 3 events x 11 B
    assert "| pump | 82,944,000 | 110 |" in md  # not in the summary: configured rates
    assert "run summary" in md and "fair-use budget of 30 s/day" in md
    assert "the board itself (pi-4b, ~3.1 W idle" in md
    html_text = (out / "frugality_report.html").read_text()
    # the charts are inline SVG (no matplotlib); the bench has no PNG here: nothing embedded
    assert "<table>" in html_text and html_text.count("<svg") == 5  # + the life-cycle chart
    assert "data:image/png;base64," not in html_text and "src=\"http" not in html_text
    rep = json.loads((out / "frugality_report.json").read_text())
    assert rep["co2"]["g_per_kwh"] == 56.0


def test_report_errors(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from frugalai.cli import cli

    cfg = _config(tmp_path)
    res = CliRunner().invoke(cli, ["report", "--config", str(cfg), "--bench",
                                   str(tmp_path / "missing.json"), "--out", str(tmp_path)])
    assert res.exit_code != 0 and "benchmark results not found" in res.output
    bad = _config(tmp_path, 'co2_basis = "lifecycle"')
    res = CliRunner().invoke(cli, ["report", "--config", str(bad)])
    assert res.exit_code == 2 and "energy.co2_basis" in res.output


def test_bundle_workload_runs_a_shipped_model() -> None:
    """Every shipped bundle's first artifact through the real backend, batch 1 and 8."""
    from frugalai.energy.bench import bundle_specs

    specs = bundle_specs(ROOT / "models", (1, 8))
    assert {Path(s["path"]).name for s in specs} >= {"energy-anomaly", "coastal-submersion"}, specs
    for spec in specs[:2] + [s for s in specs if s["backend"] == "reference"][:2]:
        w = build(spec)
        assert w.run() is not None and w.batch == spec["batch"]
        assert w.info["model_bytes"] > 0 and w.info["model_sha256"]


def test_bench_cli_validates_its_options() -> None:
    from click.testing import CliRunner

    from frugalai.cli import cli

    res = CliRunner().invoke(cli, ["bench", "--batches", "1,lots"])
    assert res.exit_code == 2 and "expected integers like 1,32" in res.output
    res = CliRunner().invoke(cli, ["bench", "--help"])
    assert res.exit_code == 0 and "--quick" in res.output and "um25c" in res.output


def test_a_failing_configuration_is_reported_not_fatal(tmp_path: Path) -> None:
    from frugalai.energy.bench import run_bench

    specs = [{"kind": "encode"}, {"kind": "bundle", "path": str(tmp_path / "no-such-model"),
                                  "backend": "onnx", "precision": "fp32", "batch": 1}]
    doc = run_bench(tmp_path, "estimate:pi-4b", quick=True, specs=specs, chart=False)
    assert [r["workload"] for r in doc["results"]] == ["encode-binary"]
    assert doc["failed"][0]["spec"]["path"].endswith("no-such-model")
    md = (tmp_path / "energy_per_inference.md").read_text()
    assert "Not measured" in md
    # every µJ figure carries its meter, in the JSON and next to it in the Markdown
    note = doc["results"][0]["uj_meter"]
    assert note.startswith("estimate: CPU time x ") and "pi-4b profile" in note, note
    assert all(e["uj_meter"].startswith("inference and encode: estimate") for e in
               doc["per_event"])
    row = next(line for line in md.splitlines() if line.startswith("| ") and "encode" in line)
    assert note in row


def test_report_rescales_an_x86_estimate_to_the_deployed_board(tmp_path: Path) -> None:
    from frugalai.config import load_config
    from frugalai.report.build import build_report, to_markdown

    def row(model: str, uj: float, pi4: float) -> dict:  # type: ignore[type-arg]
        return {"model": model, "backend": "python", "precision": "fp64", "batch": 1,
                "uj_per_inference": uj, "model_bytes": 1,
                "rescaled": {"pi-4b": {"with_assumed_slowdown_uj": pi4}}}

    bench = {"meter": {"meter": "estimate:generic-x86", "estimated": True,
                       "label": "estimated (generic-x86 profile)",
                       "profile": {"name": "generic-x86"}},
             "results": [row("profile", 100.0, 80.0), row("encode-binary", 10.0, 8.0)]}
    _card(tmp_path, {"name": "pump-ae"})
    cfg = load_config(_config(tmp_path, 'board = "pi-4b"'))
    rep = build_report(cfg, bench)
    linky = rep["flows"][0]
    assert linky["uj_per_inference"] == 80.0 and linky["uj_per_event_encode"] == 8.0
    assert "re-scaled to the pi-4b profile" in to_markdown(rep)
    same = build_report(load_config(_config(tmp_path, 'board = "generic-x86"')), bench)
    assert same["flows"][0]["uj_per_inference"] == 100.0 and same["rescaled_to"] is None


def test_report_raw_stream_unknown_for_non_serial_sources(tmp_path: Path) -> None:
    from frugalai.config import loads_config
    from frugalai.report.build import build_report, to_markdown

    cfg = loads_config({"flow": [{"name": "tide", "source": "replay:///data/tide.csv"}]})
    rep = build_report(cfg, {"meter": {}, "results": []}, models_dir=tmp_path)
    assert rep["flows"][0]["raw_bytes_per_day"] is None
    md = to_markdown(rep)
    assert "| tide | unknown (not a serial line) | 44 | unknown |" in md
    assert "raw bytes unknown (not counted) for: tide: a lower bound" in md
    assert "not benchmarked" in md


def test_report_says_when_a_flow_runs_the_baseline_rule(tmp_path: Path) -> None:
    """The shipped coastal card, run with ``decision = "baseline"``: the report must not
    present the model's figures as what the flow does."""
    from frugalai.config import loads_config
    from frugalai.report.build import build_report, to_markdown
    from frugalai.runtime.model import shipped_models_dir

    cfg = loads_config({"gateway": {"id": "quai", "models_dir": str(shipped_models_dir())},
                        "flow": [{"name": "tide", "source": "lora:///dev/ttyUSB1?modem=rak3172&decoder=fb",
                                  "model": "coastal-submersion", "quantity": "water_level_m",
                                  "aggregate": "mean", "window_s": 3600,
                                  "decision": "baseline"}]})
    md = to_markdown(build_report(cfg, json.loads(_bench(tmp_path).read_text())))
    models_section = md[md.index("## Models against"):]
    row = next(line for line in models_section.splitlines() if line.startswith("| tide |"))
    assert "this flow runs the baseline rule" in row and "flood.recall" in row
