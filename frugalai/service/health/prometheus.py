"""The status as a node_exporter textfile-collector file (Prometheus text format 0.0.4).

node_exporter's ``--collector.textfile.directory`` reads every ``*.prom`` file there at each
scrape; the convention is to write a temporary file and rename it over the old one, so a scrape
never sees half a file. No HTTP server runs on the gateway: nothing to expose, nothing to secure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: (metric, type, help, key in a flow's status)
FLOW_METRICS = (
    ("frugalai_flow_readings_total", "counter", "Readings decoded.", "readings"),
    ("frugalai_flow_decode_errors_total", "counter", "Frames rejected (checksum, framing).",
     "decode_errors"),
    ("frugalai_flow_implausible_values_total", "counter",
     "Values refused by a plausibility gate (never turned into readings).", "implausible"),
    ("frugalai_flow_events_total", "counter", "Events produced by the flow.", "events"),
    ("frugalai_flow_model_errors_total", "counter", "Readings whose processing raised.",
     "model_errors"),
    ("frugalai_flow_restarts_total", "counter", "Source restarts by the supervisor.", "restarts"),
    ("frugalai_flow_outages_total", "counter", "Device outages (unplug, port lost).", "outages"),
    ("frugalai_flow_parity_errors_total", "counter",
     "Bytes with a wrong parity bit (7E1 read at 8N1, checked in software).", "parity_errors"),
    ("frugalai_flow_readings_per_second", "gauge", "Reading rate over the last interval.",
     "readings_per_s"),
    ("frugalai_flow_last_reading_timestamp_seconds", "gauge", "UNIX time of the last reading.",
     "last_reading_ts"),
    ("frugalai_flow_last_received_timestamp_seconds", "gauge",
     "UNIX time (the gateway's clock) the last reading arrived.", "last_received"),
)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: Any) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _family(name: str, kind: str, text: str, samples: Iterable[tuple[str, float]]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{labels} {float(value):.17g}" for labels, value in samples]
    return lines


def render(status: dict[str, Any]) -> str:
    """Prometheus text for a status snapshot (as written to status.json)."""
    flows = status.get("flows", {})
    out = _family("frugalai_up", "gauge", "1 while the service runs and its flows are healthy.",
                  [("", 1.0 if status.get("healthy") else 0.0)])
    out += _family("frugalai_build_info", "gauge", "Version of the running frugalai.",
                   [(_labels(version=status.get("version", "")), 1.0)])
    out += _family("frugalai_start_time_seconds", "gauge", "UNIX time the service started.",
                   [("", status.get("started") or 0.0)])
    out += _family("frugalai_flow_up", "gauge", "1 when the flow runs and its device is there "
                   "(0 while degraded: device down, model failing).",
                   [(_labels(flow=n), 1.0 if f.get("state") == "running" and f.get("device_up")
                     else 0.0) for n, f in sorted(flows.items())])
    for name, kind, text, key in FLOW_METRICS:
        out += _family(name, kind, text, [(_labels(flow=n), f.get(key) or 0.0)
                                          for n, f in sorted(flows.items())])
    checked = [(n, f["health"]) for n, f in sorted(flows.items()) if f.get("health")]
    out += _family("frugalai_sensor_healthy", "gauge",
                   "1 when no sensor health check of the flow fails (docs/sensors.md).",
                   [(_labels(flow=n), 1.0 if h.get("healthy") else 0.0) for n, h in checked])
    out += _family("frugalai_sensor_fault", "gauge",
                   "1 for each sensor health check failing now, by flow and check.",
                   [(_labels(flow=n, check=c), 1.0) for n, h in checked
                    for c in h.get("faults") or ()])
    out += _family("frugalai_sensor_decisions_held_total", "counter",
                   "Model decisions held because the sensor was unhealthy.",
                   [(_labels(flow=n), h.get("held_decisions") or 0) for n, h in checked])
    out += _family("frugalai_model_info", "gauge", "Model and version each flow runs.",
                   [(_labels(flow=n, model=f.get("model", ""), version=f.get("model_version", "")),
                     1.0) for n, f in sorted(flows.items())])
    ob = status.get("outbox", {})
    out += _family("frugalai_outbox_depth", "gauge", "Events waiting for delivery.",
                   [("", ob.get("depth") or 0)])
    out += _family("frugalai_outbox_oldest_age_seconds", "gauge",
                   "Age of the oldest undelivered event (0 when none waits).",
                   [("", ob.get("oldest_age_s") or 0.0)])
    out += _family("frugalai_outbox_delivered_total", "counter", "Events delivered upstream.",
                   [("", ob.get("sent") or 0)])
    out += _family("frugalai_outbox_dropped_total", "counter",
                   "Undelivered events dropped by the outbox cap (lowest priority first).",
                   [("", ob.get("dropped") or 0)])
    out += _family("frugalai_outbox_held_in_memory", "gauge",
                   "Events held in memory because the outbox takes no writes (disk full).",
                   [("", ob.get("held_in_memory") or 0)])
    out += _family("frugalai_events_lost_total", "counter",
                   "Events lost because the outbox took no writes and the memory cap was "
                   "reached.", [("", ob.get("lost") or 0)])
    ups = status.get("uplinks", [])
    out += _family("frugalai_uplink_up", "gauge", "1 when the uplink's last delivery worked.",
                   [(_labels(uplink=u.get("url", "")), 1.0 if u.get("state") == "ok" else 0.0)
                    for u in ups])
    out += _family("frugalai_uplink_sent_total", "counter", "Events the uplink accepted.",
                   [(_labels(uplink=u.get("url", "")), u.get("sent") or 0) for u in ups])
    return "\n".join(out) + "\n"
