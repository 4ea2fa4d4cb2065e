"""The fast path of issue 16, from ONE run: ratio table, cost growth, pipeline throughput.

1. **Ratio table** (batch 1, both shipped models): the raw runtimes' own calls on the bundle's
   files (LiteRT ``set_tensor``/``invoke``/``get_tensor`` fp32 and int8, onnxruntime ``run`` with
   one thread), each frugalai backend x precision at three levels -- ``backend.predict_one``,
   the model (``BundleModel.predict_one`` / ``classify_one``: net + decision) and the flow's
   call (the scorer: features + net + decision) -- scikit-learn per sample, the ``native``
   backend, and the generated C timed in C alone. Every call is timed in the same process in
   shuffled rounds; the table gives medians and the ratio to raw LiteRT fp32 of the same run.
   The features' own cost is given apart (``features``), so that the flow call can be read as
   features + model.
2. **Cost growth**: microseconds per ``raw_many`` call at batch 1/8/64/512 on every backend x
   precision (sizes interleaved in shuffled order, so a TFLite size change is in the figures).
3. **Pipeline throughput**, one core, ``replay://`` at full speed through the flow and the
   outbox (``sync=append``: an fsync per commit): dense 10-s readings (a model call every 90),
   energy (15-min readings, a call per reading) and coastal (hourly, a call per reading).

Results go to ``--out`` (default ``build/benchmarks/``); the published
``benchmarks/results/fastpath.{json,md}`` are written only with ``--publish``.

    nice python benchmarks/fastpath.py [--quick] [--publish]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402

from frugalai import registry  # noqa: E402
from frugalai.runtime import load_model, runtime_available  # noqa: E402
from frugalai.runtime.model import shipped_models_dir  # noqa: E402

MODELS = shipped_models_dir()
DATA = ROOT / ".." / "shared" / "data"
DUTCH = DATA / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
PROVIDENCE = DATA / "coastal" / "providence_8454000" / "providence_8454000_hourly_1970_1999.csv.gz"
#: the built-in backends (plugins are not benchmarked here) and the precisions, from the registry
BACKENDS = tuple(e.name for e in registry.backends.entries() if e.origin == "built-in")
PRECISIONS = registry.PRECISIONS
BATCHES = (1, 8, 64, 512)


def timed(calls: dict[str, Callable[[], Any]], rounds: int, n: int) -> dict[str, float]:
    """Median microseconds per call of each callable: shuffled rounds of ``n`` calls each."""
    for f in calls.values():
        for _ in range(max(20, n // 10)):
            f()
    samples: dict[str, list[float]] = {k: [] for k in calls}
    names = list(calls)
    perf = time.perf_counter
    for _ in range(rounds):
        random.shuffle(names)
        for k in names:
            f = calls[k]
            t0 = perf()
            for _ in range(n):
                f()
            samples[k].append((perf() - t0) / n * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def _raw_calls(name: str, x: np.ndarray) -> dict[str, Callable[[], Any]]:
    calls: dict[str, Callable[[], Any]] = {}
    if not runtime_available("tflite"):
        from ai_edge_litert.interpreter import Interpreter

        for precision, file in (("fp32", "model.tflite"), ("int8", "model.int8.tflite")):
            it = Interpreter(model_path=str(MODELS / name / file), num_threads=1)
            it.allocate_tensors()
            i, o = it.get_input_details()[0], it.get_output_details()[0]
            v = x.astype(np.float32).reshape(1, -1)
            if i["dtype"] == np.int8:
                s, zp = i["quantization"]
                v = np.clip(np.round(v / s) + zp, -128, 127).astype(np.int8)

            def call(it: Any = it, i: int = i["index"], o: int = o["index"],
                     v: np.ndarray = v) -> Any:
                it.set_tensor(i, v)
                it.invoke()
                return it.get_tensor(o)

            calls[f"raw LiteRT {precision}"] = call
    if not runtime_available("onnx"):
        import onnxruntime as ort

        for precision, file in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(str(MODELS / name / file), opts,
                                        providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: x.astype(np.float32).reshape(1, -1)}
            calls[f"raw onnxruntime {precision}"] = (
                lambda sess=sess, feed=feed: sess.run(None, feed))
    try:
        from latency import _sklearn  # the estimator with the bundle's weights

        fn = _sklearn(MODELS / name, load_model(MODELS / name).task)
        x64 = x.astype(np.float64).reshape(1, -1)
        calls["scikit-learn per sample"] = lambda fn=fn, x64=x64: fn(x64)
    except ImportError as err:
        print(f"scikit-learn skipped: {err}", file=sys.stderr)
    return calls


def _stream(name: str) -> tuple[list[float], float]:
    """Real values for the flow-level calls, and their spacing (s)."""
    if name == "coastal-submersion":
        with gzip.open(PROVIDENCE, "rt") as fh:
            next(fh)
            vals = [float(line.split(",")[1]) for line in fh if line.strip().split(",")[1]]
        return vals[:5000], 3600.0
    with open(DUTCH) as fh:
        next(fh)
        return [float(line.split(",")[1]) for line in fh][:20000], 900.0


def _flow_call(model: Any, name: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(the scorer's call, the features' call alone), each advancing its own stream."""
    from frugalai.runtime.scorers import AnomalyScorer, ClassScorer

    values, step = _stream(name)

    def make(features_only: bool) -> Callable[[], Any]:
        scorer: Any = ClassScorer(model) if model.task == "classification" else AnomalyScorer(model)
        fn = scorer.features.update_one if features_only else (
            scorer.classify_one if model.task == "classification" else scorer.update_one)
        state = {"k": 0}
        window = SimpleNamespace(start=1e9)
        n = len(values)
        # warm up: a full history, so the timed calls are scoring calls
        for _ in range(12 * 96 if step == 900.0 else 8):
            k = state["k"]
            window.start = 1e9 + k * step
            fn(window.start, values[k % n]) if features_only else fn(window, values[k % n])
            state["k"] = k + 1

        def call() -> Any:
            k = state["k"]
            state["k"] = k + 1
            window.start = 1e9 + k * step
            if features_only:
                return fn(window.start, values[k % n])
            return fn(window, values[k % n])

        return call

    return make(False), make(True)


