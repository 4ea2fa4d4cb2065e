"""The ``native`` backend: generated C99, compiled here, bit-exact with the reference int8.

The int8 outputs must equal the ``reference`` backend's (the same integer arithmetic: TFLite's
fixed-point requantization) bit for bit, on the cards' self-test vectors and on 10^5 random
inputs; the reference's int8 is itself checked against LiteRT's reference kernels. fp32 (float
accumulators in a different order than a BLAS) is compared within float rounding.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalai.runtime import load_model, runtime_available, self_test, verify_bundle
from frugalai.runtime.dense import DenseNet
from frugalai.runtime.model import shipped_models_dir
from frugalai.runtime.native import generate_header, memory, unavailable_reason, update_card

MODELS = shipped_models_dir()
SHIPPED = ("energy-anomaly", "coastal-submersion")

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=f"native backend: {unavailable_reason()}")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRUGALAI_NATIVE_CACHE", str(tmp_path_factory.getbasetemp() / "native"))


def _random_rows(n_inputs: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_inputs)) * rng.choice([0.05, 0.5, 1.0, 3.0, 20.0], size=(n, 1))
    X[: n // 20] = rng.uniform(-300, 300, size=(n // 20, n_inputs))  # saturating inputs
    return X


@pytest.mark.parametrize("name", SHIPPED)
def test_native_int8_is_reference_int8_bit_for_bit(name: str) -> None:
    ref = load_model(MODELS / name, "reference", "int8")
    nat = load_model(MODELS / name, "native", "int8")
    vectors = np.asarray(ref.card["self_test"]["inputs"])
    assert np.array_equal(nat.raw_many(vectors), ref.raw_many(vectors))
    X = _random_rows(ref.backend.net.n_inputs, 100_000, seed=7)
    a, b = nat.raw_many(X), ref.raw_many(X)
    assert a.dtype == b.dtype == np.float32
    assert np.array_equal(a, b), int(np.sum(np.any(a != b, axis=1)))
    for x in X[:2000]:  # the one-row call too
        assert np.array_equal(nat.raw_one(x), ref.raw_one(x))
        assert nat.predict_one(x) == ref.predict_one(x)


@pytest.mark.parametrize("name", SHIPPED)
def test_reference_int8_is_litert_reference_kernels_bit_for_bit(name: str) -> None:
    """The integer arithmetic both share is TFLite's: LiteRT's reference kernels agree."""
    if runtime_available("tflite"):
        pytest.skip(str(runtime_available("tflite")))
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    net = DenseNet.load(MODELS / name / "weights.npz")
    X = _random_rows(net.n_inputs, 20_000, seed=3).astype(np.float32)
    from frugalai.learn.tflite_writer import dense_to_tflite

    # The integer layers alone: the int8-I/O form of the bundle's net (the shipped file
    # quantizes its float input in the graph, rounding as LiteRT does: tests/test_tflite_float_io.py).
    it = Interpreter(model_content=dense_to_tflite(net, int8=True, float_io=False),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.resize_tensor_input(it.get_input_details()[0]["index"], [len(X), net.n_inputs])
    it.allocate_tensors()
    assert net.in_q is not None
    it.set_tensor(it.get_input_details()[0]["index"], net.in_q.quantize(X))
    it.invoke()
    got = net.out_q[-1].dequantize(it.get_tensor(it.get_output_details()[0]["index"]))
    assert np.array_equal(got, net.forward_int8(X))


@pytest.mark.parametrize("name", SHIPPED)
def test_native_fp32_matches_reference_within_float_rounding(name: str) -> None:
    ref = load_model(MODELS / name, "reference", "fp32")
    nat = load_model(MODELS / name, "native", "fp32")
    X = _random_rows(ref.backend.net.n_inputs, 20_000, seed=9)
    a, b = nat.raw_many(X), ref.raw_many(X)
    assert np.allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))
    assert self_test(MODELS / name, "native")["rows"] >= 4


def test_library_is_cached_by_content(tmp_path: Path) -> None:
    first = load_model(MODELS / "coastal-submersion", "native", "int8").backend.library
    again = load_model(MODELS / "coastal-submersion", "native", "fp32").backend.library
    assert first == again and Path(first).is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_card_native_entry_is_what_the_generator_gives(name: str, tmp_path: Path) -> None:
    card = verify_bundle(MODELS / name).card
    net = DenseNet.load(MODELS / name / "weights.npz")
    assert card["native"]["int8"] == memory(net)["int8"]
    assert card["native"]["fp32"] == memory(net)["fp32"]
    assert card["artifacts"]["native"] == card["artifacts"]["reference"]
    # update_card is idempotent and keeps the sha256 bookkeeping (the copy still verifies).
    copy = tmp_path / name
    shutil.copytree(MODELS / name, copy)
    update_card(copy)
    assert json.loads((copy / "card.json").read_text()) == card
    verify_bundle(copy)


def test_header_declares_no_heap_and_const_weights() -> None:
    net = DenseNet.load(MODELS / "coastal-submersion" / "weights.npz")
    header = generate_header(net, "coastal-submersion")
    assert "malloc(" not in header and "static " in header
    assert "static const int8_t fa_coastal_submersion_qw0" in header
    assert header == generate_header(net, "coastal-submersion")  # deterministic


def test_a_cache_others_can_write_is_refused(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalai.errors import ModelError

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("FRUGALAI_NATIVE_CACHE", str(shared))
    with pytest.raises(ModelError, match="not a private directory"):
        load_model(MODELS / "energy-anomaly", "native", "int8")


def _both_calls(name: str, precision: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The same bundle loaded twice: one row through the extension, one through ctypes."""
    from frugalai.runtime.native_call import headers

    if isinstance(headers(), str):
        pytest.skip(f"the direct call needs the CPython headers: {headers()}")
    ext = load_model(MODELS / name, "native", precision)
    monkeypatch.setenv("FRUGALAI_NATIVE_CALL", "ctypes")
    ct = load_model(MODELS / name, "native", precision)
    monkeypatch.delenv("FRUGALAI_NATIVE_CALL")
    assert (ext.backend.call, ct.backend.call) == ("extension", "ctypes")
    assert ct.info()["call_note"] == "FRUGALAI_NATIVE_CALL=ctypes"
    return ext, ct


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("name", SHIPPED)
def test_direct_call_gives_the_ctypes_bits(name: str, precision: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ext, ct = _both_calls(name, precision, monkeypatch)
    n = ext.backend._n_in
    X = _random_rows(n, 20_000, seed=9)
    X[:50, 0] = np.nan
    X[50:100, -1] = np.inf
    for x in X:
        a, b = ext.raw_one(x), ct.raw_one(x)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=True), x
    # what a caller may hand it: a list, float32, a (1, n) row, a strided view
    x = X[123]
    want = ct.raw_one(x)
    wide = np.zeros((2, 2 * n))
    wide[0, ::2] = x
    for given in (x.tolist(), x.astype(np.float32), x.reshape(1, -1), wide[0, ::2]):
        got = ext.raw_one(given)
        assert np.array_equal(got, ct.raw_one(given)), type(given)
    assert np.array_equal(ext.raw_one(x.astype(np.float32)), ct.raw_one(x.astype(np.float32)))
    assert np.array_equal(ext.raw_one(x), want)
    out = ext.raw_one(x)
    out[:] = 99.0  # the caller owns its array: the next call is not affected
    assert np.array_equal(ext.raw_one(x), want)
    with pytest.raises(ValueError, match=f"takes {n} inputs, got {n + 1}"):
        ext.raw_one(np.zeros(n + 1))
    with pytest.raises((ValueError, TypeError)):
        ext.raw_one("not a row")


