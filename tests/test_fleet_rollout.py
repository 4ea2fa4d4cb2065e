"""Signed model rollout over a real Mosquitto, to real agents installing through
``service.models.install`` (copy, atomic switch, load and self-test on every backend).

Refused: tampered, unsigned, wrong-key and downgrade manifests, and bundle bytes that do not
match the signed hashes. A bundle that fails its self-test on the canary is rolled back by the
canary itself and the rollout stops before the other gateways.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from test_service_models import SHIPPED, break_weights, copy_bundle

from frugalai import runtime
from frugalai.fleet import manifest as mf
from frugalai.fleet.agent import Agent
from frugalai.fleet.health import model_info
from frugalai.fleet.link import Link, parse_broker
from frugalai.fleet.rollout import Operator, bundle_files, rollback, rollout
from frugalai.fleet.topics import MANIFEST, bundle_topic

ROOT = Path(__file__).resolve().parents[1]
needs_runtime = pytest.mark.skipif(
    not hasattr(runtime, "load_model") or not SHIPPED.is_dir(),
    reason="the inference runtime and models/energy-anomaly are not on this branch")


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def wait_for(cond: Any, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- pure: the manifest checks ------------------------------------------------------------

def signed(key: Ed25519PrivateKey, **over: Any) -> tuple[dict[str, Any], bytes, bytes]:
    files = {"card.json": b'{"name": "m"}', "weights.npz": b"\x00" * 3000}
    m, blob = mf.build(action="install", model="m", version="2", targets=["*"], issued=1.0,
                       rollout_id="r1", files=files, chunk_size=1024)
    m.update(over)
    return m, blob, mf.sign(m, key)


def test_a_signed_manifest_verifies_and_unpacks() -> None:
    key = Ed25519PrivateKey.generate()
    m, blob, msg = signed(key)
    assert mf.verify(msg, raw_public(key)) == m
    assert m["bundle"]["chunks"] == 3 and b"".join(mf.chunks(m, blob)) == blob
    assert mf.unpack(m, blob)["weights.npz"] == b"\x00" * 3000


def test_tampered_unsigned_and_wrong_key_manifests_are_refused() -> None:
    key = Ed25519PrivateKey.generate()
    _, _, msg = signed(key)
    envelope = json.loads(msg)
    envelope["manifest"]["version"] = "3"  # altered after signing
    with pytest.raises(mf.ManifestError, match="bad signature"):
        mf.verify(json.dumps(envelope).encode(), raw_public(key))
    envelope = json.loads(msg)
    del envelope["sig"]
    with pytest.raises(mf.ManifestError, match="unsigned manifest refused"):
        mf.verify(json.dumps(envelope).encode(), raw_public(key))
    with pytest.raises(mf.ManifestError, match="bad signature"):
        mf.verify(msg, raw_public(Ed25519PrivateKey.generate()))
    with pytest.raises(mf.ManifestError, match="not JSON"):
        mf.verify(b"\x00garbage", raw_public(key))


def test_paths_in_file_names_and_odd_versions_are_refused_even_when_signed() -> None:
    key = Ed25519PrivateKey.generate()
    m, _, _ = signed(key)
    m["files"][0]["name"] = "../../etc/cron.d/x"
    with pytest.raises(mf.ManifestError, match="file name"):
        mf.verify(mf.sign(m, key), raw_public(key))
    m, _, _ = signed(key, version="2; rm -rf /")
    with pytest.raises(mf.ManifestError, match="dotted numbers"):
        mf.verify(mf.sign(m, key), raw_public(key))


def test_bundle_bytes_that_do_not_match_the_signed_hashes_are_refused() -> None:
    key = Ed25519PrivateKey.generate()
    m, blob, _ = signed(key)
    with pytest.raises(mf.ManifestError, match="tampered or corrupt"):
        mf.unpack(m, blob[:-1] + b"\x01")


# -- real broker, real agents ---------------------------------------------------------------

class Fleet:
    def __init__(self, broker: Any, tmp: Path, names: list[str], key: Ed25519PrivateKey
                 ) -> None:
        self.tmp = tmp
        self.agents = {n: Agent(parse_broker(broker.url), n, tmp / n / "models", raw_public(key),
                                tmp / n / "state", status_interval=0.5) for n in names}
        for a in self.agents.values():
            a.link.wait_connected(10)

    def version(self, name: str) -> str:
        return model_info(self.agents[name].models_dir, "energy-anomaly").get("version", "")

    def last(self, name: str) -> dict[str, Any]:
        reports = self.agents[name].reports
        return reports[-1] if reports else {}

    def close(self) -> None:
        for a in self.agents.values():
            a.close()


@needs_runtime
def test_canary_then_all_and_a_bundle_failing_its_self_test_stops_at_the_canary(
        mosquitto: Any, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    names = ["gw-a", "gw-b", "gw-c"]
    fleet = Fleet(mosquitto, tmp_path, names, key)
    broker = parse_broker(mosquitto.url)
    try:
        # the gateways named: discovery from the retained statuses is the CLI test's part
        stages = rollout(broker, copy_bundle(tmp_path / "v1", "1"), key, canary_percent=10,
                         timeout=60, gateways=names)
        assert [(s.name, s.targets, s.ok) for s in stages] == [
            ("canary", ["gw-a"], True), ("all", names, True)], [s.as_dict() for s in stages]
        assert [fleet.version(n) for n in names] == ["1", "1", "1"]
        assert stages[1].outcomes["gw-a"]["reason"] == "already running this version"

        bad = break_weights(copy_bundle(tmp_path / "v2", "2"))
        stages = rollout(broker, bad, key, canary_percent=10, timeout=60,
                         gateways=names)
        assert len(stages) == 1 and not stages[0].ok
        canary = stages[0].outcomes["gw-a"]
        assert canary["outcome"] == "rolled_back" and "self-test failed" in canary["reason"]
        assert [fleet.version(n) for n in names] == ["1", "1", "1"]  # canary back on v1

        good2 = copy_bundle(tmp_path / "v3", "3")
        assert all(s.ok for s in rollout(broker, good2, key, canary_percent=50, timeout=60,
                         gateways=names))
        assert [fleet.version(n) for n in names] == ["3", "3", "3"]

        older = copy_bundle(tmp_path / "v2b", "2")
        stages = rollout(broker, older, key, canary_percent=10, timeout=60,
                         gateways=names)
        assert stages[0].outcomes["gw-a"]["outcome"] == "refused"
        assert "downgrade refused: 2 < installed 3" in stages[0].outcomes["gw-a"]["reason"]
        assert fleet.version("gw-a") == "3"

        back = rollback(broker, key, "energy-anomaly", "3", timeout=60, gateways=names)
        assert back.ok and {r["outcome"] for r in back.outcomes.values()} == {"reverted"}
        assert [fleet.version(n) for n in names] == ["1", "1", "1"]
    finally:
        fleet.close()


@needs_runtime
def test_forged_manifests_and_tampered_chunks_on_the_wire_change_nothing(
        mosquitto: Any, tmp_path: Path) -> None:
    key, intruder = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    fleet = Fleet(mosquitto, tmp_path, ["gw-a"], key)
    pub = Link(parse_broker(mosquitto.url), "intruder")
    pub.wait_connected(10)
    try:
        name, version, files = bundle_files(copy_bundle(tmp_path / "v1", "1"))

        def manifest(n: int) -> tuple[dict[str, Any], bytes]:
            return mf.build(action="install", model=name, version=version, targets=["*"],
                            issued=time.time(), rollout_id=f"forged-{n}", files=files)

        m, blob = manifest(1)
        for i, chunk in enumerate(mf.chunks(m, blob)):
            pub.publish(bundle_topic(name, version, i), chunk, retain=True)
        envelope = json.loads(mf.sign(m, key))
        envelope["manifest"]["targets"] = ["gw-a", "gw-z"]  # altered after signing
        cases = [
            ("tampered", json.dumps(envelope).encode(), "bad signature"),
            ("unsigned", mf.canonical({"manifest": manifest(2)[0]}), "unsigned manifest"),
            ("wrong key", mf.sign(manifest(3)[0], intruder), "bad signature"),
        ]
        for what, message, reason in cases:
            n = len(fleet.agents["gw-a"].reports)
            pub.publish(MANIFEST, message, retain=True)
            wait_for(lambda n=n: len(fleet.agents["gw-a"].reports) > n, what=what)
            last = fleet.last("gw-a")
            assert last["outcome"] == "refused" and reason in last["reason"], (what, last)
        # a valid signature, but chunks altered on the broker: the hashes refuse them
        m, blob = manifest(4)
        bad = bytearray(blob)
        bad[100] ^= 0xFF
        for i, chunk in enumerate(mf.chunks(m, bytes(bad))):
            pub.publish(bundle_topic(name, version, i), chunk, retain=True)
        op = Operator(parse_broker(mosquitto.url), key)
        try:
            op.publish_manifest(m)
        finally:
            op.close()
        wait_for(lambda: fleet.last("gw-a").get("id") == "forged-4", what="tampered chunks")
        assert fleet.last("gw-a")["outcome"] == "refused"
        assert "tampered or corrupt" in fleet.last("gw-a")["reason"]
        assert fleet.version("gw-a") == ""  # nothing was ever installed
        assert not (tmp_path / "gw-a" / "models" / "energy-anomaly").exists()
    finally:
        pub.close()
        fleet.close()


@needs_runtime
def test_the_cli_rolls_out_to_agent_processes(mosquitto: Any, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "frugalai"]
    keygen = subprocess.run([*cli, "fleet", "keygen", "--out", str(tmp_path / "op.key")],
                            capture_output=True, text=True, env=env, timeout=60)
    assert keygen.returncode == 0, keygen.stderr
    pub = (tmp_path / "op.key.pub").read_text().strip()
    procs = [subprocess.Popen([*cli, "fleet", "agent", "--broker", mosquitto.url, "--gateway",
                               f"gw{i}", "--models-dir", str(tmp_path / f"gw{i}/models"),
                               "--state-dir", str(tmp_path / f"gw{i}/state"),
                               "--public-key", pub, "--status-interval", "1"], env=env,
                              stdout=open(tmp_path / f"agent{i}.log", "wb"),  # noqa: SIM115
                              stderr=subprocess.STDOUT)
             for i in range(2)]
    try:
        def listed() -> bool:
            st = subprocess.run([*cli, "fleet", "status", "--broker", mosquitto.url, "--wait",
                                 "1"], capture_output=True, text=True, env=env, timeout=60)
            return "2 gateway(s), 0 flagged" in st.stdout
        wait_for(listed, 60, "2 agents online")
        done = subprocess.run([*cli, "fleet", "rollout", str(copy_bundle(tmp_path / "v1", "1")),
                               "--broker", mosquitto.url, "--key", str(tmp_path / "op.key"),
                               "--canary", "50%", "--timeout", "60"],
                              capture_output=True, text=True, env=env, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "canary: 1 gateway(s)" in done.stdout and "all: 2 gateway(s)" in done.stdout
        for i in range(2):
            assert model_info(tmp_path / f"gw{i}/models", "energy-anomaly")["version"] == "1"
        st = subprocess.run([*cli, "fleet", "status", "--broker", mosquitto.url, "--json"],
                            capture_output=True, text=True, env=env, timeout=60)
        models = {v["gateway"]: v["status"]["models"] for v in json.loads(st.stdout)}
        assert {m["energy-anomaly"]["version"] for m in models.values()} == {"1"}
    finally:
        for p in procs:
            p.terminate()
        for i, p in enumerate(procs):
            assert p.wait(30) == 0, (tmp_path / f"agent{i}.log").read_text()


@needs_runtime
def test_a_burst_of_alarms_after_the_switch_rolls_the_canary_back_by_itself(
        mosquitto: Any, tmp_path: Path) -> None:
    from frugalai.events.event import Event
    from frugalai.uplink.outbox import Outbox

    key = Ed25519PrivateKey.generate()
    names = ["gw-a", "gw-b"]
    fleet = Fleet(mosquitto, tmp_path, names, key)
    broker = parse_broker(mosquitto.url)
    try:
        assert all(s.ok for s in rollout(broker, copy_bundle(tmp_path / "v1", "1"), key,
                                         canary_percent=10, timeout=60,
                         gateways=names))
        # the canary's service stores alarms as soon as the new version runs
        outbox = Outbox(tmp_path / "gw-a" / "state" / "outbox.sqlite")
        stop = threading.Event()

        def alarms() -> None:
            wait_for(lambda: fleet.version("gw-a") == "2", what="the switch to v2")
            for _ in range(4):
                outbox.append(Event("alarm", "linky", time.time(), score=9.0, sensor_id=1))
                time.sleep(0.05)
            stop.set()

        t = threading.Thread(target=alarms)
        t.start()
        stages = rollout(broker, copy_bundle(tmp_path / "v2", "2"), key, canary_percent=10,
                         timeout=60, watch=(30, 2), gateways=names)
        t.join(30)
        assert stop.is_set()
        assert len(stages) == 1 and not stages[0].ok
        canary = stages[0].outcomes["gw-a"]
        assert canary["outcome"] == "rolled_back", canary
        assert "alarm(s) within 30 s after the switch, beyond the manifest's bound of 2" in \
            canary["reason"]
        assert [fleet.version(n) for n in names] == ["1", "1"]
        outbox.close()

        # no alarm within the window: healthy, then everyone
        stages = rollout(broker, copy_bundle(tmp_path / "v3", "3"), key, canary_percent=10,
                         timeout=60, watch=(2, 2), gateways=names)
        assert [s.ok for s in stages] == [True, True], [s.as_dict() for s in stages]
        assert stages[0].outcomes["gw-a"]["outcome"] == "healthy"
        assert [fleet.version(n) for n in names] == ["3", "3"]
    finally:
        fleet.close()
