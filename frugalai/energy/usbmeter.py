"""RDTech UM24C / UM25C / UM34C USB meters over (Bluetooth) serial.

Pair the meter, bind it (``rfcomm bind 0 <MAC>``) and open ``/dev/rfcomm0``. Sending byte 0xF0
asks for one 130-byte big-endian record::

    [0:2]   model id (0x0963 UM24C, 0x09c9 UM25C, 0x0d4c UM34C)
    [2:4]   volts   (/100; UM25C /1000)
    [4:6]   amps    (/1000; UM25C /10000)
    [6:10]  watts   (u32, /1000)
    [16:96] ten data groups of (mAh u32, mWh u32)

The meter refreshes about twice a second and its power has 1 mW resolution: good for averages
over long windows only. Any pyserial URL works (``socket://``, ``loop://``), and the tests talk
to an emulated meter on a real pty.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Optional

from frugalai.energy.base import MeterError, PowerMeter

try:
    from termios import error as _TermiosError

    _LINK_ERRORS: tuple[type[BaseException], ...] = (OSError, _TermiosError)
except ImportError:  # pragma: no cover - not POSIX
    _LINK_ERRORS = (OSError,)

REQUEST = b"\xf0"
RECORD_SIZE = 130
MODEL_IDS = {"UM24C": 0x0963, "UM25C": 0x09C9, "UM34C": 0x0D4C}
#: divisors of (volts, amps) per model.
SCALES = {"UM24C": (100, 1000), "UM25C": (1000, 10000), "UM34C": (100, 1000)}


@dataclass(frozen=True)
class UsbRecord:
    """The fields of one record this package uses."""

    model: str
    volts: float
    amps: float
    watts: float
    group_mwh: tuple[int, ...]


def parse_record(raw: bytes, model: Optional[str] = None) -> UsbRecord:
    """Decode a 130-byte record; ValueError if it is not one (length, unknown model id)."""
    if len(raw) != RECORD_SIZE:
        raise ValueError(f"expected a {RECORD_SIZE}-byte record, got {len(raw)} bytes")
    mid = struct.unpack_from(">H", raw, 0)[0]
    by_id = {v: k for k, v in MODEL_IDS.items()}
    if mid not in by_id:
        raise ValueError(f"unknown model id 0x{mid:04x} (expected one of "
                         f"{', '.join(f'{k} 0x{v:04x}' for k, v in MODEL_IDS.items())})")
    found = by_id[mid]
    if model is not None and model != found:
        raise ValueError(f"record comes from a {found}, configured as {model}")
    vdiv, adiv = SCALES[found]
    v, a, w = struct.unpack_from(">HHI", raw, 2)
    groups = tuple(struct.unpack_from(">II", raw, 16 + 8 * g)[1] for g in range(10))
    return UsbRecord(found, v / vdiv, a / adiv, w / 1000, groups)


def build_record(model: str, volts: float, amps: float, watts: Optional[float] = None,
                 group_mwh: int = 0) -> bytes:
    """A record as the meter sends it (for emulators and tests)."""
    vdiv, adiv = SCALES[model]
    rec = bytearray(RECORD_SIZE)
    w = volts * amps if watts is None else watts
    struct.pack_into(">HHHI", rec, 0, MODEL_IDS[model], round(volts * vdiv), round(amps * adiv),
                     round(w * 1000))
    struct.pack_into(">HH", rec, 10, 25, 77)
    struct.pack_into(">II", rec, 16, 0, group_mwh)
    struct.pack_into(">H", rec, 128, 0xFFF1)
    return bytes(rec)


class UsbMeter(PowerMeter):
    """Power from a UM-series USB meter.

    Args:
        port: device path or pyserial URL.
        model: UM24C, UM25C or UM34C (they differ in scale).
        timeout: seconds to wait for a full record.
    """

    name = "um25c"
    rel_uncertainty = 0.02
    scope = "usb-port"

    def __init__(self, port: str, model: str = "UM25C", timeout: float = 2.0,
                 interval: float = 0.5) -> None:
        super().__init__(interval)
        if model not in MODEL_IDS:
            raise MeterError(f"unknown USB meter model {model!r}; known: {sorted(MODEL_IDS)}")
        import serial

        self.model, self.port = model, port
        self.name = model.lower()
        try:
            self.serial: Any = serial.serial_for_url(port, baudrate=9600, timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as err:
            raise MeterError(f"{port}: cannot open the {model} ({err}); is it paired and "
                             f"bound (`rfcomm bind 0 <MAC>`)?") from err
        self.last: Optional[UsbRecord] = None
        self.watts()

    def record(self) -> UsbRecord:
        """Ask for and decode one record."""
        try:
            self.serial.reset_input_buffer()
            self.serial.write(REQUEST)
            raw = self.serial.read(RECORD_SIZE)
        except _LINK_ERRORS as err:  # SerialException is an IOError; termios.error is not
            raise MeterError(f"{self.port}: {self.model} link lost: {err}") from err
        if not raw:
            raise MeterError(f"{self.port}: no answer from the {self.model} to 0xF0 (out of "
                             f"range, switched off, or Bluetooth not connected)")
        try:
            rec = parse_record(raw, self.model)
        except ValueError as err:
            raise MeterError(f"{self.port}: bad record from the {self.model}: {err}") from err
        self.last = rec
        return rec

    def watts(self) -> float:
        return self.record().watts

    def close(self) -> None:
        super().close()
        self.serial.close()


def um24c(rest: str, options: dict[str, str]) -> UsbMeter:
    """``um24c[:PORT]`` (registry.meters); the port defaults to /dev/rfcomm0."""
    return UsbMeter(rest or "/dev/rfcomm0", model="UM24C")


def um25c(rest: str, options: dict[str, str]) -> UsbMeter:
    """``um25c[:PORT]`` (registry.meters); the port defaults to /dev/rfcomm0."""
    return UsbMeter(rest or "/dev/rfcomm0", model="UM25C")


def um34c(rest: str, options: dict[str, str]) -> UsbMeter:
    """``um34c[:PORT]`` (registry.meters); the port defaults to /dev/rfcomm0."""
    return UsbMeter(rest or "/dev/rfcomm0", model="UM34C")
