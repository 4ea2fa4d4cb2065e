"""Every decoder turns any input into values or a DecodeError, never another exception.

Value-level fuzzing: the inputs are *well-framed* (checksums, CRCs and JSON syntax valid) so the
value parsers behind the framing are reached, with the values themselves hostile (hundreds of
digits, NaN, deep nesting, signs, Unicode digits). Stream decoders (the framers, the ChirpStack
source) must count what they reject and never raise. 1,000 examples per decoder here; ``make
fuzz`` (benchmarks/fuzz.py) runs 10^6 per decoder with a random generator.

The regression cases at the top are the frames a hostile probe found on c1edaa6.
"""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frugalai.errors import DecodeError
from frugalai.events import codec
from frugalai.protocols import at_modem, frames, lpp
from frugalai.protocols import modbus as mb
from frugalai.protocols.chirpstack import parse_uplink
from frugalai.protocols.payloads import decode_fb, decode_lpp
from frugalai.protocols.tic import HISTORIQUE, STANDARD, encode_frame, encode_group
from frugalai.protocols.tic_values import NUMERIC_LABELS, TEXT_LABELS
from frugalai.sources.base import SourceStats
from frugalai.sources.chirpstack import ChirpStackSource
from frugalai.sources.framers import FbFramer, TicFramer

FUZZ = settings(max_examples=1000, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
DEV = "0102030405060708"
TOPIC = f"application/app/device/{DEV}/event/up"


def tic_feed(frame: bytes, frame_time: bool = False) -> SourceStats:
    stats = SourceStats()
    framer = TicFramer("linky", stats, lambda: 1.7e9, frame_time=frame_time)
    list(framer.feed(frame))
    return stats


def chirpstack_source() -> ChirpStackSource:
    return ChirpStackSource("localhost", 1, sensor="node", dev_eui=DEV, decoder=decode_lpp)


# --- regressions: one frame used to restart the flow ---------------------------------------

@pytest.mark.parametrize("digits", [13, 309, 400, 4000])
def test_tic_value_of_hundreds_of_digits_is_a_counted_decode_error(digits: int) -> None:
    frame = encode_frame([("ADCO", "021861348497"), ("BASE", "9" * digits)])
    stats = tic_feed(frame)
    assert (stats.frames_ok, stats.frames_bad) == (0, 1)
    assert "digits" in stats.last_error


def test_a_date_of_31_february_is_a_counted_decode_error() -> None:
    frame = encode_frame([("ADSC", "041067003463"), ("EAST", "000046245")], mode=STANDARD)
    date = encode_group("DATE", "", STANDARD, horodate="H080231223518")
    stats = tic_feed(frame[:1] + date + frame[1:], frame_time=True)
    assert (stats.frames_ok, stats.frames_bad) == (0, 1)


@pytest.mark.parametrize("fcnt", ["9" * 400, 10**400, "9" * 5000, -1, 2**32])
def test_chirpstack_huge_fcnt_is_a_counted_decode_error(fcnt: object) -> None:
    raw = json.dumps({"deviceInfo": {"devEui": DEV}, "fCnt": fcnt, "data": "AWcA/w=="}).encode()
    with pytest.raises(DecodeError):
        parse_uplink(raw, TOPIC)
    source = chirpstack_source()
    assert source.handle(TOPIC, raw) is None
    assert source.stats.frames_bad == 1


@pytest.mark.parametrize("depth", [50, 1000, 30_000])
def test_chirpstack_deeply_nested_json_is_refused_before_parsing(depth: int) -> None:
    raw = b'{"deviceInfo":{"devEui":"' + DEV.encode() + b'"},"x":' + b"[" * depth + b"]" * depth \
        + b"}"
    with pytest.raises(DecodeError, match="nested"):
        parse_uplink(raw, TOPIC)
    source = chirpstack_source()
    assert source.handle(TOPIC, raw) is None and source.stats.frames_bad == 1


def test_chirpstack_huge_rssi_is_ignored_not_raised() -> None:
    raw = json.dumps({"deviceInfo": {"devEui": DEV}, "fCnt": 1, "data": "AWcA/w==",
                      "rxInfo": [{"rssi": 10**400, "snr": 10**400}, {"rssi": -80, "snr": 1e308}]})
    up = parse_uplink(raw.encode(), TOPIC)
    assert (up.rssi, up.snr) == (-80.0, None)


@pytest.mark.parametrize("line", [
    "+EVT:RXP2P:-" + "9" * 400 + ":5:48",
    "AT+P2P=" + "9" * 5000 + ":7:125:0:8:14",
    "mac_rx " + "9" * 5000 + " 48",
    "mac_rx ²³ 48",
])
def test_at_reply_with_an_overlong_number_is_a_decode_error(line: str) -> None:
    parser = (at_modem.parse_rak_rx if line.startswith("+EVT") else at_modem.parse_rak_p2p
              if line.startswith("AT+") else at_modem.parse_rn_downlink)
    with pytest.raises(DecodeError):
        parser(line)
    with pytest.raises(DecodeError):
        at_modem.classify_tx("rn2483", line)


def test_modem_number_refuses_what_is_not_a_modem_number() -> None:
    assert [at_modem.modem_number(t) for t in ("-7", " 12.5 ", "nan", "inf", "1e5", "9" * 400,
                                               "٣")] == [-7.0, 12.5, None, None, None, None,
                                                         None]


# --- value-level fuzzing, 1,000 examples per decoder ---------------------------------------

_printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=24)
_digits = st.integers(0, 400).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))
_tic_value = st.one_of(_digits, _printable, st.sampled_from(["-1", "1.5", "nan", "inf", "1e9",
                                                             " 00012 ", "٣٣"]))
