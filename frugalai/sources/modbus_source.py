"""Modbus RTU poller: reads energy meters (Eastron SDM120/SDM630 style) on an RS-485 bus.

URL grammar (the ``serial`` scheme with ``protocol=modbus``)::

    serial://<port>?protocol=modbus[&slaves=1,2,3][&map=sdm630|sdm120|/path/map.toml]
        [&interval=10][&timeout=0.5][&retries=2][&baud=9600][&parity=N][&stopbits=1]

Each ``interval`` seconds every slave is read block by block (function 0x04, float32 registers,
at most 60 registers a request); one Reading per slave per poll, named ``<sensor>`` when there is
one slave and ``<sensor>-<id>`` otherwise, with ``meta["slave"]``. A request without a valid
answer within ``timeout`` is retried ``retries`` times (counted in ``stats.timeouts`` /
``stats.frames_bad``); an exception response is counted and not retried (the meter said no).
A vanished port is reopened with backoff, logged once per outage, like the stream sources.

A map file is a TOML table of quantities, ``name = {address = 30001, unit = "V", scale = 1}``
(address = register number 30001.. or PDU address; ``scale`` multiplies the float, e.g. 1000 for
kWh -> Wh), optionally under a ``[registers]`` header.

Written on pyserial directly (no pymodbus): one function code, fixed-length answers, and the
codec is ~200 lines in :mod:`frugalai.protocols.modbus` with the protocols.md vectors as tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Optional

from frugalai.errors import ConfigError, DecodeError, SourceError
from frugalai.protocols import modbus as mb
from frugalai.reading import Reading
from frugalai.registry import check_options, split_url
from frugalai.sources.base import Backoff, Clock, OutageLog, ReconnectingSource, SourceStats
from frugalai.sources.serial_open import device_replaced, open_serial

OPTIONS = {
    "protocol": "modbus",
    "slaves": "comma-separated slave ids 1..247 (default 1)",
    "map": "register map: sdm120, sdm630 (default) or a .toml file",
    "interval": "seconds between polls (default 10)",
    "timeout": "seconds to wait for an answer (default 0.5)",
    "retries": "extra attempts per request (default 2)",
    "baud": "baud rate (default 9600; SDM120 ships at 2400)",
    "bytesize": "7 or 8 (default 8)",
    "parity": "N, E or O (default N)",
    "stopbits": "1 or 2 (default 1)",
}


def load_map(spec: str, *, key: Optional[str] = None) -> Mapping[str, mb.Register]:
    """A built-in map by name, or a TOML file; ConfigError naming the bad entry."""
    if spec.lower() in mb.BUILTIN_MAPS:
        return mb.BUILTIN_MAPS[spec.lower()]
    path = Path(spec)
    if path.suffix != ".toml":
        raise ConfigError(f"unknown Modbus map {spec!r}; known: {', '.join(mb.BUILTIN_MAPS)} or a .toml file",
                          key=key)
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
    try:
        table = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read Modbus map {spec!r}: {err}", key=key) from None
    if set(table) == {"registers"}:
        table = table["registers"]
    try:
        return mb.register_map_from_dict(table, where=path.name)
    except ValueError as err:
        raise ConfigError(str(err), key=key) from None


class ModbusSource(ReconnectingSource):
    """Polls Modbus RTU slaves on one serial port and yields one Reading per slave per poll."""

    def __init__(
        self,
        port: str,
        *,
        sensor: str,
        slaves: tuple[int, ...] = (1,),
        regmap: Mapping[str, mb.Register] = mb.SDM630,
        interval: float = 10.0,
        timeout: float = 0.5,
        retries: int = 2,
        baud: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
        clock: Clock = time.time,
    ) -> None:
        for s in slaves:
            if not 1 <= s <= 247:
                raise ConfigError(f"Modbus slave id must be 1..247, got {s}", key="slaves")
        if interval <= 0 or timeout <= 0 or retries < 0:
            raise ConfigError(f"need interval > 0, timeout > 0, retries >= 0; got {interval}, {timeout}, "
                              f"{retries}", key="interval")
        self.port = port
        self.sensor = sensor
        self.slaves = slaves
        self.blocks = mb.plan_blocks(regmap)
        self.interval = interval
        self.timeout = timeout
        self.retries = retries
        self.clock = clock
        self.settings: dict[str, Any] = {"baudrate": baud, "bytesize": bytesize, "parity": parity,
                                         "stopbits": stopbits, "timeout": timeout}
        self.stats = SourceStats()
        self.exceptions = 0
        self._serial: Any = None
        self._next_poll = 0.0
        self.backoff = Backoff()
        self._outage = OutageLog(f"modbus {port}", self.stats)

    @classmethod
    def from_url(cls, url: str, *, sensor: str, key: Optional[str] = None, **kwargs: Any) -> ModbusSource:
        """Build from ``serial://...?protocol=modbus``; ConfigError (naming ``key``) on a bad URL."""
        _, port, options = split_url(url, key=key)
        check_options(url, options, OPTIONS, key=key)
        if not port:
            raise ConfigError(f"serial URL names no port: {url!r}", key=key)
        try:
            slaves = tuple(int(s) for s in options.get("slaves", "1").split(","))
            return cls(
                port, sensor=sensor, slaves=slaves,
                regmap=load_map(options.get("map", "sdm630"), key=key),
                interval=float(options.get("interval", "10")),
                timeout=float(options.get("timeout", "0.5")),
                retries=int(options.get("retries", "2")),
                baud=int(options.get("baud", "9600")),
                bytesize=int(options.get("bytesize", "8")),
                parity=options.get("parity", "N"),
                stopbits=int(options.get("stopbits", "1")),
                **kwargs,
            )
        except ValueError as err:
            raise ConfigError(f"bad option in {url!r}: {err}", key=key) from None
        except ConfigError as err:
            raise ConfigError(f"{err.reason} (in {url!r})", key=key) from None

    def open(self) -> None:
        """Open the port now; SourceError if it cannot be opened."""
        import termios

        import serial

        try:  # a refused 8E1 (a pty opened before) falls back to 8N1: the CRC still guards
            opened = open_serial(self.port, self.settings, what="modbus ")
        except (serial.SerialException, OSError, ValueError, termios.error) as err:
            raise SourceError(f"cannot open serial port {self.port!r}: {err}") from err
        self._serial = opened.serial
        self.stats.framing = opened.framing

    def _transact(self, request: bytes, slave: int, count: int) -> Optional[tuple[int, ...]]:
        """One request with retries; registers, or None. OSError propagates (device gone)."""
        for _ in range(self.retries + 1):
            self._flush_input()
            self._serial.write(request)
            head = self._serial.read(3)
            total = mb.response_length(head)
            if total is None:
                self.stats.timeouts += 1
                self.stats.last_error = f"slave {slave}: no answer within {self.timeout} s"
                continue
            frame = head + self._serial.read(total - 3)
            self.stats.bytes_read += len(frame)
            try:
                regs = mb.parse_read_response(frame, slave=slave, count=count)
            except mb.ModbusException as err:
                self.exceptions += 1
                self.stats.frames_bad += 1
                self.stats.last_error = str(err)
                return None
            except DecodeError as err:
                self.stats.frames_bad += 1
                self.stats.last_error = str(err)
                continue
            self.stats.frames_ok += 1
            return regs
        return None

    def _flush_input(self) -> None:
        """Drop stale bytes (a late answer would misalign the next one); OSError if gone."""
        try:
            self._serial.reset_input_buffer()
        except OSError:
            raise
        except Exception as err:  # termios.error on a hung-up pty is not an OSError
            raise OSError(f"cannot flush {self.port!r}: {err}") from err

    def poll_slave(self, slave: int) -> Optional[Reading]:
        """Read every block of one slave; a Reading with what answered, or None."""
        values: dict[str, float] = {}
        units: dict[str, str] = {}
        ts = self.clock()
        for block in self.blocks:
            request = mb.build_read_request(slave, block.address, block.count)
            regs = self._transact(request, slave, block.count)
            if regs is None:
                continue
            for name, (value, unit) in mb.block_values(block, regs).items():
                values[name] = value
                if unit:
                    units[name] = unit
        if not values:
            return None
        name = self.sensor if len(self.slaves) == 1 else f"{self.sensor}-{slave}"
        return Reading(ts, name, values, units, {"slave": str(slave)})

    @property
    def quantities(self) -> frozenset[str]:
        """The value names of the register map."""
        return frozenset(reg.name for block in self.blocks for reg in block.registers)

    @property
    def connected(self) -> bool:
        return self._serial is not None

    def connect(self) -> None:
        self.open()

    def read_some(self, stop: threading.Event) -> Iterator[Reading]:
        """Wait for the next poll time, then poll every slave; OSError if the port is gone."""
        delay = self._next_poll - time.monotonic()
        if delay > 0 and stop.wait(delay):
            return
        self._next_poll = max(self._next_poll + self.interval, time.monotonic())
        answered = False
        for slave in self.slaves:
            reading = self.poll_slave(slave)
            if reading is not None:
                answered = True
                yield reading
        if not answered and device_replaced(self.port, self._serial):
            raise SourceError(f"serial port {self.port!r} now names another device (or none): "
                              "reopening it")

    def disconnect(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:  # closing a vanished device may fail; it is gone either way
                pass
            self._serial = None

    def __repr__(self) -> str:
        return f"ModbusSource({self.port!r}, sensor={self.sensor!r}, slaves={self.slaves}, {self.settings})"
