"""An emulated Linky meter writing TIC frames onto a real pty.

At ``speed=1`` it paces bytes like the real 1200-baud link (7E1: 10 bits a character, so 120
characters a second) and sends a frame as soon as the previous one ends. With ``speed > 1`` a
:class:`~frugalai.sim.clock.SimClock` compresses time: one frame every ``frame_period_s`` of
simulated time, written whole, so a simulated day fits in seconds.

Historique frames carry ADCO, OPTARIF BASE, ISOUSC, BASE (Wh index), PTEC, IINST, IMAX, PAPP,
HHPHC and MOTDETAT, as a Linky in historique mode with a BASE contract does. Standard frames
(``mode="standard"``, 9600 baud, HT separators) carry ADSC, VTIC, DATE (horodate with the season
flag), NGTF, LTARF, EAST, EASF01, IRMS1, URMS1, PREF, PCOUP, SINSTS, SMAXSN (with horodate),
STGE and NTARF.
"""

from __future__ import annotations

import threading
import time
from typing import Optional

import numpy as np

from frugalai.protocols.parity import with_parity
from frugalai.protocols.tic import ETX, HISTORIQUE, STANDARD, STX, encode_frame, encode_group
from frugalai.sim.clock import SimClock
from frugalai.sim.device import EmulatedDevice
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.pty import PtyPort

BAUD_HISTORIQUE = 1200
BAUD_STANDARD = 9600
BITS_PER_CHAR = 10  # start + 7 data + parity + stop


def _is_summer(ts: float) -> bool:
    """French summer time (CEST): last Sunday of March 01:00 UTC to last Sunday of October."""
    year = time.gmtime(ts).tm_year

    def last_sunday(month: int) -> float:
        import calendar

        last_day = calendar.monthrange(year, month)[1]
        weekday = calendar.weekday(year, month, last_day)  # Monday = 0
        return calendar.timegm((year, month, last_day - (weekday + 1) % 7, 1, 0, 0, 0, 0, 0))

    return last_sunday(3) <= ts < last_sunday(10)


