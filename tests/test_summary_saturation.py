"""Summary counters that hit their u16 maximum say so (flag bits in bytes 8-11), so 65,535 is
never read as an exact count; payloads without the flags decode as before."""

from __future__ import annotations

import struct

from frugalai.events.codec import SUMMARY_SIZE, decode_binary, encode_binary
from frugalai.events.event import Event, Stats


def summary(period_s: int = 3600, **counts: int) -> Event:
    return Event("summary", "linky", 1_700_000_000.0, sensor_id=1, seq=3,
                 stats=Stats(period_s=period_s, readings=100_000, mean=1.0, min=0.5, max=2.0,
                             **counts))


def test_a_capped_counter_is_flagged_and_the_others_are_not() -> None:
    raw = encode_binary(summary(windows=70_000, events=5, errors=65_535, dropped=0,
                                implausible=1, lost=0))
    assert len(raw) == SUMMARY_SIZE
    stats = decode_binary(raw)["stats"]
    assert stats["windows"] == 65_535 and stats["errors"] == 65_535  # 65,535 + 1 implausible
    assert stats["saturated"] == ["windows", "errors"]
    assert stats["period_s"] == 3600 and stats["events"] == 5


def test_exactly_65535_is_exact_and_not_flagged() -> None:
    stats = decode_binary(encode_binary(summary(windows=65_535, dropped=65_000, lost=535)))
    assert stats["stats"]["saturated"] == []
    assert stats["stats"]["windows"] == 65_535 and stats["stats"]["dropped"] == 65_535


def test_every_flag_and_a_long_period() -> None:
    event = summary(2**28 + 5, windows=10**6, events=10**6, errors=10**6, dropped=10**6)
    stats = decode_binary(encode_binary(event))["stats"]
    assert stats["saturated"] == ["windows", "events", "errors", "dropped"]
    assert stats["period_s"] == 2**28 - 1  # the period saturates too, below the flags


def test_an_old_payload_without_flags_decodes_as_before() -> None:
    raw = bytearray(encode_binary(summary(windows=4)))
    struct.pack_into(">I", raw, 8, 86_400)  # what the encoder wrote before the flags
    stats = decode_binary(bytes(raw))["stats"]
    assert stats["period_s"] == 86_400 and stats["saturated"] == []
