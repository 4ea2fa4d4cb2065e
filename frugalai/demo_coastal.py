"""``frugalai demo --scenario coastal``: a tide-gauge node -> LoRa -> gateway -> LoRaWAN, end to end.

Everything runs on real pseudo-terminals, with a simulated clock compressing a week into
seconds:

* an emulated coastal node samples the water level every 10 minutes (a seeded tide with a
  storm surge on day 4) and transmits bare firmware_bridge packets over the air (a few are
  garbled: the receiving radio's CRC rejects them and the modem reports a receive error);
* the gateway's emulated RAK3172 modem (P2P mode, on a pty) receives them; ``lora://`` reads
  them through the AT dialogue, decodes the payload, keeps RSSI/SNR on each Reading;
* the flow averages the level per hour and runs the shipped coastal submersion nowcast
  (``models/coastal-submersion``: normal / watch / flood within the next hours); each change of
  class is an Event of kind ``class``, stored in the outbox;
* the events leave through an emulated RN2483 in LoRaWAN mode (``lorawan://``), within the EU868
  duty cycle and the TTN daily airtime budget, 11 bytes each.

The node's water level is the astronomical tide the model was fitted with (Providence RI,
NOAA 8454000, from the bundle's card) plus a storm surge, so the model sees the site it knows.
Flood threshold: Providence's highest astronomical tide, 1.987 m MLLW (a site's threshold is
configuration, see shared/data/README.md).
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from frugalai.config import Config, FlowConfig, GatewayConfig
from frugalai.events.event import Event
from frugalai.footprint import ratio_text, summary_bytes
from frugalai.pipeline import Pipeline
from frugalai.runtime.scorers import ClassScorer
from frugalai.sim.clock import SimClock
from frugalai.sim.coastal_node import CoastalNode, TideModel
from frugalai.sim.device import stop_when_done
from frugalai.sim.lora_modem import Rak3172Emulator, Rn2483Emulator
from frugalai.sources.lora_source import LoraSource
from frugalai.uplink.lorawan import LorawanSink

#: Monday 5 January 2026, 00:00 UTC.
COASTAL_START = 1_767_571_200.0
FLOOD_THRESHOLD_M = 1.987
CLASSES = ("normal", "watch", "flood")

Encode = Callable[[float, float], bytes]
Decode = Callable[[bytes], dict[str, float]]


@dataclass(frozen=True)
class CoastalOptions:
    sim_days: float = 7.0
    seconds: float = 20.0
    seed: int = 1
    period_s: float = 600.0
    surge_m: float = 1.1
    surge_day: float = 3.6
    corrupt_rate: float = 0.02
    threshold_m: float = FLOOD_THRESHOLD_M
    budget_s: float = 30.0
    state_dir: Optional[str] = None


COASTAL_BUNDLE = "coastal-submersion"


def load_coastal_model(backend: str = "reference", precision: str = "fp32") -> Any:
    """The shipped coastal nowcast bundle (sha256 of every file verified on load)."""
    from frugalai.runtime.model import load_model, shipped_models_dir

    return load_model(shipped_models_dir() / COASTAL_BUNDLE, backend, precision)


def coastal_config(port: str, state: Path, options: CoastalOptions) -> Config:
    """The demo's gateway as a user would write it: the tide gauge through the RAK3172, the
    shipped nowcast (hourly windows and horizon from its card), the site's flood threshold."""
    return Config(
        gateway=GatewayConfig(id="coastal-demo", state_dir=str(state)),
        flow=(FlowConfig(name="tide", source=f"lora://{port}?modem=rak3172&decoder=fb&node=7",
                         sensor_id=7, quantity="water_level_m", aggregate="mean",
                         model=COASTAL_BUNDLE, threshold_m=options.threshold_m,
                         decision="model"),),  # the demo shows the net (the card: baseline)
        uplink=(),
    )


def site_tide(model: Any) -> Callable[[float], float]:
    """The astronomical tide the model was fitted with (its card), UNIX s -> m."""
    from frugalai.features.tide import Tide

    tide = Tide.from_dict(model.card["features"]["tide"])
    return lambda ts: float(tide.predict([ts])[0])


