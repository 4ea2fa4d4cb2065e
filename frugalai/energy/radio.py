"""Radio energy per uplink: LoRa time on air x the module's transmit power draw.

The transmit draw is a module datasheet figure, configurable. The default is a typical SX1276
module on PA_BOOST at +14 dBm (the EU868 limit): about 44 mA at 3.3 V, i.e. 0.145 W. An SX1262
or an STM32WL module at +14 dBm draws less (20-45 mA); set yours in ``[energy] radio_tx_w``.
"""

from __future__ import annotations

from frugalai.protocols.lorawan import lorawan_time_on_air

DEFAULT_TX_W = 0.145
DEFAULT_TX_SOURCE = "typical SX1276 module, PA_BOOST +14 dBm, ~44 mA at 3.3 V (configurable)"


def uplink_uj(payload_bytes: int, dr: int = 5, tx_w: float = DEFAULT_TX_W) -> float:
    """µJ spent transmitting one LoRaWAN EU868 uplink of ``payload_bytes`` at ``dr``.

    >>> round(uplink_uj(10, dr=5, tx_w=0.1))     # 61.696 ms at 0.1 W
    6170
    """
    return lorawan_time_on_air(payload_bytes, dr) * tx_w * 1e6
