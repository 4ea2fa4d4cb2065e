"""Write a :class:`~frugalai.runtime.dense.DenseNet` as a ``.tflite`` flatbuffer, no TensorFlow.

The ``tflite`` package ships the schema's generated builder functions (``ModelStart``,
``TensorAddType``...). ``importlib.import_module("tflite.Model")`` gives the module with those
functions (``import tflite.Model`` would give the class of the same name).

fp32: FULLY_CONNECTED layers (fused RELU). Classifiers end with logits: softmax and argmax are
post-processing, done the same way for every backend.
int8: the same layers, full integer (per-channel int8 weights, int32 biases — the arithmetic
:meth:`DenseNet.forward_int8` reproduces), framed as TensorFlow's converter frames them by
default: float32 input -> QUANTIZE -> the int8 layers -> DEQUANTIZE -> float32 output. The
runtime then quantizes the input in C: a caller hands it the same float32 row as the fp32 file,
and int8 costs no more per call than fp32 (quantizing in Python cost more than the whole invoke).

``float_io=False`` writes the older form this module wrote first: int8 input and output tensors
carrying their scale and zero point, the caller quantizing. Bundles already deployed hold such
files; :class:`~frugalai.runtime.backends.TfliteBackend` runs both, and the tests write one this
way to keep that path tested.

Rounding of the input: TFLite's QUANTIZE rounds ``x / scale`` half away from zero with the
float32 scale the file stores, while :meth:`QParams.quantize` rounds ``x / scale`` half to even
in float64 with the unrounded scale; an input within about one float32 ulp of a code boundary
can get the neighbouring code (measured: tests/test_tflite_float_io.py).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from frugalai.runtime.dense import DenseNet, QParams

FLOAT32, INT32, INT8 = 0, 2, 9
FULLY_CONNECTED, DEQUANTIZE, QUANTIZE = 9, 6, 114
OPT_FULLY_CONNECTED, OPT_DEQUANTIZE, OPT_QUANTIZE = 8, 38, 89
#: operator versions as LiteRT's op version table gives them for these tensor types
#: (FULLY_CONNECTED int8 per-channel: 4 covers fp32 too; QUANTIZE float->int8 and DEQUANTIZE
#: int8->float: 2)
VERSIONS = {FULLY_CONNECTED: 4, QUANTIZE: 2, DEQUANTIZE: 2}
ACT_NONE, ACT_RELU = 0, 1


def _schema(name: str) -> Any:
    return importlib.import_module(f"tflite.{name}")


class _Graph:
    def __init__(self) -> None:
        import flatbuffers

        self.b = flatbuffers.Builder(1024)
        self.buffers: list[bytes] = [b""]  # buffer 0 is the empty sentinel
        self.tensors: list[dict[str, Any]] = []

    def tensor(self, name: str, shape: list[int], ttype: int, data: bytes = b"",
               quant: dict[str, Any] | None = None) -> int:
        buf = 0
        if data:
            self.buffers.append(data)
            buf = len(self.buffers) - 1
        self.tensors.append({"name": name, "shape": shape, "type": ttype, "buffer": buf,
                             "quant": quant})
        return len(self.tensors) - 1

    def _ivec(self, start: Any, values: list[int]) -> int:
        start(self.b, len(values))
        for v in reversed(values):
            self.b.PrependInt32(v)
        return int(self.b.EndVector())

    def _fvec(self, start: Any, values: list[float]) -> int:
        start(self.b, len(values))
        for v in reversed(values):
            self.b.PrependFloat32(v)
        return int(self.b.EndVector())

    def _lvec(self, start: Any, values: list[int]) -> int:
        start(self.b, len(values))
        for v in reversed(values):
            self.b.PrependInt64(v)
        return int(self.b.EndVector())

    def _tables(self, start: Any, offsets: list[int]) -> int:
        start(self.b, len(offsets))
        for o in reversed(offsets):
            self.b.PrependUOffsetTRelative(o)
        return int(self.b.EndVector())

    def finish(self, ops: list[tuple[int, list[int], list[int], int, int]], inputs: list[int],
               outputs: list[int], opcodes: list[int]) -> bytes:
        """ops: (opcode index, inputs, outputs, options type, fused activation or -1)."""
        b = self.b
        M, SG, T, Q, Op = (_schema(n) for n in ("Model", "SubGraph", "Tensor",
                                                 "QuantizationParameters", "Operator"))
        Buf, OC = _schema("Buffer"), _schema("OperatorCode")
        FC, QO, DQO = (_schema(n) for n in ("FullyConnectedOptions", "QuantizeOptions",
                                             "DequantizeOptions"))

        tensor_offsets = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = self._ivec(T.TensorStartShapeVector, t["shape"])
            q_off = None
            if t["quant"] is not None:
                scale = self._fvec(Q.QuantizationParametersStartScaleVector, t["quant"]["scale"])
                zp = self._lvec(Q.QuantizationParametersStartZeroPointVector, t["quant"]["zp"])
                Q.QuantizationParametersStart(b)
                Q.QuantizationParametersAddScale(b, scale)
                Q.QuantizationParametersAddZeroPoint(b, zp)
                Q.QuantizationParametersAddQuantizedDimension(b, t["quant"].get("dim", 0))
                q_off = Q.QuantizationParametersEnd(b)
            T.TensorStart(b)
            T.TensorAddShape(b, shape)
            T.TensorAddType(b, t["type"])
            T.TensorAddBuffer(b, t["buffer"])
            T.TensorAddName(b, name)
            if q_off is not None:
                T.TensorAddQuantization(b, q_off)
            tensor_offsets.append(T.TensorEnd(b))

        op_offsets = []
        for opcode, ins, outs, opt_type, act in ops:
            if opt_type == OPT_FULLY_CONNECTED:
                FC.FullyConnectedOptionsStart(b)
                FC.FullyConnectedOptionsAddFusedActivationFunction(b, act)
                opt = FC.FullyConnectedOptionsEnd(b)
            elif opt_type == OPT_QUANTIZE:
                QO.QuantizeOptionsStart(b)
                opt = QO.QuantizeOptionsEnd(b)
            else:
                DQO.DequantizeOptionsStart(b)
                opt = DQO.DequantizeOptionsEnd(b)
            ivec = self._ivec(Op.OperatorStartInputsVector, ins)
            ovec = self._ivec(Op.OperatorStartOutputsVector, outs)
            Op.OperatorStart(b)
            Op.OperatorAddOpcodeIndex(b, opcode)
            Op.OperatorAddInputs(b, ivec)
            Op.OperatorAddOutputs(b, ovec)
            Op.OperatorAddBuiltinOptionsType(b, opt_type)
            Op.OperatorAddBuiltinOptions(b, opt)
            op_offsets.append(Op.OperatorEnd(b))

        tvec = self._tables(SG.SubGraphStartTensorsVector, tensor_offsets)
        invec = self._ivec(SG.SubGraphStartInputsVector, inputs)
        outvec = self._ivec(SG.SubGraphStartOutputsVector, outputs)
        opvec = self._tables(SG.SubGraphStartOperatorsVector, op_offsets)
        sg_name = b.CreateString("main")
        SG.SubGraphStart(b)
        SG.SubGraphAddTensors(b, tvec)
        SG.SubGraphAddInputs(b, invec)
        SG.SubGraphAddOutputs(b, outvec)
        SG.SubGraphAddOperators(b, opvec)
        SG.SubGraphAddName(b, sg_name)
        subgraph = SG.SubGraphEnd(b)

        code_offsets = []
        for code in opcodes:
            OC.OperatorCodeStart(b)
            OC.OperatorCodeAddDeprecatedBuiltinCode(b, code)
            OC.OperatorCodeAddBuiltinCode(b, code)
            OC.OperatorCodeAddVersion(b, VERSIONS[code])
            code_offsets.append(OC.OperatorCodeEnd(b))

        buf_offsets = []
        for data in self.buffers:
            dvec = b.CreateByteVector(data) if data else None
            Buf.BufferStart(b)
            if dvec is not None:
                Buf.BufferAddData(b, dvec)
            buf_offsets.append(Buf.BufferEnd(b))

        codes = self._tables(M.ModelStartOperatorCodesVector, code_offsets)
        subgraphs = self._tables(M.ModelStartSubgraphsVector, [subgraph])
        buffers = self._tables(M.ModelStartBuffersVector, buf_offsets)
        desc = b.CreateString("frugalai dense net")
        M.ModelStart(b)
        M.ModelAddVersion(b, 3)
        M.ModelAddOperatorCodes(b, codes)
        M.ModelAddSubgraphs(b, subgraphs)
        M.ModelAddDescription(b, desc)
        M.ModelAddBuffers(b, buffers)
        b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _q(qp: QParams) -> dict[str, Any]:
    return {"scale": [qp.scale], "zp": [qp.zero_point]}


def dense_to_tflite(net: DenseNet, int8: bool, float_io: bool = True) -> bytes:
    """The ``.tflite`` bytes of ``net``: fp32, or full-integer int8 if ``int8`` -- with float32
    input and output (QUANTIZE/DEQUANTIZE in the graph), or, if not ``float_io``, int8 input
    and output tensors the caller quantizes and dequantizes (the older form)."""
    if int8 and (net.in_q is None):
        raise ValueError("int8 export needs a quantized net (DenseNet.quantize)")
    g = _Graph()
    n_in = net.n_inputs
    ttype = INT8 if int8 else FLOAT32
    qp = net.in_q
    ops: list[tuple[int, list[int], list[int], int, int]] = []
    opcodes = [FULLY_CONNECTED]
    if int8 and float_io:
        assert qp is not None
        opcodes += [QUANTIZE, DEQUANTIZE]
        inputs = [g.tensor("input", [1, n_in], FLOAT32)]
        x = g.tensor("input_int8", [1, n_in], INT8, quant=_q(qp))
        ops.append((opcodes.index(QUANTIZE), inputs, [x], OPT_QUANTIZE, -1))
    else:
        x = g.tensor("input", [1, n_in], ttype, quant=_q(qp) if int8 and qp else None)
        inputs = [x]
    for i, layer in enumerate(net.layers):
        n_out = int(layer.W.shape[1])
        if int8:
            assert qp is not None
            wq, w_scale, bq = net.int8_weights(i, qp.scale)
            w = g.tensor(f"W{i}", [n_out, int(layer.W.shape[0])], INT8,
                         np.ascontiguousarray(wq.T).tobytes(),
                         {"scale": [float(s) for s in w_scale], "zp": [0] * n_out, "dim": 0})
            bias = g.tensor(f"b{i}", [n_out], INT32, bq.astype("<i4").tobytes(),
                            {"scale": [float(qp.scale * s) for s in w_scale],
                             "zp": [0] * n_out, "dim": 0})
        else:
            w = g.tensor(f"W{i}", [n_out, int(layer.W.shape[0])], FLOAT32,
                         np.ascontiguousarray(layer.W.T).astype("<f4").tobytes())
            bias = g.tensor(f"b{i}", [n_out], FLOAT32, layer.b.astype("<f4").tobytes())
        fc_q = net.out_q[i] if int8 else None
        y = g.tensor(f"h{i}", [1, n_out], ttype, quant=_q(fc_q) if fc_q else None)
        ops.append((0, [x, w, bias], [y], OPT_FULLY_CONNECTED,
                    ACT_RELU if layer.act == "relu" else ACT_NONE))
        qp = fc_q
        x = y
    if int8 and float_io:
        out = g.tensor("output", [1, net.n_outputs], FLOAT32)
        ops.append((opcodes.index(DEQUANTIZE), [x], [out], OPT_DEQUANTIZE, -1))
        x = out
    return g.finish(ops, inputs, [x], opcodes)
