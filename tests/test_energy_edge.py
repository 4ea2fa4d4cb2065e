"""The node-vs-gateway energy estimate (frugalai.energy.edge): its arithmetic and sources."""

from __future__ import annotations

import pytest

from frugalai.energy.edge import (
    EVENT_PAYLOAD,
    READING_PAYLOAD,
    SECTION_TITLE,
    edge_vs_gateway,
    section,
)
from frugalai.energy.radio import uplink_uj


def test_per_event_energy_is_the_days_energy_over_its_events() -> None:
    r = edge_vs_gateway(node_host_us_per_window=0.5, events_per_day=0.05, windows_per_day=96,
                        gateway_uj_per_inference=8.0, dr=0, tx_w=0.1, node_active_w=0.02,
                        node_slowdown=50)
    node_compute = 0.5 * 50 * 0.02  # µs x slowdown x W = µJ
    assert r["node"]["inference_uj_per_window"] == pytest.approx(node_compute)
    node_day = 96 * node_compute + 0.05 * uplink_uj(EVENT_PAYLOAD, 0, 0.1)
    gateway_day = 96 * (uplink_uj(READING_PAYLOAD, 0, 0.1) + 8.0)
    assert r["node"]["uj_per_event"] == pytest.approx(node_day / 0.05)
    assert r["gateway"]["uj_per_event"] == pytest.approx(gateway_day / 0.05)
    assert r["ratio_gateway_over_node"] == pytest.approx(gateway_day / node_day)
    assert "assumed" in r["assumptions"]["node_slowdown_source"]  # said, not hidden


def test_radio_dominates_unless_events_are_as_frequent_as_readings() -> None:
    rare = edge_vs_gateway(0.2, events_per_day=0.1)
    assert rare["ratio_gateway_over_node"] > 100
    every_window = edge_vs_gateway(0.2, events_per_day=96)
    assert every_window["ratio_gateway_over_node"] == pytest.approx(1.0, rel=0.01)
    with pytest.raises(ValueError):
        edge_vs_gateway(0.2, events_per_day=0)


def test_section_has_the_comparison_or_says_why_not() -> None:
    r = edge_vs_gateway(0.2, events_per_day=0.05, gateway_uj_per_inference=3.0)
    r["assumptions"]["events_source"] = "19 events over 365 days"
    lines = section(r)
    assert lines[1] == f"## {SECTION_TITLE}"
    assert any(line.startswith("| inference on the node, events over LoRa |") for line in lines)
    assert any("19 events over 365 days" in line for line in lines)
    assert section(None)[-1] == "Not measured: not measured in this run."
    assert "no C compiler" in section({"not_measured": "no C compiler"}, "###")[-1]
    assert section(None, "###")[1].startswith("### ")
