"""Write a :class:`~frugalai.runtime.dense.DenseNet` as ONNX, and its int8 variants.

The graph is MatMul + Add (+ Relu) per layer, input ``x`` (n, inputs) float32, output ``y``.
It is written with ``onnx.helper`` from the same weights the reference backend runs, so every
backend computes the same function (skl2onnx would add the sklearn-specific pre/post-processing,
e.g. the classifier's softmax and label output, that here is shared numpy post-processing).

int8 variants come from ``onnxruntime.quantization``: static (calibrated on training rows) in
QDQ and QOperator formats, and dynamic. :func:`quantize_all` writes the three so the training
report can compare them. Dynamic quantization measures the activation range of the batch it is
given at run time (``DynamicQuantizeLinear``), so a row's output depends on the other rows of
its batch; :func:`batch_dependence` measures that (a gateway scores one reading at a time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalai.runtime.dense import DenseNet

OPSET = 17


def dense_to_onnx(net: DenseNet, path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    h = "x"
    for i, layer in enumerate(net.layers):
        inits.append(numpy_helper.from_array(layer.W.astype(np.float32), f"W{i}"))
        inits.append(numpy_helper.from_array(layer.b.astype(np.float32), f"b{i}"))
        last = i == len(net.layers) - 1
        mm, add = f"mm{i}", ("y" if last and layer.act == "linear" else f"add{i}")
        nodes.append(helper.make_node("MatMul", [h, f"W{i}"], [mm], name=f"MatMul{i}"))
        nodes.append(helper.make_node("Add", [mm, f"b{i}"], [add], name=f"Add{i}"))
        h = add
        if layer.act == "relu":
            out = "y" if last else f"relu{i}"
            nodes.append(helper.make_node("Relu", [add], [out], name=f"Relu{i}"))
            h = out
    graph = helper.make_graph(
        nodes, "frugalai_dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, net.n_inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, net.n_outputs])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="frugalai")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


class _Reader:
    """All calibration rows, in batches (the graph's batch dimension is free)."""

    def __init__(self, rows: npt.NDArray[np.floating], batch: int = 1024) -> None:
        x = np.asarray(rows, dtype=np.float32)
        self._it = iter([{"x": x[i:i + batch]} for i in range(0, len(x), batch)])

    def get_next(self) -> Any:
        return next(self._it, None)


def quantize_all(fp32_path: Path, calibration: npt.NDArray[np.floating], out_dir: Path
                 ) -> dict[str, Path]:
    """Write ``static_qdq``, ``static_qoperator`` and ``dynamic`` int8 variants; return paths."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    out = {}
    for name, fmt in (("static_qdq", QuantFormat.QDQ), ("static_qoperator", QuantFormat.QOperator)):
        path = out_dir / f"{fp32_path.stem}.{name}.onnx"
        quantize_static(str(fp32_path), str(path), _Reader(calibration), quant_format=fmt,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        per_channel=True, calibrate_method=CalibrationMethod.MinMax)
        out[name] = path
    path = out_dir / f"{fp32_path.stem}.dynamic.onnx"
    quantize_dynamic(str(fp32_path), str(path), weight_type=QuantType.QInt8)
    out["dynamic"] = path
    return out


def batch_dependence(path: Path, rows: npt.NDArray[np.floating]) -> float:
    """Largest absolute difference between the outputs of ``rows`` run one at a time and the
    same rows run as one batch. 0.0 for a model whose rows are independent of their batch
    (static quantization: every scale is a constant of the graph); a dynamic-quantized model
    takes its activation scale from the whole batch and gives another answer to a row alone."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.asarray(rows, dtype=np.float32)
    batch = np.asarray(sess.run(None, {"x": x})[0])
    alone = np.concatenate([np.asarray(sess.run(None, {"x": x[i:i + 1]})[0])
                            for i in range(len(x))])
    return float(np.abs(batch - alone).max()) if len(x) else 0.0


def dense_to_onnx_int8_exact(net: DenseNet, path: Path) -> None:
    """Write the quantized ``net`` (``DenseNet.quantize`` done) as an ONNX graph of integer
    operators that computes :meth:`DenseNet.forward_int8` bit for bit: the reference, LiteRT
    and native arithmetic, so the onnx backend's int8 decisions are those of the others.

    Why not onnxruntime's own quantizer: it calibrates its own scales and requantizes each
    layer in float (``QLinearMatMul``), so its int8 decisions drift from the reference's: on
    held-out years the coastal bundle's onnx int8 agreed with fp32 on 99.497 % of the hours,
    the three others on 99.605 %. Here every step is the reference's: the input code is
    ``clip(round_half_even(float64(x) / scale) + zp)`` (``Cast``/``Div``/``Round`` in double),
    each layer is an int64 ``MatMul`` of codes minus the zero point by the int8 weights, the
    int32 bias, TFLite's fixed-point multiplier, one rounding term and an arithmetic right
    shift (an offset of 2**62 makes it a logical ``BitShift`` on uint64, exact while the
    product stays under 2**62: checked here), then the output zero point and the clamp.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if net.in_q is None:
        raise ValueError("dense_to_onnx_int8_exact needs a quantized net (call quantize first)")
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: npt.ArrayLike, dtype: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    q = net.in_q
    h = node("Cast", ["x"], "x_f64", to=TensorProto.DOUBLE)
    h = node("Div", [h, const("in_scale", q.scale, np.float64)], "x_div")
    h = node("Round", [h], "x_round")
    h = node("Add", [h, const("in_zp", float(q.zero_point), np.float64)], "x_zp")
    h = node("Clip", [h, const("q_lo", -128.0, np.float64), const("q_hi", 127.0, np.float64)],
             "x_clip")
    h = node("Cast", [h], "x_code", to=TensorProto.INT64)
    offset = np.int64(1) << 62
    acc_bound = 0
    for i, layer in enumerate(net.layers):
        out = net.out_q[i]
        wq, bq, mult, total, rounding = net.int8_layer(i, q.scale, out.scale)
        worst = int((255 * np.abs(wq).sum(axis=0) + np.abs(bq)).max()) * int(mult.max())
        acc_bound = max(acc_bound, worst + int(rounding.max()))
        w = node("Cast", [const(f"W{i}_q", wq, np.int8)], f"W{i}_i64", to=TensorProto.INT64)
        h = node("Sub", [h, const(f"zp_in{i}", q.zero_point, np.int64)], f"h{i}_centred")
        h = node("MatMul", [h, w], f"acc{i}")
        h = node("Add", [h, const(f"b{i}_q", bq, np.int64)], f"acc{i}_b")
        h = node("Mul", [h, const(f"mult{i}", mult, np.int64)], f"acc{i}_m")
        h = node("Add", [h, const(f"round{i}", rounding + offset, np.int64)], f"acc{i}_r")
        h = node("Cast", [h], f"acc{i}_u", to=TensorProto.UINT64)
        h = node("BitShift", [h, const(f"shift{i}", total, np.uint64)], f"acc{i}_s",
                 direction="RIGHT")
        h = node("Cast", [h], f"acc{i}_s64", to=TensorProto.INT64)
        h = node("Sub", [h, const(f"unoffset{i}", (offset >> total) - out.zero_point,
                                  np.int64)], f"acc{i}_zp")
        lo = out.zero_point if layer.act == "relu" else -128
        h = node("Clip", [h, const(f"lo{i}", lo, np.int64), const(f"hi{i}", 127, np.int64)],
                 f"code{i}")
        q = out
    if acc_bound >= int(offset):
        raise ValueError(f"int8 accumulator bound {acc_bound} reaches 2**62: no exact graph")
    h = node("Cast", [h], "y_f32", to=TensorProto.FLOAT)
    h = node("Sub", [h, const("out_zp", float(q.zero_point), np.float32)], "y_centred")
    node("Mul", [h, const("out_scale", q.scale, np.float32)], "y")
    graph = helper.make_graph(
        nodes, "frugalai_dense_int8_exact",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, net.n_inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, net.n_outputs])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="frugalai")
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
