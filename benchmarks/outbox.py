"""Outbox throughput (append, deliver through a real Mosquitto) and bytes upstream per event.

    python benchmarks/outbox.py [--quick] [--out DIR | --publish]

Writes ``outbox.json`` and ``outbox.md`` to build/benchmarks/ (benchmarks/results/ with
``--publish``). Appends are measured for each fsync policy
(``normal``, ``append`` = the default, ``full``), one event per transaction (how alarms
arrive) and in batches of 100. Delivery runs the real path: ``Pipeline.flush`` -> ``MqttSink``
(QoS 1, PUBACK awaited) -> Mosquitto on a loopback port -> ``mark_sent``. The database lives on
the disk under ``benchmarks/`` (not /tmp, which may be RAM), and the filesystem is reported:
fsync cost is a property of the storage. No pass/fail: figures to read and compare.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402

from frugalai.events.codec import encode_binary, encode_json  # noqa: E402
from frugalai.events.event import Event, Stats  # noqa: E402
from frugalai.uplink.outbox import Outbox  # noqa: E402


def filesystem_of(path: Path) -> str:
    best, fstype = "", "?"
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mount, kind = line.split()[:3]
            if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                best, fstype = mount, kind
    except OSError:
        pass
    return fstype


def sample_events(n: int, sensor: str = "linky") -> list[Event]:
    return [Event("alarm" if i % 2 == 0 else "clear", sensor, 1.7e9 + 900 * i, score=6.3,
                  value=2310.0 + i, sensor_id=1) for i in range(n)]


def bench_append(work: Path, sync: str, n: int, batch: int) -> dict[str, Any]:
    db = work / f"append-{sync}-{batch}.sqlite"
    events = sample_events(n)
    with Outbox(db, sync=sync) as box:
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            box.append_many(events[i:i + batch])
        dt = time.perf_counter() - t0
    size = db.stat().st_size + sum(p.stat().st_size for p in work.glob(db.name + "-*"))
    return {"sync": sync, "batch": batch, "events": n, "seconds": round(dt, 4),
            "events_per_s": round(n / dt), "ms_per_transaction": round(1000 * dt / (n / batch), 3),
            "db_bytes_per_event": round(size / n)}


def bench_deliver(work: Path, n: int, codec: str, sync: str) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "tests"))
    from mqtt_broker import MOSQUITTO, Mosquitto

    from frugalai.pipeline import Pipeline
    from frugalai.uplink.mqtt import MqttSink

    if MOSQUITTO is None:
        return {"codec": codec, "sync": sync,
                "skipped": "mosquitto not installed (scripts/install-sysdeps)"}
    broker = Mosquitto(work / f"broker-{codec}-{sync}").start()
    try:
        box = Outbox(work / f"deliver-{codec}-{sync}.sqlite", sync=sync)
        box.append_many(sample_events(n))
        sink = MqttSink.from_url(f"{broker.url}?codec={codec}", gateway="mairie-annexe")
        if not sink.wait_connected(10):
            return {"codec": codec, "sync": sync, "skipped": f"no connection: {sink.last_error}"}
        pipeline = Pipeline([], box, [sink])
        t0 = time.perf_counter()
        delivered = 0
        while box.depth():
            delivered += pipeline.flush(limit=100)
        dt = time.perf_counter() - t0
        pipeline.close()
    finally:
        broker.stop()
    return {"codec": codec, "sync": sync, "events": delivered, "batch": 100, "seconds": round(dt, 4),
            "events_per_s": round(delivered / dt), "payload_bytes": sink.bytes_sent}


def mqtt_publish_bytes(topic: str, payload: int) -> int:
    """Size of an MQTT 3.1.1 QoS 1 PUBLISH: fixed header + topic + packet id + payload."""
    remaining = 2 + len(topic.encode()) + 2 + payload
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3
    return 1 + length_bytes + remaining


def bytes_per_event() -> list[dict[str, Any]]:
    topic = "frugalai/mairie-annexe/linky/event"
    stats = Stats(period_s=3600, readings=3600, windows=4, events=1, errors=2, dropped=0,
                  min=412.0, mean=1180.5, max=2310.0, max_score=6.3)
    cases = {
        "alarm": Event("alarm", "linky", 1.7e9, score=6.3, value=2310.0, sensor_id=1, seq=41),
        "class": Event("class", "linky", 1.7e9, label=3, value=2310.0, sensor_id=1, seq=42),
        "summary": Event("summary", "linky", 1.7e9, value=1180.5, score=6.3, sensor_id=1,
                         seq=43, stats=stats),
    }
    rows = []
    for name, event in cases.items():
        binary = len(encode_binary(event))
        js = len(encode_json(event))
        rows.append({"event": name, "binary_bytes": binary, "json_bytes": js,
                     "json_over_binary": round(js / binary, 1),
                     "mqtt_publish_binary": mqtt_publish_bytes(topic, binary),
                     "mqtt_publish_json": mqtt_publish_bytes(topic, js),
                     "fits_us915_dr0_11B": binary <= 11, "fits_eu868_dr0_51B": binary <= 51})
    rows.append({"event": "summary (short form, max_size=11)",
                 "binary_bytes": len(encode_binary(cases["summary"], max_size=11)),
                 "json_bytes": None, "json_over_binary": None,
                 "mqtt_publish_binary": mqtt_publish_bytes(topic, 11), "mqtt_publish_json": None,
                 "fits_us915_dr0_11B": True, "fits_eu868_dr0_51B": True})
    return rows


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = ["# Outbox throughput and bytes upstream", "",
             f"SQLite {env['sqlite']}, database on {env['filesystem']}.", "",
             "## Append (SQLite WAL)", "",
             "| sync policy | events / transaction | events/s | ms / transaction | "
             "DB bytes / event |", "|---|---:|---:|---:|---:|"]
    for r in result["append"]:
        lines.append(f"| {r['sync']} | {r['batch']} | {r['events_per_s']} | "
                     f"{r['ms_per_transaction']} | {r['db_bytes_per_event']} |")
    lines += ["", "`append` (the default) fsyncs appends and not delivery marks; `full` fsyncs "
              "both; `normal` fsyncs neither (checkpoints only).", "",
              "## Deliver (Pipeline.flush -> MqttSink QoS 1 -> Mosquitto, PUBACK awaited, "
              "mark_sent)", "", "| codec | sync policy | events | events/s | payload bytes |",
              "|---|---|---:|---:|---:|"]
    for r in result["deliver"]:
        if "skipped" in r:
            lines.append(f"| {r['codec']} | {r['sync']} | skipped: {r['skipped']} | | |")
        else:
            lines.append(f"| {r['codec']} | {r['sync']} | {r['events']} | {r['events_per_s']} | "
                         f"{r['payload_bytes']} |")
    lines += ["", "## Bytes upstream per event", "",
              "| event | binary | JSON | JSON / binary | MQTT PUBLISH (binary) | "
              "MQTT PUBLISH (JSON) | fits US915 DR0 (11 B) | fits EU868 DR0 (51 B) |",
              "|---|---:|---:|---:|---:|---:|:-:|:-:|"]
    for r in result["bytes"]:
        def cell(v: Any) -> str:
            return "-" if v is None else ("yes" if v is True else "no" if v is False else str(v))
        lines.append("| " + " | ".join(cell(r[k]) for k in (
            "event", "binary_bytes", "json_bytes", "json_over_binary", "mqtt_publish_binary",
            "mqtt_publish_json", "fits_us915_dr0_11B", "fits_eu868_dr0_51B")) + " |")
    lines += ["", "MQTT sizes: QoS 1 PUBLISH on topic `frugalai/mairie-annexe/linky/event` "
              "(TCP/TLS overhead not included)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events")
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    out = prov.output_dir(parser, args)
    meta = prov.provenance(quick=args.quick)
    import sqlite3

    n_single = 200 if args.quick else 1000
    n_batch = 2000 if args.quick else 20000
    n_deliver = 1000 if args.quick else 5000
    work = Path(tempfile.mkdtemp(prefix=".outbox-bench-", dir=ROOT / "benchmarks"))
    try:
        append = []
        for sync in ("normal", "append", "full"):
            append.append(bench_append(work, sync, n_single, 1))
            append.append(bench_append(work, sync, n_batch, 100))
        deliver = [bench_deliver(work, n_deliver, codec, sync)
                   for codec, sync in (("json", "append"), ("binary", "append"), ("json", "full"))]
        fs = filesystem_of(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "meta": meta,
        "environment": {"sqlite": sqlite3.sqlite_version, "filesystem": fs},
        "append": append, "deliver": deliver, "bytes": bytes_per_event(),
    }
    print(prov.write_results(out, "outbox", result, markdown))


if __name__ == "__main__":
    main()
