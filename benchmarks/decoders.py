"""Decoding throughput of every ingestion decoder, one core: frames/s and bytes/s.

Each case decodes a realistic stream (emulator-made frames, ~1 % corrupted where the decoder is a
stream decoder, so the error path is in the measurement) and reports the median of ``--repeat``
runs. Writes decoders.json and decoders.md to build/benchmarks/ (benchmarks/results/ with
``--publish``). No pass/fail: figures to compare.

    .venv/bin/python benchmarks/decoders.py [--quick] [--repeat 5] [--publish]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import provenance as prov

from frugalai.protocols import frames, lpp
from frugalai.protocols import modbus as mb
from frugalai.protocols.tic import TicDecoder
from frugalai.protocols.tic_values import frame_values
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.tic_meter import TicMeterEmulator


def corrupt(stream_frames: list[bytes], rate: float, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for f in stream_frames:
        if rng.random() < rate:
            b = bytearray(f)
            i = int(rng.integers(1, len(b) - 1))
            b[i] = (b[i] ^ 0x01) or 0x01
            f = bytes(b)
        out.append(f)
    return out


def tic_stream(mode: str, n: int) -> list[bytes]:
    meter = TicMeterEmulator(HouseholdProfile(seed=1), mode=mode)
    try:
        return corrupt([meter.frame_at(1.7e9 + 1.5 * i) for i in range(n)], 0.01)
    finally:
        meter.close()


def case_tic(mode: str, n: int) -> tuple[Callable[[], int], int, int]:
    data = b"".join(tic_stream(mode, n))

    def run() -> int:
        dec = TicDecoder()
        count = 0
        for frame in dec.feed(data):
            frame_values(frame)
            count += 1
        return count

    return run, n, len(data)


def case_fb_stream(n: int) -> tuple[Callable[[], int], int, int]:
    pkts = [frames.Packet(12, i & 0xFFFF, (("water_level_m", 0.5), ("pressure_hpa", 1013.2),
                                            ("temperature_c", 11.5), ("battery_v", 3.9))) for i in range(n)]
    data = b"".join(corrupt([frames.encode_frame(p) for p in pkts], 0.01))

    def run() -> int:
        return sum(1 for _ in frames.FbDecoder().feed(data))

    return run, n, len(data)


def case_fb_packet(n: int) -> tuple[Callable[[], int], int, int]:
    payload = frames.encode_packet(frames.Packet(12, 7, (("water_level_m", 0.5), ("pressure_hpa", 1013.2),
                                                         ("temperature_c", 11.5), ("battery_v", 3.9))))

    def run() -> int:
        for _ in range(n):
            frames.packet_values(frames.decode_packet(payload))
        return n

    return run, n, n * len(payload)


def case_modbus(n: int) -> tuple[Callable[[], int], int, int]:
    (block, *_) = mb.plan_blocks(mb.SDM630)
    regs = [w for i in range(block.count // 2) for w in mb.float32_to_registers(230.0 + i)]
    frame = mb.build_read_response(1, regs)

    def run() -> int:
        for _ in range(n):
            mb.block_values(block, mb.parse_read_response(frame, slave=1, count=block.count))
        return n

    return run, n, n * len(frame)


def case_lpp(n: int) -> tuple[Callable[[], int], int, int]:
    payload = lpp.encode([(1, "temperature", 12.5), (2, "humidity", 80.0), (3, "pressure", 1013.2),
                          (4, "voltage", 3.9), (5, "gps", (43.3, 5.37, 12.0))])

    def run() -> int:
        for _ in range(n):
            lpp.decode_values(payload)
        return n

    return run, n, n * len(payload)


def measure(run: Callable[[], int], frames_n: int, nbytes: int, repeat: int) -> dict[str, float]:
    run()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        decoded = run()
        times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    return {"frames": frames_n, "decoded": decoded, "bytes": nbytes, "seconds_median": round(t, 6),
            "frames_per_s": round(frames_n / t), "bytes_per_s": round(nbytes / t),
            "us_per_frame": round(1e6 * t / frames_n, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer frames (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=5)
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    out = prov.output_dir(parser, args)
    meta = prov.provenance(quick=args.quick, repeat=args.repeat)
    k = 10 if args.quick else 1
    cases = {
        "tic_historique (stream + label map)": case_tic("historique", 20_000 // k),
        "tic_standard (stream + label map)": case_tic("standard", 20_000 // k),
        "fb_serial (COBS + CRC stream)": case_fb_stream(50_000 // k),
        "fb_packet (bare LoRa payload)": case_fb_packet(100_000 // k),
        "modbus_fc04 (CRC + float32 block)": case_modbus(50_000 // k),
        "cayenne_lpp (5 items)": case_lpp(100_000 // k),
    }
    results = {name: measure(*case, repeat=args.repeat) for name, case in cases.items()}
    print(prov.write_results(out, "decoders", {"meta": meta, "results": results}, markdown))


def markdown(doc: dict[str, Any]) -> str:
    meta = doc["meta"]
    quick = " (quick)" if meta["quick"] else ""
    lines = ["# Decoder throughput (one core, pure Python)", "",
             f"Median of {meta['repeat']} runs{quick}.",
             "Stream cases include ~1 % corrupted frames.",
             "", "| decoder | frames | frames/s | bytes/s | µs/frame |", "|---|---:|---:|---:|---:|"]
    for name, r in doc["results"].items():
        lines.append(f"| {name} | {r['frames']} | {r['frames_per_s']:,} | {r['bytes_per_s']:,} "
                     f"| {r['us_per_frame']} |")
    lines += ["", "Reproduce: `.venv/bin/python benchmarks/decoders.py --publish` (or `--quick`).",
              ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
