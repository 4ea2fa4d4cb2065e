"""Issue 25: day types are their own choice (one, weekday/weekend, each ISO weekday) and a
named zone moves the slots with daylight saving; cards written before keep their behaviour."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from frugalai.features.energy import EnergyFeatures
from frugalai.features.slots import DAY_TYPES, SlotHistory


def _utc(*a: int) -> float:
    return datetime(*a, tzinfo=timezone.utc).timestamp()


def test_iso_week_keeps_each_weekday_apart() -> None:
    h = SlotHistory(3600, 3, 1, 0.0, DAY_TYPES["iso-week"])
    monday, tuesday, sunday = _utc(2024, 7, 1, 9), _utc(2024, 7, 2, 9), _utc(2024, 7, 7, 9)
    assert [h.key(t)[0] for t in (monday, tuesday, sunday)] == [0, 1, 6]
    two = SlotHistory(3600, 3, 1, 0.0, DAY_TYPES["weekday-weekend"])
    assert [two.key(t)[0] for t in (monday, tuesday, sunday)] == [0, 0, 1]
    one = SlotHistory(3600, 3, 1, 0.0, DAY_TYPES["single"])
    assert {one.key(t) for t in (monday, tuesday, sunday)} == {(0, 9)}
    with pytest.raises(ValueError, match="1, 2 or 7"):
        SlotHistory(3600, 3, 1, 0.0, 3)


def test_a_named_zone_moves_the_slots_with_dst() -> None:
    paris = SlotHistory(3600, 3, 1, 1.0, 1, "Europe/Paris")
    fixed = SlotHistory(3600, 3, 1, 1.0, 1)
    winter, summer = _utc(2024, 1, 15, 10), _utc(2024, 7, 15, 10)
    assert paris.key(winter) == fixed.key(winter) == (0, 11)
    assert paris.key(summer) == (0, 12) and fixed.key(summer) == (0, 11)
    # the day changes at local midnight in summer too: 22:30 UTC is already Sunday in Paris
    wk = SlotHistory(3600, 3, 1, 1.0, 2, "Europe/Paris")
    assert wk.key(_utc(2024, 7, 5, 22, 30)) == (1, 0)  # Friday 22:30 UTC = Saturday 00:30


def test_cards_without_the_new_fields_read_as_before() -> None:
    old = EnergyFeatures(slot_s=900).params()
    assert "time_zone" not in old and old["day_types"] == 2
    new = EnergyFeatures(slot_s=900, day_types=7, time_zone="Europe/Paris").params()
    assert new["time_zone"] == "Europe/Paris" and new["day_types"] == 7
    assert EnergyFeatures(**new).params() == new
