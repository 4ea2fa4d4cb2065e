"""Fleet scale test: N gateway processes on one real Mosquitto with per-gateway credentials and
ACLs; health, a canary rollout to all, a broken bundle rolled back by the canary itself, events
collected during all of it with 0 lost, and the broker restarted in the middle.

    python benchmarks/fleet_scale.py --gateways 50 [--publish]  # make fleet-test
    python benchmarks/fleet_scale.py gateway ...            # one gateway process (used above)

Writes fleet.{json,md} to build/benchmarks/ (benchmarks/results/ with ``--publish``): time to
roll out to all, broker CPU and memory (from /proc), messages per second through the broker,
bytes per gateway per day of fleet traffic. Each gateway process runs the real rollout agent
(frugalai.fleet.agent, installing through service.models with the bundle's self-test) and the
real uplink path for its events (SQLite outbox -> MqttSink, QoS 1); the collector is frugalai.fleet.collector.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402

from frugalai.fleet.acl import acl_text  # noqa: E402

SHIPPED = ROOT / "models" / "energy-anomaly"

# the broker ACL is the generated one (frugalai fleet acl); the operator of the benchmark also
# reads the broker's $SYS counters
ACL = acl_text().replace("topic readwrite frugalai/#\n",
                         "topic readwrite frugalai/#\ntopic read $SYS/#\n", 1)


# ---------------------------------------------------------------------------- gateway process


class SerialGateway:
    """An emulated TIC meter on a pty and the real ``frugalai run`` reading it at TIC's 7E1
    (energy-anomaly on the reference backend), its events and its fleet status (``fleet=1``)
    on the gateway's own MQTT account. ``restart`` and ``reload`` are what an operator or a
    rollout does to it; the harness checks that its flow comes back by itself."""

    def __init__(self, work: Path, broker: str, gateway: str, status_interval: float,
                 initial_bundle: Path) -> None:
        from service_helpers import start_meter

        from frugalai.service import models as mmodels

        self.work = work
        self.broker = broker
        self.gateway = gateway
        self.status_interval = status_interval
        self.state = work / "state"
        self.config = work / "gateway.toml"
        self.reopens = 0
        mmodels.install(initial_bundle, work / "models")  # the daemon needs a model to start
        self.meter = start_meter(work / "ttyTIC", speed=2.0)
        self._write()
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.start()

    def _write(self) -> None:
        # a reload that changes the source URL makes the daemon reopen the port (7E1 again
        # on a pty opened before: refused by some kernels, read at 8N1 in software)
        tail = "&time=wall" if self.reopens % 2 else ""
        self.config.write_text(f"""[gateway]
id = "{self.gateway}"
state_dir = "{self.state}"
models_dir = "{self.work / 'models'}"

[service]
status_interval_s = {self.status_interval}
stop_timeout_s = 30.0

[[flow]]
name = "linky"
source = "serial://{self.work / 'ttyTIC'}?protocol=tic&mode=historique{tail}"
sensor_id = 2
model = "energy-anomaly"
backend = "reference"
precision = "int8"
summary_s = 5

