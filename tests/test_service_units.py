"""The service's parts in one process: notify, supervision, health files, unit, model installs."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from service_helpers import unit_user, wait_for

from frugalai.cli import cli
from frugalai.config import FlowConfig, loads_config
from frugalai.errors import ModelError
from frugalai.pipeline import Flow, Pipeline, ThresholdScorer
from frugalai.reading import Reading
from frugalai.runtime.bundle import SIGNATURE, write_card
from frugalai.scoring import Score
from frugalai.service import models
from frugalai.service.health import prometheus
from frugalai.service.health.status import format_status, read_status, redact
from frugalai.service.install import render_unit
from frugalai.service.notify import Notifier
from frugalai.service.supervisor import FlowRunner
from frugalai.sources.base import Backoff, SourceStats
from frugalai.uplink.outbox import Outbox

# ---------------------------------------------------------------------------- notify


def test_notifier_sends_datagrams_to_path_and_abstract_sockets(tmp_path: Path) -> None:
    for address in (str(tmp_path / "n.sock"), f"@frugalai-test-{os.getpid()}"):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(address.replace("@", "\0", 1) if address.startswith("@") else address)
        server.settimeout(2)
        n = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "4000000"})
        assert n.enabled and n.ping_every == 2.0
        assert n.ready("2 flows") and n.watchdog() and n.stopping()
        got = [server.recv(100).decode() for _ in range(3)]
        assert got == ["READY=1\nSTATUS=2 flows", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"]
        n.close()
        server.close()


def test_notifier_is_a_no_op_outside_systemd_and_respects_watchdog_pid() -> None:
    n = Notifier({})
    assert not n.enabled and not n.ready("x") and n.ping_every is None
    other = Notifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000",
                      "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.ping_every is None  # the watchdog is meant for another process
    assert not other.watchdog()  # a dead socket is logged, never raised


# ---------------------------------------------------------------------------- supervision


class FlakySource:
    """A source whose device driver crashes every ``crash_after`` readings (a real bug class:
    an exception the transport did not translate)."""

    instances = 0

    def __init__(self, crash_after: int = 5) -> None:
        FlakySource.instances += 1
        self.sensor = "flaky"
        self.stats = SourceStats()
        self.crash_after = crash_after
        self.closed = False

    def readings(self, stop: threading.Event) -> Iterator[Reading]:
        for i in range(self.crash_after):
            if stop.wait(0.01):
                return
            self.stats.readings += 1
            yield Reading(float(i), "flaky", {"x": float(i)})
        raise RuntimeError("driver bug")

    def close(self) -> None:
        self.closed = True


class SteadySource(FlakySource):
    def readings(self, stop: threading.Event) -> Iterator[Reading]:
        i = 0
        while not stop.wait(0.01):
            i += 1
            self.stats.readings += 1
            yield Reading(float(i), "steady", {"x": float(i)})


def make_flow(name: str, source: Any, scorer: Any = None) -> Flow:
    cfg = FlowConfig(name=name, source="test://", quantity="x", aggregate="mean", window_s=1,
                     model="threshold")
    return Flow(cfg, source, scorer or ThresholdScorer())


def test_a_crashing_source_is_restarted_and_the_other_flow_never_stops() -> None:
    outbox = Outbox(":memory:")
    flaky, steady = make_flow("flaky", FlakySource()), make_flow("steady", SteadySource())
    pipeline = Pipeline([flaky, steady], outbox, [])
    fast = Backoff(initial=0.01, cap=0.05, jitter=0.0)
    r1 = FlowRunner(flaky, pipeline.run_flow, FlakySource, backoff=fast).start()
    r2 = FlowRunner(steady, pipeline.run_flow, lambda: SteadySource()).start()
    try:
        wait_for(lambda: r1.restarts >= 3, 10, "three restarts")
        assert r1.last_error == "RuntimeError: driver bug"
        before = steady.stats.readings
        wait_for(lambda: steady.stats.readings > before + 10, 5, "the steady flow going on")
        assert r2.restarts == 0 and r2.health(60) is None and r1.health(60) is None
        assert flaky.stats.readings >= 15  # readings across restarts, scorer state kept
    finally:
        for r in (r1, r2):
            r.stop()
            assert r.join(5)
    assert r1.state == r2.state == "stopped"


class CrashingModel:
    def score_one(self, window: Any, value: float) -> Score:
        raise ZeroDivisionError("model bug")


class StuckModel:
    def __init__(self) -> None:
        self.release = threading.Event()

    def score_one(self, window: Any, value: float) -> Score:
        self.release.wait(30)
        return Score(0.0)


def test_a_crashing_model_is_contained_and_a_stuck_one_makes_the_flow_unhealthy() -> None:
    pipeline = Pipeline([], Outbox(":memory:"), [])
    crashing = make_flow("crash", SteadySource(), CrashingModel())
    r1 = FlowRunner(crashing, pipeline.run_flow, SteadySource).start()
    stuck_model = StuckModel()
    r2 = FlowRunner(make_flow("stuck", SteadySource(), stuck_model), pipeline.run_flow,
                    SteadySource).start()
    try:
        wait_for(lambda: crashing.stats.errors >= 1, 10, "a model error")
        assert r1.state == "running" and r1.health(60) is None and r1.restarts == 0
        wait_for(lambda: r2.busy_since is not None, 10, "the stuck step")
        time.sleep(0.3)
        reason = r2.health(stall_s=0.2)
        assert reason is not None and "stuck in one step" in reason
        assert r2.health(stall_s=60) is None
    finally:
        stuck_model.release.set()
        for r in (r1, r2):
            r.stop()
            assert r.join(5)


# ---------------------------------------------------------------------------- health files


SNAPSHOT = {
    "version": "0.1.0", "pid": 1, "state": "running", "healthy": True, "started": 100.0,
    "updated": 200.0, "flows": {"linky": {
        "model": "profile", "model_version": "builtin:profile", "state": "running",
        "device_up": True, "readings": 42, "decode_errors": 3, "events": 2, "restarts": 1,
        "readings_per_s": 0.5, "last_reading_ts": 199.0}},
    "outbox": {"depth": 4, "oldest_age_s": 12.5, "sent": 10, "last_event": {}},
    "uplinks": [{"url": 'mqtt://gw:***@h:1883 "x"', "state": "failing", "sent": 10}],
}


def test_prometheus_textfile_is_valid_exposition_format() -> None:
    text = prometheus.render(SNAPSHOT)
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\\n]|\\.)*",?)*\})? -?[0-9.e+]+$')
    for line in text.splitlines():
        assert line.startswith("# ") or sample.match(line), line
    assert 'frugalai_flow_decode_errors_total{flow="linky"} 3' in text
    assert "frugalai_outbox_depth 4" in text and "frugalai_outbox_oldest_age_seconds 12.5" in text
    assert 'frugalai_uplink_up{uplink="mqtt://gw:***@h:1883 \\"x\\""} 0' in text
    assert 'frugalai_model_info{flow="linky",model="profile",version="builtin:profile"} 1' in text
    names = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE")]
    assert len(names) == len(set(names))


def test_redact_hides_passwords() -> None:
    assert redact("mqtt://u:p@host:1883/x") == "mqtt://u:***@host:1883/x"
    assert redact("serial:///dev/ttyUSB0?protocol=tic") == "serial:///dev/ttyUSB0?protocol=tic"


def test_status_reads_state_dir_and_reports_a_dead_service(tmp_path: Path) -> None:
    from frugalai.events.event import Event

    with Outbox(tmp_path / "outbox.sqlite") as ob:
        stored = ob.append_many([Event("alarm", "linky", 1000.0, score=5.0),
                                 Event("clear", "linky", 2000.0, score=1.0)])
        ob.mark_sent(stored[:1])
    snap = {**SNAPSHOT, "pid": 2**22 + 12345}  # no such process
    (tmp_path / "status.json").write_text(json.dumps(snap))
    report = read_status(tmp_path)
    assert report["state"].startswith("dead (was running")
    assert report["outbox"]["depth"] == 1 and report["outbox"]["sent"] == 1
    assert report["outbox"]["last_event"]["linky"]["id"] == "linky:1"
    text = format_status(report, now=300.0)
    assert "flow linky: running, 0.50 readings/s, decode errors 3" in text
    assert "last event clear linky:1" in text and "outbox: 1 pending" in text
    result = CliRunner().invoke(cli, ["status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1 and "service: dead" in result.output
    result = CliRunner().invoke(cli, ["status", "--state-dir", str(tmp_path), "--json"])
    assert json.loads(result.output)["outbox"]["depth"] == 1


def test_liveness_is_judged_on_the_gateway_clock_not_the_meters(tmp_path: Path) -> None:
    # A Linky in standard mode stamps readings with its own DATE; this one is set eleven
    # months back (a meter whose clock was never set). It talks every few hundred ms: status
    # must say "0 s ago" (and that its clock is off), never "28985194 s ago".
    from frugalai.sim.clock import SimClock
    from frugalai.sim.household import HouseholdProfile
    from frugalai.sim.tic_meter import TicMeterEmulator
    from frugalai.sources.serial_source import SerialSource

    wrong = time.time() - 335 * 86400
    meter = TicMeterEmulator(HouseholdProfile(seed=1), SimClock(wrong, 120.0),
                             frame_period_s=30.0, mode="standard")
    meter.start()
    source = SerialSource.from_url(f"serial://{meter.path}?protocol=tic&mode=standard"
                                   "&time=meter", sensor="linky")
    stop = threading.Event()
    try:
        got = []
        for reading in source.readings(stop):
            got.append(reading)
            if len(got) == 2:
                break
    finally:
        stop.set()
        source.close()
        meter.close()
    st = source.stats
    assert st.last_reading_ts < time.time() - 300 * 86400  # the meter's clock, as sent
    assert abs(st.last_received - time.time()) < 600  # the gateway's, when it came
    flow = {**SNAPSHOT["flows"]["linky"], "last_reading_ts": st.last_reading_ts,
            "last_received": st.last_received}
    text = format_status({**SNAPSHOT, "state": "running", "flows": {"linky": flow}},
                         now=st.last_received + 2)
    assert "last reading 2 s ago (stamped 335 days behind by the device's clock)" in text, text
    # a status.json written before the field existed: the stamp, said to be the device's
    old = {**SNAPSHOT["flows"]["linky"], "last_reading_ts": 190.0}
    text = format_status({**SNAPSHOT, "flows": {"linky": old}}, now=200.0)
    assert "last reading 10 s ago (device time)" in text
    assert 'frugalai_flow_last_received_timestamp_seconds{flow="linky"}' in prometheus.render(
        {**SNAPSHOT, "flows": {"linky": flow}})


# ---------------------------------------------------------------------------- unit file


def config_for_unit(tmp_path: Path, state: str = "/var/lib/frugalai") -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f"""
[gateway]
id = "mairie"
state_dir = "{state}"
[[flow]]
name = "linky"
source = "serial:///dev/ttyUSB0?protocol=tic"
[[flow]]
name = "modbus"
source = "serial:///dev/serial/by-id/usb-FTDI_FT232R-if00-port0?protocol=tic"
[[uplink]]
url = "stdout://"
""")
    return path


def test_unit_is_hardened_and_names_only_the_configured_devices(tmp_path: Path) -> None:
    path = config_for_unit(tmp_path)
    user = unit_user()
    result = CliRunner().invoke(cli, ["service", "install", "--config", str(path), "--user",
                                      user, "--dry-run"])
    assert result.exit_code == 0, result.output
    unit = result.output
    for line in ("Type=notify", "Restart=on-failure", "WatchdogSec=30", f"User={user}",
                 "SupplementaryGroups=dialout", "ProtectSystem=strict",
                 "PrivateTmp=yes", "NoNewPrivileges=yes", "ReadWritePaths=/var/lib/frugalai",
                 "DevicePolicy=closed", "DeviceAllow=/dev/ttyUSB0 rw",
                 "DeviceAllow=char-ttyUSB rw", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 f"ExecStart={os.sys.executable} -m frugalai run --config {path}"):
        assert line in unit.splitlines(), line
    assert unit.count("ReadWritePaths=") == 1
    # Homes hidden: wholly, or (interpreter under a home, like a pyenv one) all but what runs.
    assert "ProtectHome=yes" in unit.splitlines() or (
        "ProtectHome=tmpfs" in unit.splitlines() and "BindReadOnlyPaths=" in unit)


def test_install_warns_about_what_private_tmp_hides(tmp_path: Path) -> None:
    from frugalai.config import load_config
    from frugalai.service.install import private_tmp_paths

    tmp = Path("/tmp")
    assert tmp.is_dir()
    base = Path(tempfile.mkdtemp(dir=tmp, prefix="frugalai-privtmp-"))
    try:
        path = config_for_unit(base, state=str(base / "state"))
        path.write_text(path.read_text().replace(
            'url = "stdout://"', f'url = "mqtts://h:8883?ca={base / "ca.pem"}"'))
        found = dict((what, where) for what, where in private_tmp_paths(str(path),
                                                                        load_config(path)))
        assert found["the config"] == str(path)
        assert found["gateway.state_dir"] == str(base / "state")
        assert found["uplink[0] (ca=)"] == str(base / "ca.pem")
        result = CliRunner().invoke(cli, ["service", "install", "--config", str(path), "--user",
                                          unit_user(), "--dry-run"])
        assert result.exit_code == 0, result.output
        assert f"warning: the config is under /tmp ({path}): the unit runs with PrivateTmp=yes" \
            in result.output
    finally:
        shutil.rmtree(base)
    # the same config under /etc-like paths: nothing of the config is flagged
    path = config_for_unit(tmp_path)
    here = [w for w, _ in private_tmp_paths("/etc/frugalai/gateway.toml", load_config(path))]
    assert not [w for w in here if w.startswith(("the config", "gateway.", "uplink", "flow"))]


def test_unit_refuses_a_relative_state_dir(tmp_path: Path) -> None:
    path = config_for_unit(tmp_path, state="./state")
    result = CliRunner().invoke(cli, ["service", "install", "--config", str(path), "--dry-run"])
    assert result.exit_code == 2 and "gateway.state_dir: must be an absolute path" in result.output


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze missing: "
                    "scripts/install-sysdeps installs the systemd package")
def test_unit_passes_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    path = config_for_unit(tmp_path)
    from frugalai.config import load_config

    unit = tmp_path / "frugalai.service"
    unit.write_text(render_unit(str(path), load_config(path), user=unit_user()))
    verify = subprocess.run([str(SYSTEMD_ANALYZE), "verify", str(unit)], capture_output=True,
                            text=True, cwd=tmp_path)
    assert verify.returncode == 0 and "frugalai.service" not in verify.stderr, verify.stderr
    sec = subprocess.run([str(SYSTEMD_ANALYZE), "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, cwd=tmp_path)
    score = re.search(r"Overall exposure level for frugalai.service: ([0-9.]+)", sec.stdout)
    assert score is not None, sec.stdout + sec.stderr
    assert float(score.group(1)) <= 2.0  # "OK" band; 9.6 for an unhardened unit


def test_the_collector_unit_is_hardened_like_the_gateways_and_runs_its_command(
        tmp_path: Path, mosquitto: Any) -> None:
    import shlex

    from frugalai.config import load_config

    user = unit_user()
    path = config_for_unit(tmp_path)
    gateway = render_unit(str(path), load_config(path), user=user).splitlines()
    out = tmp_path / "central" / "events.sqlite"
    result = CliRunner().invoke(cli, ["service", "install-collector", "--broker", mosquitto.url,
                                      "--out", str(out), "--user", user, "--dry-run"])
    assert result.exit_code == 0, result.output
    unit = result.output.splitlines()
    # every hardening setting of the gateway's unit, but its devices (the collector has none)
    start = gateway.index("# Hardening: read-only system, writable state dir only, serial "
                          "devices only.")
    for line in gateway[start + 1:]:
        if line.startswith(("DeviceAllow=", "ReadWritePaths=", "#", "[", "WantedBy")) \
                or not line:
            continue
        assert line in unit, line
    assert "PrivateDevices=yes" in unit and f"ReadWritePaths={out.parent}" in unit
    assert f"User={user}" in unit and not any(ln.startswith("DeviceAllow=") for ln in unit)
    # the command the unit runs is a working `frugalai collect`
    exec_line = next(ln for ln in unit if ln.startswith("ExecStart="))
    out.parent.mkdir()
    run = subprocess.run([*shlex.split(exec_line[len("ExecStart="):]), "--duration", "2"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{out}: 0 events" in run.stdout and out.exists()
    # what cannot go in a unit is refused, naming the option
    for args, key in ((["--broker", "mqtt://c:secret@127.0.0.1:1883"], "--broker: a password"),
                      (["--broker", mosquitto.url, "--out", "events.sqlite"], "--out: must be "
                                                                               "an absolute")):
        bad = CliRunner().invoke(cli, ["service", "install-collector", *args, "--user", user,
                                       "--dry-run"])
        assert bad.exit_code == 2 and key in bad.output, bad.output
        assert "secret" not in bad.output


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze missing: "
                    "scripts/install-sysdeps installs the systemd package")
def test_the_collector_unit_passes_systemd_analyze_verify_and_security(tmp_path: Path) -> None:
    from frugalai.service.collector_unit import render_collector_unit

    unit = tmp_path / "frugalai-collect.service"
    unit.write_text(render_collector_unit("mqtts://collector@broker.example.org:8883",
                                          user=unit_user()))
    verify = subprocess.run([str(SYSTEMD_ANALYZE), "verify", str(unit)], capture_output=True,
                            text=True, cwd=tmp_path)
    assert verify.returncode == 0 and "frugalai-collect.service" not in verify.stderr, \
        verify.stderr
    sec = subprocess.run([str(SYSTEMD_ANALYZE), "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, cwd=tmp_path)
    score = re.search(r"Overall exposure level for frugalai-collect.service: ([0-9.]+)",
                      sec.stdout)
    assert score is not None, sec.stdout + sec.stderr
    assert float(score.group(1)) <= 2.0  # the gateway unit's band ("OK")


# ---------------------------------------------------------------------------- model installs


def make_bundle(path: Path, version: str, good: bool = True) -> Path:
    path.mkdir(parents=True)
    if good:
        np.savez(path / "weights.npz", w=np.arange(4.0) + float(version.split(".")[-1]))
    else:  # hashes will match, content is not a model
        (path / "weights.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    write_card(path, {"name": "anomaly", "version": version, "task": "anomaly"})
    return path


def live_version(models_dir: Path) -> str:
    return json.loads((models_dir / "anomaly" / "card.json").read_text())["version"]


def test_install_swaps_atomically_and_rolls_back_a_bad_model(tmp_path: Path) -> None:
    mdir = tmp_path / "models"
    first = models.install(make_bundle(tmp_path / "v1", "1.0.1"), mdir)
    assert first.changed and first.previous is None and live_version(mdir) == "1.0.1"
    second = models.install(make_bundle(tmp_path / "v2", "1.0.2"), mdir)
    assert live_version(mdir) == "1.0.2" and second.previous == first.path.resolve()
    assert (mdir / "anomaly").is_symlink()
    with pytest.raises(ModelError, match="fails to load.*rolled back to anomaly@"):
        models.install(make_bundle(tmp_path / "bad", "1.0.3", good=False), mdir)
    assert live_version(mdir) == "1.0.2"  # the previous model is live again
    assert len(list((mdir / ".store").glob("anomaly@*"))) == 2  # the bad copy is gone
    again = models.install(tmp_path / "v2", mdir)
    assert not again.changed
    back = models.rollback(mdir, "anomaly")
    assert live_version(mdir) == "1.0.1" and back.version.startswith("1.0.1@")


def test_install_of_a_tampered_bundle_changes_nothing(tmp_path: Path) -> None:
    mdir = tmp_path / "models"
    models.install(make_bundle(tmp_path / "v1", "1.0.1"), mdir)
    bad = make_bundle(tmp_path / "v2", "1.0.2")
    np.savez(bad / "weights.npz", w=np.zeros(4))
    with pytest.raises(ModelError, match="sha256 mismatch for 'weights.npz'"):
        models.install(bad, mdir)
    assert live_version(mdir) == "1.0.1"


def test_signed_bundles_only_when_a_key_is_configured(tmp_path: Path) -> None:
    pytest.importorskip("cryptography", reason="signatures need the 'sign' extra")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    mdir = tmp_path / "models"
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\nstate_dir = "{tmp_path / "state"}"\nmodels_dir = "{mdir}"\n'
                      f'[models]\npublic_key = "{public.hex()}"\n'
                      '[[flow]]\nname = "a"\nsource = "serial:///dev/null?protocol=tic"\n')
    unsigned = make_bundle(tmp_path / "v1", "1.0.1")
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "install", str(unsigned), "--config", str(config)])
    assert result.exit_code == 1 and "unsigned bundle" in result.output
    assert not (mdir / "anomaly").exists()
    (unsigned / SIGNATURE).write_bytes(Ed25519PrivateKey.generate().sign(
        (unsigned / "card.json").read_bytes()))
    result = runner.invoke(cli, ["models", "install", str(unsigned), "--config", str(config)])
    assert "bad signature" in result.output
    (unsigned / SIGNATURE).write_bytes(key.sign((unsigned / "card.json").read_bytes()))
    result = runner.invoke(cli, ["models", "install", str(unsigned), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "anomaly: installed 1.0.1@" in result.output and live_version(mdir) == "1.0.1"
    assert "no running service found" in result.output


def test_public_key_forms(tmp_path: Path) -> None:
    import base64

    raw = bytes(range(32))
    assert models.parse_public_key(raw.hex()) == raw
    assert models.parse_public_key(base64.b64encode(raw).decode()) == raw
    (tmp_path / "k.pub").write_text(raw.hex() + "\n")
    assert models.parse_public_key(str(tmp_path / "k.pub")) == raw
    assert models.parse_public_key("") is None
    from frugalai.errors import ConfigError

    with pytest.raises(ConfigError, match="models.public_key: expected a 32-byte Ed25519"):
        models.parse_public_key("abcd")


def test_config_declares_service_and_models_keys() -> None:
    from frugalai.errors import ConfigError

    base = {"flow": [{"name": "a", "source": "serial:///dev/null"}]}
    cfg = loads_config({**base, "service": {"status_interval_s": 2}})
    assert cfg.service.status_interval_s == 2.0 and cfg.models.public_key == ""
    with pytest.raises(ConfigError, match="service.prometheus_textfile: node_exporter reads"):
        loads_config({**base, "service": {"prometheus_textfile": "/tmp/x.txt"}})
    with pytest.raises(ConfigError, match="service.stall_s: must be > 0"):
        loads_config({**base, "service": {"stall_s": 0}})


def test_install_writes_the_unit_and_creates_the_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "var" / "frugalai"
    path = config_for_unit(tmp_path, state=str(state))
    result = CliRunner().invoke(cli, ["service", "install", "--config", str(path), "--user",
                                      "root", "--unit-dir", str(tmp_path / "units")])
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "units" / "frugalai.service").read_text()
    assert f"ReadWritePaths={state}" in unit and "StateDirectory" not in unit
    assert state.is_dir() and f"created state dir {state}" in result.output
    assert "systemctl daemon-reload && systemctl enable --now frugalai" in result.output


def test_a_prometheus_dir_outside_the_state_dir_becomes_writable(tmp_path: Path) -> None:
    from frugalai.config import load_config

    path = config_for_unit(tmp_path)
    path.write_text(path.read_text() + "\n[service]\nprometheus_textfile = "
                    '"/var/lib/prometheus/node-exporter/frugalai.prom"\n')
    unit = render_unit(str(path), load_config(path), user=unit_user())
    assert "ReadWritePaths=/var/lib/frugalai /var/lib/prometheus/node-exporter" in unit


def test_the_daemon_loads_no_runtime_for_built_in_models() -> None:
    # A gateway running only built-in models never pays for the inference runtimes' imports.
    code = ("import sys, frugalai.service.daemon, frugalai.cli; "
            "print([m for m in ('frugalai.runtime', 'onnxruntime', 'paho') if m in sys.modules])")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert out.stdout.strip() == "[]"


def test_a_serial_symlink_allows_its_target_device(tmp_path: Path) -> None:
    # /dev/serial0 on a Pi is a link to ttyAMA0 or ttyS0: systemd matches device numbers, so
    # the unit must allow the node the link names. A real pty stands in for the UART here.
    from frugalai.config import load_config

    master, slave = os.openpty()
    try:
        target = os.ttyname(slave)
        link = tmp_path / "serial0"
        link.symlink_to(target)
        path = tmp_path / "gateway.toml"
        path.write_text(f'[gateway]\nid = "pi"\nstate_dir = "/var/lib/frugalai"\n[[flow]]\n'
                        f'name = "linky"\nsource = "serial://{link}?protocol=tic"\n')
        unit = render_unit(str(path), load_config(path), user=unit_user()).splitlines()
    finally:
        os.close(master)
        os.close(slave)
    assert f"DeviceAllow={target} rw" in unit
    assert not any(line.startswith(f"DeviceAllow={link}") for line in unit)  # not a /dev path


def test_device_allow_follows_links_and_keeps_hotplug_classes(tmp_path: Path) -> None:
    from frugalai.service.install import device_allow

    alias = tmp_path / "serial0"
    alias.symlink_to("/dev/ttyAMA0")  # dangling here: the link's text is what counts
    assert device_allow([str(alias)]) == ["DeviceAllow=/dev/ttyAMA0 rw"]
    assert device_allow(["/dev/ttyUSB0"]) == ["DeviceAllow=/dev/ttyUSB0 rw"]
    absent = device_allow(["/dev/serial/by-id/usb-FTDI-none-if00"])
    assert absent == ["DeviceAllow=/dev/serial/by-id/usb-FTDI-none-if00 rw",
                      "DeviceAllow=char-ttyUSB rw", "DeviceAllow=char-ttyACM rw"]


def test_an_interpreter_under_a_home_is_bound_read_only_and_a_closed_dir_refused(
        tmp_path: Path) -> None:
    from frugalai.errors import ConfigError
    from frugalai.service.install import check_interpreter, home_binds

    venv_python = "/home/pi/venv/bin/python"
    binds = home_binds(venv_python)
    assert "/home/pi/venv" in binds
    closed = tmp_path / "closed"
    (closed / "bin").mkdir(parents=True)
    exe = closed / "bin" / "python"
    exe.symlink_to(os.sys.executable)
    closed.chmod(0o700)
    try:
        # (the first closed directory on the way is named: pytest's own tmp root is 0700 too)
        with pytest.raises(ConfigError, match=re.escape(f"ExecStart: user 'nobody' cannot reach "
                                                        f"{exe} (no search permission on /")
                           + ".*python3 -m venv /opt/frugalai"):
            check_interpreter(str(exe), "nobody", protected=())
    finally:
        closed.chmod(0o755)
