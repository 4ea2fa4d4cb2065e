"""End to end: emulated meter on a pty -> profile model -> events in the outbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from frugalai.demo import DemoOptions, run_demo
from frugalai.events.event import Event
from frugalai.features.profile import DailyProfile
from frugalai.features.window import WindowAggregator
from frugalai.sim.household import HouseholdProfile


def test_demo_finds_every_injected_anomaly_and_nothing_else(tmp_path: Path) -> None:
    events: list[Event] = []
    summary = run_demo(DemoOptions(seconds=10, state_dir=str(tmp_path)), events.append)
    alarms = [e for e in events if e.kind == "alarm"]
    # demo_anomalies: night load at 01:30 Mon, spike 14:00, dropout Tue 02:00, night load 16:00
    # (local, UTC+1); an alarm fires at the end of the first window that overlaps one.
    starts_h = [1.5, 14, 26, 40]
    assert len(alarms) == len(starts_h), [(e.kind, e.ts) for e in events]
    from frugalai.demo import DEMO_START

    for alarm, start in zip(alarms, starts_h):
        delay_h = (alarm.ts - DEMO_START) / 3600 - start
        assert 0 <= delay_h <= 1.0, f"alarm {delay_h:.2f} h after the anomaly began"
    assert summary["frames_rejected"] > 0
    assert summary["outbox"]["pending"] == 0
    assert summary["upstream_bytes_binary"] == 11 * len(events)


def test_profile_scores_after_learning_and_serialises() -> None:
    house = HouseholdProfile(seed=4)
    start = 1_767_567_600.0  # a Monday, 00:00 Paris
    values = house.series(start, 900, 96 * 14)
    profile = DailyProfile().learn_many(zip(start + 900 * __import__("numpy").arange(96 * 14),
                                            values))
    ts = start + 15 * 86400 + 20 * 3600
    assert profile.score_one(ts, house.expected(ts)) < 1.5
    assert profile.score_one(ts, house.expected(ts) + 3000) > 4
    again = DailyProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again.score_one(ts, 5000.0) == profile.score_one(ts, 5000.0)


def test_window_rate_turns_energy_index_into_power() -> None:
    w = WindowAggregator(900)
    closed = None
    for k in range(0, 1000, 60):  # 1 kW: +1000 Wh per hour
        closed = closed or w.update(float(k), 5000 + 1000 * k / 3600)
    assert closed is not None and abs(closed.rate_per_h - 1000) < 1e-6


def test_demo_command_runs_and_prints_events() -> None:
    proc = subprocess.run([sys.executable, "-m", "frugalai", "demo", "--seconds", "6", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert any(x.get("kind") == "alarm" for x in lines)
    assert "summary" in lines[-1] and lines[-1]["summary"]["readings"] > 100


def test_flow_counts_and_summary_counts_agree_when_a_window_has_no_rate() -> None:
    """A 15-minute window holding one energy index has no rate: it is neither counted by the
    flow nor by its summary (they disagreed, and the MQTT test failed now and then)."""
    from types import SimpleNamespace

    from frugalai.config import FlowConfig
    from frugalai.pipeline import Flow, build_scorer
    from frugalai.reading import Reading
    from frugalai.sources.base import SourceStats

    config = FlowConfig(name="m", source="serial:///dev/null", model="threshold",
                        aggregate="rate")
    flow = Flow(config, SimpleNamespace(stats=SourceStats()), build_scorer(config, "."))  # type: ignore[arg-type]
    index = 1000.0
    for ts in (0, 300, 600, 950, 1900, 2200, 2500):  # the window at 900 holds one sample
        index += 100
        flow.process(Reading(float(ts), "m", {"energy_total_wh": index}))
    summary = flow.take_summary(3000.0)
    assert summary.stats is not None
    assert flow.stats.windows == summary.stats.windows == 1
