"""What ``frugalai run`` loads at start-up (issue 26): a gateway pays for every module in
memory and start-up CPU, so the service path imports no TLS and no runtime it does not use."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                          "print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_service_imports_neither_ssl_nor_a_runtime() -> None:
    mods = _modules_after("import frugalai.cli, frugalai.service.daemon, frugalai.pipeline, "
                          "frugalai.plan")
    assert "frugalai.service.daemon" in mods  # the check itself ran
    assert "ssl" not in mods and "_ssl" not in mods
    assert "_hashlib" not in mods  # OpenSSL's libcrypto: frugalai.digest instead
    assert not {"onnxruntime", "ai_edge_litert", "tflite_runtime", "sklearn"} & mods


def test_tls_errors_are_still_described() -> None:
    from frugalai.mqtt_connect import describe_connect_error

    err = ssl.SSLCertVerificationError(1, "certificate verify failed")
    err.verify_message = "self-signed certificate"
    assert "certificate was not accepted (self-signed certificate)" in \
        describe_connect_error(err)
    assert describe_connect_error(ssl.SSLError(1, "x")).startswith("TLS handshake failed")
    assert describe_connect_error(ConnectionRefusedError()).startswith("connection refused")


def test_digest_is_sha256() -> None:
    import hashlib

    from frugalai.digest import sha256

    for data in (b"", b"abc", bytes(range(256)) * 1000):
        h = sha256()
        h.update(data)
        assert h.hexdigest() == hashlib.sha256(data).hexdigest() == sha256(data).hexdigest()
