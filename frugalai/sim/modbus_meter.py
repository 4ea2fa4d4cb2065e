"""Emulated Eastron meters answering Modbus RTU requests on a real pty (one RS-485 bus).

Several slave ids share the bus, as on a real RS-485 line: each answers only its own id and a
request for an unknown id gets silence. The values come from a :class:`HouseholdProfile` (power,
current, a running energy index) at the emulator's clock.

Faults for the tests: ``silent`` ids never answer (a dead meter), ``corrupt_rate`` flips a bit in
a fraction of the answers, a register past the meter's input range is answered with exception 2 (illegal
data address).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from typing import Optional

import numpy as np

from frugalai.errors import DecodeError
from frugalai.protocols import modbus as mb
from frugalai.sim.clock import SimClock
from frugalai.sim.device import EmulatedDevice
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.pty import PtyPort

#: The emulated meter's input registers end here: quantities it does not model read as 0.0 below
#: it, and a read past it gets exception 2, as for a register the meter does not have.
INPUT_REGISTER_END = 0x0180


class ModbusMeterEmulator(EmulatedDevice):
    """Answers function 0x04 reads for ``slaves`` with SDM630-map values."""

    thread_name = "modbus-meter"

    def __init__(
        self,
        profile: HouseholdProfile,
        slaves: Iterable[int] = (1,),
        clock: Optional[SimClock] = None,
        port: Optional[PtyPort] = None,
        silent: Iterable[int] = (),
        corrupt_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.profile = profile
        self.slaves = set(slaves)
        self.silent = set(silent)
        self.clock: SimClock = clock or SimClock(time.time(), 1.0)
        self.port = port or PtyPort()
        self.corrupt_rate = corrupt_rate
        self.requests = 0
        self.answers = 0
        self.exceptions = 0
        self.corrupted = 0
        self.energy_kwh = {s: 1000.0 + 100.0 * s for s in self.slaves}
        self._last_ts: Optional[float] = None
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._buf = bytearray()

    @property
    def path(self) -> str:
        return self.port.path

    def registers(self, slave: int, ts: float) -> dict[int, float]:
        """The meter's float registers (PDU address -> value) at simulated time ``ts``."""
        watts = self.profile.power(ts) * (1.0 + 0.1 * (slave - 1))
        if self._last_ts is not None and ts > self._last_ts:
            for s in self.energy_kwh:
                self.energy_kwh[s] += watts * (ts - self._last_ts) / 3.6e6
        self._last_ts = ts
        volts = 230.0 + 2.0 * math.sin(ts / 600.0)
        amps = watts / volts
        energy = self.energy_kwh[slave]
        return {
            0x0000: volts, 0x0002: volts, 0x0004: volts, 0x0006: amps, 0x0008: 0.0, 0x000A: 0.0,
            0x000C: watts, 0x000E: 0.0, 0x0010: 0.0, 0x0012: watts / 0.95, 0x0018: watts * 0.33,
            0x001E: 0.95, 0x0034: watts, 0x0046: 50.0, 0x0048: energy, 0x004A: 0.0, 0x0156: energy,
        }

    def answer(self, request: bytes) -> Optional[bytes]:
        """The bytes the bus carries back for one request (None: silence)."""
        try:
            req = mb.parse_read_request(request)
        except DecodeError:
            return None  # a real slave ignores a frame with a bad CRC
        if req.slave not in self.slaves or req.slave in self.silent:
            return None
        regs = self.registers(req.slave, self.clock())
        words: list[int] = []
        for addr in range(req.address, req.address + req.count, 2):
            if addr >= INPUT_REGISTER_END or req.count % 2:
                self.exceptions += 1
                return mb.build_exception(req.slave, req.function, 2)
            words += mb.float32_to_registers(regs.get(addr, 0.0))
        frame = mb.build_read_response(req.slave, words, req.function)
        if self.corrupt_rate > 0 and self._rng.random() < self.corrupt_rate:
            self.corrupted += 1
            data = bytearray(frame)
            data[int(self._rng.integers(3, len(data)))] ^= 0x10
            frame = bytes(data)
        self.answers += 1
        return frame

    def run(self) -> None:
        """Serve requests until stopped; a request is 8 bytes (reads only)."""
        while not self._stop.is_set():
            if not self.port.plugged:
                self._buf.clear()
                self._stop.wait(0.05)
                continue
            chunk = self.port.read(timeout=0.05)
            if not chunk:
                self._buf.clear()  # silence ends a frame (Modbus RTU's 3.5-character rule)
                continue
            self._buf += chunk
            while len(self._buf) >= 8:
                request = bytes(self._buf[:8])
                del self._buf[:8]
                self.requests += 1
                reply = self.answer(request)
                if reply is not None:
                    self.port.write(reply)
