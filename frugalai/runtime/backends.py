"""The built-in inference backends behind one interface (numpy reference, onnxruntime, LiteRT).

Their names, and any plugin's, live in :data:`frugalai.registry.backends` only: config
validation, the CLI and ``frugalai plugins`` read it there.

Every backend runs the bundle's dense net and returns its raw float outputs (an anomaly
projection, or class logits); post-processing is shared (:mod:`frugalai.runtime.model`), so the
backends can be compared output for output (tests/test_backends.py, emlearn style).

Runtimes are imported inside ``load()``: ``import frugalai.runtime`` needs only numpy. A missing
runtime is a :class:`~frugalai.errors.ModelError` naming the pip extra.

Files per precision (listed in the card's ``artifacts``):

=========  ======================  ==========================
backend    fp32                    int8
=========  ======================  ==========================
reference  weights.npz             weights.npz (int8 params)
onnx       model.onnx              model.int8.onnx
tflite     model.tflite            model.int8.tflite
native     weights.npz             weights.npz (compiled C)
=========  ======================  ==========================
"""

from __future__ import annotations

import math
from typing import Any, Optional, Protocol

import numpy as np
import numpy.typing as npt

from frugalai import registry
from frugalai.errors import ConfigError, ModelError
from frugalai.registry import PRECISIONS
from frugalai.runtime.bundle import Bundle
from frugalai.runtime.dense import DenseNet, code_bounds

__all__ = ["PRECISIONS", "Backend", "OnnxBackend", "ReferenceBackend", "TfliteBackend",
           "artifact", "artifact_keys", "backend_extra", "make_backend", "runtime_available"]

F32 = npt.NDArray[np.float32]


class Backend(Protocol):
    """What every backend offers.

    A backend class is registered by name in :data:`frugalai.registry.backends` and built with
    no argument; ``load`` reads the bundle file the card's ``artifacts`` names for
    ``(name, precision)`` (see :func:`artifact`). It may also offer a static method
    ``unavailable() -> str | None`` giving why its runtime cannot run here (None: it can), and
    a class attribute ``extra`` naming the pip extra its runtime comes from (``frugalai
    doctor`` checks it per flow).
    """

    name: str
    precision: str

    def load(self, bundle: Bundle, precision: str) -> Backend: ...
    def predict_many(self, X: npt.ArrayLike) -> F32: ...
    def predict_one(self, x: npt.ArrayLike) -> F32: ...
    def info(self) -> dict[str, Any]: ...


