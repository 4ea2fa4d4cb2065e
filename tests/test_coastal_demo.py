"""End to end: coastal node -> emulated RAK3172 (pty) -> lora:// -> flow -> RN2483 LoRaWAN."""

from __future__ import annotations

from pathlib import Path

import pytest

from frugalai.demo_coastal import COASTAL_START, CoastalOptions, payload_codec, run_coastal_demo
from frugalai.events.codec import decode_binary, encode_binary
from frugalai.events.event import Event
from frugalai.protocols.lorawan import lorawan_time_on_air


def test_storm_surge_alarms_go_out_over_lorawan(tmp_path: Path) -> None:
    events: list[Event] = []
    opts = CoastalOptions(seconds=8, state_dir=str(tmp_path))
    summary = run_coastal_demo(opts, events.append, *payload_codec())
    kinds = [e.kind for e in events]
    # the surge spans a couple of high tides: each one above the flood level is an alarm,
    # cleared when the water falls back; nothing on the ordinary tides before or after
    assert kinds and kinds == ["alarm", "clear"] * (len(kinds) // 2), kinds
    surge_at = COASTAL_START + opts.surge_day * 86400
    for event in events:
        assert abs(event.ts - surge_at) < 12 * 3600, (event.kind, event.ts - surge_at)
    assert all(e.value >= opts.threshold_m for e in events if e.kind == "alarm")
    flow = summary["flows"]["tide"]
    # every packet is accounted for: read, rejected by the radio CRC, or missed while the
    # modem was not listening yet; the last few may still be in flight at the end
    sent, garbled = summary["node_packets_sent"], summary["node_packets_corrupted"]
    assert garbled >= 1 and flow["rx_errors"] == garbled
    assert sent - garbled - summary["modem_packets_missed"] - flow["readings"] in range(0, 4)
    # firmware_bridge seq gaps: every garbled packet between two good ones is a lost one
    assert garbled - 2 <= flow["lost_packets"] <= garbled, (flow["lost_packets"], garbled)
    assert flow["frames_bad"] == 0 and flow["last_rssi_dbm"] < -90
    assert summary["max_level_m"] > opts.threshold_m
    uplink = next(iter(summary["uplinks"].values()))
    assert uplink["uplinks"] == summary["lorawan_uplinks_on_air"] == len(events)
    assert uplink["airtime_s"] == pytest.approx(len(events) * lorawan_time_on_air(11, 5))
    assert uplink["retries"] == {}
    assert [decode_binary(encode_binary(e))["kind"] for e in events] == kinds
    assert summary["outbox"]["pending"] == 0


def test_demo_command_coastal_scenario() -> None:
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "frugalai", "demo", "--scenario", "coastal",
                           "--seconds", "6", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert any(x.get("kind") == "alarm" and x.get("sensor") == "tide" for x in lines)
    summary = lines[-1]["summary"]
    assert summary["flows"]["tide"]["readings"] > 500
    assert summary["lorawan_uplinks_on_air"] == len(lines) - 1
