"""``status.json``: what ``frugalai status`` shows, written by the service, read by anyone.

The service rewrites ``<state_dir>/status.json`` every ``service.status_interval_s`` (atomic
replace, so a reader never sees half a file). The outbox part is read straight from the SQLite
database (read-only, WAL lets readers in while the service writes), so ``frugalai status`` tells
the truth about undelivered events even when the service is down.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.redact import redact

__all__ = ["OUTBOX_FILE", "STATUS_FILE", "format_status", "outbox_view", "problems", "read_status",
           "redact"]

from frugalai.uplink.outbox import OUTBOX_FILE

STATUS_FILE = "status.json"


def outbox_view(db: Union[str, Path], now: Optional[float] = None) -> dict[str, Any]:
    """Depth, oldest pending age and the last event of each sensor, read-only.

    Returns ``{"depth": 0, ...}`` with ``"error"`` set when the database cannot be read.
    """
    now = time.time() if now is None else now
    view: dict[str, Any] = {"depth": 0, "oldest_age_s": None, "stored": 0, "sent": 0,
                            "last_event": {}}
    if not Path(db).is_file():
        view["error"] = f"no outbox at {db}"
        return view
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0)
        try:
            total, sent, oldest = con.execute(
                "SELECT COUNT(*), COUNT(sent_at), MIN(CASE WHEN sent_at IS NULL THEN created END)"
                " FROM events").fetchone()
            rows = con.execute(
                "SELECT e.sensor, e.body, e.created, e.sent_at FROM events e JOIN "
                "(SELECT sensor, MAX(seq) AS seq FROM events GROUP BY sensor) m "
                "ON e.sensor = m.sensor AND e.seq = m.seq").fetchall()
            try:  # lifetime counters, when the outbox keeps them (delivered rows get pruned)
                counters = dict(con.execute("SELECT name, value FROM counters").fetchall())
            except sqlite3.OperationalError:
                counters = {}
        finally:
            con.close()
    except sqlite3.Error as err:
        view["error"] = f"cannot read {db}: {err}"
        return view
    view.update(depth=total - sent, stored=counters.get("appended", total),
                sent=counters.get("sent", sent), dropped=counters.get("dropped", 0),
                oldest_age_s=None if oldest is None else round(now - oldest, 1))
    for sensor, body, created, sent_at in rows:
        event = json.loads(body)
        view["last_event"][sensor] = {"id": event.get("id"), "kind": event.get("kind"),
                                      "ts": event.get("ts"), "stored": created,
                                      "delivered": sent_at is not None}
    return view


def read_status(state_dir: Union[str, Path], now: Optional[float] = None) -> dict[str, Any]:
    """The last status the service wrote, with a fresh outbox view and a liveness verdict."""
    now = time.time() if now is None else now
    state_dir = Path(state_dir)
    path = state_dir / STATUS_FILE
    try:
        status: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        status = {"state": "never started", "flows": {}, "uplinks": []}
    except (OSError, ValueError) as err:
        status = {"state": f"unreadable status file: {err}", "flows": {}, "uplinks": []}
    status["outbox"] = {**status.get("outbox", {}), **outbox_view(state_dir / OUTBOX_FILE, now)}
    pid = status.get("pid")
    alive = isinstance(pid, int) and _pid_alive(pid)
    if status.get("state") in ("running", "starting", "reloading", "stopping") and not alive:
        status["state"] = f"dead (was {status['state']}; pid {pid} gone)"
    updated = status.get("updated")
    interval = status.get("status_interval_s", 10.0)
    if alive and isinstance(updated, (int, float)) and now - updated > 3 * interval + 5:
        status["state"] = f"stale ({status.get('state')}; no update for {now - updated:.0f} s)"
    return status


def problems(status: dict[str, Any]) -> list[str]:
    """What is wrong in a :func:`read_status` report, one line each; empty when all is well.

    The service not running (dead, stale, never started), a flow degraded (device down, a
    port that fails to reopen, a model failing: the flow retries by itself, but a human may
    want to know), events lost. ``frugalai status`` exits 1 when this is not empty, as
    ``fleet status`` does for a degraded gateway.
    """
    found = []
    state = str(status.get("state", ""))
    if not state.startswith("running"):
        found.append(f"service {state}")
    for name, f in sorted((status.get("flows") or {}).items()):
        if f.get("state") == "degraded" or (f.get("state") == "running"
                                            and not f.get("device_up", True)):
            found.append(f"flow {name} degraded: {f.get('why') or f.get('last_error') or '?'}")
    if (status.get("outbox") or {}).get("lost"):
        found.append(f"{status['outbox']['lost']} event(s) lost")
    return found


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by the service user
        return True
    return True


def _age(now: float, ts: Any) -> str:
    if not isinstance(ts, (int, float)) or ts <= 0:
        return "never"
    return f"{now - ts:.0f} s ago"


#: a reading stamped further than this from when it arrived: say the device's clock is off.
CLOCK_SKEW_NOTE_S = 300.0


def _last_reading(now: float, flow: dict[str, Any]) -> str:
    """How long ago the gateway received the flow's last reading, on the gateway's own clock.

    A reading carries its device's time (a Linky's DATE, a replayed file's timestamps), which
    says nothing about liveness: a meter set to 2025 would read "28985194 s ago" while it
    talks every second. When the two clocks disagree by more than five minutes, say so.
    """
    received = flow.get("last_received")
    stamped = flow.get("last_reading_ts")
    if not isinstance(received, (int, float)) or received <= 0:
        # a status.json from before `last_received`: the stamp is all there is
        return _age(now, stamped) + (" (device time)" if isinstance(stamped, (int, float))
                                     and stamped > 0 else "")
    text = _age(now, received)
    if isinstance(stamped, (int, float)) and stamped > 0 and \
            abs(received - stamped) > CLOCK_SKEW_NOTE_S:
        text += f" (stamped {_skew(stamped - received)} by the device's clock)"
    return text


def _skew(delta: float) -> str:
    size = abs(delta)
    amount = (f"{size:.0f} s" if size < 3600 else f"{size / 3600:.1f} h" if size < 86400 * 2
              else f"{size / 86400:.0f} days")
    return f"{amount} {'ahead' if delta > 0 else 'behind'}"


def format_status(status: dict[str, Any], now: Optional[float] = None) -> str:
    """Human-readable text of :func:`read_status` for ``frugalai status``."""
    now = time.time() if now is None else now
    state = str(status.get("state"))
    head = f"service: {state}"
    if status.get("started") and state == "running":
        head += (f" (pid {status['pid']}, up {now - status['started']:.0f} s, "
                 f"config {status.get('config')})")
    elif status.get("updated"):
        head += f" (pid {status.get('pid')}, last update {_age(now, status['updated'])})"
    lines = [head]
    for name, f in sorted(status.get("flows", {}).items()):
        last = status["outbox"]["last_event"].get(name) or f.get("last_event")
        last_txt = (f"{last['kind']} {last['id']} {_age(now, last.get('stored'))}"
                    if last else "none")
        lines.append(
            f"flow {name}: {f.get('state')}, {f.get('readings_per_s', 0):.2f} readings/s, "
            f"decode errors {f.get('decode_errors', 0)}, implausible {f.get('implausible', 0)}, "
            f"model errors {f.get('model_errors', 0)}, "
            f"restarts {f.get('restarts', 0)}, device {'up' if f.get('device_up') else 'DOWN'}"
            f", last reading {_last_reading(now, f)}")
        if f.get("why"):
            lines.append(f"    {f.get('state')}: {f['why']}")
        elif not f.get("device_up") and f.get("last_error"):
            lines.append(f"    device down: {f['last_error']}")
        lines.append(f"    model {f.get('model')} ({f.get('model_version')}); "
                     f"last event {last_txt}")
        health = f.get("health")
        if health and not health.get("healthy"):  # docs/sensors.md: what each check means
            lines.append(f"    sensor: {', '.join(health.get('faults') or [])} since "
                         f"{_age(now, health.get('since'))}"
                         + (f"; {health['reason']}" if health.get("reason") else ""))
    ob = status["outbox"]
    oldest = "" if ob.get("oldest_age_s") is None else f", oldest {ob['oldest_age_s']:.0f} s"
    dropped = f", {ob['dropped']} dropped (overflow)" if ob.get("dropped") else ""
    if ob.get("held_in_memory"):
        dropped += f", {ob['held_in_memory']} HELD IN MEMORY (outbox takes no writes)"
    if ob.get("lost"):
        dropped += f", {ob['lost']} LOST"
    lines.append(f"outbox: {ob.get('depth', 0)} pending{oldest}; {ob.get('sent', 0)} delivered"
                 f" of {ob.get('stored', 0)}{dropped}"
                 + (f" ({ob['error']})" if ob.get("error") else ""))
    if status.get("bytes"):
        from frugalai.footprint import ratio_text, summary_bytes

        lines.append(ratio_text(*summary_bytes(status)))
    for u in status.get("uplinks", []):
        err = f" ({u['last_error']})" if u.get("last_error") and u.get("state") != "ok" else ""
        lines.append(f"uplink {u.get('url')}: {u.get('state')}{err}, {u.get('sent', 0)} sent, "
                     f"last ok {_age(now, u.get('last_ok_ts'))}")
    return "\n".join(lines)
