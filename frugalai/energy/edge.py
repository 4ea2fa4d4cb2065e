"""Energy per event: inference on the node (event over LoRa) vs raw readings over LoRa
(inference on the gateway). An estimate, with its sources and assumptions stated.

* **Node runs the model** (``firmware_bridge/examples/energy_edge_node``): every window the node
  computes the features and the int8 net, and transmits only events (alarm raised or cleared).
  Node energy per window = the generated C's time per window measured on this host x an
  assumed MCU slowdown x the MCU's active power.
* **Gateway runs the model**: the node transmits every window's reading; the gateway's
  inference costs its own (measured) energy per inference.

Per event = the day's energy / events per day (both sides' extra costs; the node's sleep and
sensing are the same in both designs and left out).

Sources: LoRa time on air from Semtech AN1200.13 (:func:`frugalai.protocols.lorawan.
lorawan_time_on_air`), TX draw from :mod:`frugalai.energy.radio` (typical SX1276 module at
+14 dBm, 0.145 W). MCU active power 25 mW: the MLPerf Tiny NUCLEO-U575ZI-Q run
(../shared/docs/energy.md, "121 µJ/inference at 25 mW"). The MCU slowdown against one x86 core
(100x: a 160 MHz Cortex-M33 against a ~3 GHz out-of-order core, double-precision features in
software) is an ASSUMPTION, not a measurement: replace it by a measurement on the board.
"""

from __future__ import annotations

from typing import Any, Optional

from frugalai.energy.radio import DEFAULT_TX_W, uplink_uj

NODE_ACTIVE_W = 0.025
NODE_ACTIVE_SOURCE = "MLPerf Tiny NUCLEO-U575ZI-Q, 121 µJ/inference at 25 mW (energy.md)"
NODE_SLOWDOWN = 100.0
NODE_SLOWDOWN_SOURCE = "assumed: 160 MHz Cortex-M33 vs one x86 core, soft double (not measured)"
#: the fb packets of the sketches: header 5 B + 5 B per reading (3 readings each)
READING_PAYLOAD = 20
EVENT_PAYLOAD = 20
SECTION_TITLE = ("Energy per event: inference on the node, event over LoRa vs raw reading over "
                 "LoRa, inference on the gateway (energy-anomaly, estimate)")


def edge_vs_gateway(node_host_us_per_window: float, events_per_day: float,
                    windows_per_day: float = 96.0, gateway_uj_per_inference: float = 0.0,
                    dr: int = 5, tx_w: float = DEFAULT_TX_W,
                    node_active_w: float = NODE_ACTIVE_W,
                    node_slowdown: float = NODE_SLOWDOWN) -> dict[str, Any]:
    """Energy per day and per event of the two designs (µJ).

    >>> r = edge_vs_gateway(0.1, events_per_day=0.1, windows_per_day=96)
    >>> r["gateway"]["uj_per_day"] == 96 * uplink_uj(READING_PAYLOAD, 5)
    True
    >>> r["ratio_gateway_over_node"] > 100
    True
    """
    if events_per_day <= 0:
        raise ValueError("events_per_day must be > 0")
    node_window_uj = node_host_us_per_window * node_slowdown * node_active_w
    event_tx = uplink_uj(EVENT_PAYLOAD, dr, tx_w)
    reading_tx = uplink_uj(READING_PAYLOAD, dr, tx_w)
    node_day = windows_per_day * node_window_uj + events_per_day * event_tx
    gateway_day = windows_per_day * (reading_tx + gateway_uj_per_inference)
    return {
        "assumptions": {"windows_per_day": windows_per_day, "events_per_day": events_per_day,
                        "dr": dr, "tx_w": tx_w, "node_active_w": node_active_w,
                        "node_active_source": NODE_ACTIVE_SOURCE,
                        "node_slowdown_vs_host": node_slowdown,
                        "node_slowdown_source": NODE_SLOWDOWN_SOURCE,
                        "node_host_us_per_window": node_host_us_per_window,
                        "reading_payload_bytes": READING_PAYLOAD,
                        "event_payload_bytes": EVENT_PAYLOAD},
        "node": {"inference_uj_per_window": node_window_uj, "tx_uj_per_event": event_tx,
                 "uj_per_day": node_day, "uj_per_event": node_day / events_per_day},
        "gateway": {"tx_uj_per_reading": reading_tx,
                    "inference_uj_per_window": gateway_uj_per_inference,
                    "uj_per_day": gateway_day, "uj_per_event": gateway_day / events_per_day},
        "ratio_gateway_over_node": gateway_day / node_day,
    }


def markdown(r: dict[str, Any]) -> list[str]:
    """The comparison as Markdown lines."""
    a = r["assumptions"]
    return [
        "| design | µJ per day | µJ per event | of which |",
        "|---|---:|---:|---|",
        f"| inference on the node, events over LoRa | {r['node']['uj_per_day']:,.0f} | "
        f"{r['node']['uj_per_event']:,.0f} | {r['node']['inference_uj_per_window']:.3g} µJ "
        f"compute per window, {r['node']['tx_uj_per_event']:,.0f} µJ per event uplink |",
        f"| raw reading over LoRa, inference on the gateway | {r['gateway']['uj_per_day']:,.0f} "
        f"| {r['gateway']['uj_per_event']:,.0f} | {r['gateway']['tx_uj_per_reading']:,.0f} µJ "
        f"per reading uplink, {r['gateway']['inference_uj_per_window']:.3g} µJ gateway "
        "inference per window |",
        "",
        f"Ratio {r['ratio_gateway_over_node']:,.0f}x. Assumptions: {a['windows_per_day']:g} "
        f"windows/day, {a['events_per_day']:.3g} events/day, DR{a['dr']}, {a['tx_w']} W TX, "
        f"{a['reading_payload_bytes']}-byte packets; node compute = "
        f"{a['node_host_us_per_window']:.3g} µs measured on this host x "
        f"{a['node_slowdown_vs_host']:g} ({a['node_slowdown_source']}) x "
        f"{a['node_active_w']} W ({a['node_active_source']}).",
    ]


def section(r: Optional[dict[str, Any]], level: str = "##") -> list[str]:
    """The benchmarks' Markdown section (fastpath and energy_per_inference): title, table,
    where the inputs come from; without figures (``r`` None), why (``r`` may carry
    ``{"not_measured": reason}``)."""
    head = ["", f"{level} {SECTION_TITLE}", ""]
    if r is None or "not_measured" in r:
        why = (r or {}).get("not_measured", "not measured in this run")
        return [*head, f"Not measured: {why}."]
    a = r["assumptions"]
    lines = [*head, *markdown(r)]
    if "events_source" in a or "gateway_inference" in a:
        lines += ["", f"Events: {a.get('events_source', 'given')}; gateway inference: "
                      f"{a.get('gateway_inference', 'given')}."]
    return lines
