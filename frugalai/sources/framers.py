"""Stream protocols a byte source can carry: bytes in, Readings out.

Each framer wraps a pure decoder from ``protocols/`` and stamps the Readings with the source's
clock. A framer counts what it rejects; it never raises on bad bytes.

Serial protocols are registered in :data:`frugalai.registry.protocols` (``tic`` and ``fb`` here;
plugins by the entry-point group ``frugalai.protocols``). An entry is one of two things:

* a **framer** factory, called ``factory(sensor, stats, clock, mode=...)`` and fed the bytes
  :class:`~frugalai.sources.serial_source.SerialSource` reads (see :class:`Framer`);
* a **poller**, a source class with a ``from_url`` classmethod that owns the port itself, for
  request/response protocols (``modbus``: :class:`~frugalai.sources.modbus_source.ModbusSource`).
  ``serial://...?protocol=NAME`` hands it the whole URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar, Protocol

from frugalai.errors import ConfigError, DecodeError
from frugalai.protocols import frames
from frugalai.protocols.plausibility import PlausibilityGate
from frugalai.protocols.tic import TicDecoder
from frugalai.protocols.tic_values import NUMERIC_LABELS, EnergyRate, frame_values
from frugalai.reading import Reading
from frugalai.sources.base import Clock, SourceStats


class Framer(Protocol):
    """What SerialSource needs from a stream protocol.

    ``SERIAL`` holds the pyserial settings the protocol needs (bytesize, parity, stopbits).
    An optional attribute ``autobaud`` (true) asks the source to alternate the baud rate
    between 1200 and 9600 until a frame decodes (TIC's ``mode=auto``). An optional attribute
    ``quantities`` (a frozenset of names) says which Reading values the protocol can produce,
    so ``config check`` can refuse a flow ``quantity`` it will never see.
    """

    SERIAL: ClassVar[dict[str, object]]

    @property
    def default_baud(self) -> int: ...

    def feed(self, data: bytes) -> Iterator[Reading]: ...


class TicFramer:
    """TIC frames -> Readings. Options: ``mode`` = historique | standard | auto.

    Adds ``power_w`` (active power, from the energy index over >= 60 s, see
    :class:`~frugalai.protocols.tic_values.EnergyRate`) since the TIC itself only gives VA.
    """

    #: pyserial settings (historique 1200 7E1, standard 9600 7E1; auto starts at 1200).
    SERIAL: ClassVar[dict[str, object]] = {"bytesize": 7, "parity": "E", "stopbits": 1}
    BAUD: ClassVar[dict[str, int]] = {"historique": 1200, "standard": 9600, "auto": 1200}

    def __init__(self, sensor: str, stats: SourceStats, clock: Clock, mode: str = "auto",
                 frame_time: bool = False) -> None:
        self.sensor = sensor
        self.stats = stats
        self.clock = clock
        self.frame_time = frame_time  # stamp with the frame's DATE (standard mode) when it has one
        self.rate = EnergyRate()
        #: refuses what the meter cannot have measured (counted in stats.implausible)
        self.gate = PlausibilityGate()
        try:
            self.decoder = TicDecoder(mode=mode)
        except ValueError as err:
            raise ConfigError(str(err), key="mode") from None

    @property
    def default_baud(self) -> int:
        return self.BAUD[self.decoder.mode]

    @property
    def quantities(self) -> frozenset[str]:
        """Every value name a TIC frame can give, plus the derived ``power_w``."""
        return frozenset(name for name, _, _ in NUMERIC_LABELS.values()) | {"power_w"}

    @property
    def autobaud(self) -> bool:
        """In auto mode the meter may speak historique (1200) or standard (9600)."""
        return self.decoder.mode == "auto"

    def feed(self, data: bytes) -> Iterator[Reading]:
        before_bad = self.decoder.stats.frames_bad
        for frame in self.decoder.feed(data):
            try:
                values, units, meta = frame_values(frame)
            except DecodeError as err:
                self.stats.frames_bad += 1
                self.stats.last_error = str(err)
                continue
            self.stats.frames_ok += 1
            ts = self.clock()
            if self.frame_time and "date" in meta:
                ts = datetime.fromisoformat(meta["date"]).timestamp()
            values, refused = self.gate.check(ts, values)
            if "energy_total_wh" in values:
                power = self.rate.update(ts, values["energy_total_wh"])
                if power is not None:
                    kept, more = self.gate.check(ts, {"power_w": power})
                    values.update(kept)
                    refused += more
                    if kept:
                        units["power_w"] = "W"
            if refused:
                self.stats.implausible += len(refused)
                self.stats.last_error = f"implausible values refused: {', '.join(refused)}"
                units = {name: unit for name, unit in units.items() if name in values}
            meta["tic_mode"] = frame.mode
            yield Reading(ts, self.sensor, values, units, meta)
        bad = self.decoder.stats.frames_bad - before_bad
        if bad:
            self.stats.frames_bad += bad
            self.stats.last_error = self.decoder.stats.last_error


class FbFramer:
    """firmware_bridge frames (COBS + CRC-16) -> Readings, one per packet.

    The Reading's ``meta`` carries ``node_id`` and ``seq``; ``stats.frames_lost`` counts the
    packets missing from each node's sequence. Option ``mode``: only ``auto`` (one framing).
    """

    SERIAL: ClassVar[dict[str, object]] = {"bytesize": 8, "parity": "N", "stopbits": 1}

    def __init__(self, sensor: str, stats: SourceStats, clock: Clock, mode: str = "auto") -> None:
        if mode != "auto":
            raise ConfigError(f"protocol fb has no modes, got mode={mode!r}", key="mode")
        self.sensor = sensor
        self.stats = stats
        self.clock = clock
        self.decoder = frames.FbDecoder()

    @property
    def default_baud(self) -> int:
        return 9600

    @property
    def quantities(self) -> frozenset[str]:
        """The firmware_bridge quantity table (``protocols.frames.QUANTITIES``)."""
        return frozenset(q.name for q in frames.QUANTITIES)

    def feed(self, data: bytes) -> Iterator[Reading]:
        d = self.decoder.stats
        before_bad, before_lost = d.frames_bad, d.frames_lost
        for pkt in self.decoder.feed(data):
            self.stats.frames_ok += 1
            pairs = frames.packet_values(pkt)
            yield Reading(
                self.clock(), self.sensor,
                {k: v for k, (v, _) in pairs.items()}, {k: u for k, (_, u) in pairs.items() if u},
                {"node_id": str(pkt.node_id), "seq": str(pkt.seq)},
            )
        self.stats.frames_bad += d.frames_bad - before_bad
        self.stats.frames_lost += d.frames_lost - before_lost
        if d.frames_bad > before_bad:
            self.stats.last_error = d.last_error
