"""firmware_bridge codec: the shared vector file (also read by the C tests), round trips, fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalai.errors import DecodeError
from frugalai.protocols import frames as fb

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "firmware_bridge" / "test_vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS["crc16"])
def test_crc_vectors(case: dict[str, Any]) -> None:
    assert fb.crc16_ccitt(bytes.fromhex(case["data"])) == case["crc"]


@pytest.mark.parametrize("case", VECTORS["cobs"])
def test_cobs_vectors(case: dict[str, Any]) -> None:
    data, enc = bytes.fromhex(case["data"]), bytes.fromhex(case["encoded"])
    assert fb.cobs_encode(data) == enc
    assert fb.cobs_decode(enc) == data


@pytest.mark.parametrize("case", VECTORS["packets"], ids=lambda c: f"node{c['node_id']}")
def test_packet_vectors(case: dict[str, Any]) -> None:
    pkt = fb.decode_frame(bytes.fromhex(case["frame"]))
    assert (pkt.node_id, pkt.seq) == (case["node_id"], case["seq"])
    assert [(fb.BY_NAME[n].qid, v) for n, v in pkt.readings] == [
        (r["qid"], r["value"]) for r in case["readings"]]
    assert fb.decode_packet(bytes.fromhex(case["packet"])) == pkt
    assert fb.encode_packet(pkt).hex() == case["packet"]
    assert fb.encode_frame(pkt).hex() == case["frame"]


@pytest.mark.parametrize("case", VECTORS["bad_frames"], ids=lambda c: c["why"])
def test_bad_frame_vectors(case: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        fb.decode_frame(bytes.fromhex(case["frame"]))


def test_packet_values_names_and_units() -> None:
    pkt = fb.decode_frame(bytes.fromhex(VECTORS["packets"][1]["frame"]))
    assert fb.packet_values(pkt) == {
        "water_level_m": (-0.412, "m"), "pressure_hpa": (1013.25, "hPa"),
        "battery_v": (3.917, "V"), "temperature_c": (11.5, "°C")}


def test_stream_decoder_counts_bad_and_lost_frames() -> None:
    frames = [fb.encode_frame(fb.Packet(5, s, (("power_w", 100.0 + s),))) for s in range(10)]
    bad = bytearray(frames[3])
    bad[4] ^= 0x40
    stream = b"\x37\x99\x00" + b"".join(frames[:3]) + bytes(bad) + frames[4] + b"".join(frames[6:])
    dec = fb.FbDecoder()
    got = [p.seq for p in dec.feed(stream)]
    assert got == [0, 1, 2, 4, 6, 7, 8, 9]
    assert dec.stats.frames_bad == 1
    assert dec.stats.frames_lost == 2  # seq 3 (corrupt) and 5 (dropped)
    assert dec.stats.bytes_skipped == 2


def test_first_frame_without_leading_delimiter_is_kept() -> None:
    frame = fb.encode_frame(fb.Packet(1, 1, ()))
    assert [p.seq for p in fb.FbDecoder().feed(frame)] == [1]


def test_seq_wrap_and_reboot_are_not_losses() -> None:
    t = fb.SeqTracker()
    assert [t.update(1, s) for s in (65534, 65535, 0, 2)] == [0, 0, 0, 1]
    assert t.update(1, 40000) == 0 and t.resets[1] == 1


def test_encode_refuses_bad_values() -> None:
    for readings in [(("nope", 1.0),), (("power_w", float("nan")),), (("energy_total_wh", 2.0**40),)]:
        with pytest.raises(ValueError):
            fb.encode_packet(fb.Packet(1, 1, readings))


names = st.sampled_from([q.name for q in fb.QUANTITIES])
raws = st.integers(-(2**31), 2**31 - 1)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
       st.lists(st.tuples(names, raws), max_size=fb.MAX_READINGS))
def test_round_trip(node: int, seq: int, items: list[tuple[str, int]]) -> None:
    readings = tuple((n, fb._scaled(r, fb.BY_NAME[n].scale)) for n, r in items)
    pkt = fb.Packet(node, seq, readings)
    assert fb.decode_frame(fb.encode_frame(pkt)) == pkt
    assert fb.decode_packet(fb.encode_packet(pkt)) == pkt


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_cobs_round_trip(data: bytes) -> None:
    enc = fb.cobs_encode(data)
    assert 0 not in enc and fb.cobs_decode(enc) == data


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_decoders_raise_only_decode_error(data: bytes) -> None:
    for decode in (fb.decode_frame, fb.decode_packet, fb.cobs_decode):
        try:
            decode(data)
        except DecodeError:
            pass
    dec = fb.FbDecoder()
    list(dec.feed(data))
    assert dec.stats.bytes_in == len(data)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=10), st.data())
def test_chunking_does_not_change_packets(noise: list[bytes], data: st.DataObject) -> None:
    frames = [fb.encode_frame(fb.Packet(2, s, (("battery_v", 3.3),))) for s in range(5)]
    stream = b"".join(n + b"\x00" + f for n, f in zip(noise, frames))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    whole = [p.seq for p in fb.FbDecoder().feed(stream)]
    dec = fb.FbDecoder()
    parts = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    assert [p.seq for part in parts for p in dec.feed(part)] == whole
