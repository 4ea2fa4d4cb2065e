"""The shipped bundles: verified loading, tamper refusal, self-test vectors, discovery, and the
metrics of their cards recomputed from the real data (``frugalai evaluate``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from frugalai.errors import ModelError
from frugalai.runtime import (
    available,
    list_bundles,
    load_model,
    runtime_available,
    self_test,
    verify_bundle,
    write_card,
)
from frugalai.runtime.model import shipped_models_dir

MODELS = shipped_models_dir()
SHIPPED = ("energy-anomaly", "coastal-submersion")


def test_shipped_bundles_are_listed_with_their_backends() -> None:
    names = [b.name for b in list_bundles(MODELS)]
    assert set(SHIPPED) <= set(names)
    for b in list_bundles(MODELS):
        pairs = {(a["backend"], a["precision"]) for a in available(b)}
        assert {("reference", "fp32"), ("onnx", "fp32"), ("tflite", "fp32")} <= pairs
        assert b.card["int8"]["kept"] == (("tflite", "int8") in pairs)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_bundle_is_small_and_its_card_complete(name: str) -> None:
    card = verify_bundle(MODELS / name).card
    for key in ("task", "features", "data", "metrics", "files", "frugalai_version", "int8",
                "self_test", "sizes_bytes"):
        assert key in card, key
    if card["int8"]["kept"]:
        assert card["files"]["model.int8.tflite"]["bytes"] <= 16 * 1024
        assert card["int8"]["decision_agreement_with_fp32"]["reference_tflite_int8"] >= 0.995


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("backend", ["reference", "onnx", "tflite"])
def test_self_test_vectors_pass_on_every_backend(name: str, backend: str) -> None:
    reason = runtime_available(backend)
    if reason:
        pytest.skip(reason)
    report = self_test(MODELS / name, backend)
    assert report["rows"] >= 4 and "fp32" in report


def test_self_test_catches_a_model_that_computes_something_else(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(MODELS / "energy-anomaly", bundle)
    card = json.loads((bundle / "card.json").read_text())
    card["self_test"]["outputs"]["fp32"][0][0] += 1.0  # what training "recorded" differs
    write_card(bundle, card)
    verify_bundle(bundle)  # hashes are consistent...
    with pytest.raises(ModelError, match="self-test failed"):
        self_test(bundle)  # ...but the model does not compute what the card says


@pytest.mark.parametrize("victim", ["model.int8.tflite", "weights.npz", "model.onnx"])
def test_tampered_bundle_is_refused_naming_the_file(tmp_path: Path, victim: str) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(MODELS / "energy-anomaly", bundle)
    data = bytearray((bundle / victim).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bundle / victim).write_bytes(bytes(data))
    with pytest.raises(ModelError, match=victim.replace(".", r"\.")):
        load_model(bundle)


def test_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(MODELS / "coastal-submersion", bundle)
    (bundle / "weights.npz").unlink()
    with pytest.raises(ModelError, match=r"weights\.npz"):
        load_model(bundle)


def test_unknown_precision_and_name_are_clear_errors() -> None:
    with pytest.raises(ModelError, match="precision"):
        load_model(MODELS / "energy-anomaly", precision="int4")
    with pytest.raises(ModelError, match="known: .*energy-anomaly"):
        load_model("no-such-model", models_dir=MODELS)


def test_energy_card_metrics_recomputed_from_real_data(data_dir: Path) -> None:
    pytest.importorskip("sklearn", reason="evaluation needs scikit-learn (train extra)")
    from frugalai.learn.evaluate import evaluate_bundle

    for precision in ("fp32", "int8"):
        model = load_model(MODELS / "energy-anomaly", "reference", precision)
        out = evaluate_bundle(model, data_dir)
        got, claimed = out["metrics"], out["card_metrics"]
        assert abs(got["day_roc_auc"] - claimed["day_roc_auc"]) <= 0.002
        assert got["false_alarm_days"] == claimed["false_alarm_days"]
        assert got["labelled_days_alarmed"] == claimed["labelled_days_alarmed"]
        # The targets of the issue, as measured (AUC >= 0.95, <= 1 false-alarm day a month).
        assert got["day_roc_auc"] >= 0.95
        assert got["false_alarm_days_max_per_month"] <= 1


@pytest.mark.slow
def test_coastal_card_metrics_recomputed_from_real_data(data_dir: Path) -> None:
    pytest.importorskip("sklearn", reason="evaluation needs scikit-learn (train extra)")
    from frugalai.learn.evaluate import evaluate_bundle

    model = load_model(MODELS / "coastal-submersion", "reference", "fp32")
    out = evaluate_bundle(model, data_dir)
    got, claimed = out["metrics"], out["card_metrics"]
    assert got["rows"] == claimed["rows"]
    assert got["confusion[true][pred]"] == claimed["confusion[true][pred]"]
    assert got["flood"] == claimed["flood"]


def test_backends_agree_on_real_energy_features(data_dir: Path) -> None:
    from frugalai.learn.data import load_dutch
    from frugalai.learn.energy import features_for

    card = verify_bundle(MODELS / "energy-anomaly").card
    _, X = features_for(load_dutch(data_dir), card["features"]["params"], 21)
    X = X[::7]
    ref = load_model(MODELS / "energy-anomaly").predict_many(X)
    for backend in ("onnx", "tflite"):
        if runtime_available(backend):
            continue
        got = load_model(MODELS / "energy-anomaly", backend).predict_many(X)
        assert np.allclose(got, ref, atol=1e-4)
