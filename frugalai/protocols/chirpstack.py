"""ChirpStack v4 MQTT integration: uplink events (JSON) to plain data, and frame-counter checks.

Topic: ``application/{application_id}/device/{dev_eui}/event/up``; payload: the protobuf JSON
mapping of ``integration.UplinkEvent`` (lowerCamelCase, bytes as base64). A missing field takes
its protobuf default (the ChirpStack docs' own example leaves ``fCnt`` out), so ``fCnt`` = 0 and
``fPort`` = 0 when absent. See docs/protocols.md §4. Pure: no MQTT here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from frugalai.errors import DecodeError

UPLINK_TOPIC = "application/{application}/device/{dev_eui}/event/up"

#: An uplink event is a few hundred bytes to a few KiB (one rxInfo per gateway); past this it is
#: not one, and nothing larger is parsed.
MAX_MESSAGE_BYTES = 65_536
#: ``UplinkEvent`` nests 4 levels (txInfo.modulation.lora); deeper JSON is refused *before*
#: ``json.loads``, whose recursion would otherwise raise RecursionError on ~1,000 levels.
MAX_JSON_DEPTH = 16
#: fCnt is a u32 and fPort a u8 on the air; protobuf JSON may write 64-bit integers as strings.
INT_RANGES = {"fCnt": (0, 2**32 - 1), "fPort": (0, 255)}
_INT_CHARS = 20


def json_depth(raw: bytes) -> int:
    """The deepest nesting of objects and arrays in ``raw``, without parsing it (no recursion).

    Brackets inside strings do not count.

    >>> json_depth(b'{"a":[1,{"b":"[[["}]}'), json_depth(b'[' * 5000)
    (3, 5000)
    """
    depth = top = 0
    in_string = escaped = False
    for byte in raw.translate(None, _NOT_STRUCTURAL):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            top = max(top, depth)
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return top


#: every byte but the ones json_depth looks at: quotes, backslashes and brackets
_NOT_STRUCTURAL = bytes(b for b in range(256) if b not in b'"\\{}[]')


@dataclass(frozen=True)
class Uplink:
    """One device uplink as the network server delivered it (payload already decrypted)."""

    dev_eui: str
    application_id: str
    f_cnt: int
    f_port: int
    data: bytes
    rssi: float | None
    snr: float | None
    dr: int | None
    dedup_id: str


def topic_parts(topic: str) -> tuple[str, str] | None:
    """(application_id, dev_eui) from an uplink topic, None for any other topic.

    >>> topic_parts("application/7c1a/device/0102030405060708/event/up")
    ('7c1a', '0102030405060708')
    """
    parts = topic.split("/")
    if len(parts) != 6 or parts[0] != "application" or parts[2] != "device" or parts[4:] != [
            "event", "up"]:
        return None
    return parts[1], parts[3].lower()


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise DecodeError(f"uplink: {key} must be an integer, got {str(value)[:40]!r}")
    if isinstance(value, str) and len(value) > _INT_CHARS:
        raise DecodeError(f"uplink: {key} is not an integer of its range: {value[:40]!r}...")
    try:
        number = int(value)  # protobuf JSON writes 64-bit integers as strings
    except ValueError:
        raise DecodeError(f"uplink: {key} must be an integer, got {value!r}") from None
    low, high = INT_RANGES[key]
    if not low <= number <= high:
        raise DecodeError(f"uplink: {key} out of {low}..{high}: {str(number)[:40]}")
    return number


def _finite(value: object, low: float, high: float) -> float | None:
    """A radio figure (rssi, snr) in its physical range, None otherwise (never an exception)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and not -(10**6) < value < 10**6:
        return None  # float() of a 400-digit int raises OverflowError
    number = float(value)
    return number if low <= number <= high else None


def parse_uplink(raw: bytes, topic: str = "") -> Uplink:
    """Parse one ``event/up`` message; DecodeError on bad JSON, base64 or field types.

    >>> u = parse_uplink(b'{"deviceInfo":{"devEui":"0102030405060708"},"fCnt":7,"fPort":1,'
    ...                  b'"data":"qg==","rxInfo":[{"rssi":-36,"snr":10.5}]}')
    >>> u.dev_eui, u.f_cnt, u.data, u.rssi, u.snr
    ('0102030405060708', 7, b'\\xaa', -36.0, 10.5)
    """
    if len(raw) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"uplink: {len(raw)} bytes, more than {MAX_MESSAGE_BYTES}")
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise DecodeError(f"uplink: JSON nested {depth} deep, at most {MAX_JSON_DEPTH}")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DecodeError(f"uplink: not JSON: {err}") from None
    if not isinstance(doc, dict):
        raise DecodeError(f"uplink: expected a JSON object, got {type(doc).__name__}")
    info = doc.get("deviceInfo") or {}
    if not isinstance(info, dict):
        raise DecodeError("uplink: deviceInfo must be an object")
    from_topic = topic_parts(topic) if topic else None
    dev_eui = str(info.get("devEui") or (from_topic[1] if from_topic else "")).lower()
    if not dev_eui:
        raise DecodeError("uplink: no devEui in deviceInfo or topic")
    app = str(info.get("applicationId") or (from_topic[0] if from_topic else ""))
    data_b64 = doc.get("data", "")
    if not isinstance(data_b64, str):
        raise DecodeError(f"uplink: data must be base64 text, got {data_b64!r}")
    try:
        data = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(f"uplink: data is not base64: {data_b64[:40]!r}") from None
    rssi = snr = None
    rx = doc.get("rxInfo") or []
    if isinstance(rx, list):
        heard = [(level, g) for g in rx if isinstance(g, dict)
                 for level in (_finite(g.get("rssi"), -200.0, 50.0),) if level is not None]
        if heard:
            rssi, top = max(heard, key=lambda pair: pair[0])   # the gateway that heard it best
            snr = _finite(top.get("snr"), -50.0, 50.0)
    dr = doc.get("dr")
    dr_ok = isinstance(dr, int) and not isinstance(dr, bool) and 0 <= dr <= 15
    return Uplink(dev_eui, app, _int(doc, "fCnt"), _int(doc, "fPort"), data, rssi, snr,
                  dr if dr_ok else None, str(doc.get("deduplicationId", ""))[:64])


class FCntTracker:
    """Per-device uplink frame counters: gaps are lost uplinks, repeats are duplicates.

    A counter back at 0, or far back (more than ``window`` below the last one), is a device
    that rejoined and restarted its counter; a small step back is a late duplicate.

    >>> t = FCntTracker()
    >>> [t.update("d", n)[0] for n in (10, 11, 14, 14, 12, 0, 0, 1)]
    ['new', 'ok', 'ok', 'duplicate', 'duplicate', 'reset', 'duplicate', 'ok']
    >>> t.update("d", 5)
    ('ok', 3)
    """

    def __init__(self, window: int = 16) -> None:
        self.window = window
        self._last: dict[str, int] = {}

    def update(self, dev_eui: str, f_cnt: int) -> tuple[str, int]:
        """(status, uplinks lost) for ``f_cnt``; status is new, ok, duplicate or reset."""
        last = self._last.get(dev_eui)
        if last is None:
            self._last[dev_eui] = f_cnt
            return "new", 0
        if f_cnt == last:
            return "duplicate", 0
        if f_cnt == 0 or f_cnt < last - self.window:
            self._last[dev_eui] = f_cnt
            return "reset", 0
        if f_cnt < last:
            return "duplicate", 0
        self._last[dev_eui] = f_cnt
        return "ok", f_cnt - last - 1
