"""From a trained dense net to a shipped bundle: weights, ONNX (fp32 + int8), TFLite (fp32 +
full-integer int8 layers with float32 input and output, quantized in the graph), self-test
vectors, card with sha256 of every file.

int8 policy: the reference/TFLite int8 net (static, per-channel, calibrated on training rows) is
kept only if its decisions agree with fp32 on at least ``min_agreement`` of the evaluation rows
and its raw outputs stay within ``max_rel_error`` of the fp32 output span; otherwise
the bundle ships fp32 only and the card says why. For ONNX, the three quantization
modes of ``onnxruntime.quantization`` (static QDQ, static QOperator, dynamic) are compared on the
same rows; the smallest that passes the same two tests and a third ships as ``model.int8.onnx``:
its output for a row must not depend on the batch the row is in (a gateway scores one reading
at a time, the self-test a batch). Dynamic quantization fails it (its activation scale is the
batch's range, measured at run time); the static modes pass it exactly.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import numpy.typing as npt

from frugalai import __version__
from frugalai.runtime.bundle import put_key, write_card
from frugalai.runtime.dense import DenseNet

Decide = Callable[[npt.NDArray[np.floating]], npt.NDArray[Any]]

ONNX_MODE_POLICY = ("integer_exact (the reference/LiteRT/native int8 arithmetic, bit for bit) "
                    "if it passes every test, else the smallest mode that passes every test: "
                    "decision agreement with fp32, "
                    "error over the output span, and row independence (rows run alone give "
                    "the outputs of the same rows run as one batch, within atol.onnx_int8: a "
                    "gateway scores one reading at a time)")


def _agreement(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    return float(np.mean(a == b)) if len(a) else 1.0


def _self_test_rows(X: npt.NDArray[np.floating], n: int = 8, seed: int = 0) -> npt.NDArray[Any]:
    """A few rows: the most extreme ones (largest norm) and random ordinary ones."""
    rng = np.random.default_rng(seed)
    norms = np.linalg.norm(X, axis=1)
    extreme = np.argsort(norms)[-n // 2:]
    ordinary = rng.choice(len(X), size=n - len(extreme), replace=False)
    return np.asarray(X[np.concatenate([extreme, ordinary])], dtype=np.float32)


def onnx_int8_tolerance(outputs: npt.ArrayLike) -> float:
    """The card's ``atol.onnx_int8`` for outputs of this size (onnxruntime's float rounding)."""
    return 1e-3 * max(1.0, float(np.abs(np.asarray(outputs, dtype=np.float64)).max()))


def onnx_int8_self_test(path: Path, rows: npt.NDArray[np.floating]
                        ) -> tuple[list[Any], float]:
    """The self-test outputs of an int8 ``.onnx`` on ``rows`` (one batch) and their tolerance."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = np.asarray(sess.run(None, {"x": np.asarray(rows, dtype=np.float32)})[0])
    return y.tolist(), onnx_int8_tolerance(y)


def _batch_probe_rows(calibration: npt.NDArray[np.floating], eval_rows: npt.NDArray[np.floating],
                      seed: int, n: int = 256) -> npt.NDArray[np.float32]:
    """Rows to run alone and in one batch: the self-test rows (the calibration's extremes and a
    few ordinary rows, what the card's self-test runs as a batch) and ``n`` evaluation rows."""
    rng = np.random.default_rng(seed)
    ev = np.asarray(eval_rows, dtype=np.float32)
    pick = ev[rng.choice(len(ev), size=min(n, len(ev)), replace=False)]
    return np.concatenate([_self_test_rows(np.asarray(calibration), seed=seed), pick])


def choose_onnx_mode(modes: dict[str, dict[str, Any]]) -> str:
    """The mode to ship: of those that pass every test (``ok``), the one whose outputs are the
    reference int8 outputs bit for bit (``same_as_reference_int8``: every backend then takes
    the same int8 decisions), else the smallest; if none passes, the smallest (reported, not
    shipped)."""
    return max(modes, key=lambda m: (bool(modes[m]["ok"]),
                                     bool(modes[m].get("same_as_reference_int8", False)),
                                     -int(modes[m]["bytes"])))


