"""Fleet health messages: what a gateway publishes, and the verdict on each. Pure.

A gateway publishes its status, retained, on ``frugalai/fleet/<gateway>/status`` every status
interval (JSON, ``v`` = 1)::

    {"v": 1, "gateway": "gw-01", "online": true, "version": "0.4.0", "state": "running",
     "healthy": true, "updated": 1764400000.0, "status_interval_s": 10,
     "models": {"energy-anomaly": {"version": "2", "sha256": "<card.json sha256>"}},
     "flows": {"linky": {"state": "running", "up": true, "why": null,
                         "model": "energy-anomaly", "model_version": "2@3f2a9c01b7de",
                         "sensor": {"faults": [], "holding": false}}},
     "outbox": {"pending": 0, "oldest_age_s": null, "lost": 0, "dropped": 0},
     "last_event_ts": 1764399990.0}

Its last will (and its clean stop) replaces it with ``{"v": 1, "gateway": ..., "online":
false, "reason": ...}``: the broker publishes the will when the gateway vanishes without a word.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Optional

VERSION = 1
OK, STALE, DEGRADED, OFFLINE = "ok", "stale", "degraded", "offline"


def offline_payload(gateway: str, reason: str) -> bytes:
    return json.dumps({"v": VERSION, "gateway": gateway, "online": False, "reason": reason},
                      separators=(",", ":")).encode()


def from_snapshot(gateway: str, snap: dict[str, Any],
                  models: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The fleet status of a gateway from the daemon's status snapshot (``Service.snapshot``).

    Args:
        gateway: the gateway id.
        snap: what the daemon writes to status.json.
        models: {name: {"version", "sha256"}} of the bundles its flows use.
    """
    flows = {}
    for name, f in (snap.get("flows") or {}).items():
        flows[name] = {"state": f.get("state"), "up": bool(f.get("device_up")),
                       "why": f.get("why") or f.get("last_error") or None, "model": f.get("model"),
                       "model_version": f.get("model_version")}
        health = f.get("health")
        if health:  # the sensor's health checks: what fails, and whether decisions are held
            flows[name]["sensor"] = {"faults": health.get("faults") or [],
                                     "holding": bool(health.get("holding"))}
    outbox = snap.get("outbox") or {}
    # when the gateway stored its last event, on its own clock: an event's ts is its reading's
    # time (a meter's clock, a replayed file's), which says nothing about liveness
    last = [e.get("stored", e.get("ts")) for e in (outbox.get("last_event") or {}).values()
            if isinstance(e.get("stored", e.get("ts")), (int, float))]
    return {
        "v": VERSION, "gateway": gateway, "online": True, "version": snap.get("version"),
        "state": snap.get("state"), "healthy": bool(snap.get("healthy")),
        "updated": snap.get("updated", time.time()),
        "status_interval_s": snap.get("status_interval_s"),
        "models": models, "flows": flows,
        "outbox": {"pending": outbox.get("depth", 0), "oldest_age_s": outbox.get("oldest_age_s"),
                   "lost": outbox.get("lost", 0), "dropped": outbox.get("dropped", 0)},
        "last_event_ts": max(last) if last else None,
    }


def encode(status: dict[str, Any]) -> bytes:
    return json.dumps(status, separators=(",", ":"), default=str).encode()


@dataclass(frozen=True)
class Verdict:
    gateway: str
    verdict: str  # ok | stale | degraded | offline
    why: str
    status: dict[str, Any]

    @property
    def flagged(self) -> bool:
        return self.verdict != OK


