"""fb nodes, Modbus meters and TIC standard over real ptys: emulator -> pyserial -> Readings."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from frugalai.errors import ConfigError
from frugalai.protocols import modbus as mb
from frugalai.reading import Reading
from frugalai.sim.clock import SimClock
from frugalai.sim.fb_node import FbNodeEmulator
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.modbus_meter import ModbusMeterEmulator
from frugalai.sim.pty import PtyPort
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.sources import open_source, serial_source
from frugalai.sources.modbus_source import ModbusSource
from frugalai.sources.serial_source import SerialSource


def collect(source: Any, count: int, timeout: float = 10.0) -> list[Reading]:
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


class Consumer:
    """Reads a source in a thread, for unplug/replug tests."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.got: list[Reading] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for reading in self.source.readings(self.stop):
            self.got.append(reading)

    def wait_for(self, n: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> Consumer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.source.close()


def test_tic_standard_at_9600_baud_in_auto_mode() -> None:
    with TicMeterEmulator(HouseholdProfile(seed=4), frame_period_s=0.0, mode="standard") as meter:
        source = open_source(f"serial://{meter.path}?protocol=tic&mode=auto&baud=9600", sensor="linky")
        meter.start()
        readings = collect(source, 3)
        source.close()
    assert len(readings) == 3
    r = readings[-1]
    assert r.meta["tic_mode"] == "standard" and r.units["voltage_v"] == "V"
    assert r.values["energy_total_wh"] >= 7_640_930 and r.values["subscribed_power_va"] == 9000
    assert r.meta["date"].endswith(("+01:00", "+02:00"))


def test_tic_power_from_energy_index() -> None:
    clock = SimClock(1.7e9, speed=600)
    with TicMeterEmulator(HouseholdProfile(seed=1), clock, frame_period_s=30, mode="standard") as meter:
        source = SerialSource(meter.path, sensor="m", clock=clock, baud=9600)
        meter.start()
        readings = collect(source, 12)
        source.close()
    powered = [r for r in readings if "power_w" in r.values]
    assert powered, "power_w should appear once 60 s of index are known"
    va = powered[-1].values["apparent_power_va"]
    # active power from the 1 Wh index is coarse over 60 s, but of the order of the VA reading
    assert 0 <= powered[-1].values["power_w"] <= 3 * va + 120


def test_tic_auto_mode_switches_baud_without_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serial_source, "AUTOBAUD_S", 0.3)
    with PtyPort() as port:
        source = SerialSource(port.path, sensor="m", mode="auto")
        assert source.settings["baudrate"] == 1200
        stop = threading.Event()
        seen: set[int] = set()

        def feed_garbage() -> None:
            while not stop.is_set():
                port.write(b"\x55\xaa garbage at the wrong baud rate ")
                seen.add(source.settings["baudrate"])
                time.sleep(0.05)

        writer = threading.Thread(target=feed_garbage, daemon=True)
        writer.start()
        timer = threading.Timer(1.5, stop.set)
        timer.start()
        assert list(source.readings(stop)) == []
        writer.join()
        source.close()
    assert seen == {1200, 9600}


def test_fb_coastal_node_readings_and_loss_counts() -> None:
    clock = SimClock(1.7e9, speed=3600)
    with FbNodeEmulator(12, "coastal", clock, period_s=360, drop_rate=0.2, corrupt_rate=0.1, seed=3) as node:
        source = open_source(f"serial://{node.path}?protocol=fb", sensor="quay", clock=clock)
        node.start()
        readings = collect(source, 40)
        node.stop()
        source.close()
    assert len(readings) == 40
    r = readings[0]
    assert r.units == {"water_level_m": "m", "pressure_hpa": "hPa", "temperature_c": "°C", "battery_v": "V"}
    assert r.meta["node_id"] == "12" and -1.0 < r.values["water_level_m"] < 1.0
    seqs = [int(x.meta["seq"]) for x in readings]
    missing = (seqs[-1] - seqs[0] + 1) - len(seqs)
    assert missing > 0 and source.stats.frames_bad > 0
    # every packet missing between the first and the last reading is a drop or a CRC failure
    assert source.stats.frames_lost == missing
    assert source.stats.frames_bad <= node.corrupted


