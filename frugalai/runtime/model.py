"""Loading a verified bundle onto a backend, shared post-processing, self-test, discovery.

``load_model(path, backend="reference", precision="fp32")`` verifies every file's sha256
(:func:`~frugalai.runtime.bundle.verify_bundle`), loads the backend and returns a
:class:`BundleModel` whose ``predict_many`` / ``predict_one`` give the model's decision input:

* ``task = "anomaly"``: an anomaly score, ``sqrt(mean(y**2))`` of the net's outputs (the
  whitened projection; in units of a normal window's standard deviation);
* ``task = "classification"``: a class index, from softmax probabilities and the card's
  ``decision`` thresholds (``probabilities_many`` gives the probabilities).

**Self-test vectors**: each card holds ``self_test = {"inputs": [[...]], "outputs": {"fp32":
[[...]], "int8": [[...]], "onnx_int8": [[...]]}, "atol": {...}}``: a few feature rows and the raw
net outputs recorded at training time (``int8`` for the reference/TFLite arithmetic,
``onnx_int8`` for onnxruntime's quantized model). :func:`self_test` runs them on a backend and precision and
raises ModelError if any output is off by more than ``atol`` — a quick check after install that
the files, runtime and board compute what was trained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import numpy.typing as npt

from frugalai.errors import ModelError
from frugalai.runtime.backends import (
    PRECISIONS,
    Backend,
    bundle_refusal,
    make_backend,
    runtime_available,
)
from frugalai.runtime.bundle import (
    CARD,
    Bundle,
    resolve_bundle,
    search_path,
    shipped_models_dir,
    verify_bundle,
)

__all__ = ["BundleModel", "available", "classify", "list_bundles", "list_search_path",
           "load_model", "load_verified", "resolve_bundle", "search_path", "self_test",
           "shipped_models_dir"]

TASKS = ("anomaly", "classification")


class BundleModel:
    """A loaded bundle: card + backend + post-processing."""

    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        self.bundle = bundle
        self.card = bundle.card
        self.backend = backend
        self.task = str(self.card.get("task"))
        if self.task not in TASKS:
            raise ModelError(f"{bundle.path}: card task must be one of {TASKS}, got {self.task!r}")
        decision = self.card.get("decision", {})
        self.classes: list[str] = list(self.card.get("classes", []))
        self._thresholds = [float(t) for t in decision.get("thresholds", [])]

    @property
    def name(self) -> str:
        return self.bundle.name

    @property
    def batch_exact(self) -> bool:
        """The backend says its batch rows equal its one-row outputs bit for bit (a plugin
        backend that does not say is taken as not)."""
        return bool(getattr(self.backend, "batch_exact", False))

    def raw_many(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return self.backend.predict_many(np.asarray(X, dtype=np.float32))

    def probabilities_many(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        logits = self.raw_many(X).astype(np.float64)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def decide(self, raw: npt.NDArray[np.floating]) -> npt.NDArray[Any]:
        """Post-process raw outputs: anomaly scores, or class indices."""
        raw = np.asarray(raw, dtype=np.float64).reshape(len(raw), -1)
        if self.task == "anomaly":
            return np.asarray(np.sqrt(np.mean(raw ** 2, axis=1)))
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        return classify(e / e.sum(axis=1, keepdims=True), self._thresholds)

    def predict_many(self, X: npt.ArrayLike) -> npt.NDArray[Any]:
        return self.decide(self.raw_many(X))

    # -- one row: what a flow calls on every window, so no numpy call on one-row arrays here
    # (each costs about a microsecond, more than the model). The plain-Python arithmetic below
    # is bit-identical to ``decide`` (same operations in the same order; numpy's pairwise sum
    # reproduced by ``np_sum``); tests/test_fastpath.py checks it on random rows.

    def raw_one(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The net's raw outputs for one feature row (1-D)."""
        return self.backend.predict_one(x)

    def decide_one(self, raw: Sequence[float]) -> Union[float, int]:
        """``decide`` for one row of raw outputs: an anomaly score or a class index."""
        if self.task == "anomaly":
            values = raw if type(raw) is list else [float(v) for v in raw]
            squares = [v * v for v in values]
            total = np_sum(squares) if len(squares) >= 8 else _seq_sum(squares)
            return math.sqrt(total / len(values))
        return self.label_and_probability(raw)[0]

    def label_and_probability(self, raw: Sequence[float]) -> tuple[int, float]:
        """Class index (thresholded tails, as ``classify``) and its softmax probability."""
        probs = softmax_one(raw)
        # tails[k] = P(class >= k), summed from the last class as np.cumsum of the reversed
        # row does; the highest k whose tail reaches its threshold wins (classify's loop).
        label = 0
        k = len(probs) - 1
        tail = probs[k]
        thresholds = self._thresholds
        while k >= 1:
            if k <= len(thresholds) and tail >= thresholds[k - 1]:
                label = k
                break
            k -= 1
            tail = tail + probs[k]
        return label, probs[label]

    def predict_one(self, x: npt.ArrayLike) -> Union[float, int]:
        return self.decide_one(self.backend.predict_one(x).tolist())

    def classify_one(self, x: npt.ArrayLike) -> tuple[int, float]:
        """One feature row -> (class index, its probability): a classifier flow's call."""
        return self.label_and_probability(self.backend.predict_one(x).tolist())

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task, **self.backend.info()}

    def __repr__(self) -> str:
        i = self.backend.info()
        return f"BundleModel({self.name!r}, backend={i['backend']!r}, precision={i['precision']!r})"


