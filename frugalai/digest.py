"""SHA-256 for the gateway's own checks (bundles, manifests, the fleet's status digests),
without loading OpenSSL.

``hashlib`` loads libcrypto on import: ~3.5 MB of a gateway's resident memory, a tenth of its
budget (issue 26: <= 40 MB), for a few kilobytes of model files hashed at start. CPython
ships its own SHA-256 (``_sha2`` from 3.12, ``_sha256`` before): the same digests, a little
slower on large inputs, which a gateway never hashes. A Python built without it falls back to
``hashlib``.

>>> sha256(b"abc").hexdigest()[:16]
'ba7816bf8f01cfea'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from hashlib import _Hash

sha256: Callable[..., _Hash]
try:
    from _sha2 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
except ImportError:
    try:
        from _sha256 import sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        from hashlib import sha256  # type: ignore[no-redef,unused-ignore]

__all__ = ["sha256"]
