"""Signed rollout manifests: build, sign, verify, and the bundle bytes they describe. Pure
(``cryptography`` is imported late, for Ed25519 only).

A manifest is data, never code: the gateway reads names, versions, sizes and hashes from it and
nothing else; file names must be plain names (no path), and nothing in it is run. The operator
signs the canonical JSON of the manifest (keys sorted, no spaces, ASCII) with Ed25519; the
message on ``frugalai/fleet/rollout/manifest`` is ``{"manifest": {...}, "sig": "<base64>"}``::

    {"v": 1, "action": "install", "id": "energy-anomaly-2-1764400000-canary",
     "issued": 1764400000.123, "model": "energy-anomaly", "version": "2",
     "targets": ["gw-01", "gw-07"],            # or ["*"]
     "watch": {"window_s": 600, "max_alarms": 5},   # optional: roll back past that many alarms
     "files": [{"name": "card.json", "bytes": 8690, "sha256": "..."}, ...],
     "bundle": {"transport": "mqtt", "sha256": "<of the concatenated files>",
                "bytes": 13016, "chunk_size": 16384, "chunks": 1}}

The bundle travels as the files' bytes concatenated in the manifest's order, cut into chunks
published (retained) on ``frugalai/fleet/rollout/bundle/<model>/<version>/<i>``, or fetched from
an HTTPS URL the operator hosts (``"bundle": {"transport": "https", "url": "https://...",
"sha256", "bytes"}``); either way the gateway checks the sha256 of the whole and of each file.
``action: "rollback"`` carries no files: the gateway puts its previous version back.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import Any

from frugalai import digest as hashing
from frugalai.errors import ModelError
from frugalai.fleet.topics import valid_name

VERSION = 1
ACTIONS = ("install", "rollback")
#: the largest bundle a gateway accepts over MQTT (a Pi's RAM holds it twice).
MAX_BUNDLE_BYTES = 64 << 20
DEFAULT_CHUNK = 16 << 10
_VERSION_RE = re.compile(r"^\d+(\.\d+){0,3}$")


class ManifestError(ModelError):
    """A manifest refused: unsigned, bad signature, malformed, a downgrade, tampered bytes."""


def canonical(obj: Any) -> bytes:
    """The bytes that are signed.

    >>> canonical({"b": 1, "a": [1, "é"]})
    b'{"a":[1,"\\\\u00e9"],"b":1}'
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def parse_version(text: str) -> tuple[int, ...]:
    """Dotted numbers, compared as tuples of ints.

    >>> parse_version("1.10") > parse_version("1.9")
    True
    """
    if not isinstance(text, str) or not _VERSION_RE.match(text):
        raise ManifestError(f"version must be dotted numbers (1, 2.1, 2.1.3), got {text!r}")
    return tuple(int(p) for p in text.split("."))


def pack(files: dict[str, bytes]) -> tuple[list[dict[str, Any]], bytes]:
    """(file entries, concatenated bytes), in sorted name order."""
    entries, blob = [], bytearray()
    for name in sorted(files):
        data = files[name]
        entries.append({"name": name, "bytes": len(data),
                        "sha256": hashing.sha256(data).hexdigest()})
        blob += data
    return entries, bytes(blob)


def build(*, action: str, model: str, version: str, targets: list[str], issued: float,
          rollout_id: str, files: dict[str, bytes] | None = None,
          chunk_size: int = DEFAULT_CHUNK, watch: tuple[int, int] | None = None,
          url: str | None = None) -> tuple[dict[str, Any], bytes]:
    """A manifest and the bundle bytes it describes (b"" for a rollback); ``watch`` =
    (window_s, max_alarms): the gateway rolls back by itself past that many alarms; ``url``:
    the gateways fetch the bytes (:func:`pack`'s) from this HTTPS URL instead of MQTT chunks."""
    manifest: dict[str, Any] = {"v": VERSION, "action": action, "id": rollout_id,
                                "issued": issued, "model": model, "version": version,
                                "targets": sorted(targets)}
    if watch is not None:
        manifest["watch"] = {"window_s": int(watch[0]), "max_alarms": int(watch[1])}
    blob = b""
    if action == "install":
        entries, blob = pack(files or {})
        manifest["files"] = entries
        if url is not None:
            manifest["bundle"] = {"transport": "https", "url": url, "bytes": len(blob),
                                  "sha256": hashing.sha256(blob).hexdigest()}
        else:
            manifest["bundle"] = {"transport": "mqtt", "bytes": len(blob),
                                  "sha256": hashing.sha256(blob).hexdigest(),
                                  "chunk_size": chunk_size,
                                  "chunks": max(1, math.ceil(len(blob) / chunk_size))}
    check(manifest)
    return manifest, blob


def chunks(manifest: dict[str, Any], blob: bytes) -> list[bytes]:
    size = int(manifest["bundle"]["chunk_size"])
    return [blob[i:i + size] for i in range(0, max(1, len(blob)), size)]


def sign(manifest: dict[str, Any], private_key: Any) -> bytes:
    """The message to publish: the manifest and its Ed25519 signature (an
    ``Ed25519PrivateKey``)."""
    sig = private_key.sign(canonical(manifest))
    return canonical({"manifest": manifest, "sig": base64.b64encode(sig).decode()})


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise ManifestError(f"malformed manifest: {what}")


