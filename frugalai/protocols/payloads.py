"""Payload decoders for LoRa / LoRaWAN sources, by name (``decoder=fb`` / ``decoder=lpp``).

A payload decoder takes the bytes one radio packet carried and returns plain data: quantity
name -> ``(value, unit)`` (or a bare value). Registered in ``frugalai.registry.decoders``;
plugins add their own there. The firmware_bridge decoder also returns the node's ``node_id`` and
``seq`` (the sources keep them as metadata, count sequence gaps as lost packets, and can keep
only one node's packets). Pure: no I/O.

>>> decode_fb(bytes.fromhex("01 00 07 00 01 03 00 00 04 d2"))
{'water_level_m': (1.234, 'm'), 'node_id': (7.0, ''), 'seq': (1.0, '')}
>>> decode_lpp(bytes.fromhex("0567FFD1"))
{'temperature_5': (-4.7, '°C')}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Callable, Union

from frugalai.protocols import frames, lpp

Value = Union[float, tuple[float, str]]
PayloadDecoder = Callable[[bytes], Mapping[str, Value]]

#: keys a decoder may return that describe the packet rather than measure something
PACKET_KEYS = ("node_id", "seq")


def decode_fb(payload: bytes) -> dict[str, tuple[float, str]]:
    """A bare firmware_bridge packet (as sent over LoRa): its readings, node id and seq."""
    pkt = frames.decode_packet(payload)
    out = frames.packet_values(pkt)
    out["node_id"] = (float(pkt.node_id), "")
    out["seq"] = (float(pkt.seq), "")
    return out


def decode_lpp(payload: bytes) -> dict[str, tuple[float, str]]:
    """A Cayenne LPP payload: ``<type>_<channel>`` names (``temperature_3``)."""
    return lpp.decode_values(payload)


def split(decoded: Mapping[str, Value]) -> tuple[dict[str, float], dict[str, str],
                                                 dict[str, int]]:
    """(values, units, packet keys) from a decoder's output.

    >>> split({"water_level_m": (1.5, "m"), "x": 2.0, "seq": (9.0, "")})
    ({'water_level_m': 1.5, 'x': 2.0}, {'water_level_m': 'm'}, {'seq': 9})
    """
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    packet: dict[str, int] = {}
    for name, item in decoded.items():
        value, unit = item if isinstance(item, tuple) else (item, "")
        if name in PACKET_KEYS:
            packet[name] = int(value)
            continue
        values[name] = float(value)
        if unit:
            units[name] = unit
    return values, units, packet
