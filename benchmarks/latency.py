"""Per-call latency of each shipped model on scikit-learn and every backend x precision.

Batch 1 (``predict_one``: the gateway's streaming case) and batched (``predict_many`` on 256
rows, reported per row). Median of repeated timings after a warm-up; one thread everywhere.
Inputs are the bundle's own self-test rows, tiled. Post-processing (score, class) is included,
features are not. Writes ``latency.json`` and ``latency.md`` to build/benchmarks/
(benchmarks/results/ with ``--publish``).

scikit-learn: an estimator of the same shape carrying the same weights (PCA with the bundle's
projection; MLPClassifier with the bundle's layers), timed on ``transform`` / ``predict_proba``.

    python benchmarks/latency.py [--repeat 2000 | --quick] [--publish]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402

from frugalai.runtime import available, list_bundles, load_model  # noqa: E402
from frugalai.runtime.dense import DenseNet  # noqa: E402
from frugalai.runtime.model import shipped_models_dir  # noqa: E402

BATCH = 256


def _time(fn: Callable[[], Any], repeat: int, per: int = 1) -> float:
    """Median seconds per row over ``repeat`` calls (after 20 warm-up calls)."""
    for _ in range(20):
        fn()
    samples = []
    for _ in range(max(5, repeat // 50)):
        t0 = time.perf_counter()
        for _ in range(50):
            fn()
        samples.append((time.perf_counter() - t0) / 50 / per)
    return statistics.median(samples)


def _sklearn(bundle_path: Path, task: str) -> Any:
    net = DenseNet.load(bundle_path / "weights.npz")
    if task == "anomaly":
        from sklearn.decomposition import PCA

        W = net.layers[0].W
        pca = PCA(n_components=W.shape[1], whiten=True)
        pca.components_ = W.T.astype(np.float64)
        pca.explained_variance_ = np.ones(W.shape[1])
        pca.mean_ = np.zeros(W.shape[0])
        pca.n_features_in_ = W.shape[0]
        pca.n_components_ = W.shape[1]
        return pca.transform
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import LabelBinarizer

    clf = MLPClassifier(hidden_layer_sizes=(net.layers[0].W.shape[1],), activation="relu")
    clf.coefs_ = [lay.W.astype(np.float64) for lay in net.layers]
    clf.intercepts_ = [lay.b.astype(np.float64) for lay in net.layers]
    clf.n_layers_ = len(net.layers) + 1
    clf.n_outputs_ = net.n_outputs
    clf.out_activation_ = "softmax"
    clf.classes_ = np.arange(net.n_outputs)
    clf._label_binarizer = LabelBinarizer().fit(clf.classes_)
    clf.n_features_in_ = net.n_inputs
    return clf.predict_proba


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (--repeat 200)")
    prov.add_output_arguments(ap)
    args = ap.parse_args()
    out = prov.output_dir(ap, args)
    if args.quick:
        args.repeat = 200
    meta = prov.provenance(batch=BATCH, threads=1, repeat=args.repeat,
                           note="median of repeated timings; shared 2-vCPU machine, expect noise")
    rows: list[dict[str, Any]] = []
    for bundle in list_bundles(shipped_models_dir()):
        X = np.asarray(bundle.card["self_test"]["inputs"], dtype=np.float32)
        Xb = np.resize(X, (BATCH, X.shape[1]))
        x1 = X[0:1]
        try:
            fn = _sklearn(bundle.path, bundle.card["task"])
            x64, xb64 = x1.astype(np.float64), Xb.astype(np.float64)
            rows.append({"model": bundle.name, "backend": "sklearn", "precision": "fp64",
                         "us_per_call_batch1": 1e6 * _time(lambda f=fn, x=x64: f(x), args.repeat),
                         "us_per_row_batched": 1e6 * _time(lambda f=fn, x=xb64: f(x), args.repeat // 10,
                                                           BATCH)})
        except ImportError as err:
            print(f"sklearn skipped: {err}", file=sys.stderr)
        for a in available(bundle):
            if a["unavailable"]:
                rows.append({"model": bundle.name, "backend": a["backend"],
                             "precision": a["precision"], "skipped": a["unavailable"]})
                continue
            m = load_model(bundle.path, a["backend"], a["precision"])
            rows.append({
                "model": bundle.name, "backend": a["backend"], "precision": a["precision"],
                "file": a["file"], "file_bytes": a["bytes"],
                "us_per_call_batch1": 1e6 * _time(lambda m=m, x=x1: m.predict_one(x[0]),
                                                  args.repeat),
                "us_per_row_batched": 1e6 * _time(lambda m=m, x=Xb: m.predict_many(x),
                                                  args.repeat // 10, BATCH),
            })
            print(rows[-1], file=sys.stderr)
    print(prov.write_results(out, "latency", {"meta": meta, "rows": rows}, markdown))


def markdown(doc: dict[str, Any]) -> str:
    meta, rows = doc["meta"], doc["rows"]
    lines = ["# Inference latency per call (µs), one thread", "",
             f"Batched = {meta['batch']} rows per call, reported per row, median of "
             f"{meta['repeat']} timings. Features and I/O excluded.", "",
             "| model | backend | precision | file bytes | batch 1 µs/call | batched µs/row |",
             "|---|---|---|---:|---:|---:|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['backend']} | {r['precision']} | | skipped: "
                         f"{r['skipped']} | |")
            continue
        lines.append(f"| {r['model']} | {r['backend']} | {r['precision']} | "
                     f"{r.get('file_bytes', '')} | {r['us_per_call_batch1']:.1f} | "
                     f"{r['us_per_row_batched']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
