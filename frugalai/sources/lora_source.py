"""LoRa point-to-point source: sensor nodes heard through an AT-command modem on a serial port.

URL grammar::

    lora://<port>?modem=rak3172|rn2483&decoder=<name>[&freq=868100000][&sf=7][&bw=125][&cr=1]
          [&preamble=8][&power=14][&baud=N][&probe_s=60]

``<port>`` is a device path or any pyserial URL, as for ``serial://``. ``decoder`` names a
payload decoder of the ``decoders`` registry (``fb`` firmware_bridge payload, ``lpp`` Cayenne
LPP). Radio settings are written to the modem and read back; a modem that keeps other values is
an error, retried with backoff. ``cr`` is 1..4 for 4/5..4/8, ``bw`` in kHz.

Each packet becomes one Reading whose values are the decoded quantities plus ``rssi_dbm`` and
``snr_db`` when the modem reports them. With ``decoder=fb`` the node id and sequence number go
in ``meta``, sequence gaps are counted as ``lost_packets``, and ``node=<id>`` keeps one node's
packets when several share the channel (the others are counted in ``other_nodes``).
Malformed modem lines, odd-length hex and payloads the decoder refuses are counted
(``frames_bad``) and skipped. A modem silent for ``probe_s`` seconds is probed; one that does not
answer is reset (``ATZ`` / ``sys reset``) and re-initialised, with exponential backoff between
attempts and one log line per outage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

from frugalai import registry
from frugalai.errors import ConfigError, DecodeError, SourceError
from frugalai.modems.at_link import AtLink
from frugalai.modems.lora_modems import DRIVERS, ModemDriver, RadioSettings
from frugalai.protocols.frames import SeqTracker
from frugalai.protocols.payloads import PayloadDecoder, split
from frugalai.reading import Reading
from frugalai.registry import check_options, split_url
from frugalai.sources.base import Backoff, Clock, OutageLog, ReconnectingSource, SourceStats

OPTIONS = {
    "modem": "rak3172 or rn2483",
    "decoder": "payload decoder name (fb, lpp)",
    "freq": "frequency, Hz (default 868100000)",
    "sf": "spreading factor 7..12 (default 7)",
    "bw": "bandwidth kHz: 125, 250, 500 (default 125)",
    "cr": "coding rate 1..4 for 4/5..4/8 (default 1)",
    "preamble": "preamble symbols (default 8)",
    "power": "TX power dBm (default 14)",
    "baud": "serial speed (default: the modem's, 115200 / 57600)",
    "probe_s": "seconds of silence before the modem is probed (default 60)",
    "node": "keep only this firmware_bridge node id (default: every node)",
}


@dataclass
class LoraStats(SourceStats):
    """SourceStats plus the radio side."""

    packets: int = 0
    lost_packets: int = 0
    other_nodes: int = 0
    rx_errors: int = 0
    modem_resets: int = 0
    line_overflows: int = 0  # over-long modem lines discarded (AtLink.MAX_LINE)
    last_rssi_dbm: float = 0.0
    last_snr_db: float = 0.0


class LoraSource(ReconnectingSource):
    """Listens for LoRa packets through a modem and yields decoded Readings."""

    stats: LoraStats

    def __init__(
        self,
        port: str,
        *,
        sensor: str,
        modem: str,
        decoder: PayloadDecoder,
        settings: Optional[RadioSettings] = None,
        baud: Optional[int] = None,
        clock: Clock = time.time,
        probe_s: float = 60.0,
        timeout: float = 2.0,
        backoff: Optional[Backoff] = None,
        node: Optional[int] = None,
    ) -> None:
        if modem not in DRIVERS:
            raise ConfigError(f"unknown modem {modem!r}; known: {', '.join(sorted(DRIVERS))}",
                              key="modem")
        settings = settings or RadioSettings()
        try:
            settings.validate()
        except ValueError as err:
            raise ConfigError(str(err)) from None
        self.port = port
        self.sensor = sensor
        self.decoder = decoder
        self.node = node
        self.seq = SeqTracker()
        self.settings = settings
        self.clock = clock
        self.probe_s = probe_s
        self.stats = LoraStats()
        cls = DRIVERS[modem]
        self.link = AtLink(port, baud or cls.baud)
        self.driver: ModemDriver = cls(self.link, timeout=timeout)
        self.backoff = backoff or Backoff()
        self._outage = OutageLog(f"lora {modem} {port}", self.stats)
        self._ready = False
        self._last_heard = 0.0

    @classmethod
    def from_url(cls, url: str, *, sensor: str, key: Optional[str] = None,
                 **kwargs: Any) -> LoraSource:
        """Build from ``lora://...``; ConfigError (naming ``key``) on a bad URL."""
        _, port, options = split_url(url, key=key)
        check_options(url, options, OPTIONS, key=key)
        if not port:
            raise ConfigError(f"lora URL names no port: {url!r}", key=key)
        for needed in ("modem", "decoder"):
            if needed not in options:
                raise ConfigError(f"option {needed!r} is required in {url!r} ({OPTIONS[needed]})",
                                  key=key)
        decoder = registry.decoders.get(options["decoder"], key=key)
        try:
            settings = RadioSettings(
                **{name: int(options[name]) for name in
                   ("freq", "sf", "bw", "cr", "preamble", "power") if name in options})
            return cls(port, sensor=sensor, modem=options["modem"], decoder=decoder,
                       settings=settings,
                       baud=int(options["baud"]) if "baud" in options else None,
                       probe_s=float(options.get("probe_s", "60")),
                       node=int(options["node"]) if "node" in options else None, **kwargs)
        except ValueError as err:
            raise ConfigError(f"bad option in {url!r}: {err}", key=key) from None
        except ConfigError as err:
            raise ConfigError(f"{err} (in {url!r})", key=key) from None

    def _start(self) -> None:
        """Open, wake (reset if needed), configure, verify, listen."""
        if not self.link.is_open:
            self.link.open()
        resets = self.driver.resets
        self.driver.wake()
        self.stats.modem_resets += self.driver.resets - resets
        self.driver.configure_p2p(self.settings)
        self.driver.start_rx()

    @property
    def connected(self) -> bool:
        return self._ready

    def connect(self) -> None:
        self._start()
        self._ready = True
        self._last_heard = time.monotonic()

    def disconnect(self) -> None:
        self._ready = False
        self.link.close()

    def read_some(self, stop: threading.Event) -> Iterator[Reading]:
        """One line from the modem (at most 0.2 s), probing it after ``probe_s`` of silence;
        SourceError if it stopped answering or the port is gone."""
        line = self.link.read_line(0.2)
        if line is None:
            if time.monotonic() - self._last_heard >= self.probe_s:
                if not self.driver.keepalive():
                    raise SourceError(f"{self.driver.name} stopped answering")
                self._last_heard = time.monotonic()
            return
        self._last_heard = time.monotonic()
        try:
            packet = self.driver.handle_line(line)
        except DecodeError as err:
            self._bad(err)
            return
        finally:
            self.stats.rx_errors = self.driver.rx_errors
            self.stats.line_overflows = self.link.overflows
        if packet is None:
            return
        self.stats.packets += 1
        self.stats.bytes_read += len(packet.payload)
        try:
            values, units, ids = split(self.decoder(packet.payload))
        except (DecodeError, ValueError, ArithmeticError) as err:  # plugin decoders too
            self._bad(err)
            return
        meta = {"payload_hex": packet.payload.hex()}
        if "node_id" in ids:
            if self.node is not None and ids["node_id"] != self.node:
                self.stats.other_nodes += 1
                return
            meta["node_id"] = str(ids["node_id"])
            if "seq" in ids:
                meta["seq"] = str(ids["seq"])
                self.stats.lost_packets += self.seq.update(ids["node_id"], ids["seq"])
        if packet.rssi is not None:
            values["rssi_dbm"] = packet.rssi
            units["rssi_dbm"] = "dBm"
            self.stats.last_rssi_dbm = packet.rssi
        if packet.snr is not None:
            values["snr_db"] = packet.snr
            units["snr_db"] = "dB"
            self.stats.last_snr_db = packet.snr
        reading = Reading(self.clock(), self.sensor, values, units, meta)
        self.stats.frames_ok += 1
        yield reading

    def _bad(self, err: BaseException) -> None:
        self.stats.frames_bad += 1
        self.stats.last_error = str(err)

    def __repr__(self) -> str:
        return f"LoraSource({self.port!r}, modem={self.driver.name!r}, {self.settings})"
