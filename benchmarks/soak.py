"""Reliability soak of the real daemon: SIGKILLs, a broker outage, full disks, a long run.

Not part of ``make test`` (``make soak``; ``--quick`` for a short version). Every scenario runs
the real ``frugalai run`` process against a real Mosquitto, and counts events end to end:

* **created**: events the daemon made. For the SIGKILL and broker scenarios, the ids the
  outbox ever numbered (``<sensor>:0..next-1``, persisted); an event still in memory when
  SIGKILL lands was never stored and is not counted (nothing can deliver it). For the
  full-disk scenarios, where events are held in memory *before* they get an id, the flows'
  own event counters from status.json (summed across flow rebuilds).
* **delivered**: distinct ids a persistent-session MQTT subscriber received;
  **duplicated**: deliveries beyond the first (at-least-once; receivers dedup by id);
  **lost**: created - delivered, and the daemon's own ``lost`` counter beside it.

Scenarios (the load is a square wave replayed at ``speed`` so that a threshold flow emits
one alarm or clear per window: 100 events/s):

1. ``sigkill``: 25 SIGKILLs at random moments (0.5-3 s after each start), then a clean run
   until the outbox is empty.
2. ``broker_outage``: Mosquitto stopped (SIGTERM) for 60 s under load, then back on the same
   port; seconds from the broker's return to an empty outbox.
3. ``disk_full``: the state dir on a size-limited tmpfs (``mount -t tmpfs -o size=...``),
   filled with the broker down (events pile up), then freed and the broker restarted.
4. ``disk_full_reload``: the same with a SIGHUP (a flow added) while the disk is full.
5. ``long_run``: four flows for ``--long-s`` seconds (real data compressed: the Dutch 1997
   demand at ~20,000x, i.e. ~110 days in 8 minutes, the Providence tide gauge at ~200,000x,
   i.e. ~3 years, plus the square wave at 10 events/s); RSS sampled every 5 s.
6. ``outage_72h``: a site's real event rate (16 flows, one alarm or clear a minute each) and
   72 h of broker outage in *event time*, compressed into 10 min (``--quick``: 12 h into 1 min)
   of wall
   time by the replay sources' ``speed``; then the broker back: every id delivered, the outbox
   on disk and in ``status.json`` / ``frugalai status`` at its deepest, RSS throughout. What is
   and is not compressed: see :func:`scenario_outage_72h`.
7. ``flapping``: the same site in real time, the broker up 5 s / down 5 s for 10 min
   (``--quick``: 1 min): the daemon's CPU from /proc (beside a steady-broker baseline), its log
   lines per outage, every id delivered.

Writes soak.json and soak.md (date, commit, machine) to build/benchmarks/
(benchmarks/results/ with ``--publish``).

    nice -n 10 .venv/bin/python benchmarks/soak.py [--quick] [--only sigkill,long_run] [--publish]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tests' real-process helpers (daemon, broker)
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402
from mqtt_broker import MOSQUITTO, Mosquitto  # noqa: E402
from service_helpers import Daemon, created_ids, pending_count, status, wait_for  # noqa: E402

from frugalai.config import Config  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
T0 = 1_700_000_000


# --- load and plumbing -----------------------------------------------------------------------

def square_csv(path: Path, rows: int = 400_000) -> Path:
    """0.5 s rows, 500 VA / 3000 VA alternating each second: one event per 1-s window."""
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(rows):
            fh.write(f"{T0 + i * 0.5:.1f},{3000 if (i // 2) % 2 else 500}\n")
    return path


def square_flow(name: str, csv: Path, speed: float, sensor_id: int = 1) -> str:
    return f"""
[[flow]]
name = "{name}"
source = "replay://{csv}?speed={speed:g}&value=value:apparent_power_va:VA"
sensor_id = {sensor_id}
quantity = "apparent_power_va"
aggregate = "mean"
window_s = 1
summary_s = 0
model = "threshold"
  [flow.policy]
  on = 2000.0
  off = 1000.0
