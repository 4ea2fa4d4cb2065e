"""LoRa P2P through emulated RAK3172 / RN2483 modems on real ptys, into Readings."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from lora_helpers import collect, lpp_temperature_humidity, wait_for

from frugalai import registry
from frugalai.errors import ConfigError
from frugalai.modems.lora_modems import RadioSettings
from frugalai.sim.lora_modem import ModemEmulator, Rak3172Emulator, Rn2483Emulator
from frugalai.sources.base import Backoff
from frugalai.sources.lora_source import LoraSource

# protocols.md §2: ch3 27.2 °C + ch5 25.5 °C; ch3 27.2 °C + ch2 54 %RH; ch5 -4.7 °C.
LPP_A = bytes.fromhex("03670110056700FF")
LPP_B = bytes.fromhex("0367011002686C")
LPP_C = bytes.fromhex("0567FFD1")

EMULATORS = {"rak3172": Rak3172Emulator, "rn2483": Rn2483Emulator}


def source_for(emu: ModemEmulator, modem: str, **kwargs: Any) -> LoraSource:
    kwargs.setdefault("backoff", Backoff(initial=0.05, cap=0.2, jitter=0.0))
    kwargs.setdefault("timeout", 1.0)
    return LoraSource(emu.path, sensor="node", modem=modem, decoder=lpp_temperature_humidity,
                      **kwargs)


def feed_when_listening(emu: ModemEmulator, *items: Any) -> threading.Thread:
    """Inject packets (bytes, or (bytes, rssi, snr)) or raw lines (str) once the modem listens."""
    def run() -> None:
        for item in items:
            wait_for(emu.listening, timeout=8)
            if isinstance(item, str):
                emu.inject_line(item)
            elif isinstance(item, tuple):
                emu.inject(*item)
            else:
                emu.inject(item)
            wait_for(lambda: not emu.listening() or emu.name == "rak3172", timeout=0.3)
            threading.Event().wait(0.1)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("modem", ["rak3172", "rn2483"])
def test_packets_become_readings_with_rssi_and_snr(modem: str) -> None:
    with EMULATORS[modem]() as emu, source_for(emu, modem) as src:
        feed_when_listening(emu, (LPP_A, -28.0, 5.0), (LPP_B, -97.0, -3.0), LPP_C)
        readings = collect(src, 3)
    assert [r.values["temperature_c_3"] for r in readings[:2]] == [27.2, 27.2]
    assert readings[0].values["temperature_c_5"] == 25.5
    assert readings[1].values["humidity_pct_2"] == 54.0
    assert readings[2].values["temperature_c_5"] == -4.7
    assert (readings[0].values["rssi_dbm"], readings[0].values["snr_db"]) == (-28.0, 5.0)
    assert (readings[1].values["rssi_dbm"], readings[1].values["snr_db"]) == (-97.0, -3.0)
    assert readings[1].units["rssi_dbm"] == "dBm" and readings[0].meta["payload_hex"]
    assert src.stats.packets == 3 and src.stats.frames_bad == 0


def test_rak3172_dialogue_writes_then_reads_back_settings() -> None:
    settings = RadioSettings(freq=869_525_000, sf=9, bw=125, cr=2, preamble=8, power=14)
    with Rak3172Emulator() as emu, source_for(emu, "rak3172", settings=settings) as src:
        feed_when_listening(emu, LPP_C)
        collect(src, 1)
    cmds = emu.commands
    assert cmds[:6] == ["AT", "AT+NWM=?", "AT+NWM=0", "AT", "AT+P2P=869525000:9:125:1:8:14",
                        "AT+P2P=?"]
    assert cmds[6] == "AT+PRECV=65533"
    assert emu.p2p == (869_525_000, 9, 125, 1, 8, 14)


def test_rn2483_dialogue_pauses_mac_sets_radio_and_listens_again() -> None:
    with Rn2483Emulator(double_space=False) as emu, source_for(emu, "rn2483") as src:
        feed_when_listening(emu, (LPP_A, -40.0, 9.0), LPP_B)
        collect(src, 2)
    cmds = emu.commands
    assert cmds[0] == "sys get ver" and cmds[1] == "mac pause"
    for expected in ("radio set freq 868100000", "radio set sf sf7", "radio set bw 125",
                     "radio set cr 4/5", "radio set wdt 0", "radio get freq", "radio get sf"):
        assert expected in cmds
    # after each packet: ask snr and rssi, then listen again
    first = cmds.index("radio get snr")
    assert cmds[first:first + 3] == ["radio get snr", "radio get pktrssi", "radio rx 0"]
    assert cmds.count("radio rx 0") >= 3


@pytest.mark.parametrize("modem,bad_lines", [
    ("rak3172", ["+EVT:RXP2P:-28:5:0367011", "+EVT:RXP2P:-28:five:00", "+EVT:RXP2P:-1:2:ZZ",
                 "+EVT:RXP2P RECEIVE ERROR"]),
    ("rn2483", ["radio_rx 0367011", "radio_rx", "radio_rx  XYZW"]),
])
def test_malformed_replies_and_bad_payloads_are_counted_and_skipped(
        modem: str, bad_lines: list[str]) -> None:
    wrong_size = bytes.fromhex("036701")  # a temperature record one byte short
    unknown_type = bytes.fromhex("0199")
    with EMULATORS[modem]() as emu, source_for(emu, modem) as src:
        feed_when_listening(emu, *bad_lines, wrong_size, unknown_type, LPP_C)
        readings = collect(src, 1)
    assert readings[0].values["temperature_c_5"] == -4.7
    malformed = len([x for x in bad_lines if "RECEIVE ERROR" not in x])
    assert src.stats.frames_bad == malformed + 2, src.stats
    assert src.stats.outages == 0


@pytest.mark.parametrize("modem,command,reply", [
    ("rak3172", "AT+P2P=?", ["AT+P2P=868300000:7:125:0:8:14", "OK"]),   # read-back differs
    ("rak3172", "AT+P2P=8", ["AT_PARAM_ERROR"]),
    ("rak3172", "AT+PRECV", ["AT_BUSY_ERROR"]),
    ("rak3172", "AT+NWM=0", ["AT_ERROR"]),
    ("rn2483", "radio get sf", ["sf12"]),                               # read-back differs
    ("rn2483", "radio set freq", ["invalid_param"]),
    ("rn2483", "radio rx 0", ["invalid_param"]),
    ("rn2483", "mac pause", ["busy"]),
])
def test_each_error_reply_is_retried_with_backoff(modem: str, command: str,
                                                  reply: list[str]) -> None:
    with EMULATORS[modem]() as emu:
        emu.script(command, *reply)
        with source_for(emu, modem) as src:
            feed_when_listening(emu, LPP_C)
            readings = collect(src, 1)
    assert len(readings) == 1
    assert src.stats.outages == 1 and src.stats.reconnects == 1
    assert reply[0] in src.stats.last_error or "read back" in src.stats.last_error


def test_rn2483_busy_receive_is_stopped_and_restarted_in_place() -> None:
    with Rn2483Emulator() as emu:
        emu.script("radio rx 0", "busy")
        with source_for(emu, "rn2483") as src:
            feed_when_listening(emu, LPP_C)
            assert len(collect(src, 1)) == 1
    i = emu.commands.index("radio rxstop")
    assert emu.commands[i - 1:i + 2] == ["radio rx 0", "radio rxstop", "radio rx 0"]
    assert src.stats.outages == 0


@pytest.mark.parametrize("modem,reset", [("rak3172", "ATZ"), ("rn2483", "sys reset")])
def test_modem_that_stops_answering_is_reset_and_reinitialised(modem: str, reset: str) -> None:
    with EMULATORS[modem]() as emu, source_for(emu, modem, probe_s=0.3) as src:
        def after(n: int) -> None:
            if n == 1:
                emu.hang(until_reset=True)  # wedged: only a reset brings it back
                threading.Thread(target=lambda: (wait_for(lambda: not emu.hung, 15),
                                                 feed_when_listening(emu, LPP_B)),
                                 daemon=True).start()
        feed_when_listening(emu, LPP_A)
        readings = collect(src, 2, timeout=20, during=after)
    assert len(readings) == 2 and readings[1].values["humidity_pct_2"] == 54.0
    assert reset in emu.commands
    assert src.stats.modem_resets >= 1 and src.stats.outages == 1


def test_long_hang_backs_off_and_logs_one_outage(caplog: pytest.LogCaptureFixture) -> None:
    with Rak3172Emulator() as emu, source_for(emu, "rak3172", probe_s=0.2) as src:
        def after(n: int) -> None:
            if n == 1:
                emu.hang(2.5)
                listens = emu.commands.count("AT+PRECV=65533")
                # packets sent while the modem hangs are lost: send once it listens again
                threading.Thread(target=lambda: (
                    wait_for(lambda: emu.commands.count("AT+PRECV=65533") > listens, 15),
                    feed_when_listening(emu, LPP_B)),
                                 daemon=True).start()
        feed_when_listening(emu, LPP_A)
        with caplog.at_level("WARNING", logger="frugalai.sources"):
            readings = collect(src, 2, timeout=20, during=after)
    assert len(readings) == 2
    assert src.stats.outages == 1 and src.stats.modem_resets >= 1
    lost = [r for r in caplog.records if "device lost" in r.getMessage()]
    assert len(lost) == 1  # one line per outage, not one per retry


def test_url_grammar() -> None:
    registry.decoders.register("test-lpp", lpp_temperature_humidity)
    src = registry.sources.get("lora")("lora:///dev/ttyUSB1?modem=rn2483&decoder=test-lpp"
                                       "&freq=868300000&sf=9", sensor="n", key="flow[0].source")
    assert src.settings == RadioSettings(freq=868_300_000, sf=9)
    assert src.link.baud == 57600 and src.decoder is lpp_temperature_humidity
    bad = {
        "lora:///dev/ttyUSB1?modem=rak3172&decoder=test-lpp&spread=7": "unknown option",
        "lora:///dev/ttyUSB1?decoder=test-lpp": "'modem' is required",
        "lora:///dev/ttyUSB1?modem=sx1262&decoder=test-lpp": "unknown modem",
        "lora:///dev/ttyUSB1?modem=rak3172&decoder=nope": "unknown decoder",
        "lora:///dev/ttyUSB1?modem=rak3172&decoder=test-lpp&sf=13": "sf must be",
        "lora:///dev/ttyUSB1?modem=rak3172&decoder=test-lpp&freq=915000000": "EU868",
        "lora:///dev/ttyUSB1?modem=rak3172&decoder=test-lpp&bw=wide": "bad option",
    }
    for url, message in bad.items():
        with pytest.raises(ConfigError, match=message) as info:
            registry.sources.get("lora")(url, sensor="n", key="flow[0].source")
        assert info.value.key == "flow[0].source"


def test_modem_unplugged_and_replugged_on_a_stable_path(tmp_path: Any) -> None:
    from frugalai.sim.pty import PtyPort

    emu = Rak3172Emulator(PtyPort(link=str(tmp_path / "ttyLORA"))).start()
    try:
        with source_for(emu, "rak3172") as src:
            def after(n: int) -> None:
                if n == 1:
                    emu.port.unplug()
                    threading.Event().wait(0.3)
                    emu.reset_state()            # a USB modem power-cycles with its cable
                    emu.port.plug()
                    feed_when_listening(emu, LPP_B)
            feed_when_listening(emu, LPP_A)
            readings = collect(src, 2, timeout=15, during=after)
    finally:
        emu.close()
    assert len(readings) == 2 and src.stats.outages == 1 and src.stats.reconnects == 1


def test_rn2483_older_firmware_without_pktrssi_keeps_snr_only() -> None:
    with Rn2483Emulator() as emu:
        emu.script("radio get pktrssi", "invalid_param")   # firmware < 1.0.5
        with source_for(emu, "rn2483") as src:
            feed_when_listening(emu, (LPP_C, -70.0, 4.0))
            reading = collect(src, 1)[0]
            src.close()                                    # closing twice is harmless
    assert "rssi_dbm" not in reading.values and reading.values["snr_db"] == 4.0


def test_firmware_bridge_packets_by_url_with_node_filter_and_losses() -> None:
    from frugalai.protocols.frames import Packet, encode_packet

    def fb(node: int, seq: int, level: float) -> bytes:
        return encode_packet(Packet(node, seq, (("water_level_m", level),
                                                ("battery_v", 3.61))))

    with Rak3172Emulator() as emu:
        src = registry.sources.get("lora")(f"lora://{emu.path}?modem=rak3172&decoder=fb&node=7",
                                           sensor="tide")
        src.backoff = Backoff(initial=0.05, cap=0.2, jitter=0.0)
        feed_when_listening(emu, fb(7, 1, 1.234), fb(9, 1, 0.5), fb(7, 2, 1.301),
                            fb(7, 5, 1.402), "+EVT:RXP2P RECEIVE ERROR", fb(7, 6, 1.5))
        readings = collect(src, 4)
        src.close()
    assert [r.values["water_level_m"] for r in readings] == [1.234, 1.301, 1.402, 1.5]
    assert readings[0].units["water_level_m"] == "m" and readings[0].values["battery_v"] == 3.61
    assert (readings[2].meta["node_id"], readings[2].meta["seq"]) == ("7", "5")
    assert "node_id" not in readings[0].values and "seq" not in readings[0].values
    s = src.stats
    assert (s.lost_packets, s.other_nodes, s.rx_errors, s.frames_bad) == (2, 1, 1, 0)


def test_cayenne_lpp_vectors_through_the_modem() -> None:
    with Rn2483Emulator() as emu:
        src = registry.sources.get("lora")(f"lora://{emu.path}?modem=rn2483&decoder=lpp",
                                           sensor="n")
        gps = bytes.fromhex("018806765FF2960A0003E8")
        feed_when_listening(emu, LPP_A, gps, bytes.fromhex("0174"), LPP_C)  # 0174: truncated
        readings = collect(src, 3)
        src.close()
    assert readings[0].values["temperature_3"] == 27.2 and readings[0].units["temperature_3"]
    assert readings[1].values["gps_lat_1"] == 42.3519 and readings[1].values["gps_alt_1"] == 10
    assert readings[2].values["temperature_5"] == -4.7 and src.stats.frames_bad == 1
