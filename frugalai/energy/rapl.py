"""RAPL energy counters through Linux powercap (Intel, and AMD since Linux 5.8).

Layout read::

    /sys/class/powercap/intel-rapl:0/          name = package-0
        energy_uj                              counter, µJ, wraps at max_energy_range_uj
        max_energy_range_uj
        intel-rapl:0:0/  name = core           (nested in package-0: never add it to it)
    /sys/class/powercap/intel-rapl:1/          name = psys (platform, contains the packages)

By default every top-level ``package-*`` domain is summed (one per socket). Naming domains
(``rapl:psys`` or ``rapl:core,dram``) picks them anywhere in the tree; asking for a domain
together with one it contains is refused, since the sum would count the inner one twice.

Since CVE-2020-8694 (PLATYPUS) ``energy_uj`` is readable by root only; the error says so and
how to grant read access. A counter that goes backwards has wrapped: the delta is
``new + max_energy_range_uj - old``. At 100 W a 2^32 µJ range wraps in 43 s, so the counter is
sampled at least every ``interval`` seconds by a background thread to never miss a wrap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from frugalai.energy.base import Meter, MeterError

POWERCAP = "/sys/class/powercap"
PERMISSION_HINT = (
    "RAPL energy counters are readable by root only since Linux 5.10 / CVE-2020-8694 "
    "(PLATYPUS); run as root or grant read access, e.g. "
    "`sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*/*/energy_uj` (or a udev rule), or use --meter estimate")


@dataclass
class Domain:
    """One RAPL domain and its running total."""

    path: Path
    name: str
    max_range_uj: int
    last_uj: int = 0
    total_uj: int = 0
    wraps: int = 0

    def update(self, now_uj: int) -> None:
        delta = now_uj - self.last_uj
        if delta < 0:
            delta += self.max_range_uj
            self.wraps += 1
        self.total_uj += delta
        self.last_uj = now_uj


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip())
    except PermissionError as err:
        raise MeterError(f"{path}: permission denied. {PERMISSION_HINT}") from err
    except FileNotFoundError as err:
        raise MeterError(f"{path}: missing; not a RAPL powercap domain") from err
    except (OSError, ValueError) as err:
        raise MeterError(f"{path}: unreadable RAPL counter: {err}") from err


def find_domains(root: Union[str, Path] = POWERCAP) -> list[tuple[Path, str]]:
    """Every RAPL domain under ``root`` as (path, name), outer domains first."""
    root = Path(root)
    if not root.is_dir():
        raise MeterError(f"{root}: no powercap interface (not Linux, or the intel_rapl / "
                         f"amd_energy driver is not loaded: `modprobe intel_rapl_msr`)")
    found = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(("intel-rapl:", "amd-rapl:")) and (p / "name").is_file():
            found.append((p.resolve(), (p / "name").read_text().strip()))
    if not found:
        raise MeterError(f"{root}: no RAPL domain (no intel-rapl:* entry); this CPU or "
                         f"kernel does not expose RAPL")
    return found


class RaplMeter(Meter):
    """Sum of chosen RAPL domains, wrap-around handled.

    Args:
        root: powercap directory (a fake tree in tests).
        domains: domain names to sum; default every top-level ``package-*``.
        interval: seconds between background samples (guards against missed wraps); 0 = none.
    """

    name = "rapl"
    rel_uncertainty = 0.05
    scope = "package"

    @classmethod
    def from_spec(cls, rest: str, options: dict[str, str]) -> RaplMeter:
        """``rapl[:DOMAIN,...]`` (registry.meters): package domains by default."""
        return cls(domains=tuple(d for d in rest.split(",") if d) or None)

    def __init__(self, root: Union[str, Path] = POWERCAP,
                 domains: Optional[tuple[str, ...]] = None, interval: float = 1.0) -> None:
        all_domains = find_domains(root)
        if domains is None:
            chosen = [(p, n) for p, n in all_domains
                      if n.startswith("package") and p.name.count(":") == 1]
            if not chosen:
                raise MeterError(f"{root}: no package-* domain; available: "
                                 f"{sorted({n for _, n in all_domains})}")
        else:
            chosen = [(p, n) for p, n in all_domains if n in domains]
            missing = sorted(set(domains) - {n for _, n in chosen})
            if missing:
                raise MeterError(f"RAPL domain(s) {missing} not found; available: "
                                 f"{sorted({n for _, n in all_domains})}")
            for p, n in chosen:
                for q, m in chosen:
                    if p != q and (q.name.startswith(p.name + ":") or n == "psys"):
                        raise MeterError(f"RAPL domains {n!r} and {m!r} overlap ({n} contains "
                                         f"{m}); summing them would count {m} twice")
        self.domains = [Domain(p, n, _read_int(p / "max_energy_range_uj")) for p, n in chosen]
        for d in self.domains:
            d.last_uj = _read_int(d.path / "energy_uj")
        self.scope = "+".join(d.name for d in self.domains)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        if interval > 0:
            self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True,
                                            name="meter-rapl")
            self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.read()
            except MeterError:
                pass

    def read(self) -> float:
        with self._lock:
            for d in self.domains:
                d.update(_read_int(d.path / "energy_uj"))
            return sum(d.total_uj for d in self.domains) / 1e6

    @property
    def wraps(self) -> int:
        return sum(d.wraps for d in self.domains)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
