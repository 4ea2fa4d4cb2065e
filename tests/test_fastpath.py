"""The one-row fast path gives the same bits as the vectorised path it replaces.

``BundleModel.predict_one`` / ``classify_one`` and every backend's ``predict_one`` avoid numpy
calls on one-row arrays (benchmarks/fastpath.py measures why). These tests run the old
formulas (numpy on a (1, n) array, as ``decide`` and ``predict_many`` do) beside the fast ones
on the shipped bundles and on random rows, and require equality, not closeness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalai.runtime import load_model, runtime_available
from frugalai.runtime.model import np_sum, shipped_models_dir

MODELS = shipped_models_dir()
SHIPPED = ("energy-anomaly", "coastal-submersion")
CASES = [(n, b, p) for n in SHIPPED for b in ("reference", "onnx", "tflite", "native")
         for p in ("fp32", "int8")]


def _rows(model: Any, n: int = 400, seed: int = 5) -> np.ndarray:
    width = len(model.card["self_test"]["inputs"][0])
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, width)) * rng.choice([0.1, 1.0, 4.0, 30.0], size=(n, 1))
    return np.concatenate([np.asarray(model.card["self_test"]["inputs"]), X])


def _old_raw_one(model: Any, x: np.ndarray) -> np.ndarray:
    """The one-row call as it was: numpy on a (1, n) float32 array."""
    be = model.backend
    v = np.asarray(x, dtype=np.float32).reshape(1, -1)
    if be.name == "reference":
        out = be.net.forward_int8(v) if be.precision == "int8" else be.net.forward(v)
        return np.asarray(out, dtype=np.float32)[0]
    if be.name == "onnx":
        return np.asarray(be._session.run(None, {be._input: v})[0], dtype=np.float32)[0]
    if be.name == "native":  # the C batch loop (test_native.py: that loop == reference int8)
        return np.asarray(be.predict_many(v), dtype=np.float32)[0]
    be._it.set_tensor(be._in, be._quantize_in(v))
    be._it.invoke()
    return be._dequantize_out(be._it.get_tensor(be._out)[0])


@pytest.mark.parametrize(("name", "backend", "precision"), CASES)
def test_one_row_fast_path_is_bit_identical(name: str, backend: str, precision: str) -> None:
    reason = runtime_available(backend)
    if reason:
        pytest.skip(reason)
    model = load_model(MODELS / name, backend, precision)
    for x in _rows(model):
        fast = model.raw_one(x)
        old = _old_raw_one(model, x)
        assert fast.dtype == np.float32 and np.array_equal(fast, old), (x, fast, old)
        want = model.decide(old.reshape(1, -1))[0]
        assert model.predict_one(x) == want
        if model.task == "classification":
            raw = old.astype(np.float64)
            e = np.exp(raw - raw.max())
            label, prob = model.classify_one(x)
            assert (label, prob) == (int(want), float(e[int(want)] / e.sum()))
        # predict_many of one row goes through the same fast path
        assert np.array_equal(model.raw_many(x.reshape(1, -1))[0], old)


@pytest.mark.parametrize("name", SHIPPED)
def test_plain_math_decision_equals_numpy_on_random_raw_outputs(name: str) -> None:
    """decide_one (plain math) == decide (numpy) bit for bit, including near-tie logits."""
    model = load_model(MODELS / name)
    width = len(model.card["self_test"]["outputs"]["fp32"][0])
    rng = np.random.default_rng(11)
    raw = rng.normal(size=(20000, width)) * rng.choice([0.01, 1.0, 10.0, 300.0],
                                                       size=(20000, 1))
    raw[:2000, -1] = raw[:2000, 0]  # ties
    raw = raw.astype(np.float32)
    want = model.decide(raw)
    for row, w in zip(raw, want):
        assert model.decide_one(row.tolist()) == w


@pytest.mark.parametrize("n", [1, 3, 7, 8, 9, 16, 17, 127, 128, 129, 300])
def test_np_sum_is_numpys_summation_order(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(50):
        x = rng.normal(size=n) * 10.0 ** rng.integers(-3, 4, size=n)
        assert np_sum(x.tolist()) == float(np.add.reduce(x))


def test_tflite_keeps_one_interpreter_per_recent_batch_size() -> None:
    reason = runtime_available("tflite")
    if reason:
        pytest.skip(reason)
    model = load_model(MODELS / "coastal-submersion", "tflite", "int8")
    be = model.backend
    X = _rows(model, 64)[:64].astype(np.float32)
    first = {n: be.predict_many(X[:n]) for n in (8, 64, 8, 32)}
    kept = dict(be._batch_its)
    assert sorted(kept) == [8, 32, 64]
    again = {n: be.predict_many(X[:n]) for n in (8, 64, 32)}
    assert all(be._batch_its[n] is kept[n] for n in kept)  # no re-allocation
    for n, y in again.items():
        assert np.array_equal(y, first[n])
    for n in (2, 3, 4, 5):  # past max_batch_sizes the least recently used goes
        be.predict_many(X[:n])
    assert len(be._batch_its) == be.max_batch_sizes


def test_energy_day_type_without_datetime_is_datetimes_including_its_rounding() -> None:
    from datetime import datetime, timezone

    from frugalai.features.slots import _weekend

    rng = np.random.default_rng(2)
    days = rng.integers(-20000, 40000, 3000) * 86400.0
    values = list(rng.uniform(-1e9, 3e9, 20000)) + [
        d + e for d in days for e in (-1e-6, -5e-7, -4e-7, 0.0, 4e-7, 5e-7, -0.3)]
    for v in values:
        assert _weekend(v) == int(datetime.fromtimestamp(v, tz=timezone.utc).weekday() >= 5), v


def test_tflite_int8_input_codes_by_lookup_equal_the_quantization_formula(tmp_path: Path
                                                                         ) -> None:
    """On int8-I/O files (deployed bundles; the shipped ones now quantize inside the graph)."""
    reason = runtime_available("tflite")
    if reason:
        pytest.skip(reason)
    from tflite_helpers import int8_io_bundle

    for name in SHIPPED:
        be = load_model(int8_io_bundle(name, tmp_path), "tflite", "int8").backend
        rng = np.random.default_rng(4)
        v = (rng.normal(size=400_000) * rng.choice([0.01, 1.0, 5.0, 40.0], 400_000))
        b = be._bounds
        v = np.concatenate([v.astype(np.float32), b, np.nextafter(b, np.float32(-np.inf)),
                            np.nextafter(b, np.float32(np.inf)),
                            np.float32([np.inf, -np.inf, 0.0, -0.0, 3e38, -3e38])])
        got = (np.searchsorted(b, v, side="right") - 128).astype(np.int8)
        with np.errstate(over="ignore"):  # 3e38 / scale: inf, clipped to 127 as intended
            want = be._quantize_in(v)
        assert np.array_equal(got, want), name


@pytest.mark.parametrize("name", SHIPPED)
def test_reference_int8_one_row_equals_forward_int8_on_hostile_rows(name: str) -> None:
    """The reference int8 one-row path (integer steps rearranged on preallocated buffers)
    gives forward_int8's bits on 20,000 rows spanning every input code, past both ends of the
    int8 range, and on rows holding NaN or an infinity (those take forward_int8 itself)."""
    model = load_model(MODELS / name, "reference", "int8")
    net = model.backend.net
    assert net.in_q is not None
    rng = np.random.default_rng(16)
    lo = net.in_q.scale * (-128 - net.in_q.zero_point)
    hi = net.in_q.scale * (127 - net.in_q.zero_point)
    X = rng.uniform(lo - 0.2 * (hi - lo), hi + 0.2 * (hi - lo), size=(20000, net.n_inputs))
    X[:200, 0] = np.nan
    X[200:300, -1] = np.inf
    X[300:400, 1] = -np.inf
    X[400:450] *= 1e30
    X[450:500] *= 1e37  # float32 sum overflows: forward_int8 itself
    for x in X:
        fast = model.backend.predict_one(x)
        want = net.forward_int8(x.reshape(1, -1))[0]
        assert fast.dtype == want.dtype and np.array_equal(fast, want), x
