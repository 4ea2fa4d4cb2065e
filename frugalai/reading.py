"""The ``Reading``: one timestamped set of named values from one sensor.

Everything upstream of the features (sources, protocol decoders) produces Readings; everything
downstream consumes them. Values are floats in SI-ish units named by ``units``; text fields that
some protocols carry (tariff period, meter address) go in ``meta``.

A Reading is a named tuple, not a frozen dataclass: one is built per row or frame, and a
frozen dataclass's ``__init__`` (one ``object.__setattr__`` per field) cost a replay at full
speed about 1 µs a reading, more than the window update. Same constructor, same attributes,
still immutable; ``units`` and ``meta`` default to a shared read-only empty mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

#: the shared default of ``units`` and ``meta`` (read-only, so sharing it is safe).
EMPTY: Mapping[str, str] = MappingProxyType({})


class Reading(NamedTuple):
    """One sample from one sensor.

    Attributes:
        ts: UNIX time in seconds (float) when the gateway received or the device stamped it.
        sensor: the sensor's name, as configured (``linky``, ``node-12``).
        values: quantity name -> numeric value (``{"papp_va": 390.0, "base_wh": 7640930.0}``).
        units: quantity name -> unit string, for the quantities that have one.
        meta: non-numeric data (tariff period, meter id, rssi source...).

    >>> r = Reading(0.0, "linky", {"papp_va": 390.0})
    >>> r.get("papp_va"), r.get("iinst_a"), dict(r.units)
    (390.0, None, {})
    """

    ts: float
    sensor: str
    values: Mapping[str, float]
    units: Mapping[str, str] = EMPTY
    meta: Mapping[str, str] = EMPTY

    def get(self, name: str, default: float | None = None) -> float | None:
        """Return one value, or ``default`` when the reading does not carry it."""
        return self.values.get(name, default)