def compare_onnx_int8(fp32_onnx: Path, calibration: npt.NDArray[np.floating],
                      eval_rows: npt.NDArray[np.floating], decide: Decide,
                      fp32_raw: npt.NDArray[np.floating], dest: Path,
                      min_agreement: float = 0.995, max_rel_error: float = 0.05, seed: int = 0,
                      qnet: Optional[DenseNet] = None) -> tuple[dict[str, dict[str, Any]], str]:
    """Quantize ``fp32_onnx`` in the three modes (static ones calibrated on ``calibration``),
    plus ``integer_exact`` when the quantized net ``qnet`` is given (its own int8 arithmetic
    as integer ONNX operators, :func:`~frugalai.learn.onnx_writer.dense_to_onnx_int8_exact`),
    test each against the fp32 outputs ``fp32_raw`` of ``eval_rows``: decision agreement,
    error over the output span, and row independence (rows alone vs the same rows in one
    batch, within the card's onnx_int8 tolerance); copy the chosen mode to ``dest`` if it
    passes. Returns the card's mode table and the mode chosen."""
    import onnxruntime as ort

    from frugalai.learn.onnx_writer import (
        batch_dependence,
        dense_to_onnx_int8_exact,
        quantize_all,
    )

    fp32_raw = np.asarray(fp32_raw)
    span = float(np.ptp(fp32_raw)) or 1.0
    fp32_dec = decide(fp32_raw)
    probe = _batch_probe_rows(calibration, eval_rows, seed)
    modes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        variants = quantize_all(fp32_onnx, np.asarray(calibration), Path(tmp))
        ref_int8 = None
        if qnet is not None:
            variants["integer_exact"] = Path(tmp) / f"{fp32_onnx.stem}.integer_exact.onnx"
            dense_to_onnx_int8_exact(qnet, variants["integer_exact"])
            ref_int8 = qnet.forward_int8(eval_rows)
        for mode, path in variants.items():
            sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            y = sess.run(None, {"x": np.asarray(eval_rows, dtype=np.float32)})[0]
            err = float(np.abs(y - fp32_raw).max()) / span
            agree = _agreement(fp32_dec, decide(y))
            dep = batch_dependence(path, probe)
            alone_ok = dep == 0.0 or dep <= onnx_int8_tolerance(sess.run(None, {"x": probe})[0])
            modes[mode] = {"agreement_with_fp32": agree,
                           "bytes": path.stat().st_size,
                           "max_abs_error_over_output_span": round(err, 5),
                           "max_abs_row_alone_vs_in_batch": dep,
                           "ok": bool(agree >= min_agreement and err <= max_rel_error
                                      and alone_ok),
                           "row_independent": bool(alone_ok)}
            if ref_int8 is not None:
                modes[mode]["same_as_reference_int8"] = bool(np.array_equal(y, ref_int8))
        best = choose_onnx_mode(modes)
        if modes[best]["ok"]:
            shutil.copy(variants[best], dest)
    return modes, best


