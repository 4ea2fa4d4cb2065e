"""A stack of dense layers in plain numpy: fp32 forward and TFLite-style int8 forward.

Both shipped models are small dense networks (a linear projection, a two-layer MLP), so one
description serves every backend: the ONNX and TFLite files are exported from it, and the
``reference`` backend runs it here with numpy alone (boards without a runtime wheel, e.g. 32-bit
ARM). The int8 arithmetic is TFLite's full-integer scheme, integer-only like TFLite's kernels, so
that the reference int8 output matches a ``.tflite`` run (and the generated C of the ``native``
backend, :mod:`frugalai.runtime.native`, bit for bit):

* activations: per-tensor asymmetric int8, ``real = scale * (q - zero_point)``;
* weights: per-output-channel symmetric int8 (zero point 0);
* bias: int32 with scale ``input_scale * weight_scale[j]``;
* ``relu`` is fused (the output clamps at the zero point);
* requantization of the int32 accumulator by a fixed-point multiplier and shift per output
  channel, computed as TFLite computes them (:func:`quantize_multiplier` of
  ``in_scale * w_scale[j] / out_scale`` with each scale rounded to float32 as a ``.tflite``
  stores it) and applied with one rounding (:func:`multiply_by_quantized_multiplier`, TFLite's
  ``TFLITE_SINGLE_ROUNDING``): bit-exact with LiteRT's reference kernels
  (``OpResolverType.BUILTIN_REF``, tests/test_native.py).

Classifiers end with logits; softmax/argmax are post-processing shared by every backend.

Saved as one ``.npz`` (``save``/``load``): keys ``n_layers``, ``act{i}``, ``W{i}`` (in x out),
``b{i}`` and, when quantized, ``in_scale``, ``in_zp``, ``out_scale{i}``, ``out_zp{i}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
ACTIVATIONS = ("linear", "relu")


I64 = npt.NDArray[np.int64]


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's ``QuantizeMultiplier``: ``real ~= multiplier * 2**(shift - 31)``, multiplier a
    Q31 int32 in [2**30, 2**31) (0 for 0).

    >>> quantize_multiplier(0.5)
    (1073741824, 0)
    >>> quantize_multiplier(0.0)
    (0, 0)
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = math.floor(abs(q) * (1 << 31) + 0.5)  # std::round: half away from zero
    q_fixed = q_fixed if q >= 0 else -q_fixed
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:  # as TFLite: saturate instead of overflowing the left shift
        return (1 << 31) - 1, 30
    return q_fixed, shift


def multiply_by_quantized_multiplier(acc: npt.NDArray[np.integer], multiplier: I64,
                                     shift: I64) -> I64:
    """TFLite's ``MultiplyByQuantizedMultiplier`` as LiteRT builds it (``TFLITE_SINGLE_ROUNDING``:
    one rounding, half up, of ``acc * multiplier / 2**(31 - shift)``), on int64 numpy arrays
    (``multiplier``/``shift`` broadcast per output channel); the exact integer result."""
    total = 31 - np.asarray(shift, dtype=np.int64)
    product = np.asarray(acc, dtype=np.int64) * multiplier + (np.int64(1) << (total - 1))
    return np.asarray(product >> total, dtype=np.int64)


def float32_scale(scale: float) -> float:
    """A scale as a ``.tflite`` stores it (float32), back as a Python float."""
    return float(np.float32(scale))


def code_bounds(quantize: Any) -> F32:
    """For a monotone float32 -> int8 quantizer: ``bounds[j]``, the smallest float32 whose code
    is at least ``j - 127`` (j = 0..254), found by bisection over the ordered float32 bit
    patterns with the quantizer itself; then ``code(v) = -128 + searchsorted(bounds, v,
    'right')`` for every non-NaN float32 ``v``, bit for bit (tests/test_fastpath.py). A NaN
    gives 127 (numpy's cast of NaN to int8 is undefined)."""
    def as_f32(key: npt.NDArray[np.int64]) -> F32:
        bits = np.where(key >= 0, key, (-key) | 0x80000000).astype(np.uint32)
        return bits.view(np.float32)

    want = np.arange(-127, 128, dtype=np.int64)
    lo = np.full(want.shape, -0x7F800000, np.int64)  # -inf: code -128
    hi = np.full(want.shape, 0x7F800000, np.int64)  # +inf: code 127
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = np.asarray(quantize(as_f32(mid)), dtype=np.int64) >= want
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    bounds = np.ascontiguousarray(as_f32(hi))
    if not np.all(np.diff(bounds) > 0):
        raise ValueError("quantization is not monotone")  # never for round/clip
    return bounds


@dataclass(frozen=True)
class QParams:
    """Per-tensor asymmetric int8 quantization of an activation."""

    scale: float
    zero_point: int

    def quantize(self, x: npt.NDArray[np.floating]) -> npt.NDArray[np.int8]:
        q = np.round(np.asarray(x, dtype=np.float64) / self.scale) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8)

    def dequantize(self, q: npt.NDArray[np.integer]) -> F32:
        return np.asarray(self.scale * (q.astype(np.float32) - np.float32(self.zero_point)),
                          dtype=np.float32)

    @classmethod
    def from_range(cls, lo: float, hi: float) -> QParams:
        """The int8 parameters covering [lo, hi] (widened to include 0, as TFLite needs)."""
        lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
        scale = (hi - lo) / 255.0 or 1.0
        zp = int(np.clip(round(-128 - lo / scale), -128, 127))
        return cls(scale, zp)


