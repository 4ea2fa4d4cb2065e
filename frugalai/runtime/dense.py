"""A stack of dense layers in plain numpy: fp32 forward and TFLite-style int8 forward.

Both shipped models are small dense networks (a linear projection, a two-layer MLP), so one
description serves every backend: the ONNX and TFLite files are exported from it, and the
``reference`` backend runs it here with numpy alone (boards without a runtime wheel, e.g. 32-bit
ARM). The int8 arithmetic follows TFLite's full-integer scheme so that the reference int8 output
matches a ``.tflite`` run to within one quantization step:

* activations: per-tensor asymmetric int8, ``real = scale * (q - zero_point)``;
* weights: per-output-channel symmetric int8 (zero point 0);
* bias: int32 with scale ``input_scale * weight_scale[j]``;
* ``relu`` is fused (the output clamps at the zero point).

Classifiers end with logits; softmax/argmax are post-processing shared by every backend.

Saved as one ``.npz`` (``save``/``load``): keys ``n_layers``, ``act{i}``, ``W{i}`` (in x out),
``b{i}`` and, when quantized, ``in_scale``, ``in_zp``, ``out_scale{i}``, ``out_zp{i}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
ACTIVATIONS = ("linear", "relu")


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

    def _int8_layer(self, i: int, in_scale: float) -> tuple[npt.NDArray[np.int32], npt.NDArray[
            np.float64], npt.NDArray[np.int32]]:
        """Layer ``i``'s int32-widened weights, requantization multipliers and bias, computed
        once (a per-call recomputation would dominate the cost of such small layers)."""
        cache: dict[tuple[int, float], Any] = self.__dict__.setdefault("_int8_cache", {})
        key = (i, in_scale)
        if key not in cache:
            wq, w_scale, bq = self.int8_weights(i, in_scale)
            cache[key] = (wq.astype(np.int32), in_scale * w_scale.astype(np.float64), bq)
        out: tuple[npt.NDArray[np.int32], npt.NDArray[np.float64], npt.NDArray[np.int32]] = \
            cache[key]
        return out

    def forward_int8(self, x: npt.ArrayLike) -> F32:
        """Full-integer forward (TFLite arithmetic, float requantization); returns dequantized
        outputs of the last layer."""
        if self.in_q is None:
            raise ValueError("forward_int8 needs a quantized net (call quantize first)")
        q = self.in_q.quantize(np.asarray(x, dtype=np.float32).reshape(-1, self.n_inputs))
        qp = self.in_q
        for i, layer in enumerate(self.layers):
            wq, mult, bq = self._int8_layer(i, qp.scale)
            acc = (q.astype(np.int32) - qp.zero_point) @ wq + bq
            real = acc.astype(np.float64) * mult
            out = self.out_q[i]
            q = out.quantize(real)
            if layer.act == "relu":
                q = np.maximum(q, np.int8(out.zero_point))
            qp = out
        return qp.dequantize(q)

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
