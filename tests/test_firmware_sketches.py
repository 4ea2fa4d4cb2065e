"""The Arduino example sketches, built and run on the host against a stand-in Arduino core.

``firmware_bridge/test/arduino/`` provides just enough of Arduino.h, the BMP280 driver and the
LoRa library for the sketches to compile unchanged with g++ -Wall -Wextra -Werror, and
``host_main.cpp`` drives them: time in 1 ms steps, meter pulses as interrupts, ADC and
barometer values from the command line. What the sketch sends is decoded here by the
gateway's own decoders, and the values are checked against the physics the sketch implements
(pulse counting; water column = (P_transducer - P_air) / (rho g)). No radio or board runs
here, so the stand-ins replace only what needs hardware.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from frugalai import registry
from frugalai.protocols.frames import FbDecoder, packet_values

FB = Path(__file__).resolve().parent.parent / "firmware_bridge"
CXX = shutil.which("g++") or shutil.which("c++")
CC = shutil.which("cc") or shutil.which("gcc")
pytestmark = pytest.mark.skipif(CXX is None or CC is None,
                                reason="no C/C++ compiler (scripts/install-sysdeps installs g++)")
RHO, G = 1025.0, 9.80665  # the coastal sketch's constants


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sketches")
    obj = out / "fb_frame.o"
    subprocess.run([str(CC), "-std=c99", "-Wall", "-Wextra", "-Werror", f"-I{FB / 'src'}", "-c",
                    str(FB / "src" / "fb_frame.c"), "-o", str(obj)], check=True)
    built = {}
    for name, sketch, defines in (("energy", "energy_node", []),
                                  ("coastal", "coastal_node", []),
                                  ("coastal_lora", "coastal_node", ["-DFB_USE_LORA=1"])):
        exe = out / name
        proc = subprocess.run(
            [str(CXX), "-std=c++11", "-Wall", "-Wextra", "-Werror", *defines,
             f"-I{FB / 'test' / 'arduino'}", f"-I{FB / 'src'}", "-include", "Arduino.h",
             "-x", "c++", str(FB / "examples" / sketch / f"{sketch}.ino"), "-x", "none",
             str(FB / "test" / "arduino" / "host_main.cpp"), str(obj), "-o", str(exe)],
            capture_output=True, text=True)
        assert proc.returncode == 0, f"{sketch} does not build:\n{proc.stderr}"
        built[name] = exe
    return built


def run(exe: Path, *args: float) -> list[tuple[str, bytes]]:
    proc = subprocess.run([str(exe), *(str(a) for a in args)], capture_output=True, text=True,
                          timeout=60, check=True)
    return [(tag, bytes.fromhex(hexa)) for tag, hexa in
            (line.split() for line in proc.stdout.splitlines())]


def test_energy_node_counts_pulses_and_reports_power(build: dict[str, Path]) -> None:
    period_ms = 2_500  # 1 Wh a pulse every 2.5 s: 1,440 W
    sent = run(build["energy"], 185, period_ms, 700)  # three 60-second reports
    decoder = FbDecoder()
    packets = [p for tag, data in sent if tag == "serial" for p in decoder.feed(data)]
    assert decoder.stats.frames_bad == 0 and len(packets) == 3
    assert [p.node_id for p in packets] == [3, 3, 3] and [p.seq for p in packets] == [0, 1, 2]
    for k, pkt in enumerate(packets, start=1):
        values = packet_values(pkt)
        # report k at millis() = 60,000 k, i.e. step 60,000 k - 1 (the harness starts at 1 ms)
        assert values["energy_total_wh"] == ((60_000 * k - 1) // period_ms, "Wh")
        assert values["power_w"][0] == pytest.approx(3_600_000 / period_ms, abs=0.1)
        assert values["battery_v"][0] == pytest.approx(700 * 2 * 5.0 / 1023, abs=0.001)


def test_energy_node_reports_no_power_without_pulses(build: dict[str, Path]) -> None:
    (tag, data), = run(build["energy"], 61, 0, 700)
    assert tag == "serial"
    pkt, = FbDecoder().feed(data)
    assert packet_values(pkt)["energy_total_wh"][0] == 0 and packet_values(pkt)["power_w"][0] == 0


@pytest.mark.parametrize("level_m", [-0.3, 1.5, 2.9])
def test_coastal_node_water_level_is_the_water_column_minus_the_air(build: dict[str, Path],
                                                                   level_m: float) -> None:
    air_pa, air_c = 100_870.0, 17.25
    adc = round((0.5 + 4.0 * (air_pa + RHO * G * level_m) / 200_000.0) * 1023 / 5.0)
    expected = ((adc * 5.0 / 1023 - 0.5) / 4.0 * 200_000.0 - air_pa) / (RHO * G)
    sent = run(build["coastal"], 370, 0, 600, adc, air_pa, air_c)  # reports at 0 and 6 min
    decoder = FbDecoder()
    packets = [p for tag, data in sent if tag == "serial" for p in decoder.feed(data)]
    assert len(packets) == 2 and decoder.stats.frames_bad == 0
    values = packet_values(packets[0])
    assert values["water_level_m"] == (pytest.approx(expected, abs=0.0006), "m")
    assert abs(expected - level_m) < 0.03  # the 10-bit ADC's step is ~1.9 cm of water
    assert values["pressure_hpa"][0] == pytest.approx(air_pa / 100, abs=0.01)
    assert values["temperature_c"][0] == pytest.approx(air_c, abs=0.01)


def test_coastal_node_over_lora_sends_the_bare_packet_the_gateway_decodes(
        build: dict[str, Path]) -> None:
    sent = run(build["coastal_lora"], 370, 0, 600, 580, 101_325.0, 20.0)
    assert [tag for tag, _ in sent] == ["lora", "lora"]
    decode = registry.decoders.get("fb")
    first, second = (decode(data) for _, data in sent)
    assert first["node_id"][0] == second["node_id"][0] == 12
    assert (first["seq"][0], second["seq"][0]) == (0, 1)
    expected = ((580 * 5.0 / 1023 - 0.5) / 4.0 * 200_000.0 - 101_325.0) / (RHO * G)
    assert first["water_level_m"] == (pytest.approx(expected, abs=0.0006), "m")
