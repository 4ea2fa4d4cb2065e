"""Serial source: a device on a serial port, through pyserial's ``serial_for_url``.

URL grammar::

    serial://<port>?protocol=<name>[&baud=N][&bytesize=7|8][&parity=E|N|O][&stopbits=1|2][&mode=...]
                   [&time=wall|meter]

``protocol`` is ``tic`` (Linky; ``mode=historique|standard|auto``), ``fb`` (firmware_bridge
nodes), or ``modbus`` (a poller, see :mod:`frugalai.sources.modbus_source` for its options).
With ``protocol=tic&mode=auto`` and no ``baud``, the source tries 1200 baud (historique) and
switches between 1200 and 9600 (standard) until frames decode.

``<port>`` is a device path (``serial:///dev/ttyUSB0``, ``serial:///dev/serial/by-id/usb-...``)
or any pyserial URL (``serial://socket://host:7000``, ``serial://loop://``,
``serial://hwgrep://0403:6001``). Serial settings default to what the protocol needs
(TIC historique: 1200 7E1). Unknown options are refused with the list of known ones.

The read loop reopens the port with exponential backoff (capped, with jitter) when the device
disappears (USB unplug, pty closed) or when, the line silent, the port's path names another
device than the open one (a link re-pointed after a replug), logging once per outage;
bad frames are counted by the framer, never raised. A port that refuses the protocol's framing
with EINVAL (7E1 on a pty opened once before, on some kernels) is opened at 8N1 and framed in
software (:mod:`frugalai.sources.serial_open`): parity errors are counted in
``stats.parity_errors`` and the framing used shows in ``stats.framing``.

Idle cost: a read returns as soon as one byte is there (``read(max(1, in_waiting))``), so the
read timeout only sets how often a silent line wakes the thread to look at ``stop`` and the
auto-baud clock. At 1 s, 16 silent flows cost under 0.1 % of a core, against 0.3 % at 0.2 s
(benchmarks/fastpath.py, "Idle"); stopping takes at most that second.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator
from typing import Any, Optional

from frugalai import registry
from frugalai.errors import ConfigError, SourceError
from frugalai.protocols.parity import SoftFraming
from frugalai.reading import Reading
from frugalai.registry import check_options, split_url
from frugalai.sources.base import Backoff, Clock, OutageLog, ReconnectingSource, SourceStats
from frugalai.sources.framers import Framer
from frugalai.sources.serial_open import device_replaced, open_serial

OPTIONS = {
    "protocol": "a registered serial protocol (frugalai.registry.protocols: tic, fb, modbus...)",
    "baud": "baud rate (default: the protocol's)",
    "bytesize": "7 or 8 (default: the protocol's)",
    "parity": "N, E or O (default: the protocol's)",
    "stopbits": "1 or 2",
    "mode": "protocol mode (TIC: historique, standard, auto)",
    "time": "wall (default: readings stamped by the gateway's clock) or meter (TIC standard: "
            "the frame's DATE, for an emulator run faster than real time)",
}

#: Without a valid frame for this long after opening, TIC auto mode tries the other baud rate.
AUTOBAUD_S = 4.0
#: On a silent line, how often the port's path is checked to still name the open device.
REPLACED_CHECK_S = 2.0



def _user_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (a container)
        return "this user"


class SerialSource(ReconnectingSource):
    """Reads a stream protocol from a serial port and yields Readings."""

    def __init__(
        self,
        port: str,
        *,
        sensor: str,
        protocol: str = "tic",
        baud: Optional[int] = None,
        bytesize: Optional[int] = None,
        parity: Optional[str] = None,
        stopbits: int = 1,
        mode: str = "auto",
        clock: Clock = time.time,
        read_timeout: float = 1.0,
        time_from: str = "wall",
    ) -> None:
        make_framer = registry.protocols.get(protocol, key="protocol")
        self.port = port
        self.sensor = sensor
        self.stats = SourceStats()
        if time_from not in ("wall", "meter"):
            raise ConfigError(f"time must be wall or meter, got {time_from!r}", key="time")
        if time_from == "meter" and (protocol != "tic" or mode != "standard"):
            raise ConfigError("time=meter needs protocol=tic&mode=standard (the frame's DATE)",
                              key="time")
        extra = {"frame_time": True} if time_from == "meter" else {}
        self.framer: Framer = make_framer(sensor, self.stats, clock, mode=mode, **extra)
        defaults = self.framer.SERIAL
        self.settings: dict[str, Any] = {
            "baudrate": baud or self.framer.default_baud,
            "bytesize": bytesize or defaults.get("bytesize", 8),
            "parity": parity or defaults.get("parity", "N"),
            "stopbits": stopbits,
            "timeout": read_timeout,
        }
        self._autobaud = bool(getattr(self.framer, "autobaud", False)) and baud is None
        self._opened_at = 0.0
        self._serial: Any = None
        self._soft: Optional[SoftFraming] = None
        self._parity_before = 0  # parity errors of earlier opens
        self._checked_at = 0.0
        self.backoff = Backoff()
        self._outage = OutageLog(f"serial {port}", self.stats)

    @classmethod
    def from_url(cls, url: str, *, sensor: str, key: Optional[str] = None,
                 **kwargs: Any) -> ReconnectingSource:
        """Build from ``serial://...``; ConfigError (naming ``key``) on a bad URL.

        A protocol registered as a poller (a class with ``from_url``, like Modbus) gets the
        whole URL and builds its own source; a framer is fed by a SerialSource.
        """
        _, port, options = split_url(url, key=key)
        protocol = registry.protocols.get(options.get("protocol", "tic"), key=key)
        if hasattr(protocol, "from_url"):  # a poller owning the port (Modbus), not a framer
            source: ReconnectingSource = protocol.from_url(url, sensor=sensor, key=key, **kwargs)
            return source
        check_options(url, options, OPTIONS, key=key)
        if not port:
            raise ConfigError(f"serial URL names no port: {url!r}", key=key)
        try:
            return cls(
                port,
                sensor=sensor,
                protocol=options.get("protocol", "tic"),
                baud=int(options["baud"]) if "baud" in options else None,
                bytesize=int(options["bytesize"]) if "bytesize" in options else None,
                parity=options.get("parity"),
                stopbits=int(options.get("stopbits", "1")),
                mode=options.get("mode", "auto"),
                time_from=options.get("time", "wall"),
                **kwargs,
            )
        except ValueError as err:
            raise ConfigError(f"bad option in {url!r}: {err}", key=key) from None
        except ConfigError as err:
            raise ConfigError(f"{err} (in {url!r})", key=key) from None

    def open(self) -> None:
        """Open the port now; SourceError if it cannot be opened."""
        import termios

        import serial  # pyserial, a core dependency, imported late to keep import light

        try:
            opened = open_serial(self.port, self.settings)
        except (serial.SerialException, OSError, ValueError, termios.error) as err:
            if getattr(err, "errno", None) in (errno.EACCES, errno.EPERM):
                raise SourceError(
                    f"permission denied on serial port {self.port!r}: the user running frugalai "
                    f"({_user_name()}) must be in the group owning it, usually 'dialout' "
                    f"(sudo usermod -aG dialout {_user_name()}, then log in again; the "
                    f"service's unit adds it itself)") from err
            raise SourceError(f"cannot open serial port {self.port!r}: {err}") from err
        self._serial, self._soft = opened.serial, opened.soft
        self.stats.framing = opened.framing

    @property
    def quantities(self) -> Optional[frozenset[str]]:
        """The value names the protocol can produce (None if its framer does not say)."""
        declared = getattr(self.framer, "quantities", None)
        return frozenset(declared) if declared is not None else None

    @property
    def connected(self) -> bool:
        return self._serial is not None

    def connect(self) -> None:
        self.open()
        self._opened_at = time.monotonic()

    def read_some(self, stop: threading.Event) -> Iterator[Reading]:
        """One read (at most ``read_timeout``) through the framer; OSError if the port is gone."""
        if self._autobaud and self.stats.frames_ok == 0 and \
                time.monotonic() - self._opened_at > AUTOBAUD_S:
            self._switch_baud()
            self._opened_at = time.monotonic()
        data = self._serial.read(max(1, self._serial.in_waiting))
        if not data:
            self._check_same_device()
            return
        self.stats.bytes_read += len(data)
        if self._soft is not None:
            data = self._soft.feed(data)
            self.stats.parity_errors = self._parity_before + self._soft.parity_errors
        yield from self.framer.feed(data)

    def _check_same_device(self) -> None:
        """On a silent line, at most every REPLACED_CHECK_S: has the port's path been
        re-pointed at another device while the old one stays open (a link after a replug)?
        Then drop the old one (SourceError), and the read loop opens the new one."""
        now = time.monotonic()
        if now - self._checked_at < REPLACED_CHECK_S:
            return
        self._checked_at = now
        if device_replaced(self.port, self._serial):
            raise SourceError(f"serial port {self.port!r} now names another device (or none): "
                              "reopening it")

    def _switch_baud(self) -> None:
        """TIC auto mode: no frame yet, so the meter may be in the other mode (other baud)."""
        new = 9600 if self.settings["baudrate"] == 1200 else 1200
        self.settings["baudrate"] = new
        try:
            self._serial.baudrate = new
        except (OSError, ValueError) as err:  # the port vanished: the read loop will notice
            self.stats.last_error = f"cannot switch to {new} baud: {err}"

    def disconnect(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:  # closing a vanished device may fail; it is gone either way
                pass
            self._serial = None
        if self._soft is not None:  # the next open may frame in hardware: keep the count
            self._parity_before += self._soft.parity_errors
            self._soft = None

    def __repr__(self) -> str:
        return f"SerialSource({self.port!r}, sensor={self.sensor!r}, {self.settings})"
