"""A shipped bundle as it was deployed before: ``model.int8.tflite`` with int8 input and output.

Gateways in the field hold bundles whose int8 ``.tflite`` takes int8 input and gives int8
output (the caller quantizes); the writer still writes that form on request
(``dense_to_tflite(net, int8=True, float_io=False)``, byte-identical to the files shipped
then). Tests copy a shipped bundle, put that form back and re-hash the card, so that the path
running such files stays tested after the shipped bundles moved to float32 I/O.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from frugalai.learn.tflite_writer import dense_to_tflite
from frugalai.runtime.bundle import CARD, sha256_file
from frugalai.runtime.dense import DenseNet
from frugalai.runtime.model import shipped_models_dir


def int8_io_bundle(name: str, dest: Path) -> Path:
    """A copy of shipped bundle ``name`` in ``dest`` with an int8-I/O ``model.int8.tflite``."""
    out = dest / name
    shutil.copytree(shipped_models_dir() / name, out)
    net = DenseNet.load(out / "weights.npz")
    f = out / "model.int8.tflite"
    f.write_bytes(dense_to_tflite(net, int8=True, float_io=False))
    card = json.loads((out / CARD).read_text())
    card["files"][f.name] = {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
    card["sizes_bytes"][f.name] = f.stat().st_size
    (out / CARD).write_text(json.dumps(card, indent=2) + "\n")
    return out
