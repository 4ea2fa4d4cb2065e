"""What a SIGHUP reload keeps: a policy edit swaps a new flow onto the open source and keeps
the model's learned state; a change the model learns from (``policy.on`` for the profile
model) gives a fresh scorer on the same source. The Service in-process on a TIC meter (pty)."""

from __future__ import annotations

import threading
from pathlib import Path

from service_helpers import flow_toml, gateway_toml, start_meter, wait_for

from frugalai.config import load_config
from frugalai.service.daemon import Service


def test_a_policy_edit_keeps_the_source_and_what_the_profile_learned(tmp_path: Path) -> None:
    meter = start_meter(tmp_path / "ttya")
    config = tmp_path / "gateway.toml"

    def write(on: float, per_hour: int) -> None:
        flow = (flow_toml("a", tmp_path / "ttya", 1).replace('model = "threshold"',
                                                            'model = "profile"')
                .replace("on = 2000.0", f"on = {on}").replace("off = 1000.0", "off = 1.0")
                + f"  max_per_hour = {per_hour}\n")
        config.write_text(gateway_toml(tmp_path / "state", [flow],
                                       [f"file://{tmp_path / 'events.jsonl'}"]))

    write(4.0, 0)
    service = Service(str(config), load_config(config))
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(service.run(60)), daemon=True)
    thread.start()
    try:
        wait_for(lambda: service.runners.get("a") is not None
                 and service.runners["a"].flow.stats.windows > 3, 30, "windows scored")
        first = service.runners["a"].flow
        write(4.0, 30)  # the rate limit: after the model
        assert service.reload()
        second = service.runners["a"].flow
        assert second is not first and second.limit is not None
        assert second.source is first.source and second.scorer is first.scorer
        assert second.stats.windows >= first.stats.windows  # counts go on
        write(5.0, 30)  # the profile learns below policy.on: a fresh scorer, same source
        assert service.reload()
        third = service.runners["a"].flow
        assert third.source is first.source and third.scorer is not first.scorer
    finally:
        service.stop_requested.set()
        thread.join(30)
        meter.close()
    assert code == [0]