def _c_alone(name: str, precision: str, x: np.ndarray, n: int = 2_000_000) -> float | None:
    """Microseconds per call of the generated C in a C loop (no Python)."""
    from frugalai.runtime.dense import DenseNet
    from frugalai.runtime.native import find_compiler, generate_header, prefix_for

    cc = find_compiler()
    if cc is None:
        return None
    p = prefix_for(name)
    row = ", ".join(repr(float(v)) for v in x)
    src = "#define _POSIX_C_SOURCE 199309L\n" + generate_header(
        DenseNet.load(MODELS / name / "weights.npz"), name) + f"""
#include <stdio.h>
#include <time.h>
int main(void) {{
    double x[] = {{{row}}}; float y[{p.upper()}_N_OUTPUTS]; volatile float sink = 0;
    struct timespec a, b; long i;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (i = 0; i < {n}L; ++i) {{ x[0] += 1e-9; {p}_{precision}(x, y); sink += y[0]; }}
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.6f\\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / {n}L);
    return 0;
}}
"""
    with tempfile.TemporaryDirectory() as tmp:
        c, exe = Path(tmp) / "t.c", Path(tmp) / "t"
        c.write_text(src)
        subprocess.run([cc, "-std=c99", "-O2", "-o", str(exe), str(c), "-lm"], check=True)
        runs = [float(subprocess.run([str(exe)], capture_output=True, text=True,
                                     check=True).stdout) for _ in range(5)]
    return statistics.median(runs)