[[uplink]]
url = "{self.broker}?fleet=1&fleet_interval={self.status_interval}&keepalive=10&timeout=5"
""")

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "frugalai", "run", "--config", str(self.config)], env=env,
            stdout=open(self.work / "daemon.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self) -> None:
        """A config change that reopens the port, then SIGHUP."""
        self.reopens += 1
        self._write()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def ask_reload(self) -> str:
        """What the rollout agent calls after a model changed (``fleet agent --config``)."""
        from frugalai.service.reload import reload_service

        return reload_service(self.state, self.config, unit=f"frugalai-bench-{self.gateway}")

    def close(self) -> dict[str, int]:
        """Stop the daemon (it flushes its outbox) and the meter; its event counts."""
        import sqlite3

        code = self.stop()
        self.meter.close()
        con = sqlite3.connect(self.state / "outbox.sqlite")
        try:
            created = int(con.execute("SELECT COALESCE(SUM(next), 0) FROM sequences")
                          .fetchone()[0])
            pending = int(con.execute("SELECT COUNT(*) FROM events WHERE sent_at IS NULL")
                          .fetchone()[0])
        finally:
            con.close()
        return {"created": created, "pending": pending, "exit_code": code}


def gateway_main(args: argparse.Namespace) -> int:
    """One gateway: the rollout agent (+ status) and an event source through the outbox; with
    ``--serial``, also a TIC meter and the real daemon on it (SIGUSR1 restarts the daemon,
    SIGUSR2 reloads it with a changed source URL)."""
    from frugalai.errors import UplinkError
    from frugalai.events.event import Event
    from frugalai.fleet.agent import Agent
    from frugalai.fleet.link import parse_broker
    from frugalai.uplink.mqtt import MqttSink
    from frugalai.uplink.outbox import Outbox

    work = Path(args.dir)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    asked: list[str] = []
    signal.signal(signal.SIGUSR1, lambda *_: asked.append("restart"))
    signal.signal(signal.SIGUSR2, lambda *_: asked.append("reload"))
    serial = SerialGateway(work, args.broker, args.gateway, args.status_interval,
                           Path(args.serial)) if args.serial else None
    agent = Agent(parse_broker(args.broker), args.gateway, work / "models",
                  bytes.fromhex(args.public_key), work / "state",
                  # with a daemon, the daemon publishes the status (with its flows)
                  status_interval=0.0 if serial else args.status_interval,
                  on_change=serial.ask_reload if serial else None)
    outbox = Outbox(work / "outbox.sqlite")
    sink = MqttSink.from_url(f"{args.broker}?keepalive=10&timeout=5&retry_max=2"
                             f"&client_id=bench-events-{args.gateway}", gateway=args.gateway)
    appended = 0

    def deliver() -> None:
        pending = outbox.pending(100)
        if pending:
            try:
                outbox.mark_sent(sink.send(pending))
            except UplinkError:
                pass  # broker down: the events stay in the outbox

    next_at = time.monotonic()
    while not stop.is_set():
        while asked and serial is not None:
            getattr(serial, asked.pop(0))()
        if time.monotonic() >= next_at:
            outbox.append(Event("summary", "meter", time.time(), score=0.1, value=1.0 + appended,
                                sensor_id=1))
            appended += 1
            next_at += args.event_period
        deliver()
        stop.wait(min(0.2, max(0.0, next_at - time.monotonic())))
    deadline = time.monotonic() + 60
    while outbox.depth() and time.monotonic() < deadline:
        deliver()
        time.sleep(0.2)
    result: dict[str, Any] = {"appended": appended, "pending": outbox.depth()}
    if serial is not None:
        result["daemon"] = serial.close()
    (work / "result.json").write_text(json.dumps(result))
    sink.close()
    outbox.close()
    agent.close()
    return 0


# ---------------------------------------------------------------------------- measurements


class ProcWatch:
    """CPU seconds and peak RSS of one process (and its successors after a restart)."""

    def __init__(self) -> None:
        self.cpu_done = 0.0
        self.rss_peak_kb = 0
        self._pid: Optional[int] = None
        self._cpu_now = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def watch(self, pid: int) -> None:
        with self._lock:
            self.cpu_done += self._cpu_now
            self._cpu_now = 0.0
            self._pid = pid

    def _sample(self) -> None:
        with self._lock:
            pid = self._pid
        if pid is None:
            return
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            status = Path(f"/proc/{pid}/status").read_text()
        except (OSError, IndexError, ValueError):
            return
        rss = [int(line.split()[1]) for line in status.splitlines()
               if line.startswith(("VmHWM:", "VmRSS:"))]
        with self._lock:
            if pid == self._pid:
                self._cpu_now = cpu
                self.rss_peak_kb = max([self.rss_peak_kb, *rss])

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def start(self) -> ProcWatch:
        self._thread.start()
        return self

    def stop(self) -> float:
        self._sample()
        self._stop.set()
        self._thread.join()
        return self.cpu_done + self._cpu_now


class SysCounters:
    """Mosquitto's $SYS message and byte counters, summed over broker restarts."""

    NAMES = ("messages/received", "messages/sent", "bytes/received", "bytes/sent")

    def __init__(self) -> None:
        self.done = dict.fromkeys(self.NAMES, 0)
        self.now = dict.fromkeys(self.NAMES, 0)
        self.lock = threading.Lock()

    def on_message(self, topic: str, payload: bytes, _retain: bool) -> None:
        name = topic.removeprefix("$SYS/broker/")
        if name in self.NAMES:
            value = int(payload)
            with self.lock:
                if value < self.now[name]:  # the broker restarted
                    self.done[name] += self.now[name]
                self.now[name] = value

    def totals(self) -> dict[str, int]:
        with self.lock:
            return {k: self.done[k] + self.now[k] for k in self.NAMES}


