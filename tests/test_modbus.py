"""Modbus RTU codec against the verified vectors of shared/docs/protocols.md §6, plus fuzzing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalai.errors import DecodeError
from frugalai.protocols import modbus as mb

REQUESTS = [
    (0x0000, "01 04 00 00 00 02 71 CB"), (0x0006, "01 04 00 06 00 02 91 CA"),
    (0x000C, "01 04 00 0C 00 02 B1 C8"), (0x0034, "01 04 00 34 00 02 30 05"),
    (0x0046, "01 04 00 46 00 02 90 1E"), (0x0048, "01 04 00 48 00 02 F1 DD"),
    (0x0156, "01 04 01 56 00 02 90 27"),
]


def test_crc_check_value_and_residue() -> None:
    assert mb.crc16_modbus(b"123456789") == 0x4B37
    for _, frame in REQUESTS:
        assert mb.crc16_modbus(bytes.fromhex(frame)) == 0


@pytest.mark.parametrize("addr,frame", REQUESTS)
def test_read_request_vectors(addr: int, frame: str) -> None:
    assert mb.build_read_request(1, addr, 2) == bytes.fromhex(frame)
    assert mb.parse_read_request(bytes.fromhex(frame)) == mb.ReadRequest(1, 4, addr, 2)


def test_classic_and_external_vectors_have_valid_crcs() -> None:
    assert mb.build_read_request(0x11, 0x006B, 3, function=mb.READ_HOLDING) == bytes.fromhex(
        "11 03 00 6B 00 03 76 87")
    for frame in ("01 10 00 1C 00 02 04 40 00 00 00 E7 36", "01 10 00 1C 00 02 80 0E"):
        assert mb.check_crc(bytes.fromhex(frame))


def test_response_230_5_volts() -> None:
    frame = bytes.fromhex("01 04 04 43 66 80 00 6F DF")
    regs = mb.parse_read_response(frame, slave=1, count=2)
    assert mb.registers_to_float32(regs) == 230.5
    assert mb.build_read_response(1, mb.float32_to_registers(230.5)) == frame
    assert mb.response_length(frame[:3]) == len(frame)


def test_exception_response_is_raised_with_its_code() -> None:
    frame = mb.build_exception(1, 4, 2)
    assert mb.response_length(frame[:3]) == 5
    with pytest.raises(mb.ModbusException) as info:
        mb.parse_read_response(frame, slave=1, count=2)
    assert info.value.code == 2 and "illegal data address" in str(info.value)


@pytest.mark.parametrize("mutate,why", [
    (lambda f: f[:-1] + bytes([f[-1] ^ 1]), "CRC"),
    (lambda f: f[:4], "CRC"),
    (lambda f: mb.with_crc(bytes([2]) + f[1:-2]), "slave 2"),
    (lambda f: mb.with_crc(f[:1] + b"\x03" + f[2:-2]), "function"),
    (lambda f: mb.with_crc(f[:2] + b"\x02" + f[3:-2]), "data bytes"),
])
def test_bad_responses_raise_decode_error(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    good = bytes.fromhex("01 04 04 43 66 80 00 6F DF")
    with pytest.raises(DecodeError, match=why):
        mb.parse_read_response(mutate(good), slave=1, count=2)


def test_plan_blocks_covers_every_register_within_limits() -> None:
    blocks = mb.plan_blocks(mb.SDM630)
    covered = {r.name for b in blocks for r in b.registers}
    assert covered == set(mb.SDM630)
    for b in blocks:
        assert b.count <= mb.MAX_REGISTERS_PER_REQUEST
        for r in b.registers:
            assert b.address <= r.address and r.address + 2 <= b.address + b.count
    # 0x0000..0x001F are adjacent, 0x0156 is far away: several blocks, far fewer than quantities
    assert 2 <= len(blocks) < len(mb.SDM630)


def test_block_values_scales_kwh_to_wh_and_drops_nan() -> None:
    regmap = {"e": mb.Register("e", 0, "Wh", 1000.0), "bad": mb.Register("bad", 2, "V")}
    (block,) = mb.plan_blocks(regmap)
    regs = mb.float32_to_registers(12.5) + mb.float32_to_registers(math.nan)
    assert mb.block_values(block, regs) == {"e": (12500.0, "Wh")}


def test_register_map_from_toml_table() -> None:
    m = mb.register_map_from_dict({"v": {"address": 30001, "unit": "V"},
                                   "e": {"address": 0x48, "scale": 1000}})
    assert m["v"].address == 0 and m["e"].scale == 1000.0
    for bad, key in [({"v": {"address": "x"}}, "v.address"), ({"v": {"adress": 1}}, "unknown key"),
                     ({"v": 3}, "expected a table"), ({}, "empty")]:
        with pytest.raises(ValueError, match=key):
            mb.register_map_from_dict(bad)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80), st.integers(1, 247), st.integers(1, 60))
def test_fuzz_response_parser_raises_only_decode_error(data: bytes, slave: int, count: int) -> None:
    try:
        regs = mb.parse_read_response(data, slave=slave, count=count)
    except DecodeError:
        return
    assert len(regs) == count


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=20))
def test_fuzz_request_parser(data: bytes) -> None:
    try:
        mb.parse_read_request(data)
    except DecodeError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 247), st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=60))
def test_response_round_trip(slave: int, regs: list[int]) -> None:
    frame = mb.build_read_response(slave, regs)
    assert mb.parse_read_response(frame, slave=slave, count=len(regs)) == tuple(regs)