def test_fb_unplug_replug_resumes_and_the_seq_gap_shows(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyNODE")
    port = PtyPort(link=link)
    clock = SimClock(1.7e9, speed=100)
    node = FbNodeEmulator(3, "energy", clock, period_s=5, port=port)
    source = SerialSource(link, sensor="meter", protocol="fb", clock=clock)
    node.start()
    try:
        with Consumer(source) as c:
            c.wait_for(5)
            assert len(c.got) >= 5
            port.unplug()
            time.sleep(1.5)  # ~30 packets are sent into the void
            during = len(c.got)
            port.plug()
            c.wait_for(during + 5)
    finally:
        node.close()
    assert len(c.got) >= during + 5, "the source did not resume after the replug"
    assert source.stats.outages == 1 and source.stats.reconnects == 1
    assert source.stats.frames_lost >= 10, "the packets sent while unplugged show as a seq gap"
    assert c.got[-1].values["energy_total_wh"] >= c.got[0].values["energy_total_wh"]


def modbus_url(path: str, **opts: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"protocol": "modbus", **opts}.items())
    return f"serial://{path}?{query}"


def test_modbus_several_slaves_and_a_silent_one() -> None:
    with ModbusMeterEmulator(HouseholdProfile(seed=2), slaves=(1, 2, 5), silent=(5,)) as meter:
        source = open_source(modbus_url(meter.path, slaves="1,2,5", interval="0.2", timeout="0.1",
                                        retries="1"), sensor="sdm")
        meter.start()
        readings = collect(source, 4)
        source.close()
    assert isinstance(source, ModbusSource)
    assert {r.sensor for r in readings} == {"sdm-1", "sdm-2"}
    r = readings[0]
    assert 220 < r.values["voltage_v"] < 240 and r.units["energy_total_wh"] == "Wh"
    assert r.values["frequency_hz"] == 50.0
    assert r.values["energy_total_wh"] == pytest.approx(1_100_000, rel=0.01)  # 1100 kWh in Wh
    assert source.stats.timeouts >= 2 * len(source.blocks)  # slave 5: every block, with a retry
    assert meter.requests > 0 and source.stats.frames_bad == 0


def test_modbus_corrupt_answers_are_retried_and_exceptions_counted(tmp_path: Path) -> None:
    map_file = tmp_path / "meter.toml"
    map_file.write_text('[registers]\nvoltage_v = {address = 30001, unit = "V"}\n'
                        'bogus = {address = 0x0400, unit = "V"}\n')
    with ModbusMeterEmulator(HouseholdProfile(seed=2), corrupt_rate=0.3, seed=1) as meter:
        source = open_source(modbus_url(meter.path, map=str(map_file), interval="0.05", timeout="0.1",
                                        retries="3"), sensor="sdm")
        meter.start()
        readings = collect(source, 15)
        source.close()
    assert len(readings) == 15 and all(set(r.values) == {"voltage_v"} for r in readings)
    assert source.stats.frames_bad >= meter.corrupted > 0
    # 'bogus' is past the meter's registers: one exception per poll, never retried
    assert 15 <= source.exceptions <= meter.exceptions


def test_modbus_unplug_replug(tmp_path: Path) -> None:
    link = str(tmp_path / "ttyRS485")
    port = PtyPort(link=link)
    meter = ModbusMeterEmulator(HouseholdProfile(seed=2), port=port)
    source = ModbusSource(link, sensor="sdm", regmap=mb.SDM120, interval=0.1, timeout=0.1, retries=0)
    meter.start()
    try:
        with Consumer(source) as c:
            c.wait_for(3)
            assert len(c.got) >= 3
            port.unplug()
            time.sleep(1.0)
            during = len(c.got)
            port.plug()
            c.wait_for(during + 3)
    finally:
        meter.close()
    assert len(c.got) >= during + 3
    assert source.stats.outages == 1 and source.stats.reconnects == 1
    gaps = [b.ts - a.ts for a, b in zip(c.got, c.got[1:])]
    assert max(gaps) > 0.8, "the outage shows as a gap in reading times"


@pytest.mark.parametrize("url,words", [
    ("serial:///dev/null?protocol=modbus&slaves=0", "1..247"),
    ("serial:///dev/null?protocol=modbus&map=nope", "unknown Modbus map"),
    ("serial:///dev/null?protocol=modbus&intervall=3", "intervall"),
    ("serial:///dev/null?protocol=modbus&interval=-1", "interval > 0"),
    ("serial:///dev/null?protocol=fb&mode=standard", "no modes"),
    ("serial:///dev/null?protocol=zigbee", "unknown serial protocol"),
])
def test_bad_urls_are_config_errors(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        open_source(url, sensor="x", key="flow[0].source")
    assert info.value.key == "flow[0].source"


def test_bad_map_file_names_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('voltage_v = {address = "first"}\n')
    with pytest.raises(ConfigError, match=r"m.toml.voltage_v.address"):
        open_source(modbus_url("/dev/null", map=str(bad)), sensor="x")