# ---------------------------------------------------------------------------- bundles


def make_bundle(dest: Path, version: str, broken: bool = False) -> Path:
    import numpy as np

    from frugalai.runtime.bundle import write_card

    shutil.copytree(SHIPPED, dest)
    if broken:  # right hashes, wrong weights: only the self-test can tell
        with np.load(dest / "weights.npz") as z:
            arrays = {k: z[k] * 1.5 if z[k].dtype.kind == "f" else z[k] for k in z.files}
        np.savez(dest / "weights.npz", **arrays)
    card = json.loads((dest / "card.json").read_text())
    card.pop("files")
    write_card(dest, {**card, "version": version})
    return dest


# ---------------------------------------------------------------------------- the scenario


def wait_until(cond: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():
            return time.monotonic() - start
        time.sleep(0.2)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


#: the deadline for every flow of every gateway to be healthy again after a restart, a reload
#: or a rollout, without a human (a bound for "comes back", not a speed figure)
HEAL_S = 60.0


def run(n: int, work: Path, event_period: float = 1.0, status_interval: float = 2.0,
        timeout: float = 600.0, log: Any = print, serial: bool = False) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from mqtt_broker import Mosquitto

    from frugalai.fleet import status as fstatus
    from frugalai.fleet.collector import Collector, EventStore
    from frugalai.fleet.health import read_statuses
    from frugalai.fleet.link import Link, parse_broker
    from frugalai.fleet.rollout import rollout
    from frugalai.fleet.topics import status_topic

    names = [f"gw{i:03d}" for i in range(n)]
    users = {name: f"pw-{name}" for name in names}
    users.update(operator="pw-operator", collector="pw-collector")
    broker = Mosquitto(work / "broker", users=users, acl=ACL, persistence=True,
                       extra=("sys_interval 1", "max_queued_messages 100000")).start()

    def url(user: str) -> str:
        return f"mqtt://{user}:{users[user]}@{broker.host}:{broker.port}"

    watch = ProcWatch().start()
    assert broker.proc is not None
    watch.watch(broker.proc.pid)
    counters = SysCounters()
    sys_link = Link(parse_broker(url("operator")), "bench-sys", on_message=counters.on_message,
                    subscriptions=(("$SYS/broker/messages/+", 0), ("$SYS/broker/bytes/+", 0)))
    store = EventStore(work / "events.sqlite")
    collector = Collector(parse_broker(url("collector")), store, client_id="fleet-collector")
    collector.link.wait_connected(20)
    key = Ed25519PrivateKey.generate()
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    result: dict[str, Any] = {"gateways": n, "event_period_s": event_period,
                              "status_interval_s": status_interval}
    t0 = time.monotonic()
    operator = parse_broker(url("operator"))
    status_sizes: dict[str, int] = {}
    result["serial_flows"] = serial
    serial_args = ["--serial", str(make_bundle(work / "v0", "0"))] if serial else []
    try:
        for name in names:
            (work / name).mkdir()
            procs[name] = subprocess.Popen(
                [sys.executable, __file__, "gateway", "--broker", url(name), "--gateway", name,
                 "--dir", str(work / name), "--public-key", pub, "--event-period",
                 str(event_period), "--status-interval", str(status_interval), *serial_args],
                env=env, stdout=open(work / name / "log.txt", "wb"),  # noqa: SIM115
                stderr=subprocess.STDOUT)

        def healthy(after: float = 0.0, version: str = "") -> list[str]:
            """Gateways judged OK (with serial flows: a status written after ``after`` whose
            flow ``linky`` runs with its device up, on model ``version`` if given)."""
            now = time.time()
            found = read_statuses(operator, 2.0)
            status_sizes.update({gw: len(p) for gw, p in found.items()
                                 if json.loads(p).get("online")})
            ok = []
            for gw, p in found.items():
                verdict = fstatus.judge(gw, p, now)
                if verdict.verdict != fstatus.OK:
                    continue
                if serial:
                    flow = (verdict.status.get("flows") or {}).get("linky")
                    if flow is None or float(verdict.status.get("updated") or 0) <= after or \
                            not str(flow.get("model_version", "")).startswith(version):
                        continue
                ok.append(gw)
            return ok

        def heal(what: str, after: float, version: str = "") -> Optional[float]:
            """Seconds until every flow of every gateway is healthy again (None: not within
            HEAL_S)."""
            try:
                took = round(wait_until(lambda: sorted(healthy(after, version)) == names,
                                        HEAL_S, what), 2)
            except RuntimeError:
                late = sorted(set(names) - set(healthy(after, version)))
                log(f"NOT healthy within {HEAL_S:g} s {what}: {late}")
                return None
            log(f"every serial flow healthy {took} s {what}")
            return took

        result["seconds_to_all_healthy"] = round(
            wait_until(lambda: sorted(healthy()) == names, timeout, "every gateway healthy"), 2)
        log(f"{n} gateways healthy after {result['seconds_to_all_healthy']} s")

        # ACL: gw000 tries to speak for gw001; the broker must drop it
        intruder = Link(parse_broker(url(names[0])), "acl-probe")
        intruder.wait_connected(10)
        forged = fstatus.encode({"v": 1, "gateway": names[-1], "online": False,
                                 "reason": "FORGED"})
        intruder.publish(status_topic(names[-1]), forged, retain=True)
        intruder.publish(f"frugalai/{names[-1]}/meter/event", b'{"v":1}')
        intruder.close()
        time.sleep(1.0)
        seen = read_statuses(operator, 2.0).get(names[-1], b"")
        result["acl_forged_status_refused"] = b"FORGED" not in seen and \
            "Denied PUBLISH from acl-probe" in broker.log_text()
        log(f"ACL refused the forged status: {result['acl_forged_status_refused']}")

        # rollout of a good bundle, canary 10 % then all
        stages = rollout(operator, make_bundle(work / "v1", "1"), key, canary_percent=10,
                         gateways=names, timeout=timeout)
        result["rollout"] = [s.as_dict() for s in stages]
        result["rollout_ok"] = len(stages) == 2 and all(s.ok for s in stages)
        result["seconds_to_roll_out_to_all"] = round(sum(s.seconds for s in stages), 2)
        log(f"rollout v1: ok={result['rollout_ok']} in {result['seconds_to_roll_out_to_all']} s")
        if serial:  # the rollout reloaded every daemon: its flow on model 1, port kept open
            heal_s: dict[str, Optional[float]] = {}
            heal_s["rollout"] = heal("after the rollout", time.time() - 1e-3, version="1@")
            for action, sig in (("reload", signal.SIGUSR2), ("restart", signal.SIGUSR1)):
                t_action = time.time()
                for p in procs.values():
                    p.send_signal(sig)
                heal_s[action] = heal(f"after a {action} of every daemon", t_action)
            result["serial_heal_s"] = heal_s
            result["serial_all_healed"] = all(v is not None for v in heal_s.values())

        # the broker restarts (sessions and retained messages persisted); events keep coming
        broker.restart()
        assert broker.proc is not None
        watch.watch(broker.proc.pid)
        result["seconds_to_all_healthy_after_broker_restart"] = round(
            wait_until(lambda: sorted(healthy()) == names, timeout, "healthy after restart"), 2)
        log(f"broker restarted; all healthy again after "
            f"{result['seconds_to_all_healthy_after_broker_restart']} s")

        # a broken bundle (right hashes, wrong weights): the canary's self-test refuses it
        stages = rollout(operator, make_bundle(work / "v2", "2", broken=True), key,
                         canary_percent=10, gateways=names, timeout=timeout)
        canary = stages[0]
        result["broken_rollout"] = [s.as_dict() for s in stages]
        result["broken_stopped_at_canary"] = len(stages) == 1 and bool(canary.outcomes) and all(
            r.get("outcome") == "rolled_back" for r in canary.outcomes.values()) and \
            set(canary.outcomes) == set(canary.targets)

        def versions() -> dict[str, str]:
            return {gw: json.loads(p).get("models", {}).get("energy-anomaly", {})
                    .get("version", "") for gw, p in read_statuses(operator, 2.0).items()}
        wait_until(lambda: set(versions().values()) == {"1"} and len(versions()) == n, 60,
                   "every gateway on version 1")
        result["all_on_v1_after_broken_rollout"] = True

        # the same broken bundle to every gateway at once (canary 100 %): each one's self-test
        # fails and each rolls back by itself
        v2b = make_bundle(work / "v2b", "2", broken=True)
        stages = rollout(operator, v2b, key, canary_percent=100, gateways=names,
                         timeout=timeout)
        everyone = stages[0]
        result["broken_to_all_rolled_back_everywhere"] = (
            set(everyone.outcomes) == set(names) and all(
                r.get("outcome") == "rolled_back" for r in everyone.outcomes.values()))
        result["broken_to_all_seconds"] = round(everyone.seconds, 2)
        wait_until(lambda: set(versions().values()) == {"1"} and len(versions()) == n, 60,
                   "every gateway back on version 1")
        log(f"broken bundle to all: rolled back everywhere by itself: "
            f"{result['broken_to_all_rolled_back_everywhere']} ({everyone.seconds:.1f} s)")
        log(f"broken bundle stopped at the canary ({len(canary.targets)} rolled back by "
            f"themselves): {result['broken_stopped_at_canary']}")
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(120)
            except subprocess.TimeoutExpired:
                p.kill()
    elapsed = time.monotonic() - t0
    appended = 0
    daemons: list[dict[str, int]] = []
    for name in names:
        r = json.loads((work / name / "result.json").read_text())
        appended += r["appended"]
        if "daemon" in r:  # the events of the serial flow, made by the real daemon
            daemons.append(r["daemon"])
            appended += r["daemon"]["created"]
    if serial:
        result["daemons"] = {"events_created": sum(d["created"] for d in daemons),
                             "left_pending": sum(d["pending"] for d in daemons),
                             "exit_codes": sorted({d["exit_code"] for d in daemons})}
    wait_until(lambda: store.count() >= appended, 60, f"{appended} events collected")
    time.sleep(1.5)  # let $SYS publish its last counters
    totals = counters.totals()
    collector.stop()
    sys_link.close()
    cpu = watch.stop()
    broker.stop()
    gaps = store.gaps()
    c = store.counters()
    result["events"] = {"appended": appended, "collected": store.count(),
                        "duplicates_dropped": c["duplicates"], "rejected": c["quarantined"],
                        "missing_in_sequences": sum(g.missing for g in gaps),
                        "lost": appended - store.count()}
    store.close()
    payloads = list(status_sizes.values())
    status_len = round(sum(payloads) / len(payloads)) if payloads else 0
    result["broker"] = {"cpu_s": round(cpu, 2), "cpu_share": round(cpu / elapsed, 4),
                        "rss_peak_mb": round(watch.rss_peak_kb / 1024, 1),
                        **{k.replace("/", "_"): v for k, v in totals.items()},
                        "messages_per_s": round((totals["messages/received"]
                                                 + totals["messages/sent"]) / elapsed, 1)}
    result["elapsed_s"] = round(elapsed, 1)
    result["traffic"] = traffic(status_len)
    return result


def traffic(status_len: int) -> dict[str, Any]:
    """Bytes per gateway per day of fleet traffic (status only, and one rollout a month)."""
    from frugalai.config import EnergyConfig
    from frugalai.fleet import status as fstatus

    eur_per_mb = EnergyConfig().cellular_eur_per_mb
    bundle = sum(f.stat().st_size for f in SHIPPED.iterdir() if f.is_file())
    rows = []
    for interval in (60.0, 300.0, 900.0):
        day = fstatus.daily_bytes("frugalai/fleet/gw-0001/status", status_len, interval, 60.0)
        # a rollout: the bundle once, manifest ~1.5 kB, report ~0.6 kB, + MQTT/TCP framing
        rollout_per_day = (bundle + 1500 + 600 + 200) / 30
        total = day["total"] + rollout_per_day
        rows.append({"status_interval_s": interval, "status_bytes_per_day": round(day["total"]),
                     "rollout_bytes_per_day_one_a_month": round(rollout_per_day),
                     "bytes_per_day": round(total),
                     "mb_per_month": round(total * 30 / 1e6, 2),
                     "eur_per_year": round(total * 365 / 1e6 * eur_per_mb, 2)})
    return {"status_payload_bytes": status_len, "bundle_bytes": bundle,
            "cellular_eur_per_mb": eur_per_mb, "keepalive_s": 60, "per_gateway": rows}


def markdown(r: dict[str, Any]) -> str:
    env = r["meta"]
    ev = r["events"]
    b = r["broker"]
    lines = [
        f"# Fleet scale test: {r['gateways']} gateways on one Mosquitto",
        "",
        f"{env['mosquitto']}; {r['gateways']} gateways, an event every {r['event_period_s']} s "
        "each.",
        "",
        "Each gateway is a real process with its own broker credentials and ACL; the rollout "
        "agent installs through `service.models` (hash checks, load on every backend, self-"
        "test, atomic switch). The broker was restarted between the two rollouts.",
        "",
        "| figure | value |", "|---|---|",
        f"| every gateway healthy, after the last one was spawned | "
        f"{r['seconds_to_all_healthy']} s |",
        f"| time to roll out to all (canary 10 % then all) | {r['seconds_to_roll_out_to_all']}"
        f" s (ok: {r['rollout_ok']}) |",
        f"| all healthy again after the broker restart | "
        f"{r['seconds_to_all_healthy_after_broker_restart']} s |",
        f"| broken bundle stopped at the canary, rolled back by itself | "
        f"{r['broken_stopped_at_canary']} |",
        f"| broken bundle sent to all at once (canary 100 %): rolled back everywhere by itself "
        f"| {r['broken_to_all_rolled_back_everywhere']} ({r['broken_to_all_seconds']} s) |",
        f"| forged status (gateway publishing under another's id) refused by the ACL | "
        f"{r['acl_forged_status_refused']} |",
        f"| events appended / collected / lost | {ev['appended']} / {ev['collected']} / "
        f"{ev['lost']} |",
        f"| duplicates dropped by id | {ev['duplicates_dropped']} |",
        f"| broker CPU | {b['cpu_s']} s over {r['elapsed_s']} s ({b['cpu_share']:.1%} of a "
        f"core) |",
        f"| broker peak RSS | {b['rss_peak_mb']} MB |",
        f"| messages through the broker | {b['messages_per_s']} /s (in + out) |",
    ]
    if r.get("serial_flows"):
        heal = r["serial_heal_s"]

        def took(action: str) -> str:
            return "NOT within 60 s" if heal[action] is None else f"{heal[action]} s"
        lines += [
            f"| serial TIC flows (real daemon, emulated meter on a pty, 7E1): every flow "
            f"healthy again after the rollout / a reload reopening the port / a restart | "
            f"{took('rollout')} / {took('reload')} / {took('restart')} (deadline {HEAL_S:g} s)"
            " |",
            f"| events made by the daemons (included above) | "
            f"{r['daemons']['events_created']} |",
        ]
    lines += [
        "",
        f"Fleet traffic per gateway (status payload {r['traffic']['status_payload_bytes']} B "
        f"as measured here, keepalive 60 s, TCP/IP 52 B per segment, no TLS; one "
        f"{r['traffic']['bundle_bytes']} B rollout a month; "
        f"{r['traffic']['cellular_eur_per_mb']} EUR/MB, the config's default):",
        "",
        "| status interval | bytes/day | MB/month | EUR/year |", "|---|---|---|---|",
    ]
    for row in r["traffic"]["per_gateway"]:
        lines.append(f"| {row['status_interval_s']:g} s | {row['bytes_per_day']:,} | "
                     f"{row['mb_per_month']} | {row['eur_per_year']} |")
    return "\n".join(lines) + "\n"


def mosquitto_version() -> str:
    from mqtt_broker import MOSQUITTO

    version = subprocess.run([str(MOSQUITTO), "-h"], capture_output=True, text=True
                             ).stdout.splitlines()[:1]
    return version[0] if version else "mosquitto"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode")
    gw = sub.add_parser("gateway", help="one gateway process")
    gw.add_argument("--broker", required=True)
    gw.add_argument("--gateway", required=True)
    gw.add_argument("--dir", required=True)
    gw.add_argument("--public-key", required=True)
    gw.add_argument("--event-period", type=float, default=1.0)
    gw.add_argument("--status-interval", type=float, default=2.0)
    gw.add_argument("--serial", default=None, help="bundle to install first; then run a TIC "
                    "meter on a pty and the real daemon on it")
    parser.add_argument("--gateways", type=int, default=None, help="default 50 (5 with --quick)")
    parser.add_argument("--event-period", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true",
                        help="5 gateways (the size make test runs), unless --gateways is given")
    parser.add_argument("--serial", action="store_true",
                        help="each gateway also runs the real daemon on an emulated TIC meter "
                             "(a pty): after the rollout, a reload and a restart, every flow "
                             f"must be healthy again within {HEAL_S:g} s")
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    if args.mode == "gateway":
        return gateway_main(args)
    out = prov.output_dir(parser, args)
    if args.gateways is None:
        args.gateways = 5 if args.quick else 50
    meta = prov.provenance(mosquitto=mosquitto_version(), quick=args.quick)
    work = Path(tempfile.mkdtemp(prefix=".fleet-bench-", dir=ROOT / "benchmarks"))
    try:
        result = run(args.gateways, work, event_period=args.event_period, serial=args.serial)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"meta": meta, **result}
    print(prov.write_results(out, "fleet", result, markdown))
    ok = (result.get("serial_all_healed", True) and result["rollout_ok"]
          and result["broken_stopped_at_canary"]
          and result["broken_to_all_rolled_back_everywhere"]
          and result["acl_forged_status_refused"] and result["events"]["lost"] == 0
          and result["events"]["missing_in_sequences"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
