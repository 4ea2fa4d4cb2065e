"""No meter: energy estimated from this process's CPU time x a board's per-core active power.

Most gateways have no power monitor. The estimate counts only what the work adds: the CPU
seconds this process spent (user + system, all threads, ``time.process_time``) times the power
one busy core draws above idle on the named board. It is always labelled ``estimated`` with the
profile and its source, and carries a large uncertainty (30 % on the Pi profiles, 50 % on the
generic x86 one): it is a planning figure, not a measurement.

Per-core figures are derived as (power under an all-core stress - typical idle) / cores from the
sources named in each profile. What this does not do (and codecarbon does on a Pi: threads x 4 W
of "TDP", 16 W for a board that draws 6): invent a TDP.

CPU seconds are those of the machine the estimate runs on. Re-using x86 CPU seconds with a Pi
profile gives the energy the same CPU time would cost on the Pi; a Cortex-A72 needs several times
more CPU time for the same work, which :attr:`BoardProfile.slowdown_vs_x86` states as an
assumption (reported apart, never folded in silently).
"""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

from frugalai.energy.base import Meter, MeterError


@dataclass(frozen=True)
class BoardProfile:
    """Power figures of a board.

    Attributes:
        name: profile name (``pi-4b``).
        cores: CPU cores.
        cpu: core type, for the report.
        idle_w: typical idle/light-load board power, W.
        active_w_per_core: extra W of one fully busy core above idle.
        rel_uncertainty: relative uncertainty of ``active_w_per_core``.
        slowdown_vs_x86: assumed CPU-time ratio of this core vs a current x86 core on the same
            small-model inference (1.0 for x86); an assumption, shown as such.
        source: where the figures come from.
    """

    name: str
    cores: int
    cpu: str
    idle_w: float
    active_w_per_core: float
    rel_uncertainty: float
    slowdown_vs_x86: float
    source: str


PROFILES: dict[str, BoardProfile] = {p.name: p for p in (
    BoardProfile("pi-zero-2w", 4, "Cortex-A53 1.0 GHz", 0.6, 0.55, 0.4, 8.0,
                 "derived: ~0.6 W idle, ~2.8 W 4-core stress (third-party measurements, "
                 "unverified)"),
    BoardProfile("pi-3b+", 4, "Cortex-A53 1.4 GHz", 2.3, 0.65, 0.3, 6.0,
                 "derived: ~2.3 W idle, ~4.9 W 4-core stress (third-party measurements, "
                 "unverified)"),
    BoardProfile("pi-4b", 4, "Cortex-A72 1.5-1.8 GHz", 3.1, 0.8, 0.3, 4.0,
                 "derived: 3.1 W typical bare board, 6.1-6.4 W stress (Raspberry Pi docs) "
                 "-> 0.75-0.8 W per busy core"),
    BoardProfile("pi-5", 4, "Cortex-A76 2.4 GHz", 4.1, 0.95, 0.4, 2.0,
                 "derived: 4.1 W typical (Raspberry Pi docs), ~7.9 W under load (one "
                 "third-party measurement)"),
    BoardProfile("generic-x86", 0, "x86-64", 0.0, 4.0, 0.5, 1.0,
                 "assumption: 15-65 W TDP parts over 4-8 cores -> ~2-8 W per busy core; "
                 "replace with RAPL when readable"),
)}

DT_MODEL = "/proc/device-tree/model"
_DT_NAMES = (("Raspberry Pi Zero 2", "pi-zero-2w"), ("Raspberry Pi 3 Model B Plus", "pi-3b+"),
             ("Raspberry Pi 4", "pi-4b"), ("Raspberry Pi 5", "pi-5"))


def detect_board(model_path: Union[str, Path] = DT_MODEL,
                 machine: Optional[str] = None) -> BoardProfile:
    """The profile of this board, from the device tree model string, else the CPU arch."""
    try:
        model = Path(model_path).read_bytes().rstrip(b"\x00").decode(errors="replace")
    except OSError:
        model = ""
    for prefix, name in _DT_NAMES:
        if model.startswith(prefix):
            return PROFILES[name]
    arch = machine or platform.machine()
    if arch.lower() in ("x86_64", "amd64", "i686", "i386"):
        return PROFILES["generic-x86"]
    raise MeterError(f"cannot tell the board (device tree model {model!r}, arch {arch}); name a "
                     f"profile: {', '.join(PROFILES)}")


def get_profile(name: Optional[str] = None) -> BoardProfile:
    """A named profile, or the detected one when ``name`` is None/``auto``."""
    if name in (None, "", "auto"):
        return detect_board()
    try:
        return PROFILES[str(name)]
    except KeyError:
        raise MeterError(f"unknown board profile {name!r}; known: {', '.join(PROFILES)}"
                         ) from None


class EstimateMeter(Meter):
    """Joules = CPU seconds of this process since opening x active W per core of the profile."""

    estimated = True
    scope = "process"

    def __init__(self, profile: BoardProfile,
                 cpu_clock: Callable[[], float] = time.process_time) -> None:
        self.profile = profile
        self.name = f"estimate:{profile.name}"
        self.rel_uncertainty = profile.rel_uncertainty
        self._cpu = cpu_clock
        self._cpu0 = cpu_clock()

    @classmethod
    def from_spec(cls, rest: str, options: dict[str, str]) -> EstimateMeter:
        """``estimate[:BOARD]`` (registry.meters): the board profile, detected by default."""
        return cls(get_profile(rest or None))

    def cpu_seconds(self) -> float:
        return self._cpu() - self._cpu0

    def read(self) -> float:
        return self.cpu_seconds() * self.profile.active_w_per_core

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "label": f"estimated ({self.profile.name} profile)",
                "profile": asdict(self.profile),
                "figure_meter": f"estimate: CPU time x {self.profile.active_w_per_core:g} W "
                                f"({self.profile.name} profile, one busy core), not measured"}
