"""The energy-per-inference benchmark: every shipped model x backend x precision x batch.

Each configuration is measured in its own process (:func:`harness.run_isolated`) with the
method of :mod:`frugalai.energy.harness`; the idle baseline is measured once. Results go to
``<out>/energy_per_inference.{json,md,png}``. With the CPU-time estimate the Markdown also
re-scales each figure to the other board profiles (see :mod:`frugalai.energy.estimate` for what
that does and does not account for). Energy per event adds the binary encoding and the LoRa
uplink (time on air x TX power) to one inference.
"""

from __future__ import annotations

import json
import platform
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional, TextIO

from frugalai.energy.base import open_meter
from frugalai.energy.estimate import PROFILES
from frugalai.energy.harness import HarnessConfig, idle_power, run_isolated
from frugalai.energy.radio import DEFAULT_TX_SOURCE, DEFAULT_TX_W, uplink_uj
from frugalai.errors import FrugalError

RESULTS_NAME = "results"
#: the one line a user reads when the picture is skipped.
NO_MATPLOTLIB = ("PNG chart skipped: matplotlib is not installed (pip install 'frugalai[bench]');"
                 " the HTML page has its chart inline (SVG)")


def results_dir(state_dir: str | Path) -> Path:
    """Where ``frugalai bench`` writes by default, and ``report`` looks first."""
    return Path(state_dir) / RESULTS_NAME


def shipped_results_dir() -> Path:
    """``benchmarks/results`` of a checkout (absent from an installed wheel)."""
    return Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def bundle_specs(models_dir: Path, batches: tuple[int, ...]) -> list[dict[str, Any]]:
    """A spec per shipped bundle x backend x precision x batch, from the cards' ``artifacts``.

    A backend whose runtime is not installed here is left out (and logged), not failed.
    """
    import logging

    try:
        from frugalai.runtime import list_bundles, runtime_available
        from frugalai.runtime.backends import bundle_refusal
    except ImportError:
        return []
    specs = []
    for bundle in list_bundles(models_dir):
        for backend, files in sorted(bundle.card.get("artifacts", {}).items()):
            why = runtime_available(backend) or bundle_refusal(backend, bundle)
            if why:
                logging.getLogger("frugalai.bench").warning("%s: %s skipped: %s", bundle.name,
                                                            backend, why)
                continue
            for precision in sorted(files):
                for b in batches:
                    specs.append({"kind": "bundle", "path": str(bundle.path),
                                  "backend": backend, "precision": precision, "batch": b})
    return specs


def default_specs(models_dir: Path, batches: tuple[int, ...]) -> list[dict[str, Any]]:
    """The full matrix: the online profile model, every bundle, and the event encoder."""
    specs = [{"kind": "profile", "batch": b} for b in batches]
    specs += bundle_specs(models_dir, batches)
    specs.append({"kind": "encode"})
    return specs


class Progress:
    """A one-line progress bar with ETA on a terminal; plain lines otherwise."""

    def __init__(self, total_s: float, n: int, stream: TextIO = sys.stderr) -> None:
        self.total_s, self.n, self.stream = total_s, n, stream
        self.t0 = time.monotonic()
        self.done, self.label = 0, ""
        self._stop = threading.Event()
        self.tty = stream.isatty()
        if self.tty:
            threading.Thread(target=self._tick, daemon=True).start()

    def _line(self) -> str:
        el = time.monotonic() - self.t0
        frac = min(1.0, el / self.total_s) if self.total_s else 1.0
        bar = "#" * int(frac * 30)
        return (f"[{bar:30}] {self.done}/{self.n} {self.label:40.40} "
                f"{el:4.0f}s / ~{self.total_s:.0f}s")

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def step(self, label: str) -> None:
        self.label = label
        if not self.tty:
            self.stream.write(self._line() + "\n")
            self.stream.flush()

    def finish(self) -> None:
        self._stop.set()
        self.done = self.n
        self.stream.write(("\r" if self.tty else "") + self._line() + "\n")


