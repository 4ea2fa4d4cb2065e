"""Raspberry Pi 5 board power from its PMIC ADCs (``vcgencmd pmic_read_adc``).

The command prints one line per rail, currents then voltages::

       VDD_CORE_A current(7)=2.34567000A
       VDD_CORE_V volt(15)=0.87234000V

Power = sum of V x I over rails with both (``<rail>_A`` paired with ``<rail>_V``). The PMIC does
not see the 5 V input stage and USB peripherals, so this under-reads the wall; a published fit
(x1.1451 + 0.5879 W, unverified) maps it to a USB-C meter and can be turned on with ``fit``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from typing import Callable, Optional

from frugalai.energy.base import MeterError, PowerMeter

COMMAND = ("vcgencmd", "pmic_read_adc")
_LINE = re.compile(r"^\s*(?P<rail>\S+?)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)="
                   r"(?P<value>[-+0-9.eE]+)(?P<unit>[AV])\s*$")
#: unverified third-party fit of PMIC sum to wall power: (scale, offset W).
WALL_FIT = (1.1451, 0.5879)


def parse_pmic_adc(text: str) -> dict[str, tuple[float, float]]:
    """``vcgencmd pmic_read_adc`` output -> {rail: (volts, amps)} for rails with both."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        (amps if m["kind"] == "A" else volts)[m["rail"]] = float(m["value"])
    return {r: (volts[r], amps[r]) for r in sorted(amps) if r in volts}


def rails_power(rails: dict[str, tuple[float, float]]) -> float:
    """Sum of V x I, watts."""
    return sum(v * a for v, a in rails.values())


Runner = Callable[[Sequence[str]], str]


def _run(cmd: Sequence[str]) -> str:
    if shutil.which(cmd[0]) is None:
        raise MeterError(f"{cmd[0]} not found: the PMIC meter needs a Raspberry Pi 5 with "
                         f"vcgencmd (Raspberry Pi OS package raspi-utils)")
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MeterError(f"{' '.join(cmd)} failed: {err}") from err
    if out.returncode != 0:
        raise MeterError(f"{' '.join(cmd)} exited {out.returncode}: "
                         f"{(out.stderr or out.stdout).strip()}")
    return out.stdout


class PmicMeter(PowerMeter):
    """Pi 5 power from the PMIC rails.

    Args:
        command: the command to run (injectable: tests point it at a script).
        runner: how to run it (default: subprocess, errors translated).
        fit: apply the unverified wall-power fit.
    """

    name = "pmic"
    rel_uncertainty = 0.10
    scope = "board (PMIC rails)"

    @classmethod
    def from_spec(cls, rest: str, options: dict[str, str]) -> PmicMeter:
        """``pmic`` (registry.meters): Raspberry Pi 5, ``vcgencmd pmic_read_adc``."""
        return cls()

    def __init__(self, command: Sequence[str] = COMMAND, runner: Optional[Runner] = None,
                 fit: bool = False, interval: float = 0.5) -> None:
        super().__init__(interval)
        self.command = tuple(command)
        self._runner = runner or _run
        self.fit = fit
        self.watts()  # fail now, not in the middle of a benchmark

    def watts(self) -> float:
        rails = parse_pmic_adc(self._runner(self.command))
        if not rails:
            raise MeterError(f"{' '.join(self.command)}: no rail with both current and voltage "
                             f"in its output (not a Raspberry Pi 5?)")
        w = rails_power(rails)
        return w * WALL_FIT[0] + WALL_FIT[1] if self.fit else w
