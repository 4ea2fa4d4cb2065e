"""Model bundles: a directory with the model files and ``card.json``, every file hashed.

Layout::

    models/<name>/
        card.json          task, inputs/features, normalisation, thresholds, classes, data
                           provenance, metrics, and "files": {filename: {"sha256", "bytes"}}
        model.onnx, model.int8.onnx, model.int8.tflite, weights.npz, ...

Loading first checks the card itself against its schema (:mod:`frugalai.runtime.card_schema`:
every field's type, range, characters and length, signed or not; a
:class:`~frugalai.errors.CardError` naming the field), then every file listed in the card
against its sha256: a mismatch or a missing file is a :class:`~frugalai.errors.ModelError`
naming the file. A file present but not listed is refused
too (it could be swapped in by name). ``card.json`` itself is covered by an optional detached
Ed25519 signature (``card.json.sig``), checked when a public key is configured
(``verify_bundle(path, public_key=...)``); the card's hashes then cover every other file.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from frugalai import digest as hashing
from frugalai.errors import ConfigError, ModelError
from frugalai.runtime.card_schema import check_card, parse_card

CARD = "card.json"
SIGNATURE = "card.json.sig"
#: files a bundle directory may hold besides those its card lists.
UNLISTED_OK = {CARD, SIGNATURE, "README.md"}


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashing.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its directory and its card (checked against the schema).

    ``signed``: its card's Ed25519 signature was checked against the configured key when it
    was verified. ``allow_unsigned_native``: the user said, explicitly, that the ``native``
    backend may compile it even though it is neither signed nor one of the shipped bundles
    (``models.allow_unsigned_native``, ``--allow-unsigned-native``; see docs/security.md)."""

    path: Path
    card: dict[str, Any]
    signed: bool = False
    allow_unsigned_native: bool = False
    #: sha256 of the card bytes the fields were parsed from (read once)
    card_sha256: str = ""

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.path.name))

    def file(self, name: str) -> Path:
        """Path of a file the card lists (ModelError if it does not)."""
        if name not in self.card.get("files", {}):
            raise ModelError(f"{self.path}: bundle has no file {name!r}; it has "
                             f"{sorted(self.card.get('files', {}))}")
        return self.path / name


def put_key(d: dict[str, Any], key: str, value: Any) -> None:
    """Set ``d[key]`` where it is; a new key goes where ``sort_keys`` would put it if ``d`` is
    sorted (cards written by :func:`write_card` are), else at the end."""
    if key in d or list(d) != sorted(d):
        d[key] = value
        return
    items = sorted([*d.items(), (key, value)])
    d.clear()
    d.update(items)


def write_card(path: Union[str, Path], card: dict[str, Any]) -> dict[str, Any]:
    """Hash every file in ``path`` (except the card/signature) into ``card["files"]``; save it."""
    path = Path(path)
    files = {}
    for f in sorted(path.iterdir()):
        if f.is_file() and f.name not in UNLISTED_OK:
            files[f.name] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    card = {**card, "files": files}
    check_card(card)  # what training writes passes what loading checks
    (path / CARD).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card


def check_file_name(bundle: Path, name: Any) -> str:
    """A card's file name must be a plain name inside the bundle: no directory part, no
    ``..``, not absolute (``/etc/shadow`` or ``../x`` would be hashed, copied or loaded from
    outside the bundle)."""
    if (not isinstance(name, str) or not name or name in (".", "..") or "/" in name
            or "\\" in name or "\0" in name or name in (CARD, SIGNATURE)):
        raise ModelError(f"{bundle}: the card lists {name!r}: file names must be plain names "
                         "inside the bundle (no '/', no '..', not absolute)")
    return name


