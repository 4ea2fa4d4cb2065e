"""Rollout with the bundle on an HTTPS server the operator hosts (a real TLS server on
127.0.0.1 with its own CA), the manifest still signed and sent over a real Mosquitto."""

from __future__ import annotations

import http.server
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_fleet_rollout import needs_runtime, raw_public
from test_mqtt_uplink import _make_ca
from test_service_models import copy_bundle

from frugalai.cli import cli
from frugalai.fleet import manifest as mf
from frugalai.fleet.agent import Agent, fetch_https
from frugalai.fleet.health import model_info
from frugalai.fleet.link import parse_broker
from frugalai.fleet.rollout import rollout


def write_key(key: Ed25519PrivateKey, path: Path) -> Path:
    """The key as `fleet keygen` writes it (PEM, PKCS#8)."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path


class Server:
    """Serves ``root`` over HTTPS with the test CA's server certificate."""

    def __init__(self, root: Path, cert: Path, key: Path) -> None:
        root.mkdir(exist_ok=True)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, directory=str(root), **kw)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@needs_runtime
def test_bundles_fetched_over_https_are_installed_and_tampered_ones_refused(
        mosquitto: Any, tmp_path: Path) -> None:
    ca, cert, key_file = _make_ca(tmp_path, "web")
    www = tmp_path / "www"
    server = Server(www, cert, key_file)
    key = Ed25519PrivateKey.generate()
    agents = [Agent(parse_broker(mosquitto.url), n, tmp_path / n / "models", raw_public(key),
                    tmp_path / n / "state", https_ca=str(ca)) for n in ("gw-a", "gw-b")]
    broker = parse_broker(mosquitto.url)
    try:
        for a in agents:
            a.link.wait_connected(10)
        v1 = copy_bundle(tmp_path / "v1", "1")
        pem = write_key(key, tmp_path / "operator.key")  # the rollout signs the card with it
        packed = CliRunner().invoke(cli, ["fleet", "pack", str(v1), "--out",
                                          str(www / "v1.bin"), "--key", str(pem)])
        assert packed.exit_code == 0, packed.output
        assert "energy-anomaly 1" in packed.output
        stages = rollout(broker, v1, key, canary_percent=10, timeout=60,
                         gateways=["gw-a", "gw-b"], url=f"{server.url}/v1.bin")
        assert [s.ok for s in stages] == [True, True], [s.as_dict() for s in stages]
        assert {model_info(a.models_dir, "energy-anomaly")["version"] for a in agents} == {"1"}

        v2 = copy_bundle(tmp_path / "v2", "2")
        assert CliRunner().invoke(cli, ["fleet", "pack", str(v2), "--out",
                                        str(www / "v2.bin"), "--key", str(pem)]).exit_code == 0
        blob = bytearray((www / "v2.bin").read_bytes())
        blob[-10] ^= 0xFF  # the hosted file altered after the manifest was signed
        (www / "v2.bin").write_bytes(bytes(blob))
        stages = rollout(broker, v2, key, canary_percent=10, timeout=60,
                         gateways=["gw-a", "gw-b"], url=f"{server.url}/v2.bin")
        report = stages[0].outcomes["gw-a"]
        assert len(stages) == 1 and report["outcome"] == "refused"
        assert "tampered or corrupt" in report["reason"]
        missing = rollout(broker, v2, key, canary_percent=10, timeout=60,
                          gateways=["gw-a", "gw-b"], url=f"{server.url}/nope.bin")
        assert "HTTP 404" in missing[0].outcomes["gw-a"]["reason"]
        assert {model_info(a.models_dir, "energy-anomaly")["version"] for a in agents} == {"1"}
    finally:
        for a in agents:
            a.close()
        server.close()


def test_plain_http_and_untrusted_servers_are_refused(tmp_path: Path) -> None:
    with pytest.raises(mf.ManifestError, match="https:// URL"):
        mf.build(action="install", model="m", version="1", targets=["*"], issued=1.0,
                 rollout_id="r", files={"card.json": b"{}"}, url="http://example.org/b.bin")
    ca, cert, key_file = _make_ca(tmp_path, "web")
    other_ca, _, _ = _make_ca(tmp_path, "other")
    www = tmp_path / "www"
    server = Server(www, cert, key_file)
    try:
        (www / "b.bin").write_bytes(b"x" * 100)
        assert fetch_https(f"{server.url}/b.bin", 100, str(ca)) == b"x" * 100
        with pytest.raises(OSError, match="more than the 10 bytes"):
            fetch_https(f"{server.url}/b.bin", 10, str(ca))
        with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED|certificate verify"):
            fetch_https(f"{server.url}/b.bin", 100, str(other_ca))
    finally:
        server.close()
