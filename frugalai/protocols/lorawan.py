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
