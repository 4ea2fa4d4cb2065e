"""Power meters behind one interface and the energy-per-inference harness.

Every meter answers ``read()``: joules since it was opened. Meters that only give power
(hwmon, INA219, Pi 5 PMIC, USB meters) integrate their samples; counters (RAPL) and the CPU-time
estimate are read directly. :func:`open_meter` builds one from a short spec string::

    estimate[:BOARD]      CPU time x per-core active power (always labelled "estimated")
    rapl[:DOMAIN,...]     /sys/class/powercap intel-rapl (x86, root only)
    hwmon[:NAME]          INA219/INA226 through the kernel ina2xx driver
    ina219:/dev/i2c-1[@0x40][?shunt=0.1&max_a=2]
    pmic                  Raspberry Pi 5, ``vcgencmd pmic_read_adc``
    um25c:/dev/rfcomm0    RDTech UM24C/UM25C/UM34C over (Bluetooth) serial
"""

from __future__ import annotations

from frugalai.energy.base import Meter, MeterError, PowerMeter, open_meter

__all__ = ["Meter", "MeterError", "PowerMeter", "open_meter"]
