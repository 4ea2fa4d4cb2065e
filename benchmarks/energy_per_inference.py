#!/usr/bin/env python3
"""Energy per inference of every shipped model x backend x precision x batch (also `frugalai bench`).

Writes benchmarks/results/energy_per_inference.{json,md,html} (and .png with matplotlib): this
script publishes into the checkout; `frugalai bench` writes to the state dir unless --publish.
The method and the meters are in frugalai/energy/. `--quick` shortens windows for a smoke run
(its figures are not for publication); `--spec FILE` measures the JSON list of workload specs in
FILE instead of the shipped matrix.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugalai.energy.bench import run_bench  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="short windows (smoke test)")
    p.add_argument("--meter", default="estimate", help="meter spec (estimate[:board], rapl...)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--batches", default="1,32", help="comma-separated batch sizes")
    p.add_argument("--spec", type=Path, help="JSON list of workload specs to measure instead")
    p.add_argument("--no-chart", action="store_true")
    args = p.parse_args(argv)
    specs = json.loads(args.spec.read_text()) if args.spec else None
    doc = run_bench(args.out, args.meter, quick=args.quick, specs=specs,
                    models_dir=args.models_dir,
                    batches=tuple(int(b) for b in args.batches.split(",")),
                    chart=not args.no_chart)
    if doc.get("chart_skipped"):
        print(doc["chart_skipped"], file=sys.stderr)
    print(f"{len(doc['results'])} configurations -> {args.out}/energy_per_inference.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
