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


def test_a_flow_keeps_alarming_after_the_clock_steps_back_one_hour() -> None:
    """End to end through a threshold flow: a square load alarms and clears every minute; the
    wall clock steps back 1 h halfway. The transitions after the step are all reported (on
    c1edaa6 the flow was blind for the hour: no window, no event)."""
    from types import SimpleNamespace

    from frugalai.config import FlowConfig, from_dict
    from frugalai.pipeline import Flow, build_scorer
    from frugalai.reading import Reading
    from frugalai.sources.base import SourceStats

    config = from_dict(FlowConfig, {"name": "m", "source": "serial:///dev/null",
                                    "model": "threshold", "quantity": "apparent_power_va",
                                    "aggregate": "mean", "window_s": 60,
                                    "policy": {"on": 2000.0, "off": 1000.0}})
    flow = Flow(config, SimpleNamespace(stats=SourceStats()), build_scorer(config, "."))  # type: ignore[arg-type]
    t0 = 1_700_000_000.0
    events_after_step = 0
    for i in range(1440):                       # 2 hours of a reading every 5 s (true time)
        true_ts = t0 + 5 * i
        shown = true_ts if i < 720 else true_ts - 3600   # the clock steps back 1 h at 1 h
        load = 3000.0 if int(true_ts // 60) % 2 else 500.0
        events = flow.process(Reading(shown, "m", {"apparent_power_va": load}))
        if i >= 720:
            events_after_step += len(events)
    assert events_after_step >= 55              # one per minute for the second hour
    assert flow.window.clock_steps == 1
