"""Fuzzed typed events through the real collector (issue 24): 10^5 by default (``make fuzz``).

Each example is a JSON event as a gateway would send it (alarm, class, summary with stats,
heartbeat) in which one or more fields get a value of another JSON type or an extreme one
(integers past 2**63 and of thousands of digits, +-1e308, ``NaN``/``Infinity`` literals,
``1e999``, empty and 10,000-character strings, control characters, lone surrogates, arrays,
objects, deep nesting), or a key is dropped, added or written twice, or the bytes are cut or
flipped; one example in five is left valid, and some valid ones are sent twice (duplicates). A
few go to hostile topics (a reserved gateway id, another sensor's topic).

Two paths, both the collector's own code (:class:`frugalai.fleet.collector.Intake` over an
SQLite :class:`~frugalai.fleet.collector.EventStore`):

* **direct**: every example through ``Intake.handle`` (the check the MQTT thread runs, then
  the store the writer runs, for one message);
* **broker**: a real Mosquitto and a real :class:`~frugalai.fleet.collector.Collector`
  (persistent session, QoS 1); a publisher sends the examples, paced so that the broker's
  queue never overflows.

Contract checked: no exception leaves the collector (0 foreign exceptions), every example is
stored, a duplicate or quarantined, the counts reconcile (received = stored + duplicates +
quarantined, and received = sent), every example left valid is stored (or a duplicate), and
every row in ``events`` is in range when read back from SQLite (finite times in range, 64-bit
sequence numbers, finite values). The slowest example is recorded (a stall would show).

The SQLite file goes to ``--db-dir`` (default: a temporary directory on /dev/shm when there
is one): the collector fsyncs every message, and the fuzz measures the checks, not the disk.

Writes fuzz_events.json and fuzz_events.md (date, commit, machine) to build/benchmarks/
(benchmarks/results/ with ``--publish``).

    nice -n 10 .venv/bin/python benchmarks/fuzz_events.py [--examples 100000]
        [--broker-examples 100000] [--quick] [--publish]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import provenance as prov

ROOT = Path(__file__).resolve().parents[1]

# --- the generator ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A JSON token written as is (``NaN``, ``1e999``, an integer of 5,000 digits)."""

    text: str


DEEP = Raw("[" * 3000 + "]" * 3000)
HOSTILE: dict[str, list[Any]] = {
    "int": [0, -1, 1, 255, 256, 2**16, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70,
            -2**63, -2**70, Raw("9" * 400), Raw("9" * 5000), Raw("-" + "9" * 400)],
    "float": [0.5, -0.0, 1e-320, 1e308, -1e308, 1.7976931348623157e308, Raw("NaN"),
              Raw("Infinity"), Raw("-Infinity"), Raw("1e999"), Raw("-1e999"), 1.7e9,
              Raw("1" + "0" * 400 + ".0")],
    "string": ["", "linky", "a" * 10_000, "\x00", "gw\nx", "+", "#", "/", "</script><b>x",
               "\u202e", "é" * 70, Raw('"\\ud800"'), "NaN", "1e999", "alarm"],
    "bool": [True, False],
    "null": [None],
    "array": [[], [1], [None], [[[]]], DEEP],
    "object": [{}, {"a": 1}, {"readings": 2**70}, {"min": Raw("NaN")},
               Raw("{" + '"a":' * 1 + "{" * 2000 + "}" * 2001)],
}
ALL = [v for values in HOSTILE.values() for v in values]
FIELDS = ("v", "kind", "sensor", "ts", "seq", "score", "value", "label", "sensor_id",
          "model_id", "id", "stats")
STATS_FIELDS = ("period_s", "readings", "windows", "events", "errors", "dropped", "min",
                "mean", "max", "max_score", "implausible", "lost")


