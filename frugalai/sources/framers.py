"""Stream protocols a byte source can carry: bytes in, Readings out.

Each framer wraps a pure decoder from ``protocols/`` and stamps the Readings with the source's
clock. Request/response protocols (Modbus) are pollers, not framers, and live elsewhere.
A framer counts what it rejects; it never raises on bad bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable, ClassVar

from frugalai.errors import ConfigError, DecodeError
from frugalai.protocols.tic import TicDecoder
from frugalai.protocols.tic_values import frame_values
from frugalai.reading import Reading
from frugalai.sources.base import Clock, SourceStats


class TicFramer:
    """TIC frames -> Readings. Options: ``mode`` = historique | standard | auto."""

    #: pyserial settings per mode (historique 1200 7E1, standard 9600 7E1).
    SERIAL: ClassVar[dict[str, int]] = {"historique": 1200, "standard": 9600, "auto": 1200}

    def __init__(self, sensor: str, stats: SourceStats, clock: Clock, mode: str = "auto") -> None:
        self.sensor = sensor
        self.stats = stats
        self.clock = clock
        try:
            self.decoder = TicDecoder(mode=mode)
        except ValueError as err:
            raise ConfigError(str(err), key="mode") from None

    @property
    def default_baud(self) -> int:
        return self.SERIAL[self.decoder.mode]

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
            yield Reading(self.clock(), self.sensor, values, units, meta)
        bad = self.decoder.stats.frames_bad - before_bad
        if bad:
            self.stats.frames_bad += bad
            self.stats.last_error = self.decoder.stats.last_error


FramerFactory = Callable[..., TicFramer]

FRAMERS: dict[str, FramerFactory] = {"tic": TicFramer}