def test_direct_calls_from_two_threads_do_not_share_state(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """Two flows on one bundle: one library, two callers, no shared buffer."""
    import threading

    ext, ct = _both_calls("coastal-submersion", "int8", monkeypatch)
    other = load_model(MODELS / "coastal-submersion", "native", "int8")
    X = _random_rows(ext.backend._n_in, 5_000, seed=3)
    want = ct.raw_many(X)
    bad: list[int] = []

    def work(model: Any, rows: np.ndarray) -> None:
        for _ in range(3):
            for k, r in enumerate(rows):
                if not np.array_equal(model.raw_one(r), want[k]):
                    bad.append(k)

    threads = [threading.Thread(target=work, args=(m, X)) for m in (ext, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


def test_no_headers_or_a_failing_build_falls_back_to_ctypes_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalai.runtime import native_call

    # a compiler that fails (a real process, not a stub of the build)
    reason = native_call.caller_factory("/bin/false", tmp_path)
    assert isinstance(reason, str)
    assert "failed" in reason and "ctypes" in reason
    # no Python.h: what a Raspberry Pi OS without python3-dev has
    monkeypatch.setattr(native_call.sysconfig, "get_paths",
                        lambda: {"include": str(tmp_path / "nowhere")})
    m = load_model(MODELS / "energy-anomaly", "native", "int8")
    assert m.backend.call == "ctypes"
    assert "python3-dev" in m.info()["call_note"]
    ref = load_model(MODELS / "energy-anomaly", "reference", "int8")
    x = _random_rows(m.backend._n_in, 1, seed=1)[0]
    assert np.array_equal(m.raw_one(x), ref.raw_one(x))


@pytest.mark.parametrize("name", SHIPPED)
def test_native_int8_batches_are_the_one_row_bits_at_the_edges(name: str) -> None:
    """The batched int8 path (blocks of rows, vectorised, rint by the 1.5 x 2^52 trick) against
    the reference and the one-row C call: near-ties of the input quantization, NaN, infinities,
    huge and tiny values, -0.0, and batch sizes around the block length."""
    from frugalai.runtime.native import INT8_BLOCK

    ref = load_model(MODELS / name, "reference", "int8")
    nat = load_model(MODELS / name, "native", "int8")
    net = ref.backend.net
    scale, zp = net.in_q.scale, net.in_q.zero_point
    ties = np.array([(k + 0.5 - zp) * scale for k in range(-140, 140)], np.float32)
    near = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)),
                           np.nextafter(ties, np.float32(-np.inf))])
    odd = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 1e30, -1e30, 0.0, -0.0, 1e-310,
                    -1e-310, 2.0**51, -(2.0**51), 2.0**53 + 1, 127 * scale, -128 * scale])
    cells = np.concatenate([near.astype(np.float64), odd])
    rng = np.random.default_rng(11)
    X = rng.choice(cells, size=(4 * INT8_BLOCK + 3, net.n_inputs))
    # NaN: the reference leaves it to numpy's cast of NaN to int8 (unspecified), the C says
    # -128; the flows never score a NaN (a window without a value is skipped). So NaN rows
    # are held to the one-row C call, the others to the reference too.
    a = nat.raw_many(X)
    one = np.array([nat.raw_one(x) for x in X])
    assert np.array_equal(a, one), int(np.sum(np.any(a != one, axis=1)))
    finite = ~np.isnan(X).any(axis=1)
    b = ref.raw_many(X[finite])
    assert np.array_equal(a[finite], b), int(np.sum(np.any(a[finite] != b, axis=1)))
    for n in (1, INT8_BLOCK - 1, INT8_BLOCK, INT8_BLOCK + 1, 2 * INT8_BLOCK + 5):
        assert np.array_equal(nat.raw_many(X[:n]), one[:n]), n
