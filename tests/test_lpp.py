"""Cayenne LPP against the verified vectors of shared/docs/protocols.md §2, round trips, fuzzing."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalai.errors import DecodeError
from frugalai.protocols import lpp

VECTORS = [
    ("03 67 01 10 05 67 00 FF", [(3, "temperature", (27.2,)), (5, "temperature", (25.5,))]),
    ("01 67 FF D7", [(1, "temperature", (-4.1,))]),
    ("06 71 04 D2 FB 2E 00 00", [(6, "accelerometer", (1.234, -1.234, 0.0))]),
    ("01 88 06 76 5F F2 96 0A 00 03 E8", [(1, "gps", (42.3519, -87.9094, 10.0))]),
    ("03 67 01 10 02 68 6C", [(3, "temperature", (27.2,)), (2, "humidity", (54.0,))]),
    ("05 67 FF D1", [(5, "temperature", (-4.7,))]),
    ("01 64 00 00 03 E6", [(1, "generic", (998.0,))]),
    ("03 74 57 B8", [(3, "voltage", (224.56,))]),
    ("01 75 00 ED", [(1, "current", (0.237,))]),
    ("01 76 33 BE 27 A0", [(1, "frequency", (868100000.0,))]),
    ("05 79 FF EF", [(5, "altitude", (-17.0,))]),
    ("05 80 0D 7A", [(5, "power", (3450.0,))]),
    ("01 82 00 00 00 22", [(1, "distance", (0.034,))]),
    ("01 83 00 79 5B 30", [(1, "energy", (7953.2,))]),
    ("01 84 01 00", [(1, "direction", (256.0,))]),
    ("05 8E 01", [(5, "switch", (1.0,))]),
    ("00 00 01", [(0, "digital_in", (1.0,))]),
    ("01 01 00", [(1, "digital_out", (0.0,))]),
    ("02 02 FB 2E", [(2, "analog_in", (-12.34,))]),
    ("04 73 27 9D", [(4, "pressure", (1014.1,))]),
    ("01 65 01 2C", [(1, "illuminance", (300.0,))]),
    ("07 66 01", [(7, "presence", (1.0,))]),
]


@pytest.mark.parametrize("hexstr,expected", VECTORS, ids=[v[0] for v in VECTORS])
def test_vectors_decode_and_encode(hexstr: str, expected: list[tuple[int, str, tuple[float, ...]]]) -> None:
    payload = bytes.fromhex(hexstr)
    got = [(v.channel, v.name, v.value) for v in lpp.decode(payload)]
    assert got == expected
    assert lpp.encode((ch, name, val) for ch, name, val in expected) == payload


def test_base64_gps_and_digital() -> None:
    payload = base64.b64decode("AYgILMMBiIMAAAACAAY=")
    assert lpp.decode_values(payload) == {
        "gps_lat_1": (53.5747, "°"), "gps_lon_1": (10.0483, "°"), "gps_alt_1": (0.0, "m"),
        "digital_in_2": (6.0, "")}


def test_decode_values_units() -> None:
    assert lpp.decode_values(bytes.fromhex("03 67 01 10 04 73 27 9D")) == {
        "temperature_3": (27.2, "°C"), "pressure_4": (1014.1, "hPa")}


@pytest.mark.parametrize("payload,why", [
    ("03", "truncated"), ("03 67 01", "needs 2 bytes"), ("03 FF 00 00", "unknown type")])
def test_bad_payloads(payload: str, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        lpp.decode(bytes.fromhex(payload))


def test_encoder_refuses_out_of_range() -> None:
    for args in [(1, "humidity", 200.0), (1, "voltage", -1.0), (1, "nope", 1.0), (300, "switch", 1),
                 (1, "gps", (1.0, 2.0)), (1, "temperature", float("nan"))]:
        with pytest.raises(ValueError):
            lpp.encode_one(*args)  # type: ignore[arg-type]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_decode_raises_only_decode_error(data: bytes) -> None:
    try:
        items = lpp.decode(data)
    except DecodeError:
        return
    assert lpp.encode((i.channel, i.name, i.value) for i in items) == data


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.sampled_from(lpp.TYPES), st.data()), max_size=8))
def test_round_trip_from_raw_integers(items: list) -> None:  # type: ignore[type-arg]
    spec = []
    for ch, t, data in items:
        vals = []
        for size, mult in zip(t.sizes, t.mults):
            bits = 8 * size
            lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if t.signed else (0, 2**bits - 1)
            vals.append(data.draw(st.integers(lo, hi)) / mult)
        spec.append((ch, t.name, tuple(vals)))
    payload = lpp.encode(spec)
    assert [(i.channel, i.name, i.value) for i in lpp.decode(payload)] == spec