def run_coastal_demo(options: CoastalOptions, on_event: Callable[[Event], None],
                     encode: Encode, decode: Decode, model: Any = None) -> dict[str, Any]:
    """Run the chain; call ``on_event`` per event sent over LoRaWAN; return the summary.

    Args:
        encode: the node's payload encoder, ``(ts, water_level_m) -> bytes``.
        decode: the gateway's payload decoder, bytes -> {"water_level_m": ...}
            (:func:`payload_codec` gives the firmware_bridge pair).
    """
    del model  # the flow plan loads (and verifies) the bundle, as ``run`` does
    speed = options.sim_days * 86400 / options.seconds
    state = Path(options.state_dir or tempfile.mkdtemp(prefix="frugalai-coastal-"))
    rx_modem = Rak3172Emulator(seed=options.seed).start()
    node: Optional[CoastalNode] = None

    def gateway_clock() -> float:  # the node's, once it exists (it starts after the model)
        return node.gateway_clock() if node is not None else COASTAL_START

    try:
        pipeline = Pipeline.from_config(coastal_config(rx_modem.path, state, options),
                                        sinks=[], on_event=on_event,
                                        source_kwargs={"clock": gateway_clock})
    except BaseException:
        rx_modem.close()
        raise
    flow = pipeline.flows[0]
    # The simulated clock starts once the model is ready.
    clock = SimClock(COASTAL_START, speed)
    scorer = flow.scorer
    if not isinstance(scorer, ClassScorer) or not isinstance(flow.source, LoraSource):
        raise TypeError(f"the coastal flow should classify LoRa packets, got {scorer!r}")
    tide = TideModel(surge_m=options.surge_m,
                     surge_at=COASTAL_START + options.surge_day * 86400, seed=options.seed,
                     base=site_tide(scorer.model))
    tx_modem = Rn2483Emulator(clock=clock, seed=options.seed).start()
    node = CoastalNode(rx_modem, encode, clock, tide, period_s=options.period_s,
                       corrupt_rate=options.corrupt_rate, seed=options.seed)
    source = flow.source
    node.lockstep_with(lambda: source.stats.packets + source.stats.rx_errors)
    sink = LorawanSink(tx_modem.path, modem="rn2483", dr=5, fport=10,
                       budget_s=options.budget_s, clock=clock)
    pipeline.sinks.append(sink)  # the emulated radio runs on the simulated clock
    stop = threading.Event()
    running = node
    try:
        sink.connect()
        listening = threading.Event()
        starter = threading.Thread(target=lambda: (listening.wait(10), running.start(
            until=COASTAL_START + options.sim_days * 86400)), daemon=True)
        starter.start()
        watcher = threading.Thread(
            target=lambda: listening.set() if _wait_listening(rx_modem, stop) else None,
            daemon=True)
        watcher.start()
        # settle: the last packets scored and their events sent over LoRaWAN
        stop_when_done(lambda: starter.is_alive() or running.running, stop, settle_s=0.5)
        # The bound only matters if the node thread hangs.
        pipeline.run(stop, duration=options.seconds * 4 + 30)
        summary = pipeline.summary()
    finally:
        stop.set()
        node.stop()
        pipeline.close()
        rx_modem.close()
        tx_modem.close()
    levels = [v for _, v in node.sent]
    summary.update({
        "simulated_days": options.sim_days,
        "speed": round(speed),
        "node_packets_sent": node.packets_sent,
        "node_packets_corrupted": node.packets_corrupted,
        "modem_packets_missed": rx_modem.packets_missed,
        "max_level_m": round(max(levels), 3) if levels else None,
        "flood_threshold_m": options.threshold_m,
        "lorawan_uplinks_on_air": len(tx_modem.uplinks),
        "state_dir": str(state),
    })
    return summary


def _wait_listening(modem: Rak3172Emulator, stop: threading.Event) -> bool:
    while not stop.is_set():
        if modem.listening():
            return True
        stop.wait(0.02)
    return False


def payload_codec(node_id: int = 7) -> tuple[Encode, Decode]:
    """The node's firmware_bridge encoder (bare packet, seq +1 each) and the gateway's decoder."""
    from frugalai import registry
    from frugalai.sim.coastal_node import fb_encoder

    return fb_encoder(node_id), registry.decoders.get("fb")


def main_coastal(*, seconds: float, hours: float, seed: int, corrupt_rate: float,
                 as_json: bool, echo: Callable[[str], None]) -> None:
    """What ``frugalai demo --scenario coastal`` prints (the CLI stays thin)."""
    import json
    from datetime import datetime, timezone

    from frugalai.events.codec import encode_binary, encode_json

    def show(event: Event) -> None:
        if as_json:
            echo(encode_json(event).decode())
            return
        when = datetime.fromtimestamp(event.ts, tz=timezone.utc).strftime("%a %d %H:%M UTC")
        raw = encode_binary(event)
        what = CLASSES[event.label] if event.kind == "class" else event.kind
        echo(f"  {what.upper():6} {event.sensor} at {when}  level={event.value:5.2f} m  "
             f"p={event.score:.2f}  -> LoRaWAN {len(raw)} B [{raw.hex()}]")

    encode, decode = payload_codec()
    options = CoastalOptions(sim_days=hours / 24, seconds=seconds, seed=seed,
                             corrupt_rate=corrupt_rate)
    if not as_json:
        echo(f"frugalai demo (coastal): tide-gauge node -> LoRa P2P -> emulated RAK3172 (pty) "
             f"-> gateway -> emulated RN2483 LoRaWAN, {hours / 24:.0f} simulated days in "
             f"{seconds:.0f} s; flood level {options.threshold_m} m:")
    summary = run_coastal_demo(options, show, encode, decode)
    upstream = ratio_text(*summary_bytes(summary))  # the line status and report print too
    if as_json:
        echo(json.dumps({"summary": {**summary, "upstream": upstream}}, default=str))
        return
    flow = summary["flows"]["tide"]
    up = next(iter(summary["uplinks"].values()))
    echo("summary:")
    echo(f"  node packets {summary['node_packets_sent']} (garbled on air "
         f"{summary['node_packets_corrupted']}), readings {flow['readings']}; radio CRC errors "
         f"{flow['rx_errors']}, lost by seq gaps {flow['lost_packets']}, decoder rejects "
         f"{flow['frames_bad']}; last RSSI {flow['last_rssi_dbm']:.0f} dBm / SNR "
         f"{flow['last_snr_db']:.0f} dB; highest water {summary['max_level_m']} m")
    echo(f"  LoRaWAN: {up['uplinks']} uplinks, {up['airtime_s'] * 1000:.0f} ms on air, "
         f"{up['airtime_24h_s']:.2f} s of the {up['budget_s']:.0f} s daily budget in the last "
         f"24 h; events delayed by duty cycle/budget {up['events_delayed']}, still waiting "
         f"{up['events_waiting']}")
    echo(f"  {upstream}")