def dump(value: Any) -> str:
    """JSON text of a value that may hold :class:`Raw` tokens."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value, allow_nan=True)


def dump_pairs(pairs: list[tuple[str, Any]]) -> bytes:
    """An object from key/value pairs (a key may come twice)."""
    return ("{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in pairs) + "}").encode(
        "utf-8", "surrogatepass")


@dataclass(frozen=True)
class Example:
    topic: str
    payload: bytes
    valid: bool  # left valid by the generator: must be stored (or be a duplicate)
    how: str


class Generator:
    """Seeded examples; ``seq`` grows per (gateway, sensor) so valid events are all new."""

    def __init__(self, seed: int = 24, gateways: int = 8) -> None:
        self.rng = random.Random(seed)
        self.gateways = [f"gw{i:02d}" for i in range(gateways)]
        self.seq: Counter[tuple[str, str]] = Counter()
        self.sent_valid: list[Example] = []

    def base(self, gateway: str, sensor: str) -> dict[str, Any]:
        rng = self.rng
        seq = self.seq[(gateway, sensor)]
        self.seq[(gateway, sensor)] += 1
        kind = rng.choice(("alarm", "clear", "class", "summary", "heartbeat"))
        ev: dict[str, Any] = {"v": 1, "kind": kind, "sensor": sensor,
                              "ts": round(1_700_000_000 + rng.uniform(0, 1e7), 3),
                              "score": round(rng.uniform(0, 10), 2),
                              "value": rng.choice((None, round(rng.uniform(-1e4, 1e4), 3))),
                              "label": rng.randrange(0, 8) if kind == "class" else 0,
                              "sensor_id": rng.randrange(0, 256), "model_id": rng.randrange(8),
                              "seq": seq, "id": f"{sensor}:{seq}"}
        if kind == "summary":
            ev["stats"] = {"period_s": 900, "readings": rng.randrange(10**6),
                           "windows": rng.randrange(100), "events": rng.randrange(10),
                           "errors": 0, "dropped": 0, "min": 1.0, "mean": 2.5, "max": 4.0,
                           "max_score": rng.choice((None, 3.5)), "implausible": 0, "lost": 0}
        return ev

    def one(self) -> Example:
        rng = self.rng
        gateway = rng.choice(self.gateways)
        sensor = rng.choice(("linky", "meter", "tide"))
        topic = f"frugalai/{gateway}/{sensor}/event"
        roll = rng.random()
        if roll < 0.03 and self.sent_valid:  # a valid event again: at-least-once delivery
            again = rng.choice(self.sent_valid)
            return Example(again.topic, again.payload, True, "duplicate")
        ev = self.base(gateway, sensor)
        if roll < 0.2:
            ex = Example(topic, dump_pairs(list(ev.items())), True, "valid")
            self.sent_valid.append(ex)
            if len(self.sent_valid) > 1000:
                self.sent_valid.pop(0)
            return ex
        pairs = list(ev.items())
        if roll < 0.25:  # a hostile topic for a valid payload
            topic = rng.choice((f"frugalai/{rng.choice(('fleet', 'rollout', 'status'))}/"
                                f"{sensor}/event", f"frugalai/{gateway}/other/event",
                                f"frugalai/Rollout/{sensor}/event"))
            return Example(topic, dump_pairs(pairs), False, "topic")
        if roll < 0.30:  # a key dropped, added or twice
            choice = rng.randrange(3)
            if choice == 0:
                pairs.pop(rng.randrange(len(pairs)))
                how = "key dropped"
            elif choice == 1:
                pairs.append((rng.choice(("gateway", "extra", "__proto__", "")),
                              rng.choice(ALL)))
                how = "key added"
            else:
                k, _ = rng.choice(pairs)
                pairs.append((k, rng.choice(ALL)))
                how = "key twice"
            return Example(topic, dump_pairs(pairs), False, how)
        if roll < 0.36:  # the bytes damaged
            raw = bytearray(dump_pairs(pairs))
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(3)
                if op == 0 and raw:
                    raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
                elif op == 1:
                    del raw[rng.randrange(len(raw) + 1):]
                else:
                    raw[rng.randrange(len(raw) + 1):0] = rng.randbytes(rng.randrange(1, 8))
            return Example(topic, bytes(raw), False, "bytes")
        if roll < 0.40:  # the binary form: well-formed heads, random fields (inf/NaN floats)
            size = rng.choice((11, 37))
            kind = 4 if size == 37 else rng.randrange(8)
            raw = bytearray(rng.randbytes(size))
            raw[0] = (rng.choice((1, 1, 1, 0, 2)) << 6) | (kind << 3) | rng.randrange(8)
            return Example(topic, bytes(raw), False, "binary")
        # one or more fields get a value of any type (stats fields too)
        n = 1 if rng.random() < 0.7 else rng.randrange(2, 5)
        data = dict(pairs)
        for _ in range(n):
            if rng.random() < 0.2:
                stats = data.get("stats")
                stats = dict(stats) if isinstance(stats, dict) else {}
                stats[rng.choice(STATS_FIELDS)] = rng.choice(ALL)
                data["stats"] = stats
            else:
                kind = rng.choice(list(HOSTILE))
                data[rng.choice(FIELDS)] = rng.choice(HOSTILE[kind])
        return Example(topic, dump_pairs(list(data.items())), False, "values")


# --- the checks -------------------------------------------------------------------------------


def rows_in_range(db: Path) -> tuple[int, list[str]]:
    """(rows, problems): every stored row read back and checked on its own terms."""
    from frugalai.events.schema import INT_MAX, TS_MAX

    problems = []
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT gateway, sensor, kind, ts, value, score, label, seq, stats "
                           "FROM events").fetchall()
    finally:
        con.close()
    for gateway, sensor, _kind, ts, value, score, label, seq, stats in rows:
        where = f"{gateway}/{sensor}:{seq}"
        if not (isinstance(ts, float) and math.isfinite(ts) and 0 <= ts <= TS_MAX):
            problems.append(f"{where}: ts {ts!r}")
        if not (isinstance(seq, int) and 0 <= seq <= INT_MAX):
            problems.append(f"{where}: seq {seq!r}")
        for name, x in (("value", value), ("score", score)):
            if x is not None and not (isinstance(x, float) and math.isfinite(x)):
                problems.append(f"{where}: {name} {x!r}")
        if not (isinstance(label, int) and 0 <= label <= 0xFFFF):
            problems.append(f"{where}: label {label!r}")
        if stats is not None:
            try:
                parsed = json.loads(stats, parse_constant=lambda c: 1 / 0)
                # numbers finite; "saturated" (binary summaries) a list of counter names
                ok = isinstance(parsed, dict) and all(
                    (isinstance(v, list) and all(isinstance(s, str) for s in v))
                    if k == "saturated" else
                    v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)
                                  and math.isfinite(v)) for k, v in parsed.items())
            except (ValueError, ZeroDivisionError):
                ok = False
            if not ok:
                problems.append(f"{where}: stats {stats[:80]!r}")
        if len(problems) > 20:
            break
    return len(rows), problems


def reason_key(reason: str) -> str:
    """A quarantine reason without its values: 'seq: must be an integer from -1 to ...'."""
    return reason.removeprefix("JSON event: ").split(", got")[0][:50]


def outcome_check(examples: list[Example], outcomes: list[str]) -> list[str]:
    """Every example left valid was stored or a duplicate (never quarantined)."""
    bad = [f"{e.how} on {e.topic}: {o} ({e.payload[:80]!r})" for e, o in zip(examples, outcomes)
           if e.valid and o not in ("stored", "duplicates")]
    return bad[:20]


def run_direct(n: int, db_dir: Path, seed: int) -> dict[str, Any]:
    """n examples through Intake.handle (no broker): the collector's check-and-store."""
    from frugalai.fleet.collector import EventStore, Intake

    db = db_dir / "direct.sqlite"
    store = EventStore(db)
    intake = Intake(store)
    gen = Generator(seed)
    examples, outcomes = [], []
    foreign: list[str] = []
    slowest = (0.0, "")
    hows: Counter[str] = Counter()
    t0 = time.perf_counter()
    for _ in range(n):
        ex = gen.one()
        hows[ex.how] += 1
        t = time.perf_counter()
        try:
            outcomes.append(intake.handle(ex.topic, ex.payload))
        except Exception as err:  # the contract says none: count, keep the first
            outcomes.append("exception")
            if len(foreign) < 10:
                foreign.append(f"{type(err).__name__}: {err} ({ex.payload[:80]!r})")
        dt = time.perf_counter() - t
        if dt > slowest[0]:
            slowest = (dt, ex.how)
        examples.append(ex)
    seconds = time.perf_counter() - t0
    rows, problems = rows_in_range(db)
    reasons = Counter(reason_key(r) for _, r, _, _ in store.quarantined())
    out = _result(intake.counts, store.counters(), outcomes, examples, foreign, rows, problems,
                  seconds, slowest, hows, n)
    out["top_reasons"] = dict(reasons.most_common(8))
    store.close()
    return out