def export_bundle(out_dir: Path, net: DenseNet, calibration: npt.NDArray[np.floating],
                  eval_rows: npt.NDArray[np.floating], decide: Decide, card: dict[str, Any],
                  min_agreement: float = 0.995, max_rel_error: float = 0.05, seed: int = 0,
                  eval_about: str = "the evaluation rows the export was given"
                  ) -> dict[str, Any]:
    """Write the bundle into ``out_dir`` (replaced); return the card written. Last, every
    backend's int8 decisions are measured against its fp32 ones on ``eval_rows`` (described by
    ``eval_about`` in the card) and recorded per backend (:mod:`frugalai.learn.agreement`)."""
    from frugalai.learn.onnx_writer import dense_to_onnx
    from frugalai.learn.tflite_writer import dense_to_tflite
    from frugalai.runtime.card_schema import check_card

    check_card(card)  # a bad --name is refused before anything is written

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

    onnx_modes, best = compare_onnx_int8(out_dir / "model.onnx", calibration, eval_rows, decide,
                                         fp32_raw, out_dir / "model.int8.onnx", min_agreement,
                                         max_rel_error, seed=seed, qnet=qnet if int8_ok else None)
    if onnx_modes[best]["ok"]:
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
        outputs["onnx_int8"], atol["onnx_int8"] = onnx_int8_self_test(
            out_dir / "model.int8.onnx", rows)
    card = {
        **card,
        "frugalai_version": __version__,
        "artifacts": artifacts,
        "int8": {"kept": int8_ok, "min_decision_agreement": min_agreement,
                 "max_error_over_output_span": max_rel_error,
                 "decision_agreement_with_fp32": agreement,
                 "error_over_output_span": rel_err,
                 "onnx_quantization_modes": onnx_modes,
                 "onnx_mode_shipped": best if onnx_modes[best]["ok"] else None,
                 "onnx_mode_policy": ONNX_MODE_POLICY,
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
    from frugalai.learn import agreement as per_backend
    from frugalai.runtime.native import update_card

    update_card(out_dir)  # the native backend's artifacts and flash/RAM bytes
    return per_backend.record(out_dir, eval_rows, eval_about)


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


def _same_qparams(a: tuple[Any, ...], b: tuple[Any, ...], rtol: float) -> bool:
    return len(a) == len(b) and all(
        x.zero_point == y.zero_point and abs(x.scale - y.scale) <= rtol * abs(y.scale)
        for x, y in zip(a, b))


def rewrite_int8_onnx(bundle_dir: Path, calibration: npt.NDArray[np.floating],
                      eval_rows: npt.NDArray[np.floating], decide: Decide,
                      calibration_about: str, seed: int = 0, scale_rtol: float = 0.0
                      ) -> dict[str, Any]:
    """Re-choose and rewrite a bundle's ``model.int8.onnx`` under the current mode policy
    (:data:`ONNX_MODE_POLICY`) without retraining: the static modes are calibrated on
    ``calibration``, which must be the training's calibration rows -- refused unless
    ``DenseNet.quantize(calibration)`` gives exactly the int8 activation parameters stored in
    the bundle's ``weights.npz`` (each scale within ``scale_rtol``, relative: a float32
    matmul of another numpy can move a range by one ulp). The card keeps its key order; updated: ``files`` and
    ``sizes_bytes`` for the file, ``artifacts.onnx.int8``, the ``int8`` ONNX fields (mode
    table, mode shipped, its decision agreement), ``self_test`` ``onnx_int8`` outputs and atol
    on the card's own self-test inputs, and ``int8.onnx_rebuilt`` saying how. A signed card
    is refused (re-sign after rewriting). Returns the card."""
    import json

    from frugalai.errors import ModelError
    from frugalai.runtime.bundle import CARD, SIGNATURE, sha256_file, verify_bundle

    name = "model.int8.onnx"
    bundle = verify_bundle(bundle_dir)
    card = bundle.card
    if (bundle.path / SIGNATURE).exists():
        raise ModelError(f"{bundle.path}: signed card; rewriting {name} would void "
                         f"{SIGNATURE}: remove it, rewrite, then sign again")
    fp32_name = card.get("artifacts", {}).get("onnx", {}).get("fp32")
    if fp32_name is None:
        raise ModelError(f"{bundle.path}: the card ships no fp32 ONNX file to quantize")
    net = DenseNet.load(bundle.file("weights.npz"))
    if not net.quantized:
        raise ModelError(f"{bundle.path}: weights.npz holds no int8 parameters: nothing proves "
                         "the calibration rows are the training's")
    again = net.quantize(calibration)
    if not _same_qparams((again.in_q, *again.out_q), (net.in_q, *net.out_q), scale_rtol):
        raise ModelError(f"{bundle.path}: these calibration rows are not the training's: "
                         f"DenseNet.quantize gives in {again.in_q} out {again.out_q}, "
                         f"weights.npz has in {net.in_q} out {net.out_q}")
    limits = card.get("int8", {})
    previous = {"mode": limits.get("onnx_mode_shipped"),
                "sha256": card["files"].get(name, {}).get("sha256")}
    fp32_raw = np.asarray(net.forward(eval_rows))
    with tempfile.TemporaryDirectory() as tmp:
        chosen = Path(tmp) / name
        modes, best = compare_onnx_int8(
            bundle.file(fp32_name), calibration, eval_rows, decide, fp32_raw, chosen,
            float(limits.get("min_decision_agreement", 0.995)),
            float(limits.get("max_error_over_output_span", 0.05)), seed=seed, qnet=net)
        f = bundle.path / name
        if modes[best]["ok"]:
            shutil.copy(chosen, f)
        elif f.exists():
            f.unlink()
    self_test = card["self_test"]
    if modes[best]["ok"]:
        card["files"][name] = {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
        if "sizes_bytes" in card:
            put_key(card["sizes_bytes"], name, f.stat().st_size)
        put_key(card["artifacts"]["onnx"], "int8", name)
        rows = np.asarray(self_test["inputs"], dtype=np.float32)
        outputs, atol = onnx_int8_self_test(f, rows)
        put_key(self_test["outputs"], "onnx_int8", outputs)
        put_key(self_test["atol"], "onnx_int8", atol)
    else:  # no mode passes: the bundle ships no int8 ONNX file
        card["files"].pop(name, None)
        card.get("sizes_bytes", {}).pop(name, None)
        card["artifacts"]["onnx"].pop("int8", None)
        self_test["outputs"].pop("onnx_int8", None)
        self_test["atol"].pop("onnx_int8", None)
    int8 = card.setdefault("int8", {})
    put_key(int8.setdefault("decision_agreement_with_fp32", {}), "onnx_int8",
         modes[best]["agreement_with_fp32"])
    put_key(int8, "onnx_quantization_modes", {m: dict(sorted(v.items()))
                                           for m, v in sorted(modes.items())})
    put_key(int8, "onnx_mode_shipped", best if modes[best]["ok"] else None)
    put_key(int8, "onnx_mode_policy", ONNX_MODE_POLICY)
    put_key(int8, "onnx_rebuilt", {
        "by": "frugalai.learn.export.rewrite_int8_onnx, without retraining: every other file "
              "of the bundle is unchanged",
        "calibration": calibration_about,
        "calibration_check": ("DenseNet.quantize(these rows) gives "
                              + ("exactly" if scale_rtol == 0.0 else
                                 f"within {scale_rtol:g} relative (scales; zero points exactly)")
                              + " the int8 activation parameters stored in weights.npz (input "
                                "and every layer)"),
        "previous": previous})
    (bundle.path / CARD).write_text(json.dumps(card, indent=2) + "\n")
    if "decision_agreement_by_backend" in int8:  # the onnx figure changed with the file
        from frugalai.learn import agreement

        return agreement.record(bundle.path, eval_rows, str(int8.get("agreement_rows", "")))
    return verify_bundle(bundle.path).card
