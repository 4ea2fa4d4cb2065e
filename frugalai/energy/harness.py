"""Energy per inference, the MLPerf Tiny / EnergyRunner way, on a gateway.

For one workload (a callable running one batch on prepared inputs):

1. warm-up for ``warmup_s`` (caches, lazy allocations, JIT of the runtime);
2. ``windows`` energy windows (5) of back-to-back batches, each at least ``window_s`` (10 s)
   and 10 calls; energy = meter delta - idle power x window length; the reported µJ/inference
   is the median over windows, with the min-max spread and the meter's uncertainty combined;
3. a separate latency pass timing each call (p50/p99): timing every call inside the energy
   windows would add its own cost and memory to what is measured.

The idle baseline is measured once per run with the same meter over one window of sleep. For a
process-scoped meter (the CPU-time estimate) it is ~0 by construction; for a board meter it is
the board's idle draw, which the gateway pays whether or not a model runs.

:func:`run_isolated` measures one workload in a fresh process (``python -m
frugalai.energy.isolated SPEC_JSON``, so peak RSS and CPU time belong to that workload alone).
This module does not know how workloads are built (:mod:`frugalai.energy.workloads` imports it,
not the other way round).
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from frugalai.energy.base import Meter


@dataclass
class Workload:
    """Something to measure: ``run()`` performs one batch of ``batch`` inferences."""

    name: str
    run: Callable[[], object]
    batch: int = 1
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HarnessConfig:
    """Method settings (MLPerf Tiny defaults; ``quick()`` for tests)."""

    window_s: float = 10.0
    windows: int = 5
    min_calls: int = 10
    warmup_s: float = 2.0
    latency_s: float = 2.0
    latency_max_calls: int = 20000

    @classmethod
    def quick(cls) -> HarnessConfig:
        return cls(window_s=0.3, windows=5, min_calls=10, warmup_s=0.1, latency_s=0.2)


def idle_power(meter: Meter, seconds: float) -> float:
    """Mean power while this process sleeps, W (the baseline subtracted from every window)."""
    meter.read()
    time.sleep(min(0.05, seconds))  # let the caller's own start-up settle first
    e0, t0 = meter.read(), time.perf_counter()
    time.sleep(seconds)
    return max(0.0, (meter.read() - e0) / (time.perf_counter() - t0))


def _calls_per_check(run: Callable[[], object], warmup_s: float) -> int:
    """Warm up; return how many calls take ~10 ms, so the window clock is read rarely."""
    t0 = time.perf_counter()
    n = 0
    while True:
        run()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= warmup_s and n >= 3:
            break
    return max(1, int(0.01 / (elapsed / n)))


def _window(run: Callable[[], object], meter: Meter, seconds: float, min_calls: int,
            per_check: int) -> dict[str, float]:
    cpu0 = time.process_time()
    e0 = meter.read()
    t0 = time.perf_counter()
    calls = 0
    while True:
        for _ in range(per_check):
            run()
        calls += per_check
        t = time.perf_counter() - t0
        if t >= seconds and calls >= min_calls:
            break
    e1 = meter.read()
    return {"seconds": t, "calls": calls, "joules": e1 - e0,
            "cpu_s": time.process_time() - cpu0}


def latencies(run: Callable[[], object], seconds: float, max_calls: int) -> np.ndarray:
    """Seconds per call over a short pass (preallocated: no allocation while timing)."""
    out = np.empty(max_calls, dtype=np.float64)
    clock = time.perf_counter
    t_end = clock() + seconds
    n = 0
    while n < max_calls:
        t0 = clock()
        run()
        t1 = clock()
        out[n] = t1 - t0
        n += 1
        if t1 >= t_end and n >= 10:
            break
    return out[:n]


def peak_rss_bytes() -> int:
    """Peak resident set of this process (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def measure(workload: Workload, meter: Meter, config: HarnessConfig = HarnessConfig(),
            idle_w: Optional[float] = None,
            progress: Optional[Callable[[int, int], None]] = None) -> dict[str, Any]:
    """Measure one workload; return every figure with the method and meter that gave it."""
    if idle_w is None:
        idle_w = idle_power(meter, config.window_s)
    per_check = _calls_per_check(workload.run, config.warmup_s)
    windows = []
    for i in range(config.windows):
        w = _window(workload.run, meter, config.window_s, config.min_calls, per_check)
        w["inferences"] = w["calls"] * workload.batch
        w["joules_net"] = w["joules"] - idle_w * w["seconds"]
        w["uj_per_inference"] = w["joules_net"] / w["inferences"] * 1e6
        windows.append(w)
        if progress:
            progress(i + 1, config.windows)
    lat = latencies(workload.run, config.latency_s, config.latency_max_calls)
    per_inf = [w["uj_per_inference"] for w in windows]
    median = statistics.median(per_inf)
    spread = max(per_inf) - min(per_inf)
    uncertainty = math.hypot(meter.rel_uncertainty * median, spread / 2)
    return {
        "workload": workload.name,
        "batch": workload.batch,
        **workload.info,
        "uj_per_inference": median,
        "uj_per_inference_min": min(per_inf),
        "uj_per_inference_max": max(per_inf),
        "uncertainty_uj": uncertainty,
        "latency_p50_us": float(np.percentile(lat, 50) * 1e6),
        "latency_p99_us": float(np.percentile(lat, 99) * 1e6),
        "latency_calls": int(lat.size),
        "throughput_per_s": statistics.median(w["inferences"] / w["seconds"] for w in windows),
        "cpu_us_per_inference": statistics.median(w["cpu_s"] / w["inferences"] * 1e6
                                                  for w in windows),
        "peak_rss_bytes": peak_rss_bytes(),
        "idle_w": idle_w,
        "windows": windows,
        "meter": meter.describe(),
        "method": asdict(config),
    }


def run_isolated(spec: dict[str, Any], meter_spec: str, config: HarnessConfig,
                 idle_w: float, timeout: float = 900.0) -> dict[str, Any]:
    """Measure ``spec`` (see :func:`frugalai.energy.workloads.build`) in a fresh process."""
    import os
    import subprocess

    payload = json.dumps({"spec": spec, "meter": meter_spec, "config": asdict(config),
                          "idle_w": idle_w})
    env = dict(os.environ)
    # One thread per runtime: a gateway runs one model on one core; also keeps numbers stable.
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    out = subprocess.run([sys.executable, "-m", "frugalai.energy.isolated", payload],
                         capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        from frugalai.errors import FrugalError

        raise FrugalError(f"benchmark of {spec} failed: {out.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result
