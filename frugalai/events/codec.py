"""Event codecs: a compact binary form for LoRaWAN-sized uplinks, and JSON for MQTT.

Binary format, version 1 (11 bytes, big-endian; fits US915 DR0's 11-byte payload)::

    byte  0      : vv kkk mmm   version (2 bits, = 1) | kind (3 bits) | model id (3 bits)
    byte  1      : sensor id (0-255)
    bytes 2-3    : sequence number, u16 (the outbox's seq modulo 65536), for dedup
    bytes 4-7    : time, u32 seconds since 2020-01-01T00:00:00Z (good until 2156)
    byte  8      : class index (kind=class) or score x 10 clamped to 0-255 (0.1 steps)
    bytes 9-10   : key value, IEEE-754 binary16 (half float: 3 significant digits, |x| < 65504)

>>> from frugalai.events.event import Event
>>> raw = encode_binary(Event("alarm", "linky", 1_700_000_000.0, score=6.25, value=2310.0,
...                           sensor_id=1, seq=7))
>>> len(raw), raw.hex()
(11, '48010007074810003e6883')
>>> decode_binary(raw)["value"]
2310.0
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from frugalai.errors import DecodeError
from frugalai.events.event import KINDS, Event

VERSION = 1
EPOCH_2020 = 1_577_836_800
_CODES = {code: name for name, code in KINDS.items()}
_STRUCT = struct.Struct(">BBHIBe")
BINARY_SIZE = _STRUCT.size


def _half(value: float) -> float:
    if math.isnan(value):
        return value
    return max(-65504.0, min(65504.0, value))


def encode_binary(event: Event) -> bytes:
    """Encode one event in the 11-byte format."""
    if not 0 <= event.sensor_id <= 255:
        raise ValueError(f"sensor_id must be 0-255, got {event.sensor_id}")
    if not 0 <= event.model_id <= 7:
        raise ValueError(f"model_id must be 0-7, got {event.model_id}")
    head = (VERSION << 6) | (KINDS[event.kind] << 3) | event.model_id
    t = int(max(0, min(0xFFFFFFFF, event.ts - EPOCH_2020)))
    if event.kind == "class":
        byte8 = max(0, min(255, event.label))
    else:
        byte8 = 0 if math.isnan(event.score) else int(max(0, min(255, round(event.score * 10))))
    return _STRUCT.pack(head, event.sensor_id, event.seq & 0xFFFF, t, byte8, _half(event.value))


def decode_binary(raw: bytes) -> dict[str, Any]:
    """Decode the 11-byte format into plain data (the fields it carries)."""
    if len(raw) != BINARY_SIZE:
        raise DecodeError(f"binary event: expected {BINARY_SIZE} bytes, got {len(raw)}")
    head, sensor_id, seq, t, byte8, value = _STRUCT.unpack(raw)
    version = head >> 6
    if version != VERSION:
        raise DecodeError(f"binary event: expected version {VERSION}, got {version}")
    kind = _CODES.get((head >> 3) & 0x7)
    if kind is None:
        raise DecodeError(f"binary event: unknown kind code {(head >> 3) & 0x7}")
    out: dict[str, Any] = {
        "version": version, "kind": kind, "model_id": head & 0x7, "sensor_id": sensor_id,
        "seq": seq, "ts": t + EPOCH_2020, "value": None if math.isnan(value) else value,
    }
    if kind == "class":
        out["label"] = byte8
    else:
        out["score"] = byte8 / 10.0
    return out


def encode_json(event: Event) -> bytes:
    """Compact JSON (no spaces), for MQTT and the JSON-lines sinks."""
    return json.dumps(event.as_dict(), separators=(",", ":"), allow_nan=False).encode()
