"""A territory's fleet into PostgreSQL, with real parts: 1,000 gateways, one broker, collectors.

``make fleet-scale`` (not in ``make test``; ``tests/test_central_scale.py`` runs a small one).
It starts PostgreSQL (initdb + pg_ctl into a temporary directory on 127.0.0.1, from the Debian
packages: tests/pg_server.py) and Mosquitto (password file with one identity per gateway and the
fleet ACL), then simulated gateways in a few worker processes: each gateway is the project's
own outbox (SQLite, default durability) and MQTT uplink (``MqttSink``), with its own client id
and broker identity. Phases:

1. **normal**: every gateway one event per ``--normal-period`` s (default 10 s: 100 events/s
   for 1,000 gateways); during it the collector is SIGKILLed and restarted, and the broker is
   restarted once (persistence on: sessions and queued messages survive).
2. **burst**: every gateway at ``--burst-rate`` events/s (default 10: 10,000 events/s) for
   ``--burst-s`` s (30); then the time for the backlog to drain.
3. **collector alone**: the collector stopped, the gateways publish ``--solo-events`` events
   (the broker queues them in the collector's session), then the collector is started alone and
   the rows per second it commits are measured: one collector's throughput into PostgreSQL
   without the gateways competing for the 2 cores.

All along, a hostile client injects 1 % of malformed, oversized, out-of-range and wrongly
attributed messages; they must all land in ``quarantine`` and block nothing.

Figures: events produced / stored / duplicates / lost (produced = the outboxes' own counts),
end-to-end latency p50 / p99 (event time at the gateway -> row committed) per phase, drain
time, collector CPU and RSS, rows per second. JSON + Markdown with provenance in
build/benchmarks/fleet_scale.{json,md} (``--publish``: benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
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

GATEWAY_ACL = """\
# generated for the benchmark: the fleet ACL (docs/fleet.md), one identity per gateway
user collector
topic read frugalai/#

user hostile
topic readwrite frugalai/hostile/#

