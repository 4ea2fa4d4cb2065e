"""INA219/INA226 (and the other ina2xx chips) through the Linux hwmon interface.

With the kernel ``ina2xx`` driver bound (device tree overlay or
``echo ina219 0x40 > /sys/bus/i2c/devices/i2c-1/new_device``) the chip appears as::

    /sys/class/hwmon/hwmonN/name            ina219 | ina226 | ina230 | ...
    /sys/class/hwmon/hwmonN/in1_input       bus voltage, mV
    /sys/class/hwmon/hwmonN/curr1_input     current, mA
    /sys/class/hwmon/hwmonN/power1_input    power, µW

``power1_input`` is used when present (the chip's own multiply); otherwise
``in1_input x curr1_input``. The shunt value is configured in the driver (``shunt_resistor``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from frugalai.energy.base import MeterError, PowerMeter

HWMON = "/sys/class/hwmon"
INA_NAMES = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina260", "ina3221")


def _read(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except PermissionError as err:
        raise MeterError(f"{path}: permission denied (add the user to the group owning it, or "
                         f"run as root)") from err
    except (OSError, ValueError) as err:
        raise MeterError(f"{path}: unreadable hwmon value: {err}") from err


class HwmonMeter(PowerMeter):
    """Power of one hwmon power monitor.

    Args:
        root: hwmon class directory (a fake tree in tests).
        name: chip name to pick (``ina219``); default the first INA-family chip found.
    """

    name = "hwmon"
    rel_uncertainty = 0.02
    scope = "board"

    @classmethod
    def from_spec(cls, rest: str, options: dict[str, str]) -> HwmonMeter:
        """``hwmon[:NAME]`` (registry.meters): the first ina2xx device by default."""
        return cls(name=rest or None)

    def __init__(self, root: Union[str, Path] = HWMON, name: Optional[str] = None,
                 interval: float = 0.1) -> None:
        super().__init__(interval)
        root = Path(root)
        if not root.is_dir():
            raise MeterError(f"{root}: no hwmon class directory (not Linux, or a container/VM "
                             f"exposing no hardware monitor)")
        seen = {}
        for d in sorted(root.iterdir()):
            if (d / "name").is_file():
                seen[d] = (d / "name").read_text().strip()
        wanted = (name,) if name else INA_NAMES
        matches = [d for d, n in seen.items() if n in wanted]
        if not matches:
            raise MeterError(f"{root}: no hwmon device named {' or '.join(wanted)} (found: "
                             f"{sorted(set(seen.values())) or 'none'}); is the ina2xx driver "
                             f"bound to the chip?")
        self.device = matches[0]
        self.chip = seen[self.device]
        self.name = f"hwmon:{self.chip}"
        self._power = self.device / "power1_input"
        if not self._power.is_file() and not (
                (self.device / "in1_input").is_file() and (self.device / "curr1_input").is_file()):
            raise MeterError(f"{self.device}: has neither power1_input nor in1_input + "
                             f"curr1_input")

    def watts(self) -> float:
        if self._power.is_file():
            return _read(self._power) / 1e6
        return _read(self.device / "in1_input") * _read(self.device / "curr1_input") / 1e6
