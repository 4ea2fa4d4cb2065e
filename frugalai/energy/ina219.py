"""INA219 over raw I2C (``/dev/i2c-N``), for boards without the kernel driver.

Registers (TI SBOS448, big-endian 16-bit): 0x00 configuration, 0x01 shunt voltage (signed,
10 µV/bit), 0x02 bus voltage (bits 15-3, 4 mV/bit; bit 1 CNVR, bit 0 OVF), 0x03 power,
0x04 current, 0x05 calibration. The calibration math is pure and tested with the vectors of the
datasheet and of the common 32 V/2 A, 32 V/1 A and 16 V/400 mA settings::

    Cal = trunc(0.04096 / (Current_LSB x R_shunt))     Power_LSB = 20 x Current_LSB

>>> calibration(0.0001, 0.1)        # 2 A max on 0.1 ohm: Current_LSB 100 µA
4096
>>> shunt_voltage(0xF060)           # -40 mV
-0.04

Access uses plain ``read``/``write`` on the adapter after ``ioctl(I2C_SLAVE)``: a write of the
register pointer then a 2-byte read returns the register MSB first, so no SMBus byte swap.
"""

from __future__ import annotations

import errno
import math
import os
from typing import Protocol

from frugalai.energy.base import MeterError, PowerMeter

I2C_SLAVE = 0x0703
REG_CONFIG, REG_SHUNT, REG_BUS, REG_POWER, REG_CURRENT, REG_CALIBRATION = range(6)
#: 32 V range, PGA /8 (±320 mV), 12-bit bus and shunt ADC, shunt and bus continuous.
DEFAULT_CONFIG = 0x399F


def calibration(current_lsb: float, shunt_ohm: float) -> int:
    """Calibration register value for ``current_lsb`` (A/bit) on ``shunt_ohm``."""
    cal = math.trunc(0.04096 / (current_lsb * shunt_ohm) + 1e-9)
    if not 1 <= cal <= 0xFFFE:
        raise ValueError(f"calibration {cal} out of range 1..65534: choose another "
                         f"current LSB for a {shunt_ohm} ohm shunt")
    return cal & 0xFFFE  # bit 0 is read-only (datasheet)


def current_lsb_for(max_current_a: float) -> float:
    """Smallest round current LSB (A/bit) covering ``max_current_a`` in 15 bits."""
    raw = max_current_a / 32767
    exp = math.floor(math.log10(raw))
    for step in (1, 2, 4, 5, 10):
        lsb = step * 10.0 ** exp
        if lsb >= raw:
            return round(lsb, 12)
    return 10.0 ** (exp + 1)  # pragma: no cover


def _s16(raw: int) -> int:
    return raw - 0x10000 if raw & 0x8000 else raw


def shunt_voltage(raw: int) -> float:
    """Shunt voltage register -> volts (signed, 10 µV/bit)."""
    return round(_s16(raw) * 10e-6, 9)


def bus_voltage(raw: int) -> float:
    """Bus voltage register -> volts; ValueError when the math overflow flag is set."""
    if raw & 0x1:
        raise ValueError("INA219 math overflow (OVF): current or power out of range; raise the "
                         "current LSB")
    return (raw >> 3) * 0.004


def current(raw: int, current_lsb: float) -> float:
    """Current register -> amps (signed)."""
    return _s16(raw) * current_lsb


def power(raw: int, current_lsb: float) -> float:
    """Power register -> watts (Power_LSB = 20 x Current_LSB)."""
    return raw * 20 * current_lsb


def swap16(word: int) -> int:
    """Byte-swap an SMBus word read (SMBus is little-endian, the INA219 big-endian)."""
    return ((word & 0xFF) << 8) | (word >> 8)


class Bus(Protocol):
    """What the meter needs from an I2C device: register pointer writes and 2-byte reads."""

    def write(self, data: bytes) -> int: ...
    def read(self, size: int) -> bytes: ...
    def close(self) -> None: ...


