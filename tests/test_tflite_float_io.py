"""int8 ``.tflite`` with float32 input and output, and the older int8-I/O form beside it.

The writer frames the int8 layers as TensorFlow's converter does by default: float32 input ->
QUANTIZE -> int8 FULLY_CONNECTED layers -> DEQUANTIZE -> float32 output. LiteRT then quantizes
the row in C, and the ``tflite`` backend runs an int8 file exactly as an fp32 one, with no
quantization in Python (benchmarks/fastpath.py: int8 no slower than fp32). Bundles deployed
before hold int8-I/O files (the caller quantizes): those still run, the row quantized in Python.

Agreement with the reference int8 (:meth:`DenseNet.forward_int8`): the integer layers are the
same arithmetic, the rounding of the input to int8 is not. :meth:`QParams.quantize` divides in
float64 by the unrounded scale and rounds half to even; LiteRT divides by the float32 scale the
file stores and rounds half away from zero (reference kernels; the XNNPACK delegate LiteRT
applies by default multiplies by the float32 reciprocal and rounds half to even). An input within
float rounding of a code boundary may get the neighbouring code. Besides, that delegate's int8
FULLY_CONNECTED requantizes in float32, not with TFLite's fixed-point multiplier, which on rare
accumulators gives the neighbouring code too (already so with the int8-I/O files). Measured on
x86_64 with ai-edge-litert 2.3.0, through the backend: 10^5 random rows spanning the input's
quantization range (and 10 % of them beyond it, saturating): 3 rows differ for
coastal-submersion (2 inputs on a code boundary, 1 in the delegate's layers), 1 for
energy-anomaly (an input on a code boundary), each by one output step; the self-test vectors:
none. Rows made only of
near-ties (``(k + 1/2) * scale``) differ most of the time, by up to 5 output steps (coastal, 9
inputs each one code off): real readings almost never sit there, and the test below pins that
the input rounding is the whole difference (LiteRT's reference kernels == the reference integer
core fed LiteRT's input codes, bit for bit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tflite_helpers import int8_io_bundle

from frugalai.learn.tflite_writer import dense_to_tflite
from frugalai.runtime import load_model, runtime_available, self_test, verify_bundle
from frugalai.runtime.dense import DenseNet, code_bounds
from frugalai.runtime.model import shipped_models_dir

MODELS = shipped_models_dir()
SHIPPED = ("energy-anomaly", "coastal-submersion")

pytestmark = pytest.mark.skipif(runtime_available("tflite") is not None,
                                reason=f"tflite backend: {runtime_available('tflite')}")


def _net(name: str) -> DenseNet:
    return DenseNet.load(MODELS / name / "weights.npz")


def _random_rows(net: DenseNet, n: int, seed: int) -> np.ndarray:
    """Rows spanning the input's int8 range; one in ten from twice that range (clipped)."""
    q = net.in_q
    assert q is not None
    lo, hi = q.scale * (-128 - q.zero_point), q.scale * (127 - q.zero_point)
    rng = np.random.default_rng(seed)
    X = rng.uniform(lo, hi, size=(n, net.n_inputs))
    X[: n // 10] = rng.uniform(2 * lo - 1, 2 * hi + 1, size=(n // 10, net.n_inputs))
    return X.astype(np.float32)


def _near_tie_rows(net: DenseNet, n: int, seed: int) -> np.ndarray:
    """Rows whose every value is the float32 nearest a half-code ``(k + 1/2) * scale``."""
    q = net.in_q
    assert q is not None
    k = np.random.default_rng(seed).integers(-128 - q.zero_point, 127 - q.zero_point,
                                             size=(n, net.n_inputs))
    return ((k + 0.5) * q.scale).astype(np.float32)


def _invoke(interpreter: Any, X: np.ndarray) -> np.ndarray:
    i = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(i, list(X.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(i, X)
    interpreter.invoke()
    return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_int8_tflite_is_the_writers_float_io_form(name: str) -> None:
    tflite = pytest.importorskip("tflite", reason="the 'train' extra (tflite) is not installed")
    net = _net(name)
    data = (MODELS / name / "model.int8.tflite").read_bytes()
    assert data == dense_to_tflite(net, int8=True)  # rebuilt from weights.npz, nothing else
    model = tflite.Model.GetRootAsModel(data, 0)
    graph = model.Subgraphs(0)
    codes = [model.OperatorCodes(graph.Operators(k).OpcodeIndex()).BuiltinCode()
             for k in range(graph.OperatorsLength())]
    op = tflite.BuiltinOperator
    assert codes == [op.QUANTIZE] + [op.FULLY_CONNECTED] * len(net.layers) + [op.DEQUANTIZE]
    f32, i8 = tflite.TensorType.FLOAT32, tflite.TensorType.INT8
    assert graph.Tensors(graph.Inputs(0)).Type() == f32
    assert graph.Tensors(graph.Outputs(0)).Type() == f32
    quantized = graph.Tensors(graph.Operators(0).Outputs(0))
    assert quantized.Type() == i8
    assert net.in_q is not None
    assert quantized.Quantization().Scale(0) == np.float32(net.in_q.scale)
    assert quantized.Quantization().ZeroPoint(0) == net.in_q.zero_point
    be = load_model(MODELS / name, "tflite", "int8").backend
    assert be.info()["io"] == "float32"
    assert be._bounds is None and be._out_table is None  # nothing quantized in Python


@pytest.mark.parametrize("name", SHIPPED)
def test_float_io_int8_is_the_reference_on_the_self_test_vectors(name: str) -> None:
    model = load_model(MODELS / name, "tflite", "int8")
    vectors = model.card["self_test"]
    S = np.asarray(vectors["inputs"], dtype=np.float32)
    got = model.raw_many(S)
    assert np.array_equal(got, _net(name).forward_int8(S))
    assert np.array_equal(got, np.asarray(vectors["outputs"]["int8"], dtype=np.float32))
    for x, want in zip(S, got):
        assert np.array_equal(model.raw_one(x), want)
    assert self_test(MODELS / name, "tflite")["int8"]["max_abs_error"] == 0.0


@pytest.mark.parametrize(("name", "max_rows"), [("energy-anomaly", 5), ("coastal-submersion", 10)])
def test_float_io_int8_agrees_with_the_reference_on_random_rows(name: str, max_rows: int) -> None:
    """Measured 1 (energy) and 3 (coastal) rows of 10^5, one output step each: bounds 5 and 10
    leave room for another LiteRT build, not for a systematic difference."""
    net = _net(name)
    model = load_model(MODELS / name, "tflite", "int8")
    X = _random_rows(net, 100_000, seed=0)
    got, want = model.raw_many(X), net.forward_int8(X)
    assert got.dtype == np.float32
    differ = np.flatnonzero(np.any(got != want, axis=1))
    assert len(differ) <= max_rows, len(differ)
    assert np.abs(got - want).max() <= 1.01 * net.out_q[-1].scale
    # Each differing row has an input within float rounding of a code boundary, or is one
    # where LiteRT's layers themselves differ: the same row, its input quantized by the
    # reference, through the int8-I/O form of the same layers.
    q = net.in_q
    assert q is not None
    bounds = code_bounds(q.quantize)
    from ai_edge_litert.interpreter import Interpreter

    int8_io = Interpreter(model_content=dense_to_tflite(net, int8=True, float_io=False))
    layers = net.out_q[-1].dequantize(_invoke(int8_io, q.quantize(X[differ])))
    for k, r in enumerate(differ):
        gap = np.abs(X[r][:, None] - bounds[None, :]).min()
        assert gap <= 1e-5 * q.scale or np.any(layers[k] != want[r]), (r, gap)
    for x, row in zip(X[:2000], got[:2000]):  # one row at a time: the same bits as the batch
        assert np.array_equal(model.raw_one(x), row)


@pytest.mark.parametrize("name", SHIPPED)
def test_the_input_rounding_is_the_whole_difference(name: str) -> None:
    """LiteRT's reference kernels on the float-I/O file == the reference integer core fed the
    codes LiteRT's QUANTIZE gives (float32 ``x / scale``, half away from zero), bit for bit,
    on random rows and on near-tie rows (where the two roundings part most)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    net = _net(name)
    q = net.in_q
    assert q is not None
    bounds = code_bounds(q.quantize)
    it = Interpreter(model_content=dense_to_tflite(net, int8=True),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    for X in (_random_rows(net, 20_000, seed=1), _near_tie_rows(net, 20_000, seed=2)):
        v = (X / np.float32(q.scale)).astype(np.float64)  # float32 division, exact widening
        codes = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + q.zero_point, -128, 127)
        codes = codes.astype(np.int64)
        # float32 inputs the reference quantizes to exactly those codes
        X_same_codes = np.where(codes == -128, np.float32(-np.inf),
                                bounds[np.clip(codes + 127, 0, 254)]).astype(np.float32)
        assert np.array_equal(q.quantize(X_same_codes), codes)
        assert np.array_equal(_invoke(it, X), net.forward_int8(X_same_codes))
    ties = _near_tie_rows(net, 20_000, seed=2)
    assert np.any(_invoke(it, ties) != net.forward_int8(ties))  # the rows do exercise ties


@pytest.mark.parametrize("name", SHIPPED)
def test_float_io_int8_batches_give_the_rows_one_by_one_results(name: str) -> None:
    be = load_model(MODELS / name, "tflite", "int8").backend
    X = _random_rows(_net(name), 300, seed=3)
    one_by_one = np.stack([be.predict_one(r) for r in X])
    for n in (300, 7, 300, 2, 1):
        assert np.array_equal(be.predict_many(X[:n]), one_by_one[:n]), n
    be.max_batch = 64
    assert np.array_equal(be.predict_many(X), one_by_one)


@pytest.mark.parametrize("name", SHIPPED)
def test_int8_io_bundles_deployed_before_still_run(name: str, tmp_path: Path) -> None:
    """The older form: int8 input/output tensors, the row quantized here (code-boundary
    lookup) and the output dequantized by a table; the one-row path gives the bits of the
    formula it replaces, batches those of rows one by one, self-test within the card's atol."""
    bundle = int8_io_bundle(name, tmp_path)
    verify_bundle(bundle)
    model = load_model(bundle, "tflite", "int8")
    be = model.backend
    assert be.info()["io"] == "int8" and be._bounds is not None
    assert self_test(bundle, "tflite")["int8"]["max_abs_error"] <= \
        model.card["self_test"]["atol"]["int8"]
    net = _net(name)
    X = _random_rows(net, 20_000, seed=4)
    batch = model.raw_many(X)
    assert np.abs(batch - net.forward_int8(X)).max() <= 1.01 * net.out_q[-1].scale
    for x, row in zip(X[:1000], batch[:1000]):
        v = x.reshape(1, -1)
        be._it.set_tensor(be._in, be._quantize_in(v))
        be._it.invoke()
        formula = be._dequantize_out(be._it.get_tensor(be._out)[0])
        fast = model.raw_one(x)
        assert np.array_equal(fast, formula) and np.array_equal(fast, row)


def test_rewriting_an_int8_io_bundle_gives_the_shipped_bundle(tmp_path: Path) -> None:
    """rewrite_int8_tflite, which rewrote the shipped bundles, on a bundle in the older form:
    the shipped file and card back, byte for byte; a signed card is refused."""
    from frugalai.errors import ModelError
    from frugalai.learn.export import rewrite_int8_tflite

    for name in SHIPPED:
        bundle = int8_io_bundle(name, tmp_path)
        assert (bundle / "model.int8.tflite").read_bytes() != \
            (MODELS / name / "model.int8.tflite").read_bytes()
        rewrite_int8_tflite(bundle)
        for f in ("model.int8.tflite", "card.json"):
            assert (bundle / f).read_bytes() == (MODELS / name / f).read_bytes(), (name, f)
    (bundle / "card.json.sig").write_bytes(b"\0" * 64)
    with pytest.raises(ModelError, match="signed card"):
        rewrite_int8_tflite(bundle)


def test_export_writes_the_float_io_form(tmp_path: Path) -> None:
    """A bundle trained and exported now (frugalai train -> export_bundle) ships it too."""
    pytest.importorskip("onnx", reason="the 'train' extra (onnx) is not installed")
    from ai_edge_litert.interpreter import Interpreter

    from frugalai.learn.export import export_bundle
    from frugalai.runtime.dense import Layer

    rng = np.random.default_rng(6)
    net = DenseNet((Layer(rng.normal(size=(5, 8)).astype(np.float32),
                          rng.normal(size=8).astype(np.float32), "relu"),
                    Layer(rng.normal(size=(8, 2)).astype(np.float32),
                          rng.normal(size=2).astype(np.float32))))
    X = rng.normal(size=(3000, 5)).astype(np.float32)
    card = export_bundle(tmp_path, net, X, X, lambda raw: raw[:, 0] > raw[:, 1],
                         {"name": "t-float-io", "task": "classification"},
                         min_agreement=0.9, max_rel_error=0.2)
    assert card["artifacts"]["tflite"]["int8"] == "model.int8.tflite"
    it = Interpreter(model_path=str(tmp_path / "model.int8.tflite"))
    assert it.get_input_details()[0]["dtype"] == np.float32
    assert it.get_output_details()[0]["dtype"] == np.float32
    qnet = DenseNet.load(tmp_path / "weights.npz")
    S = np.asarray(card["self_test"]["inputs"], dtype=np.float32)
    got = load_model(tmp_path, "tflite", "int8").raw_many(S)
    assert np.abs(got - qnet.forward_int8(S)).max() <= card["self_test"]["atol"]["int8"]
    assert json.loads((tmp_path / "card.json").read_text())["files"]["model.int8.tflite"]