def np_sum(values: Sequence[float]) -> float:
    """``np.add.reduce`` of float64 values in numpy's order (pairwise summation: 8
    accumulators by blocks of up to 128), so a plain-Python sum is bit-identical to numpy's.

    >>> np_sum([0.1] * 10) == float(np.sum(np.full(10, 0.1)))
    True
    """
    return _pairwise(values, 0, len(values))


def _pairwise(a: Sequence[float], lo: int, n: int) -> float:
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    if n <= 128:
        r = [a[lo + j] for j in range(8)]
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[lo + i + j]
            i += 8
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, lo, n2) + _pairwise(a, lo + n2, n - n2)


def softmax_one(raw: Sequence[float]) -> list[float]:
    """Softmax of one row of logits, bit-identical to ``decide``'s (``np.exp`` itself: the
    libm ``math.exp`` differs from numpy's in the last bit for about 5 % of arguments)."""
    values = raw if type(raw) is list else [float(v) for v in raw]
    top = max(values)
    e = _np_exp([v - top for v in values]).tolist()
    total = np_sum(e) if len(e) >= 8 else _seq_sum(e)
    return [v / total for v in e]


_np_exp = np.exp


def _seq_sum(values: list[float]) -> float:
    """numpy's sum of fewer than 8 values: left to right from 0.0 (np_sum's first case)."""
    res = 0.0
    for v in values:
        res += v
    return res


def classify(probs: npt.NDArray[np.floating], thresholds: list[float]) -> npt.NDArray[np.int64]:
    """Ordered classes: the highest class ``k >= 1`` whose tail probability
    ``P(class >= k)`` reaches ``thresholds[k-1]``; class 0 otherwise.

    >>> classify(np.array([[0.5, 0.3, 0.2], [0.9, 0.05, 0.05]]), [0.4, 0.15]).tolist()
    [2, 0]
    """
    p = np.asarray(probs, dtype=np.float64)
    tail = np.cumsum(p[:, ::-1], axis=1)[:, ::-1]  # tail[:, k] = P(class >= k)
    out = np.zeros(len(p), dtype=np.int64)
    for k, t in enumerate(thresholds, start=1):
        out[tail[:, k] >= t] = k
    return out


def load_model(bundle_path: Union[str, Path], backend: str = "reference",
               precision: str = "fp32", *, public_key: Optional[bytes] = None,
               models_dir: Union[str, Path, None] = None,
               allow_low_agreement: bool = False,
               allow_unsigned_native: bool = False) -> BundleModel:
    """Verify the bundle (its card's schema, every sha256), load it on ``backend`` at
    ``precision``. ``allow_unsigned_native``: the user's opt-in to compile an unsigned bundle
    that frugalai did not ship (:func:`frugalai.runtime.native.refusal`);
    ``allow_low_agreement``: run int8 on a backend the card records under its minimum."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    bundle = verify_bundle(resolve_bundle(bundle_path, models_dir), public_key=public_key,
                           allow_unsigned_native=allow_unsigned_native)
    return load_verified(bundle, backend, precision, allow_low_agreement=allow_low_agreement)


def int8_agreement(card: dict[str, Any], backend: str) -> Optional[float]:
    """The int8/fp32 decision agreement the card records for ``backend`` (None: not
    measured, or a card from before per-backend figures)."""
    fig = card.get("int8", {}).get("decision_agreement_by_backend", {}).get(backend) or {}
    value = fig.get("agreement")
    return None if value is None else float(value)


def int8_refusal(card: dict[str, Any], backend: str) -> Optional[str]:
    """Why ``backend`` may not run the card's int8 by default (its recorded agreement is under
    the card's ``min_decision_agreement``), else None."""
    agree = int8_agreement(card, backend)
    minimum = float(card.get("int8", {}).get("min_decision_agreement", 0.995))
    if agree is None or agree >= minimum:
        return None
    return (f"int8 on {backend} takes the fp32 decision on only {100 * agree:.3f} % of the "
            f"card's held-out rows (< {100 * minimum:.1f} %)")