class I2CDevice:
    """One I2C slave through ``/dev/i2c-N`` (``ioctl(I2C_SLAVE)`` then read/write)."""

    def __init__(self, path: str, address: int) -> None:
        import fcntl

        try:
            self.fd = os.open(path, os.O_RDWR)
        except FileNotFoundError as err:
            raise MeterError(f"{path}: no I2C adapter (enable I2C: `dtparam=i2c_arm=on` in "
                             f"config.txt, or `modprobe i2c-dev`)") from err
        except PermissionError as err:
            raise MeterError(f"{path}: permission denied (add the user to the 'i2c' group)"
                             ) from err
        try:
            fcntl.ioctl(self.fd, I2C_SLAVE, address)
        except OSError as err:
            os.close(self.fd)
            why = ("not an I2C adapter" if err.errno in (errno.ENOTTY, errno.EINVAL)
                   else f"address 0x{address:02x} busy (a kernel driver owns it? use the "
                        f"hwmon meter)" if err.errno == errno.EBUSY else str(err))
            raise MeterError(f"{path}: {why}") from err

    def write(self, data: bytes) -> int:
        return os.write(self.fd, data)

    def read(self, size: int) -> bytes:
        return os.read(self.fd, size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Ina219Meter(PowerMeter):
    """Power from an INA219's power register, calibrated at start.

    Args:
        bus: the I2C device (``I2CDevice``; a register emulator in tests).
        shunt_ohm: shunt resistor, ohms (0.1 on the common breakout boards).
        max_current_a: largest expected current; sets the current LSB.
    """

    name = "ina219"
    rel_uncertainty = 0.02
    scope = "board"

    def __init__(self, bus: Bus, shunt_ohm: float = 0.1, max_current_a: float = 2.0,
                 config: int = DEFAULT_CONFIG, interval: float = 0.1) -> None:
        super().__init__(interval)
        self.bus = bus
        self.current_lsb = current_lsb_for(max_current_a)
        self.cal = calibration(self.current_lsb, shunt_ohm)
        self._write(REG_CONFIG, config)
        self._write(REG_CALIBRATION, self.cal)
        if self._read(REG_CALIBRATION) != self.cal:
            raise MeterError("INA219 did not keep the calibration register: wrong address or "
                             "not an INA219")

    @classmethod
    def from_spec(cls, rest: str, options: dict[str, str]) -> Ina219Meter:
        """``ina219:/dev/i2c-N[@ADDR][?shunt=OHM&max_a=A]`` (registry.meters)."""
        dev, _, addr = rest.partition("@")
        return cls.open(dev or "/dev/i2c-1", address=int(addr, 0) if addr else 0x40,
                        shunt_ohm=float(options.get("shunt", 0.1)),
                        max_current_a=float(options.get("max_a", 2.0)))

    @classmethod
    def open(cls, path: str, address: int = 0x40, **kwargs: float) -> Ina219Meter:
        return cls(I2CDevice(path, address), **kwargs)  # type: ignore[arg-type]

    def _write(self, reg: int, value: int) -> None:
        try:
            self.bus.write(bytes([reg, value >> 8, value & 0xFF]))
        except OSError as err:
            raise MeterError(f"INA219: write to register {reg} failed: {err} (no ACK: is "
                             f"the chip wired and powered?)") from err

    def _read(self, reg: int) -> int:
        try:
            self.bus.write(bytes([reg]))
            data = self.bus.read(2)
        except OSError as err:
            raise MeterError(f"INA219: read of register {reg} failed: {err}") from err
        if len(data) != 2:
            raise MeterError(f"INA219: short read of register {reg}: {data!r}")
        return (data[0] << 8) | data[1]

    def volts_amps(self) -> tuple[float, float]:
        """Bus voltage (V) and current (A)."""
        try:
            v = bus_voltage(self._read(REG_BUS))
        except ValueError as err:
            raise MeterError(str(err)) from err
        return v, current(self._read(REG_CURRENT), self.current_lsb)

    def watts(self) -> float:
        try:
            bus_voltage(self._read(REG_BUS))  # checks OVF before trusting the power register
        except ValueError as err:
            raise MeterError(str(err)) from err
        return power(self._read(REG_POWER), self.current_lsb)

    def close(self) -> None:
        super().close()
        self.bus.close()
