"""The real serial path: emulated Linky on a real pty -> pyserial -> decoder -> Readings."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from frugalai.reading import Reading
from frugalai.sim.clock import SimClock
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.pty import PtyPort
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.sources.serial_source import SerialSource


def collect(source: SerialSource, count: int, timeout: float = 10.0) -> list[Reading]:
    stop = threading.Event()
    out: list[Reading] = []
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        for reading in source.readings(stop):
            out.append(reading)
            if len(out) >= count:
                break
    finally:
        timer.cancel()
    return out


def test_emulator_to_readings_at_real_baud_timing() -> None:
    """One frame at 1200 baud takes ~1.4 s on the line: check values and pacing."""
    with TicMeterEmulator(HouseholdProfile(seed=3), frame_period_s=0.0) as meter:
        source = SerialSource(meter.path, sensor="linky", protocol="tic", mode="historique")
        meter.start()
        t0 = time.monotonic()
        readings = collect(source, 2)
        elapsed = time.monotonic() - t0
        source.close()
    assert len(readings) == 2
    r = readings[-1]
    assert r.sensor == "linky" and r.units["apparent_power_va"] == "VA"
    assert r.values["energy_total_wh"] >= 7_640_930
    assert r.meta["adco"] == "031762270346"
    # Two frames of ~165 chars at 120 chars/s cannot arrive faster than the line allows.
    assert elapsed > 1.3


def test_corrupted_frames_are_counted_and_skipped() -> None:
    clock = SimClock(1.7e9, speed=600)
    with TicMeterEmulator(HouseholdProfile(seed=1), clock, frame_period_s=10,
                          corrupt_rate=0.3, seed=5) as meter:
        source = SerialSource(meter.path, sensor="m", clock=clock)
        meter.start()
        readings = collect(source, 60)
        source.close()
        meter.stop()
    assert len(readings) == 60
    assert source.stats.frames_bad > 0
    assert source.stats.frames_ok == 60
    # every frame the meter corrupted before the last reading is counted, none is decoded
    assert source.stats.frames_bad <= meter.frames_corrupted


def test_unplug_and_replug_resumes_and_counts_the_outage(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyLINKY")
    port = PtyPort(link=link)
    clock = SimClock(1.7e9, speed=100)
    meter = TicMeterEmulator(HouseholdProfile(seed=2), clock, frame_period_s=5, port=port)
    source = SerialSource(link, sensor="linky", clock=clock)
    stop = threading.Event()
    got: list[Reading] = []

    def consume() -> None:
        for reading in source.readings(stop):
            got.append(reading)

    reader = threading.Thread(target=consume, daemon=True)
    meter.start()
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while len(got) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) >= 5
        port.unplug()
        time.sleep(1.5)
        during = len(got)
        port.plug()
        deadline = time.monotonic() + 15
        while len(got) < during + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        reader.join(timeout=5)
        meter.close()
        source.close()
    assert len(got) >= during + 5, "the source did not resume after the replug"
    assert source.stats.outages == 1 and source.stats.reconnects == 1
    gaps = [b.ts - a.ts for a, b in zip(got, got[1:])]
    assert max(gaps) > 1.0 * clock.speed, "the outage should show as a gap in reading times"


def test_lockstep_stamps_each_frame_at_its_instant_even_with_a_slow_reader() -> None:
    """At 17,280x a reader 10 ms late is three simulated minutes late; in lockstep the meter
    waits for the gateway, and its gateway clock gives each frame's own instant."""
    clock = SimClock(1.7e9, speed=17_280)
    period = 60.0
    with TicMeterEmulator(HouseholdProfile(seed=6), clock, frame_period_s=period) as meter:
        source = SerialSource(meter.path, sensor="m", clock=meter.gateway_clock)
        meter.lockstep_with(lambda: source.stats.bytes_read)
        stop = threading.Event()
        got: list[Reading] = []
        source.open()  # the port exists before the first frame, as a plugged meter's does
        meter.start()
        for reading in source.readings(stop):
            got.append(reading)
            time.sleep(0.01)  # a busy gateway: ~3 frame periods of real time per reading
            if len(got) >= 20:
                break
        source.close()
    steps = [(b.ts - a.ts) / period for a, b in zip(got, got[1:])]
    assert steps == [1.0] * 19, steps
    assert meter.port.bytes_dropped == 0
