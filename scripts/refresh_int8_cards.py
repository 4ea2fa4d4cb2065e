"""Rewrite the shipped bundles' int8 ONNX file and per-backend int8 agreement, without
retraining: ``python scripts/refresh_int8_cards.py --data-dir ../shared/data [bundle ...]``.

For each bundle: :func:`frugalai.learn.export.rewrite_int8_onnx` re-chooses ``model.int8.onnx``
under the current mode policy (which now prefers ``integer_exact``, the reference int8
arithmetic as integer ONNX operators), calibrated on the training rows rebuilt from the card
and the reference data (checked against ``weights.npz`` within 1e-6 relative: with
numpy 2.4 the coastal training rows' last-layer range moves by one float32 ulp), and updates sha256, sizes and
self-test vectors; then :func:`frugalai.learn.agreement.record` measures every backend's
int8/fp32 decision agreement on the held-out rows and writes it into the card.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def refresh(bundle_dir: Path, data_dir: Path) -> dict[str, object]:
    from frugalai.learn import agreement
    from frugalai.learn.evaluate import reference_rows
    from frugalai.learn.export import rewrite_int8_onnx
    from frugalai.runtime.bundle import verify_bundle
    from frugalai.runtime.model import load_verified

    calibration, held_out, about = reference_rows(bundle_dir, data_dir)
    bundle = verify_bundle(bundle_dir)
    model = load_verified(bundle, "reference", "fp32")

    def decide(raw: np.ndarray) -> np.ndarray:
        dec = np.asarray(model.decide(raw))
        if model.task == "classification":
            return dec
        return dec >= float((model.card.get("policy") or {}).get("on", 5.0))

    rewrite_int8_onnx(bundle_dir, calibration, held_out, decide,
                      f"the int8 calibration rows ({len(calibration)}) rebuilt by "
                      "frugalai.learn.evaluate.reference_rows from the card and the reference "
                      "data; judged on " + about,
                      seed=int(bundle.card.get("data", {}).get("seed", 0)), scale_rtol=1e-6)
    card = agreement.record(bundle_dir, held_out, about)
    return {"bundle": bundle.name, "onnx_mode_shipped": card["int8"]["onnx_mode_shipped"],
            "decision_agreement_by_backend": card["int8"]["decision_agreement_by_backend"],
            "refused_backends": card["int8"]["refused_backends"]}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("bundles", nargs="*", type=Path)
    args = ap.parse_args(argv)
    from frugalai.runtime.model import shipped_models_dir

    bundles = args.bundles or sorted(p for p in shipped_models_dir().iterdir()
                                     if (p / "card.json").is_file())
    for b in bundles:
        print(json.dumps(refresh(b, args.data_dir), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
