"""The coastal tide ahead, per reading: one ``Tide.predict`` call vs blocks of each size (issue 16).

For each block size, microseconds per reading of ``TideAhead.levels`` (the tide at the reading
and ``horizon`` hours ahead) and of the whole ``CoastalFeatures.update_one``, on Providence's
real hourly levels (1996-1997, with the record's own NaNs), the shipped card's tide; plus the
block's memory. "per reading" is the former path: one predict call per reading. Timed in
shuffled rounds, medians (``fastpath.timed``).

    nice python benchmarks/tide_block.py [--quick] [--publish]

Results go to ``--out`` (default ``build/benchmarks/``); ``--publish`` writes
``benchmarks/results/tide_block.{json,md}``; provenance under ``meta`` (benchmarks/provenance.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402
from fastpath import DATA, MODELS, timed  # noqa: E402

from frugalai.features.coastal import CoastalFeatures  # noqa: E402
from frugalai.features.tide import Tide  # noqa: E402
from frugalai.features.tide_block import TideAhead  # noqa: E402
from frugalai.learn.data import load_providence  # noqa: E402

SIZES = (16, 32, 64, 128, 256, 512, 1024)


class _PerReading(TideAhead):
    """The former path: one predict call for every reading."""

    def levels(self, ts: float) -> list[float]:
        return self.tide.predict(ts + self._offsets).tolist()  # type: ignore[no-any-return]


def _levels_of(ahead: TideAhead) -> Callable[[float, float], Any]:
    return lambda t, _level: ahead.levels(t)


def _cycling(fn: Callable[[float, float], Any], ts: list[float], levels: list[float]
             ) -> Callable[[], Any]:
    state = {"k": 0}
    n = len(ts)
    span = ts[-1] - ts[0] + 3600.0

    def call() -> Any:
        k = state["k"]
        state["k"] = k + 1
        # past the end: the same levels again, the hour after the last (one unbroken grid)
        return fn(ts[k % n] + (k // n) * span, levels[k % n])

    return call


def run(quick: bool) -> dict[str, Any]:
    card = json.loads((MODELS / "coastal-submersion" / "card.json").read_text())
    tide = Tide.from_dict(card["features"]["tide"])
    params = card["features"]["params"]
    horizon = int(params["horizon_h"])
    s = load_providence(DATA)
    sel = (s.ts >= 820454400.0) & (s.ts < 883612800.0)  # 1996-1997 UTC
    ts, levels = s.ts[sel].tolist(), s.values[sel].tolist()
    calls: dict[str, Callable[[], Any]] = {}
    ahead_objects: dict[str, TideAhead] = {}
    for size in (0, *SIZES):
        name = "per reading" if size == 0 else f"block {size}"
        ahead = _PerReading(tide, 3600.0, horizon) if size == 0 else \
            TideAhead(tide, 3600.0, horizon, size)
        ahead_objects[name] = ahead
        calls[f"{name} | levels"] = _cycling(_levels_of(ahead), ts, levels)
        feats = CoastalFeatures(tide, float(params["threshold_m"]), horizon)
        feats._tide_ahead = ahead if size == 0 else TideAhead(tide, 3600.0, horizon, size)
        calls[f"{name} | update_one"] = _cycling(feats.update_one, ts, levels)
    rounds, n = (5, 2000) if quick else (15, 5000)
    us = timed(calls, rounds, n)
    rows = []
    for size in (0, *SIZES):
        name = "per reading" if size == 0 else f"block {size}"
        a = ahead_objects[name]
        mem = 0 if size == 0 else sys.getsizeof(a._values) + 24 * (size + horizon)
        rows.append({"path": name, "block": size, "us_levels": round(us[f"{name} | levels"], 3),
                     "us_update_one": round(us[f"{name} | update_one"], 3),
                     "block_bytes": mem, "blocks_built": a.blocks if size else None,
                     "single_calls": a.singles if size else None})
    return {"tide": {"basis": tide.basis, "constituents": len(tide.constituents)},
            "horizon_h": horizon, "rows": rows}


def markdown(doc: dict[str, Any]) -> str:
    m = doc["meta"]
    lines = ["# Coastal tide ahead: per-reading predict vs blocks (issue 16)", "",
             f"> {m['note']}", "",
             f"The shipped card's tide ({doc['tide']['constituents']} constituents, "
             f"{doc['tide']['basis']}), horizon {doc['horizon_h']} h, Providence 1996-1997 "
             "hourly levels. µs per reading, median of shuffled rounds. \"per reading\" is the "
             "former path (one predict call per reading, with today's predict); blocks built "
             "and single calls are those of the `levels` run.", "",
             "| path | µs levels | µs update_one | block bytes | blocks built | single calls |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['path']} | {r['us_levels']:.2f} | {r['us_update_one']:.2f} | "
              f"{r['block_bytes']:,} | {r['blocks_built'] if r['block'] else '-'} | "
              f"{r['single_calls'] if r['block'] else 'every reading'} |"
              for r in doc["rows"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    prov.add_output_arguments(ap)
    args = ap.parse_args()
    out = prov.output_dir(ap, args)
    meta = prov.provenance(
        quick=args.quick,
        note="Shared 2-vCPU machine, loaded by other sessions during the run: absolute times "
             "are noisy and pessimistic; the ratios, measured in one process with shuffled "
             "rounds, are the figures to compare.")
    doc = {"meta": meta, **run(args.quick)}
    print(prov.write_results(out, "tide_block", doc, markdown))
    print(f"written to {out}")

if __name__ == "__main__":
    main()