def _result(counts: dict[str, int], db: dict[str, int], outcomes: list[str],
            examples: list[Example], foreign: list[str], rows: int, problems: list[str],
            seconds: float, slowest: tuple[float, str], hows: Counter[str], n: int
            ) -> dict[str, Any]:
    reconciled = (counts["received"] == n == counts["stored"] + counts["duplicates"]
                  + counts["quarantined"] and db == counts and rows == counts["stored"])
    return {"examples": n, "by_generator": dict(sorted(hows.items())), "counts": counts,
            "database_counters": db, "rows": rows, "reconciled": reconciled,
            "foreign_exceptions": len(foreign), "first_exceptions": foreign,
            "valid_not_stored": outcome_check(examples, outcomes),
            "rows_out_of_range": problems, "seconds": round(seconds, 1),
            "examples_per_s": round(n / seconds) if seconds else None,
            "slowest_ms": round(slowest[0] * 1000, 2), "slowest_kind": slowest[1]}


def run_broker(n: int, db_dir: Path, seed: int, work: Path, window: int = 500,
               timeout: float = 600.0) -> dict[str, Any]:
    """n examples published to a real Mosquitto, collected by the real Collector."""
    sys.path.insert(0, str(ROOT / "tests"))
    from mqtt_broker import Mosquitto

    from frugalai.fleet.collector import Collector, EventStore
    from frugalai.fleet.link import Link, parse_broker

    db = db_dir / "broker.sqlite"
    store = EventStore(db)
    gen = Generator(seed)
    examples: list[Example] = []
    hows: Counter[str] = Counter()
    outcomes_by_i: list[str] = []
    stalls = 0
    with Mosquitto(work / "broker", extra=("max_queued_messages 0", "max_inflight_messages 0",
                                           "message_size_limit 0")) as broker:
        col = Collector(parse_broker(broker.url), store, client_id="fuzz-collector")
        handled: list[str] = outcomes_by_i
        col.intake.observers.append(handled.append)  # each message's outcome, in order
        try:
            col.link.wait_connected(30)
            pub = Link(parse_broker(broker.url), "fuzz-gateways")
            pub.wait_connected(30)
            t0 = time.perf_counter()
            last_progress, seen = time.monotonic(), 0
            for i in range(n):
                ex = gen.one()
                hows[ex.how] += 1
                examples.append(ex)
                pub.client.publish(ex.topic, ex.payload, qos=1)
                # pace: at most `window` messages on their way (the broker's queue stays small)
                while i + 1 - len(handled) > window and not col.error:
                    if len(handled) > seen:
                        last_progress, seen = time.monotonic(), len(handled)
                    elif time.monotonic() - last_progress > 60:
                        break
                    time.sleep(0.002)
                if col.error or time.monotonic() - last_progress > 60:
                    break
            deadline = time.monotonic() + timeout
            while len(handled) < len(examples) and time.monotonic() < deadline \
                    and not col.error:
                time.sleep(0.01)
            seconds = time.perf_counter() - t0
            pub.close()
        finally:
            col.stop()
    if len(handled) < len(examples):
        stalls += 1
    # MQTT keeps the order of one publisher's QoS 1 messages: outcome i is example i
    rows, problems = rows_in_range(db)
    out = _result(col.intake.counts, store.counters(), handled, examples,
                  [col.error] if col.error else [], rows, problems, seconds, (0.0, ""), hows,
                  len(examples))
    out.pop("slowest_ms"), out.pop("slowest_kind")
    out["stalls"] = stalls
    out["sent"] = len(examples)
    store.close()
    return out


