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
        raise DecodeError(f"uplink: {key} must be an integer, got {value!r}")
    try:
        return int(value)  # protobuf JSON writes 64-bit integers as strings
    except ValueError:
        raise DecodeError(f"uplink: {key} must be an integer, got {value!r}") from None


def parse_uplink(raw: bytes, topic: str = "") -> Uplink:
    """Parse one ``event/up`` message; DecodeError on bad JSON, base64 or field types.

    >>> u = parse_uplink(b'{"deviceInfo":{"devEui":"0102030405060708"},"fCnt":7,"fPort":1,'
    ...                  b'"data":"qg==","rxInfo":[{"rssi":-36,"snr":10.5}]}')
    >>> u.dev_eui, u.f_cnt, u.data, u.rssi, u.snr
    ('0102030405060708', 7, b'\\xaa', -36.0, 10.5)
    """
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as err:
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
        best = [g for g in rx if isinstance(g, dict) and isinstance(g.get("rssi"), (int, float))]
        if best:
            top = max(best, key=lambda g: g["rssi"])   # the gateway that heard it best
            rssi = float(top["rssi"])
            snr = float(top["snr"]) if isinstance(top.get("snr"), (int, float)) else None
    dr = doc.get("dr")
    return Uplink(dev_eui, app, _int(doc, "fCnt"), _int(doc, "fPort"), data, rssi, snr,
                  dr if isinstance(dr, int) else None, str(doc.get("deduplicationId", "")))


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