pattern write frugalai/%u/#
pattern write frugalai/fleet/%u/#
pattern read frugalai/fleet/rollout/#
"""


# ------------------------------------------------------------------------------ worker process


class SharedNetwork:
    """One network thread for all the paho clients of a worker process, instead of one each.

    A gateway runs one MQTT client, so paho's thread per client (``loop_start``) costs it
    nothing. Two hundred and fifty simulated gateways in one process would be 250 threads
    waking for every PUBACK and fighting for the GIL: the load generator, not the central
    side, would be what the run measures. So ``loop_start``/``loop_stop`` are replaced, in the
    worker processes only, by registration with this loop (epoll over the clients' sockets,
    paho's own ``loop_read``/``loop_write``/``loop_misc``, and ``reconnect`` once a second
    while the broker is away, as paho's thread does). Everything else, MqttSink's publish,
    codec, PUBACK wait and connection callbacks, is the uplink's code unchanged.
    """

    def __init__(self) -> None:
        import selectors

        import paho.mqtt.client as paho

        self.clients: list[Any] = []
        self.lock = threading.Lock()
        self.selector = selectors.DefaultSelector()
        self.read, self.write = selectors.EVENT_READ, selectors.EVENT_WRITE
        self.stop = threading.Event()
        shared = self

        def loop_start(client: Any) -> int:
            with shared.lock:
                shared.clients.append(client)
            return 0

        def loop_stop(client: Any) -> int:
            with shared.lock:
                if client in shared.clients:
                    shared.clients.remove(client)
            return 0

        paho.Client.loop_start = loop_start  # type: ignore[method-assign,assignment]
        paho.Client.loop_stop = loop_stop  # type: ignore[method-assign,assignment]
        self.thread = threading.Thread(target=self.run, name="shared-mqtt-network", daemon=True)
        self.thread.start()

    def run(self) -> None:
        registered: dict[int, tuple[Any, Any, int]] = {}  # id(client) -> (socket, client, mask)
        retry_at: dict[int, float] = {}
        next_scan = next_misc = 0.0
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_scan:  # not on every wake-up: 250 clients cost a millisecond
                next_scan = now + 0.2
                self._scan(registered, retry_at, now)
            if not registered:
                self.stop.wait(0.1)
                continue
            for sel_key, events in self.selector.select(timeout=0.05):
                c = sel_key.data
                if events & self.read:
                    c.loop_read()
                if events & self.write and c.socket() is not None:
                    c.loop_write()
                if c.socket() is not sel_key.fileobj:
                    next_scan = 0.0  # lost (or replaced) its connection: rescan now
            if now >= next_misc:
                next_misc = now + 1.0
                for _sock, c, _mask in list(registered.values()):
                    c.loop_misc()  # keepalive pings, and a dead link noticed

    def _scan(self, registered: dict[int, tuple[Any, Any, int]], retry_at: dict[int, float],
              now: float) -> None:
        """Register new sockets, drop dead ones, reconnect the clients without one (once a
        second each), and watch for writability where paho has bytes waiting."""
        with self.lock:
            clients = list(self.clients)
        live = set()
        for c in clients:
            key = id(c)
            sock = c.socket()
            old = registered.get(key)
            if old is not None and old[0] is not sock:
                try:
                    self.selector.unregister(old[0])
                except (KeyError, ValueError, OSError):
                    pass
                del registered[key]
                old = None
            if sock is None:
                if now >= retry_at.get(key, 0.0):
                    retry_at[key] = now + 1.0 + random.random()
                    try:
                        c.reconnect()
                    except (OSError, ValueError):
                        pass  # the broker is away: again in a second
                continue
            live.add(key)
            mask = self.read | (self.write if c.want_write() else 0)
            if old is None:
                try:
                    self.selector.register(sock, mask, c)
                except (KeyError, ValueError, OSError):
                    continue
                registered[key] = (sock, c, mask)
            elif old[2] != mask:
                self.selector.modify(sock, mask, c)
                registered[key] = (sock, c, mask)
        for key in [k for k in registered if k not in live]:
            try:
                self.selector.unregister(registered.pop(key)[0])
            except (KeyError, ValueError, OSError):
                pass


def scheduled_events(schedule: list[tuple[float, float]], a: float, b: float) -> float:
    """Events per gateway the schedule asks for between times ``a`` and ``b`` (each entry
    ``(since, rate)`` holds until the next one)."""
    total = 0.0
    for k, (since, rate) in enumerate(schedule):
        until = schedule[k + 1][0] if k + 1 < len(schedule) else math.inf
        lo, hi = max(a, since), min(b, until)
        if hi > lo:
            total += rate * (hi - lo)
    return total


def worker_main(args: argparse.Namespace) -> int:
    """Gateways ``args.first`` .. ``args.first + args.count - 1``: outbox + MQTT uplink each.

    The rate (events per second per gateway) is a schedule read from ``args.control`` (JSON:
    ``{"schedule": [[unix time, rate], ...], "stop": false}``) and integrated over time, so a
    gateway that falls behind still makes exactly the events the schedule asked for;
    ``{"stop": true}`` ends the run after the outboxes are drained."""
    from frugalai.errors import UplinkError
    from frugalai.events.event import Event
    from frugalai.uplink.mqtt import MqttSink
    from frugalai.uplink.outbox import Outbox

    network = SharedNetwork()  # before the first MqttSink: see its docstring
    work = Path(args.dir)
    control = Path(args.control)
    names = [f"gw-{k:04d}" for k in range(args.first, args.first + args.count)]
    host, port = args.broker.rsplit(":", 1)
    gws = []
    for name in names:
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        sink = MqttSink.from_url(f"mqtt://{name}:pw-{name}@{host}:{port}?timeout=10&keepalive=20",
                                 gateway=name)
        # sync="normal": a gateway fsyncs its outbox on its own SD card (the default "group"
        # policy, measured in benchmarks/results/outbox.md); a thousand gateways fsyncing on
        # this one disk (0.3 ms each, ~10,000/s in the burst) would measure the disk, not the
        # centre. Nothing here is power-cut: the kills are the collector's and the broker's.
        gws.append({"name": name, "outbox": Outbox(d / "outbox.sqlite", sync="normal"),
                    "sink": sink, "credit": random.random(), "appended": 0,
                    "dirty": False})
    stop = threading.Event()
    schedule: list[tuple[float, float]] = []
    done = False

    def read_control() -> None:
        nonlocal schedule, done
        try:
            doc = json.loads(control.read_text())
        except (OSError, ValueError):
            return
        schedule = [(float(t), float(v)) for t, v in doc.get("schedule", [])]
        done = bool(doc.get("stop", False))

    def deliver_loop(mine: list[dict[str, Any]]) -> None:
        """Each gateway delivers on its own (a real gateway's delivery thread does): a few
        threads per process, each over its share of the gateways, so that one gateway's wait
        for its PUBACKs does not hold up the others'. A gateway's outbox is read when it has
        stored something since (``dirty``, set after each append: a gateway's delivery thread
        is woken by its pipeline, it does not poll), or while it still holds undelivered
        events (a failed or partial send)."""
        while not stop.is_set():
            busy = False
            for g in mine:
                if not g["dirty"]:
                    continue
                g["dirty"] = False  # before reading: an append after this sets it again
                pending = g["outbox"].pending(100)  # a gateway's batch (pipeline.flush)
                if not pending:
                    continue
                busy = True
                try:
                    sent = g["sink"].send(pending)
                    g["outbox"].mark_sent(sent)
                    if len(sent) < len(pending) or len(pending) == 100:
                        g["dirty"] = True  # more to send
                except UplinkError:
                    g["dirty"] = True  # broker down: the events stay in the outbox
            if not busy:
                stop.wait(0.05)

    senders = [threading.Thread(target=deliver_loop, args=(gws[k::args.senders],), daemon=True)
               for k in range(min(args.senders, len(gws)))]
    for t in senders:
        t.start()
    (work / f"ready-{args.first}").write_text("1")
    last = time.time()
    next_progress = 0.0
    while True:
        read_control()  # a small file, every tick: a rate change is never integrated late
        if done:
            break
        now = time.time()
        due = scheduled_events(schedule, last, now)
        last = now
        for g in gws:
            g["credit"] += due
            n = int(g["credit"])
            if n:
                g["credit"] -= n
                t = time.time()
                g["outbox"].append_many([Event("alarm", "meter", t, score=5.0, value=float(k),
                                               sensor_id=1) for k in range(n)])
                g["appended"] += n
                g["dirty"] = True
        if now >= next_progress or not due:
            tmp = work / f"progress-{args.first}.tmp"
            # "through": the schedule is served up to this instant (the harness waits for it
            # before it counts what was made)
            tmp.write_text(json.dumps({"appended": sum(g["appended"] for g in gws),
                                       "through": now}))
            tmp.replace(work / f"progress-{args.first}.json")
            next_progress = now + 1.0
        # each tick appends what the schedule asked for since the last one, stamped now: a
        # gateway's events are made when they enter its outbox, so the latency measured is
        # unchanged; a longer tick only spares 1,000 outboxes on one machine a transaction
        # each per tick (~150 us each: in the burst, the load generator's largest cost)
        time.sleep(max(0.0, args.tick - (time.time() - now)))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and any(g["outbox"].depth() for g in gws):
        time.sleep(0.2)
    stop.set()
    for t in senders:
        t.join(timeout=30)
    result = {g["name"]: {"appended": g["appended"], "pending": g["outbox"].depth()}
              for g in gws}
    for g in gws:
        g["sink"].close()
        g["outbox"].close()
    network.stop.set()
    (work / f"result-{args.first}.json").write_text(json.dumps(result))
    return 0


# ------------------------------------------------------------------------------ hostile client


def hostile_messages(rng: random.Random, n: int) -> list[tuple[str, bytes, str]]:
    """``n`` messages a collector must quarantine: (topic, payload, kind)."""
    base = {"v": 1, "kind": "alarm", "sensor": "meter", "ts": time.time(), "seq": 1}
    kinds = ["malformed", "oversized", "seq-out-of-range", "time-out-of-range",
             "wrongly-attributed", "wrong-types"]
    out = []
    for k in range(n):
        kind = kinds[k % len(kinds)]
        topic = "frugalai/hostile/meter/event"
        if kind == "malformed":
            payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))).replace(b"{", b"[")
        elif kind == "oversized":
            payload = b'{"v": 1, "pad": "' + b"x" * 200_000 + b'"}'
        elif kind == "seq-out-of-range":
            payload = json.dumps({**base, "seq": 2**70 + k}).encode()
        elif kind == "time-out-of-range":
            payload = json.dumps({**base, "seq": 10 + k, "ts": rng.choice([1e308, -1e308])}).encode()
        elif kind == "wrongly-attributed":  # an event of another sensor on this topic
            payload = json.dumps({**base, "seq": 10 + k, "sensor": "someone-else"}).encode()
        else:
            payload = json.dumps({**base, "seq": {"a": 1}, "ts": "yesterday"}).encode()
        out.append((topic, payload, kind))
    return out


# ------------------------------------------------------------------------------ the run


class Run:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        from mqtt_broker import Mosquitto
        from pg_server import PgServer

        self.args, self.tmp = args, tmp
        users = {f"gw-{k:04d}": f"pw-gw-{k:04d}" for k in range(args.gateways)}
        users.update({"collector": "pw-collector", "hostile": "pw-hostile"})
        self.pg = PgServer(settings=("max_connections=50",)).start()
        self.broker = Mosquitto(tmp / "broker", users=None, acl=None, persistence=True,
                                extra=("max_queued_messages 0", "max_queued_bytes 0",
                                       "max_inflight_messages 0", "sys_interval 1"))
        self._secure_broker(users)
        self.broker.start()
        self.host_port = f"{self.broker.host}:{self.broker.port}"
        self.control = tmp / "control.json"
        self.schedule: list[tuple[float, float]] = []
        self.set_rate(0.0)
        self.collector: Optional[subprocess.Popen[bytes]] = None
        self.collector_log = tmp / "collector.log"
        from fleet_scale import ProcWatch

        self.watch = ProcWatch().start()
        self.kills = 0
        self.broker_restarts = 0
        self.hostile_sent: dict[str, int] = {}

    def _secure_broker(self, users: dict[str, str]) -> None:
        """One password entry per gateway (hashed in one mosquitto_passwd -U) and the ACL."""
        pw = self.broker.workdir / "passwd"
        pw.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
        subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True)
        pw.chmod(0o600)
        acl = self.broker.workdir / "acl"
        acl.write_text(GATEWAY_ACL)
        acl.chmod(0o600)
        conf = self.broker.conf.read_text().replace("allow_anonymous true\n", "")
        # the tests' broker logs every packet (log_type all): three lines per event here, a
        # cost a territory's broker does not pay
        conf = conf.replace("log_type all\n", "log_type error\nlog_type warning\nlog_type notice\n")
        conf += f"allow_anonymous false\npassword_file {pw}\nacl_file {acl}\n"
        self.broker.conf.write_text(conf)

    @property
    def dsn(self) -> str:
        return self.pg.dsn

    def set_rate(self, rate: float, stop: bool = False) -> float:
        """From now on every gateway makes ``rate`` events/s; returns the instant it took."""
        now = time.time()
        self.schedule.append((now, rate))
        tmp = self.control.with_suffix(".tmp")
        tmp.write_text(json.dumps({"schedule": self.schedule, "stop": stop}))
        tmp.replace(self.control)
        return now

    def frugalai(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "frugalai", *argv]

    def start_collector(self) -> None:
        self.collector = subprocess.Popen(
            self.frugalai("collect", "--broker", f"mqtt://collector:pw-collector@{self.host_port}",
                          "--db", self.dsn, "--client-id", "collector-1",
                          "--metrics", str(self.tmp / "collector.prom")),
            stdout=open(self.collector_log, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        self.watch.watch(self.collector.pid)

    def kill_collector(self, sig: int = signal.SIGKILL) -> None:
        if self.collector is not None and self.collector.poll() is None:
            self.collector.send_signal(sig)
            self.collector.wait(timeout=120)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.dsn) as con:
            return con.execute(sql).fetchall()  # type: ignore[arg-type]

    def stored(self) -> int:
        return int(self.query("SELECT count(*) FROM events WHERE gateway LIKE 'gw-%'")[0][0])

    def hostile(self, n: int, rng: random.Random) -> None:
        from frugalai.fleet.link import Link, parse_broker

        link = Link(parse_broker(f"mqtt://hostile:pw-hostile@{self.host_port}"), "hostile")
        link.wait_connected(30)
        for topic, payload, kind in hostile_messages(rng, n):
            link.publish(topic, payload, timeout=30)
            self.hostile_sent[kind] = self.hostile_sent.get(kind, 0) + 1
        link.close()

    def latency(self, t0: float, t1: float) -> dict[str, Optional[float]]:
        rows = self.query(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY d), max(d), count(*) FROM ("
            "SELECT extract(epoch FROM committed_at) - ts AS d FROM events "
            f"WHERE ts >= {t0} AND ts < {t1} AND gateway LIKE 'gw-%') x")
        p50, p99, mx, n = rows[0]
        return {"p50_s": None if p50 is None else round(float(p50), 3),
                "p99_s": None if p99 is None else round(float(p99), 3),
                "max_s": None if mx is None else round(float(mx), 3), "events": int(n)}

    def cpu_by_role(self, workers: list[subprocess.Popen[bytes]]) -> dict[str, float]:
        """CPU seconds used so far by each part (a process's own, from /proc), and by the
        whole machine (/proc/stat: other sessions on a shared machine show as the rest)."""
        tck = os.sysconf("SC_CLK_TCK")
        parents: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(entry.name)] = int(fields[1])
            cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tck
        try:
            postmaster = int((self.pg.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            postmaster = -1
        broker = self.broker.proc.pid if self.broker.proc is not None else -1
        collector = self.collector.pid if self.collector is not None else -1
        roles = {
            "gateways (simulated)": sum(cpu.get(w.pid, 0.0) for w in workers),
            "broker": cpu.get(broker, 0.0),
            "collector": cpu.get(collector, 0.0),
            "postgresql": sum(c for pid, c in cpu.items()
                              if pid == postmaster or parents.get(pid) == postmaster),
        }
        line = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        busy = sum(int(x) for k, x in enumerate(line[:8]) if k not in (3, 4))  # not idle/iowait
        roles["machine (all processes)"] = busy / tck
        return roles

    def hostile_handled(self) -> int:
        """Hostile messages the collector has dealt with: quarantined, or (a random payload that
        happens to be a well-formed event) stored under the hostile identity."""
        return int(self.query("SELECT (SELECT count(*) FROM quarantine) + "
                              "(SELECT count(*) FROM events WHERE gateway = 'hostile')")[0][0])

    def appended_so_far(self) -> int:
        return self.progress()[0]

    def progress(self) -> tuple[int, float]:
        """Events the outboxes hold so far, and the instant up to which every worker has
        served the schedule."""
        total, through = 0, math.inf
        files = list((self.tmp / "gw").glob("progress-*.json"))
        for f in files:
            try:
                doc = json.loads(f.read_text())
                total += int(doc["appended"])
                through = min(through, float(doc["through"]))
            except (OSError, ValueError, KeyError):
                through = 0.0
        return total, through if files else 0.0

    def made_until(self, t: float, timeout: float = 60.0) -> int:
        """Events made up to ``t`` (the workers may lag behind the schedule: wait for them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            made, through = self.progress()
            if through >= t:
                return made
            time.sleep(0.2)
        raise RuntimeError(f"the workers did not serve the schedule up to {t} in {timeout} s")

    def wait_stored(self, target: int, timeout: float) -> Optional[float]:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.stored() >= target:
                return time.monotonic() - t0
            time.sleep(0.25)
        return None

    def close(self) -> None:
        self.kill_collector(signal.SIGTERM)
        self.broker.stop()
        self.pg.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    rng = random.Random(27)
    tmp = Path(tempfile.mkdtemp(prefix="frugalai-central-"))
    r = Run(args, tmp)
    doc: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items()
                                        if k not in ("out", "publish", "worker", "first", "count", "broker",
                                                     "dir", "control")}}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        migrate = subprocess.run(r.frugalai("collect", "--broker",
                                            f"mqtt://collector:pw-collector@{r.host_port}",
                                            "--db", r.dsn, "--client-id", "collector-1",
                                            "--migrate", "--duration", "0.1"),
                                 capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
        if migrate.returncode != 0:
            raise RuntimeError(f"collect --migrate failed: {migrate.stderr}")
        r.start_collector()
        per = -(-args.gateways // args.procs)
        t_connect = time.monotonic()
        for first in range(0, args.gateways, per):
            count = min(per, args.gateways - first)
            workers.append(subprocess.Popen(
                [sys.executable, __file__, "--worker", "--first", str(first), "--count", str(count),
                 "--broker", r.host_port, "--dir", str(tmp / "gw"), "--control", str(r.control),
                 "--senders", str(args.senders), "--tick", str(args.tick)],
                stdout=open(tmp / f"worker-{first}.log", "ab"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(ROOT)}))
        while len(list((tmp / "gw").glob("ready-*"))) < len(workers):
            if any(w.poll() is not None for w in workers):
                raise RuntimeError("a worker died at start: see " + str(tmp))
            time.sleep(0.2)
        doc["connect_s"] = round(time.monotonic() - t_connect, 1)
        n_hostile_total = 0
        timeline: list[tuple[float, int, int]] = []  # (s since the start, made, stored)
        watching = threading.Event()

        def follow(start: float) -> None:
            """Every 2 s: events made so far (the outboxes) and rows stored: the backlog's
            curve, printed as it goes and kept in the results."""
            while not watching.wait(2.0):
                try:
                    made, stored = r.appended_so_far(), r.stored()
                except Exception:  # the database restarting: the next sample will do
                    continue
                timeline.append((round(time.time() - start, 1), made, stored))
                print(f"t={timeline[-1][0]:7.1f} s  made {made:9,}  stored {stored:9,}  "
                      f"backlog {made - stored:9,}", file=sys.stderr, flush=True)

        # 1. normal rate, a collector kill and a broker restart
        t0 = time.time()
        follower = threading.Thread(target=follow, args=(t0,), daemon=True)
        follower.start()

        r.set_rate(1.0 / args.normal_period)
        third = args.normal_s / 3
        time.sleep(third)
        t_kill = time.time()
        r.kill_collector()
        r.kills += 1
        time.sleep(2.0)
        r.start_collector()
        time.sleep(third)
        r.broker.stop()
        r.broker_restarts += 1
        time.sleep(3.0)
        r.broker.start()
        time.sleep(third)
        expected_normal = args.gateways * args.normal_s / args.normal_period
        n_h = max(1, int(expected_normal * 0.01))
        r.hostile(n_h, rng)
        n_hostile_total += n_h
        t1 = time.time()

        # 2. the burst, then the gateways pause (rate 0) so that "drained" has one meaning:
        # every event made until the end of the burst is a row. The hostile client sends its
        # share of the burst's 1 % while the backlog drains.
        cpu_before_burst = r.cpu_by_role(workers)
        t_burst = r.set_rate(args.burst_rate)
        time.sleep(args.burst_s)
        t2 = r.set_rate(0.0)
        n_h = max(1, int(args.gateways * args.burst_rate * args.burst_s * 0.01))
        hostile_thread = threading.Thread(target=r.hostile, args=(n_h, rng))
        hostile_thread.start()
        n_hostile_total += n_h
        made = r.made_until(t2)
        drained = r.wait_stored(made, timeout=args.drain_timeout)
        drained_s = None if drained is None else round(time.time() - t2, 1)
        cpu_after = r.cpu_by_role(workers)
        burst_cpu = {k: round(cpu_after[k] - cpu_before_burst[k], 1) for k in cpu_after}
        burst_cpu["rest of the machine (other sessions, kernel threads)"] = round(
            burst_cpu["machine (all processes)"]
            - sum(v for k, v in burst_cpu.items() if k != "machine (all processes)"), 1)
        burst_wall = round(time.time() - t_burst, 1)
        hostile_thread.join()
        t_resume = r.set_rate(1.0 / args.normal_period)
        time.sleep(10)
        t3 = time.time()
        # what the normal rate made after the burst is stored before the collector stops for
        # phase 3 (else its last events would wait for phase 3 and count as slow)
        r.wait_stored(r.made_until(t3), timeout=60)

        # 3. the collector alone: queue events while it is down, then time the drain
        r.kill_collector(signal.SIGTERM)
        before = r.stored()
        solo_rate = max(1.0, args.solo_events / args.gateways / 10.0)
        r.set_rate(solo_rate)
        time.sleep(10.0)
        r.set_rate(0.0, stop=True)
        for w in workers:
            w.wait(timeout=600)
        results: dict[str, Any] = {}
        for f in (tmp / "gw").glob("result-*.json"):
            results.update(json.loads(f.read_text()))
        produced = sum(v["appended"] for v in results.values())
        pending = sum(v["pending"] for v in results.values())
        solo_expected = produced - before
        cpu_before_solo = r.watch.stop()
        from fleet_scale import ProcWatch

        r.watch = ProcWatch().start()
        t_solo = time.monotonic()
        r.start_collector()
        solo_s = r.wait_stored(produced, timeout=600)
        solo_cpu = r.watch.stop()
        deadline = time.monotonic() + 60  # the hostile messages queued behind the events
        while time.monotonic() < deadline and r.hostile_handled() < n_hostile_total:
            time.sleep(0.25)
        r.kill_collector(signal.SIGTERM)
        solo_elapsed = solo_s if solo_s is not None else time.monotonic() - t_solo

        watching.set()
        follower.join()
        stored = r.stored()
        quarantined = dict(r.query("SELECT split_part(reason, ' ', 1), count(*) FROM quarantine "
                                   "GROUP BY 1"))
        n_quarantined = int(r.query("SELECT count(*) FROM quarantine")[0][0])
        dup_rows = int(r.query("SELECT count(*) - count(DISTINCT (gateway, sensor, seq)) "
                               "FROM events WHERE gateway LIKE 'gw-%'")[0][0])
        counters = dict(r.query("SELECT name, sum(value)::bigint FROM collector_counters "
                                "GROUP BY name"))
        per_gw_missing = r.query(
            "SELECT count(*) FROM (SELECT gateway, max(seq) - min(seq) + 1 - count(*) AS m "
            "FROM events WHERE gateway LIKE 'gw-%' GROUP BY gateway) x WHERE m > 0")[0][0]
        fleet_t0 = time.monotonic()
        silent = r.query("SELECT count(*) FROM silent_gateways")[0][0]
        per_day = r.query("SELECT count(*) FROM events_per_site_day")[0][0]
        views_s = time.monotonic() - fleet_t0
        doc.update({
            "produced": produced, "pending_in_outboxes": pending, "stored": stored,
            "lost": produced - stored if pending == 0 else None,
            "duplicate_rows": dup_rows, "duplicates_dropped_by_key": int(counters.get("duplicates", 0)),
            "gateways_with_seq_gaps": int(per_gw_missing),
            "hostile_sent": n_hostile_total, "hostile_by_kind": r.hostile_sent,
            "quarantined": n_quarantined,
            "quarantine_reasons": {str(k): int(v) for k, v in quarantined.items()},
            "collector_kills": r.kills, "broker_restarts": r.broker_restarts,
            "hostile_stored_as_events": int(r.query(
                "SELECT count(*) FROM events WHERE gateway = 'hostile'")[0][0]),
            "normal": {"rate_events_per_s": round(args.gateways / args.normal_period, 1),
                       "seconds": args.normal_s, **r.latency(t0, t1),
                       "undisturbed": r.latency(t0 + 2, t_kill)},
            "burst": {"rate_events_per_s": args.gateways * args.burst_rate,
                      "seconds": args.burst_s, "made": made, **r.latency(t_burst, t2),
                      "drained_s_after_burst": drained_s,
                      "cpu_s_burst_and_drain": burst_cpu, "wall_s_burst_and_drain": burst_wall},
            "after_burst": r.latency(t_resume, t3),
            "collector_with_gateways": {"cpu_s": round(cpu_before_solo, 1),
                                        "rss_mb": round(r.watch.rss_peak_kb / 1024, 1)},
            "collector_alone": {"events": solo_expected, "seconds": round(solo_elapsed, 2),
                                "rows_per_s": round(solo_expected / solo_elapsed) if solo_elapsed else None,
                                "cpu_s": round(solo_cpu, 2),
                                "rss_mb": round(r.watch.rss_peak_kb / 1024, 1)},
            "views_s": round(views_s, 3), "silent_gateways": int(silent), "site_days": int(per_day),
            "phases_s": {"normal": [0.0, round(t1 - t0, 1)], "burst": [round(t_burst - t0, 1),
                                                                      round(t2 - t0, 1)],
                         "collector_alone_from": round(t3 - t0, 1)},
            "timeline": timeline,
        })
        return doc
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
        r.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def markdown(doc: dict[str, Any]) -> str:
    s = doc["settings"]
    n, b, a, c = doc["normal"], doc["burst"], doc["after_burst"], doc["collector_alone"]
    lines = [
        "# A territory's fleet into PostgreSQL (real parts)", "",
        f"{s['gateways']} gateways (the project's outbox + MQTT uplink, {s['procs']} processes, "
        "one broker identity each, the fleet ACL), one Mosquitto, one collector "
        "(`frugalai collect --db postgresql://...`), PostgreSQL 15 on 127.0.0.1, all on this "
        "machine's 2 cores.", "",
        "| figure | value |", "|---|---:|",
        f"| events produced (outboxes' own counts) | {doc['produced']:,} |",
        f"| events stored | {doc['stored']:,} |",
        f"| lost | {doc['lost']} |",
        f"| duplicate rows | {doc['duplicate_rows']} |",
        f"| copies dropped by the key (at-least-once redeliveries) | "
        f"{doc['duplicates_dropped_by_key']:,} |",
        f"| collector SIGKILLs / broker restarts | {doc['collector_kills']} / "
        f"{doc['broker_restarts']} |",
        f"| hostile messages sent / quarantined / valid by chance (stored as the hostile "
        f"identity's) | {doc['hostile_sent']:,} / {doc['quarantined']:,} / "
        f"{doc['hostile_stored_as_events']} |",
        f"| normal rate: events/s; latency p50 / p99 (s) before the kill | "
        f"{n['rate_events_per_s']:g}; {n['undisturbed']['p50_s']} / {n['undisturbed']['p99_s']} |",
        f"| normal rate, whole phase with the kill and the broker restart: p50 / p99 / max (s) | "
        f"{n['p50_s']} / {n['p99_s']} / {n['max_s']} |",
        f"| burst: events/s for s, latency p50 / p99 (s) | {b['rate_events_per_s']:,} for "
        f"{b['seconds']}, {b['p50_s']} / {b['p99_s']} |",
        f"| burst backlog drained after (s) | {b['drained_s_after_burst']} |",
        f"| after the burst: latency p50 / p99 (s) | {a['p50_s']} / {a['p99_s']} |",
        f"| one collector alone: rows/s into PostgreSQL | {c['rows_per_s']:,} "
        f"({c['events']:,} queued events in {c['seconds']} s, {c['cpu_s']} CPU-s, "
        f"RSS {c['rss_mb']} MB) |",
        f"| collector with the gateways running: CPU-s, RSS MB | "
        f"{doc['collector_with_gateways']['cpu_s']}, {doc['collector_with_gateways']['rss_mb']} |",
        f"| views (silent gateways + events per site-day) answered in (s) | {doc['views_s']} |",
        "", "Targets (issue 27): 0 lost, 0 duplicates over the whole run including the kill and "
        "the restart; p99 <= 2 s at the normal rate; the burst drained within 60 s after it "
        "ends; one collector >= 10,000 events/s into PostgreSQL.",
        "", f"Quarantine reasons (first word): {doc['quarantine_reasons']}",
    ]
    cpu = b.get("cpu_s_burst_and_drain")
    if cpu:
        lines += ["", f"Where the 2 cores went from the start of the burst to the end of its "
                  f"drain ({b['wall_s_burst_and_drain']} s wall, "
                  f"{2 * b['wall_s_burst_and_drain']:.0f} CPU-s available):", "",
                  "| part | CPU-s |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in cpu.items()]
    timeline = doc.get("timeline") or []
    ph = doc.get("phases_s")
    if timeline and ph:
        lines += ["", f"Phases (s from the start): normal {ph['normal'][0]:g}-{ph['normal'][1]:g} "
                  f"(the collector SIGKILLed at a third, the broker restarted at two thirds), "
                  f"burst {ph['burst'][0]:g}-{ph['burst'][1]:g}, then the drain (the gateways "
                  f"paused), the normal rate again, and the collector alone from "
                  f"{ph['collector_alone_from']:g}."]
    if timeline:
        lines += ["", "Backlog over the run (events made by the gateways, rows stored; every "
                  "~10 s):", "", "| s | made | stored | backlog |", "|---:|---:|---:|---:|"]
        last = -1e9
        for t, made, stored in timeline:
            if t - last >= 10:
                lines.append(f"| {t:g} | {made:,} | {stored:,} | {max(0, made - stored):,} |")
                last = t
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--broker", default="", help=argparse.SUPPRESS)
    ap.add_argument("--dir", default="", help=argparse.SUPPRESS)
    ap.add_argument("--control", default="", help=argparse.SUPPRESS)
    ap.add_argument("--tick", type=float, default=0.5,
                    help="seconds between two appends of a gateway (its events in between "
                         "are appended together)")
    ap.add_argument("--senders", type=int, default=8,
                    help="delivery threads per worker process (each over its share of gateways)")
    ap.add_argument("--gateways", type=int, default=1000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--normal-period", type=float, default=10.0,
                    help="seconds between two events of a gateway at the normal rate")
    ap.add_argument("--normal-s", type=float, default=60.0)
    ap.add_argument("--burst-rate", type=float, default=10.0, help="events/s per gateway")
    ap.add_argument("--burst-s", type=float, default=30.0)
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    ap.add_argument("--solo-events", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="100 gateways, short phases")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    prov.add_output_arguments(ap)
    args = ap.parse_args()
    if args.worker:
        sys.exit(worker_main(args))
    import pg_server
    from mqtt_broker import MOSQUITTO

    missing = [w for w in (pg_server.missing_reason(),
                           None if MOSQUITTO else "mosquitto is not installed") if w]
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing.append("psycopg is not installed (pip install 'frugalai[central]')")
    if missing:
        print(f"fleet-scale: cannot run: {'; '.join(missing)}", file=sys.stderr)
        sys.exit(2)
    if args.quick:
        args.gateways, args.procs, args.normal_s, args.burst_s = 100, 2, 15.0, 10.0
        args.solo_events = 20_000
    out = prov.output_dir(ap, args)
    meta = prov.provenance(quick=args.quick)
    doc = {"meta": meta, **run(args)}
    print(prov.write_results(out, "fleet_scale", doc, markdown))
    print(f"written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