def _rescale(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """µJ/inference if the measured CPU time were spent on each board profile."""
    cpu_s = result["cpu_us_per_inference"] / 1e6
    return {name: {"same_cpu_time_uj": cpu_s * p.active_w_per_core * 1e6,
                   "with_assumed_slowdown_uj": cpu_s * p.slowdown_vs_x86
                   * p.active_w_per_core * 1e6,
                   "slowdown_vs_x86": p.slowdown_vs_x86}
            for name, p in PROFILES.items()}


def run_bench(out_dir: Path, meter_spec: str = "estimate", quick: bool = False,
              specs: Optional[list[dict[str, Any]]] = None, models_dir: Path = Path("models"),
              batches: tuple[int, ...] = (1, 32), drs: tuple[int, ...] = (5, 0),
              tx_w: float = DEFAULT_TX_W, chart: bool = True, write: bool = True,
              config: Optional[HarnessConfig] = None) -> dict[str, Any]:
    """Run the matrix; write JSON, Markdown, HTML (chart inline, SVG) and, when matplotlib is
    installed, a PNG; return the JSON document (``chart_skipped`` says why a PNG is absent).

    ``write=False`` only measures: benchmarks/energy_per_inference.py adds its provenance and
    the node-vs-gateway section, then writes with :func:`write_documents`. ``config`` replaces
    the method's windows (default: :class:`HarnessConfig`, or its ``quick()`` form)."""
    if config is None:
        config = HarnessConfig.quick() if quick else HarnessConfig()
    specs = specs if specs is not None else default_specs(models_dir, batches)
    with open_meter(meter_spec) as meter:
        idle_w = idle_power(meter, config.window_s)
        meter_info = meter.describe()
    per_cfg = config.warmup_s + config.windows * config.window_s + config.latency_s + 0.5
    progress = Progress(per_cfg * len(specs), len(specs))
    results: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for i, spec in enumerate(specs):
        progress.done = i
        progress.step(f"{spec.get('kind')} {spec.get('backend', '')} {spec.get('precision', '')}"
                      f" b{spec.get('batch', 1)}")
        try:
            r = run_isolated(spec, meter_spec, config, idle_w)
        except FrugalError as err:  # one broken runtime must not void the whole run
            failed.append({"spec": spec, "error": str(err)})
            continue
        if meter_info.get("estimated"):
            r["rescaled"] = _rescale(r)
        r["uj_meter"] = meter_info.get("figure_meter", meter_info.get("meter"))
        results.append(r)
    progress.finish()
    encode = next((r for r in results if r["workload"] == "encode-binary"), None)
    per_event = []
    for r in results:
        if r["batch"] != 1 or r is encode:
            continue
        for dr in drs:
            payload = encode["payload_bytes"] if encode else 11
            radio = uplink_uj(payload, dr, tx_w)
            enc = encode["uj_per_inference"] if encode else 0.0
            per_event.append({"model": r["model"], "backend": r["backend"],
                              "precision": r["precision"], "dr": dr,
                              "inference_uj": r["uj_per_inference"], "encode_uj": enc,
                              "radio_uj": radio,
                              "total_uj": r["uj_per_inference"] + enc + radio,
                              "uj_meter": f"inference and encode: {r['uj_meter']}; radio: "
                                          "modelled airtime x TX power, not measured"})
    doc = {
        "schema": "frugalai.energy_per_inference/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {"machine": platform.machine(), "python": platform.python_version(),
                 "system": platform.system(), "processor": platform.processor()},
        "meter": meter_info,
        "idle_w": idle_w,
        "method": {**asdict(config), "quick": quick,
                   "description": "warm-up, >= window_s windows of back-to-back batches, "
                                  "median of windows (MLPerf Tiny), idle baseline subtracted; "
                                  "each configuration in its own process, one thread"},
        "radio": {"tx_w": tx_w, "source": DEFAULT_TX_SOURCE if tx_w == DEFAULT_TX_W
                  else "configured"},
        "results": results,
        "per_event": per_event,
        "failed": failed,
    }
    return write_documents(doc, out_dir, chart=chart) if write else doc