"""


def config(work: Path, gateway: str, state: Path, flows: list[str], broker: Mosquitto) -> Path:
    path = work / f"{gateway}.toml"
    path.write_text(f'[gateway]\nid = "{gateway}"\nstate_dir = "{state}"\n'
                    f'models_dir = "{ROOT / "models"}"\n\n[service]\nstatus_interval_s = 0.5\n'
                    f"stop_timeout_s = 20.0\n" + "".join(flows)
                    + f'\n[[uplink]]\nurl = "{broker.url}?timeout=3"\n')
    return path


class Subscriber:
    """A persistent-session (clean_session=False) QoS 1 subscriber: a broker restart or a
    reconnect does not lose what was published meanwhile (the broker keeps it)."""

    def __init__(self, broker: Mosquitto) -> None:
        import paho.mqtt.client as mqtt

        self.ids: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="soak-subscriber",
                        clean_session=False)
        c.reconnect_delay_set(1, 2)
        c.on_connect = lambda cl, *a: cl.subscribe("frugalai/+/+/event", qos=1)
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        c.connect_async(broker.host, broker.port, 30)
        c.loop_start()
        self.client = c
        if not self.subscribed.wait(15):
            raise RuntimeError("the soak subscriber could not subscribe")

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        try:
            event_id = json.loads(msg.payload)["id"]
        except (ValueError, KeyError):
            return
        with self._lock:
            self.ids[event_id] += 1

    def of(self, prefixes: tuple[str, ...]) -> Counter[str]:
        with self._lock:
            return Counter({k: v for k, v in self.ids.items() if k.startswith(prefixes)})

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            kb = rss_kb(self.pid)
            if kb:
                self.samples.append((round(time.monotonic() - self.t0, 1), kb))
            self.stop.wait(self.every)


def counted(created: set[str], got: Counter[str]) -> dict[str, Any]:
    delivered = set(got) & created
    return {"created": len(created), "delivered": len(delivered),
            "lost": len(created - delivered), "duplicated": sum(n - 1 for n in got.values()),
            "unknown_ids": len(set(got) - created),
            "lost_examples": sorted(created - delivered)[:10]}


def stop_daemon(daemon: Daemon) -> int:
    daemon.signal(signal.SIGTERM)
    try:
        return daemon.wait(60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        return -9


# --- scenarios -------------------------------------------------------------------------------

def scenario_sigkill(work: Path, broker: Mosquitto, sub: Subscriber, csv: Path,
                     kills: int, rng: random.Random) -> dict[str, Any]:
    state = work / "sigkill"
    cfg = config(work, "sigkill", state, [square_flow("k", csv, 100)], broker)
    log = work / "sigkill.log"
    rss: list[int] = []
    for _ in range(kills):
        daemon = Daemon(cfg, log)
        time.sleep(rng.uniform(0.5, 3.0))
        rss.append(rss_kb(daemon.proc.pid))
        daemon.kill()
    daemon = Daemon(cfg, log)
    daemon.wait_running(state, 60)
    wait_for(lambda: pending_count(state) == 0, 120, "the backlog delivered")
    time.sleep(2)
    code = stop_daemon(daemon)
    created = created_ids(state)
    wait_for(lambda: set(sub.of(("k:",))) >= created, 30, "") if created else None
    return {"kills": kills, "events_per_s": 100, **counted(created, sub.of(("k:",))),
            "exit_code": code, "rss_kb_at_kill_max": max(rss or [0])}


def scenario_outage(work: Path, broker: Mosquitto, sub: Subscriber, csv: Path,
                    outage_s: float) -> dict[str, Any]:
    state = work / "outage"
    cfg = config(work, "outage", state, [square_flow("o", csv, 100)], broker)
    daemon = Daemon(cfg, work / "outage.log")
    sampler = RssSampler(daemon.proc.pid, 2.0)
    sampler.start()
    try:
        daemon.wait_running(state, 60)
        time.sleep(5)
        broker.stop()
        time.sleep(outage_s)
        depth_at_return = pending_count(state)
        broker.start()
        back = time.monotonic()
        wait_for(lambda: pending_count(state) == 0, 300, "the backlog delivered")
        recovery = time.monotonic() - back
        time.sleep(2)
    finally:
        code = stop_daemon(daemon)
        sampler.stop.set()
    created = created_ids(state)
    wait_for(lambda: set(sub.of(("o:",))) >= created, 60, "") if created else None
    return {"outage_s": outage_s, "events_per_s": 100, **counted(created, sub.of(("o:",))),
            "pending_when_broker_returned": depth_at_return,
            "backlog_delivered_s_after_broker_back": round(recovery, 1), "exit_code": code,
            "rss_kb_max": max((kb for _, kb in sampler.samples), default=0)}


def _flow_events(state: Path, totals: dict[str, int], last: dict[str, int]) -> None:
    """Accumulate the flows' event counters (a rebuilt flow starts again from 0)."""
    for name, flow in status(state).get("flows", {}).items():
        n = int(flow.get("events") or 0)
        if n < last.get(name, 0):
            totals[name] = totals.get(name, 0) + last[name]
        last[name] = n


