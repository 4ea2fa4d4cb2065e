"""An emulated coastal sensor node: a tide gauge that transmits its water level over LoRa.

The node is the far end of the radio link: it does not own a pty. It hands each packet to the
gateway's emulated modem (``modem.inject``) as the air would, with an RSSI/SNR typical of a
node a few kilometres away, at one packet every ``period_s`` of simulated time. The payload is
built by ``encode`` (the firmware_bridge payload in the demo), so the node knows nothing of
codecs.

Water level: a seeded astronomical tide (M2, S2, N2, K1, O1 constituents, amplitudes close to
Providence RI, NOAA 8454000, in m above MLLW) plus an optional storm surge, or a replay of real
hourly observations (``from_hourly``) interpolated to the node's sampling period.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Callable, Optional

import numpy as np

from frugalai.sim.clock import SimClock
from frugalai.sim.device import Emulator
from frugalai.sim.lora_modem import ModemEmulator

#: (period h, amplitude m, phase rad): the main constituents at Providence (approximate).
CONSTITUENTS = ((12.4206, 0.63, 0.0), (12.0, 0.13, 1.1), (12.6583, 0.15, 2.3),
                (23.9345, 0.07, 0.4), (25.8193, 0.05, 1.9))
MEAN_LEVEL_M = 0.78


class TideModel:
    """Astronomical tide plus a Gaussian storm surge (``surge_m`` peaking at ``surge_at``).

    Args:
        base: the astronomical tide, UNIX s -> m (a site's fitted tide, e.g. the one in the
            coastal model's card); by default the built-in Providence-like constituents.
    """

    def __init__(self, surge_m: float = 0.0, surge_at: float = 0.0, surge_width_h: float = 6.0,
                 noise_m: float = 0.01, seed: int = 0,
                 base: Optional[Callable[[float], float]] = None) -> None:
        self.base = base
        self.surge_m = surge_m
        self.surge_at = surge_at
        self.surge_width_h = surge_width_h
        self.noise_m = noise_m
        self._rng = np.random.default_rng(seed)

    def expected(self, ts: float) -> float:
        if self.base is not None:
            level = self.base(ts)
        else:
            h = ts / 3600.0
            level = MEAN_LEVEL_M + sum(a * math.cos(2 * math.pi * h / p + ph)
                                       for p, a, ph in CONSTITUENTS)
        if self.surge_m:
            dh = (ts - self.surge_at) / 3600.0
            level += self.surge_m * math.exp(-0.5 * (dh / self.surge_width_h) ** 2)
        return level

    def __call__(self, ts: float) -> float:
        return self.expected(ts) + float(self._rng.normal(0.0, self.noise_m))


class HourlyReplay:
    """Real hourly levels (``times`` in UNIX s, ``levels`` in m), linearly interpolated."""

    def __init__(self, times: Sequence[float], levels: Sequence[float]) -> None:
        self.times = np.asarray(times, dtype=float)
        self.levels = np.asarray(levels, dtype=float)

    def __call__(self, ts: float) -> float:
        return float(np.interp(ts, self.times, self.levels))


def fb_encoder(node_id: int = 7) -> Callable[[float, float], bytes]:
    """The node firmware's payload encoder: one bare firmware_bridge packet per level reading,
    its sequence number +1 each (wrapping at 65536)."""
    from frugalai.protocols.frames import Packet, encode_packet

    seq = [0]

    def encode(ts: float, level_m: float) -> bytes:
        seq[0] = (seq[0] + 1) & 0xFFFF
        return encode_packet(Packet(node_id, seq[0], (("water_level_m", level_m),)))

    return encode


class CoastalNode(Emulator):
    """Sends ``encode(level)`` through ``modem`` every ``period_s`` simulated seconds.

    Args:
        corrupt_rate: fraction of packets garbled on the air (the gateway's radio CRC rejects
            them, so the modem reports a receive error).
    """

    def __init__(self, modem: ModemEmulator, encode: Callable[[float, float], bytes],
                 clock: SimClock, level: Optional[Callable[[float], float]] = None,
                 period_s: float = 600.0, rssi: float = -104.0, snr: float = -6.0,
                 corrupt_rate: float = 0.0, seed: int = 0) -> None:
        self.modem = modem
        self.encode = encode
        self.clock: SimClock = clock
        self.level = level or TideModel(seed=seed)
        self.period_s = period_s
        self.rssi, self.snr = rssi, snr
        self.corrupt_rate = corrupt_rate
        self.packets_sent = 0
        self.packets_corrupted = 0
        self.sent: list[tuple[float, float]] = []
        self._rng = np.random.default_rng(seed + 1)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def send_one(self, ts: float) -> None:
        value = self.level(ts)
        payload = self.encode(ts, value)
        self.packets_sent += 1
        self.sent.append((ts, value))
        self._lockstep_sent(1, ts)  # in packets: decoded or rejected, the gateway handles each
        if self.corrupt_rate > 0 and self._rng.random() < self.corrupt_rate:
            # garbled on the air: the receiver's LoRa CRC rejects it, the modem reports it
            self.packets_corrupted += 1
            self.modem.inject_crc_error()
            return
        rssi = self.rssi + float(self._rng.normal(0, 3))
        snr = self.snr + float(self._rng.normal(0, 1.5))
        self.modem.inject(payload, round(rssi), round(snr))

    def run(self, until: Optional[float] = None) -> None:
        ts = self.clock()
        while not self._stop.is_set() and (until is None or ts < until):
            self._lockstep_wait()
            self.send_one(ts)
            ts += self.period_s
            delay = self.clock.real_time_of(ts) - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break

    def start(self, until: Optional[float] = None) -> CoastalNode:
        """Run in a daemon thread (until simulated time ``until``)."""
        self._start_thread(until)
        return self
