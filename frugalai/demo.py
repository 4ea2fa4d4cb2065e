"""``frugalai demo``: an emulated Linky on a real pty, the pipeline on it, events printed.

Two simulated days are compressed into about 25 real seconds. The model is the shipped
``energy-anomaly`` bundle (trained on a real facility's 1997 demand, run here on the numpy
``reference`` backend); its residual features start from 28 days of the same household's
history (another seed): what a gateway knows after four weeks on site.
Anomalies (night load, a spike, a dropout) are injected at known times; a fraction of
frames is corrupted on the wire to show that bad frames are counted and skipped.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from frugalai.config import Config, FlowConfig, GatewayConfig, ProfileModelConfig
from frugalai.events.codec import BINARY_SIZE
from frugalai.events.event import Event
from frugalai.pipeline import Pipeline
from frugalai.report.worth import WindowLog, run_worth
from frugalai.runtime.model import load_model, shipped_models_dir
from frugalai.runtime.scorers import AnomalyScorer
from frugalai.sim.clock import SimClock
from frugalai.sim.device import stop_when_done
from frugalai.sim.household import HouseholdProfile, demo_anomalies
from frugalai.sim.pty import PtyPort
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.sources.serial_source import SerialSource

ENERGY_BUNDLE = "energy-anomaly"
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


def fit_history(seed: int, days: int, tz_offset_h: float = 1.0,
                backend: str = "reference", precision: str = "fp32") -> AnomalyScorer:
    """The shipped anomaly model, its features seeded with ``days`` of this household's past
    (15-min means of 5-minute samples)."""
    model = load_model(shipped_models_dir() / ENERGY_BUNDLE, backend, precision)
    scorer = AnomalyScorer(model, tz_offset_h=tz_offset_h)
    seed_history(scorer, seed, days, tz_offset_h)
    return scorer


def seed_history(scorer: AnomalyScorer, seed: int, days: int, tz_offset_h: float) -> None:
    """Teach ``scorer`` ``days`` of this household's past, ending at the demo's start."""
    history = HouseholdProfile(seed=seed + 1000, tz_offset_h=tz_offset_h)
    start = DEMO_START - days * 86400
    for i in range(days * 96):
        t0 = start + i * 900
        scorer.learn_one(t0, sum(history.power(t0 + k * 300) for k in range(3)) / 3)


def demo_config(port: str, state: Path) -> Config:
    """The demo's gateway, as a user would write it: the Linky on a serial port, the shipped
    anomaly bundle (window and policy from its card), the site's time zone (Paris, UTC+1)."""
    return Config(
        gateway=GatewayConfig(id="demo", state_dir=str(state)),
        flow=(FlowConfig(name="linky", source=f"serial://{port}?protocol=tic&mode=historique",
                         sensor_id=1, model=ENERGY_BUNDLE,
                         profile=ProfileModelConfig(tz_offset_h=1.0)),),
        uplink=(),
    )


def run_demo(options: DemoOptions, on_event: Callable[[Event], None]) -> dict[str, object]:
    """Run the demo; call ``on_event`` for each delivered event; return the summary."""
    speed = options.sim_hours * 3600 / options.seconds
    household = HouseholdProfile(seed=options.seed, anomalies=demo_anomalies(DEMO_START))
    state = Path(options.state_dir or tempfile.mkdtemp(prefix="frugalai-demo-"))
    port = PtyPort()
    meter: Optional[TicMeterEmulator] = None

    def gateway_clock() -> float:  # the meter's, once it exists (it starts after the model)
        return meter.gateway_clock() if meter is not None else DEMO_START

    delivered: list[Event] = []

    def deliver(event: Event) -> None:
        delivered.append(event)
        on_event(event)

    pipeline = Pipeline.from_config(demo_config(port.path, state), on_event=deliver,
                                    source_kwargs={"clock": gateway_clock})
    flow = pipeline.flows[0]
    interrupted = False
    try:
        if not isinstance(flow.scorer, AnomalyScorer) or \
                not isinstance(flow.source, SerialSource):
            raise TypeError(f"the demo flow should score a bundle on serial, got "
                            f"{flow.scorer!r} on {flow.source!r}")
        seed_history(flow.scorer, options.seed, options.history_days,
                     flow.config.profile.tz_offset_h or 0.0)
        log = WindowLog(flow.scorer)  # what the alarms were worth (frugalai.report.worth)
        flow.scorer = log  # the planned scorer, its windows logged
        # The simulated clock starts once the model is ready (at this speed a second of
        # loading would be hours of the household's life going by unobserved).
        clock = SimClock(DEMO_START, speed)
        meter = TicMeterEmulator(household, clock, frame_period_s=options.frame_period_s,
                                 corrupt_rate=options.corrupt_rate, seed=options.seed, port=port)
        source = flow.source
        meter.lockstep_with(lambda: source.stats.bytes_read)
        stop = threading.Event()
        source.open()  # plugged in before the meter speaks: pyserial flushes input on open
        meter.start(until=DEMO_START + options.sim_hours * 3600)
        running = meter
        stop_when_done(lambda: running.running, stop, settle_s=0.3)
        # The bound only matters if the meter thread hangs.
        try:
            pipeline.run(stop, duration=options.seconds * 4 + 30)
        except KeyboardInterrupt:  # Ctrl-C: what was seen so far is still worth a summary
            interrupted = True
        summary = pipeline.summary()
    finally:
        if meter is not None:
            meter.close()
        else:
            port.close()
        pipeline.close()
    assert meter is not None
    summary.update({
        "simulated_hours": options.sim_hours,
        "speed": round(speed),
        "frames_sent": meter.frames_sent,
        "frames_corrupted_on_wire": meter.frames_corrupted,
        "binary_event_bytes": BINARY_SIZE,
        "state_dir": str(state),
        "alarm_windows": run_worth(log, delivered),
        "interrupted": interrupted,
        "injected": [{"kind": a.kind, "start": a.start, "end": a.start + a.duration_s}
                     for a in household.anomalies],
    })
    return summary