def render(doc: dict[str, Any]) -> str:
    lines = ["# Fuzzed typed events through the collector (issue 24)", "",
             "Generated JSON events with every field given every JSON type and extreme values "
             "(see benchmarks/fuzz_events.py), through the collector's own check-and-store "
             "(`Intake.handle` over SQLite) directly, and through a real Mosquitto to a real "
             f"`Collector`. SQLite files on {doc['db_dir']}.", "",
             "| path | examples | stored | duplicates | quarantined | reconciled | foreign "
             "exceptions | valid not stored | rows out of range | stalls | examples/s |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"]
    for name in ("direct", "broker"):
        r = doc.get(name)
        if not r:
            continue
        c = r["counts"]
        lines.append(f"| {name} | {r['examples']:,} | {c['stored']:,} | {c['duplicates']:,} | "
                     f"{c['quarantined']:,} | {r['reconciled']} | {r['foreign_exceptions']} | "
                     f"{len(r['valid_not_stored'])} | {len(r['rows_out_of_range'])} | "
                     f"{r.get('stalls', 0)} | {r['examples_per_s']:,} |")
    d = doc.get("direct")
    if d:
        lines += ["", f"Slowest example (direct): {d['slowest_ms']} ms ({d['slowest_kind']}).",
                  "", "Examples by generator (direct): "
                  + ", ".join(f"{k} {v:,}" for k, v in d["by_generator"].items()) + ".", "",
                  "Most frequent quarantine reasons (direct): "
                  + "; ".join(f"`{k}` {v:,}" for k, v in d["top_reasons"].items()) + "."]
    lines += ["", f"**Verdict: {'PASS' if doc['ok'] else 'FAIL'}** (0 foreign exceptions, 0 "
              "stalls, every example stored, a duplicate or quarantined, counts reconciled, "
              "every valid example stored, every stored row in range)."]
    return "\n".join(lines) + "\n"


