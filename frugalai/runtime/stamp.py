"""A bundle's version and signature: what a rollout and a signed install need from a bundle.

A rollout compares versions (a downgrade is refused) and puts them in MQTT topic names, so a
version is dotted numbers, at most four (``1``, ``2.1``, ``2026.1206.213015``). ``frugalai
train`` stamps every bundle it writes with one (``--version`` to choose it): by default the
training time in UTC, ``YYYY.MMDD.HHMMSS``, so a bundle trained later is newer, and the card
also records ``content_sha256``, the hash of its files' hashes, which names the content
whatever the version (``status`` shows ``<version>@<digest of the card>``).

A signature (``card.json.sig``) is the Ed25519 signature of ``card.json``: since the card holds
the sha256 of every other file, it covers the whole bundle. ``frugalai models sign`` writes it
with the key ``frugalai fleet keygen`` made; gateways whose config sets ``[models] public_key``
refuse bundles without it (``[models] trust_shipped`` covers the bundles that ship inside the
wheel).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.errors import ModelError
from frugalai.runtime.bundle import CARD, SIGNATURE, verify_bundle, write_card

#: what a rollout accepts as a version (the same grammar as ``frugalai.fleet.manifest``).
VERSION_RE = re.compile(r"^\d+(\.\d+){0,3}$")


def check_version(text: str) -> str:
    """``text`` if it is a version a rollout takes, else ModelError saying the form.

    >>> check_version("2.1")
    '2.1'
    """
    if not VERSION_RE.match(text):
        raise ModelError(f"a bundle version is 1 to 4 dotted numbers (1, 2.1, 2026.1206.1), "
                         f"got {text!r}")
    return text


def time_version(now: float) -> str:
    """The default version: the UTC time, ``YYYY.MMDD.HHMMSS`` (later is higher).

    >>> time_version(1796592615.0)
    '2026.1206.213015'
    """
    t = time.gmtime(now)
    return f"{t.tm_year}.{t.tm_mon:02d}{t.tm_mday:02d}.{t.tm_hour:02d}{t.tm_min:02d}{t.tm_sec:02d}"


def content_sha256(card: dict[str, Any]) -> str:
    """sha256 of the card's ``files`` (names and hashes, sorted): the bundle's content, apart
    from the card's own text.

    >>> content_sha256({"files": {"w.npz": {"sha256": "ab", "bytes": 2}}})[:12]
    '595a11106f46'
    """
    listing = {name: meta.get("sha256") for name, meta in sorted(card.get("files", {}).items())}
    return hashlib.sha256(json.dumps(listing, sort_keys=True,
                                     separators=(",", ":")).encode()).hexdigest()


def stamp_version(bundle_dir: Union[str, Path], version: Optional[str] = None,
                  now: Optional[float] = None) -> dict[str, Any]:
    """Write ``version`` (default: :func:`time_version`) and ``content_sha256`` into the card
    of a verified bundle; return the new card. A signature made before no longer matches the
    card: it is removed (sign again)."""
    path = Path(bundle_dir)
    bundle = verify_bundle(path)
    card = {k: v for k, v in bundle.card.items() if k != "files"}
    card["version"] = check_version(version) if version else time_version(
        time.time() if now is None else now)
    card["content_sha256"] = content_sha256(bundle.card)
    sig = path / SIGNATURE
    if sig.exists():
        sig.unlink()
    return write_card(path, card)


def sign_card(card_bytes: bytes, private_key: Any) -> bytes:
    """The detached Ed25519 signature of a card's bytes (``private_key``: a
    cryptography Ed25519PrivateKey, as ``fleet.manifest.load_private_key`` returns)."""
    return bytes(private_key.sign(card_bytes))


def sign_bundle(bundle_dir: Union[str, Path], private_key: Any) -> Path:
    """Write ``card.json.sig`` for a verified bundle; ModelError if the card has no version
    (a signed bundle without one could never be told older or newer)."""
    path = Path(bundle_dir)
    bundle = verify_bundle(path)
    if not bundle.card.get("version"):
        raise ModelError(f"{path}: the card has no version; give one "
                         "(frugalai models sign BUNDLE --key KEY --version 1.0)")
    sig = path / SIGNATURE
    sig.write_bytes(sign_card((path / CARD).read_bytes(), private_key))
    verify_bundle(path, public_key=public_bytes(private_key))  # what a gateway will check
    return sig


def public_bytes(private_key: Any) -> bytes:
    """The 32 raw bytes of the public half (what ``[models] public_key`` holds, as hex)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return bytes(private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign_own_bundle(bundle_dir: Union[str, Path], private_key: Any,
                    version: Optional[str] = None) -> tuple[dict[str, Any], Path, str]:
    """``frugalai models sign``: (card, signature path, public key hex) after setting
    ``version`` (if given) and signing. A bundle shipped inside frugalai is refused: its card
    is the wheel's (copy the directory and sign the copy)."""
    from frugalai.runtime.bundle import shipped_models_dir

    path = Path(bundle_dir).resolve()
    shipped = shipped_models_dir().resolve()
    if path == shipped or shipped in path.parents:
        raise ModelError(f"{bundle_dir} is a bundle shipped inside frugalai; copy it "
                         f"(cp -r {bundle_dir} my-bundle) and sign the copy")
    if version:
        stamp_version(path, version)
    sig = sign_bundle(path, private_key)
    card = verify_bundle(path).card
    return card, sig, public_bytes(private_key).hex()
