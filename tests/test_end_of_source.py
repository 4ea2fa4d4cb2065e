"""A batch run ends when its source does, not on the service's next tick (issue 26).

The service is given a one-hour tick and a one-hour status interval: if the end of the replay
did not wake it, ``run`` would sleep an hour, and the join below would give up long before.
Every reading of the file is processed and every event delivered before it exits.
"""

from __future__ import annotations

import threading
from pathlib import Path

from frugalai.config import load_config
from frugalai.service.daemon import Service
from frugalai.service.supervisor import FlowRunner


def _config(tmp_path: Path, rows: int) -> Path:
    data = tmp_path / "d.csv"
    with open(data, "w") as fh:
        fh.write("ts,p\n")
        for k in range(rows):  # a square wave: alarms and clears
            fh.write(f"{1_700_000_000 + 10 * k},{3000.0 if (k // 30) % 2 else 500.0}\n")
    config = tmp_path / "gateway.toml"
    config.write_text(f"""[gateway]
id = "gw"
state_dir = "{tmp_path / 'state'}"

[service]
status_interval_s = 3600

[[flow]]
name = "p"
source = "replay://{data}?speed=max&value=p&end=stop"
quantity = "p"
aggregate = "mean"
window_s = 60
summary_s = 0
model = "threshold"
  [flow.policy]
  on = 2000.0
  off = 1000.0

[[uplink]]
url = "file://{tmp_path / 'events.jsonl'}?codec=json"
""")
    return config


def test_run_returns_once_the_replay_is_read(tmp_path: Path) -> None:
    config = _config(tmp_path, 600)
    service = Service(str(config), load_config(config), tick=3600.0)
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(service.run()), daemon=True)
    thread.start()
    thread.join(120)  # far below the tick: only the end-of-source wake-up gets here
    ended = not thread.is_alive()
    if not ended:
        service.stop_requested.set()
        thread.join(30)
    assert ended, "the service kept sleeping after its only source ended"
    assert code == [0]
    assert service.runners["p"].state == "finished"
    assert service.runners["p"].flow.stats.readings == 600
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == service.runners["p"].flow.stats.events > 0


def test_flow_runner_calls_on_end_after_its_final_state(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, 50))
    from frugalai.pipeline import Flow, run_flow
    from frugalai.plan import build_plans

    plan = build_plans(config, check_uplinks=False).flows[0]
    seen: list[str] = []
    runner: FlowRunner

    def loop(flow: Flow, stop: threading.Event, watch: FlowRunner) -> None:
        run_flow(flow, stop, lambda events: None, watch)

    runner = FlowRunner(Flow.from_plan(plan), loop, plan.open_source,
                        on_end=lambda: seen.append(runner.state))
    runner.start()
    assert runner.join(60)
    assert seen == ["finished"]