def check(m: Any) -> dict[str, Any]:
    """Schema check of a manifest (types, names, sizes); ManifestError naming the field."""
    _need(isinstance(m, dict), "not an object")
    _need(m.get("v") == VERSION, f"v must be {VERSION}")
    _need(m.get("action") in ACTIONS, f"action must be one of {ACTIONS}")
    _need(isinstance(m.get("id"), str) and 0 < len(m["id"]) <= 200, "id")
    _need(isinstance(m.get("issued"), (int, float)) and not isinstance(m["issued"], bool),
          "issued must be a number")
    _need(isinstance(m.get("model"), str) and valid_name(m["model"]),
          f"model name {m.get('model')!r}")
    parse_version(m.get("version"))
    targets = m.get("targets")
    _need(isinstance(targets, list) and bool(targets) and all(
        isinstance(t, str) and (t == "*" or valid_name(t)) for t in targets), "targets")
    if "watch" in m:
        w = m["watch"]
        _need(isinstance(w, dict) and set(w) == {"window_s", "max_alarms"}, "watch must be "
              "{window_s, max_alarms}")
        _need(isinstance(w["window_s"], int) and 1 <= w["window_s"] <= 7 * 86400,
              "watch.window_s must be 1 s to 7 days")
        _need(isinstance(w["max_alarms"], int) and w["max_alarms"] >= 0,
              "watch.max_alarms must be an integer >= 0")
    if m["action"] == "install":
        files = m.get("files")
        _need(isinstance(files, list) and bool(files), "files")
        names = set()
        total = 0
        for f in files:
            _need(isinstance(f, dict) and isinstance(f.get("name"), str)
                  and valid_name(f["name"]), f"file name {f!r}")
            _need(isinstance(f.get("bytes"), int) and f["bytes"] >= 0, "file bytes")
            _need(isinstance(f.get("sha256"), str) and len(f["sha256"]) == 64, "file sha256")
            names.add(f["name"])
            total += f["bytes"]
        _need(len(names) == len(files), "file names repeat")
        _need("card.json" in names, "the bundle has no card.json")
        b = m.get("bundle")
        _need(isinstance(b, dict) and b.get("transport") in ("mqtt", "https"),
              "bundle.transport must be mqtt or https")
        _need(b.get("bytes") == total and total <= MAX_BUNDLE_BYTES, "bundle.bytes")
        _need(isinstance(b.get("sha256"), str) and len(b["sha256"]) == 64, "bundle.sha256")
        if b["transport"] == "https":
            url = b.get("url")
            _need(isinstance(url, str) and url.startswith("https://") and len(url) <= 2000
                  and not any(c.isspace() for c in url), "bundle.url must be an https:// URL")
        else:
            _need(isinstance(b.get("chunk_size"), int) and 1024 <= b["chunk_size"] <= 1 << 20,
                  "bundle.chunk_size")
            _need(b.get("chunks") == max(1, math.ceil(total / b["chunk_size"])),
                  "bundle.chunks")
    return dict(m)


def verify(message: bytes, public_key: bytes) -> dict[str, Any]:
    """The manifest of a published message, once its signature checks with ``public_key``
    (32 raw bytes); ManifestError when unsigned, signed by another key, altered or malformed."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ManifestError("verifying manifests needs 'cryptography' (frugalai[sign])"
                            ) from err
    try:
        envelope = json.loads(message)
    except ValueError as err:
        raise ManifestError(f"manifest message is not JSON: {err}") from None
    if not isinstance(envelope, dict) or "manifest" not in envelope:
        raise ManifestError("not a manifest message ({'manifest': ..., 'sig': ...})")
    sig = envelope.get("sig")
    if not isinstance(sig, str) or not sig:
        raise ManifestError("unsigned manifest refused")
    try:
        raw_sig = base64.b64decode(sig, validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(raw_sig,
                                                              canonical(envelope["manifest"]))
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        raise ManifestError("bad signature: the manifest was altered or signed by another "
                            "key") from None
    return check(envelope["manifest"])


def unpack(manifest: dict[str, Any], blob: bytes) -> dict[str, bytes]:
    """{file name: bytes} from the reassembled bundle, every hash checked."""
    b = manifest["bundle"]
    if len(blob) != b["bytes"] or hashing.sha256(blob).hexdigest() != b["sha256"]:
        raise ManifestError(f"bundle bytes do not match the manifest's sha256 ({len(blob)} "
                            f"bytes received, {b['bytes']} expected): tampered or corrupt")
    out, pos = {}, 0
    for f in manifest["files"]:
        data = blob[pos:pos + f["bytes"]]
        pos += f["bytes"]
        if hashing.sha256(data).hexdigest() != f["sha256"]:
            raise ManifestError(f"file {f['name']!r}: sha256 mismatch")
        out[f["name"]] = data
    return out


def load_private_key(path: str) -> Any:
    """An Ed25519 private key from a PEM (PKCS#8) file or a file holding the 32-byte seed in
    hex."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        data = open(path, "rb").read()  # noqa: SIM115 - tiny file
    except OSError as err:
        raise ManifestError(f"cannot read the signing key: {err}") from None
    if data.startswith(b"-----BEGIN"):
        key = load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ManifestError(f"{path}: not an Ed25519 private key")
        return key
    try:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data.decode().strip()))
    except ValueError as err:
        raise ManifestError(f"{path}: expected a PEM Ed25519 key or 64 hex digits: {err}"
                            ) from None
