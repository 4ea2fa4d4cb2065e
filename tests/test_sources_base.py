"""The one reconnect loop (sources/base.ReconnectingSource) that serial, Modbus and LoRa share.

Its users are tested on real ptys (unplug / replug in test_ingest_serial.py, test_lora_p2p.py);
this checks the loop's own rules with a scripted transport: failed connects back off and count
one outage, a lost device is dropped and reconnected, counters follow, close is idempotent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from frugalai.errors import SourceError
from frugalai.reading import Reading
from frugalai.retry import Backoff
from frugalai.sources.base import OutageLog, ReconnectingSource, Source, SourceStats


class Scripted(ReconnectingSource):
    """connect fails ``fail_connects`` times; read_some yields one Reading per call and raises
    OSError on the calls listed in ``lose_on``."""

    def __init__(self, fail_connects: int, lose_on: set[int]) -> None:
        self.sensor = "s"
        self.stats = SourceStats()
        self.backoff = Backoff(initial=0.001, cap=0.002, jitter=0.0)
        self._outage = OutageLog("scripted", self.stats)
        self.fail_connects, self.lose_on = fail_connects, lose_on
        self.connects = self.disconnects = self.reads = 0
        self.open = False

    @property
    def connected(self) -> bool:
        return self.open

    def connect(self) -> None:
        self.connects += 1
        if self.connects <= self.fail_connects:
            raise SourceError("no such device")
        self.open = True

    def disconnect(self) -> None:
        self.disconnects += 1
        self.open = False

    def read_some(self, stop: threading.Event) -> Iterator[Reading]:
        self.reads += 1
        if self.reads in self.lose_on:
            raise OSError(5, "Input/output error")
        yield Reading(float(self.reads), self.sensor, {"v": float(self.reads)})


def take(src: Scripted, n: int) -> list[Reading]:
    out = []
    for r in src.readings(threading.Event()):
        out.append(r)
        if len(out) == n:
            break
    return out


def test_failed_connects_are_one_outage_and_a_lost_device_another(
        caplog: pytest.LogCaptureFixture) -> None:
    src = Scripted(fail_connects=3, lose_on={2})
    with caplog.at_level(logging.WARNING, logger="frugalai.sources"):
        got = take(src, 3)
    assert [r.values["v"] for r in got] == [1.0, 3.0, 4.0]
    assert src.connects == 5  # 3 failures, the first open, the reopen after the loss
    assert src.stats.outages == 2 and src.stats.reconnects == 2
    assert src.stats.readings == 3 and src.stats.last_reading_ts == 4.0
    assert "Input/output error" in src.stats.last_error
    lost = [r for r in caplog.records if "retrying" in r.getMessage()]
    back = [r for r in caplog.records if "back after" in r.getMessage()]
    assert len(lost) == 2 and len(back) == 2  # once per outage, not once per retry


def test_stop_close_and_context_manager() -> None:
    src = Scripted(fail_connects=0, lose_on=set())
    assert isinstance(src, Source)
    stop = threading.Event()
    stop.set()
    assert list(src.readings(stop)) == [] and src.connects == 0
    take(src, 1)
    with src as inside:
        assert inside is src
    src.close()
    assert not src.connected and src.disconnects >= 2