_tic_label = st.one_of(st.just("DATE"),
                       st.sampled_from(sorted(NUMERIC_LABELS) + sorted(TEXT_LABELS)),
                       st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-+", min_size=1, max_size=8))
_horodate = st.one_of(st.none(), st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                                         max_size=14),
                      st.from_regex(r"\A[EeHh ][0-9]{12}\Z"),
                      st.builds(lambda s, *f: s + "".join(f"{x:02d}" for x in f),   # in range
                                st.sampled_from("EeHh "), st.integers(0, 99),
                                st.integers(1, 12), st.integers(1, 31), st.integers(0, 23),
                                st.integers(0, 59), st.integers(0, 59)))


@FUZZ
@given(st.sampled_from([HISTORIQUE, STANDARD]),
       st.lists(st.tuples(_tic_label, _tic_value, _horodate), min_size=1, max_size=12))
def test_fuzz_tic_values(mode: str, groups: list[tuple[str, str, str | None]]) -> None:
    body = bytearray(b"\x02")
    for label, value, horodate in groups:
        try:
            body += encode_group(label, value.encode("ascii", "replace").decode(), mode,
                                 horodate if mode == STANDARD else None)
        except UnicodeEncodeError:
            continue
    for frame_time in (False, True):   # stamped by the gateway's clock, or by the frame's DATE
        stats = tic_feed(bytes(body) + b"\x03", frame_time)
        assert stats.frames_ok + stats.frames_bad <= 1  # a reading or a counted error


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**500), 10**500),
                       st.floats(allow_nan=False), st.text(max_size=20),
                       st.sampled_from(["9" * 400, "-1", "0x10", "1e999", "AWcA/w==", DEV]))
_json = st.recursive(_json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=30)
_uplink_keys = st.sampled_from(["deviceInfo", "fCnt", "fPort", "data", "rxInfo", "dr",
                                "deduplicationId"])


@FUZZ
@given(st.dictionaries(_uplink_keys, _json, max_size=7), st.booleans(), st.integers(0, 3000))
def test_fuzz_chirpstack(doc: dict[str, object], with_dev: bool, nest: int) -> None:
    if with_dev:
        doc["deviceInfo"] = {"devEui": DEV}
    raw = json.dumps(doc).encode()
    if nest:
        raw = raw[:-1] + (b', "z": ' if doc else b'"z": ') + b"[" * nest + b"]" * nest + b"}"
    try:
        parse_uplink(raw, TOPIC)
    except DecodeError:
        pass
    source = chirpstack_source()
    source.handle(TOPIC, raw)
    s = source.stats
    assert s.frames_ok + s.frames_bad + s.duplicates + s.unknown_devices + s.other_fport == 1


_number_text = st.one_of(st.integers(-(10**450), 10**450).map(str), st.floats().map(str),
                         st.text("0123456789-.", max_size=12), st.sampled_from(["٣", "²"]))
_hex = st.binary(max_size=64).map(lambda b: b.hex())
_at_line = st.one_of(
    st.builds(lambda r, s, h: f"+EVT:RXP2P:{r}:{s}:{h}", _number_text, _number_text, _hex),
    st.builds(lambda p, h: f"mac_rx {p} {h}", _number_text, _hex),
    st.builds(lambda h: f"radio_rx  {h}", st.one_of(_hex, _number_text)),
    st.lists(_number_text, min_size=1, max_size=7).map(lambda ps: "AT+P2P=" + ":".join(ps)),
    st.text(max_size=40),
)


@FUZZ
@given(_at_line)
def test_fuzz_at_modem(line: str) -> None:
    for parse in (at_modem.parse_rak_rx, at_modem.parse_rak_p2p, at_modem.parse_rn_rx,
                  at_modem.parse_rn_downlink, lambda t: at_modem.classify_tx("rn2483", t),
                  lambda t: at_modem.classify_tx("rak3172", t), at_modem.hex_payload):
        try:
            parse(line)
        except DecodeError:
            pass
    at_modem.join_result(line)
    at_modem.modem_number(line)


