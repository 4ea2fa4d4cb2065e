"""int8/fp32 decision agreement of a bundle, measured per backend, and recorded in its card.

Why per backend: the int8 files differ by runtime (onnxruntime's quantizer requantized in float
and drifted from the reference arithmetic that LiteRT and the native C share), so one figure
for "int8" was a promise some backends did not keep. Each backend the card ships int8 for is
loaded twice (fp32, int8) through :func:`frugalai.runtime.load_verified`, exactly as a flow
loads it, and its decisions on held-out rows are compared: the class for a classifier, score
>= the policy's ``on`` for an anomaly bundle. A backend that cannot run here (no runtime, no C
compiler) is recorded as unmeasured with the reason, never guessed.

The card gets ``int8.decision_agreement_by_backend`` (``{backend: {"agreement", "rows",
"disagreeing_rows"}}`` or ``{"agreement": null, "unmeasured": why}``), ``int8.agreement_rows``
(which rows) and ``int8.refused_backends`` (backends under ``int8.min_decision_agreement``:
:func:`frugalai.runtime.load_verified` refuses their int8 unless told otherwise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from frugalai.errors import ModelError
from frugalai.runtime.bundle import CARD, SIGNATURE, Bundle, put_key, verify_bundle
from frugalai.runtime.model import BundleModel, load_verified


def decisions(model: BundleModel, X: npt.ArrayLike) -> npt.NDArray[Any]:
    """What a flow acts on: the class (classifier), or score >= the card's ``policy.on``."""
    out = np.asarray(model.predict_many(X))
    if model.task == "classification":
        return out
    on = float((model.card.get("policy") or {}).get("on", 5.0))
    return out >= on


def int8_backends(bundle: Bundle) -> list[str]:
    """The backends the card ships an int8 artifact for, sorted."""
    return sorted(b for b, files in bundle.card.get("artifacts", {}).items() if "int8" in files)


def measure(bundle: Bundle, X: npt.ArrayLike) -> dict[str, dict[str, Any]]:
    """Per int8 backend: the share of rows of ``X`` whose int8 decision is the fp32 one."""
    rows = np.asarray(X, dtype=np.float32)
    out: dict[str, dict[str, Any]] = {}
    for backend in int8_backends(bundle):
        try:
            fp32 = decisions(load_verified(bundle, backend, "fp32"), rows)
            int8 = decisions(load_verified(bundle, backend, "int8", allow_low_agreement=True),
                             rows)
        except (ModelError, ImportError, OSError) as err:
            out[backend] = {"agreement": None, "unmeasured": str(err).splitlines()[0]}
            continue
        differ = int(np.sum(fp32 != int8))
        out[backend] = {"agreement": 1.0 - differ / len(rows) if len(rows) else 1.0,
                        "disagreeing_rows": differ, "rows": len(rows)}
    return out


def refused(figures: dict[str, dict[str, Any]], min_agreement: float) -> list[str]:
    """The backends measured under ``min_agreement``."""
    return sorted(b for b, f in figures.items()
                  if f.get("agreement") is not None and f["agreement"] < min_agreement)


def record(bundle_dir: Path, X: npt.ArrayLike, rows_about: str) -> dict[str, Any]:
    """Measure every int8 backend of the bundle on ``X`` and write the figures into its card
    (key order kept, the files untouched: their sha256 stay valid). A signed card is refused
    (re-sign after). Returns the card, verified again.

    The bundle is the one this process has just written (training, or the refresh script on
    its own copy): the native backend may compile it to measure it, as a user who built a
    bundle opts in with ``--allow-unsigned-native`` (its card schema is checked all the same)."""
    bundle = verify_bundle(bundle_dir, allow_unsigned_native=True)
    if (bundle.path / SIGNATURE).exists():
        raise ModelError(f"{bundle.path}: signed card; recording the agreement would void "
                         f"{SIGNATURE}: remove it, record, then sign again")
    figures = measure(bundle, X)
    card = bundle.card
    int8 = card.setdefault("int8", {})
    minimum = float(int8.get("min_decision_agreement", 0.995))
    put_key(int8, "decision_agreement_by_backend", figures)
    put_key(int8, "agreement_rows", rows_about)
    put_key(int8, "refused_backends", refused(figures, minimum))
    (bundle.path / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return verify_bundle(bundle.path).card
