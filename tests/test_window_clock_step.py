"""A wall clock stepped back must not blind the windows (issue 14 item 6)."""

from __future__ import annotations

import logging

import pytest

from frugalai.features.window import WindowAggregator


def _closed(w: WindowAggregator, samples: list[tuple[float, float]]) -> list[float]:
    return [c.start for ts, v in samples if (c := w.update(ts, v)) is not None]


def test_clock_stepped_back_one_hour_reanchors_at_once(caplog: pytest.LogCaptureFixture) -> None:
    w = WindowAggregator(window_s=900)
    t0 = 1_700_000_100.0
    before = [(t0 + 10 * i, 1.0) for i in range(360)]            # one hour of samples
    stepped = before[-1][0] - 3600 + 10                          # NTP sets the clock back 1 h
    after = [(stepped + 10 * i, 2.0) for i in range(360)]        # the next hour, old times
    with caplog.at_level(logging.WARNING, "frugalai.features"):
        closed = _closed(w, before + after)
    # Before the step: 3 windows closed in the first hour. After it, the windows go on at the
    # new time (3 more closed in the next hour), instead of nothing for 60 minutes.
    after_step = [s for s in closed if s < before[-1][0] - 900]
    assert len(after_step) >= 3
    assert w.clock_steps == 1
    steps = [r for r in caplog.records if "clock stepped" in r.getMessage()]
    assert len(steps) == 1                                       # logged once, not per sample


def test_small_jitter_is_not_a_clock_step() -> None:
    w = WindowAggregator(window_s=60)
    assert _closed(w, [(59.0, 1.0), (61.0, 1.0), (59.5, 5.0), (62.0, 1.0), (121.0, 1.0)]) == \
        [0.0, 60.0]
    assert w.clock_steps == 0


def test_absurd_forward_jump_is_counted_and_windows_resume() -> None:
    w = WindowAggregator(window_s=60)
    samples = [(0.0, 1.0), (30.0, 1.0), (4e9, 1.0), (4e9 + 70, 1.0), (100.0, 1.0), (130.0, 1.0),
               (170.0, 1.0)]
    closed = _closed(w, samples)
    assert w.clock_steps == 2          # the jump to 2096 and the step back
    assert closed[-1] == 60.0          # windows at the true time again right after