def load_verified(bundle: Bundle, backend: str = "reference", precision: str = "fp32",
                  *, allow_low_agreement: bool = False) -> BundleModel:
    """Load an already verified bundle (the flow plan verifies each card once). int8 on a
    backend the card records under its minimum decision agreement is refused unless
    ``allow_low_agreement``."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    why = int8_refusal(bundle.card, backend) if precision == "int8" else None
    if why is not None and not allow_low_agreement:
        raise ModelError(f"{bundle.name}: {why}: use fp32 or another backend, or allow it "
                         "explicitly (--allow-low-agreement)")
    be = make_backend(backend)  # ModelError naming the registered ones if unknown
    return BundleModel(bundle, be.load(bundle, precision))


def self_test(bundle: Union[Bundle, str, Path], backend: str = "reference",
              precisions: Optional[tuple[str, ...]] = None) -> dict[str, Any]:
    """Run the card's stored test vectors; return a report, ModelError on any mismatch."""
    if not isinstance(bundle, Bundle):
        bundle = verify_bundle(bundle)
    vectors = bundle.card.get("self_test")
    if not vectors:
        raise ModelError(f"{bundle.path}: the card has no self_test vectors")
    X = np.asarray(vectors["inputs"], dtype=np.float32)
    report: dict[str, Any] = {"bundle": bundle.name, "backend": backend, "rows": len(X)}
    for precision in precisions or tuple(p for p in PRECISIONS if p in vectors["outputs"]):
        model = BundleModel(bundle, make_backend(backend).load(bundle, precision))
        got = model.raw_many(X)
        # onnxruntime's int8 kernels round differently from TFLite's: own vectors.
        key = "onnx_int8" if (backend, precision) == ("onnx", "int8") else precision
        want = np.asarray(vectors["outputs"][key], dtype=np.float32)
        atol = float(vectors["atol"][key])
        err = float(np.abs(got - want).max())
        report[precision] = {"max_abs_error": err, "atol": atol}
        if not err <= atol:
            raise ModelError(f"{bundle.path}: self-test failed on {backend}/{precision}: max "
                             f"error {err:.3g} > {atol:.3g}")
    return report


def list_bundles(models_dir: Union[str, Path, None]) -> list[Bundle]:
    """Every verified bundle under ``models_dir`` (a bad one raises: it names the file)."""
    if models_dir is None or not Path(models_dir).is_dir():
        return []
    return [verify_bundle(p) for p in sorted(Path(models_dir).iterdir())
            if not p.name.startswith(".") and (p / CARD).is_file()]


def list_search_path(models_dir: Union[str, Path, None]) -> list[Bundle]:
    """Every bundle a name can reach: ``models_dir`` first, then the shipped ones it does not
    shadow (the one search path of :func:`~frugalai.runtime.bundle.resolve_bundle`)."""
    seen: set[str] = set()
    out: list[Bundle] = []
    for d in search_path(models_dir):
        for b in list_bundles(d):
            if b.path.name not in seen:
                seen.add(b.path.name)
                out.append(b)
    return out


def available(bundle: Bundle) -> list[dict[str, Any]]:
    """Each (backend, precision) of ``bundle`` with its file, if it cannot run here why (no
    runtime, or the backend refuses this bundle), and for int8 the decision agreement with
    fp32 the card records for that backend (and whether it is refused by default for being
    under the card's minimum)."""
    out = []
    for backend, files in sorted(bundle.card.get("artifacts", {}).items()):
        why = runtime_available(backend) or bundle_refusal(backend, bundle)
        for precision, name in sorted(files.items()):
            entry: dict[str, Any] = {"backend": backend, "precision": precision, "file": name,
                                     "bytes": bundle.card["files"].get(name, {}).get("bytes", 0),
                                     "unavailable": why}
            if precision == "int8":
                entry["int8_decision_agreement"] = int8_agreement(bundle.card, backend)
                entry["refused_by_default"] = int8_refusal(bundle.card, backend)
            out.append(entry)
    return out


def listing(bundles: list[Bundle]) -> list[str]:
    """``frugalai models list``: one line per bundle with the backend/precision pairs that can
    run *here* (int8 with its recorded agreement with fp32; "(refused)" when the backend
    refuses it by default), then one line naming each backend a bundle has but this machine
    cannot run, with the reason (a listing of uninstalled runtimes misled users)."""
    lines: list[str] = []
    missing: dict[str, str] = {}
    for b in bundles:
        kinds = []
        for a in available(b):
            if a["unavailable"]:
                missing.setdefault(a["backend"], a["unavailable"])
                continue
            agreement = a.get("int8_decision_agreement")
            kinds.append(f"{a['backend']}/{a['precision']}"
                         + (f" {100 * agreement:.3f}%" if agreement is not None else "")
                         + (" (refused)" if a.get("refused_by_default") else ""))
        size = sum(f["bytes"] for f in b.card["files"].values())
        lines.append(f"{b.name:22} {b.card.get('task', '?'):15} {size:7d} B  "
                     f"{', '.join(kinds) or 'nothing runs here'}  ({b.path})")
    lines += [f"not available here: {name}: {why}" for name, why in sorted(missing.items())]
    return lines
