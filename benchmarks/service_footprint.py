"""Footprint of the ``frugalai run`` daemon: resident memory and idle CPU, one TIC flow.

An emulated Linky sends TIC historique frames on a real pty at the real pace (1200 baud, 7E1:
about one frame per second); the daemon reads it with one flow, as on a gateway. After a warm-up
we sample ``/proc/<pid>/status`` (VmRSS, VmHWM) and the CPU time in ``/proc/<pid>/stat``
(utime + stime) over ``--seconds``; CPU% = CPU seconds / wall seconds. One run per model
variant; bundle backends are measured when the runtime provides them.

Writes service_footprint.json and .md to build/benchmarks/ (benchmarks/results/ with
``--publish``).

    python benchmarks/service_footprint.py [--seconds 60] [--warmup 10] [--quick] [--publish]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402

from frugalai.sim.household import HouseholdProfile  # noqa: E402
from frugalai.sim.tic_meter import TicMeterEmulator  # noqa: E402

BUNDLE = "energy-anomaly"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def variants(seconds: float, bundle_seconds: float) -> list[dict[str, Any]]:
    """Model settings to measure: the built-ins, then the shipped anomaly bundle on each runtime
    backend and precision that can run here."""
    found: list[dict[str, Any]] = [
        {"label": "profile (online daily profile, numpy)", "model": "profile",
         "seconds": seconds},
        {"label": "threshold (no model)", "model": "threshold", "seconds": seconds}]
    from frugalai import runtime

    if not hasattr(runtime, "available") or not (ROOT / "models" / BUNDLE).is_dir():
        print("note: no runtime backends / shipped bundle here: bundle backends not measured")
        return found
    bundle = runtime.verify_bundle(ROOT / "models" / BUNDLE)
    for a in runtime.available(bundle):
        if a["unavailable"]:
            print(f"note: {a['backend']} not measured: {a['unavailable']}")
            continue
        found.append({"label": f"{BUNDLE} on {a['backend']} {a['precision']}", "model": BUNDLE,
                      "backend": a["backend"], "precision": a["precision"],
                      "seconds": bundle_seconds})
    return found


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def measure(variant: dict[str, Any], warmup: float) -> dict[str, Any]:
    seconds = variant["seconds"]
    bundle_keys = "".join(f'{k} = "{variant[k]}"\n' for k in ("backend", "precision")
                          if k in variant)
    work = Path(tempfile.mkdtemp(prefix="frugalai-footprint-"))
    meter = TicMeterEmulator(HouseholdProfile(seed=1))  # real time: 1200 baud, a frame ~1.5 s
    config = work / "gateway.toml"
    config.write_text(f"""
[gateway]
id = "bench"
state_dir = "{work / 'state'}"
models_dir = "{ROOT / 'models'}"

[[flow]]
name = "linky"
source = "serial://{meter.path}?protocol=tic&mode=historique"
sensor_id = 1
model = "{variant['model']}"
{bundle_keys}
[[uplink]]
url = "file://{work / 'events.jsonl'}"
""")
    meter.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "frugalai", "run", "--config", str(config)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        rss: list[int] = []
        c0, t0 = cpu_seconds(proc.pid), time.monotonic()
        while time.monotonic() - t0 < seconds:
            rss.append(proc_status(proc.pid)["VmRSS"])
            time.sleep(1.0)
        c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        st = proc_status(proc.pid)
        status = json.loads((work / "state" / "status.json").read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        meter.close()
    readings = status["flows"]["linky"]["readings"]
    return {
        "variant": variant["label"], "model": variant["model"],
        "backend": variant.get("backend"), "precision": variant.get("precision"),
        "rss_kib_median": sorted(rss)[len(rss) // 2], "rss_kib_max": max(rss),
        "vm_hwm_kib": st["VmHWM"], "threads": st["Threads"],
        "cpu_percent": round(100.0 * (c1 - c0) / (t1 - t0), 3),
        "cpu_seconds": round(c1 - c0, 3), "wall_seconds": round(t1 - t0, 1),
        "readings_at_end": readings, "frames_sent": meter.frames_sent,
        "exit_code_after_sigterm": code,
    }


def baseline_rss() -> int:
    """RSS of a bare interpreter that imported numpy: the floor under any Python daemon."""
    proc = subprocess.Popen([sys.executable, "-c", "import numpy, time; time.sleep(30)"])
    time.sleep(2)
    try:
        return proc_status(proc.pid)["VmRSS"]
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="measurement per built-in model (the idle CPU figure)")
    parser.add_argument("--bundle-seconds", type=float, default=25.0,
                        help="measurement per bundle backend (RSS is flat after load)")
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="10 s per run, 3 s warm-up")
    parser.add_argument("--note", default="", help="a line added to the Markdown (what tree)")
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    out = prov.output_dir(parser, args)
    if args.quick:
        args.seconds, args.bundle_seconds, args.warmup = 10.0, 5.0, 3.0
    meta = prov.provenance(quick=args.quick)
    runs = [measure(v, args.warmup) for v in variants(args.seconds, args.bundle_seconds)]
    result = {
        "meta": meta,
        "benchmark": "service_footprint",
        "meter": "emulated Linky, TIC historique, real 1200-baud pacing on a pty",
        "seconds": args.seconds, "bundle_seconds": args.bundle_seconds,
        "warmup_seconds": args.warmup,
        "python_numpy_baseline_rss_kib": baseline_rss(), "note": args.note,
        "runs": runs,
    }
    print(prov.write_results(out, "service_footprint", result, markdown))


def markdown(result: dict[str, Any]) -> str:
    runs = result["runs"]
    lines = [
        "# `frugalai run` footprint: one TIC flow, meter at 1200 baud",
        "",
        f"CPU measured over {result['seconds']:.0f} s (built-in "
        f"models) or {result['bundle_seconds']:.0f} s (bundles) after "
        f"{result['warmup_seconds']:.0f} s warm-up. "
        "Bare `python -c 'import numpy'` RSS: "
        f"{result['python_numpy_baseline_rss_kib'] / 1024:.1f} MiB.",
        "",
        *([result["note"], ""] if result["note"] else []),
        "| model | RSS median (MiB) | peak RSS (MiB) | threads | CPU % of one core, idle |"
        " frames sent | readings (last status.json) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(f"| {r['variant']} | {r['rss_kib_median'] / 1024:.1f} | "
                     f"{r['vm_hwm_kib'] / 1024:.1f} | {r['threads']} | {r['cpu_percent']:.2f} | "
                     f"{r['frames_sent']} | {r['readings_at_end']} |")
    lines += ["", "Idle: no 15-minute window closes during the measurement, so no model runs and "
              "no event leaves; the CPU is the 1200-baud read loop, TIC decoding, the window "
              "features and the daemon's own ticks.", "",
              "Reproduce: `python benchmarks/service_footprint.py --publish` (writes this file).",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
