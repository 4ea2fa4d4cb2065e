"""Collected events as table rows, and the gaps in their sequence numbers. Pure.

An event arrives on ``frugalai/<gateway>/<sensor>/event`` as the JSON or the binary form of
:mod:`frugalai.events.codec` (the payload tells them apart: JSON starts with ``{``). Both become
one :class:`Record`. The dedup key is (gateway, sensor, seq, ts): the JSON form carries the full
per-sensor sequence, the binary form its low 16 bits, and a duplicate from at-least-once delivery
repeats the same bytes, hence the same key.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.errors import DecodeError
from frugalai.events import schema
from frugalai.events.codec import BINARY_SIZE, SUMMARY_SIZE, decode_binary, decode_json
from frugalai.fleet.topics import event_parts, identity_problem
from frugalai.protocols.chirpstack import parse_uplink, topic_parts

#: the columns of a collected event, in the order both stores export them.
COLUMNS = ("gateway", "sensor", "kind", "ts", "value", "score", "label", "seq", "event_id",
           "wire", "stats", "received")

#: the binary form carries the sequence modulo this.
BINARY_SEQ_MOD = 1 << 16


@dataclass(frozen=True)
class Record:
    """One collected event (one row of the ``events`` table)."""

    gateway: str
    sensor: str
    kind: str
    ts: float
    seq: int
    wire: str  # "json", "binary" (MQTT) or "lorawan" (binary through ChirpStack)
    value: Optional[float] = None
    score: Optional[float] = None
    label: int = 0
    stats: Optional[dict[str, Any]] = None

    @property
    def event_id(self) -> str:
        return f"{self.sensor}:{self.seq}"


def _num(x: Any) -> Optional[float]:
    if x is None:
        return None
    f = float(x)
    return None if math.isnan(f) else f


#: a fleet's gateway ids are few and come back with every message: judged once each (bounded:
#: a flood of made-up ids only evicts).
_gateway_problem = lru_cache(maxsize=4096)(identity_problem)


def decode_message(topic: str, payload: bytes) -> Record:
    """The record of one MQTT message; DecodeError (with the reason) if it is not an event."""
    parts = event_parts(topic)
    if parts is None:
        raise DecodeError(f"not an event topic (expected frugalai/<gateway>/<sensor>/event): "
                          f"{topic[:200]!r}")
    gateway, sensor = parts
    problem = _gateway_problem(gateway)
    if problem is not None:
        raise DecodeError(f"topic {topic[:200]!r}: gateway id {problem}")
    if payload[:1] == b"{":
        event = decode_json(payload)
        if event.seq < 0:
            raise DecodeError(f"JSON event without a sequence number on {topic}")
        if event.sensor != sensor:
            raise DecodeError(f"JSON event of sensor {event.sensor!r} on the topic of {sensor!r}")
        return Record(gateway, sensor, event.kind, float(event.ts), event.seq, "json",
                      _num(event.value), _num(event.score), event.label,
                      event.stats.as_dict() if event.stats else None)
    return _from_binary(gateway, sensor, decode_binary(payload), "binary")


def _from_binary(gateway: str, sensor: str, data: dict[str, Any], wire: str) -> Record:
    # the binary layout bounds the integers; its floats (half, f32) can still be inf: the
    # same schema as the JSON form decides
    schema.check({"v": schema.VERSION, "kind": data["kind"], "sensor": sensor,
                  "ts": data["ts"], "seq": data["seq"], "sensor_id": data["sensor_id"],
                  "model_id": data["model_id"], "value": data.get("value"),
                  "score": data.get("score"), "label": data.get("label", 0),
                  "stats": data.get("stats")})
    return Record(gateway, sensor, data["kind"], float(data["ts"]), int(data["seq"]), wire,
                  _num(data.get("value")), _num(data.get("score")), int(data.get("label", 0)),
                  data.get("stats"))


def decode_chirpstack(topic: str, payload: bytes) -> list[Record]:
    """The events of one ChirpStack v4 ``event/up`` message (frugalai nodes on LoRaWAN).

    The frame's bytes are what the JavaScript codec decodes on the network server: one 37-byte
    summary, or 11-byte events packed back to back. The device's DevEUI stands for the gateway
    and the wire's sensor id for the sensor (``sensor-<id>``): a LoRaWAN frame carries no
    names.
    """
    if topic_parts(topic) is None:
        raise DecodeError(f"not a ChirpStack uplink topic: {topic!r}")
    up = parse_uplink(payload, topic)
    data = up.data
    if len(data) == SUMMARY_SIZE:
        parts = [data]
    elif data and len(data) % BINARY_SIZE == 0:
        parts = [data[i:i + BINARY_SIZE] for i in range(0, len(data), BINARY_SIZE)]
    else:
        raise DecodeError(f"LoRaWAN uplink of {len(data)} bytes is neither one "
                          f"{SUMMARY_SIZE}-byte summary nor {BINARY_SIZE}-byte events")
    out = []
    for part in parts:
        decoded = decode_binary(part)
        out.append(_from_binary(up.dev_eui, f"sensor-{decoded['sensor_id']}", decoded,
                                "lorawan"))
    return out


def stats_json(record: Record) -> Optional[str]:
    return None if record.stats is None else json.dumps(record.stats, separators=(",", ":"))


@dataclass(frozen=True)
class Gaps:
    """What is missing in one (gateway, sensor) stream between the first and last seq seen."""

    gateway: str
    sensor: str
    first: int
    last: int
    received: int
    missing: int
    ranges: tuple[tuple[int, int], ...]  # inclusive, at most a few listed


def unwrap(seqs_by_time: Iterable[int], modulo: int = BINARY_SEQ_MOD) -> list[int]:
    """Binary sequence numbers (mod 2**16), in time order, made monotonic across wraps.

    >>> unwrap([65534, 65535, 0, 2])
    [65534, 65535, 65536, 65538]
    """
    out: list[int] = []
    base = 0
    prev: Optional[int] = None
    for s in seqs_by_time:
        if prev is not None and s < prev and prev - s > modulo // 2:
            base += modulo
        prev = s
        out.append(base + s)
    return out


def find_gaps(gateway: str, sensor: str, seqs: Iterable[int], max_ranges: int = 10) -> Gaps:
    """Missing sequence numbers between the lowest and the highest seen.

    The streams start at the first event the collector saw (it cannot know of older ones).

    >>> g = find_gaps("gw", "s", [0, 1, 2, 5, 6, 9])
    >>> g.missing, g.ranges
    (4, ((3, 4), (7, 8)))
    """
    ordered = sorted(set(seqs))
    if not ordered:
        return Gaps(gateway, sensor, 0, -1, 0, 0, ())
    ranges: list[tuple[int, int]] = []
    missing = 0
    for a, b in zip(ordered, ordered[1:]):
        if b > a + 1:
            missing += b - a - 1
            if len(ranges) < max_ranges:
                ranges.append((a + 1, b - 1))
    return Gaps(gateway, sensor, ordered[0], ordered[-1], len(ordered), missing, tuple(ranges))


def stream_gaps(rows: Iterable[tuple[Any, ...]]) -> list[Gaps]:
    """Per (gateway, sensor), the gaps of its sequence numbers, from (gateway, sensor, wire,
    seq) rows in time order (binary streams unwrapped). What both collector stores report."""
    streams: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for gateway, sensor, wire, seq in rows:
        js, bins = streams.setdefault((gateway, sensor), ([], []))
        (js if wire == "json" else bins).append(int(seq))
    return [find_gaps(g, s, js if js else unwrap(bins))
            for (g, s), (js, bins) in sorted(streams.items())]


def write_csv(path: Union[str, Path], rows: Iterable[Sequence[Any]]) -> int:
    """The events as CSV (:data:`COLUMNS`, empty cells for None); how many rows."""
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
            n += 1
    return n