def ok(r: Optional[dict[str, Any]]) -> bool:
    return r is None or (r["reconciled"] and r["foreign_exceptions"] == 0
                         and not r["valid_not_stored"] and not r["rows_out_of_range"]
                         and r.get("stalls", 0) == 0)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100_000,
                        help="examples through Intake.handle directly (0: skip)")
    parser.add_argument("--broker-examples", type=int, default=100_000,
                        help="examples through a real Mosquitto and Collector (0: skip)")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 direct and 1,000 through the broker (a smoke run)")
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--db-dir", type=Path, default=None,
                        help="where the SQLite files go (default: a temporary directory on "
                             "/dev/shm if present, else the system's)")
    prov.add_output_arguments(parser)
    args = parser.parse_args(argv)
    out = prov.output_dir(parser, args)
    if args.quick:
        args.examples, args.broker_examples = min(args.examples, 2000), \
            min(args.broker_examples, 1000)
    logging.getLogger("frugalai").setLevel(logging.ERROR)  # one warning per quarantined example
    meta = prov.provenance(examples=args.examples, broker_examples=args.broker_examples,
                           seed=args.seed)
    shm = Path("/dev/shm")
    base = args.db_dir or (shm if shm.is_dir() else None)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        work = Path(tmp)
        doc: dict[str, Any] = {"meta": meta, "db_dir": str(args.db_dir or
                                                          (shm if base else "a temp dir"))}
        if args.examples:
            print(f"direct: {args.examples:,} examples through Intake.handle ...", flush=True)
            doc["direct"] = run_direct(args.examples, work, args.seed)
            print(json.dumps(doc["direct"]["counts"]), flush=True)
        if args.broker_examples:
            print(f"broker: {args.broker_examples:,} examples through Mosquitto ...",
                  flush=True)
            doc["broker"] = run_broker(args.broker_examples, work, args.seed + 1, work)
            print(json.dumps(doc["broker"]["counts"]), flush=True)
    doc["ok"] = ok(doc.get("direct")) and ok(doc.get("broker"))
    print(prov.write_results(out, "fuzz_events", doc, render))
    return 0 if doc["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