def scenario_disk_full(work: Path, broker: Mosquitto, sub: Subscriber, csv: Path,
                       reload: bool, full_s: float, size_mb: int = 8) -> dict[str, Any]:
    tag = "dfr" if reload else "df"
    mount = work / f"{tag}-mnt"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs",
                           str(mount)], capture_output=True, text=True)
    if done.returncode:
        return {"skipped": f"cannot mount a size-limited tmpfs: {done.stderr.strip()}"}
    state = mount / "state"
    flows = [square_flow(tag, csv, 100)]
    cfg = config(work, tag, state, flows, broker)
    daemon = Daemon(cfg, work / f"{tag}.log")
    totals: dict[str, int] = {}
    last: dict[str, int] = {}
    st: dict[str, Any] = {}
    try:
        daemon.wait_running(state, 60)
        time.sleep(3)
        broker.stop()                       # the events now pile up in the outbox...
        free = os.statvfs(mount)
        filler = mount / "filler"
        with filler.open("wb") as fh:       # ...which has 64 KiB left
            fh.write(b"\0" * max(0, free.f_bavail * free.f_frsize - 64 * 1024))
        deadline = time.monotonic() + full_s
        reloaded = False
        held_max = 0
        while time.monotonic() < deadline:
            _flow_events(state, totals, last)
            st = status(state)
            held_max = max(held_max, int(st.get("outbox", {}).get("held_in_memory") or 0))
            if reload and not reloaded and time.monotonic() > deadline - full_s / 2:
                cfg.write_text(cfg.read_text().replace(
                    "\n[[uplink]]", square_flow(f"{tag}2", csv, 10, 2) + "\n[[uplink]]"))
                daemon.signal(signal.SIGHUP)
                reloaded = True
            time.sleep(0.5)
        filler.unlink()                     # space back
        broker.start()
        wait_for(lambda: pending_count(state) == 0
                 and not (status(state).get("outbox", {}).get("held_in_memory") or 0),
                 300, "the held events stored and delivered")
        time.sleep(3)
        _flow_events(state, totals, last)
        st = status(state)
    finally:
        code = stop_daemon(daemon)
        _flow_events(state, totals, last)   # the status the daemon wrote as it stopped
        st = status(state) or st
        time.sleep(1)
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
    made = sum(totals.values()) + sum(last.values())
    got = sub.of((f"{tag}:", f"{tag}2:"))
    log = (work / f"{tag}.log").read_text(errors="replace")
    return {"reload": reload, "tmpfs_mb": size_mb, "full_s": full_s,
            "created_by_flows": made, "delivered": len(got),
            "lost": max(0, made - len(got)), "duplicated": sum(n - 1 for n in got.values()),
            "daemon_lost_counter": (st.get("outbox") or {}).get("lost"),
            "held_in_memory_max_seen_in_status": held_max, "exit_code": code,
            "log_outbox_unwritable_lines": sum("outbox cannot store" in line
                                               for line in log.splitlines()),
            "log_lost_lines": sum("LOST" in line for line in log.splitlines())}


