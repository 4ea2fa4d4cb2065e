"""Test helpers for the LoRa tests: a minimal LPP reader for the §2 vectors, and collectors.

``lpp_temperature_humidity`` reads only LPP temperature (0x67) and humidity (0x68) records: it
stands in for a payload decoder so the modem drivers can be tested with the protocols.md
vectors; the real codecs live in frugalai.protocols (issue 3) and are tested there.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from frugalai.errors import DecodeError


def lpp_temperature_humidity(payload: bytes) -> dict[str, float]:
    out: dict[str, float] = {}
    i = 0
    while i < len(payload):
        if i + 2 > len(payload):
            raise DecodeError("truncated LPP record")
        ch, typ = payload[i], payload[i + 1]
        if typ == 0x67 and i + 4 <= len(payload):
            out[f"temperature_c_{ch}"] = int.from_bytes(payload[i + 2:i + 4], "big",
                                                        signed=True) / 10
            i += 4
        elif typ == 0x68 and i + 3 <= len(payload):
            out[f"humidity_pct_{ch}"] = payload[i + 2] / 2
            i += 3
        else:
            raise DecodeError(f"LPP type {typ:#x} not handled by the test decoder")
    return out


def collect(source: Any, count: int, timeout: float = 10.0, during: Any = None) -> list[Any]:
    """Read ``count`` readings (or until ``timeout``); ``during(n)`` is called after each."""
    stop = threading.Event()
    out: list[Any] = []
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        for reading in source.readings(stop):
            out.append(reading)
            if during is not None:
                during(len(out))
            if len(out) >= count:
                break
    finally:
        timer.cancel()
    return out


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False

