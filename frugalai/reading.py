"""The ``Reading``: one timestamped set of named values from one sensor.

Everything upstream of the features (sources, protocol decoders) produces Readings; everything
downstream consumes them. Values are floats in SI-ish units named by ``units``; text fields that
some protocols carry (tariff period, meter address) go in ``meta``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reading:
    """One sample from one sensor.

    Attributes:
        ts: UNIX time in seconds (float) when the gateway received or the device stamped it.
        sensor: the sensor's name, as configured (``linky``, ``node-12``).
        values: quantity name -> numeric value (``{"papp_va": 390.0, "base_wh": 7640930.0}``).
        units: quantity name -> unit string, for the quantities that have one.
        meta: non-numeric data (tariff period, meter id, rssi source...).
    """

    ts: float
    sensor: str
    values: Mapping[str, float]
    units: Mapping[str, str] = field(default_factory=dict)
    meta: Mapping[str, str] = field(default_factory=dict)

    def get(self, name: str, default: float | None = None) -> float | None:
        """Return one value, or ``default`` when the reading does not carry it."""
        return self.values.get(name, default)