_registers = st.lists(st.integers(0, 0xFFFF), min_size=0, max_size=60)


@FUZZ
@given(st.integers(0, 255), st.integers(0, 255), _registers, st.binary(max_size=8),
       st.integers(0, 3))
def test_fuzz_modbus(slave: int, function: int, regs: list[int], junk: bytes, mode: int) -> None:
    pdu = bytes([slave, function, len(regs) * 2 & 0xFF]) + b"".join(
        struct.pack(">H", r) for r in regs)
    frame = mb.with_crc(pdu if mode < 2 else pdu + junk) if mode != 3 else pdu + junk
    try:
        got = mb.parse_read_response(frame, slave=max(1, slave), count=max(1, len(regs)))
    except DecodeError:
        return
    block = mb.plan_blocks(mb.SDM120)[0]
    if len(got) >= block.count:
        mb.block_values(block, tuple(got[:block.count]))


_fb_reading = st.tuples(st.sampled_from([*sorted(frames.BY_ID), 0, 255]),
                        st.integers(-(2**31), 2**31 - 1))


@FUZZ
@given(st.integers(0, 3), st.integers(0, 255), st.integers(0, 0xFFFF),
       st.lists(_fb_reading, max_size=frames.MAX_READINGS + 2), st.binary(max_size=6))
def test_fuzz_firmware_bridge(version: int, node: int, seq: int,
                              readings: list[tuple[int, int]], junk: bytes) -> None:
    body = frames.HEADER.pack(version, node, seq) + b"".join(
        frames.READING.pack(q, v) for q, v in readings) + junk
    for decode in (frames.decode_packet, decode_fb):
        try:
            decode(body)
        except DecodeError:
            pass
    wire = frames.cobs_encode(body + struct.pack(">H", frames.crc16_ccitt(body))) + b"\x00"
    stats = SourceStats()
    list(FbFramer("node", stats, lambda: 0.0).feed(wire * 2))
    assert stats.frames_ok + stats.frames_bad <= 2


_lpp_item = st.tuples(st.integers(0, 255), st.sampled_from([*sorted(lpp.BY_CODE), 7, 200]),
                      st.binary(min_size=0, max_size=10))


@FUZZ
@given(st.lists(_lpp_item, max_size=8))
def test_fuzz_lpp(items: list[tuple[int, int, bytes]]) -> None:
    payload = b"".join(bytes([ch, code]) + data[:lpp.BY_CODE[code].size if code in lpp.BY_CODE
                                                else 2] for ch, code, data in items)
    try:
        decode_lpp(payload)
    except DecodeError:
        pass


@FUZZ
@given(st.one_of(st.binary(min_size=codec.BINARY_SIZE, max_size=codec.BINARY_SIZE),
                 st.binary(min_size=codec.SUMMARY_SIZE, max_size=codec.SUMMARY_SIZE),
                 st.binary(max_size=40)),
       st.dictionaries(st.sampled_from(["v", "kind", "sensor", "ts", "seq", "score", "stats",
                                        "label", "value"]), _json, max_size=8))
def test_fuzz_event_codecs(raw: bytes, doc: dict[str, object]) -> None:
    try:
        codec.decode_binary(raw)
    except DecodeError:
        pass
    doc.setdefault("v", codec.VERSION)
    try:
        codec.decode_json(json.dumps(doc).encode())
    except DecodeError:
        pass


def test_a_hostile_frame_on_a_real_serial_link_is_counted_and_the_flow_goes_on() -> None:
    """Over a real pty: the 309-digit frame between two good ones is counted in frames_bad and
    the source's generator goes on (on c1edaa6 it raised OverflowError: a flow restart)."""
    import threading

    from frugalai.sim.pty import PtyPort
    from frugalai.sources.serial_source import SerialSource

    good = encode_frame([("ADCO", "021861348497"), ("BASE", "007640930"), ("PAPP", "00390")])
    bad = encode_frame([("ADCO", "021861348497"), ("BASE", "9" * 309)])
    port = PtyPort()
    source = SerialSource(port.path, sensor="linky", protocol="tic", mode="historique",
                          bytesize=8, parity="N")
    stop = threading.Event()
    guard = threading.Timer(30, stop.set)
    guard.daemon = True
    got = []
    try:
        source.open()                      # opening flushes the input: write after it
        guard.start()                      # a hang fails the test instead of the suite
        port.write(good + bad + good)
        for reading in source.readings(stop):
            got.append(reading)
            if len(got) == 2:
                break
    finally:
        guard.cancel()
        stop.set()
        source.close()
        port.close()
    assert [r.values["apparent_power_va"] for r in got] == [390.0, 390.0]
    assert source.stats.frames_bad == 1 and source.stats.frames_ok == 2