def artifact(bundle: Bundle, backend: str, precision: str) -> str:
    """File name of ``backend``/``precision`` in ``bundle`` (ModelError if it has none)."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    arts = bundle.card.get("artifacts", {})
    name = arts.get(backend, {}).get(precision)
    if name is None:
        raise ModelError(f"{bundle.path}: no {backend}/{precision} model in this bundle; it has "
                         f"{ {b: sorted(p) for b, p in arts.items()} }")
    return str(name)


class ReferenceBackend:
    """Pure numpy, from ``weights.npz``: no runtime needed (any board with numpy)."""

    name = "reference"
    #: the pip extra its runtime comes from (``pip install 'frugalai[<extra>]'``), if any
    extra: Optional[str] = None

    @staticmethod
    def unavailable() -> Optional[str]:
        return None  # numpy is a core dependency

    def __init__(self) -> None:
        self.precision = "fp32"
        self.net: DenseNet | None = None
        self.file = ""

    def load(self, bundle: Bundle, precision: str) -> ReferenceBackend:
        self.file = artifact(bundle, self.name, precision)
        try:
            self.net = DenseNet.load(bundle.file(self.file))
        except (OSError, KeyError, ValueError) as err:
            raise ModelError(f"{bundle.path}: cannot read {self.file}: {err}") from err
        if precision == "int8" and not self.net.quantized:
            raise ModelError(f"{bundle.path}: {self.file} has no int8 parameters")
        self.precision = precision
        # One-row buffers: predict_one writes into them (no allocation per call). np.dot on
        # (1, n) float32 rows is the BLAS call ``@`` makes (same bits as forward(),
        # tests/test_fastpath.py) at half matmul's dispatch cost; the bias is stored (1, n)
        # and relu compares with a zero row, because numpy's broadcasting and Python-scalar
        # paths cost more than these tiny layers (benchmarks/fastpath.py).
        self._x = np.zeros((1, self.net.n_inputs), np.float32)
        self._plan = [(np.ascontiguousarray(layer.W), layer.b.reshape(1, -1).copy(),
                       np.zeros((1, layer.W.shape[1]), np.float32) if layer.act == "relu"
                       else None, np.zeros((1, layer.W.shape[1]), np.float32))
                      for layer in self.net.layers]
        self._y = self._plan[-1][3][0]
        self._int8 = _Int8Row(self.net) if precision == "int8" else None
        return self

    @property
    def batch_exact(self) -> bool:
        """``predict_many``'s row k is ``predict_one`` of row k bit for bit (what a flow
        needs to batch its windows, :mod:`frugalai.pipeline`): the integer path yes; the
        float32 one no (BLAS's matrix product sums in another order than one row's dot,
        tests/test_batch_windows.py)."""
        return self.precision == "int8"

    def predict_many(self, X: npt.ArrayLike) -> F32:
        assert self.net is not None, "call load() first"
        if self.precision == "int8":
            return self.net.forward_int8(X)
        out = self.net.forward(X)
        assert not isinstance(out, list)
        return np.asarray(out, dtype=np.float32)

    def predict_one(self, x: npt.ArrayLike) -> F32:
        assert self.net is not None, "call load() first"
        h = self._x
        h[0] = x
        if self._int8 is not None:
            return self._int8(h)
        dot, add, maximum = np.dot, np.add, np.maximum
        for W, b, zero, buf in self._plan:
            dot(h, W, out=buf)
            add(buf, b, out=buf)
            if zero is not None:
                maximum(buf, zero, out=buf)
            h = buf
        out: F32 = self._y.copy()
        return out

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "precision": self.precision, "file": self.file,
                "runtime": f"numpy {np.__version__}"}


class _Int8Row:
    """:meth:`DenseNet.forward_int8` of one row, bit for bit, at a third of its cost.

    The same integer arithmetic, arranged so each step is one numpy call on preallocated
    (1, n) int64 buffers: activations are carried minus their zero point (so the next layer's
    ``h - zero_point`` is free), the clip to [-128, 127] is a maximum and a minimum against
    stored rows (``np.clip`` with scalars costs more than the layer), and the output is
    dequantized by a 256-entry table computed with ``QParams.dequantize`` itself. A row with a
    NaN or an infinity (or so large that its float32 sum overflows) takes ``forward_int8``
    (its own handling of those)."""

    def __init__(self, net: DenseNet) -> None:
        assert net.in_q is not None
        self._net = net
        self._bounds = net.input_code_bounds()
        self._in_offset = 128 + net.in_q.zero_point  # searchsorted index -> code - zero point
        self._ones = np.ones(net.n_inputs, np.float32)
        self._h = np.zeros((1, net.n_inputs), np.int64)
        self._layers = []
        qp = net.in_q
        for i, layer in enumerate(net.layers):
            out = net.out_q[i]
            wq, bq, mult, total, rounding = net.int8_layer(i, qp.scale, out.scale)
            n = wq.shape[1]
            lo = (out.zero_point if layer.act == "relu" else -128) - out.zero_point
            self._layers.append((np.ascontiguousarray(wq), bq.reshape(1, n).copy(),
                                 mult.reshape(1, n).copy(), rounding.reshape(1, n).copy(),
                                 total.reshape(1, n).copy(), np.full((1, n), lo, np.int64),
                                 np.full((1, n), 127 - out.zero_point, np.int64),
                                 np.zeros((1, n), np.int64)))
            qp = out
        self._table = qp.dequantize(np.arange(-128, 128, dtype=np.int64))
        self._index = np.zeros(net.n_outputs, np.int64)
        self._out_offset = qp.zero_point + 128

    def __call__(self, f: F32) -> F32:
        # NaN or an infinity in the row makes its sum non-finite (no warning: NaN and inf
        # propagate quietly; only +inf with -inf, or a float32 overflow, would warn).
        if not math.isfinite(np.dot(f[0], self._ones)):
            row: F32 = self._net.forward_int8(f)[0]
            return row
        dot, add, multiply = np.dot, np.add, np.multiply
        h = self._h
        np.subtract(np.searchsorted(self._bounds, f, side="right"), self._in_offset, out=h)
        for W, b, mult, rounding, total, lo, hi, acc in self._layers:
            dot(h, W, out=acc)
            add(acc, b, out=acc)
            multiply(acc, mult, out=acc)
            add(acc, rounding, out=acc)
            np.right_shift(acc, total, out=acc)
            np.maximum(acc, lo, out=acc)
            np.minimum(acc, hi, out=acc)
            h = acc
        add(h[0], self._out_offset, out=self._index)
        out: F32 = self._table[self._index]
        return out


class OnnxBackend:
    """onnxruntime, one intra-op thread by default (a gateway runs other things too)."""

    name = "onnx"
    extra: Optional[str] = "onnx"
    #: a batch's rows are the one-row outputs bit for bit (checked on the shipped bundles,
    #: fp32 and int8, by tests/test_batch_windows.py): a flow may batch its windows
    batch_exact = True

    @staticmethod
    def unavailable() -> Optional[str]:
        import importlib.util

        return None if importlib.util.find_spec("onnxruntime") else \
            "onnxruntime not installed (pip install 'frugalai[onnx]')"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.precision = "fp32"
        self.file = ""
        self._session: Any = None
        self._version = ""

    def load(self, bundle: Bundle, precision: str) -> OnnxBackend:
        self.file = artifact(bundle, self.name, precision)
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ModelError("backend 'onnx' needs onnxruntime: pip install 'frugalai[onnx]'"
                             ) from err
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(bundle.file(self.file)), opts,
                                                 providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"{bundle.path}: onnxruntime cannot load {self.file}: {err}"
                             ) from err
        self._input = self._session.get_inputs()[0].name
        self._x = np.zeros((1, int(self._session.get_inputs()[0].shape[-1])), np.float32)
        self._feed = {self._input: self._x}
        self._version = ort.__version__
        self.precision = precision
        return self

    def predict_many(self, X: npt.ArrayLike) -> F32:
        x = np.ascontiguousarray(X, dtype=np.float32)
        return np.asarray(self._session.run(None, {self._input: x.reshape(len(x), -1)})[0],
                          dtype=np.float32)

    def predict_one(self, x: npt.ArrayLike) -> F32:
        self._x[0] = x  # the feed dict holds this buffer: no dict nor array built per call
        out: F32 = self._session.run(None, self._feed)[0][0]
        return out

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "precision": self.precision, "file": self.file,
                "runtime": f"onnxruntime {self._version}", "threads": self.threads}


def _interpreter_class() -> tuple[Any, str]:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError as err:
        raise ModelError("backend 'tflite' needs ai-edge-litert (or tflite_runtime): "
                         "pip install 'frugalai[tflite]'") from err


class TfliteBackend:
    """LiteRT (ai-edge-litert), else tflite_runtime.

    int8 files come in two forms, both run. The current one (TensorFlow's converter default,
    :func:`frugalai.learn.tflite_writer.dense_to_tflite`) has float32 input and output with
    QUANTIZE/DEQUANTIZE inside the graph: it runs exactly as an fp32 file does, the runtime
    quantizing in C (int8 then costs no more per call than fp32). The older one, still in
    bundles deployed before, has int8 input and output tensors: the row is quantized here with
    the input tensor's own scale and zero point (a lookup of its code boundaries) and the output
    dequantized by a table.

    One row (``predict_one``, what a flow calls) reuses preallocated buffers and ufuncs with
    ``out=``; the same float32 arithmetic as the vectorised path, so the same bits. Batches run
    on interpreters resized once per batch size and kept (a few sizes, least recently used
    dropped): a resize re-allocates every tensor."""

    name = "tflite"
    extra: Optional[str] = "tflite"
    #: a batch's rows are the one-row outputs bit for bit (tests/test_batch_windows.py)
    batch_exact = True

    @staticmethod
    def unavailable() -> Optional[str]:
        import importlib.util

        ok = importlib.util.find_spec("ai_edge_litert") or importlib.util.find_spec("tflite_runtime")
        return None if ok else "ai-edge-litert/tflite_runtime not installed (pip install " \
            "'frugalai[tflite]')"

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self.precision = "fp32"
        self.file = ""
        self._runtime = ""

    #: rows per invoke in predict_many (bounds the batch interpreter's tensors)
    max_batch = 4096
    #: batch sizes whose resized interpreter is kept
    max_batch_sizes = 4

    def load(self, bundle: Bundle, precision: str) -> TfliteBackend:
        self.file = artifact(bundle, self.name, precision)
        self._interpreter, self._runtime = _interpreter_class()
        self._path = str(bundle.file(self.file))
        try:
            self._it = self._interpreter(model_path=self._path, num_threads=self.threads)
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"{bundle.path}: LiteRT cannot load {self.file}: {err}") from err
        i, o = self._it.get_input_details()[0], self._it.get_output_details()[0]
        self._in, self._out = i["index"], o["index"]
        self._in_type = i["dtype"]
        self._in_q = i["quantization"]
        self._out_q = o["quantization"]
        self._n_in = int(i["shape"][-1])
        self._n_out = int(o["shape"][-1])
        # Interpreters resized to a batch, by batch size: the graph is stored with a batch of 1
        # (what a microcontroller runs), and invoking it row by row costs 10-40 us a row
        # against 0.03-0.05 us batched (benchmarks/latency.py).
        self._batch_its: dict[int, Any] = {}
        self._batch_ok = True
        # One-row buffers.
        self._f = np.zeros((1, self._n_in), np.float32)
        self._q = np.zeros((1, self._n_in), self._in_type)
        self._set, self._invoke, self._get = (self._it.set_tensor, self._it.invoke,
                                              self._it.get_tensor)
        self._bounds = code_bounds(self._quantize_in) if self._in_type == np.int8 else None
        self._out_table: F32 | None = None
        if o["dtype"] == np.int8:
            # Dequantization of every int8 value, computed as _dequantize_out does; indexed by
            # the int8 output itself (negative values index from the end).
            codes = np.concatenate([np.arange(0, 128), np.arange(-128, 0)]).astype(np.int8)
            self._out_table = self._dequantize_out(codes)
        self.precision = precision
        return self

    def _quantize_in(self, v: npt.NDArray[np.float32]) -> npt.NDArray[Any]:
        if self._in_type == np.int8:
            scale, zp = self._in_q
            return np.asarray(np.clip(np.round(v / scale) + zp, -128, 127), dtype=np.int8)
        return v

    def _dequantize_out(self, y: npt.NDArray[Any]) -> F32:
        if y.dtype == np.int8:
            scale, zp = self._out_q
            return np.asarray(scale * (y.astype(np.float32) - zp), dtype=np.float32)
        return np.array(y, dtype=np.float32)

    def predict_one(self, x: npt.ArrayLike) -> F32:
        f = self._f
        f[0] = x
        if self._bounds is not None:
            # _quantize_in as one lookup: code = -128 + how many code boundaries are <= x.
            np.add(np.searchsorted(self._bounds, f[0], side="right"), -128, out=self._q[0],
                   casting="unsafe")
            self._set(self._in, self._q)
        else:
            self._set(self._in, f)
        self._invoke()
        y: F32 = self._get(self._out)[0]
        if self._out_table is not None:
            out: F32 = self._out_table[y]
            return out
        return y  # get_tensor returns a copy: the caller owns it

    def predict_many(self, X: npt.ArrayLike) -> F32:
        rows = np.asarray(X, dtype=np.float32).reshape(-1, self._n_in)
        if len(rows) == 0:
            return np.zeros((0, self._n_out), np.float32)
        if len(rows) == 1:
            return self.predict_one(rows[0]).reshape(1, self._n_out)
        if not self._batch_ok:
            return self._one_by_one(rows)
        return np.concatenate([self._run_batch(rows[i:i + self.max_batch])
                               for i in range(0, len(rows), self.max_batch)])

    def _one_by_one(self, rows: npt.NDArray[np.float32]) -> F32:
        out = np.empty((len(rows), self._n_out), np.float32)
        for k, r in enumerate(rows):
            out[k] = self.predict_one(r)
        return out

    def _batch_interpreter(self, n: int) -> Any:
        it = self._batch_its.pop(n, None)
        if it is None:
            if len(self._batch_its) >= self.max_batch_sizes:  # drop the least recently used
                self._batch_its.pop(next(iter(self._batch_its)))
            it = self._interpreter(model_path=self._path, num_threads=self.threads)
            it.resize_tensor_input(self._in, [n, self._n_in])
            it.allocate_tensors()
        self._batch_its[n] = it  # most recently used last
        return it

    def _run_batch(self, rows: npt.NDArray[np.float32]) -> F32:
        if len(rows) == 1:
            return self.predict_one(rows[0]).reshape(1, self._n_out)
        try:
            it = self._batch_interpreter(len(rows))
        except (ValueError, RuntimeError):  # a graph that cannot take a batch: row by row
            self._batch_ok = False
            return self._one_by_one(rows)
        it.set_tensor(self._in, self._quantize_in(rows))
        it.invoke()
        return self._dequantize_out(it.get_tensor(self._out))

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "precision": self.precision, "file": self.file,
                "runtime": self._runtime, "threads": self.threads,
                "io": "int8" if self._bounds is not None else "float32"}


def make_backend(name: str) -> Backend:
    """A fresh, unloaded backend by name (via :data:`frugalai.registry.backends`); ModelError
    naming the known ones if ``name`` is not registered."""
    try:
        factory = registry.backends.get(name)
    except ConfigError as err:
        raise ModelError(err.reason) from None
    backend: Backend = factory()
    return backend


def artifact_keys(name: str) -> tuple[str, ...]:
    """The card ``artifacts`` entries backend ``name`` can load, in order: its own, then the one
    its class names in ``reads`` (the native backend and plugins that run the reference
    weights); config check looks the precision up there."""
    try:
        reads = getattr(registry.backends.get(name), "reads", None)
    except ConfigError:
        reads = None
    return (name, reads) if isinstance(reads, str) and reads != name else (name,)


def backend_extra(name: str) -> Optional[str]:
    """The pip extra backend ``name`` needs (its class's ``extra``), or None (none, or unknown:
    config validation reports an unknown name)."""
    try:
        factory = registry.backends.get(name)
    except ConfigError:
        return None
    extra = getattr(factory, "extra", None)
    return extra if isinstance(extra, str) else None


def bundle_refusal(name: str, bundle: Bundle) -> str | None:
    """None if backend ``name`` takes ``bundle``, else why not: a backend class may refuse
    some bundles (``refusal(bundle)``: the native one compiles only signed or shipped bundles
    unless the user opted in)."""
    try:
        factory = registry.backends.get(name)
    except ConfigError as err:
        return err.reason
    check = getattr(factory, "refusal", None)
    return check(bundle) if callable(check) else None


def runtime_available(name: str) -> str | None:
    """None if backend ``name`` can run here, else the reason (for skips and ``models show``)."""
    if name not in registry.backends:
        return f"unknown backend {name!r}; known: {', '.join(registry.backends.names())}"
    try:
        factory = registry.backends.get(name)
    except ConfigError as err:  # a plugin whose module cannot be imported here
        return err.reason
    check = getattr(factory, "unavailable", None)
    return check() if callable(check) else None