def scenario_long(work: Path, broker: Mosquitto, sub: Subscriber, csv: Path,
                  run_s: float) -> dict[str, Any]:
    dutch = DATA / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
    tide = DATA / "coastal" / "providence_8454000" / "providence_8454000_hourly_1938_1969.csv.gz"
    if not dutch.exists() or not tide.exists():
        return {"skipped": f"real data not found under {DATA}"}
    flows = [
        f"""
[[flow]]
name = "energy"
source = "replay://{dutch}?speed=20000&value=value:power_kw:kW"
sensor_id = 3
quantity = "power_kw"
aggregate = "mean"
window_s = 900
summary_s = 60
model = "profile"
""", f"""
[[flow]]
name = "energy_thr"
source = "replay://{dutch}?speed=20000&value=value:power_kw:kW"
sensor_id = 4
quantity = "power_kw"
aggregate = "mean"
window_s = 900
summary_s = 60
model = "threshold"
  [flow.policy]
  on = 1500.0
  off = 1200.0
""", f"""
[[flow]]
name = "tide"
source = "replay://{tide}?speed=200000&value=water_level_m_mllw:water_level_m:m"
sensor_id = 5
quantity = "water_level_m"
aggregate = "mean"
window_s = 3600
summary_s = 60
model = "threshold"
  [flow.policy]
  on = 1.9
  off = 1.6
""", square_flow("sq", csv, 10, 6)]
    state = work / "long"
    cfg = config(work, "long", state, flows, broker)
    daemon = Daemon(cfg, work / "long.log")
    sampler = RssSampler(daemon.proc.pid, 5.0)
    sampler.start()
    try:
        daemon.wait_running(state, 60)
        time.sleep(run_s)
        wait_for(lambda: pending_count(state) == 0, 120, "the outbox emptied")
        time.sleep(2)
        st = status(state)
    finally:
        code = stop_daemon(daemon)
        sampler.stop.set()
    created = created_ids(state)
    kbs = [kb for _, kb in sampler.samples]
    half = kbs[len(kbs) // 2:] or kbs
    flows_st = {n: {"readings": f.get("readings"), "events": f.get("events"),
                    "decode_errors": f.get("decode_errors"), "restarts": f.get("restarts")}
                for n, f in st.get("flows", {}).items()}
    return {"run_s": run_s, **counted(created, sub.of(("energy:", "energy_thr:", "tide:",
                                                       "sq:"))),
            "flows": flows_st, "exit_code": code, "rss_kb_first": kbs[0] if kbs else 0,
            "rss_kb_max": max(kbs, default=0), "rss_kb_last": kbs[-1] if kbs else 0,
            "rss_kb_second_half_min_max": [min(half, default=0), max(half, default=0)],
            "rss_series": sampler.samples}


# --- a site's real event rate: 16 flows, one event a minute each --------------------------

SITE_FLOWS = 16
#: event-time seconds between two rows of the site's load (a meter polled every 20 s).
SITE_STEP_S = 20
#: the site's period summary, event time (the flows' default summary_s).
SITE_SUMMARY_S = 3600


def site_csv(path: Path, hours: float, t0: int) -> Path:
    """A row every 20 s, 3000 VA for a minute then 500 VA for a minute: with 60-s windows
    aligned on the minute, a threshold flow emits one alarm or clear per minute."""
    rows = int(hours * 3600 / SITE_STEP_S)
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        for i in range(rows):
            ts = t0 + i * SITE_STEP_S
            fh.write(f"{ts},{3000 if (ts // 60) % 2 else 500}\n")
    return path


def site_flows(csv: Path, speed: float, summary_s: int, prefix: str = "s") -> list[str]:
    """16 threshold flows replaying the site's load at ``speed`` (``end=wait``: the gateway
    keeps running after the file, as a real one would)."""
    return [f"""
[[flow]]
name = "{prefix}{i:02d}"
source = "replay://{csv}?speed={speed:g}&end=wait&value=value:apparent_power_va:VA"
sensor_id = {i + 1}
quantity = "apparent_power_va"
aggregate = "mean"
window_s = 60
summary_s = {summary_s}
model = "threshold"
  [flow.policy]
  on = 2000.0
  off = 1000.0
""" for i in range(SITE_FLOWS)]


def event_time(state: Path, prefix: str) -> float:
    """The slowest flow's event time (its last reading's timestamp), 0 before any."""
    flows = [f for n, f in status(state).get("flows", {}).items() if n.startswith(prefix)]
    if len(flows) < SITE_FLOWS:
        return 0.0
    return min(float(f.get("last_reading_ts") or 0.0) for f in flows)


def cpu_ticks(pid: int) -> int:
    """utime + stime of every thread of ``pid`` (clock ticks), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


TICK_HZ = os.sysconf("SC_CLK_TCK")


def outbox_bytes(state: Path) -> int:
    """The outbox's size on disk: the database and its WAL."""
    return sum(p.stat().st_size for p in state.glob("outbox.sqlite*") if p.is_file())


def cli_status(cfg: Path) -> dict[str, Any]:
    """What ``frugalai status --json`` says (the operator's view of the outbox)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "frugalai", "status", "--config", str(cfg),
                           "--json"], capture_output=True, text=True, env=env, timeout=60)
    try:
        return dict(json.loads(done.stdout))
    except ValueError:
        return {"error": (done.stderr or done.stdout).strip()[-300:]}


class Watch(threading.Thread):
    """RSS, outbox size on disk and depth of a running daemon, every ``every`` seconds."""

    def __init__(self, pid: int, state: Path, every: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.state, self.every = pid, state, every
        self.rss: list[int] = []
        self.disk: list[int] = []
        self.depth: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            kb = rss_kb(self.pid)
            if kb:
                self.rss.append(kb)
            self.disk.append(outbox_bytes(self.state))
            self.depth.append(int((status(self.state).get("outbox") or {}).get("depth") or 0))
            self.stop.wait(self.every)


def scenario_outage_72h(work: Path, broker: Mosquitto, sub: Subscriber, hours: float,
                        wall_s: float) -> dict[str, Any]:
    """72 h of broker outage in event time, at the site's rate, compressed ``speed`` times.

    The replay sources give the gateway event time: readings, windows, policies and event
    timestamps advance ``speed`` times faster than the wall clock, so the outbox receives in
    ``wall_s`` the 69,120 alarms/clears of 72 h. The wall-clock timers of the daemon are not
    compressed (paho's reconnect backoff, the delivery retry, the log-rate period, status
    writes); the summary period is, ``summary_s = 3600 / speed``, so the outbox holds as many
    summaries as after 72 real hours. The outage is measured in event time: the broker is
    stopped, then started again once the slowest flow has read ``hours`` past that moment.
    """
    speed = hours * 3600 / wall_s
    summary_s = max(1, round(SITE_SUMMARY_S / speed))
    t0 = T0 - T0 % 120
    pre_h, post_h = 0.5, 1.0
    csv = site_csv(work / "site72.csv", pre_h + hours + post_h + 0.5, t0)
    state = work / "outage72"
    cfg = config(work, "outage72", state, site_flows(csv, speed, summary_s, "h"), broker)
    daemon = Daemon(cfg, work / "outage72.log")
    watch = Watch(daemon.proc.pid, state, 2.0)
    watch.start()
    st_peak: dict[str, Any] = {}
    cli_peak: dict[str, Any] = {}
    try:
        daemon.wait_running(state, 60)
        wait_for(lambda: event_time(state, "h") >= t0 + pre_h * 3600, wall_s, "the pre-roll")
        broker.stop()
        down_wall = time.monotonic()
        down_ev = max(float(f.get("last_reading_ts") or 0)
                      for f in status(state).get("flows", {}).values())
        wait_for(lambda: event_time(state, "h") >= down_ev + hours * 3600, 20 * wall_s,
                 "72 h of event time", every=0.5)
        back_ev = event_time(state, "h")
        st_peak = status(state)
        cli_peak = cli_status(cfg)
        pending_at_return = pending_count(state)
        disk_at_return = outbox_bytes(state)
        broker.start()
        back = time.monotonic()
        outage_wall = back - down_wall
        wait_for(lambda: pending_count(state) == 0, 600, "the backlog delivered")
        recovery = time.monotonic() - back
        wait_for(lambda: event_time(state, "h") >= t0 + (pre_h + hours + post_h) * 3600
                 or time.monotonic() - back > 60, 120, "")
        wait_for(lambda: pending_count(state) == 0, 120, "the outbox empty")
        time.sleep(2)
    finally:
        code = stop_daemon(daemon)
        watch.stop.set()
    created = created_ids(state)
    prefixes = tuple(f"h{i:02d}:" for i in range(SITE_FLOWS))
    wait_for(lambda: set(sub.of(prefixes)) >= created, 60, "") if created else None
    got = sub.of(prefixes)
    log = (work / "outage72.log").read_text(errors="replace").splitlines()
    kinds = Counter(k.split(":")[0] for k in got)
    ob_peak = st_peak.get("outbox") or {}
    alarms_clears = sum(int(f.get("events") or 0) for f in status(state).get("flows", {}).values())
    return {"outage_event_h": round((back_ev - down_ev) / 3600, 2),
            "outage_wall_s": round(outage_wall, 1), "speed": round(speed),
            "speed_achieved": round((back_ev - down_ev) / outage_wall),
            "flows": SITE_FLOWS, "events_per_flow_per_min": 1, "summary_s": summary_s,
            **counted(created, got), "per_flow_delivered_min_max":
                [min(kinds.values(), default=0), max(kinds.values(), default=0)],
            "pending_when_broker_returned": pending_at_return,
            "outbox_bytes_when_broker_returned": disk_at_return,
            "outbox_bytes_max": max(watch.disk, default=0),
            "outbox_cap": Config().gateway.outbox_max,  # the default: the soak sets none
            "summaries_stored": len(created) - alarms_clears,
            "dropped_by_cap": ob_peak.get("dropped"),
            "status_json_outbox_at_return": {k: ob_peak.get(k) for k in
                                             ("depth", "oldest_age_s", "stored", "sent",
                                              "dropped", "held_in_memory", "lost")},
            "frugalai_status_outbox_at_return": {k: (cli_peak.get("outbox") or {}).get(k)
                                                 for k in ("depth", "oldest_age_s", "dropped")}
            if "error" not in cli_peak else cli_peak,
            "backlog_delivered_s_after_broker_back": round(recovery, 1), "exit_code": code,
            "rss_kb_max": max(watch.rss, default=0), "rss_kb_last": watch.rss[-1]
            if watch.rss else 0, "log_lines": len(log),
            "log_lines_by_message": dict(Counter(_log_kind(ln) for ln in log).most_common(8))}


class Flapper(threading.Thread):
    """Stops and starts the broker: up ``up_s`` / down ``down_s`` until ``stop``."""

    def __init__(self, broker: Mosquitto, up_s: float, down_s: float) -> None:
        super().__init__(daemon=True)
        self.broker, self.up_s, self.down_s = broker, up_s, down_s
        self.stop = threading.Event()
        self.outages = 0

    def run(self) -> None:
        while not self.stop.wait(self.up_s):
            self.broker.stop()
            self.outages += 1
            self.stop.wait(self.down_s)
            self.broker.start()


def cpu_percent(pid: int, seconds: float) -> tuple[float, int]:
    """CPU of ``pid`` over the next ``seconds`` (% of one core) and the ticks spent."""
    t, c = time.monotonic(), cpu_ticks(pid)
    time.sleep(seconds)
    ticks = cpu_ticks(pid) - c
    return round(100.0 * ticks / TICK_HZ / (time.monotonic() - t), 2), ticks


def scenario_flapping(work: Path, broker: Mosquitto, sub: Subscriber, flap_s: float,
                      baseline_s: float, speed: float = 10.0) -> dict[str, Any]:
    """The broker up 5 s / down 5 s for ``flap_s`` under the site's load played ``speed``
    times faster (10: 160 events a minute, so that a 1-min run counts losses on more than a
    handful of events; the CPU measured is then an upper bound for the site's real rate):
    the daemon's CPU from /proc over the flapping, beside a steady-broker baseline of the
    same daemon; its log lines per outage; every event delivered."""
    t0 = T0 - T0 % 120
    csv = site_csv(work / "site-flap.csv", (baseline_s + flap_s + 600) * speed / 3600 + 0.1,
                   t0)
    state = work / "flap"
    cfg = config(work, "flap", state, site_flows(csv, speed, 0, "f"), broker)
    log_path = work / "flap.log"
    daemon = Daemon(cfg, log_path)
    flapper = Flapper(broker, 5.0, 5.0)
    try:
        daemon.wait_running(state, 60)
        time.sleep(10)                      # startup over (imports, first windows)
        base_pct, base_ticks = cpu_percent(daemon.proc.pid, baseline_s)
        log_before = len(log_path.read_text(errors="replace").splitlines())
        flapper.start()
        flap_pct, flap_ticks = cpu_percent(daemon.proc.pid, flap_s)
        flapper.stop.set()
        flapper.join()
        if broker.proc is None:
            broker.start()
        log_lines = log_path.read_text(errors="replace").splitlines()[log_before:]
        rss = rss_kb(daemon.proc.pid)
        time.sleep(5)
        wait_for(lambda: pending_count(state) == 0, 300, "the outbox empty")
        time.sleep(2)
    finally:
        flapper.stop.set()
        code = stop_daemon(daemon)
    created = created_ids(state)
    prefixes = tuple(f"f{i:02d}:" for i in range(SITE_FLOWS))
    wait_for(lambda: set(sub.of(prefixes)) >= created, 60, "") if created else None
    outages = max(1, flapper.outages)
    kinds = Counter(_log_kind(ln) for ln in log_lines)
    return {"flap_s": flap_s, "up_s": 5, "down_s": 5, "outages": flapper.outages,
            "speed": speed, "flows": SITE_FLOWS, **counted(created, sub.of(prefixes)),
            "cpu_pct_one_core_flapping": flap_pct, "cpu_ticks_flapping": flap_ticks,
            "cpu_pct_one_core_steady_broker": base_pct, "cpu_ticks_steady": base_ticks,
            "baseline_s": baseline_s, "log_lines_flapping": len(log_lines),
            "log_lines_per_outage": round(len(log_lines) / outages, 2),
            "log_lines_by_message": dict(kinds.most_common(8)),
            "rss_kb_after": rss, "exit_code": code}


def _log_kind(line: str) -> str:
    """A log line without its timestamp and numbers: which message it is."""
    text = re.sub(r"^\d{4}-\d\d-\d\d \S+ ", "", line)
    return re.sub(r"[0-9]+(\.[0-9]+)?", "N", text)[:100]


# --- report ----------------------------------------------------------------------------------

def _note(name: str, r: dict[str, Any]) -> str:
    if name == "sigkill":
        return f"{r['kills']} SIGKILLs at {r['events_per_s']} events/s"
    if name == "broker_outage":
        return (f"{r['outage_s']:.0f} s outage at {r['events_per_s']} events/s; backlog of "
                f"{r['pending_when_broker_returned']} delivered "
                f"{r['backlog_delivered_s_after_broker_back']} s after the broker came back")
    if name.startswith("disk_full"):
        return (("SIGHUP while full; " if r.get("reload") else "")
                + f"tmpfs {r['tmpfs_mb']} MB full for {r['full_s']:.0f} s; held in memory max "
                f"{r['held_in_memory_max_seen_in_status']} (status.json is on the full disk too); "
                f"'outbox cannot store' log lines {r['log_outbox_unwritable_lines']}; "
                f"daemon's lost counter {r['daemon_lost_counter']}; "
                f"'LOST' log lines {r['log_lost_lines']}; exit code {r['exit_code']}")
    if name == "outage_72h":
        ob = r["status_json_outbox_at_return"]
        achieved = r["outage_event_h"] * 3600 / r["outage_wall_s"]
        return (f"{r['outage_event_h']} h of event time without a broker ({r['flows']} flows, "
                f"1 event/min each, replayed at {r['speed']}x asked, {achieved:.0f}x achieved "
                f"on the loaded machine: {r['outage_wall_s']:.0f} s of wall time; "
                f"{r['summaries_stored']} summaries); "
                f"outbox when the broker came back: {r['pending_when_broker_returned']:,} "
                f"pending, {r['outbox_bytes_when_broker_returned'] / 1e6:.1f} MB on disk "
                f"(max {r['outbox_bytes_max'] / 1e6:.1f} MB), status.json depth "
                f"{ob.get('depth')}, dropped {ob.get('dropped')}; backlog delivered "
                f"{r['backlog_delivered_s_after_broker_back']} s after; RSS max "
                f"{r['rss_kb_max']:,} kB; {r['log_lines']} log lines in all")
    if name == "flapping":
        return (f"broker up 5 s / down 5 s for {r['flap_s']:.0f} s ({r['outages']} outages), "
                f"{r['flows']} flows at {r['speed']:g} events/min each; daemon CPU "
                f"{r['cpu_pct_one_core_flapping']} % of one core while flapping "
                f"({r['cpu_pct_one_core_steady_broker']} % with a steady broker); "
                f"{r['log_lines_flapping']} log lines ({r['log_lines_per_outage']} per outage)")
    if name == "long_run":
        return (f"{r['run_s']:.0f} s, 4 flows; RSS {r['rss_kb_first']:,} → max "
                f"{r['rss_kb_max']:,} → last {r['rss_kb_last']:,} kB")
    return ""


def markdown(doc: dict[str, Any]) -> str:
    meta, results = doc["meta"], doc["results"]
    lines = ["# Reliability soak (real daemon, real Mosquitto)", "",
             f"{'Quick' if meta['quick'] else 'Full'} run, seed {meta['seed']}.", "",
             "| scenario | created | delivered | lost | duplicated | notes | commit |",
             "|---|---:|---:|---:|---:|---|---|"]
    for name, r in results.items():
        if "skipped" in r or "error" in r:
            lines.append(f"| {name} | – | – | – | – | {r.get('skipped') or r.get('error')} "
                         f"| {r.get('commit', '')} |")
            continue
        created = r.get("created", r.get("created_by_flows"))
        note = _note(name, r)
        quick = " (quick)" if r.get("quick") else ""
        lines.append(f"| {name}{quick} | {created} | {r['delivered']} | {r['lost']} | "
                     f"{r['duplicated']} | {note} | {r.get('commit', meta['commit'])} |")
    o72, flap = results.get("outage_72h", {}), results.get("flapping", {})
    if "lost" in o72 and "lost" in flap:
        ok = {True: "met", False: "MISSED"}
        per_event = (o72["outbox_bytes_when_broker_returned"]
                     / max(1, o72["pending_when_broker_returned"]))
        lines += ["", f"Issue 30 targets: {o72['outage_event_h']:.0f} h outage 0 lost "
                  f"({ok[o72['lost'] == 0]}), RSS ≤ 40 MB (max {o72['rss_kb_max'] / 1024:.1f} "
                  f"MiB: {ok[o72['rss_kb_max'] <= 40 * 1024]}), outbox bounded (cap "
                  f"{o72['outbox_cap']:,} events, dropped {o72['dropped_by_cap']}, "
                  f"{per_event:.0f} "
                  f"B per pending event on disk); flapping 0 lost ({ok[flap['lost'] == 0]}), "
                  f"CPU ≤ 2 % of one core ({flap['cpu_pct_one_core_flapping']} %: "
                  f"{ok[flap['cpu_pct_one_core_flapping'] <= 2.0]}), log lines bounded "
                  f"({flap['log_lines_flapping']} for {flap['outages']} outages)."]
    long = results.get("long_run", {})
    if long.get("rss_series"):
        lines += ["", "RSS of the daemon over the long run (s, kB): "
                  + ", ".join(f"{t:.0f}:{kb}" for t, kb in long["rss_series"][::4])]
    lines += ["", "Created = ids the outbox numbered (SIGKILL, broker, long run, 72 h outage, "
              "flapping) or the flows' "
              "event counters (full disk, where events wait in memory before they get an id). "
              "Delivered = distinct ids a persistent-session MQTT subscriber received; "
              "duplicated = deliveries beyond the first (at-least-once), which the receiver "
              "drops by id: after that dedup nothing is duplicated.", "",
              "outage_72h: the replay sources give the gateway event time, so 72 h of a site's "
              "events reach the outbox in minutes; the daemon's wall-clock timers (paho's "
              "reconnect backoff, the 1-s delivery retry, the 5-min log count, status writes) "
              "are not compressed, the summary period is (summary_s = 3600 / speed asked).", "",
              "Reproduce: `make soak` (`SOAK_ARGS=--quick` for the short version; "
              "`SOAK_ARGS=--publish` writes benchmarks/results/).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 kills, 10 s outage, 60 s run")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--long-s", type=float, default=None)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--merge", action="store_true",
                        help="keep the other scenarios' figures from the last soak.json")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite soak.md from soak.json (after a change of this report)")
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    out = prov.output_dir(parser, args)
    if args.render_only:
        doc = json.loads((out / "soak.json").read_text())
        (out / "soak.md").write_text(prov.render_markdown(doc, markdown).rstrip("\n") + "\n")
        return
    if MOSQUITTO is None:
        sys.exit("mosquitto is not installed: run scripts/install-sysdeps")
    q = args.quick
    meta = prov.provenance(quick=q, seed=args.seed)
    at_commit = meta["commit"]
    rng = random.Random(args.seed)
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="frugalai-soak-") as tmp:
        work = Path(tmp)
        csv = square_csv(work / "square.csv")
        broker = Mosquitto(work / "broker", persistence=True)  # the subscriber's session too
        broker.start()
        sub = Subscriber(broker)
        plan: list[tuple[str, Any]] = [
            ("sigkill", lambda: scenario_sigkill(work, broker, sub, csv, 5 if q else 25, rng)),
            ("broker_outage", lambda: scenario_outage(work, broker, sub, csv, 10 if q else 60)),
            ("disk_full", lambda: scenario_disk_full(work, broker, sub, csv, False,
                                                     10 if q else 30)),
            ("disk_full_reload", lambda: scenario_disk_full(work, broker, sub, csv, True,
                                                            10 if q else 30)),
            ("long_run", lambda: scenario_long(work, broker, sub, csv,
                                               args.long_s or (60 if q else 480))),
            ("outage_72h", lambda: scenario_outage_72h(work, broker, sub, 12.0 if q else 72.0,
                                                       60 if q else 600)),
            ("flapping", lambda: scenario_flapping(work, broker, sub, 60 if q else 600,
                                                   20 if q else 120)),
        ]
        try:
            for name, run in plan:
                if wanted and name not in wanted:
                    continue
                print(f"== {name}", flush=True)
                try:
                    results[name] = run()
                except Exception as err:  # one failed scenario must not hide the others
                    results[name] = {"error": f"{type(err).__name__}: {err}"}
                results[name].update(commit=at_commit, quick=q,
                                     date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
                summary = {k: v for k, v in results[name].items()
                           if k not in ("rss_series", "lost_examples", "flows")}
                print(json.dumps(summary, default=str), flush=True)
                if broker.proc is None:
                    broker.start()
        finally:
            sub.close()
            broker.stop()
    if args.merge and (out / "soak.json").exists():
        earlier = json.loads((out / "soak.json").read_text())["results"]
        results = {**{k: v for k, v in earlier.items() if k not in results}, **results}
    print(prov.write_results(out, "soak", {"meta": meta, "results": results}, markdown))


if __name__ == "__main__":
    main()