@dataclass(frozen=True)
class Layer:
    """``y = act(x @ W + b)``; W is (inputs, outputs)."""

    W: F32
    b: F32
    act: str = "linear"

    def __post_init__(self) -> None:
        if self.act not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.act!r}")


@dataclass(frozen=True)
class DenseNet:
    """Dense layers, with int8 parameters once :meth:`quantize` has been called."""

    layers: tuple[Layer, ...]
    in_q: Optional[QParams] = None
    out_q: tuple[QParams, ...] = field(default=())

    @property
    def n_inputs(self) -> int:
        return int(self.layers[0].W.shape[0])

    @property
    def n_outputs(self) -> int:
        return int(self.layers[-1].W.shape[1])

    @property
    def quantized(self) -> bool:
        return self.in_q is not None

    def forward(self, x: npt.ArrayLike, *, trace: bool = False) -> Union[F32, list[F32]]:
        """fp32 forward of a (n, inputs) batch; with ``trace`` every layer's output too."""
        h = np.asarray(x, dtype=np.float32).reshape(-1, self.n_inputs)
        outs = [h]
        for layer in self.layers:
            h = h @ layer.W + layer.b
            h = _activate(h, layer.act)
            outs.append(h)
        return outs if trace else h

    def quantize(self, calibration: npt.ArrayLike) -> DenseNet:
        """A copy with int8 activation ranges measured on ``calibration`` rows (static PTQ)."""
        trace = self.forward(calibration, trace=True)
        assert isinstance(trace, list)
        in_q = QParams.from_range(float(trace[0].min()), float(trace[0].max()))
        out_q = []
        for _layer, h in zip(self.layers, trace[1:]):
            out_q.append(QParams.from_range(float(h.min()), float(h.max())))
        return DenseNet(self.layers, in_q, tuple(out_q))

    def int8_weights(self, i: int, in_scale: float) -> tuple[npt.NDArray[np.int8], F32,
                                                            npt.NDArray[np.int32]]:
        """Layer ``i`` as TFLite stores it: int8 W (in x out), per-output scales, int32 bias."""
        layer = self.layers[i]
        w_scale = np.maximum(np.abs(layer.W).max(axis=0), 1e-12).astype(np.float32) / 127.0
        wq = np.clip(np.round(layer.W / w_scale), -127, 127).astype(np.int8)
        bq = np.round(layer.b / (in_scale * w_scale)).astype(np.int32)
        return wq, w_scale.astype(np.float32), bq

    def requantization(self, i: int, in_scale: float, out_scale: float
                       ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int32], I64, I64]:
        """Layer ``i``'s int8 weights (in x out), int32 bias, and per-channel fixed-point
        multipliers and shifts, as TFLite's FullyConnected computes them from the stored
        (float32) scales."""
        wq, w_scale, bq = self.int8_weights(i, in_scale)
        s_in, s_out = float32_scale(in_scale), float32_scale(out_scale)
        pairs = [quantize_multiplier(s_in * float(ws) / s_out) for ws in w_scale]
        mult = np.array([m for m, _ in pairs], dtype=np.int64)
        shift = np.array([s for _, s in pairs], dtype=np.int64)
        return wq, bq, mult, shift

    def int8_layer(self, i: int, in_scale: float, out_scale: float
                   ) -> tuple[I64, I64, I64, I64, I64]:
        """Layer ``i``'s int64-widened weights, bias, multipliers, total shifts and rounding
        terms, computed once (a per-call recomputation would dominate the cost of such small
        layers)."""
        cache: dict[tuple[int, float, float], Any] = self.__dict__.setdefault("_int8_cache", {})
        key = (i, in_scale, out_scale)
        if key not in cache:
            wq, bq, mult, shift = self.requantization(i, in_scale, out_scale)
            total = 31 - shift
            cache[key] = (wq.astype(np.int64), bq.astype(np.int64), mult, total,
                          np.int64(1) << (total - 1))
        out: tuple[I64, I64, I64, I64, I64] = cache[key]
        return out

    def input_code_bounds(self) -> F32:
        """``in_q.quantize`` as the 255 float32 boundaries between its codes (computed once):
        ``code = -128 + searchsorted(bounds, x, 'right')`` (:func:`code_bounds`)."""
        if self.in_q is None:
            raise ValueError("a float net has no input codes (call quantize first)")
        bounds: F32 | None = self.__dict__.get("_in_bounds")
        if bounds is None:
            bounds = self.__dict__["_in_bounds"] = code_bounds(self.in_q.quantize)
        return bounds

    def forward_int8(self, x: npt.ArrayLike) -> F32:
        """Full-integer forward (TFLite arithmetic, fixed-point requantization); returns
        dequantized outputs of the last layer. The requantization is
        :func:`multiply_by_quantized_multiplier`, done in place on int64 accumulators."""
        if self.in_q is None:
            raise ValueError("forward_int8 needs a quantized net (call quantize first)")
        v = np.asarray(x, dtype=np.float32).reshape(-1, self.n_inputs)
        h: I64 = np.searchsorted(self.input_code_bounds(), v, side="right")
        h -= 128
        if np.isnan(v).any():  # NaN has no code boundary: the formula's own (undefined) cast
            h = self.in_q.quantize(v).astype(np.int64)
        qp = self.in_q
        for i, layer in enumerate(self.layers):
            out = self.out_q[i]
            wq, bq, mult, total, rounding = self.int8_layer(i, qp.scale, out.scale)
            acc = np.matmul(h - qp.zero_point, wq)
            acc += bq
            acc *= mult
            acc += rounding
            acc >>= total
            acc += out.zero_point
            np.clip(acc, out.zero_point if layer.act == "relu" else -128, 127, out=acc)
            h = acc
            qp = out
        return qp.dequantize(h)

    def save(self, path: Union[str, Path]) -> None:
        arrays: dict[str, npt.NDArray[np.generic]] = {"n_layers": np.array(len(self.layers))}
        for i, layer in enumerate(self.layers):
            arrays[f"W{i}"] = layer.W.astype(np.float32)
            arrays[f"b{i}"] = layer.b.astype(np.float32)
            arrays[f"act{i}"] = np.array(layer.act)
        if self.in_q is not None:
            arrays["in_scale"] = np.array(self.in_q.scale)
            arrays["in_zp"] = np.array(self.in_q.zero_point)
            for i, q in enumerate(self.out_q):
                arrays[f"out_scale{i}"] = np.array(q.scale)
                arrays[f"out_zp{i}"] = np.array(q.zero_point)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle

    @classmethod
    def load(cls, path: Union[str, Path]) -> DenseNet:
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n_layers"])
            layers = tuple(Layer(z[f"W{i}"].astype(np.float32), z[f"b{i}"].astype(np.float32),
                                 str(z[f"act{i}"])) for i in range(n))
            if "in_scale" not in z:
                return cls(layers)
            in_q = QParams(float(z["in_scale"]), int(z["in_zp"]))
            out_q = tuple(QParams(float(z[f"out_scale{i}"]), int(z[f"out_zp{i}"]))
                          for i in range(n))
            return cls(layers, in_q, out_q)


def _activate(h: npt.NDArray[np.floating], act: str) -> F32:
    if act == "relu":
        return np.asarray(np.maximum(h, 0), dtype=np.float32)
    return np.asarray(h, dtype=np.float32)
