"""The benchmarks' common rule (benchmarks/provenance.py): every result records date, commit and
machine, and a run never overwrites the published figures (benchmarks/results/) unless asked.

No timing is asserted: the quick runs below check where files go and what they record.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402

PUBLISHED = ROOT / "benchmarks" / "results"


def scripts() -> list[Path]:
    """Every benchmark script (a file of benchmarks/ that runs as __main__), and the study
    model_quality quotes."""
    found = [p for p in sorted((ROOT / "benchmarks").glob("*.py"))
             if '__name__ == "__main__"' in p.read_text()]
    return [*found, ROOT / "scripts" / "coastal_study.py"]


def published_snapshot() -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(PUBLISHED.iterdir()) if p.is_file()}


def run(script: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def test_the_benchmark_list_is_complete() -> None:
    names = {p.stem for p in scripts()}
    assert {"decoders", "energy_per_inference", "fastpath", "fleet_scale", "fuzz", "latency",
            "lora_airtime", "model_quality", "outbox", "service_footprint", "soak",
            "coastal_study"} <= names
    assert "provenance" not in names and "edge_energy" not in names  # helpers, not benchmarks


def test_make_bench_runs_every_benchmark_but_fuzz_and_soak_in_dependency_order() -> None:
    text = (ROOT / "Makefile").read_text()
    block = re.search(r"^BENCH_SCRIPTS := (.*?)\n(?=\S)", text, re.S | re.M)
    assert block, "Makefile has no BENCH_SCRIPTS"
    listed = block.group(1).replace("\\\n", " ").split()
    expected = {str(p.relative_to(ROOT)) for p in scripts()} - {
        "benchmarks/fuzz.py", "benchmarks/fuzz_cards.py", "benchmarks/fuzz_events.py",
        "benchmarks/soak.py", "benchmarks/central_scale.py"}  # central_scale: make fleet-scale
    assert set(listed) == expected
    assert listed.index("scripts/coastal_study.py") < listed.index("benchmarks/model_quality.py")
    assert "bench-publish:" in text and 'BENCH_ARGS="--publish' in text


def test_provenance_records_date_commit_and_machine() -> None:
    import numpy as np

    meta = prov.provenance(repeat=3)
    date = dt.datetime.fromisoformat(meta["date"])
    assert date.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - date).total_seconds()) < 3600
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True)
    if head.returncode == 0:
        assert meta["commit"] == head.stdout.strip() and isinstance(meta["dirty"], bool)
    else:  # not a git checkout: said so, not invented
        assert meta["commit"] == "unknown" and meta["dirty"] is None
    machine = meta["machine"]
    assert machine["arch"] and machine["cpu"] and machine["cores"] >= 1 and machine["os"]
    assert meta["versions"]["numpy"] == np.__version__
    assert set(meta["versions"]) == {"numpy", "onnxruntime", "ai-edge-litert", "scikit-learn"}
    assert len(meta["load_average_at_start"]) == 3
    assert meta["command"].startswith("python ") and meta["repeat"] == 3


def test_markdown_gets_the_provenance_line_under_its_title() -> None:
    meta = prov.provenance()
    text = prov.with_provenance("# Title\n\nbody\n", meta)
    lines = text.split("\n")
    assert lines[0] == "# Title" and lines[1] == ""
    assert meta["date"] in lines[2] and meta["commit"] in lines[2]
    assert meta["machine"]["cpu"] in lines[2] and lines[4] == "body"
    assert prov.with_provenance("no title", meta).startswith("_Run ")


def _parse(*argv: str) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser()
    prov.add_output_arguments(parser)
    return parser, parser.parse_args(list(argv))


def test_output_dir_is_build_unless_publish(tmp_path: Path) -> None:
    assert prov.output_dir(*_parse()) == ROOT / "build" / "benchmarks"
    assert prov.output_dir(*_parse("--out", str(tmp_path))) == tmp_path
    assert prov.output_dir(*_parse("--publish")) == PUBLISHED
    with pytest.raises(SystemExit):  # the published figures only by name
        prov.output_dir(*_parse("--out", str(PUBLISHED)))
    with pytest.raises(SystemExit):
        prov.output_dir(*_parse("--publish", "--out", str(tmp_path)))


def test_write_results_puts_meta_first_and_the_line_on_top(tmp_path: Path) -> None:
    meta = prov.provenance()
    text = prov.write_results(tmp_path, "x", {"rows": [1, 2], "meta": meta},
                              lambda d: f"# X\n\n{len(d['rows'])} rows")
    doc = json.loads((tmp_path / "x.json").read_text())
    assert next(iter(doc)) == "meta" and doc["rows"] == [1, 2]
    assert doc["meta"]["published"] is False and doc["meta"]["seconds"] >= 0
    assert (tmp_path / "x.md").read_text() == text and "2 rows" in text
    assert text.split("\n")[2].startswith("_Run ")
    with pytest.raises(ValueError, match="meta"):
        prov.write_results(tmp_path, "y", {"rows": []}, "# Y")


@pytest.mark.parametrize("script", scripts(), ids=lambda p: p.stem)
def test_every_script_takes_publish_and_out_and_refuses_the_published_dir(script: Path) -> None:
    helptext = run(script, "--help", timeout=120)
    assert helptext.returncode == 0, helptext.stderr
    assert "--publish" in helptext.stdout and "--out" in helptext.stdout
    assert "--quick" in helptext.stdout  # make bench BENCH_ARGS=--quick reaches every script
    before = published_snapshot()
    refused = run(script, "--out", str(PUBLISHED), timeout=120)
    assert refused.returncode == 2 and "--publish" in refused.stderr, refused.stderr[-500:]
    assert published_snapshot() == before
    source = script.read_text()
    assert not re.search(r'/ "results"|Path\(["\'][^"\']*benchmarks/results', source), \
        f"{script.name} builds a path to the published results itself"


QUICK = {"decoders": ("--quick", "--repeat", "1"), "lora_airtime": ("--quick",),
         "fuzz": ("--quick", "--only", "at_modem"), "latency": ("--quick",),
         "fuzz_cards": ("--quick", "--cards", "40", "--subprocess-every", "20"),
         "fuzz_events": ("--quick", "--broker-examples", "200")}


@pytest.mark.parametrize("name", sorted(QUICK))
def test_quick_runs_write_to_out_with_provenance_not_to_results(name: str,
                                                                tmp_path: Path) -> None:
    before = published_snapshot()
    proc = run(ROOT / "benchmarks" / f"{name}.py", *QUICK[name], "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert published_snapshot() == before
    result = {"decoders": "decoders", "lora_airtime": "lora_airtime", "fuzz": "fuzz",
              "latency": "latency", "fuzz_cards": "fuzz_cards",
              "fuzz_events": "fuzz_events"}[name]
    doc = json.loads((tmp_path / f"{result}.json").read_text())
    meta = doc["meta"]
    assert {"date", "commit", "dirty", "machine", "versions", "load_average_at_start",
            "command", "seconds"} <= set(meta)
    assert meta["published"] is False and "--out" in meta["command"]
    md = (tmp_path / f"{result}.md").read_text().split("\n")
    assert md[0].startswith("# ") and md[2].startswith("_Run ") and meta["commit"] in md[2]


def test_fastpath_and_energy_show_the_same_node_vs_gateway_section() -> None:
    """One measurement (benchmarks/edge_energy.py), one rendering (frugalai.energy.edge.section)
    in both reports."""
    import fastpath

    from frugalai.energy import bench
    from frugalai.energy.edge import SECTION_TITLE, edge_vs_gateway, section

    r = edge_vs_gateway(0.2, events_per_day=0.05, gateway_uj_per_inference=3.0)
    r["assumptions"].update(events_source="19 events", gateway_inference="3 µJ")
    fast = fastpath.markdown({"meta": {"note": "n"}, "ratio": [], "growth": [], "pipeline": [],
                              "edge_energy": r})
    energy = bench.markdown({"meter": {"meter": "estimate", "scope": "process",
                                       "rel_uncertainty": 0.3}, "idle_w": 0.0,
                             "host": {"machine": "x", "python": "3"}, "created": "now",
                             "method": {"description": "d", "window_s": 1, "windows": 5,
                                        "warmup_s": 1, "quick": True},
                             "results": [], "per_event": [], "edge_energy": r})
    block = "\n".join(section(r))
    assert block in fast and block in energy and SECTION_TITLE in block
    for script in ("fastpath.py", "energy_per_inference.py"):  # measured by the shared module
        assert re.search(r"\bedge(_energy)?\.measure\(", (ROOT / "benchmarks" / script).read_text())