def write_documents(doc: dict[str, Any], out_dir: Path, chart: bool = True,
                    md: Optional[str] = None, write_json: bool = True) -> dict[str, Any]:
    """Write ``energy_per_inference.{json,md,html}`` (and the PNG) of ``doc`` into ``out_dir``;
    ``md`` replaces :func:`markdown` (the benchmark script's, with its provenance line);
    ``write_json=False`` leaves the JSON and the Markdown to the caller."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = markdown(doc) if md is None else md
    if write_json:
        (out_dir / "energy_per_inference.json").write_text(json.dumps(doc, indent=1) + "\n")
        (out_dir / "energy_per_inference.md").write_text(md)
    from frugalai.report.html import to_html

    (out_dir / "energy_per_inference.html").write_text(
        to_html(md + "\n<!-- chart: bench -->\n", {"bench": svg_chart(doc)},
                title="frugalai: energy per inference"))
    if chart and have_matplotlib():
        write_chart(doc, out_dir / "energy_per_inference.png")
    elif chart:
        doc["chart_skipped"] = NO_MATPLOTLIB
    return doc

def svg_chart(doc: dict[str, Any]) -> str:
    """µJ/inference of every configuration, log scale, inline SVG."""
    from frugalai.report import svgchart

    rows = doc["results"]
    return svgchart.hbar([f"{r['model']} {r['backend']} {r['precision']} b{r['batch']}"
                          for r in rows], [r["uj_per_inference"] for r in rows],
                         "µJ per inference", "Energy per inference (median of windows, idle "
                         "subtracted), log scale", log=True)


def _fmt(x: float) -> str:
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def markdown(doc: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    m = doc["meter"]
    label = m.get("label", m["meter"])
    lines = [
        "# Energy per inference",
        "",
        f"Meter: **{label}** (scope {m['scope']}, relative uncertainty "
        f"{m['rel_uncertainty']:.0%}). Idle baseline {doc['idle_w']:.3g} W subtracted. "
        f"Host {doc['host']['machine']}, Python {doc['host']['python']}, {doc['created']}.",
        "",
        f"Method: {doc['method']['description']}; windows of {doc['method']['window_s']} s x "
        f"{doc['method']['windows']}, warm-up {doc['method']['warmup_s']} s"
        + (" (**quick mode: not for publication**)" if doc["method"]["quick"] else "") + ".",
        "",
        "| model | backend | precision | batch | µJ/inference | ± | µJ meter | latency p50 µs "
        "| p99 µs | inferences/s | CPU µs/inference | peak RSS MiB | model bytes |",
        "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['precision']} | {r['batch']} | "
            f"{_fmt(r['uj_per_inference'])} | {_fmt(r['uncertainty_uj'])} | "
            f"{r.get('uj_meter', label)} | {_fmt(r['latency_p50_us'])} | {_fmt(r['latency_p99_us'])} | "
            f"{_fmt(r['throughput_per_s'])} | {_fmt(r['cpu_us_per_inference'])} | "
            f"{r['peak_rss_bytes'] / 2**20:.1f} | {r['model_bytes']:,} |")
    if any("rescaled" in r for r in doc["results"]):
        names = list(PROFILES)
        lines += [
            "",
            "## Re-scaled to other boards (estimate)",
            "",
            "µJ/inference = CPU seconds per inference measured here x the board's active W per "
            "busy core. First figure: the same CPU time (a lower bound: an ARM core needs more "
            "time for the same work); in brackets: with the profile's *assumed* slowdown vs "
            "x86 (an assumption, not a measurement). Re-run the benchmark on the board itself "
            "for its real figure.",
            "",
            "| model | backend | precision | batch | " + " | ".join(names) + " |",
            "|---|---|---|---:|" + "---:|" * len(names),
        ]
        for r in doc["results"]:
            cells = [f"{_fmt(r['rescaled'][n]['same_cpu_time_uj'])} "
                     f"({_fmt(r['rescaled'][n]['with_assumed_slowdown_uj'])})" for n in names]
            lines.append(f"| {r['model']} | {r['backend']} | {r['precision']} | {r['batch']} | "
                         + " | ".join(cells) + " |")
        lines += ["", "Profiles: " + "; ".join(
            f"{p.name}: {p.active_w_per_core} W/core, slowdown {p.slowdown_vs_x86}x ({p.source})"
            for p in PROFILES.values())]
    if doc["per_event"]:
        lines += [
            "",
            f"## Energy per event sent (inference + 11-byte encoding + LoRaWAN uplink at "
            f"{doc['radio']['tx_w']} W TX: {doc['radio']['source']})",
            "",
            "| model | backend | precision | DR | inference µJ | encode µJ | radio µJ | total µJ "
            "| radio share | µJ meter |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for e in doc["per_event"]:
            lines.append(f"| {e['model']} | {e['backend']} | {e['precision']} | {e['dr']} | "
                         f"{_fmt(e['inference_uj'])} | {_fmt(e['encode_uj'])} | "
                         f"{_fmt(e['radio_uj'])} | {_fmt(e['total_uj'])} | "
                         f"{e['radio_uj'] / e['total_uj']:.2%} | {e.get('uj_meter', label)} |")
    if "edge_energy" in doc:
        from frugalai.energy.edge import section

        lines += section(doc["edge_energy"])
    if doc.get("failed"):
        lines += ["", "## Not measured", ""]
        lines += [f"- `{json.dumps(f['spec'])}`: {f['error'][:300]}" for f in doc["failed"]]
    return "\n".join(lines) + "\n"


def write_chart(doc: dict[str, Any], path: Path) -> None:
    """Horizontal bars of µJ/inference with uncertainty, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = doc["results"]
    labels = [f"{r['model']} {r['backend']} {r['precision']} b{r['batch']}" for r in rows]
    values = [max(r["uj_per_inference"], 1e-6) for r in rows]
    errs = [min(r["uncertainty_uj"], v * 0.999) for r, v in zip(rows, values)]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.6))
    ax.barh(range(len(rows)), values, xerr=errs, color="#4c72b0", capsize=2)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    m = doc["meter"]
    ax.set_xlabel(f"µJ per inference ({m.get('label', m['meter'])})")
    ax.set_title("Energy per inference (median of windows, idle subtracted)", fontsize=10)
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
