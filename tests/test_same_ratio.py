"""``demo``, ``status`` and ``report`` print the same upstream ratio for the same run, and
``bench``/``report`` find their files from any directory (issues 18 and 15).

Real parts: the real service process on an emulated TIC meter (a pty) for ``status``; the real
``frugalai demo`` for ``demo``; every command through the console entry point in a subprocess
whose working directory is outside the checkout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import (
    Daemon,
    ReceivedFile,
    flow_toml,
    gateway_toml,
    start_meter,
    status,
    wait_for,
)

from frugalai.footprint import ratio_text

ROOT = Path(__file__).resolve().parents[1]
RATIO = re.compile(r"bytes upstream [\d,]+ \(binary events\) vs raw bytes read [\d,]+: "
                   r"[\d,]+x less")
BENCH = {"created": "2026-01-01", "meter": {"meter": "estimate:pi-4b", "estimated": True},
         "results": [{"model": "threshold", "backend": "python", "precision": "-", "batch": 1,
                      "uj_per_inference": 5.0, "model_bytes": 0},
                     {"model": "encode-binary", "backend": "python", "precision": "-",
                      "batch": 1, "uj_per_inference": 10.0, "model_bytes": 0}]}


def frugalai(*args: str, cwd: Path, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frugalai", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_status_and_report_print_the_ratio_of_the_service_run(tmp_path: Path) -> None:
    state, elsewhere = tmp_path / "state", tmp_path / "elsewhere"
    state.mkdir()
    elsewhere.mkdir()
    link = tmp_path / "tic"
    meter = start_meter(link)
    up = ReceivedFile(tmp_path / "up.jsonl")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(gateway_toml(state, [flow_toml("meter", link, 1)], [up.url],
                                extra='\n[energy]\nboard = "pi-4b"\n'))
    (state / "results").mkdir()
    (state / "results" / "energy_per_inference.json").write_text(json.dumps(BENCH))
    daemon = Daemon(cfg, tmp_path / "daemon.log")
    try:
        daemon.wait_running(state)
        wait_for(lambda: (status(state).get("bytes") or {}).get("upstream", 0) >= 22, 60,
                 "two events delivered")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0, daemon.log_text()
    finally:
        if daemon.alive():
            daemon.kill()
        meter.close()
    counted = status(state)["bytes"]
    expected = ratio_text(counted["raw_read"], counted["upstream"])
    assert counted["upstream"] > 0 and counted["raw_read"] > counted["upstream"]
    shown = frugalai("status", "--state-dir", str(state), cwd=elsewhere)
    assert shown.returncode == 1  # the service has stopped
    assert expected in shown.stdout, shown.stdout
    # report: the config named by status.json, the bench results of the state dir, from
    # another directory, written under the state dir
    rep = frugalai("report", "--state-dir", str(state), cwd=elsewhere)
    assert rep.returncode == 0, rep.stderr
    assert expected in rep.stdout, rep.stdout
    assert str(state / "results" / "energy_per_inference.json") in rep.stdout
    md = (state / "report" / "frugality_report.md").read_text()
    assert f"Measured (service status (counts since it started)): {expected}." in md
    assert not any(elsewhere.iterdir())


def test_demo_and_report_print_the_same_ratio(tmp_path: Path) -> None:
    out = frugalai("demo", "--json", "--seconds", "4", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (tmp_path / "demo.jsonl").write_text(out.stdout)
    summary = json.loads(out.stdout.splitlines()[-1])["summary"]
    line = summary["upstream"]
    assert RATIO.fullmatch(line), line
    assert line == ratio_text(summary["raw_bytes_read"], summary["upstream_bytes_binary"])
    cfg = tmp_path / "site.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n\n[[flow]]\nname = "linky"\n'
                   'source = "serial:///dev/ttyUSB0?protocol=tic"\nmodel = "energy-anomaly"\n'
                   '\n[energy]\nboard = "pi-4b"\n')
    rep = frugalai("report", "--config", str(cfg), "--summary", str(tmp_path / "demo.jsonl"),
                   cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert f"  {line}\n" in rep.stdout, rep.stdout
    md = (tmp_path / "state" / "report" / "frugality_report.md").read_text()
    assert line in md
    assert "kWh above the learned profile" in md  # the demo's alarmed windows were priced


def test_demo_text_mode_prints_the_footprint_line(tmp_path: Path) -> None:
    out = frugalai("demo", "--seconds", "3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert RATIO.search(out.stdout), out.stdout


def test_bench_writes_to_the_state_dir_never_over_the_shipped_results(tmp_path: Path) -> None:
    """Without matplotlib (blocked): JSON, Markdown and HTML still written, one line says the
    picture was skipped and names the extra; the shipped results are untouched."""
    shipped = ROOT / "benchmarks" / "results" / "energy_per_inference.json"
    before = shipped.stat().st_mtime_ns if shipped.exists() else None
    block = tmp_path / "block"
    block.mkdir()
    (block / "matplotlib.py").write_text("raise ImportError('blocked by the test')\n")
    empty_models = tmp_path / "no-models"
    empty_models.mkdir()
    res = frugalai("bench", "--quick", "--meter", "estimate:pi-4b", "--batches", "1",
                   "--models-dir", str(empty_models), "--state-dir", str(tmp_path / "state"),
                   cwd=tmp_path, env={"PYTHONPATH": f"{block}{os.pathsep}{ROOT}"})
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    skipped = [ln for ln in res.stderr.splitlines() if "skipped" in ln]
    assert len(skipped) == 1 and "pip install 'frugalai[bench]'" in skipped[0], res.stderr
    results = tmp_path / "state" / "results"
    for suffix in ("json", "md", "html"):
        assert (results / f"energy_per_inference.{suffix}").is_file(), suffix
    assert not (results / "energy_per_inference.png").exists()
    assert "<svg" in (results / "energy_per_inference.html").read_text()
    assert (shipped.stat().st_mtime_ns if shipped.exists() else None) == before
    publish = frugalai("bench", "--publish", cwd=tmp_path)
    assert publish.returncode == 2 and "energy_per_inference.py --publish" in publish.stderr


def test_bench_takes_the_meter_and_state_dir_of_the_config(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from frugalai.cli import cli

    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n\n[[flow]]\nname = "x"\n'
                   'source = "serial:///dev/ttyUSB0?protocol=tic"\n\n'
                   '[energy]\nmeter = "estimate:pi-5"\n')
    empty = tmp_path / "no-models"
    empty.mkdir()
    res = CliRunner().invoke(cli, ["bench", "--quick", "--batches", "1", "--config", str(cfg),
                                   "--models-dir", str(empty)])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "state" / "results" / "energy_per_inference.json").read_text())
    assert doc["meter"]["meter"] == "estimate:pi-5"


def test_coastal_demo_and_report_print_the_same_ratio(tmp_path: Path) -> None:
    out = frugalai("demo", "--scenario", "coastal", "--json", "--seconds", "5", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (tmp_path / "coastal.jsonl").write_text(out.stdout)
    summary = json.loads(out.stdout.splitlines()[-1])["summary"]
    line = summary["upstream"]
    assert line == ratio_text(summary["raw_bytes_read"], summary["upstream_bytes_binary"])
    cfg = tmp_path / "quai.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n\n[[flow]]\nname = "tide"\n'
                   'source = "lora:///dev/ttyUSB1?modem=rak3172&decoder=fb"\nmodel = "coastal-submersion"'
                   '\nquantity = "water_level_m"\naggregate = "mean"\nwindow_s = 3600\n')
    rep = frugalai("report", "--config", str(cfg), "--summary", str(tmp_path / "coastal.jsonl"),
                   cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert f"  {line}\n" in rep.stdout, rep.stdout


def test_report_without_results_or_config_says_so_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\n\n[[flow]]\nname = "x"\n'
                   'source = "serial:///dev/ttyUSB0?protocol=tic"\n')
    # no results in the state dir; the checkout's are hidden by pointing at a missing file
    res = frugalai("report", "--config", str(cfg), "--bench", str(tmp_path / "none.json"),
                   cwd=tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == [
        f"error: benchmark results not found: {tmp_path / 'none.json'}"]
    res = frugalai("report", "--state-dir", str(tmp_path / "never-ran"), cwd=tmp_path)
    assert res.returncode == 2 and "give --config" in res.stderr and "Traceback" not in res.stderr


def test_find_bench_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--bench, then [energy] bench_results (relative to the config file), then
    <state_dir>/results, then a checkout's; none: one error naming where it looked."""
    from frugalai.config import loads_config
    from frugalai.errors import ConfigError
    from frugalai.report import build as report

    monkeypatch.setattr(report, "shipped_results_dir", lambda: tmp_path / "checkout")
    flow = [{"name": "x", "source": "serial:///dev/ttyUSB0?protocol=tic"}]
    cfg = loads_config({"gateway": {"state_dir": str(tmp_path / "state")}, "flow": flow})
    with pytest.raises(ConfigError, match="no benchmark results found .*state/results.*"
                                          "checkout.*run `frugalai bench"):
        report.find_bench(cfg)
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "energy_per_inference.json").write_text("{}")
    assert report.find_bench(cfg) == tmp_path / "checkout" / "energy_per_inference.json"
    (tmp_path / "state" / "results").mkdir(parents=True)
    (tmp_path / "state" / "results" / "energy_per_inference.json").write_text("{}")
    assert report.find_bench(cfg).parent == tmp_path / "state" / "results"
    rel = loads_config({"gateway": {"state_dir": str(tmp_path / "state")}, "flow": flow,
                        "energy": {"bench_results": "mine.json"}})
    assert report.find_bench(rel, None, str(tmp_path / "etc" / "gw.toml")) == \
        tmp_path / "etc" / "mine.json"
    assert report.find_bench(rel, "given.json") == Path("given.json")
