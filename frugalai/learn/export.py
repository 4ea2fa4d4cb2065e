"""From a trained dense net to a shipped bundle: weights, ONNX (fp32 + int8), TFLite (fp32 +
full-integer int8 layers with float32 input and output, quantized in the graph), self-test
vectors, card with sha256 of every file.

int8 policy: the reference/TFLite int8 net (static, per-channel, calibrated on training rows) is
kept only if its decisions agree with fp32 on at least ``min_agreement`` of the evaluation rows
and its raw outputs stay within ``max_rel_error`` of the fp32 output span; otherwise
the bundle ships fp32 only and the card says why. For ONNX, the three quantization
modes of ``onnxruntime.quantization`` (static QDQ, static QOperator, dynamic) are compared on the
same rows; the smallest that passes the same two tests ships as ``model.int8.onnx``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from frugalai import __version__
from frugalai.runtime.bundle import write_card
from frugalai.runtime.dense import DenseNet

Decide = Callable[[npt.NDArray[np.floating]], npt.NDArray[Any]]


def _agreement(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    return float(np.mean(a == b)) if len(a) else 1.0


def _self_test_rows(X: npt.NDArray[np.floating], n: int = 8, seed: int = 0) -> npt.NDArray[Any]:
    """A few rows: the most extreme ones (largest norm) and random ordinary ones."""
    rng = np.random.default_rng(seed)
    norms = np.linalg.norm(X, axis=1)
    extreme = np.argsort(norms)[-n // 2:]
    ordinary = rng.choice(len(X), size=n - len(extreme), replace=False)
    return np.asarray(X[np.concatenate([extreme, ordinary])], dtype=np.float32)


def export_bundle(out_dir: Path, net: DenseNet, calibration: npt.NDArray[np.floating],
                  eval_rows: npt.NDArray[np.floating], decide: Decide, card: dict[str, Any],
                  min_agreement: float = 0.995, max_rel_error: float = 0.05, seed: int = 0
                  ) -> dict[str, Any]:
    """Write the bundle into ``out_dir`` (replaced); return the card written."""
    from frugalai.learn.onnx_writer import dense_to_onnx, quantize_all
    from frugalai.learn.tflite_writer import dense_to_tflite

    out_dir.mkdir(parents=True, exist_ok=True)
    for f in out_dir.iterdir():
        if f.is_file():
            f.unlink()
    qnet = net.quantize(calibration)
    qnet.save(out_dir / "weights.npz")
    dense_to_onnx(net, out_dir / "model.onnx")
    (out_dir / "model.tflite").write_bytes(dense_to_tflite(net, int8=False))

    fp32_raw = np.asarray(net.forward(eval_rows))
    span = float(np.ptp(fp32_raw)) or 1.0
    fp32_dec = decide(fp32_raw)
    int8_raw = qnet.forward_int8(eval_rows)
    int8_dec = decide(int8_raw)
    agreement = {"reference_tflite_int8": _agreement(fp32_dec, int8_dec)}
    rel_err = {"reference_tflite_int8": float(np.abs(int8_raw - fp32_raw).max()) / span}
    artifacts: dict[str, dict[str, str]] = {
        "reference": {"fp32": "weights.npz"}, "onnx": {"fp32": "model.onnx"},
        "tflite": {"fp32": "model.tflite"}}
    # Decisions on rare events agree even when a model is broken (a constant output says
    # "normal" 99.9 % of the time): the raw outputs must stay close too.
    int8_ok = (agreement["reference_tflite_int8"] >= min_agreement
               and rel_err["reference_tflite_int8"] <= max_rel_error)
    if int8_ok:
        (out_dir / "model.int8.tflite").write_bytes(dense_to_tflite(qnet, int8=True))
        artifacts["reference"]["int8"] = "weights.npz"
        artifacts["tflite"]["int8"] = "model.int8.tflite"

    import onnxruntime as ort

    onnx_modes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = quantize_all(out_dir / "model.onnx", np.asarray(calibration), Path(tmp))
        for mode, path in variants.items():
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            y = sess.run(None, {"x": np.asarray(eval_rows, dtype=np.float32)})[0]
            err = float(np.abs(y - fp32_raw).max()) / span
            onnx_modes[mode] = {"bytes": path.stat().st_size,
                                "agreement_with_fp32": _agreement(fp32_dec, decide(y)),
                                "max_abs_error_over_output_span": round(err, 5),
                                "ok": bool(_agreement(fp32_dec, decide(y)) >= min_agreement
                                           and err <= max_rel_error)}
        best = max(onnx_modes, key=lambda m: (onnx_modes[m]["ok"], -onnx_modes[m]["bytes"]))
        if onnx_modes[best]["ok"]:
            shutil.copy(variants[best], out_dir / "model.int8.onnx")
            artifacts["onnx"]["int8"] = "model.int8.onnx"
    agreement["onnx_int8"] = onnx_modes[best]["agreement_with_fp32"]

    rows = _self_test_rows(np.asarray(calibration), seed=seed)
    outputs = {"fp32": np.asarray(net.forward(rows)).tolist()}
    atol = {"fp32": 1e-4 * max(1.0, float(np.abs(outputs["fp32"]).max()))}
    if int8_ok:
        outputs["int8"] = qnet.forward_int8(rows).tolist()
        atol["int8"] = 1.01 * qnet.out_q[-1].scale  # one quantization step (rounding)
    if "int8" in artifacts["onnx"]:
        # onnxruntime's own int8 arithmetic differs from TFLite's: its own recorded outputs.
        sess = ort.InferenceSession(str(out_dir / "model.int8.onnx"),
                                    providers=["CPUExecutionProvider"])
        outputs["onnx_int8"] = sess.run(None, {"x": rows})[0].tolist()
        atol["onnx_int8"] = 1e-3 * max(1.0, float(np.abs(outputs["onnx_int8"]).max()))
    card = {
        **card,
        "frugalai_version": __version__,
        "artifacts": artifacts,
        "int8": {"kept": int8_ok, "min_decision_agreement": min_agreement,
                 "max_error_over_output_span": max_rel_error,
                 "decision_agreement_with_fp32": agreement,
                 "error_over_output_span": rel_err,
                 "onnx_quantization_modes": onnx_modes, "onnx_mode_shipped": best,
                 "scheme": "static post-training, per-channel symmetric int8 weights, "
                           "per-tensor asymmetric int8 activations, MinMax calibration on "
                           "training rows"},
        "self_test": {"inputs": rows.tolist(), "outputs": outputs, "atol": atol,
                      "about": "raw net outputs recorded at training time; "
                               "frugalai.runtime.self_test() checks them"},
    }
    card = write_card(out_dir, card)
    card["sizes_bytes"] = {k: v["bytes"] for k, v in card["files"].items()}
    write_card(out_dir, card)
    from frugalai.runtime.native import update_card

    return update_card(out_dir)  # the native backend's artifacts and flash/RAM bytes


def rewrite_int8_tflite(bundle_dir: Path) -> dict[str, Any]:
    """Rewrite a bundle's ``model.int8.tflite`` from its own ``weights.npz`` (the int8 net the
    bundle already ships, no retraining) in the writer's current form -- float32 input and
    output, QUANTIZE/DEQUANTIZE in the graph -- and update that file's sha256 and bytes in the
    card (``files``, and ``sizes_bytes`` if the card lists it), nothing else: the key order of
    the card is kept. Returns the card. A signed card is refused (its signature would no
    longer match: re-sign after rewriting)."""
    import json

    from frugalai.errors import ModelError
    from frugalai.learn.tflite_writer import dense_to_tflite
    from frugalai.runtime.bundle import CARD, SIGNATURE, sha256_file, verify_bundle

    name = "model.int8.tflite"
    bundle = verify_bundle(bundle_dir)
    if (bundle.path / SIGNATURE).exists():
        raise ModelError(f"{bundle.path}: signed card; rewriting {name} would void "
                         f"{SIGNATURE}: remove it, rewrite, then sign again")
    if bundle.card.get("artifacts", {}).get("tflite", {}).get("int8") != name:
        raise ModelError(f"{bundle.path}: the card ships no int8 TFLite file")
    net = DenseNet.load(bundle.file("weights.npz"))
    f = bundle.path / name
    f.write_bytes(dense_to_tflite(net, int8=True))
    card = bundle.card
    card["files"][name] = {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
    if name in card.get("sizes_bytes", {}):
        card["sizes_bytes"][name] = f.stat().st_size
    (bundle.path / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return verify_bundle(bundle.path).card
