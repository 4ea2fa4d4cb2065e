"""``frugalai demo``: an emulated Linky on a real pty, the pipeline on it, events printed.

Two simulated days are compressed into about 25 real seconds. The profile model starts from 28
days of the same household's history (another seed): what a gateway knows after four weeks on
site. Anomalies (night load, a spike, a dropout) are injected at known times; a fraction of
frames is corrupted on the wire to show that bad frames are counted and skipped.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from frugalai.config import FlowConfig, PolicyConfig
from frugalai.events.codec import BINARY_SIZE
from frugalai.events.event import Event
from frugalai.features.profile import DailyProfile
from frugalai.pipeline import Flow, Pipeline, ProfileScorer
from frugalai.sim.clock import SimClock
from frugalai.sim.household import HouseholdProfile, demo_anomalies
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.sources.serial_source import SerialSource
from frugalai.uplink.outbox import Outbox

#: Monday 5 January 2026, 00:00 Europe/Paris (UTC+1).
DEMO_START = datetime(2026, 1, 4, 23, 0, tzinfo=timezone.utc).timestamp()


@dataclass(frozen=True)
class DemoOptions:
    sim_hours: float = 48.0
    seconds: float = 25.0
    seed: int = 1
    corrupt_rate: float = 0.02
    frame_period_s: float = 60.0
    history_days: int = 28
    state_dir: Optional[str] = None


def fit_history(seed: int, days: int, tz_offset_h: float = 1.0) -> DailyProfile:
    """A profile learned from ``days`` of this household's past (sampled every 5 minutes)."""
    history = HouseholdProfile(seed=seed + 1000, tz_offset_h=tz_offset_h)
    profile = DailyProfile(tz_offset_h=tz_offset_h)
    start = DEMO_START - days * 86400
    for i in range(days * 96):
        t0 = start + i * 900
        mean = sum(history.power(t0 + k * 300) for k in range(3)) / 3
        profile.learn_one(t0, mean)
    return profile


def run_demo(options: DemoOptions, on_event: Callable[[Event], None]) -> dict[str, object]:
    """Run the demo; call ``on_event`` for each delivered event; return the summary."""
    speed = options.sim_hours * 3600 / options.seconds
    clock = SimClock(DEMO_START, speed)
    household = HouseholdProfile(seed=options.seed, anomalies=demo_anomalies(DEMO_START))
    profile = fit_history(options.seed, options.history_days)
    state = Path(options.state_dir or tempfile.mkdtemp(prefix="frugalai-demo-"))
    meter = TicMeterEmulator(household, clock, frame_period_s=options.frame_period_s,
                             corrupt_rate=options.corrupt_rate, seed=options.seed)
    flow_config = FlowConfig(name="linky", source=f"serial://{meter.path}?protocol=tic",
                             sensor_id=1, policy=PolicyConfig(on=4.0, off=2.0))
    source = SerialSource(meter.path, sensor="linky", protocol="tic", mode="historique",
                          clock=clock)
    flow = Flow(flow_config, source, ProfileScorer(profile))
    pipeline = Pipeline([flow], Outbox(state / "outbox.sqlite"), sinks=[], on_event=on_event)
    stop = threading.Event()
    try:
        meter.start(until=DEMO_START + options.sim_hours * 3600)
        pipeline.run(stop, duration=options.seconds + 0.5)
        summary = pipeline.summary()
    finally:
        meter.close()
        pipeline.close()
    summary.update({
        "simulated_hours": options.sim_hours,
        "speed": round(speed),
        "frames_sent": meter.frames_sent,
        "frames_corrupted_on_wire": meter.frames_corrupted,
        "binary_event_bytes": BINARY_SIZE,
        "state_dir": str(state),
    })
    return summary
