"""An emulated firmware_bridge sensor node writing frames onto a real pty.

``kind="coastal"`` sends water_level_m (a semi-diurnal tide plus noise), pressure_hpa,
temperature_c and battery_v; ``kind="energy"`` sends energy_total_wh (a pulse counter driven by
a household profile), power_w and battery_v. ``drop_rate`` skips packets (radio losses, visible
to the gateway as sequence gaps) and ``corrupt_rate`` flips a bit (CRC failures).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Optional

import numpy as np

from frugalai.protocols import frames
from frugalai.sim.clock import SimClock
from frugalai.sim.device import EmulatedDevice
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.pty import PtyPort

M2_PERIOD_S = 12.42 * 3600


class FbNodeEmulator(EmulatedDevice):
    """One node sending a packet every ``period_s`` simulated seconds."""

    thread_name = "fb-node"

    def __init__(
        self,
        node_id: int = 12,
        kind: str = "coastal",
        clock: Optional[SimClock] = None,
        period_s: float = 360.0,
        port: Optional[PtyPort] = None,
        drop_rate: float = 0.0,
        corrupt_rate: float = 0.0,
        profile: Optional[HouseholdProfile] = None,
        seed: int = 0,
    ) -> None:
        if kind not in ("coastal", "energy"):
            raise ValueError(f"kind must be coastal or energy, got {kind!r}")
        self.node_id = node_id
        self.kind = kind
        self.clock: SimClock = clock or SimClock(time.time(), 1.0)
        self.period_s = period_s
        self.port = port or PtyPort()
        self.drop_rate = drop_rate
        self.corrupt_rate = corrupt_rate
        self.profile = profile or HouseholdProfile(seed=seed)
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.corrupted = 0
        self.energy_wh = 0.0
        self._last_ts: Optional[float] = None
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def path(self) -> str:
        return self.port.path

    def packet_at(self, ts: float) -> frames.Packet:
        """The packet for simulated time ``ts`` (advances seq and the energy counter)."""
        if self.kind == "coastal":
            level = 0.7 * math.cos(2 * math.pi * ts / M2_PERIOD_S) + float(self._rng.normal(0, 0.01))
            readings: tuple[tuple[str, float], ...] = (
                ("water_level_m", round(level, 3)),
                ("pressure_hpa", round(1013.0 + 5 * math.sin(ts / 86400.0), 2)),
                ("temperature_c", round(12.0 + float(self._rng.normal(0, 0.2)), 2)),
                ("battery_v", 3.9),
            )
        else:
            watts = self.profile.power(ts)
            if self._last_ts is not None:
                self.energy_wh += watts * (ts - self._last_ts) / 3600.0
            self._last_ts = ts
            readings = (("energy_total_wh", float(int(self.energy_wh))), ("power_w", round(watts, 1)),
                        ("battery_v", 4.1))
        pkt = frames.Packet(self.node_id, self.seq, readings)
        self.seq = (self.seq + 1) & 0xFFFF
        return pkt

    def send_one(self, ts: float) -> None:
        frame = frames.encode_frame(self.packet_at(ts))
        if self.drop_rate > 0 and self._rng.random() < self.drop_rate:
            self.dropped += 1
            return
        if self.corrupt_rate > 0 and self._rng.random() < self.corrupt_rate:
            data = bytearray(frame)
            pos = int(self._rng.integers(0, len(data) - 1))
            data[pos] = data[pos] ^ 0x01 or 0x02  # never create a delimiter
            frame = bytes(data)
            self.corrupted += 1
        self.port.write(frame)
        self.sent += 1

    def run(self) -> None:
        ts = self.clock()
        while not self._stop.is_set():
            self.send_one(ts)
            ts += self.period_s
            delay = self.clock.real_time_of(ts) - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
