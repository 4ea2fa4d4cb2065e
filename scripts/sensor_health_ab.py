"""CPU per reading of the sensor health checks: another version's against the current ones.

On a shared, loaded machine two runs minutes apart differ by 30 % or more; interleaving the
two versions in one process, round after round, is the only fair comparison.

    git show main:frugalai/health/checks.py > build/main_checks.py
    nice python scripts/sensor_health_ab.py build/main_checks.py [--rounds 5]

Prints the median µs per reading (process time) of the value checks alone and of all checks
(value + partner + LoRa link, as in ``sensor_health.py``) on 100,000 hourly Providence levels.
"""

from __future__ import annotations

import argparse
import calendar
import importlib.util
import math
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from frugalai.features.tide import fit_harmonics  # noqa: E402
from frugalai.health import checks as current  # noqa: E402
from frugalai.learn.data import load_providence  # noqa: E402


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("other_checks", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def loops(mod: ModuleType, t: list[float], x: list[float], r: list[float]
          ) -> tuple[Callable[[], None], Callable[[], None]]:
    lim = mod.Limits(period_s=3600.0, low=-2.0, high=6.0)
    rssi = [-90.0 + 3.0 * math.sin(i / 7.0) for i in range(len(t))]

    def core() -> None:
        up = mod.SensorHealth(lim).update
        for a, b, c in zip(t, x, r):
            up(a, b, c)

    def everything() -> None:
        up = mod.SensorHealth(lim).update
        lu = mod.LinkHealth(lim).update
        pu = mod.PartnerCheck(lim).update
        for i, (a, b, c) in enumerate(zip(t, x, r)):
            up(a, b, c)
            pu(b, b + 0.01)
            lu(3.6, rssi[i], 5.0, float(i))

    return core, everything


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other", help="another version's frugalai/health/checks.py")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    s = load_providence(args.data_dir)

    def utc(y: int) -> float:
        return float(calendar.timegm((y, 1, 1, 0, 0, 0)))

    fit = (s.ts >= utc(1970)) & (s.ts < utc(1975))
    tide = fit_harmonics(s.ts[fit], s.values[fit])
    m = (s.ts >= utc(1975)) & (s.ts < utc(1994))
    n = 100_000
    t, x = s.ts[m][:n].tolist(), s.values[m][:n].tolist()
    r = tide.predict(s.ts[m][:n]).tolist()
    runs: dict[str, Callable[[], None]] = {}
    for name, mod in (("other", load(args.other)), ("current", current)):
        core, everything = loops(mod, t, x, r)
        runs[f"{name}: value checks"] = core
        runs[f"{name}: all checks"] = everything
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, fn in runs.items():
            c0 = time.process_time()
            fn()
            samples[k].append((time.process_time() - c0) / len(t) * 1e6)
    for k, v in samples.items():
        print(f"{k:28s} {statistics.median(v):.3f} us per reading (min {min(v):.3f})")


if __name__ == "__main__":
    main()
