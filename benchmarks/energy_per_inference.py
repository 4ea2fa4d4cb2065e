#!/usr/bin/env python3
"""Energy per inference of every shipped model x backend x precision x batch (also `frugalai bench`).

Writes energy_per_inference.{json,md,html} (and .png with matplotlib) to build/benchmarks/
(benchmarks/results/ with ``--publish``), with the run's provenance (benchmarks/provenance.py)
and the energy per event of "inference on the node, event over LoRa" vs "raw reading over LoRa,
inference on the gateway" (benchmarks/edge_energy.py, the same figures as fastpath.py's; the
gateway's inference is this run's own energy-anomaly measurement). The method and the meters
are in frugalai/energy/. `--quick` shortens windows for a smoke run (its figures are not for
publication); `--spec FILE` measures the JSON list of workload specs in FILE instead of the
shipped matrix.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import edge_energy  # noqa: E402
import provenance as prov  # noqa: E402

from frugalai.energy.bench import markdown, run_bench, write_documents  # noqa: E402
from frugalai.energy.harness import HarnessConfig  # noqa: E402

#: the gateway-side inference the node-vs-gateway comparison counts, best first
GATEWAY_PREFERENCE = (("native", "int8"), ("tflite", "int8"), ("reference", "int8"),
                      ("reference", "fp32"))


def gateway_inference(doc: dict[str, Any]) -> tuple[float, str]:
    """µJ per inference of the energy model at batch 1 measured in this run, and its source."""
    rows = [r for r in doc["results"]
            if r.get("model") == edge_energy.MODEL and r.get("batch") == 1]
    for backend, precision in GATEWAY_PREFERENCE:
        for r in rows:
            if r.get("backend") == backend and r.get("precision") == precision:
                label = doc["meter"].get("label", doc["meter"].get("meter"))
                return (float(r["uj_per_inference"]),
                        f"{edge_energy.MODEL} {backend} {precision}, batch 1, "
                        f"{r['uj_per_inference']:.3g} µJ per inference measured by this run "
                        f"({label}; the net and its decision, features not included)")
    return 0.0, ("not measured in this run (no energy-anomaly batch-1 configuration): 0 µJ "
                 "counted, which favours the gateway design")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short windows (smoke test)")
    p.add_argument("--meter", default="estimate", help="meter spec (estimate[:board], rapl...)")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--batches", default="1,32", help="comma-separated batch sizes")
    p.add_argument("--spec", type=Path, help="JSON list of workload specs to measure instead")
    p.add_argument("--no-chart", action="store_true")
    p.add_argument("--window-s", type=float, default=None,
                   help="seconds per measurement window (default 10, 0.3 with --quick): the "
                        "full matrix takes about 35 x (5 windows + 4.5 s)")
    prov.add_output_arguments(p)
    args = p.parse_args(argv)
    out = prov.output_dir(p, args)
    meta = prov.provenance(quick=args.quick, meter=args.meter)
    specs = json.loads(args.spec.read_text()) if args.spec else None
    config = HarnessConfig.quick() if args.quick else HarnessConfig()
    if args.window_s is not None:
        config = dataclasses.replace(config, window_s=args.window_s)
    doc = run_bench(out, args.meter, quick=args.quick, specs=specs,
                    models_dir=args.models_dir,
                    batches=tuple(int(b) for b in args.batches.split(",")),
                    chart=not args.no_chart, write=False, config=config)
    doc["edge_energy"] = edge_energy.measure(*gateway_inference(doc))
    doc = {"meta": meta, **doc}
    text = prov.write_results(out, "energy_per_inference", doc, markdown, indent=1)
    write_documents(doc, out, chart=not args.no_chart, md=text, write_json=False)
    if doc.get("chart_skipped"):
        print(doc["chart_skipped"], file=sys.stderr)
    print(f"{len(doc['results'])} configurations -> {out}/energy_per_inference.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
