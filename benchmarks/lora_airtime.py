"""LoRa figures: airtime per event, events a day under the EU868 duty cycle and TTN fair use,
the effect of packing several 11-byte events per uplink, and the receive path's throughput
(emulated RAK3172 on a real pty -> lora:// -> Readings).

Writes ``lora_airtime.json`` and ``.md`` to build/benchmarks/ (benchmarks/results/ with
``--publish``). No pass/fail: figures to read.
Run: ``python benchmarks/lora_airtime.py [--quick] [--publish]``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import provenance as prov  # noqa: E402

from frugalai.events.codec import BINARY_SIZE  # noqa: E402
from frugalai.protocols.lorawan import (  # noqa: E402
    EU868_MAX_PAYLOAD,
    TTN_DAILY_AIRTIME_S,
    lorawan_time_on_air,
)


def airtime_table() -> list[dict[str, float]]:
    rows = []
    for dr in range(7):
        toa = lorawan_time_on_air(BINARY_SIZE, dr)
        best_pack = EU868_MAX_PAYLOAD[dr] // BINARY_SIZE
        toa_pack = lorawan_time_on_air(best_pack * BINARY_SIZE, dr)
        rows.append({
            "dr": dr,
            "toa_ms_1_event": round(toa * 1000, 3),
            "duty_cycle_1pct_events_per_day": int(86400 * 0.01 / toa),
            "ttn_30s_events_per_day": int(TTN_DAILY_AIRTIME_S / toa),
            "max_pack": best_pack,
            "toa_ms_per_event_packed": round(toa_pack / best_pack * 1000, 3),
            "ttn_30s_events_per_day_packed": int(TTN_DAILY_AIRTIME_S / toa_pack) * best_pack,
        })
    return rows


def receive_throughput(packets: int) -> dict[str, float]:
    """Packets through the emulated modem's AT events into decoded Readings, per second."""
    from frugalai.sim.lora_modem import Rak3172Emulator
    from frugalai.sources.lora_source import LoraSource

    def decode(payload: bytes) -> dict[str, float]:
        return {"water_level_m": int.from_bytes(payload[2:4], "big", signed=True) / 100}

    payload = bytes.fromhex("0102009B")
    with Rak3172Emulator() as emu:
        src = LoraSource(emu.path, sensor="b", modem="rak3172", decoder=decode)
        stop = threading.Event()
        done = threading.Event()
        count = [0]

        def consume() -> None:
            for _ in src.readings(stop):
                count[0] += 1
                if count[0] == packets:
                    done.set()
                    return

        threading.Thread(target=consume, daemon=True).start()
        while not emu.listening():
            time.sleep(0.01)
        latencies = []
        t0 = time.perf_counter()
        for i in range(packets):  # one at a time: a radio delivers packets one by one
            t = time.perf_counter()
            emu.inject(payload)
            while count[0] <= i and time.perf_counter() - t < 5:
                time.sleep(0.0002)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - t0
        stop.set()
        done.wait(2)
        src.close()
    lat = sorted(latencies)
    return {"packets": packets, "received": count[0], "seconds": round(elapsed, 3),
            "packets_per_s": round(packets / elapsed, 1),
            "latency_ms_median": round(lat[len(lat) // 2] * 1000, 2),
            "latency_ms_p95": round(lat[int(len(lat) * 0.95)] * 1000, 2)}


def markdown(result: dict[str, Any]) -> str:
    table, rx = result["airtime"], result["receive"]
    lines = ["# LoRa airtime and receive throughput", "",
             f"One event = {BINARY_SIZE} B (+13 B LoRaWAN overhead). EU868, CR 4/5, "
             "8-symbol preamble. Duty cycle: the 3 default channels share sub-band M (1 %).", "",
             "| DR | ToA 1 event (ms) | events/day at 1 % | events/day TTN 30 s | max pack "
             "| ToA/event packed (ms) | events/day TTN packed |",
             "|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['dr']} | {r['toa_ms_1_event']} | {r['duty_cycle_1pct_events_per_day']}"
                     f" | {r['ttn_30s_events_per_day']} | {r['max_pack']} | "
                     f"{r['toa_ms_per_event_packed']} | {r['ttn_30s_events_per_day_packed']} |")
    lines += ["", f"Receive path (emulated RAK3172 on a pty -> lora:// -> Readings): "
              f"{rx['received']}/"
              f"{rx['packets']} packets, one at a time, in {rx['seconds']} s = "
              f"{rx['packets_per_s']} packets/s; latency air -> Reading median "
              f"{rx['latency_ms_median']} ms, p95 {rx['latency_ms_p95']} ms (the emulator polls "
              "the pty every 10 ms).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    out = prov.output_dir(parser, args)
    meta = prov.provenance(quick=args.quick)
    table = airtime_table()
    rx = receive_throughput(200 if args.quick else 1000)
    result = {"meta": meta, "event_bytes": BINARY_SIZE, "airtime": table, "receive": rx}
    print(prov.write_results(out, "lora_airtime", result, markdown))


if __name__ == "__main__":
    main()
