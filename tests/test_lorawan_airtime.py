"""Time on air against the vectors of protocols.md §3 (lorawan-stack toa_test.go, worked examples)."""

from __future__ import annotations

import math

import pytest

from frugalai.protocols.lorawan import (
    EU868_SUB_BANDS,
    AirtimeBudget,
    AirtimePlanner,
    DutyCycle,
    lorawan_time_on_air,
    sub_band,
    time_on_air,
)


@pytest.mark.parametrize("sf,ms", [(7, 41.216), (8, 72.192), (9, 144.384), (10, 288.768),
                                   (11, 577.536), (12, 991.232)])
def test_pl10_cr45_by_sf(sf: int, ms: float) -> None:
    assert time_on_air(10, sf) * 1000 == pytest.approx(ms, abs=1e-6)


@pytest.mark.parametrize("bw,ms", [(250_000, 20.608), (500_000, 10.304)])
def test_bandwidths(bw: int, ms: float) -> None:
    assert time_on_air(10, 7, bw) * 1000 == pytest.approx(ms, abs=1e-6)


@pytest.mark.parametrize("cr,ms", [(2, 45.312), (3, 49.408), (4, 53.504)])
def test_coding_rates(cr: int, ms: float) -> None:
    assert time_on_air(10, 7, cr=cr) * 1000 == pytest.approx(ms, abs=1e-6)


@pytest.mark.parametrize("pl,ms", [(13, 46.336), (15, 46.336), (16, 51.456), (19, 51.456)])
def test_payload_steps(pl: int, ms: float) -> None:
    assert time_on_air(pl, 7) * 1000 == pytest.approx(ms, abs=1e-6)


@pytest.mark.parametrize(
    "n,row",
    [(0, [1155.1, 577.5, 288.8, 164.9, 82.4, 46.3, 23.2]),
     (10, [1482.8, 823.3, 370.7, 205.8, 113.2, 61.7, 30.8]),
     (51, [2793.5, 1560.6, 698.4, 390.1, 215.6, 118.0, 59.0])],
)
def test_eu868_table(n: int, row: list[float]) -> None:
    for dr, ms in enumerate(row):
        assert lorawan_time_on_air(n, dr) * 1000 == pytest.approx(ms, abs=0.06)


def test_ttn_console_value_and_bad_input() -> None:
    assert lorawan_time_on_air(4, 0) * 1000 == pytest.approx(1318.9, abs=0.05)
    with pytest.raises(ValueError):
        time_on_air(10, 13)
    with pytest.raises(ValueError):
        lorawan_time_on_air(10, 7)


# --- duty cycle and daily budget (protocols.md §3) --------------------------------------------

@pytest.mark.parametrize("freq,name,dc", [
    (863_500_000, "K", 0.001), (867_100_000, "L", 0.01), (868_100_000, "M", 0.01),
    (868_500_000, "M", 0.01), (868_800_000, "N", 0.001), (869_525_000, "P", 0.1),
    (869_850_000, "Q", 0.01)])
def test_sub_bands(freq: int, name: str, dc: float) -> None:
    band = sub_band(freq)
    assert (band.name, band.duty_cycle) == (name, dc)


@pytest.mark.parametrize("freq", [862_000_000, 868_650_000, 869_300_000, 870_000_000])
def test_frequencies_outside_the_sub_bands_are_refused(freq: int) -> None:
    with pytest.raises(ValueError, match="no EU868 sub-band"):
        sub_band(freq)


def test_off_time_vectors() -> None:
    assert EU868_SUB_BANDS[2].off_time(0.5) == pytest.approx(49.5)        # TTN forum /t/122
    toa7 = lorawan_time_on_air(10, 5)
    assert EU868_SUB_BANDS[2].off_time(toa7) == pytest.approx(6.108, abs=1e-3)
    assert EU868_SUB_BANDS[2].off_time(lorawan_time_on_air(10, 0)) == pytest.approx(146.8,
                                                                                  abs=0.05)


def test_duty_cycle_is_per_sub_band() -> None:
    dc = DutyCycle()
    dc.record(868_100_000, 0.1, now=0.0)          # M at 1 %: free again at 10 s
    assert dc.wait_s(868_500_000, now=4.0) == pytest.approx(6.0)
    assert dc.wait_s(869_525_000, now=4.0) == 0.0  # P is another sub-band
    assert dc.wait_s(868_300_000, now=10.0) == 0.0
    dc.record(869_525_000, 0.1, now=10.0)         # P at 10 %: 1 s
    assert dc.wait_s(869_525_000, now=10.5) == pytest.approx(0.5)
    assert dc.free_channel((868_100_000, 869_525_000), now=10.5) == 868_100_000


def test_ttn_fair_use_message_counts() -> None:
    # protocols.md: 10 B at SF7 -> about 486 messages a day; at SF12 about 20.
    assert int(30 / lorawan_time_on_air(10, 5)) == 486
    assert int(30 / lorawan_time_on_air(10, 0)) == 20


def test_daily_budget_is_a_rolling_window() -> None:
    b = AirtimeBudget(airtime_s=1.0, downlinks=10)
    b.record(0.5, now=0.0)
    b.record(0.4, now=100.0)
    assert b.wait_s(0.1, now=200.0) == 0.0
    assert b.wait_s(0.2, now=200.0) == pytest.approx(86_400 - 200)  # until the 0.5 s leaves
    assert b.wait_s(0.7, now=200.0) == pytest.approx(86_500 - 200)  # both must leave
    assert b.wait_s(1.5, now=200.0) == math.inf
    assert b.remaining_s(now=86_400.0) == pytest.approx(0.6)        # the first one left
    assert b.used_s(now=86_500.0) == 0.0
    b.record_downlink(now=0.0)
    assert b.downlinks_used(now=1.0) == 1 and b.downlinks_used(now=86_401.0) == 0


def test_planner_says_why_it_waits() -> None:
    toa = lorawan_time_on_air(11, 5)
    p = AirtimePlanner(dr=5, budget=AirtimeBudget(airtime_s=2.5 * toa))
    assert p.wait_s(11, now=0.0) == (0.0, "")
    p.record(11, now=0.0)
    wait, why = p.wait_s(11, now=1.0)
    assert why == "duty_cycle" and wait == pytest.approx(toa / 0.01 - 1.0)
    p.record(11, now=10.0)
    wait, why = p.wait_s(11, now=20.0)
    assert why == "budget" and wait == pytest.approx(86_400 - 20.0)
    assert p.uplinks == 2 and p.airtime_total_s == pytest.approx(2 * toa)
