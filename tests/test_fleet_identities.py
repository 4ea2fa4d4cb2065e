"""Gateway identities and the generated broker ACL (issue 24).

Hostile gateway ids (words of the fleet's topic tree, MQTT wildcards and separators,
``$``-prefixed, empty, overlong, control characters) are refused by ``frugalai config check``
and by ``frugalai run`` (exit 2 naming ``gateway.id``). The reserved words come from the topic
layout itself. ``frugalai fleet acl`` generates the Mosquitto ACL from that layout, and on a
real Mosquitto (password file + the generated ACL) no gateway can write outside its own
leaves: a privileged subscriber sees none of the forbidden publications and all the
legitimate ones.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from mqtt_broker import MOSQUITTO, Mosquitto

from frugalai.cli import cli
from frugalai.fleet import topics
from frugalai.fleet.acl import acl_text
from frugalai.fleet.link import Link, parse_broker

CONFIG = """\
[gateway]
id = {id}
state_dir = "{state}"

[[flow]]
name = "linky"
source = "serial:///dev/ttyUSB0?protocol=tic"
sensor_id = 1

[[uplink]]
url = "stdout://"
"""

HOSTILE = ["fleet", "rollout", "status", "event", "manifest", "bundle", "Fleet", "ROLLOUT",
           "+", "#", "gw+", "gw#1", "gw/1", "/", "$SYS", "$gw", "", "g" * 65, "gw\n1",
           "gw\x00", "gw\t1", "gw 1", "\u202egw", "gw\u2028"]


def write_config(tmp_path: Path, gateway_id: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(CONFIG.format(id=json.dumps(gateway_id), state=tmp_path / "state"))
    return path


def test_the_reserved_words_are_the_layouts_own() -> None:
    words = {w for t in topics.LAYOUT for w in t.levels() if not w.startswith("{")}
    assert words - {topics.ROOT} == topics.RESERVED
    assert {"fleet", "rollout"} <= topics.RESERVED
    # the layout is complete: every topic the code publishes is one of its templates
    from frugalai.uplink.mqtt import MqttSink

    templates = {t.template for t in topics.LAYOUT}
    params = inspect.signature(MqttSink.__init__).parameters
    assert {params["topic"].default, params["status_topic"].default} <= templates
    assert topics.status_topic("g") == topics.topic_of("status", gateway="g")
    assert topics.MANIFEST in templates
    assert topics.bundle_topic("m", "1", 0) == topics.topic_of("bundle", model="m",
                                                                version="1", index=0)


@pytest.mark.parametrize("gateway_id", HOSTILE, ids=repr)
def test_config_check_refuses_a_hostile_gateway_id(tmp_path: Path, gateway_id: str) -> None:
    path = write_config(tmp_path, gateway_id)
    result = CliRunner().invoke(cli, ["config", "check", str(path)])
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]  # click's usage lines, then the error
    assert line.startswith("Error:") and "gateway.id" in line, result.output
    problem = str(topics.identity_problem(gateway_id))
    # the loader refuses control characters in any string before the id's own rule runs
    assert problem in line or ("control characters" in problem
                               and "control characters" in line), line


@pytest.mark.parametrize("gateway_id", ["fleet", "+", "$SYS"])
def test_run_refuses_it_too(tmp_path: Path, gateway_id: str) -> None:
    path = write_config(tmp_path, gateway_id)
    result = CliRunner().invoke(cli, ["run", "--config", str(path), "--duration", "0"])
    assert result.exit_code == 2 and "gateway.id" in result.output, result.output


def test_the_agent_refuses_a_hostile_gateway_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["fleet", "agent", "--broker", "mqtt://127.0.0.1:1",
                                      "--gateway", "rollout", "--models-dir", str(tmp_path),
                                      "--state-dir", str(tmp_path), "--duration", "0"])
    assert result.exit_code == 2 and "--gateway" in result.output \
        and "'rollout' is a word of the fleet's topic tree" in result.output, result.output


@pytest.mark.parametrize("gateway_id", ["gw-01", "mairie-annexe", "frugalai", "gw.1", "Gw_2",
                                        "fleet-1", "rollouts", "g" * 64])
def test_ordinary_ids_pass(tmp_path: Path, gateway_id: str) -> None:
    result = CliRunner().invoke(cli, ["config", "check", str(write_config(tmp_path,
                                                                          gateway_id))])
    assert result.exit_code == 0, result.output


def test_fleet_acl_prints_the_generated_file_and_refuses_a_reserved_user(tmp_path: Path
                                                                          ) -> None:
    result = CliRunner().invoke(cli, ["fleet", "acl"])
    assert result.exit_code == 0 and result.output == acl_text()
    assert "pattern write frugalai/fleet/%u/status" in result.output.splitlines()
    out = tmp_path / "acl"
    result = CliRunner().invoke(cli, ["fleet", "acl", "--chirpstack", "--out", str(out)])
    assert result.exit_code == 0 and out.read_text() == acl_text(chirpstack=True)
    result = CliRunner().invoke(cli, ["fleet", "acl", "--operator", "rollout"])
    assert result.exit_code == 2 and "rollout" in result.output


# --- the ACL on a real broker ----------------------------------------------------------------

GATEWAYS = ["gw-a", "gw-b", "mairie.annexe", "frugalai"]
PASSWORD = "pw-{}"


def forbidden(me: str, other: str) -> list[str]:
    """Topics a gateway must not be able to write."""
    return [topics.MANIFEST, topics.bundle_topic("energy-anomaly", "2", 0),
            f"{topics.BUNDLE_ROOT}/x", topics.status_topic(other), topics.report_topic(other),
            f"frugalai/{other}/linky/event", f"frugalai/{other}/status",
            "frugalai/fleet/status", "frugalai/fleet/rollout/status", "frugalai/fleet/x",
            f"frugalai/fleet/{me}/other", f"frugalai/{me}/linky/event/x", f"frugalai/{me}/x",
            "frugalai/fleet/rollout/event", "frugalai/x/y/z/event", "elsewhere/topic",
            "homeassistant/sensor/x/config"]


def allowed(me: str) -> list[str]:
    return [f"frugalai/{me}/linky/event", f"frugalai/{me}/status", topics.status_topic(me),
            topics.report_topic(me)]


@pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed: run "
                    "scripts/install-sysdeps (make test does)")
def test_no_gateway_can_write_outside_its_own_topics(tmp_path: Path) -> None:
    users = {u: PASSWORD.format(u) for u in [*GATEWAYS, "operator", "collector", "auditor"]}
    acl = acl_text() + "\n# the test's privileged subscriber\nuser auditor\ntopic read #\n"
    broker = Mosquitto(tmp_path / "broker", users=users, acl=acl).start()
    seen: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def url(user: str) -> str:
        return f"mqtt://{user}:{users[user]}@{broker.host}:{broker.port}"

    def on_message(topic: str, payload: bytes, _retain: bool) -> None:
        with lock:
            seen.append((topic, payload))

    try:
        auditor = Link(parse_broker(url("auditor")), "auditor", on_message=on_message,
                       subscriptions=(("#", 1),))
        auditor.wait_connected(10)
        time.sleep(0.3)  # SUBACK before the first publication
        # what the gateways may read: the operator's rollout topics, nobody else's
        got_by_gw: dict[str, list[str]] = {}
        readers = {}
        for gw in GATEWAYS[:2]:
            got_by_gw[gw] = []
            readers[gw] = Link(parse_broker(url(gw)), f"{gw}-reader",
                               on_message=lambda t, _p, _r, gw=gw: got_by_gw[gw].append(t),
                               subscriptions=(("#", 1), (topics.MANIFEST, 1),
                                              (topics.bundle_topic("m", "1"), 1)))
            readers[gw].wait_connected(10)
        operator = Link(parse_broker(url("operator")), "operator")
        operator.wait_connected(10)
        operator.publish(topics.MANIFEST, b"op-manifest", retain=True)
        operator.publish(topics.bundle_topic("m", "1", 0), b"op-chunk", retain=True)
        attempts = 0
        for i, gw in enumerate(GATEWAYS):
            other = GATEWAYS[(i + 1) % len(GATEWAYS)]
            link = Link(parse_broker(url(gw)), f"{gw}-client")
            link.wait_connected(10)
            for topic in forbidden(gw, other):
                link.publish(topic, f"FORGED by {gw}".encode(), retain=True)
                attempts += 1
            for topic in allowed(gw):  # after the forbidden ones: the same order on arrival
                link.publish(topic, f"ok {gw}".encode())
            link.close()
        want = {(t, f"ok {gw}".encode()) for gw in GATEWAYS for t in allowed(gw)}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not want <= set(seen):
            time.sleep(0.05)
        with lock:
            got = list(seen)
        assert want <= set(got), sorted(want - set(got))
        forged = [(t, p) for t, p in got if p.startswith(b"FORGED")]
        assert forged == [], forged
        assert broker.log_text().count("Denied PUBLISH") == attempts
        # nothing forged was retained either: a fresh subscriber gets only the operator's
        retained: list[tuple[str, bytes]] = []
        fresh = Link(parse_broker(url("auditor")), "auditor-2",
                     on_message=lambda t, p, _r: retained.append((t, p)),
                     subscriptions=(("#", 1),))
        fresh.wait_connected(10)
        operator.publish("frugalai/fleet/rollout/end", b"end")  # after the retained ones
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and ("frugalai/fleet/rollout/end", b"end") \
                not in retained:
            time.sleep(0.05)
        assert sorted(t for t, p in retained if p != b"end") == sorted(
            [topics.MANIFEST, topics.bundle_topic("m", "1", 0)])
        # and a gateway reads the rollout topics, never another gateway's messages
        for gw, got_topics in got_by_gw.items():
            assert topics.MANIFEST in got_topics and topics.bundle_topic("m", "1", 0) in \
                got_topics, (gw, got_topics)
            assert all(t.startswith(topics.BUNDLE_ROOT) or t == topics.MANIFEST
                       for t in got_topics), (gw, got_topics)
        for link in (auditor, fresh, operator, *readers.values()):
            link.close()
    finally:
        broker.stop()


def test_a_reserved_id_under_the_old_hand_written_acl_was_the_hole(tmp_path: Path) -> None:
    """Why the ids are reserved: under the ``%u`` patterns docs/fleet.md used to give, a
    gateway called ``rollout`` may write the manifest; under the generated one it may not."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed: run scripts/install-sysdeps (make test does)")
    old = ("user operator\ntopic readwrite frugalai/#\n\npattern write frugalai/%u/#\n"
           "pattern write frugalai/fleet/%u/#\npattern read frugalai/fleet/rollout/#\n")
    results = {}
    for name, acl in (("old", old), ("generated", acl_text())):
        users = {"rollout": "pw1", "operator": "pw2"}
        seen: list[bytes] = []
        broker = Mosquitto(tmp_path / name, users=users, acl=acl).start()
        try:
            op = Link(parse_broker(f"mqtt://operator:pw2@{broker.host}:{broker.port}"), "op",
                      on_message=lambda _t, p, _r, seen=seen: seen.append(p),
                      subscriptions=((topics.MANIFEST, 1),))
            op.wait_connected(10)
            time.sleep(0.3)
            gw = Link(parse_broker(f"mqtt://rollout:pw1@{broker.host}:{broker.port}"), "gw")
            gw.wait_connected(10)
            gw.publish(topics.MANIFEST, b"FORGED", retain=True)
            gw.close()
            op.publish(topics.MANIFEST, b"end")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and b"end" not in seen:
                time.sleep(0.05)
            results[name] = b"FORGED" in seen
            op.close()
        finally:
            broker.stop()
    assert results == {"old": True, "generated": False}
    assert topics.identity_problem("rollout") is not None  # and config check refuses it


def test_docs_fleet_shows_the_generated_acl() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "fleet.md").read_text()
    section = text.split("## Broker ACLs", 1)[1]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section, re.S | re.M)
    shown = next(body for lang, body in blocks if not lang)  # the plain block, not the sh one
    generated = [ln for ln in acl_text().splitlines() if ln and not ln.startswith("#")]
    assert [ln for ln in shown.splitlines() if ln] == generated
