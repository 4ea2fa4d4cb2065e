"""LoRa time on air and LoRaWAN EU868 payload limits (pure).

Time on air follows Semtech AN1200.13 / the SX127x datasheet::

    Tsym = 2^SF / BW
    Tpreamble = (Npreamble + 4.25) * Tsym
    payloadSymbNb = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR + 4), 0)
    ToA = Tpreamble + payloadSymbNb * Tsym

PL is the PHY payload: for LoRaWAN, application payload + 13 bytes of overhead.

>>> round(time_on_air(23, sf=7) * 1000, 3)      # 10 B of application data at SF7/125
61.696
>>> round(lorawan_time_on_air(10, dr=0) * 1000, 3)
1482.752
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

LORAWAN_OVERHEAD = 13  # MHDR 1 + DevAddr 4 + FCtrl 1 + FCnt 2 + FPort 1 + MIC 4

#: EU868 data rate -> (spreading factor, bandwidth Hz); DR7 (FSK) is not LoRa.
EU868_DR = {0: (12, 125_000), 1: (11, 125_000), 2: (10, 125_000), 3: (9, 125_000),
            4: (8, 125_000), 5: (7, 125_000), 6: (7, 250_000)}

#: EU868 maximum application payload N per data rate (no repeater, FOpts empty).
EU868_MAX_PAYLOAD = {0: 51, 1: 51, 2: 51, 3: 115, 4: 242, 5: 242, 6: 242, 7: 242}


def time_on_air(
    phy_payload: int,
    sf: int,
    bw: int = 125_000,
    cr: int = 1,
    preamble: int = 8,
    explicit_header: bool = True,
    crc: bool = True,
    low_dr_optimize: bool | None = None,
) -> float:
    """Seconds on air of one LoRa packet of ``phy_payload`` bytes.

    Args:
        cr: coding rate index 1..4 for 4/5..4/8.
        low_dr_optimize: DE; by default on when a symbol lasts more than 16 ms.
    """
    if not 6 <= sf <= 12:
        raise ValueError(f"sf must be 6..12, got {sf}")
    if not 1 <= cr <= 4:
        raise ValueError(f"cr must be 1..4 (4/5..4/8), got {cr}")
    if phy_payload < 0:
        raise ValueError(f"payload must be >= 0, got {phy_payload}")
    tsym = (1 << sf) / bw
    de = (tsym > 0.016) if low_dr_optimize is None else low_dr_optimize
    ih = 0 if explicit_header else 1
    num = 8 * phy_payload - 4 * sf + 28 + 16 * int(crc) - 20 * ih
    n_payload = 8 + max(math.ceil(num / (4 * (sf - 2 * int(de)))) * (cr + 4), 0)
    return (preamble + 4.25) * tsym + n_payload * tsym


def lorawan_time_on_air(app_payload: int, dr: int = 5) -> float:
    """Seconds on air of a LoRaWAN EU868 uplink carrying ``app_payload`` bytes at ``dr``."""
    if dr not in EU868_DR:
        raise ValueError(f"EU868 LoRa data rates are 0..6, got {dr}")
    sf, bw = EU868_DR[dr]
    return time_on_air(app_payload + LORAWAN_OVERHEAD, sf, bw)


# --- Duty cycle (ETSI EN 300 220 sub-bands) and the daily airtime budget ---------------------

@dataclass(frozen=True)
class SubBand:
    """One ETSI EN 300 220 sub-band: ``[low_hz, high_hz)`` with its duty-cycle limit."""

    name: str
    low_hz: int
    high_hz: int
    duty_cycle: float

    def off_time(self, toa: float) -> float:
        """Seconds the whole sub-band stays silent after ``toa`` seconds on air.

        >>> round(EU868_SUB_BANDS[2].off_time(0.5), 3)   # 0.5 s at 1 %
        49.5
        """
        return toa / self.duty_cycle - toa


#: EU868 sub-bands (LoRaMac-node RegionEU868.c, lorawan-stack eu_863_870.go).
EU868_SUB_BANDS = (
    SubBand("K", 863_000_000, 865_000_000, 0.001),
    SubBand("L", 865_000_000, 868_000_000, 0.01),
    SubBand("M", 868_000_000, 868_600_000, 0.01),   # 868.1 / 868.3 / 868.5: default channels
    SubBand("N", 868_700_000, 869_200_000, 0.001),
    SubBand("P", 869_400_000, 869_650_000, 0.1),    # RX2 869.525
    SubBand("Q", 869_700_000, 870_000_000, 0.01),
)

#: The three EU868 default channels every LoRaWAN device starts with.
EU868_DEFAULT_CHANNELS = (868_100_000, 868_300_000, 868_500_000)


def sub_band(freq_hz: int, bands: tuple[SubBand, ...] = EU868_SUB_BANDS) -> SubBand:
    """The sub-band holding ``freq_hz``; ValueError outside every band (not allowed to emit).

    >>> sub_band(868_100_000).name, sub_band(869_525_000).duty_cycle
    ('M', 0.1)
    """
    for band in bands:
        if band.low_hz <= freq_hz < band.high_hz:
            return band
    raise ValueError(f"{freq_hz} Hz is in no EU868 sub-band (863-870 MHz, gaps excluded)")


class DutyCycle:
    """Per-sub-band duty-cycle enforcement: after ``ToA`` on air a band is off for ToA/DC - ToA.

    Pure: the caller passes ``now`` (any monotonic seconds), so tests need no sleeping.

    >>> dc = DutyCycle()
    >>> dc.record(868_100_000, 0.5, now=100.0)
    >>> dc.wait_s(868_300_000, now=100.0), dc.wait_s(869_525_000, now=100.0)
    (50.0, 0.0)
    """

    def __init__(self, bands: tuple[SubBand, ...] = EU868_SUB_BANDS) -> None:
        self.bands = bands
        self._free_at: dict[str, float] = {}

    def wait_s(self, freq_hz: int, now: float) -> float:
        """Seconds before ``freq_hz`` may be used again (0 when free now)."""
        band = sub_band(freq_hz, self.bands)
        return max(0.0, self._free_at.get(band.name, 0.0) - now)

    def wait_any_s(self, channels: tuple[int, ...], now: float) -> float:
        """Seconds before at least one of ``channels`` is free (a LoRaWAN stack hops)."""
        return min(self.wait_s(f, now) for f in channels)

    def free_channel(self, channels: tuple[int, ...], now: float) -> int | None:
        """The first channel free now, or None."""
        for f in channels:
            if self.wait_s(f, now) == 0.0:
                return f
        return None

    def record(self, freq_hz: int, toa: float, now: float) -> None:
        """A transmission of ``toa`` seconds started at ``now`` on ``freq_hz``."""
        band = sub_band(freq_hz, self.bands)
        self._free_at[band.name] = max(self._free_at.get(band.name, 0.0),
                                       now + toa / band.duty_cycle)

    def snapshot(self, now: float) -> dict[str, float]:
        """Seconds each silent sub-band must still wait, for a state file (see AirtimeBudget).

        >>> dc = DutyCycle(); dc.record(868_100_000, 0.5, now=100.0); dc.snapshot(now=120.0)
        {'M': 30.0}
        """
        return {name: round(at - now, 3) for name, at in self._free_at.items() if at > now}

    def restore(self, snapshot: dict[str, float], now: float, elapsed_s: float = 0.0) -> None:
        """Take back a :meth:`snapshot` taken ``elapsed_s`` ago.

        >>> dc = DutyCycle(); dc.restore({"M": 30.0}, now=5.0, elapsed_s=10.0)
        >>> dc.wait_s(868_300_000, now=5.0)
        20.0
        """
        known = {band.name for band in self.bands}
        waits = {name: _checked(wait, 0.0, MAX_SILENCE_S, f"duty-cycle wait of band {name!r}")
                 for name, wait in dict(snapshot).items()}
        unknown = set(waits) - known
        if unknown:
            raise ValueError(f"unknown sub-band(s) {sorted(unknown)} in a duty-cycle snapshot")
        for name, wait in waits.items():
            if float(wait) - elapsed_s > 0:
                self._free_at[name] = max(self._free_at.get(name, 0.0),
                                          now + float(wait) - elapsed_s)

    def __repr__(self) -> str:
        return f"DutyCycle({[b.name for b in self.bands]})"


#: The longest LoRa frame EU868 allows (51 B at SF12: 2.79 s) with a wide margin, and the longest
#: sub-band silence it can cause (0.1 % duty cycle: ToA x 999). A state file saying more is
#: corrupt (or forged), not a fact.
MAX_TOA_S = 10.0
MAX_SILENCE_S = MAX_TOA_S * 1000
#: entries a 24-hour budget file can hold: the shortest frames (~23 ms) back to back for 30 s
#: is ~1,300; anything far past that is not a budget file.
MAX_ENTRIES = 100_000


def _checked(value: object, low: float, high: float, what: str) -> float:
    """``value`` as a finite float in [low, high]; ValueError otherwise (NaN, inf, negative...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{what}: {number!r} is outside {low:g}..{high:g}")
    return number


#: The Things Network fair-use policy (forum post /t/1300; check the current TTN docs).
TTN_DAILY_AIRTIME_S = 30.0
TTN_DAILY_DOWNLINKS = 10
DAY_S = 86_400.0


class AirtimeBudget:
    """A rolling 24-hour budget of uplink airtime and downlink count (TTN fair use).

    ``wait_s(toa, now)`` says how long until ``toa`` more seconds fit in the last 24 h: the
    oldest transmissions leave the window one by one. Pure, with ``now`` passed in.

    >>> b = AirtimeBudget(airtime_s=1.0)
    >>> b.record(0.6, now=0.0); b.record(0.3, now=10.0)
    >>> round(b.remaining_s(now=20.0), 3), b.wait_s(0.2, now=20.0)
    (0.1, 86380.0)
    """

    def __init__(self, airtime_s: float = TTN_DAILY_AIRTIME_S,
                 downlinks: int = TTN_DAILY_DOWNLINKS, window_s: float = DAY_S) -> None:
        if airtime_s <= 0:
            raise ValueError(f"airtime budget must be > 0 s, got {airtime_s}")
        self.airtime_s = airtime_s
        self.downlinks = downlinks
        self.window_s = window_s
        self._tx: deque[tuple[float, float]] = deque()
        self._rx: deque[float] = deque()
        self._used = 0.0

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self._tx and self._tx[0][0] <= horizon:
            self._used -= self._tx.popleft()[1]
        while self._rx and self._rx[0] <= horizon:
            self._rx.popleft()
        if not self._tx:
            self._used = 0.0  # no float drift once the window is empty

    def used_s(self, now: float) -> float:
        """Airtime spent in the last 24 h."""
        self._expire(now)
        return self._used

    def remaining_s(self, now: float) -> float:
        return max(0.0, self.airtime_s - self.used_s(now))

    def wait_s(self, toa: float, now: float) -> float:
        """Seconds before ``toa`` fits in the budget (0 now; inf if it never can)."""
        if toa > self.airtime_s:
            return math.inf
        self._expire(now)
        excess = self._used + toa - self.airtime_s
        if excess <= 1e-12:
            return 0.0
        for ts, spent in self._tx:
            excess -= spent
            if excess <= 1e-12:
                return ts + self.window_s - now
        return math.inf  # unreachable: toa <= airtime_s

    def record(self, toa: float, now: float) -> None:
        self._expire(now)
        self._tx.append((now, toa))
        self._used += toa

    def record_downlink(self, now: float) -> None:
        self._expire(now)
        self._rx.append(now)

    def downlinks_used(self, now: float) -> int:
        self._expire(now)
        return len(self._rx)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The window's transmissions as ages (seconds before ``now``), for a state file:
        ages survive a restart, where the monotonic clock they were taken on does not.

        >>> b = AirtimeBudget(airtime_s=1.0); b.record(0.6, now=100.0); b.record_downlink(150.0)
        >>> b.snapshot(now=200.0)
        {'tx': [[100.0, 0.6]], 'rx': [50.0]}
        """
        self._expire(now)
        return {"tx": [[round(now - ts, 3), toa] for ts, toa in self._tx],
                "rx": [round(now - ts, 3) for ts in self._rx]}

    def restore(self, snapshot: dict[str, Any], now: float, elapsed_s: float = 0.0) -> None:
        """Add a :meth:`snapshot` taken ``elapsed_s`` ago (before anything is recorded here).

        >>> b = AirtimeBudget(airtime_s=1.0)
        >>> b.restore({"tx": [[100.0, 0.6]], "rx": [50.0]}, now=10.0, elapsed_s=3600.0)
        >>> round(b.used_s(now=10.0), 3), b.downlinks_used(now=10.0)
        (0.6, 1)
        """
        raw_tx, raw_rx = snapshot.get("tx", []), snapshot.get("rx", [])
        if not isinstance(raw_tx, list) or not isinstance(raw_rx, list) \
                or len(raw_tx) + len(raw_rx) > MAX_ENTRIES:
            raise ValueError("budget snapshot: tx and rx must be lists of a sane length")
        elapsed_s = _checked(elapsed_s, 0.0, 1e12, "elapsed time")
        tx = sorted(((now - _checked(age, 0.0, 1e12, "uplink age") - elapsed_s,
                      _checked(toa, 0.0, MAX_TOA_S, "uplink airtime")) for age, toa in raw_tx),
                    key=lambda e: e[0])
        rx = sorted(now - _checked(age, 0.0, 1e12, "downlink age") - elapsed_s for age in raw_rx)
        self._tx.extendleft(reversed(tx))
        self._rx.extendleft(reversed(rx))
        self._used += sum(toa for _, toa in tx)
        self._expire(now)

    def __repr__(self) -> str:
        return (f"AirtimeBudget(airtime_s={self.airtime_s}, downlinks={self.downlinks}, "
                f"window_s={self.window_s})")


#: PHY size of a LoRaWAN 1.0 join request: MHDR 1 + JoinEUI 8 + DevEUI 8 + DevNonce 2 + MIC 4.
JOIN_REQUEST_PHY = 23


class AirtimePlanner:
    """When may the next uplink go: the duty cycle of the channels and the daily budget together.

    A LoRaWAN stack hops over ``channels``; the planner mirrors that (round robin over the free
    ones) so the gateway never asks the modem for a transmission the regulation forbids, and
    knows *why* it waits (``duty_cycle`` or ``budget``). Pure: ``now`` is passed in.

    >>> p = AirtimePlanner(dr=5, budget=AirtimeBudget(airtime_s=30.0))
    >>> p.wait_s(11, now=0.0)
    (0.0, '')
    >>> round(p.record(11, now=0.0), 6)          # 11 B at SF7: 61.696 ms on air
    0.061696
    >>> w, why = p.wait_s(11, now=0.0); (round(w, 4), why)   # 3 channels, one sub-band M at 1 %
    (6.1696, 'duty_cycle')
    """

    def __init__(self, dr: int = 5, channels: tuple[int, ...] = EU868_DEFAULT_CHANNELS,
                 budget: AirtimeBudget | None = None,
                 duty_cycle: DutyCycle | None = None) -> None:
        if dr not in EU868_DR:
            raise ValueError(f"EU868 LoRa data rates are 0..6, got {dr}")
        self.dr = dr
        self.channels = channels
        self.budget = budget
        self.duty_cycle = duty_cycle or DutyCycle()
        self.airtime_total_s = 0.0
        self.uplinks = 0
        self._next = 0

    def toa(self, app_payload: int) -> float:
        return lorawan_time_on_air(app_payload, self.dr)

    def max_payload(self) -> int:
        return EU868_MAX_PAYLOAD[self.dr]

    def wait_s(self, app_payload: int, now: float) -> tuple[float, str]:
        """(seconds to wait, reason) before ``app_payload`` bytes may be sent; (0, "") now."""
        toa = self.toa(app_payload)
        dc = self.duty_cycle.wait_any_s(self.channels, now)
        bw = self.budget.wait_s(toa, now) if self.budget is not None else 0.0
        if bw > 0 and bw >= dc:
            return bw, "budget"
        if dc > 0:
            return dc, "duty_cycle"
        return 0.0, ""

    def record(self, app_payload: int, now: float) -> float:
        """Account one uplink of ``app_payload`` bytes sent at ``now``; return its time on air."""
        return self.record_phy(app_payload + LORAWAN_OVERHEAD, now, uplink=True)

    def record_phy(self, phy_payload: int, now: float, uplink: bool = False) -> float:
        """Account any transmission (a join request too) of ``phy_payload`` bytes."""
        sf, bw = EU868_DR[self.dr]
        toa = time_on_air(phy_payload, sf, bw)
        n = len(self.channels)
        for k in range(n):
            freq = self.channels[(self._next + k) % n]
            if self.duty_cycle.wait_s(freq, now) == 0.0:
                self._next += k + 1
                break
        else:
            freq = self.channels[self._next % n]
        self.duty_cycle.record(freq, toa, now)
        if self.budget is not None:
            self.budget.record(toa, now)
        self.airtime_total_s += toa
        self.uplinks += int(uplink)
        return toa

    def __repr__(self) -> str:
        return f"AirtimePlanner(dr={self.dr}, channels={self.channels}, budget={self.budget})"
