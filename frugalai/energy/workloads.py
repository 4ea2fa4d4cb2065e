"""Workloads to measure, built from a JSON-able spec (so a fresh process can rebuild them).

Spec kinds::

    {"kind": "numpy-mlp", "inputs": 8, "hidden": 16, "batch": 1}   tiny seeded dense net (tests)
    {"kind": "profile", "batch": 1}        the online daily-profile scorer (the default model)
    {"kind": "encode"}                     one event through the 11-byte binary codec
    {"kind": "bundle", "path": "models/x", "backend": "onnx", "precision": "int8", "batch": 1}

Inputs are prepared before timing; ``run()`` does only the inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from frugalai.energy.harness import Workload
from frugalai.errors import ConfigError, ModelError


def _numpy_mlp(spec: dict[str, Any]) -> Workload:
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    n_in, hidden, batch = int(spec.get("inputs", 8)), int(spec.get("hidden", 16)), \
        int(spec.get("batch", 1))
    w1 = rng.standard_normal((n_in, hidden)).astype(np.float32)
    w2 = rng.standard_normal((hidden, 1)).astype(np.float32)
    x = rng.standard_normal((batch, n_in)).astype(np.float32)

    def run() -> object:
        return np.maximum(x @ w1, 0.0) @ w2

    return Workload(f"numpy-mlp-{n_in}x{hidden}", run, batch,
                    {"model": f"numpy-mlp-{n_in}x{hidden}", "backend": "numpy",
                     "precision": "fp32", "model_bytes": int(w1.nbytes + w2.nbytes)})


def _profile(spec: dict[str, Any]) -> Workload:
    from frugalai.features.profile import DailyProfile

    batch = int(spec.get("batch", 1))
    rng = np.random.default_rng(int(spec.get("seed", 0)))
    profile = DailyProfile()
    t0 = 1_700_000_000.0
    for i in range(28 * 96):  # four weeks of 15-min windows
        profile.learn_one(t0 + i * 900, float(400 + 300 * np.sin(i / 96 * 2 * np.pi)
                                              + rng.normal(0, 40)))
    ts = [t0 + (28 * 96 + i) * 900 for i in range(batch)]
    values = [float(v) for v in rng.normal(500, 100, batch)]

    def run() -> object:
        return [profile.score_one(t, v) for t, v in zip(ts, values)]

    return Workload("profile", run, batch, {"model": "profile", "backend": "python",
                                            "precision": "fp64", "model_bytes": 96 * 8 * 8})


def _encode(spec: dict[str, Any]) -> Workload:
    from frugalai.events.codec import BINARY_SIZE, encode_binary
    from frugalai.events.event import Event

    event = Event("alarm", "linky", 1_700_000_000.0, score=6.25, value=2310.0, sensor_id=1,
                  seq=7)

    def run() -> object:
        return encode_binary(event)

    return Workload("encode-binary", run, 1, {"model": "encode-binary", "backend": "python",
                                              "precision": "-", "model_bytes": 0,
                                              "payload_bytes": BINARY_SIZE})


def _bundle(spec: dict[str, Any]) -> Workload:
    """A shipped bundle through ``frugalai.runtime.load_model`` on one backend and precision.

    Inputs are the card's own self-test feature rows (real windows recorded at training time),
    tiled to the batch size; batch 1 uses ``predict_one``, larger batches ``predict_many``,
    both including the shared post-processing (score or class), as the pipeline calls them.
    """
    try:
        from frugalai.runtime import load_model
    except ImportError as err:
        raise ModelError("frugalai.runtime.load_model is not available in this tree") from err
    path = Path(spec["path"])
    batch = int(spec.get("batch", 1))
    backend, precision = str(spec["backend"]), str(spec.get("precision", "fp32"))
    model = load_model(path, backend=backend, precision=precision)
    card = model.card
    rows = np.asarray(card.get("self_test", {}).get("inputs") or [], dtype=np.float32)
    if rows.size == 0:
        n_in = len(card.get("features", [])) or int(spec.get("inputs", 1))
        rows = np.random.default_rng(int(spec.get("seed", 0))).standard_normal(
            (4, n_in)).astype(np.float32)
    x = np.resize(rows, (batch, rows.shape[1])).astype(np.float32)
    art = card.get("artifacts", {}).get(backend, {}).get(precision)
    size = int(card.get("files", {}).get(art, {}).get("bytes", 0)) if art else 0
    if batch == 1:
        one = x[0]

        def run() -> object:
            return model.predict_one(one)
    else:

        def run() -> object:
            return model.predict_many(x)

    return Workload(f"{model.name}/{backend}/{precision}", run, batch,
                    {"model": model.name, "backend": backend, "precision": precision,
                     "model_bytes": size, "model_file": art,
                     "model_sha256": card.get("files", {}).get(art, {}).get("sha256")})


BUILDERS = {"numpy-mlp": _numpy_mlp, "profile": _profile, "encode": _encode, "bundle": _bundle}


def build(spec: dict[str, Any]) -> Workload:
    """The workload a spec describes; ConfigError for an unknown kind."""
    try:
        builder = BUILDERS[spec["kind"]]
    except KeyError:
        raise ConfigError(f"unknown workload kind {spec.get('kind')!r}; known: "
                          f"{sorted(BUILDERS)}", key="kind") from None
    return builder(spec)
