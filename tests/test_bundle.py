"""Model bundles: every file hashed in the card; tampering, missing files, signatures."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalai.errors import ModelError
from frugalai.runtime.bundle import SIGNATURE, verify_bundle, write_card


def make_bundle(path: Path) -> Path:
    path.mkdir()
    (path / "model.onnx").write_bytes(b"\x08\x07fake-onnx")
    (path / "weights.npz").write_bytes(b"PK\x03\x04weights")
    write_card(path, {"name": "demo", "task": "anomaly"})
    return path


def test_valid_bundle_loads(tmp_path: Path) -> None:
    bundle = verify_bundle(make_bundle(tmp_path / "b"))
    assert bundle.name == "demo" and sorted(bundle.card["files"]) == ["model.onnx", "weights.npz"]
    assert bundle.file("model.onnx").read_bytes().startswith(b"\x08")


def test_tampered_file_is_refused_by_name(tmp_path: Path) -> None:
    path = make_bundle(tmp_path / "b")
    (path / "weights.npz").write_bytes(b"PK\x03\x04weightz")
    with pytest.raises(ModelError, match="sha256 mismatch for 'weights.npz'"):
        verify_bundle(path)


def test_missing_and_extra_files_are_refused(tmp_path: Path) -> None:
    path = make_bundle(tmp_path / "b")
    (path / "model.onnx").unlink()
    with pytest.raises(ModelError, match="'model.onnx' listed in the card is missing"):
        verify_bundle(path)
    path2 = make_bundle(tmp_path / "c")
    (path2 / "model.int8.onnx").write_bytes(b"sneaky")
    with pytest.raises(ModelError, match="not listed in the card: model.int8.onnx"):
        verify_bundle(path2)


def test_signature_checked_when_a_key_is_configured(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="signature checks need the 'sign' extra")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    path = make_bundle(tmp_path / "b")
    with pytest.raises(ModelError, match="unsigned bundle"):
        verify_bundle(path, public_key=public)
    (path / SIGNATURE).write_bytes(key.sign((path / "card.json").read_bytes()))
    assert verify_bundle(path, public_key=public).name == "demo"
    other = Ed25519PrivateKey.generate()
    (path / SIGNATURE).write_bytes(other.sign((path / "card.json").read_bytes()))
    with pytest.raises(ModelError, match="bad signature"):
        verify_bundle(path, public_key=public)