def ratio_table(name: str, rounds: int, n: int) -> dict[str, Any]:
    model0 = load_model(MODELS / name)
    x = np.asarray(model0.card["self_test"]["inputs"][0], dtype=np.float64)
    calls = _raw_calls(name, x)
    for backend in BACKENDS:
        if runtime_available(backend):
            continue
        for precision in PRECISIONS:
            m = load_model(MODELS / name, backend, precision)
            label = f"{backend} {precision}"
            calls[f"{label} backend"] = lambda m=m: m.backend.predict_one(x)
            calls[f"{label} model"] = (lambda m=m: m.classify_one(x)) \
                if m.task == "classification" else (lambda m=m: m.predict_one(x))
            calls[f"{label} flow"], feats = _flow_call(m, name)
            if backend == "native" and m.backend.call == "extension":
                # the fallback a gateway without Python headers runs (python3-dev)
                os.environ["FRUGALAI_NATIVE_CALL"] = "ctypes"
                try:
                    c = load_model(MODELS / name, backend, precision)
                finally:
                    del os.environ["FRUGALAI_NATIVE_CALL"]
                calls[f"{label} backend, ctypes call"] = lambda c=c: c.backend.predict_one(x)
    calls["features"] = feats
    us = timed(calls, rounds, n)
    base = us.get("raw LiteRT fp32")
    rows = [{"call": k, "us": round(v, 3), "ratio_to_raw_litert_fp32":
             round(v / base, 2) if base else None} for k, v in us.items()]
    for precision in PRECISIONS:
        c = _c_alone(name, precision, x)
        if c is not None:
            rows.append({"call": f"native {precision} C loop alone (no Python)", "us": round(c, 3),
                         "ratio_to_raw_litert_fp32": round(c / base, 3) if base else None})
    return {"model": name, "input": "the card's first self-test row", "rows": rows}


def cost_growth(name: str, rounds: int) -> list[dict[str, Any]]:
    X = np.resize(np.asarray(load_model(MODELS / name).card["self_test"]["inputs"], np.float32),
                  (max(BATCHES), len(load_model(MODELS / name).card["self_test"]["inputs"][0])))
    out = []
    for backend in BACKENDS:
        if runtime_available(backend):
            continue
        for precision in PRECISIONS:
            m = load_model(MODELS / name, backend, precision)
            calls = {b: (lambda m=m, b=b: m.raw_many(X[:b])) for b in BATCHES}
            us = timed({str(b): c for b, c in calls.items()}, rounds, 20)
            out.append({"model": name, "backend": backend, "precision": precision,
                        **{f"us_per_call_b{b}": round(us[str(b)], 2) for b in BATCHES},
                        **{f"us_per_row_b{b}": round(us[str(b)] / b, 3) for b in BATCHES}})
    return out


def _dense_csv(path: Path, rows: int) -> None:
    t0 = dt.datetime(2024, 1, 1)
    with open(path, "w") as fh:
        fh.write("timestamp,power_w\n")
        for k in range(rows):
            ts = (t0 + dt.timedelta(seconds=10 * k)).isoformat(sep=" ")
            day = (k * 10 % 86400) / 86400
            fh.write(f"{ts},{900 + 600 * math.sin(2 * math.pi * day) + (k * 7919 % 97):.1f}\n")


def pipeline_case(label: str, url: str, flow: dict[str, Any], tmp: Path) -> dict[str, Any]:
    from frugalai.config import loads_config
    from frugalai.pipeline import Pipeline

    state = tmp / label
    cfg = loads_config({"gateway": {"state_dir": str(state)},
                        "flow": [{"name": label, "source": url, "summary_s": 0, **flow}]})
    pipe = Pipeline.from_config(cfg, sinks=[])
    fl = pipe.flows[0]
    stop = threading.Event()
    events = 0
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    for reading in fl.source.readings(stop):
        got = fl.process(reading)
        if got:
            events += len(pipe.store(got))
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    n = fl.stats.readings
    pipe.outbox.close()
    return {"case": label, "readings": n, "model_calls": fl.stats.scored, "events": events,
            "seconds": round(wall, 3), "readings_per_s": round(n / wall),
            "readings_per_cpu_s": round(n / cpu) if cpu else None,
            "backend": flow.get("backend", "reference"), "precision": flow.get("precision", "fp32"),
            # what decides, as the plan resolved it (coastal: the card's default is the rule)
            "decision": "rule (baseline)" if fl.config.decision == "baseline" else "model"}