def _verify_signature(path: Path, public_key: bytes, card: bytes) -> None:
    """Check ``card`` (the bytes the fields were parsed from, read once) against the
    detached signature."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ModelError("a signing key is configured but the 'cryptography' package is "
                         "missing (pip install 'frugalai[sign]')") from err
    sig = path / SIGNATURE
    if not sig.is_file():
        raise ModelError(f"{path}: unsigned bundle ({SIGNATURE} missing) and a public key is "
                         f"configured")
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
        key.verify(sig.read_bytes(), card)
    except (InvalidSignature, ValueError) as err:
        raise ModelError(f"{path}: bad signature on {CARD}") from err


def _card_bytes(path: Path) -> bytes:
    card_path = path / CARD
    try:
        return card_path.read_bytes()
    except OSError as err:
        raise ModelError(f"{card_path}: unreadable card: {err.strerror or err}") from None


def read_card(path: Union[str, Path]) -> dict[str, Any]:
    """The card of the bundle at ``path``, checked against the schema (CardError naming the
    field) but not against the files: for listings and versions, never for loading."""
    return parse_card(_card_bytes(Path(path)), str(Path(path) / CARD))


def verify_bundle(path: Union[str, Path], public_key: Optional[bytes] = None, *,
                  allow_unsigned_native: bool = False) -> Bundle:
    """Check a bundle directory; return it, or raise ModelError naming the bad file (a
    CardError naming the field when the card breaks its schema)."""
    path = Path(path)
    card_path = path / CARD
    if not card_path.is_file():
        raise ModelError(f"{path}: not a model bundle ({CARD} missing)")
    data = _card_bytes(path)
    card = parse_card(data, str(card_path))
    if public_key is not None:
        _verify_signature(path, public_key, data)
    files = card.get("files")
    if not isinstance(files, dict) or not files:
        raise ModelError(f"{card_path}: the card lists no files")
    for name, meta in files.items():
        f = path / check_file_name(path, name)
        if not f.is_file():
            raise ModelError(f"{path}: file {name!r} listed in the card is missing")
        digest = sha256_file(f)
        if digest != meta.get("sha256"):
            raise ModelError(f"{path}: sha256 mismatch for {name!r} (expected "
                             f"{meta.get('sha256')}, got {digest}): the file was altered")
    extra = sorted(f.name for f in path.iterdir()
                   if f.is_file() and f.name not in files and f.name not in UNLISTED_OK)
    if extra:
        raise ModelError(f"{path}: files not listed in the card: {', '.join(extra)}")
    return Bundle(path, card, signed=public_key is not None,
                  allow_unsigned_native=allow_unsigned_native,
                  card_sha256=hashing.sha256(data).hexdigest())


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


# --- where bundles are found: the one model search path ---------------------------------------

#: the directory holding the bundles shipped inside the installed package (see pyproject).
PACKAGED_MODELS = "_models"


def card_is_shipped(path: Union[str, Path]) -> bool:
    """Whether the bundle directory ``path`` holds, byte for byte, the card of a bundle shipped
    with this frugalai (before verification: the card's hashes then cover the files)."""
    try:
        digest = hashing.sha256((Path(path) / CARD).read_bytes()).hexdigest()
    except OSError:
        return False
    return digest in shipped_card_digests()


def signature_key(path: Union[str, Path], public_key: Optional[bytes],
                  trust_shipped: bool) -> Optional[bytes]:
    """The key a bundle's signature is checked with: ``public_key``, except for a bundle
    shipped inside frugalai when ``[models] trust_shipped`` (the default) says so.

    A shipped bundle is known by its card, byte for byte one of the wheel's (a copy of it
    elsewhere is the same content: the card's sha256 of every file are checked all the same).
    Why trusting them is sound: they come in the same wheel as the code that checks
    signatures, so whoever could alter them could alter that code too; a signature by a key
    shipped in the same wheel would add nothing.
    ``trust_shipped = false`` makes them need a signature like any other bundle (and a flow
    naming one is refused, with the key named, by ``config check`` and ``run``).
    """
    if public_key is None or not trust_shipped:
        return public_key
    return None if card_is_shipped(path) else public_key


def shipped_models_dir() -> Path:
    """The bundles shipped with frugalai: ``frugalai/_models`` in an installed wheel, else the
    ``models/`` directory of this git checkout (an editable install)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / PACKAGED_MODELS
    if packaged.is_dir():
        return packaged
    return package.parent / "models"


def shipped_card_digests() -> frozenset[str]:
    """sha256 of every shipped bundle's card: a card with one of these digests is, byte for
    byte, a card frugalai was installed with (and its hashes cover every other file)."""
    out = set()
    root = shipped_models_dir()
    if root.is_dir():
        for d in sorted(root.iterdir()):
            try:
                out.add(hashing.sha256((d / CARD).read_bytes()).hexdigest())
            except OSError:
                continue
    return frozenset(out)


def is_shipped(bundle: Bundle) -> bool:
    """Whether ``bundle`` is one of the bundles shipped with frugalai (its verified card is
    byte for byte a shipped card), wherever it was copied or installed."""
    return bool(bundle.card_sha256) and bundle.card_sha256 in shipped_card_digests()


def search_path(models_dir: Union[str, Path, None]) -> list[Path]:
    """Where a model name is looked up, in order: ``models_dir`` (installed bundles), then the
    bundles shipped with frugalai."""
    path = [Path(models_dir)] if models_dir else []
    shipped = shipped_models_dir()
    return path + ([shipped] if shipped not in path else [])


def is_path_like(name_or_path: Union[str, Path]) -> bool:
    """A ``model`` value that names a directory rather than a bundle name."""
    text = str(name_or_path)
    return Path(text).is_absolute() or "/" in text or text.startswith(".")


def known_names(models_dir: Union[str, Path, None]) -> list[str]:
    """Bundle names on the search path (not verified: for messages and listings)."""
    names: set[str] = set()
    for d in search_path(models_dir):
        if d.is_dir():
            names.update(p.name for p in d.iterdir()
                         if not p.name.startswith(".") and (p / CARD).is_file())
    return sorted(names)


def resolve_bundle(name_or_path: Union[str, Path], models_dir: Union[str, Path, None] = None
                   ) -> Path:
    """The bundle directory a flow's ``model`` (or a CLI argument) names.

    A path (absolute, or with a ``/``) is taken as is; a name is looked up on
    :func:`search_path`. ModelError naming what is known otherwise.
    """
    if is_path_like(name_or_path) or (Path(name_or_path) / CARD).is_file():
        p = Path(name_or_path)
        if (p / CARD).is_file():
            return p
        raise ModelError(f"no model bundle at {str(name_or_path)!r} ({CARD} missing)")
    for d in search_path(models_dir):
        if (d / str(name_or_path) / CARD).is_file():
            return d / str(name_or_path)
    where = ", then ".join(str(d) for d in search_path(models_dir))
    raise ModelError(f"no model bundle {str(name_or_path)!r} (looked in {where}); known: "
                     f"{', '.join(known_names(models_dir)) or 'none'}")


def bundle_version(bundle: Bundle) -> str:
    """``<card version>@<first 12 hex of the card's sha256>``: the card hashes every file, so
    this names the whole content (what ``status`` shows and a reload compares)."""
    digest = hashing.sha256((bundle.path / CARD).read_bytes()).hexdigest()[:12]
    version = str(bundle.card.get("version", "") or "")
    return f"{version}@{digest}" if version else digest
