"""Model updates without downtime: verify a bundle, swap it in atomically, roll back on failure.

Layout of ``gateway.models_dir``::

    models/
      anomaly -> .store/anomaly@3f2a9c01b7de        the live name: a symlink
      .store/anomaly@3f2a9c01b7de/                  immutable copies, named by card digest
      .store/anomaly@0b51d2e4aa10/
      .store/anomaly.previous -> anomaly@0b51d2e4aa10

``install`` verifies the bundle (sha256 of every file; Ed25519 signature of the card when a
public key is configured), copies it into the store and verifies the copy, then replaces the
live symlink with ``os.replace`` (atomic: a reader sees the old or the new bundle, never a mix),
loads the model through the live name and runs its self-test; if either fails, the previous link
is put back and the install fails. The running service picks the new version up on SIGHUP
(``install`` sends it): only the flows using that model are rebuilt, and if the service cannot
load it, it keeps running the old one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from frugalai.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from frugalai.runtime.bundle import Bundle

log = logging.getLogger("frugalai.models")

STORE = ".store"
#: the bundle's card file (runtime.bundle.CARD; not imported: a gateway running built-in
#: models only never loads the runtime package).
CARD = "card.json"
#: model names the pipeline implements itself (no bundle).
BUILTIN = ("profile", "threshold")

Loader = Callable[[Path, Optional[bytes]], Any]


def parse_public_key(value: str, key: str = "models.public_key") -> Optional[bytes]:
    """32 raw Ed25519 bytes from hex, base64, a PEM/raw/hex/base64 key file, or None if empty."""
    value = value.strip()
    if not value:
        return None
    text = value
    if value.startswith(("/", "./", "~")) or Path(value).is_file():
        path = Path(value).expanduser()
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ConfigError(f"cannot read the public key file: {err}", key=key) from None
        if data.startswith(b"-----BEGIN"):
            return _pem_to_raw(data, key)
        if len(data) == 32:
            return data
        text = data.decode("ascii", "replace").strip()
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            raw = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return raw
    raise ConfigError("expected a 32-byte Ed25519 public key as hex (64 digits), base64 or a "
                      f"key file, got {value[:80]!r}", key=key)


def _pem_to_raw(data: bytes, key: str) -> bytes:
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
            load_pem_public_key,
        )
    except ImportError as err:
        raise ConfigError("a PEM key needs the 'cryptography' package (frugalai[sign])",
                          key=key) from err
    try:
        public = load_pem_public_key(data)
    except ValueError as err:
        raise ConfigError(f"unreadable PEM public key: {err}", key=key) from None
    if not isinstance(public, Ed25519PublicKey):
        raise ConfigError(f"expected an Ed25519 key, got {type(public).__name__}", key=key)
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def card_digest(path: Path) -> str:
    """First 12 hex digits of the card's sha256: the card hashes every file, so this names
    the whole bundle content."""
    return hashlib.sha256((path / CARD).read_bytes()).hexdigest()[:12]


def resolve(models_dir: Union[str, Path], model: str) -> Path:
    """The bundle directory a flow's ``model`` names (the one search path:
    :func:`frugalai.runtime.bundle.resolve_bundle`); ModelError when none."""
    from frugalai.runtime.bundle import resolve_bundle

    return resolve_bundle(model, models_dir)


def bundle_version(path: Path) -> str:
    """``<card version>@<digest>`` of the bundle at ``path`` (through its live link)."""
    try:
        real = path.resolve(strict=True)
        digest = card_digest(real)
    except OSError:
        return "missing"
    import json

    try:
        version = json.loads((real / CARD).read_text()).get("version", "")
    except (OSError, ValueError):
        version = ""
    return f"{version}@{digest}" if version else digest


def model_version(models_dir: Union[str, Path], model: str) -> str:
    """What a flow runs: ``builtin:<name>`` for built-ins, else ``<card version>@<digest>`` of
    the bundle the live name points to now (a change triggers a rebuild on reload)."""
    if model in BUILTIN:
        return f"builtin:{model}"
    try:
        path = resolve(models_dir, model)
    except ModelError:
        return "missing"
    return bundle_version(path)


def load_check(path: Path, public_key: Optional[bytes] = None) -> Bundle:
    """Verify, load and self-test the bundle at ``path``; ModelError on any failure.

    A model bundle (its card lists ``artifacts``) is loaded with the runtime's ``load_model`` on
    every backend and precision that can run here, and each such backend runs the card's
    ``self_test`` vectors. A bundle without artifacts (data only) has every weight file it
    holds read (npz arrays, ONNX sessions), so a file whose hash is right but whose content is
    broken is still refused.
    """
    from frugalai import runtime
    from frugalai.runtime.bundle import verify_bundle

    bundle = verify_bundle(path, public_key=public_key)
    load_model = getattr(runtime, "load_model", None)
    self_test = getattr(runtime, "self_test", None)
    available = getattr(runtime, "available", None)
    try:
        if load_model is not None and available is not None and bundle.card.get("artifacts"):
            runnable = [a for a in available(bundle) if not a["unavailable"]]
            if not runnable:
                raise ModelError(f"{path}: no backend of this bundle can run here")
            for a in runnable:
                load_model(path, a["backend"], a["precision"], public_key=public_key)
            if self_test is not None and bundle.card.get("self_test"):
                for backend in sorted({a["backend"] for a in runnable}):
                    self_test(bundle, backend)
            return bundle
        _load_files(bundle)
    except ModelError:
        raise
    except Exception as err:  # any failure to load is a bad model
        raise ModelError(f"{path}: model fails to load: {type(err).__name__}: {err}") from err
    return bundle


def _load_files(bundle: Bundle) -> None:
    import numpy as np

    for name in bundle.card["files"]:
        f = bundle.path / name
        if name.endswith(".npz"):
            with np.load(f, allow_pickle=False) as data:
                for key in data.files:
                    np.asarray(data[key]).sum()
        elif name.endswith(".onnx"):
            try:
                import onnxruntime
            except ImportError:
                continue
            onnxruntime.InferenceSession(str(f), providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Installed:
    name: str
    path: Path
    version: str
    previous: Optional[Path]
    changed: bool


def _swap(link: Path, target_name: str) -> None:
    """Point ``link`` at ``.store/target_name`` atomically."""
    tmp = link.with_name(f".{link.name}.tmp{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.join(STORE, target_name), tmp)
    os.replace(tmp, link)


def install(bundle_path: Union[str, Path], models_dir: Union[str, Path], *,
            public_key: Optional[bytes] = None, name: Optional[str] = None,
            loader: Loader = load_check) -> Installed:
    """Install a bundle under its name; ModelError (nothing changed) if it is refused."""
    from frugalai.runtime.bundle import verify_bundle

    src = Path(bundle_path)
    bundle = verify_bundle(src, public_key=public_key)
    name = name or bundle.name
    if not name or "/" in name or name.startswith(".") or name in BUILTIN:
        raise ModelError(f"invalid model name {name!r} (no '/', no leading '.', not a built-in)")
    models = Path(models_dir)
    store = models / STORE
    store.mkdir(parents=True, exist_ok=True)
    digest = card_digest(src)
    target_name = f"{name}@{digest}"
    target = store / target_name
    created = False
    if not target.is_dir():
        tmp = Path(tempfile.mkdtemp(prefix=f".{target_name}.", dir=store))
        try:
            for f in src.iterdir():
                if f.is_file():
                    shutil.copy2(f, tmp / f.name)
            verify_bundle(tmp, public_key=public_key)  # the copy, not only the source
            os.chmod(tmp, 0o755)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        created = True
    link = models / name
    previous: Optional[Path] = None
    if link.is_symlink():
        previous = link.resolve()
    elif link.is_dir():  # a bundle shipped as a plain directory: move it into the store
        previous = store / f"{name}@{card_digest(link)}"
        if previous.exists():
            shutil.rmtree(link)
        else:
            os.rename(link, previous)
    elif link.exists():
        raise ModelError(f"{link} exists and is not a bundle directory")
    if previous is not None and previous == target.resolve():
        return Installed(name, target, model_version(models, name), previous, changed=False)
    _swap(link, target_name)
    try:
        loader(link, public_key)
    except Exception as err:
        if previous is not None:
            _swap(link, previous.name)
            where = f"rolled back to {previous.name}"
        else:
            link.unlink()
            where = "nothing installed"
        if created:
            shutil.rmtree(target, ignore_errors=True)
        log.error("model %s@%s failed its load/self-test, %s: %s", name, digest, where, err)
        raise ModelError(f"{name}@{digest} failed to load or self-test ({err}); {where}") from err
    if previous is not None:
        _point(store / f"{name}.previous", previous.name)
    log.info("model %s: installed %s (previous: %s)", name, target_name,
             previous.name if previous else "none")
    return Installed(name, target, model_version(models, name), previous, changed=True)


def _point(link: Path, target_name: str) -> None:
    """``link`` -> ``target_name`` (same directory), atomically."""
    tmp = link.with_name(f".{link.name}.tmp{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


def rollback(models_dir: Union[str, Path], name: str, *, public_key: Optional[bytes] = None,
             loader: Loader = load_check) -> Installed:
    """Swap the live name back to the previous version (which is checked again first)."""
    models = Path(models_dir)
    store = models / STORE
    prev_link = store / f"{name}.previous"
    if not prev_link.is_symlink():
        raise ModelError(f"model {name!r} has no previous version in {store}")
    previous = prev_link.resolve()
    loader(previous, public_key)
    link = models / name
    current = link.resolve() if link.is_symlink() else None
    _swap(link, previous.name)
    if current is not None:
        _point(prev_link, current.name)
    log.info("model %s: rolled back to %s", name, previous.name)
    return Installed(name, previous, model_version(models, name), current, changed=True)
