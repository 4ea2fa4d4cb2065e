"""Event policies (pure): debounce, rate limit with state coalescing, periodic summaries."""

from __future__ import annotations

import doctest
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import frugalai.events.codec
import frugalai.events.policy
from frugalai.events.codec import MAX_SIZE, SUMMARY_SIZE, decode_binary, encode_binary
from frugalai.events.event import PRIORITY, Event, Stats
from frugalai.events.policy import Debounce, RateLimit, SummaryAccumulator


@pytest.mark.parametrize("module", [frugalai.events.policy, frugalai.events.codec])
def test_doctests(module: object) -> None:
    assert doctest.testmod(module).failed == 0  # type: ignore[arg-type]


def test_debounce_needs_n_consecutive() -> None:
    d = Debounce(n=3)
    out = [d.update_one(c) for c in (1, 1, 1, 2, 2, 1, 2, 2, 2, 2)]
    assert out == [None, None, 1, None, None, None, None, None, 2, None]
    with pytest.raises(ValueError):
        Debounce(0)


def test_rate_limit_counts_and_releases_the_latest_state() -> None:
    r = RateLimit(per_hour=2, burst=2)  # one token every 30 minutes
    assert [r.allow("a", k, t) for k, t in (("alarm", 0), ("clear", 60), ("alarm", 120),
                                            ("clear", 180))] == [True, True, False, False]
    assert r.allow("b", "alarm", 200), "the budget is per sensor"
    assert r.allow("a", "summary", 200), "summaries are exempt: they are the heartbeat"
    assert r.suppressed == 2
    assert r.poll(1000) == [], "no token yet"
    # held state is 'clear', which is what upstream already has: nothing to resend
    assert r.poll(1801) == []
    r.allow("a", "alarm", 1802)  # uses the refilled token
    assert not r.allow("a", "clear", 1803)
    assert r.poll(3700) == [("a", "clear", None)], "the true state reaches upstream"
    assert r.suppressed == 3


@given(st.lists(st.sampled_from(["alarm", "clear"]), min_size=1, max_size=60),
       st.floats(min_value=1, max_value=120))
def test_rate_limit_never_exceeds_budget_and_ends_in_true_state(kinds: list[str],
                                                                step: float) -> None:
    r = RateLimit(per_hour=4, burst=2)
    sent: list[tuple[float, str]] = []
    t = 0.0
    for kind in kinds:
        t += step
        if r.allow("s", kind, t):
            sent.append((t, kind))
        sent += [(t, k) for _, k, _ in r.poll(t)]
    t += 10 * 3600
    sent += [(t, k) for _, k, _ in r.poll(t)]
    assert sent[-1][1] == kinds[-1]
    for i, (ti, _) in enumerate(sent):  # tokens: 2 at once + 4 per hour
        window = [x for x, _ in sent[: i + 1] if x > ti - 3600]
        assert len(window) <= 2 + 4 + 1
    assert len(sent) + r.suppressed >= len(kinds)


def test_summary_accumulator_and_its_wire_form() -> None:
    acc = SummaryAccumulator(start=1_700_000_000.0)
    for v in (100.0, 300.0, math.nan, 200.0):
        acc.reading_one()
        acc.window_one(v, v / 100)
    acc.error_one(2)
    acc.event_one()
    stats = acc.take(1_700_003_600.0, dropped=3)
    assert stats == Stats(period_s=3600, readings=4, windows=3, events=1, errors=2, dropped=3,
                          min=100.0, mean=200.0, max=300.0, max_score=3.0)
    empty = acc.take(1_700_007_200.0)
    assert empty.readings == 0 and math.isnan(empty.mean) and math.isnan(empty.max_score)
    event = Event("summary", "linky", 1_700_003_600.0, sensor_id=4, seq=9, stats=stats)
    raw = encode_binary(event)
    assert len(raw) == SUMMARY_SIZE == 37 <= MAX_SIZE <= 51
    back = decode_binary(raw)
    on_wire = {k: v for k, v in stats.as_dict().items() if k not in ("implausible", "lost")}
    # those two fold into errors/dropped; no counter reached its u16 cap
    assert back["stats"] == {**on_wire, "max_score": 3.0, "saturated": []}
    short = decode_binary(encode_binary(event, max_size=11))
    assert short["kind"] == "summary" and short["value"] == 200.0 and short["score"] == 3.0
    none = decode_binary(encode_binary(Event("summary", "x", 0.0, stats=empty)))
    assert none["stats"]["mean"] is None and none["stats"]["max_score"] is None
    with pytest.raises(ValueError, match="fits 10 bytes"):
        encode_binary(event, max_size=10)


def test_summary_counters_saturate_on_the_wire() -> None:
    big = Stats(period_s=2**40, readings=2**40, windows=10**6, events=10**6, errors=-5)
    back = decode_binary(encode_binary(Event("summary", "x", 0.0, stats=big)))["stats"]
    assert (back["period_s"], back["readings"], back["windows"], back["events"],
            back["errors"]) == (2**28 - 1, 2**32 - 1, 65535, 65535, 0)
    assert back["saturated"] == ["windows", "events"]  # the capped counts say they are


def test_event_json_round_trip_with_stats() -> None:
    from frugalai.events.codec import decode_json, encode_json

    stats = Stats(period_s=60, readings=5, min=math.nan)
    event = Event("summary", "linky", 1.0, seq=3, stats=stats)
    back = decode_json(encode_json(event))
    assert back.stats is not None and back.stats.readings == 5 and math.isnan(back.stats.min)
    assert back.id == "linky:3"


def test_priorities_alarms_first() -> None:
    assert PRIORITY["alarm"] < PRIORITY["class"] < PRIORITY["summary"] < PRIORITY["heartbeat"]


def test_flow_applies_the_rate_limit_and_still_reports_the_final_state() -> None:
    """Flow.process wiring: hysteresis -> rate limit -> events; the score is the window mean."""
    from frugalai.config import FlowConfig, PolicyConfig
    from frugalai.pipeline import Flow
    from frugalai.reading import Reading
    from frugalai.scoring import ThresholdScorer  # the window's mean is the score


    # health off: the readings' two-hour gap below is the test's, not a sensor fault to report
    config = FlowConfig(name="s", source="serial:///dev/null", quantity="x", aggregate="mean",
                        window_s=60, policy=PolicyConfig(on=4, off=2, max_per_hour=1, burst=1),
                        health=False)
    flow = Flow(config, source=None, scorer=ThresholdScorer())  # type: ignore[arg-type]
    # one reading per minute: windows flap alarm/clear every minute for 10 minutes, end high
    scores = [5.0, 1.0] * 5 + [5.0] * 72
    out = []
    for i, s in enumerate(scores):
        out += [(e.kind, e.ts) for e in flow.process(Reading(60.0 * i + 1, "s", {"x": s}))]
    assert out[0] == ("alarm", 60.0)
    assert flow.limit is not None and flow.limit.suppressed == 10
    # the clears and alarms in between were held; the state upstream already knows (alarm)
    # is the final one, so nothing more is sent
    assert out == [("alarm", 60.0)]
    flow.process(Reading(60.0 * 200, "s", {"x": 1.0}))
    flow.process(Reading(60.0 * 201, "s", {"x": 1.0}))
    assert flow.stats.events == 2, "the clear after an hour passes the limit"
