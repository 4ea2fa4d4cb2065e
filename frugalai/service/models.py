"""Model updates without downtime: verify a bundle, swap it in atomically, roll back on failure.

Layout of ``gateway.models_dir``::

    models/
      anomaly -> .store/anomaly@3f2a9c01b7de        the live name: a symlink
      .store/anomaly@3f2a9c01b7de/                  immutable copies, named by card digest
      .store/anomaly@0b51d2e4aa10/
      .store/anomaly.previous -> anomaly@0b51d2e4aa10

``install`` copies the card, its signature and the regular files the card lists (nothing
else: a symlink, a name with ``/`` or ``..`` and an unlisted file are refused or left behind)
into a private staging dir of the store, and verifies that copy, never the source (sha256 of
every file; Ed25519 signature of the card when a public key is configured; with a key, an
older version than the live one is refused unless ``allow_downgrade``). A source directory
others can write gets a warning. Then the live symlink is replaced with ``os.replace``
(atomic: a reader sees the old or the new bundle, never a mix), the model is loaded through the
live name (weights read once and checked against the card) and runs its self-test; if either
fails, the previous link is put back and the install fails. The running service picks the new
version up on a reload (``frugalai.service.reload``: through systemd, or a PID proven to be our
service): only the flows using that model are rebuilt, and if the service cannot load it, it
keeps running the old one.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from frugalai import digest as hashing
from frugalai.errors import ModelError

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
    """:func:`frugalai.runtime.bundle.parse_public_key`, imported late (see ``CARD``)."""
    from frugalai.runtime.bundle import parse_public_key as parse

    return parse(value, key)


def card_digest(path: Path) -> str:
    """First 12 hex digits of the card's sha256: the card hashes every file, so this names
    the whole bundle content."""
    return hashing.sha256((path / CARD).read_bytes()).hexdigest()[:12]


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
    version = _card_version(real) or ""
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
    """Load every weight file from bytes read once and checked against the card's sha256:
    a file swapped after ``verify_bundle`` is refused, never loaded unverified."""
    import io

    import numpy as np

    for name, meta in bundle.card["files"].items():
        if not name.endswith((".npz", ".onnx")):
            continue
        fd = _open_regular(bundle.path, name)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
        if hashing.sha256(data).hexdigest() != meta.get("sha256"):
            raise ModelError(f"{bundle.path}: {name!r} changed after it was verified "
                             "(sha256 mismatch at load): refused")
        if name.endswith(".npz"):
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                for key in arrays.files:
                    np.asarray(arrays[key]).sum()
        else:
            try:
                import onnxruntime
            except ImportError:
                continue
            onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


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


def _open_regular(directory: Path, name: str) -> int:
    """A read-only fd on ``directory/name``, refusing a symlink (O_NOFOLLOW) or a non-file."""
    try:
        fd = os.open(directory / name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ModelError(f"{directory}: {name!r} is a symlink; a bundle holds regular "
                             "files only") from None
        raise ModelError(f"{directory}: cannot open {name!r}: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelError(f"{directory}: {name!r} is not a regular file")
    return fd


def _copy_one(src: Path, name: str, dest: Path) -> int:
    """Copy one listed file into the private staging dir; return the source's mode bits.

    The bytes written are what is verified afterwards, never the source: a source file
    changed after this copy does not matter, one changed during it fails the check."""
    fd = _open_regular(src, name)
    try:
        mode = os.fstat(fd).st_mode
        with os.fdopen(fd, "rb", closefd=False) as fin, open(dest / name, "xb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 16)
    finally:
        os.close(fd)
    os.chmod(dest / name, 0o444)
    return mode


def _warn_if_writable(src: Path, modes: dict[str, int],
                      warn: Optional[Callable[[str], None]]) -> None:
    """Warn (not refuse) when others may write the source: what gets installed is the copy,
    verified after copying, so a swap cannot slip in; but whoever can write there can hold
    back or replace the next bundle the operator installs from it."""
    try:
        modes = {".": os.stat(src).st_mode, **modes}
    except OSError:
        pass
    loose = sorted(n for n, m in modes.items() if m & (stat.S_IWGRP | stat.S_IWOTH))
    if not loose:
        return
    message = (f"warning: {src} is writable by other users ({', '.join(loose)}): the copy "
               "was verified, but install bundles from a directory only you can write")
    log.warning("%s", message)
    if warn is not None:
        warn(message)


def _stage(src: Path, store: Path, public_key: Optional[bytes],
           warn: Optional[Callable[[str], None]]) -> tuple[Path, Bundle]:
    """Copy the card, its signature and the files it lists (nothing else) into a private
    temporary dir of the store, then verify that copy: what is installed is what was checked."""
    from frugalai.runtime.bundle import SIGNATURE, check_file_name, verify_bundle
    from frugalai.runtime.card_schema import parse_card

    tmp = Path(tempfile.mkdtemp(prefix=".install.", dir=store))
    try:
        if not os.path.lexists(src / CARD):
            raise ModelError(f"{src}: not a model bundle ({CARD} missing)")
        modes = {CARD: _copy_one(src, CARD, tmp)}
        # The schema first (CardError naming the field): the file names it lists are then
        # plain names of a fixed alphabet before anything is copied by them.
        card = parse_card((tmp / CARD).read_bytes(), str(src / CARD))
        files = card.get("files")
        if not isinstance(files, dict) or not files:
            raise ModelError(f"{src / CARD}: the card lists no files")
        if os.path.lexists(src / SIGNATURE):
            modes[SIGNATURE] = _copy_one(src, SIGNATURE, tmp)
        for name in files:
            modes[name] = _copy_one(src, check_file_name(src, name), tmp)
        bundle = verify_bundle(tmp, public_key=public_key)  # the copy, not the source
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _warn_if_writable(src, modes, warn)
    try:
        left = sorted(p.name + (" (a symlink)" if p.is_symlink() else "")
                      for p in src.iterdir() if p.name not in modes)
    except OSError:
        left = []
    if left:  # not an error: nothing unlisted can reach the store
        message = f"not installed (not listed in the card): {', '.join(left)}"
        log.info("%s", message)
        if warn is not None:
            warn(message)
    return tmp, bundle


def _version_key(version: str) -> tuple[tuple[int, Any], ...]:
    """Order ``1.0.10`` after ``1.0.9``: numbers compare as numbers, other parts as text."""
    parts = re.findall(r"\d+|[A-Za-z]+", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def _card_version(path: Path) -> Optional[str]:
    """The ``version`` of the card at ``path`` if it reads and passes the schema, else None
    (a value shown and compared, so never taken from an unchecked card)."""
    from frugalai.runtime.card_schema import parse_card

    try:
        card = parse_card((path / CARD).read_bytes(), str(path / CARD))
    except (OSError, ModelError):
        return None
    version = card.get("version")
    return version if isinstance(version, str) and version else None


def _installed_version(link: Path) -> Optional[str]:
    return _card_version(link)


def _check_downgrade(link: Path, bundle: Bundle, allow: bool) -> None:
    """A signed bundle older than the live one is refused: an attacker who kept an old
    signed bundle with a known flaw must not be able to put it back."""
    current = _installed_version(link)
    new = bundle.card.get("version")
    if allow or current is None:
        return
    if not isinstance(new, str) or not new:
        raise ModelError(f"{bundle.name}: the signed bundle has no version and {current} is "
                         "installed; refused (use --allow-downgrade to force it)")
    if _version_key(new) < _version_key(current):
        raise ModelError(f"{bundle.name}: version {new} is older than the installed {current}; "
                         "a signed bundle is not downgraded (use --allow-downgrade, or "
                         "'frugalai models rollback')")


def install(bundle_path: Union[str, Path], models_dir: Union[str, Path], *,
            public_key: Optional[bytes] = None, name: Optional[str] = None,
            loader: Loader = load_check, allow_downgrade: bool = False,
            warn: Optional[Callable[[str], None]] = None) -> Installed:
    """Install a bundle under its name; ModelError (nothing changed) if it is refused.

    Only the card, its signature and the regular files the card lists are copied (symlinks,
    names leaving the bundle and unlisted files are refused or left behind); the copy is
    verified, never the source. With a public key configured, a bundle older than the live
    one is refused unless ``allow_downgrade``.
    """
    src = Path(bundle_path)
    models = Path(models_dir)
    store = models / STORE
    store.mkdir(parents=True, exist_ok=True)
    staged, bundle = _stage(src, store, public_key, warn)
    try:
        from frugalai.runtime.card_schema import NAME

        name = name or bundle.name
        if not NAME.regex.fullmatch(name) or name in BUILTIN:
            raise ModelError(f"invalid model name {name[:80]!r} (1-64 of A-Z a-z 0-9 . _ - "
                             "starting with a letter or digit, not a built-in)")
        link = models / name
        if public_key is not None:
            _check_downgrade(link, bundle, allow_downgrade)
        digest = card_digest(staged)
        target_name = f"{name}@{digest}"
        target = store / target_name
        created = False
        if not target.is_dir():
            os.chmod(staged, 0o755)
            os.rename(staged, target)
            created = True
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)
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
