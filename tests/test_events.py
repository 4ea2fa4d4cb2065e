"""Event codecs and policies (pure)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frugalai.errors import DecodeError
from frugalai.events.codec import BINARY_SIZE, EPOCH_2020, decode_binary, encode_binary, encode_json
from frugalai.events.event import KINDS, Event
from frugalai.events.policy import Hysteresis


@given(
    kind=st.sampled_from(sorted(KINDS)),
    ts=st.integers(min_value=EPOCH_2020, max_value=EPOCH_2020 + 2**32 - 1),
    score=st.floats(min_value=0, max_value=25.5),
    value=st.floats(min_value=-60000, max_value=60000),
    label=st.integers(0, 255), sensor_id=st.integers(0, 255), model_id=st.integers(0, 7),
    seq=st.integers(0, 10**6),
)
def test_binary_round_trip(kind: str, ts: int, score: float, value: float, label: int,
                           sensor_id: int, model_id: int, seq: int) -> None:
    event = Event(kind, "s", float(ts), score=score, value=value, label=label,
                  sensor_id=sensor_id, model_id=model_id, seq=seq)
    raw = encode_binary(event)
    assert len(raw) == BINARY_SIZE == 11
    back = decode_binary(raw)
    assert back["kind"] == kind and back["ts"] == ts and back["seq"] == seq % 65536
    assert back["sensor_id"] == sensor_id and back["model_id"] == model_id
    assert math.isclose(back["value"], value, rel_tol=1e-3, abs_tol=0.01)
    if kind in ("class", "health"):  # byte 8 is the class, or the failing checks' mask
        assert back["label"] == label
    else:
        assert abs(back["score"] - score) <= 0.05 + 1e-9


def test_binary_rejects_bad_input() -> None:
    with pytest.raises(DecodeError):
        decode_binary(b"\x00" * 11)  # version 0
    with pytest.raises(DecodeError):
        decode_binary(b"\x48" * 10)
    with pytest.raises(ValueError):
        encode_binary(Event("alarm", "s", 0.0, sensor_id=300))


def test_json_has_id_and_no_nan() -> None:
    data = json.loads(encode_json(Event("alarm", "linky", 1.0e9, seq=4)))
    assert data["id"] == "linky:4" and data["value"] is None


def test_unknown_kind_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Event("boom", "s", 0.0)


def test_hysteresis_with_debounce() -> None:
    policy = Hysteresis(on=4, off=2, debounce=2)
    out = [policy.update_one(s) for s in (5, 1, 5, 5, 3, 1, 3, 1, 1)]
    assert out == [None, None, None, "alarm", None, None, None, None, "clear"]


def test_hysteresis_refuses_inverted_thresholds() -> None:
    with pytest.raises(ValueError):
        Hysteresis(on=1, off=2)
