"""End to end: coastal node -> emulated RAK3172 (pty) -> lora:// -> flow -> RN2483 LoRaWAN."""

from __future__ import annotations

from pathlib import Path

import pytest
from lora_helpers import level_decode, level_encode

from frugalai.demo_coastal import COASTAL_START, CoastalOptions, run_coastal_demo
from frugalai.events.codec import decode_binary, encode_binary
from frugalai.events.event import Event
from frugalai.protocols.lorawan import lorawan_time_on_air


def test_storm_surge_alarms_go_out_over_lorawan(tmp_path: Path) -> None:
    events: list[Event] = []
    opts = CoastalOptions(seconds=8, state_dir=str(tmp_path))
    summary = run_coastal_demo(opts, events.append, level_encode, level_decode)
    kinds = [e.kind for e in events]
    # the surge spans a couple of high tides: each one above the flood level is an alarm,
    # cleared when the water falls back; nothing on the ordinary tides before or after
    assert kinds and kinds == ["alarm", "clear"] * (len(kinds) // 2), kinds
    surge_at = COASTAL_START + opts.surge_day * 86400
    for event in events:
        assert abs(event.ts - surge_at) < 12 * 3600, (event.kind, event.ts - surge_at)
    assert all(e.value >= opts.threshold_m for e in events if e.kind == "alarm")
    flow = summary["flows"]["tide"]
    assert flow["readings"] > 0.9 * summary["node_packets_sent"] - summary[
        "node_packets_corrupted"] - summary["modem_packets_missed"] - 5
    assert flow["frames_bad"] >= 1 and flow["last_rssi_dbm"] < -90
    assert summary["max_level_m"] > opts.threshold_m
    uplink = next(iter(summary["uplinks"].values()))
    assert uplink["uplinks"] == summary["lorawan_uplinks_on_air"] == len(events)
    assert uplink["airtime_s"] == pytest.approx(len(events) * lorawan_time_on_air(11, 5))
    assert uplink["retries"] == {}
    assert [decode_binary(encode_binary(e))["kind"] for e in events] == kinds
    assert summary["outbox"]["pending"] == 0
