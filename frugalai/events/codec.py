"""Event codecs: a compact binary form for LoRaWAN-sized uplinks, and JSON for MQTT.

The full specification, with byte diagrams and the JavaScript decoder for network servers, is
``docs/event-format.md``; ``payload_codec.js`` beside this file decodes the same bytes.

Binary format, version 1. Big-endian. The length tells the layout apart:

**Short form, 11 bytes** (every kind; fits US915 DR0's 11-byte payload)::

    byte  0      : vv kkk mmm   version (2 bits, = 1) | kind (3 bits) | model id (3 bits)
    byte  1      : sensor id (0-255)
    bytes 2-3    : sequence number, u16 (the outbox's seq modulo 65536), for dedup
    bytes 4-7    : time, u32 seconds since 2020-01-01T00:00:00Z (good until 2156)
    byte  8      : class index (kind=class), the failing checks' mask (kind=health), or score
                   x 10 clamped to 0-255 (0.1 steps)
    bytes 9-10   : key value, IEEE-754 binary16 (half float: 3 significant digits, |x| < 65504)

A summary in short form carries its max score in byte 8 and its mean in bytes 9-10 (for links
that allow only 11 bytes).

**Summary form, 37 bytes** (kind=summary; fits EU868 DR0-2's 51 bytes with 14 to spare for
piggybacked MAC commands)::

    bytes 0-7    : as the short form (time = end of the period)
    bytes 8-11   : bits 0-27: period length, seconds (saturates at 2^28-1, 8.5 years);
                   bits 28-31: saturation flags, set when the u16 counter below was capped:
                   bit 31 windows, bit 30 events, bit 29 errors, bit 28 dropped
    bytes 12-15  : readings, u32
    bytes 16-17  : windows scored, u16        (counters saturate at their maximum)
    bytes 18-19  : events emitted, u16
    bytes 20-21  : errors (frames rejected + processing errors + implausible values), u16
    bytes 22-23  : events dropped by the outbox on overflow + events lost, u16
    byte  24     : max score x 10, 0-254; 255 = no score this period
    bytes 25-28  : min of the key value, f32 (NaN = no window)
    bytes 29-32  : mean, f32
    bytes 33-36  : max, f32

A saturated counter is a true lower bound; its flag says that it is one, so a receiver never
takes 65,535 for an exact count. Decoders list the capped counters in ``stats["saturated"]``
(empty when none). Payloads with no flag set decode as before the flags existed.

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
from dataclasses import dataclass
from typing import Any, Callable, Optional

from frugalai.errors import DecodeError
from frugalai.events import schema
from frugalai.events.event import HEALTH_CHECKS, KINDS, Event, Stats

VERSION = 1
EPOCH_2020 = 1_577_836_800
_CODES = {code: name for name, code in KINDS.items()}
_STRUCT = struct.Struct(">BBHIBe")
_SUMMARY = struct.Struct(">BBHIIIHHHHBfff")
BINARY_SIZE = _STRUCT.size
SUMMARY_SIZE = _SUMMARY.size
#: The largest payload this codec ever produces (EU868 DR0-2 carry 51 bytes).
MAX_SIZE = SUMMARY_SIZE
_NO_SCORE = 255
#: the u16 summary counters, in the order of their saturation flags (bit 31 down to bit 28)
SATURABLE = ("windows", "events", "errors", "dropped")
_PERIOD_BITS = 28
_PERIOD_MASK = (1 << _PERIOD_BITS) - 1


def _half(value: float) -> float:
    if math.isnan(value):
        return value
    return max(-65504.0, min(65504.0, value))


def _u(value: int, bits: int) -> int:
    """Saturate a counter to an unsigned field (a capped count is still an honest lower bound)."""
    return max(0, min((1 << bits) - 1, int(value)))


def _score_byte(score: float, top: int = 255) -> int:
    return 0 if math.isnan(score) else int(max(0, min(top, round(score * 10))))


def _head(event: Event) -> tuple[int, int, int, int]:
    if not 0 <= event.sensor_id <= 255:
        raise ValueError(f"sensor_id must be 0-255, got {event.sensor_id}")
    if not 0 <= event.model_id <= 7:
        raise ValueError(f"model_id must be 0-7, got {event.model_id}")
    head = (VERSION << 6) | (KINDS[event.kind] << 3) | event.model_id
    t = int(max(0, min(0xFFFFFFFF, event.ts - EPOCH_2020)))
    return head, event.sensor_id, event.seq & 0xFFFF, t


def encode_binary(event: Event, max_size: Optional[int] = None) -> bytes:
    """Encode one event: 11 bytes, or 37 for a summary that carries stats.

    Args:
        event: the event.
        max_size: the largest payload the link takes now (LoRaWAN: depends on the data rate).
            A summary falls back to the 11-byte short form when 37 bytes do not fit.

    Raises:
        ValueError: an id out of its wire range, or ``max_size`` below 11.
    """
    if max_size is not None and max_size < BINARY_SIZE:
        raise ValueError(f"no event layout fits {max_size} bytes (the smallest is {BINARY_SIZE})")
    head = _head(event)
    stats = event.stats
    if event.kind == "summary" and stats is not None:
        if max_size is None or max_size >= SUMMARY_SIZE:
            score = _NO_SCORE if math.isnan(stats.max_score) else _score_byte(stats.max_score, 254)
            counts = (stats.windows, stats.events, stats.errors + stats.implausible,
                      stats.dropped + stats.lost)
            flags = sum(1 << (31 - i) for i, n in enumerate(counts) if n > 0xFFFF)
            return _SUMMARY.pack(*head, flags | _u(stats.period_s, _PERIOD_BITS),
                                 _u(stats.readings, 32), *(_u(n, 16) for n in counts), score,
                                 stats.min, stats.mean, stats.max)
        return _STRUCT.pack(*head, _score_byte(stats.max_score), _half(stats.mean))
    byte8 = (max(0, min(255, event.label)) if event.kind in ("class", "health")
             else _score_byte(event.score))
    return _STRUCT.pack(*head, byte8, _half(event.value))


def _nan_none(x: float) -> Optional[float]:
    return None if math.isnan(x) else x


def decode_binary(raw: bytes) -> dict[str, Any]:
    """Decode either layout into plain data (the fields it carries; NaN becomes None)."""
    if len(raw) not in (BINARY_SIZE, SUMMARY_SIZE):
        raise DecodeError(f"binary event: expected {BINARY_SIZE} or {SUMMARY_SIZE} bytes, got "
                          f"{len(raw)}")
    head = raw[0]
    version = head >> 6
    if version != VERSION:
        raise DecodeError(f"binary event: expected version {VERSION}, got {version}")
    kind = _CODES.get((head >> 3) & 0x7)
    if kind is None:
        raise DecodeError(f"binary event: unknown kind code {(head >> 3) & 0x7}")
    if len(raw) == SUMMARY_SIZE:
        if kind != "summary":
            raise DecodeError(f"binary event: {SUMMARY_SIZE} bytes is the summary layout, but "
                              f"the kind is {kind}")
        (_, sensor_id, seq, t, period, readings, windows, events, errors, dropped, score,
         vmin, vmean, vmax) = _SUMMARY.unpack(raw)
        return {
            "version": version, "kind": kind, "model_id": head & 0x7, "sensor_id": sensor_id,
            "seq": seq, "ts": t + EPOCH_2020,
            "stats": {"period_s": period & _PERIOD_MASK, "readings": readings,
                      "windows": windows, "events": events, "errors": errors,
                      "dropped": dropped,
                      "saturated": [name for i, name in enumerate(SATURABLE)
                                    if period >> (31 - i) & 1],
                      "max_score": None if score == _NO_SCORE else score / 10.0,
                      "min": _nan_none(vmin), "mean": _nan_none(vmean), "max": _nan_none(vmax)},
        }
    _, sensor_id, seq, t, byte8, value = _STRUCT.unpack(raw)
    out: dict[str, Any] = {
        "version": version, "kind": kind, "model_id": head & 0x7, "sensor_id": sensor_id,
        "seq": seq, "ts": t + EPOCH_2020, "value": _nan_none(value),
    }
    if kind == "class":
        out["label"] = byte8
    elif kind == "health":
        out["label"] = byte8
        out["check"] = HEALTH_CHECKS[head & 0x7]
        out["faults"] = [name for i, name in enumerate(HEALTH_CHECKS) if byte8 >> i & 1]
    else:
        out["score"] = byte8 / 10.0
    return out


def encode_json(event: Event) -> bytes:
    """Compact JSON (no spaces), for MQTT and the JSON-lines sinks; ``v`` is the format version.

    Raises:
        ValueError (:class:`~frugalai.events.schema.SchemaError`): a field out of the event
            schema (:mod:`frugalai.events.schema`), e.g. an infinite value.

    >>> encode_json(Event("alarm", "linky", 1.0e9, score=5.0, seq=4))[:40]
    b'{"v":1,"kind":"alarm","sensor":"linky","'
    """
    data = {"v": VERSION, **event.as_dict()}
    # the centre's schema, checked before sending: what leaves is what the collector accepts
    schema.check(data)
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


def decode_json(raw: bytes) -> Event:
    """The Event back from :func:`encode_json`, checked whole against the event schema
    (:mod:`frugalai.events.schema`); :class:`~frugalai.events.schema.SchemaError` (a
    DecodeError) naming the key otherwise."""
    try:
        return schema.parse(raw)
    except schema.SchemaError as err:
        raise schema.SchemaError(f"JSON event: {err}") from None


@dataclass(frozen=True)
class Codec:
    """An event codec as the uplinks use it; registered in :data:`frugalai.registry.codecs`.

    The contract (checked for every registered codec by tests/test_conformance.py): ``encode``
    does not modify the event and returns bytes; ``decode(encode(e))`` gives back the event's
    kind, ids, sequence number (mod 65536), time (to the second), value and score (to the
    codec's precision), as an :class:`Event` or as a dict of those fields.

    Attributes:
        name: the name in URLs (``?codec=json``).
        encode: Event -> payload bytes.
        decode: payload bytes -> Event or dict (:class:`~frugalai.errors.DecodeError` if bad).
        text: True if the payload is UTF-8 text (a line-oriented sink writes it as is);
            False for binary payloads (written as hex on text lines).
    """

    name: str
    encode: Callable[[Event], bytes]
    decode: Callable[[bytes], Any]
    text: bool

    def line(self, payload: bytes) -> str:
        """The payload as one line of text (without the newline)."""
        return payload.decode() if self.text else payload.hex()


JSON = Codec("json", encode_json, decode_json, text=True)
BINARY = Codec("binary", encode_binary, decode_binary, text=False)


__all__ = [
    "BINARY",
    "BINARY_SIZE",
    "EPOCH_2020",
    "JSON",
    "MAX_SIZE",
    "SUMMARY_SIZE",
    "VERSION",
    "Codec",
    "Stats",
    "decode_binary",
    "decode_json",
    "encode_binary",
    "encode_json",
]
