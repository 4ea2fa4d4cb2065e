"""The meter interface: ``read()`` gives joules since the meter was opened.

Two kinds exist. Energy counters (RAPL, the CPU-time estimate) are read directly. Power meters
(hwmon, INA219, PMIC, USB meters) give watts; :class:`PowerMeter` integrates them (trapezoids)
on a background thread so a 10 s window of inferences gets a sample every ``interval`` seconds
without the workload having to poll. Every meter says what it is (``describe()``), whether its
figure is measured or estimated, and its relative uncertainty, so a result never travels without
the method that produced it.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl

from frugalai import registry
from frugalai.errors import ConfigError, FrugalError


class MeterError(FrugalError, OSError):
    """A power meter cannot be opened or read (no device, no permission, bad reply)."""


class Meter(ABC):
    """A source of energy readings.

    Attributes:
        name: short name (``rapl``, ``estimate``...).
        estimated: True when the figure is a model (CPU time x power), not a measurement.
        rel_uncertainty: relative standard uncertainty of an energy difference (0.3 = 30 %).
        scope: what is measured (``process``, ``package``, ``board``, ``usb-port``...): a
            process-scoped meter sees only this process; a board meter sees everything, hence
            the idle baseline.
    """

    name = "meter"
    estimated = False
    rel_uncertainty = 0.05
    scope = "board"

    @abstractmethod
    def read(self) -> float:
        """Joules since the meter was opened (monotonic, non-decreasing)."""

    def describe(self) -> dict[str, Any]:
        """What this meter is, for results files. ``figure_meter`` is the short note every
        µJ figure carries next to it (estimated or measured, and by what)."""
        return {"meter": self.name, "estimated": self.estimated, "scope": self.scope,
                "rel_uncertainty": self.rel_uncertainty,
                "figure_meter": (f"estimate: {self.name}" if self.estimated
                                 else f"measured: {self.name} ({self.scope})")}

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release the device; safe to call twice."""

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PowerMeter(Meter):
    """A meter that gives instantaneous watts; energy is integrated from samples.

    Args:
        interval: seconds between samples of the background integrator.
        clock: monotonic clock (injectable for tests).
    """

    def __init__(self, interval: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._joules = 0.0
        self._last: Optional[tuple[float, float]] = None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.samples = 0

    @abstractmethod
    def watts(self) -> float:
        """One instantaneous power sample, W."""

    def sample(self) -> float:
        """Take one sample and add the trapezoid since the previous one; return the watts."""
        w = self.watts()
        t = self._clock()
        with self._lock:
            if self._last is not None:
                t0, w0 = self._last
                self._joules += (t - t0) * (w + w0) / 2.0
            self._last = (t, w)
            self.samples += 1
        return w

    def start(self) -> PowerMeter:
        """Start the background integrator (idempotent)."""
        if self._thread is None:
            self.sample()
            self._thread = threading.Thread(target=self._run, name=f"meter-{self.name}",
                                            daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except MeterError:
                # read() re-raises on the caller's thread; keep the last good value here.
                pass

    def read(self) -> float:
        if self._thread is None:
            self.start()
        self.sample()
        with self._lock:
            return self._joules

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None


def _options(query: str) -> dict[str, str]:
    return dict(parse_qsl(query, keep_blank_values=True))


def open_meter(spec: str) -> Meter:
    """Build a meter from a spec ``NAME[:rest][?options]`` (see the package docstring).

    ``NAME`` is looked up in :data:`frugalai.registry.meters` (built-ins and plugins of the
    entry-point group ``frugalai.meters``); its factory is called ``factory(rest, options)``.
    An unknown name is a ConfigError listing the known ones.
    """
    kind, _, rest = spec.partition(":")
    rest, _, query = rest.partition("?")
    try:
        factory = registry.meters.get(kind, key="meter")
    except ConfigError as err:
        raise ConfigError(f"{err.reason} (in meter spec {spec!r}: NAME[:rest][?options])",
                          key="meter") from None
    meter: Meter = factory(rest, _options(query))
    return meter
