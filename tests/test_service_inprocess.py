"""The Service object in-process: watchdog withheld while a model is stuck; bounded stop."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from service_helpers import NotifySocket, flow_toml, gateway_toml, start_meter, wait_for

from frugalai import registry
from frugalai.config import load_config
from frugalai.errors import UplinkError
from frugalai.scoring import Score
from frugalai.service.daemon import Service
from frugalai.service.notify import Notifier


class StuckModel:
    """A model whose code never returns (until released): an infinite loop in a bundle."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def score_one(self, window: Any, value: float) -> Score:
        self.release.wait(60)
        return Score(value)


def start(service: Service, duration: float = 60.0) -> tuple[threading.Thread, list[int]]:
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(service.run(duration)), daemon=True)
    thread.start()
    return thread, code


def test_watchdog_pings_stop_while_a_model_is_stuck_and_resume_after(tmp_path: Path) -> None:
    meter = start_meter(tmp_path / "ttya")
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "state", [flow_toml("a", tmp_path / "ttya", 1)],
                                   [f"file://{tmp_path / 'events.jsonl'}"], "stall_s = 0.5"))
    notify = NotifySocket(tmp_path / "notify.sock")
    service = Service(str(config), load_config(config),
                      Notifier({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000"}))
    thread, code = start(service)
    try:
        notify.collect(lambda m: m.count("WATCHDOG=1") >= 3)
        stuck = StuckModel()
        service.runners["a"].flow.scorer = stuck
        msgs = notify.collect(lambda m: any(x.startswith("STATUS=unhealthy") for x in m))
        unhealthy_at = next(i for i, x in enumerate(msgs) if x.startswith("STATUS=unhealthy"))
        assert "flow a: stuck in one step" in msgs[unhealthy_at]
        time.sleep(0.5)
        notify.collect(lambda m: False, timeout=0.3)
        assert "WATCHDOG=1" not in notify.messages[unhealthy_at + 1:]
        assert service.snapshot()["healthy"] is False
        stuck.release.set()
        n = len(notify.messages)
        notify.collect(lambda m: "WATCHDOG=1" in m[n:])
    finally:
        service.stop_requested.set()
        thread.join(30)
        meter.close()
        notify.close()
    assert code == [0]


class HangingSink:
    """An uplink whose send never returns (a broker that accepts TCP and then says nothing)."""

    def __init__(self, url: str, **_: Any) -> None:
        self.release = threading.Event()
        self.calls = 0

    def send(self, events: Any) -> Any:
        self.calls += 1
        if self.calls > 1:
            self.release.wait(60)
        raise UplinkError("broker gone")

    def close(self) -> None:
        self.release.set()


def test_stop_is_bounded_even_when_the_uplink_hangs(tmp_path: Path) -> None:
    registry.uplinks.register("hang", HangingSink)
    meter = start_meter(tmp_path / "ttya")
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(tmp_path / "state", [flow_toml("a", tmp_path / "ttya", 1)],
                                   ["hang://"], "stall_s = 0.5").replace("stop_timeout_s = 10.0",
                                                            "stop_timeout_s = 1.0"))
    service = Service(str(config), load_config(config), Notifier({}))
    thread, code = start(service)
    try:
        wait_for(lambda: service.pipeline.outbox.depth() >= 1, what="an event waiting")
        wait_for(lambda: service.pipeline.sinks[0].sink.calls >= 2, what="a hanging send")
        reason = wait_for(service.health, what="the hang noticed")
        assert reason.startswith("delivery to the uplinks stuck for")
        service.stop_requested.set()
        began = time.monotonic()
        thread.join(30)
        took = time.monotonic() - began
    finally:
        meter.close()
    assert code == [0]
    assert service.pipeline.sinks[0].state == "failing"
    # bounded: the stop did not wait for the 60 s hang (no wall-clock limit asserted beyond
    # "it returned"; the figure is in the message for reading)
    assert not thread.is_alive(), f"stop took {took:.1f} s"
