"""Bundle installs against a hostile source directory (issue 14, item 4).

The store must only ever hold the card, its signature and the regular files the card lists,
each matching its sha256: a symlinked README, a card naming ``../x`` or ``/etc/...``, a file
swapped while it is being copied, or an older signed bundle must never end up live.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalai.errors import ModelError
from frugalai.runtime.bundle import CARD, SIGNATURE, sha256_file, write_card
from frugalai.service import models


def make_bundle(path: Path, version: str = "1.0.1") -> Path:
    path.mkdir(parents=True)
    np.savez(path / "weights.npz", w=np.arange(4.0) + float(version.split(".")[-1]))
    write_card(path, {"name": "anomaly", "version": version, "task": "anomaly"})
    return path


def rewrite_card(path: Path, **changes: Any) -> None:
    card = json.loads((path / CARD).read_text())
    card.update(changes)
    (path / CARD).write_text(json.dumps(card))


def store_is_verified(mdir: Path) -> list[str]:
    """Every file of every stored bundle: card, signature, or listed with its right hash."""
    seen = []
    for bundle in (mdir / ".store").iterdir():
        if bundle.is_symlink():
            continue
        assert bundle.is_dir() and not bundle.name.startswith(".install."), bundle
        files = json.loads((bundle / CARD).read_text())["files"]
        for f in bundle.iterdir():
            assert not f.is_symlink() and f.is_file(), f
            if f.name not in (CARD, SIGNATURE):
                assert f.name in files, f"unlisted {f.name} in the store"
                assert sha256_file(f) == files[f.name]["sha256"], f"unverified {f}"
            seen.append(f.name)
    return sorted(seen)


def test_only_listed_regular_files_are_copied_never_a_symlinked_readme(tmp_path: Path) -> None:
    secret = tmp_path / "root-only.txt"
    secret.write_text("root's secret")
    secret.chmod(0o600)
    src = make_bundle(tmp_path / "v1")
    (src / "README.md").symlink_to(secret)
    mdir = tmp_path / "models"
    said: list[str] = []
    models.install(src, mdir, warn=said.append)
    assert said == ["not installed (not listed in the card): README.md (a symlink)"]
    assert store_is_verified(mdir) == [CARD, "weights.npz"]
    assert not any(p.name == "README.md" for p in (mdir / ".store").rglob("*"))
    for f in (mdir / "anomaly").iterdir():  # the store is world-readable: nothing writable
        assert not f.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def test_a_listed_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    src = make_bundle(tmp_path / "v1")
    real = tmp_path / "elsewhere.npz"
    (src / "weights.npz").rename(real)
    (src / "weights.npz").symlink_to(real)
    mdir = tmp_path / "models"
    with pytest.raises(ModelError, match="'weights.npz' is a symlink"):
        models.install(src, mdir)
    assert not (mdir / "anomaly").exists() and not list((mdir / ".store").iterdir())


@pytest.mark.parametrize("bad", ["../outside.npz", "ABSOLUTE", "sub/../../outside.npz"])
def test_card_names_leaving_the_bundle_are_refused(tmp_path: Path, bad: str) -> None:
    outside = tmp_path / "outside.npz"
    np.savez(outside, w=np.zeros(2))
    name = str(outside) if bad == "ABSOLUTE" else bad
    src = make_bundle(tmp_path / "b" / "v1")
    rewrite_card(src, files={name: {"sha256": sha256_file(outside),
                                    "bytes": outside.stat().st_size}})
    (src / "weights.npz").unlink()
    mdir = tmp_path / "models"
    with pytest.raises(ModelError, match="file names must be plain names inside the bundle"):
        models.install(src, mdir)
    assert not (mdir / "anomaly").exists() and not list((mdir / ".store").iterdir())


def test_a_file_swapped_during_the_copy_is_never_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mdir = tmp_path / "models"
    first = models.install(make_bundle(tmp_path / "v1"), mdir)
    src = make_bundle(tmp_path / "v2", "1.0.2")
    real_copy = models._copy_one

    def racing_copy(source: Path, name: str, dest: Path) -> int:
        if name == "weights.npz":  # the attacker wins the race: swapped after any check
            np.savez(source / "weights.npz", w=np.full(4, 666.0))
        return real_copy(source, name, dest)

    monkeypatch.setattr(models, "_copy_one", racing_copy)
    with pytest.raises(ModelError, match="sha256 mismatch for 'weights.npz'"):
        models.install(src, mdir)
    assert (mdir / "anomaly").resolve() == first.path.resolve()
    assert store_is_verified(mdir) == [CARD, "weights.npz"]  # only v1, no staging left


def test_a_world_writable_source_is_installed_with_a_warning(tmp_path: Path) -> None:
    src = make_bundle(tmp_path / "v1")
    src.chmod(0o777)
    warnings: list[str] = []
    models.install(src, tmp_path / "models", warn=warnings.append)
    assert len(warnings) == 1 and "writable by other users (.)" in warnings[0]
    quiet: list[str] = []
    src2 = make_bundle(tmp_path / "v2", "1.0.2")
    src2.chmod(0o755)
    os.chmod(src2 / "weights.npz", 0o644)
    models.install(src2, tmp_path / "models", warn=quiet.append)
    assert quiet == []


def _signed(path: Path, key: Any) -> Path:
    (path / SIGNATURE).write_bytes(key.sign((path / CARD).read_bytes()))
    return path


def test_a_signed_downgrade_is_refused_unless_allowed(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="signatures need the 'sign' extra")
    from click.testing import CliRunner
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from frugalai.cli import cli

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    mdir = tmp_path / "models"
    old = _signed(make_bundle(tmp_path / "v9", "1.0.9"), key)
    new = _signed(make_bundle(tmp_path / "v10", "1.0.10"), key)  # 10 > 9 as numbers
    models.install(old, mdir, public_key=public)
    models.install(new, mdir, public_key=public)
    with pytest.raises(ModelError, match="version 1.0.9 is older than the installed 1.0.10"):
        models.install(old, mdir, public_key=public)
    assert json.loads((mdir / "anomaly" / CARD).read_text())["version"] == "1.0.10"
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\nmodels_dir = "{mdir}"\n'
                      f'[models]\npublic_key = "{public.hex()}"\n'
                      '[[flow]]\nname = "a"\nsource = "serial:///dev/null?protocol=tic"\n')
    refused = CliRunner().invoke(cli, ["models", "install", str(old), "--config", str(config)])
    assert refused.exit_code == 1 and "--allow-downgrade" in refused.output
    allowed = CliRunner().invoke(cli, ["models", "install", str(old), "--config", str(config),
                                       "--allow-downgrade"])
    assert allowed.exit_code == 0, allowed.output
    assert json.loads((mdir / "anomaly" / CARD).read_text())["version"] == "1.0.9"


def test_a_file_swapped_between_verification_and_load_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalai.runtime import bundle as bundle_module

    mdir = tmp_path / "models"
    first = models.install(make_bundle(tmp_path / "v1"), mdir)
    real_verify = bundle_module.verify_bundle

    def verify_then_swap(path: Any, public_key: Any = None) -> Any:
        verified = real_verify(path, public_key=public_key)
        if Path(path).name == "anomaly":  # the live name, verified by load_check: now swap
            target = Path(path).resolve() / "weights.npz"
            target.chmod(0o644)
            np.savez(target, w=np.full(4, 666.0))
        return verified

    monkeypatch.setattr(bundle_module, "verify_bundle", verify_then_swap)
    with pytest.raises(ModelError, match="'weights.npz' changed after it was verified"):
        models.install(make_bundle(tmp_path / "v2", "1.0.2"), mdir)
    assert (mdir / "anomaly").resolve() == first.path.resolve()  # rolled back
    assert list((mdir / ".store").glob("anomaly@*"))  # v1 kept, v2 removed
    assert all("1.0.2" not in (p / CARD).read_text()
               for p in (mdir / ".store").glob("anomaly@*"))
