"""Cayenne LPP (Low Power Payload) encoder and decoder: pure, no I/O.

Payload = concatenation of ``[channel u8][type u8][data, big-endian]``; type = IPSO object id −
3200, value = round(x × multiplier). Official myDevices types plus the extended ones of
ElectronicCats/CayenneLPP and pycayennelpp (protocols.md §2). Voltage and current are unsigned, as
in the table (ElectronicCats decodes them as signed; a negative voltage is not a sensor value).

>>> [(v.channel, v.name, v.value) for v in decode(bytes.fromhex("03 67 01 10 05 67 00 FF"))]
[(3, 'temperature', (27.2,)), (5, 'temperature', (25.5,))]
>>> decode_values(bytes.fromhex("03670110"))
{'temperature_3': (27.2, '°C')}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from frugalai.errors import DecodeError


@dataclass(frozen=True)
class LppType:
    """One LPP data type: ``sizes`` bytes per field, ``mults`` per field, one unit for all."""

    code: int
    name: str
    unit: str
    sizes: tuple[int, ...]
    mults: tuple[int, ...]
    signed: bool
    fields: tuple[str, ...] = ("",)

    @property
    def size(self) -> int:
        return sum(self.sizes)


def _t(code: int, name: str, unit: str, size: int, mult: int, signed: bool) -> LppType:
    return LppType(code, name, unit, (size,), (mult,), signed)


TYPES: tuple[LppType, ...] = (
    _t(0, "digital_in", "", 1, 1, False),
    _t(1, "digital_out", "", 1, 1, False),
    _t(2, "analog_in", "", 2, 100, True),
    _t(3, "analog_out", "", 2, 100, True),
    _t(100, "generic", "", 4, 1, False),
    _t(101, "illuminance", "lx", 2, 1, False),
    _t(102, "presence", "", 1, 1, False),
    _t(103, "temperature", "°C", 2, 10, True),
    _t(104, "humidity", "%", 1, 2, False),
    LppType(113, "accelerometer", "g", (2, 2, 2), (1000, 1000, 1000), True, ("x", "y", "z")),
    _t(115, "pressure", "hPa", 2, 10, False),
    _t(116, "voltage", "V", 2, 100, False),
    _t(117, "current", "A", 2, 1000, False),
    _t(118, "frequency", "Hz", 4, 1, False),
    _t(120, "percentage", "%", 1, 1, False),
    _t(121, "altitude", "m", 2, 1, True),
    _t(125, "concentration", "ppm", 2, 1, False),
    _t(128, "power", "W", 2, 1, False),
    _t(130, "distance", "m", 4, 1000, False),
    _t(131, "energy", "kWh", 4, 1000, False),
    _t(132, "direction", "°", 2, 1, False),
    _t(133, "unixtime", "s", 4, 1, False),
    LppType(134, "gyrometer", "°/s", (2, 2, 2), (100, 100, 100), True, ("x", "y", "z")),
    LppType(135, "colour", "", (1, 1, 1), (1, 1, 1), False, ("r", "g", "b")),
    LppType(136, "gps", "", (3, 3, 3), (10000, 10000, 100), True, ("lat", "lon", "alt")),
    _t(142, "switch", "", 1, 1, False),
)
BY_CODE: Mapping[int, LppType] = {t.code: t for t in TYPES}
BY_NAME: Mapping[str, LppType] = {t.name: t for t in TYPES}
_GPS_UNITS = {"lat": "°", "lon": "°", "alt": "m"}


@dataclass(frozen=True)
class LppValue:
    """One decoded item: channel, type code, type name, and one float per field."""

    channel: int
    type: int
    name: str
    value: tuple[float, ...]


def _clean(raw: int, mult: int) -> float:
    return raw / mult if mult != 1 else float(raw)


def decode(payload: bytes) -> list[LppValue]:
    """Decode a whole LPP payload.

    Raises:
        DecodeError: unknown type, or an item truncated by the end of the payload.
    """
    out: list[LppValue] = []
    i, n = 0, len(payload)
    while i < n:
        if i + 2 > n:
            raise DecodeError(f"LPP: truncated item header at offset {i}")
        channel, code = payload[i], payload[i + 1]
        t = BY_CODE.get(code)
        if t is None:
            raise DecodeError(f"LPP: unknown type {code} (0x{code:02X}) on channel {channel}")
        i += 2
        if i + t.size > n:
            raise DecodeError(f"LPP: {t.name} on channel {channel} needs {t.size} bytes, {n - i} left")
        fields = []
        for size, mult in zip(t.sizes, t.mults):
            raw = int.from_bytes(payload[i : i + size], "big", signed=t.signed)
            fields.append(_clean(raw, mult))
            i += size
        out.append(LppValue(channel, code, t.name, tuple(fields)))
    return out


def encode_one(channel: int, type_name: str, value: float | Sequence[float]) -> bytes:
    """Encode one item. ValueError if the channel, type or value is out of range."""
    t = BY_NAME.get(type_name)
    if t is None:
        raise ValueError(f"unknown LPP type {type_name!r}; known: {', '.join(BY_NAME)}")
    if not 0 <= channel <= 255:
        raise ValueError(f"LPP channel must be 0..255, got {channel}")
    values = [value] if isinstance(value, (int, float)) else list(value)
    if len(values) != len(t.sizes):
        raise ValueError(f"LPP {type_name} takes {len(t.sizes)} value(s), got {len(values)}")
    out = bytearray((channel, t.code))
    for v, size, mult in zip(values, t.sizes, t.mults):
        if not math.isfinite(v):
            raise ValueError(f"LPP {type_name}: value must be finite, got {v}")
        raw = round(v * mult)
        try:
            out += raw.to_bytes(size, "big", signed=t.signed)
        except OverflowError:
            raise ValueError(f"LPP {type_name}: {v} does not fit in {size} bytes") from None
    return bytes(out)


def encode(items: Iterable[tuple[int, str, float | Sequence[float]]]) -> bytes:
    """Encode (channel, type name, value) items into one payload."""
    return b"".join(encode_one(ch, name, v) for ch, name, v in items)


def value_name(item: LppValue, field_name: str = "") -> str:
    """The flat quantity name of an item field: ``temperature_3``, ``gps_lat_1``."""
    return f"{item.name}_{field_name}_{item.channel}" if field_name else f"{item.name}_{item.channel}"


def decode_values(payload: bytes) -> dict[str, tuple[float, str]]:
    """Plain data: quantity name -> (value, unit), one entry per field.

    Names are ``<type>_<channel>`` (``temperature_3``, ``pressure_4``), or
    ``<type>_<field>_<channel>`` for multi-field types (``gps_lat_1``, ``accelerometer_x_6``).

    Raises:
        DecodeError: as :func:`decode`.
    """
    out: dict[str, tuple[float, str]] = {}
    for item in decode(payload):
        t = BY_CODE[item.type]
        for fname, v in zip(t.fields, item.value):
            unit = _GPS_UNITS[fname] if t.name == "gps" else t.unit
            out[value_name(item, fname)] = (v, unit)
    return out