def pipeline(quick: bool) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        dense = tmp / "dense10s.csv"
        _dense_csv(dense, 60_000 if quick else 300_000)
        energy = {"model": str(MODELS / "energy-anomaly"), "aggregate": "mean", "window_s": 900}
        out.append(pipeline_case("dense-10s", f"replay://{dense}?speed=max",
                                 {**energy, "quantity": "power_w"}, tmp))
        limit = "&limit=8000" if quick else ""
        for backend, precision in (("reference", "fp32"), ("tflite", "int8"), ("native", "int8")):
            if runtime_available(backend):
                continue
            extra = {"backend": backend, "precision": precision}
            out.append(pipeline_case(
                f"energy-{backend}-{precision}",
                f"replay://{DUTCH}?speed=max&value=value:power_kw:kW{limit}",
                {**energy, "quantity": "power_kw", **extra}, tmp))
            for decision in ("model", "baseline"):  # both ways: the net, and the rule
                out.append(pipeline_case(
                    f"coastal-{decision}-{backend}-{precision}",
                    f"replay://{PROVIDENCE}?speed=max&value=water_level_m_mllw:water_level_m:m"
                    f"&tz=-05:00{limit}",
                    {"model": str(MODELS / "coastal-submersion"), "quantity": "water_level_m",
                     "aggregate": "mean", "window_s": 3600, "decision": decision, **extra}, tmp))
        for row in out:
            print(row, file=sys.stderr)
    return out


def idle(flows: int, seconds: float, read_timeout: float | None = None) -> dict[str, Any]:
    """CPU (% of one core) and RSS of a pipeline with ``flows`` serial flows on silent ptys
    (``read_timeout``: the serial sources' read timeout, their wake-up period when silent;
    None = the default)."""
    from frugalai.config import loads_config
    from frugalai.pipeline import Pipeline

    masters, cfg_flows = [], []
    for k in range(flows):
        master, slave = os.openpty()
        masters.append((master, slave))
        cfg_flows.append({"name": f"m{k}", "summary_s": 0,
                          "source": f"serial://{os.ttyname(slave)}?protocol=tic&mode=historique"})
    with tempfile.TemporaryDirectory() as tmp:
        cfg = loads_config({"gateway": {"state_dir": tmp}, "flow": cfg_flows})
        kwargs = {} if read_timeout is None else {"read_timeout": read_timeout}
        pipe = Pipeline.from_config(cfg, sinks=[], source_kwargs=kwargs)
        stop = threading.Event()
        pipe.start(stop)
        time.sleep(1.0)
        cpu0, t0 = time.process_time(), time.monotonic()
        time.sleep(seconds)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
        rss_kib = next(int(line.split()[1]) for line in
                       Path("/proc/self/status").read_text().splitlines()
                       if line.startswith("VmRSS"))
        stop.set()
        for t in pipe._threads:
            t.join(timeout=5)
        pipe.outbox.close()
    for master, slave in masters:
        os.close(master)
        os.close(slave)
    return {"flows": flows, "read_timeout_s": read_timeout or "default (1.0)",
            "cpu_pct_of_core": round(100 * cpu / wall, 3),
            "rss_mib": round(rss_kib / 1024, 1), "seconds": round(wall, 1)}


