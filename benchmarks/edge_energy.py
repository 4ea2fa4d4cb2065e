"""Energy per event, model on the node vs on the gateway, measured once for every benchmark.

``energy_per_inference.py`` and ``fastpath.py`` both report "inference on the node, event over
LoRa" vs "raw reading over LoRa, inference on the gateway" (issue 16). The arithmetic and its
sources are :mod:`frugalai.energy.edge`; this module gathers the run's own inputs, which need a
checkout (firmware_bridge's generated C) and the shared data (the Dutch load curve):

* the node's cost per window: the generated C (features + int8 net + score + policy, the code
  the ``energy_edge_node`` sketch runs) compiled with the host's C compiler and timed in C;
* events per day: the shipped energy model and policy (Python reference, int8) over the real
  Dutch 1997 year;
* the gateway's energy per inference: given by the caller (its own measurement), with its source.

:func:`measure` returns ``{"not_measured": why}`` when no C compiler is present or the data is
absent; :func:`frugalai.energy.edge.section` renders either.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
DUTCH = (ROOT / ".." / "shared" / "data" / "energy" / "dutch_power_demand_1997"
         / "power_demand_1997_labeled.csv")
MODEL = "energy-anomaly"

NODE_LOOP = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <time.h>
#include "fa_energy_anomaly.h"
#include "fa_energy_features.h"
static fa_ef_state s;
int main(void) {
    double row[FA_EF_WINDOW]; float y[FA_ENERGY_ANOMALY_N_OUTPUTS]; volatile double sink = 0;
    struct timespec a, b; long i, n = 2000000L;
    fa_ef_init(&s);
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (i = 0; i < n; ++i) {
        double ts = 852076800.0 + 900.0 * i;
        double v = 900.0 + 300.0 * ((i % 96) / 96.0) + (double)((i * 7919) % 37);
        if (fa_ef_update(&s, ts, v, row)) {
            FA_EF_MODEL_INT8(row, y);
            double score = fa_ef_score(y, FA_ENERGY_ANOMALY_N_OUTPUTS);
            sink += score + fa_ef_policy(&s, score);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.6f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
    return 0;
}
"""


def node_us_per_window(runs: int = 3) -> Optional[float]:
    """Median µs per window of the node's C loop on this host; None without a C compiler."""
    from frugalai.runtime.native import find_compiler

    cc = find_compiler()
    if cc is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        c, exe = Path(tmp) / "node.c", Path(tmp) / "node"
        c.write_text(NODE_LOOP)
        subprocess.run([cc, "-std=c99", "-O2", f"-I{ROOT / 'firmware_bridge' / 'src'}", "-o",
                        str(exe), str(c), "-lm"], check=True)
        return statistics.median(float(subprocess.run(
            [str(exe)], capture_output=True, text=True, check=True).stdout) for _ in range(runs))


def dutch_events() -> tuple[int, float]:
    """(events, days): alarms and clears of the shipped model and policy over the Dutch year."""
    from frugalai.events.policy import Hysteresis
    from frugalai.features.energy import EnergyFeatures
    from frugalai.runtime import load_model
    from frugalai.runtime.model import shipped_models_dir
    from frugalai.sources.replay import parse_time

    model = load_model(shipped_models_dir() / MODEL, "reference", "int8")
    features = EnergyFeatures(**model.card["features"]["params"])
    policy = Hysteresis(**model.card["policy"])
    events = 0
    first = last = None
    with open(DUTCH) as fh:
        next(fh)
        for line in fh:
            cells = line.split(",")
            ts = parse_time(cells[0])
            first = ts if first is None else first
            last = ts
            row = features.update_one(ts, float(cells[1]))
            if row is not None and policy.update_one(float(model.predict_one(row))):
                events += 1
    if first is None or last is None:
        raise ValueError(f"{DUTCH}: no readings")
    return events, (last - first) / 86400 + 1 / 96


def measure(gateway_uj_per_inference: float, gateway_source: str) -> dict[str, Any]:
    """Node vs gateway energy per event (:func:`frugalai.energy.edge.edge_vs_gateway`) with
    this run's figures, or ``{"not_measured": why}``."""
    from frugalai.energy.edge import edge_vs_gateway

    if not DUTCH.is_file():
        return {"not_measured": f"the Dutch load curve is absent ({DUTCH})"}
    node_us = node_us_per_window()
    if node_us is None:
        return {"not_measured": "no C compiler on this machine (the node's cost is the "
                                "generated C timed here)"}
    events, days = dutch_events()
    out = edge_vs_gateway(node_us, events / days, gateway_uj_per_inference=gateway_uj_per_inference)
    out["assumptions"]["events_source"] = (f"{events} alarm/clear events of the shipped policy "
                                           f"over {days:.0f} days of the Dutch load curve")
    out["assumptions"]["gateway_inference"] = gateway_source
    return out
