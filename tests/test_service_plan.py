"""Operator-facing behaviour of flows built from plans: sane rates across a reload, one
warning when a flow's quantity never shows up, no private seams in the service."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from service_helpers import flow_toml, gateway_toml, start_meter, wait_for

from frugalai.config import FlowConfig, load_config
from frugalai.pipeline import QUANTITY_WARN_AFTER, Flow
from frugalai.reading import Reading
from frugalai.scoring import ThresholdScorer
from frugalai.service.daemon import Service
from frugalai.sources.base import SourceStats

ROOT = Path(__file__).resolve().parents[1]


def test_readings_per_second_never_goes_negative_across_a_reload(tmp_path: Path) -> None:
    meter = start_meter(tmp_path / "ttya")
    config = tmp_path / "gateway.toml"

    def write(on: float, url_tail: str = "") -> None:
        config.write_text(gateway_toml(
            tmp_path / "state", [flow_toml("a", tmp_path / "ttya", 1).replace(
                "on = 2000.0", f"on = {on}").replace("historique", "historique" + url_tail)],
            [f"file://{tmp_path / 'events.jsonl'}"]))

    write(2000.0)
    service = Service(str(config), load_config(config))
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(service.run(60)), daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.runners.get("a") is not None
                 and service.runners["a"].flow.source.stats.readings > 20, 30, "readings")
        service.snapshot()
        wait_for(lambda: time.sleep(0.3) or service.snapshot()["flows"]["a"]["readings_per_s"] > 0,
                 20, "a positive rate")
        source = service.runners["a"].flow.source
        write(2100.0)  # a policy value changes: a new flow on the same open source
        assert service.reload()
        assert service.runners["a"].flow.source is source
        assert service.runners["a"].flow.config.policy.on == 2100.0
        assert service.runners["a"].flow.source.stats.readings > 20  # its count goes on
        write(2100.0, "&time=wall")  # the source URL changes: a new source, its count restarts
        assert service.reload()
        assert service.runners["a"].flow.source is not source
        assert service.runners["a"].flow.source.stats.readings < 20
        rates: list[float] = []

        def positive_again() -> bool:
            rates.append(service.snapshot()["flows"]["a"]["readings_per_s"])
            time.sleep(0.2)
            return rates[-1] > 0

        wait_for(positive_again, 20, "the new flow's rate")
        assert min(rates) >= 0, rates  # the first one after the reload included
    finally:
        service.stop_requested.set()
        thread.join(30)
        meter.close()
    assert code == [0]


def test_a_quantity_that_never_matches_is_reported_once_with_what_was_seen(
        caplog: pytest.LogCaptureFixture) -> None:
    flow = Flow(FlowConfig(name="linky", source="test://", quantity="energy_total_kwh",
                           model="threshold"),
                type("S", (), {"stats": SourceStats()})(), ThresholdScorer())  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="frugalai.pipeline"):
        for i in range(3 * QUANTITY_WARN_AFTER):
            flow.process(Reading(float(i), "linky", {"energy_total_wh": 1000.0 + i,
                                                     "apparent_power_va": 500.0}))
    warnings = [r.getMessage() for r in caplog.records if "quantity" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "'energy_total_kwh'" in warnings[0]
    assert "apparent_power_va, energy_total_wh" in warnings[0]
    assert flow.stats.readings == 3 * QUANTITY_WARN_AFTER and flow.stats.windows == 0


def test_the_service_uses_no_private_pipeline_seams() -> None:
    """The service composes the pipeline through its public hooks only."""
    for name in ("service/daemon.py", "service/supervisor.py", "demo.py", "demo_coastal.py"):
        text = (ROOT / "frugalai" / name).read_text()
        for private in ("_flow_loop", "_wakes_delivery", "append_many =", ".process =",
                        "pipeline._", "outbox._"):
            assert private not in text, (name, private)
