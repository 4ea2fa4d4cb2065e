"""A flow whose model fails on every window makes ``run`` exit non-zero (code 4), so that the
unit's ``Restart=on-failure`` restarts it and a supervisor sees it; never exit 0.

The Service in-process on an emulated TIC meter (real pty), with a registered scorer that raises
on every call, as a bundle broken in a way its self-test did not catch would.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from service_helpers import flow_toml, gateway_toml, start_meter, wait_for

from frugalai import registry
from frugalai.cli import cli
from frugalai.config import load_config
from frugalai.service.daemon import EXIT_MODEL_FAILING, Service


class BrokenModel:
    def __init__(self, plan: Any) -> None:
        self.calls = 0

    def score_one(self, window: Any, value: float) -> Any:
        self.calls += 1
        raise RuntimeError("weights out of range")


def service_for(tmp_path: Path, extra: str) -> Service:
    registry.scorers.register("broken", BrokenModel)
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(
        tmp_path / "state",
        [flow_toml("a", tmp_path / "ttya", 1).replace('model = "threshold"', 'model = "broken"')],
        [f"file://{tmp_path / 'events.jsonl'}"], extra))
    return Service(str(config), load_config(config))


def test_run_exits_4_when_the_model_fails_on_every_window_for_the_configured_time(
        tmp_path: Path) -> None:
    meter = start_meter(tmp_path / "ttya")
    service = service_for(tmp_path, "model_failure_exit_s = 2")
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(service.run(120)), daemon=True)
    try:
        thread.start()
        seen: list[str] = []

        def degraded() -> bool:
            if service.runners.get("a") is None:
                return False
            flow = service.snapshot()["flows"]["a"]
            if flow["state"] == "degraded":
                seen.append(flow["why"])
            return bool(seen) or bool(code)

        wait_for(degraded, 60, "flow a degraded")
        assert seen and seen[0].startswith("model failing for"), seen
        assert "weights out of range" in seen[0]
        thread.join(60)
    finally:
        service.stop_requested.set()
        thread.join(30)
        meter.close()
    assert code == [EXIT_MODEL_FAILING]
    assert "the model failed on every window" in service.model_failed
    assert service.runners["a"].flow.stats.model_ok == 0


def test_a_run_that_ends_with_every_model_call_failed_does_not_exit_0(tmp_path: Path) -> None:
    meter = start_meter(tmp_path / "ttya")
    service = service_for(tmp_path, "model_failure_exit_s = 0")  # 0: the timed exit is off
    try:
        code = service.run(4)
    finally:
        meter.close()
    assert service.runners["a"].flow.stats.errors > 0
    assert code == EXIT_MODEL_FAILING


def test_the_key_is_in_the_one_settings_table() -> None:
    shown = CliRunner().invoke(cli, ["config", "schema"])
    assert shown.exit_code == 0
    line = next(ln for ln in shown.output.splitlines() if "model_failure_exit_s" in ln)
    assert "service.model_failure_exit_s" in line and "900" in line