class TicMeterEmulator(EmulatedDevice):
    """A Linky in historique (default) or standard mode driven by a :class:`HouseholdProfile`.

    Args:
        profile: the consumption to report.
        clock: simulated clock shared with the gateway (real time when ``speed`` is 1).
        frame_period_s: simulated seconds between frames (real meters: ~1.5 s).
        corrupt_rate: fraction of frames sent with one byte flipped (for error-path demos).
        port: where to write (a new pty when None).
        seed: seeds the corruption.
        wire_parity: write each character with its even parity bit in bit 7, as an 8-bit
            reader sees a real 7E1 line (a gateway that opens the pty at 8N1 checks it in
            software); False writes plain 7-bit characters.
    """

    thread_name = "tic-meter"

    def __init__(
        self,
        profile: HouseholdProfile,
        clock: Optional[SimClock] = None,
        frame_period_s: float = 1.5,
        corrupt_rate: float = 0.0,
        port: Optional[PtyPort] = None,
        adco: str = "031762270346",
        seed: int = 0,
        mode: str = HISTORIQUE,
        wire_parity: bool = True,
    ) -> None:
        if mode not in (HISTORIQUE, STANDARD):
            raise ValueError(f"mode must be historique or standard, got {mode!r}")
        self.mode = mode
        self.baud = BAUD_HISTORIQUE if mode == HISTORIQUE else BAUD_STANDARD
        self.profile = profile
        self.clock: SimClock = clock or SimClock(time.time(), 1.0)
        self.frame_period_s = frame_period_s
        self.corrupt_rate = corrupt_rate
        self.wire_parity = wire_parity
        self.port = port or PtyPort()
        self.adco = adco
        self.index_wh = 7_640_930.0
        self.frames_sent = 0
        self.frames_corrupted = 0
        self.bytes_sent = 0
        self._rng = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._last_ts: Optional[float] = None

    @property
    def path(self) -> str:
        return self.port.path

    def frame_at(self, ts: float) -> bytes:
        """The frame the meter sends at simulated time ``ts`` (advances the energy index)."""
        watts = self.profile.power(ts)
        if self._last_ts is not None:
            self.index_wh += watts * (ts - self._last_ts) / 3600.0
        self._last_ts = ts
        va = round(watts / 0.95 / 10.0) * 10
        if self.mode == STANDARD:
            return self._standard_frame(ts, va)
        groups = [
            ("ADCO", self.adco),
            ("OPTARIF", "BASE"),
            ("ISOUSC", "45"),
            ("BASE", f"{int(self.index_wh):09d}"),
            ("PTEC", "TH.."),
            ("IINST", f"{min(999, round(va / 230)):03d}"),
            ("IMAX", "090"),
            ("PAPP", f"{min(99999, va):05d}"),
            ("HHPHC", "A"),
            ("MOTDETAT", "000000"),
        ]
        return encode_frame(groups, HISTORIQUE)

    def _standard_frame(self, ts: float, va: int) -> bytes:
        summer = _is_summer(ts)
        local = time.gmtime(ts + (7200 if summer else 3600))
        horodate = ("E" if summer else "H") + time.strftime("%y%m%d%H%M%S", local)
        index = int(self.index_wh)
        volts = 230
        parts = [
            encode_group("ADSC", self.adco, STANDARD),
            encode_group("VTIC", "02", STANDARD),
            encode_group("DATE", "", STANDARD, horodate=horodate),
            encode_group("NGTF", "      BASE      ", STANDARD),
            encode_group("LTARF", "      BASE      ", STANDARD),
            encode_group("EAST", f"{index:09d}", STANDARD),
            encode_group("EASF01", f"{index:09d}", STANDARD),
            encode_group("IRMS1", f"{min(999, round(va / volts)):03d}", STANDARD),
            encode_group("URMS1", f"{volts:03d}", STANDARD),
            encode_group("PREF", "09", STANDARD),
            encode_group("PCOUP", "09", STANDARD),
            encode_group("SINSTS", f"{min(99999, va):05d}", STANDARD),
            encode_group("SMAXSN", f"{min(99999, va):05d}", STANDARD, horodate=horodate),
            encode_group("STGE", "003A0001", STANDARD),
            encode_group("NTARF", "01", STANDARD),
        ]
        return bytes([STX]) + b"".join(parts) + bytes([ETX])

    def _maybe_corrupt(self, frame: bytes) -> bytes:
        if self.corrupt_rate <= 0 or self._rng.random() >= self.corrupt_rate:
            return frame
        self.frames_corrupted += 1
        data = bytearray(frame)
        # Flip the lowest bit of one byte inside the frame (not STX/ETX): the sum changes by
        # one, so a checksum or the LF/CR framing always catches it.
        pos = int(self._rng.integers(1, len(data) - 1))
        data[pos] ^= 0x01
        return bytes(data)

    def send_one(self, ts: float) -> None:
        """Build and write one frame for ``ts``, paced like the real link when speed is 1."""
        frame = self._maybe_corrupt(self.frame_at(ts))
        if self.wire_parity:  # after the corruption: a bad character with a good parity bit
            frame = with_parity(frame, "E")
        if self.clock.speed <= 1.0:
            chunk = self.baud // BITS_PER_CHAR // 10  # 100 ms of line time
            for i in range(0, len(frame), chunk):
                self.port.write(frame[i : i + chunk])
                if self._stop.wait(chunk * BITS_PER_CHAR / self.baud):
                    return
        else:
            self._lockstep_sent(len(frame), ts)  # in bytes (the source counts bytes read),
            self.port.write(frame)                # before the gateway can read them
        self.frames_sent += 1
        self.bytes_sent += len(frame)

    def run(self, until: Optional[float] = None) -> None:
        """Send frames until stopped (or until simulated time ``until``)."""
        ts = self.clock()
        while not self._stop.is_set() and (until is None or ts < until):
            self._lockstep_wait()
            self.send_one(ts)
            ts += self.frame_period_s
            delay = self.clock.real_time_of(ts) - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break

    def start(self, until: Optional[float] = None) -> TicMeterEmulator:
        """Run in a daemon thread (until simulated time ``until``)."""
        self._start_thread(until)
        return self
