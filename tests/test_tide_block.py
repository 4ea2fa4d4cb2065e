"""Issue 16: the tide ahead of each coastal reading, predicted a block at a time
(frugalai/features/tide_block.py), gives the very numbers of one ``Tide.predict`` call per
reading -- compared with ``==`` on real stations and real time stamps -- and falls back to that
call off the grid (gap, jitter, time going back, NaN, fractional times)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from frugalai.features.coastal import CoastalFeatures, _max
from frugalai.features.tide import Tide, fit_harmonics, fit_tide
from frugalai.features.tide_block import TideAhead
from frugalai.learn.data import Series, load_providence

ROOT = Path(__file__).resolve().parents[1]
HOUR = 3600.0


def _utc(y: int, m: int = 1, d: int = 1, h: int = 0) -> float:
    return datetime(y, m, d, h, tzinfo=timezone.utc).timestamp()


@pytest.fixture(scope="module")
def providence(data_dir: Path) -> Series:
    return load_providence(data_dir)


@pytest.fixture(scope="module")
def tides(data_dir: Path, providence: Series) -> dict[str, Tide]:
    """Both bases, from every source a bundle's tide comes from: the shipped card, published
    constants (Providence's NOAA record, two Brittany TICON-4 records) and fits of a real year."""
    from frugalai.learn.tide_stations import find_station, load_table, station_tide

    table = load_table(data_dir)
    card = json.loads((ROOT / "models" / "coastal-submersion" / "card.json").read_text())
    year = (providence.ts >= _utc(1995)) & (providence.ts < _utc(1996))
    out = {"card": Tide.from_dict(card["features"]["tide"]),
           "fit_plain": fit_tide(providence.ts[year], providence.values[year]),
           "fit_astronomical": fit_harmonics(providence.ts[year], providence.values[year])}
    for sid in ("noaa/8454000", "ticon/brest-3-fra-refmar", "ticon/roscoff-54-fra-refmar"):
        out[sid] = station_tide(find_station(table, sid))[0]
    assert out["card"].basis == "astronomical" and out["fit_plain"].basis == "plain"
    return out


def _per_reading(tide: Tide, ts: float, ahead: int, step: float = HOUR) -> list[float]:
    """What a coastal flow computed before the block: one predict call per reading."""
    return tide.predict(ts + step * np.arange(ahead + 1)).tolist()  # type: ignore[no-any-return]


def test_predict_gives_a_time_the_same_level_whatever_the_batch(tides: dict[str, Tide]) -> None:
    """The property the block rests on: each time's level is computed by the same operations
    whatever the other times asked with it (one time, a reading's 4, a block of 259, a year;
    one UTC day or several), bit for bit."""
    ts = _utc(2003, 6, 30, 17) + HOUR * np.arange(24 * 40)
    for name, tide in tides.items():
        whole = tide.predict(ts)
        for n in (1, 4, 31, 33, 259):
            for start in range(0, len(ts) - n, 97):
                assert np.array_equal(tide.predict(ts[start:start + n]), whole[start:start + n]), \
                    (name, n, start)
        assert np.array_equal(np.array([tide.predict([t])[0] for t in ts[:60]]), whole[:60]), name


@pytest.mark.parametrize("block", [1, 16, 256])
def test_tide_ahead_equals_one_predict_per_reading_on_real_times(
        tides: dict[str, Tide], providence: Series, block: int) -> None:
    """Two years of Providence's real hourly time stamps (with the record's own gaps): every
    reading's tide ahead from the block equals the per-reading call with ``==``, and the block
    path is the one taken (one predict call per block, not per reading)."""
    sel = (providence.ts >= _utc(1996)) & (providence.ts < _utc(1998))
    ts = [float(t) for t, v in zip(providence.ts[sel], providence.values[sel]) if v == v]
    for name, tide in tides.items():
        ahead = TideAhead(tide, HOUR, 3, block)
        for t in ts:
            assert ahead.levels(t) == _per_reading(tide, t, 3), (name, t)
        assert ahead.blocks <= len(ts) // block + ahead.singles + 1, (name, ahead)
        assert ahead.singles < 20, (name, ahead)  # the record's gaps, not every reading


def test_off_grid_readings_fall_back_to_one_call_and_keep_the_numbers(
        tides: dict[str, Tide]) -> None:
    """Gap shorter and longer than the block, jitter, time going back (inside the block and
    before it), a NaN time, fractional times and a fractional step: every answer equals the
    per-reading call; which path answered is checked through the counters."""
    tide = tides["card"]
    t0 = _utc(2024, 1, 1)
    ahead = TideAhead(tide, HOUR, 3, block=16)

    def check(t: float) -> None:
        got, want = ahead.levels(t), _per_reading(tide, t, 3)
        assert got == want or (np.isnan(want).all() and np.isnan(got).all()), t

    check(t0)  # the first reading: one call, no block yet
    assert (ahead.blocks, ahead.singles) == (0, 1)
    check(t0 + HOUR)  # its successor starts a block
    assert (ahead.blocks, ahead.singles) == (1, 1)
    for k in range(2, 12):
        check(t0 + k * HOUR)
    check(t0 + 14 * HOUR)  # a 2-hour gap inside the block: served from it
    check(t0 + 5 * HOUR)  # time going back inside the block: still the block's numbers
    assert (ahead.blocks, ahead.singles) == (1, 1)
    check(t0 + 14 * HOUR + 17.0)  # jitter: off the grid, one call
    check(t0 + 15 * HOUR)  # back on the grid, still inside the block
    assert (ahead.blocks, ahead.singles) == (1, 2)
    check(t0 + 40 * HOUR)  # a gap beyond the block: one call...
    check(t0 + 41 * HOUR)  # ...then a new block from its successor
    assert (ahead.blocks, ahead.singles) == (2, 3)
    check(t0 - 100 * HOUR)  # a clock stepped far back: before the block
    assert (ahead.blocks, ahead.singles) == (2, 4)
    check(float("nan"))
    check(t0 + 0.5)  # fractional times never make a block (their sums are not exact)
    check(t0 + HOUR + 0.5)
    assert (ahead.blocks, ahead.singles) == (2, 7)
    frac = TideAhead(tide, 1800.5, 2, block=16)  # nor does a fractional step
    for k in range(40):
        t = t0 + 1800.5 * k
        assert frac.levels(t) == _per_reading(tide, t, 2, 1800.5)
    assert frac.blocks == 0 and frac.singles == 40


def test_utc_has_no_daylight_saving_break_and_a_repeated_local_hour_is_served(
        tides: dict[str, Tide]) -> None:
    """UNIX times are UTC: readings across the European spring and autumn changes stay one
    grid (one block per 16 readings, no fallback). A source that mislabels local time makes an
    hour repeat at the autumn change: the repeated hour is served with the same numbers."""
    tide = tides["ticon/brest-3-fra-refmar"]
    for start in (_utc(2021, 3, 27, 12), _utc(2021, 10, 30, 12)):
        ahead = TideAhead(tide, HOUR, 3, block=16)
        times = [start + k * HOUR for k in range(48)]
        for t in times:
            assert ahead.levels(t) == _per_reading(tide, t, 3)
        assert ahead.singles == 1 and ahead.blocks == 3
        repeated = [*times[:14], times[13], *times[14:17]]  # the 01:00 hour seen twice
        ahead = TideAhead(tide, HOUR, 3, block=16)
        for t in repeated:
            assert ahead.levels(t) == _per_reading(tide, t, 3)
        assert ahead.singles == 1 and ahead.blocks == 1


def _rows_per_reading(tide: Tide, thr: float, ts: np.ndarray, levels: np.ndarray,
                      horizon: int) -> np.ndarray:
    """The coastal feature rows as computed before the block (one predict per reading), from
    the module's docstring formulas."""
    rows, past, last = [], [], None
    for t, v in zip(ts.tolist(), levels.tolist()):
        if last is not None and abs(t - last - HOUR) > 0.25 * HOUR:
            past = []
        last = t
        if v != v:
            past = []
            continue
        tide_ahead = _per_reading(tide, t, horizon)
        surge = v - tide_ahead[0]
        past = [*past, (v, surge)][-4:]
        if len(past) == 4:
            rows.append([v - thr, surge, surge - past[-2][1], surge - past[0][1],
                         v - past[-2][0], *[x - thr for x in tide_ahead[1:]],
                         _max(tide_ahead) + surge - thr])
    return np.array(rows)


def test_coastal_features_are_the_per_reading_features(tides: dict[str, Tide],
                                                       providence: Series) -> None:
    """A year of real levels (227 NaNs, plus a hole cut in the times) through CoastalFeatures:
    the same rows, bit for bit, as the per-reading computation, for the card's tide, a
    plain-basis fit and Roscoff's published constants."""
    sel = (providence.ts >= _utc(1994)) & (providence.ts < _utc(1995))
    sel[np.flatnonzero(sel)[5000:5030]] = False  # and a 30-hour hole in the times
    ts, levels = providence.ts[sel], providence.values[sel]
    assert np.isnan(levels).sum() > 100 and np.any(np.diff(ts) > HOUR)  # the edge cases
    for name in ("card", "fit_plain", "ticon/roscoff-54-fra-refmar"):
        tide = tides[name]
        feats = CoastalFeatures(tide, 1.9, 3)
        _, rows = feats.transform_many(ts, levels)
        want = _rows_per_reading(tide, 1.9, ts, levels, 3)
        assert rows.shape == want.shape and len(rows) > 8000, name
        assert np.array_equal(rows, want), name


def test_short_calls_share_a_bounded_per_day_cache_that_nan_cannot_poison(
        tides: dict[str, Tide]) -> None:
    """Short calls (at most 32 times) take each UTC day's nodal factors from a per-day cache
    of at most 16 days: 30 times on 30 different days, NaN and infinite times, and hundreds of
    calls leave the numbers those of one long call and the cache bounded."""
    tide = tides["card"]
    spread = _utc(2010) + 86400.0 * np.arange(30) + 7 * HOUR  # 30 days in one short call
    whole = tide.predict(np.concatenate([spread, np.zeros(40)]))[:30]  # a long call
    assert np.array_equal(tide.predict(spread), whole)
    with np.errstate(invalid="ignore"):  # cos(inf): the warning numpy always gave
        got = tide.predict([float("nan"), spread[3], float("inf")])
    assert np.isnan(got[0]) and got[1] == whole[3] and not np.isfinite(got[2])
    for k in range(300):
        t = spread[k % 30]
        assert tide.predict([t, float("nan")])[0] == whole[k % 30]
        assert len(tide._nodal_cache) <= 16  # type: ignore[attr-defined]


def test_coastal_features_through_clock_steps_jitter_and_nan_times(tides: dict[str, Tide],
                                                                  providence: Series) -> None:
    """The real levels of a month with the clock misbehaving: a 5-hour stretch replayed (the
    clock stepped back), readings 17 s late, a NaN time, a jump of 20 days ahead: the rows
    are still bit for bit those of one predict call per reading."""
    start = int(np.searchsorted(providence.ts, _utc(1996, 3, 1)))
    ts = providence.ts[start:start + 24 * 30].copy()
    levels = providence.values[start:start + 24 * 30].copy()
    ts = np.concatenate([ts[:300], ts[295:300], ts[300:]])  # 5 hours again
    levels = np.concatenate([levels[:300], levels[295:300], levels[300:]])
    ts[400:404] += 17.0
    ts[500] = float("nan")
    ts[600:] += 20 * 86400.0
    tide = tides["card"]
    feats = CoastalFeatures(tide, 1.9, 3)
    _, rows = feats.transform_many(ts, levels)
    want = _rows_per_reading(tide, 1.9, ts, levels, 3)
    assert rows.shape == want.shape and len(rows) > 600
    assert np.array_equal(rows, want, equal_nan=True)
    # The paths taken: plain calls for the first reading, the first late one, the first back
    # on time, the NaN time and the jump (5); blocks from the 2nd reading, past the first
    # block's end, from the 2nd late reading (a late grid is a grid), from the 2nd back on
    # time, after the jump (5). The replayed hours and the reading after the NaN are served.
    assert (feats._tide_ahead.blocks, feats._tide_ahead.singles) == (5, 5)