def judge(gateway: str, payload: bytes, now: float, stale_s: Optional[float] = None
          ) -> Verdict:
    """The verdict on one retained status message.

    Stale: not updated for ``stale_s`` seconds (default: 3 status intervals, at least 30 s).
    Degraded: the gateway says it is unhealthy, a flow is not running or its device is down,
    or the outbox holds events older than the stale bound (the uplink is not delivering).
    """
    try:
        status = json.loads(payload)
        if not isinstance(status, dict) or status.get("v") != VERSION:
            raise ValueError("not a v1 status object")
    except ValueError as err:
        return Verdict(gateway, DEGRADED, f"unreadable status: {err}", {})
    if not status.get("online", False):
        return Verdict(gateway, OFFLINE, str(status.get("reason") or "offline"), status)
    interval = status.get("status_interval_s") or 10
    bound = stale_s if stale_s is not None else max(30.0, 3 * float(interval))
    age = now - float(status.get("updated") or 0)
    if age > bound:
        return Verdict(gateway, STALE, f"no status for {age:.0f} s (bound {bound:.0f} s)",
                       status)
    whys = []
    for name, f in (status.get("flows") or {}).items():
        if f.get("state") != "running" or not f.get("up"):
            whys.append(f"flow {name} {f.get('state')}"
                        f"{'' if f.get('up') else ', device down'}"
                        f"{': ' + str(f['why']) if f.get('why') else ''}")
    outbox = status.get("outbox") or {}
    oldest = outbox.get("oldest_age_s")
    if isinstance(oldest, (int, float)) and oldest > bound:
        whys.append(f"{outbox.get('pending')} event(s) pending, oldest {oldest:.0f} s")
    if not status.get("healthy", False) and not whys:
        whys.append(f"unhealthy (state {status.get('state')})")
    if whys:
        return Verdict(gateway, DEGRADED, "; ".join(whys), status)
    return Verdict(gateway, OK, "", status)


def table(verdicts: list[Verdict], now: float) -> list[str]:
    """A fixed-width table, one line per gateway."""
    head = (f"{'gateway':<16} {'verdict':<9} {'version':<9} {'models':<28} {'pend':>5} "
            f"{'lost':>5} {'drop':>5} {'last event':>10}  why")
    lines = [head]
    for v in verdicts:
        s = v.status
        models = ",".join(f"{n}={m.get('version') or '?'}@{str(m.get('sha256', ''))[:8]}"
                          for n, m in sorted((s.get("models") or {}).items()))
        ob = s.get("outbox") or {}
        last = s.get("last_event_ts")
        last_txt = "-" if not isinstance(last, (int, float)) else f"{now - last:.0f}s ago"
        lines.append(f"{v.gateway:<16} {v.verdict:<9} {s.get('version') or '-'!s:<9} "
                     f"{models or '-':<28} {ob.get('pending', '-')!s:>5} "
                     f"{ob.get('lost', '-')!s:>5} {ob.get('dropped', '-')!s:>5} "
                     f"{last_txt:>10}  {v.why}")
    return lines


#: IPv4 (20) + TCP with the timestamp option (32) bytes on every segment.
TCP_IP_OVERHEAD = 52


def publish_bytes(topic: str, payload_len: int) -> int:
    """Bytes of one QoS 1 PUBLISH (MQTT 3.1.1) plus its PUBACK, without TCP/IP.

    >>> publish_bytes("frugalai/fleet/gw-01/status", 600)
    638
    """
    remaining = 2 + len(topic.encode()) + 2 + payload_len
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3
    return 1 + length_bytes + remaining + 4


def daily_bytes(topic: str, payload_len: int, interval_s: float, keepalive_s: float,
                tcp_ip: int = TCP_IP_OVERHEAD) -> dict[str, float]:
    """A day of one gateway's fleet-status traffic on its own connection: the status every
    ``interval_s`` (QoS 1: PUBLISH + PUBACK) and a PINGREQ/PINGRESP pair every keepalive
    when nothing else is sent, each MQTT packet in its own TCP segment (``tcp_ip`` bytes).
    TLS adds ~22-29 bytes per record; not counted here.

    >>> round(daily_bytes("frugalai/fleet/gw-01/status", 600, 60, 60)["total"])
    1068480
    """
    day = 86400.0
    statuses = day / interval_s
    pings = 0.0 if keepalive_s >= interval_s else day / keepalive_s - statuses
    mqtt = statuses * publish_bytes(topic, payload_len) + max(0.0, pings) * 4
    tcp = (statuses * 2 + max(0.0, pings) * 2) * tcp_ip
    return {"statuses": statuses, "mqtt": mqtt, "tcp_ip": tcp, "total": mqtt + tcp}
