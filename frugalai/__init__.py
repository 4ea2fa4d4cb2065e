"""frugalai: frugal edge AI for IoT gateways.

Sensors in (serial, LoRa), small quantized models on the gateway, compact events out through a
store-and-forward outbox. ``import frugalai`` needs only numpy; every heavy runtime is imported late.
"""

from __future__ import annotations

from frugalai.errors import (
    CardError,
    ConfigError,
    DecodeError,
    FrugalError,
    ModelError,
    SourceError,
    UplinkError,
)
from frugalai.reading import Reading

__version__ = "0.1.0"

__all__ = [
    "CardError",
    "ConfigError",
    "DecodeError",
    "FrugalError",
    "ModelError",
    "Reading",
    "SourceError",
    "UplinkError",
    "__version__",
]