def edge_energy(gateway_flow_us: float | None) -> dict[str, Any]:
    """Node vs gateway energy per event (benchmarks/edge_energy.py, shared with
    energy_per_inference.py), the gateway's inference being this run's flow call x 0.8 W."""
    import edge_energy as edge

    return edge.measure((gateway_flow_us or 0.0) * 0.8,
                        "the flow call (native int8) measured here x 0.8 W, a busy Pi 4 core "
                        "(energy.md)")


def targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's targets, each with the measured value and whether this run meets it."""
    out: list[dict[str, Any]] = []

    def add(target: str, value: Optional[float], limit: float, higher: bool = False,
            unit: str = "x") -> None:
        if value is None:
            return
        ok = value >= limit if higher else value <= limit
        out.append({"target": target, "measured": round(value, 3), "unit": unit,
                    "limit": limit, "at_least": higher, "met": ok})

    for table in doc["ratio"]:
        us = {r["call"]: r["us"] for r in table["rows"]}
        name = table["model"]

        def ratio(a: str, b: str, us: dict[str, float] = us) -> Optional[float]:
            return us[a] / us[b] if a in us and b in us and us[b] else None

        for p in PRECISIONS:
            add(f"{name}: tflite {p} flow / raw LiteRT {p}", ratio(f"tflite {p} flow",
                                                                f"raw LiteRT {p}"), 1.5)
            add(f"{name}: onnx {p} flow / raw onnxruntime {p}",
                ratio(f"onnx {p} flow", f"raw onnxruntime {p}"), 1.5)
            add(f"{name}: tflite {p} model (net + decision) / raw LiteRT {p}",
                ratio(f"tflite {p} model", f"raw LiteRT {p}"), 1.5)
            add(f"{name}: native {p} backend / raw LiteRT fp32",
                ratio(f"native {p} backend", "raw LiteRT fp32"), 0.5)
        add(f"{name}: tflite int8 backend / tflite fp32 backend",
            ratio("tflite int8 backend", "tflite fp32 backend"), 1.0)
        add(f"{name}: reference fp32 backend / raw LiteRT fp32",
            ratio("reference fp32 backend", "raw LiteRT fp32"), 3.0)
        add(f"{name}: scikit-learn per sample / reference fp32 backend",
            ratio("scikit-learn per sample", "reference fp32 backend"), 50.0, higher=True)
    for r in doc.get("pipeline", []):
        limit = 100_000.0 if r["case"].startswith("dense") else 20_000.0
        add(f"pipeline {r['case']}: readings per CPU-second", r.get("readings_per_cpu_s"),
            limit, higher=True, unit="/s")
    for r in doc.get("idle", []):
        if r["flows"] == 16 and str(r["read_timeout_s"]).startswith("default"):
            add("idle CPU, 16 serial flows (% of a core)", r["cpu_pct_of_core"], 0.3, unit="%")
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = ["# Fast path (issue 16)", "", f"> {doc['meta']['note']}", ""]
    met = targets(doc)
    if met:
        lines += ["## Targets of issue 16, this run", "",
                  "| target | measured | limit | met |", "|---|---:|---:|---|"]
        lines += [f"| {t['target']} | {t['measured']:,}"
                  f"{'' if t['unit'] == 'x' else ' ' + t['unit']} | "
                  f"{'≥' if t['at_least'] else '≤'} {t['limit']:,} | "
                  f"{'yes' if t['met'] else '**no**'} |" for t in met]
        lines.append("")
    for table in doc["ratio"]:
        lines += [f"## Batch 1, {table['model']} (µs per call, median; ratio to raw LiteRT fp32)",
                  "", "| call | µs | ratio |", "|---|---:|---:|"]
        lines += [f"| {r['call']} | {r['us']:.2f} | {r['ratio_to_raw_litert_fp32']} |"
                  for r in table["rows"]]
        lines.append("")
    lines += ["Levels: `backend` = `backend.predict_one` (net only); `model` = "
              "`BundleModel.predict_one`/`classify_one` (net + decision); `flow` = the scorer "
              "a flow calls per window (features + net + decision); `features` = the features "
              "alone (the flow's cost beyond `model`).", "",
              "## Cost growth (µs per `raw_many` call; sizes interleaved)", "",
              "| model | backend | precision | " + " | ".join(f"b={b}" for b in BATCHES)
              + " | µs/row at 512 |", "|---|---|---|" + "---:|" * (len(BATCHES) + 1)]
    lines += [f"| {r['model']} | {r['backend']} | {r['precision']} | "
              + " | ".join(f"{r[f'us_per_call_b{b}']:.1f}" for b in BATCHES)
              + f" | {r['us_per_row_b512']:.3f} |" for r in doc["growth"]]
    lines += ["", "## Pipeline, one core, `replay://` at full speed (outbox sync=append)", "",
              "Steady state: one flow driven in-process, start-up left out (whole-process "
              "figures, start-up included: `whole_process.py`).", "",
              "| case | decision | backend | precision | readings | model calls | events | "
              "readings/s | readings per CPU-second |",
              "|---|---|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r.get('decision', 'model')} | {r['backend']} | "
              f"{r['precision']} | {r['readings']} | "
              f"{r['model_calls']} | {r['events']} | {r['readings_per_s']:,} | "
              f"{r['readings_per_cpu_s']:,} |" for r in doc["pipeline"]]
    if doc.get("idle"):
        lines += ["", "## Idle: serial flows on silent ptys (process CPU, RSS after the run)", "",
                  "| flows | serial read timeout s | CPU % of one core | RSS MiB |",
                  "|---:|---|---:|---:|"]
        lines += [f"| {r['flows']} | {r['read_timeout_s']} | {r['cpu_pct_of_core']} | "
                  f"{r['rss_mib']} |" for r in doc["idle"]]
        lines.append("")
        lines.append("RSS is the whole benchmark process (every runtime loaded), so read its "
                     "growth with flows, not its level.")
    if "edge_energy" in doc:
        from frugalai.energy.edge import section

        lines += section(doc["edge_energy"])
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and rows")
    prov.add_output_arguments(ap)
    ap.add_argument("--markdown-only", type=Path, metavar="JSON",
                    help="rewrite the Markdown next to an existing fastpath.json, no run")
    args = ap.parse_args()
    if args.markdown_only:
        doc = json.loads(args.markdown_only.read_text())
        (args.markdown_only.parent / "fastpath.md").write_text(prov.render_markdown(doc, markdown))
        return
    out = prov.output_dir(ap, args)
    run_meta = prov.provenance(
        compiler=shutil.which("cc") or shutil.which("gcc"),
        note="Shared 2-vCPU machine, loaded by other sessions during the run: absolute times "
             "are noisy and pessimistic; the ratios, measured in one process with shuffled "
             "rounds, are the figures to compare.")
    rounds, n = (5, 500) if args.quick else (15, 3000)
    random.seed(16)
    doc: dict[str, Any] = {"ratio": [ratio_table(name, rounds, n)
                                     for name in ("coastal-submersion", "energy-anomaly")]}
    doc["growth"] = [r for name in ("coastal-submersion", "energy-anomaly")
                     for r in cost_growth(name, rounds)]
    doc["pipeline"] = pipeline(args.quick)
    doc["idle"] = [idle(n, 5.0 if args.quick else 20.0, t) for t in (None, 0.2)
                   for n in (1, 4, 16)]
    energy_rows = {r["call"]: r["us"] for r in doc["ratio"][1]["rows"]}
    doc["edge_energy"] = edge_energy(energy_rows.get("native int8 flow"))
    doc["targets"] = targets(doc)
    doc = {"meta": run_meta, **doc}
    text = prov.write_results(out, "fastpath", doc, markdown)
    print(text)
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
