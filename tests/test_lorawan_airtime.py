"""Time on air against the vectors of protocols.md §3 (lorawan-stack toa_test.go, worked examples)."""

from __future__ import annotations

import pytest

from frugalai.protocols.lorawan import lorawan_time_on_air, time_on_air


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
