"""Value-level fuzzing of every decoder at scale: 10^6 examples per decoder (``make fuzz``).

Hypothesis runs 1,000 examples per decoder in ``make test`` (tests/test_decoder_fuzz.py); it
spends most of its time on shrinking and bookkeeping (~1-8 ms an example here), too slow for
10^6. This script uses a seeded random generator instead: each example is a *well-framed* input
(TIC checksums, CRCs, COBS and JSON syntax valid) whose values are hostile (hundreds of digits,
signs, NaN/inf, Unicode digits, deep nesting), or, one time in four, a valid input with random
byte mutations (bit flips, truncation, splices), so both the value parsers and the framing are
reached.

Contract checked on every example: a pure decoder returns values or raises ``DecodeError``;
a stream decoder (TIC and firmware_bridge framers, the ChirpStack source) never raises and
counts what it rejects. Any other exception is a crash, counted, with the first examples kept.
Also recorded: examples/s (generation included), the slowest example (a hang would show), and
RSS before and after (a leak would show).

Writes fuzz.json and fuzz.md (date, commit, machine) to build/benchmarks/ (benchmarks/results/
with ``--publish``).

    nice -n 10 .venv/bin/python benchmarks/fuzz.py [--examples 1000000] [--only tic,lpp] [--publish]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import struct
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import provenance as prov

from frugalai.errors import DecodeError
from frugalai.events import codec
from frugalai.protocols import at_modem, frames, lpp
from frugalai.protocols import modbus as mb
from frugalai.protocols.chirpstack import parse_uplink
from frugalai.protocols.payloads import decode_fb, decode_lpp
from frugalai.protocols.tic import HISTORIQUE, STANDARD, encode_group
from frugalai.protocols.tic_values import NUMERIC_LABELS, TEXT_LABELS
from frugalai.sources.base import SourceStats
from frugalai.sources.chirpstack import ChirpStackSource
from frugalai.sources.framers import FbFramer, TicFramer

DEV = "0102030405060708"
TOPIC = f"application/app/device/{DEV}/event/up"

# --- hostile values ---------------------------------------------------------------------------

SPECIAL = ["", "-1", "+1", "1.5", "nan", "NaN", "inf", "-inf", "1e9", "1e999", "0x10", " 12 ",
           "٣٣", "²", "00000000000000000000", "9" * 309, "9" * 400, "9" * 4301, "-" + "9" * 400]


def number_text(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.35:
        return "".join(rng.choices("0123456789", k=rng.choice((1, 2, 5, 9, 12, 13, 20, 309, 400,
                                                                rng.randrange(1, 600)))))
    if r < 0.55:
        return rng.choice(SPECIAL)
    if r < 0.75:
        return str(rng.randint(-(2**64), 2**64))
    if r < 0.9:
        return repr(rng.uniform(-1e300, 1e300))
    return "".join(rng.choices("0123456789-.e+ ", k=rng.randrange(0, 15)))


def printable(rng: random.Random, n: int) -> str:
    return "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(n))


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A few random byte-level changes: bit flips, a truncation, a duplicated slice."""
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.random()
        if not buf:
            buf.append(rng.randrange(256))
        elif op < 0.5:
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op < 0.65:
            del buf[rng.randrange(len(buf)):]
        elif op < 0.8:
            i = rng.randrange(len(buf))
            buf[i:i] = buf[i:i + rng.randrange(1, 32)]
        else:
            buf.insert(rng.randrange(len(buf) + 1), rng.randrange(256))
    return bytes(buf)


# --- one generator and one runner per decoder -------------------------------------------------

BASE_TIC = [("ADCO", "021861348497"), ("OPTARIF", "HC.."), ("ISOUSC", "30"),
            ("HCHC", "001234567"), ("HCHP", "007654321"), ("PTEC", "HP.."), ("IINST", "012"),
            ("IMAX", "090"), ("PAPP", "02840"), ("HHPHC", "A"), ("MOTDETAT", "000000")]
LABELS = sorted(NUMERIC_LABELS) + sorted(TEXT_LABELS) + ["DATE"]


def gen_tic(rng: random.Random) -> bytes:
    mode = rng.choice((HISTORIQUE, STANDARD))
    groups: list[bytes] = []
    for label, value in BASE_TIC:
        horodate = None
        if rng.random() < 0.15:
            label = rng.choice(LABELS)
        if rng.random() < 0.3:
            value = number_text(rng) if rng.random() < 0.8 else printable(rng, rng.randrange(20))
        if mode == STANDARD and rng.random() < 0.1:
            horodate = rng.choice(("E", "h", " ", "X")) + "".join(
                rng.choices("0123456789", k=rng.choice((12, 12, 11, 40))))
        if mode == STANDARD and label == "ADCO" and rng.random() < 0.3:  # a DATE group
            label, value = "DATE", ""
            tops = (100, 13, 32, 24, 60, 60) if rng.random() < 0.8 else (100,) * 6
            horodate = rng.choice("EeHh ") + "".join(f"{rng.randrange(top):02d}" for top in tops)
        try:
            groups.append(encode_group(label, value, mode, horodate))
        except UnicodeEncodeError:
            continue
    frame = b"\x02" + b"".join(groups) + b"\x03"
    return mutate(rng, frame) if rng.random() < 0.25 else frame


def run_tic(data: bytes) -> None:
    stats = SourceStats()
    # stamped by the frame's own DATE one time in two (siteready's frame_time)
    frame_time = bool(data[-1] & 1) if data else False
    list(TicFramer("linky", stats, lambda: 1.7e9, frame_time=frame_time).feed(data))
    # every frame counted once at most (a mutation may duplicate STX/ETX: more frames)
    assert stats.frames_ok + stats.frames_bad <= data.count(2) + data.count(3) + 1


def json_value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth < 3 and r < 0.15:
        return [json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if depth < 3 and r < 0.3:
        return {printable(rng, 4): json_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if r < 0.5:
        k = rng.choice((1, 5, 10, 20, 40, 309, 400, 1000))
        return rng.randint(-(10**k), 10**k)
    if r < 0.6:
        return rng.choice((None, True, False, 0.5, 1e308, -1e308))
    return number_text(rng) if rng.random() < 0.7 else printable(rng, rng.randrange(30))


def gen_chirpstack(rng: random.Random) -> bytes:
    payload = lpp.encode([(3, "temperature", rng.uniform(-40, 80))])
    doc: dict[str, Any] = {
        "deduplicationId": "3ac7", "deviceInfo": {"devEui": DEV, "applicationId": "app"},
        "fCnt": rng.randrange(2**32), "fPort": rng.randrange(1, 224), "dr": rng.randrange(8),
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": rng.randint(-140, 0),
                    "snr": rng.uniform(-20, 15)}],
    }
    for _ in range(rng.randrange(1, 4)):
        key = rng.choice(("fCnt", "fPort", "dr", "data", "rxInfo", "deviceInfo", "extra"))
        if key == "rxInfo" and rng.random() < 0.5:
            doc[key] = [{"rssi": json_value(rng), "snr": json_value(rng)}]
        elif key == "data" and rng.random() < 0.5:
            doc[key] = base64.b64encode(mutate(rng, payload)).decode()
        else:
            doc[key] = json_value(rng)
    raw = json.dumps(doc).encode()
    r = rng.random()
    if r < 0.1:
        n = rng.choice((20, 100, 1000, 5000, 30_000))
        raw = raw[:-1] + b',"z":' + b"[" * n + b"]" * n + b"}"
    elif r < 0.3:
        raw = mutate(rng, raw)
    return raw


SOURCE = ChirpStackSource("localhost", 1, sensor="node", dev_eui=DEV, decoder=decode_lpp)


def run_chirpstack(raw: bytes) -> None:
    try:
        parse_uplink(raw, TOPIC)
    except DecodeError:
        pass
    s = SOURCE.stats
    before = s.frames_ok + s.frames_bad + s.duplicates + s.unknown_devices + s.other_fport
    SOURCE.handle(TOPIC, raw)
    after = s.frames_ok + s.frames_bad + s.duplicates + s.unknown_devices + s.other_fport
    assert after == before + 1, "an uplink neither counted nor decoded"


def gen_at(rng: random.Random) -> str:
    hexs = os.urandom(rng.randrange(0, 40)).hex()
    if rng.random() < 0.2:
        hexs = hexs[: rng.randrange(len(hexs) + 1)] + rng.choice(("", "G", "x", "٣"))
    n = number_text
    line = rng.choice((
        lambda: f"+EVT:RXP2P:{n(rng)}:{n(rng)}:{hexs}",
        lambda: f"mac_rx {n(rng)} {hexs}",
        lambda: f"radio_rx  {hexs}",
        lambda: "AT+P2P=" + ":".join(n(rng) for _ in range(rng.randrange(1, 8))),
        lambda: n(rng),
        lambda: rng.choice(("ok", "mac_tx_ok", "+EVT:TX_DONE", "accepted", "denied", "busy")),
    ))()
    if rng.random() < 0.2:
        line = mutate(rng, line.encode()).decode("latin-1")
    return line


AT_PARSERS: list[Callable[[str], object]] = [
    at_modem.parse_rak_rx, at_modem.parse_rak_p2p, at_modem.parse_rn_rx,
    at_modem.parse_rn_downlink, at_modem.hex_payload,
    lambda t: at_modem.classify_tx("rn2483", t), lambda t: at_modem.classify_tx("rak3172", t)]


def run_at(line: str) -> None:
    for parse in AT_PARSERS:
        try:
            parse(line)
        except DecodeError:
            pass
    at_modem.join_result(line)
    at_modem.modem_number(line)


SDM_BLOCK = mb.plan_blocks(mb.SDM120)[0]


def gen_modbus(rng: random.Random) -> tuple[bytes, int]:
    count = SDM_BLOCK.count
    regs = [rng.randrange(0x10000) for _ in range(count)]
    if rng.random() < 0.3:  # NaN, inf, denormals, huge floats
        for i in range(0, count - 1, 2):
            regs[i] = rng.choice((0x7FC0, 0x7F80, 0xFF80, 0x0000, 0x7F7F, regs[i]))
    frame = mb.build_read_response(1, regs)
    if rng.random() < 0.25:
        frame = mutate(rng, frame)
    elif rng.random() < 0.1:
        frame = mb.with_crc(mutate(rng, frame[:-2]))
    return frame, count


def run_modbus(case: tuple[bytes, int]) -> None:
    frame, count = case
    try:
        regs = mb.parse_read_response(frame, slave=1, count=count)
    except DecodeError:
        return
    mb.block_values(SDM_BLOCK, regs)


FB_IDS = sorted(frames.BY_ID)


def gen_fb(rng: random.Random) -> bytes:
    readings = [(rng.choice(FB_IDS) if rng.random() < 0.95 else rng.randrange(256),
                 rng.randint(-(2**31), 2**31 - 1)) for _ in range(rng.randrange(0, 8))]
    body = frames.HEADER.pack(frames.VERSION if rng.random() < 0.95 else rng.randrange(256),
                              rng.randrange(256), rng.randrange(0x10000)) + b"".join(
        frames.READING.pack(q, v) for q, v in readings)
    if rng.random() < 0.1:
        body += os.urandom(rng.randrange(1, 6))
    wire = frames.cobs_encode(body + struct.pack(">H", frames.crc16_ccitt(body))) + b"\x00"
    return mutate(rng, wire) if rng.random() < 0.25 else wire


def run_fb(wire: bytes) -> None:
    stats = SourceStats()
    list(FbFramer("node", stats, lambda: 0.0).feed(wire))
    assert stats.frames_ok + stats.frames_bad <= wire.count(0) + 1
    body = wire[:-1]
    try:
        decode_fb(frames.cobs_decode(body)[:-2])
    except DecodeError:
        pass


LPP_CODES = sorted(lpp.BY_CODE)


def gen_lpp(rng: random.Random) -> bytes:
    out = bytearray()
    for _ in range(rng.randrange(0, 8)):
        code = rng.choice(LPP_CODES) if rng.random() < 0.95 else rng.randrange(256)
        size = lpp.BY_CODE[code].size if code in lpp.BY_CODE else rng.randrange(4)
        out += bytes([rng.randrange(256), code]) + os.urandom(size)
    return mutate(rng, bytes(out)) if rng.random() < 0.25 else bytes(out)


def run_lpp(payload: bytes) -> None:
    try:
        decode_lpp(payload)
    except DecodeError:
        pass


def gen_event(rng: random.Random) -> tuple[bytes, bytes]:
    raw = os.urandom(rng.choice((codec.BINARY_SIZE, codec.SUMMARY_SIZE, rng.randrange(50))))
    doc = {"v": 1, "kind": rng.choice(("alarm", "summary", "x", 1)), "sensor": "s",
           "ts": json_value(rng), "seq": json_value(rng)}
    if rng.random() < 0.5:
        doc["stats"] = {"period_s": json_value(rng), "dropped": json_value(rng),
                        "min": json_value(rng)}
    text = json.dumps(doc).encode()
    return raw, mutate(rng, text) if rng.random() < 0.25 else text


def run_event(case: tuple[bytes, bytes]) -> None:
    raw, text = case
    for decode in (codec.decode_binary, codec.decode_json):
        try:
            decode(raw if decode is codec.decode_binary else text)
        except DecodeError:
            pass


TARGETS: dict[str, tuple[Callable[[random.Random], Any], Callable[[Any], None]]] = {
    "tic (framer + value parsers)": (gen_tic, run_tic),
    "chirpstack (uplink JSON + source)": (gen_chirpstack, run_chirpstack),
    "at_modem (reply lines)": (gen_at, run_at),
    "modbus (FC04 response + SDM120 block)": (gen_modbus, run_modbus),
    "firmware_bridge (serial framer + packet)": (gen_fb, run_fb),
    "cayenne_lpp": (gen_lpp, run_lpp),
    "event codecs (binary + JSON)": (gen_event, run_event),
}


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fuzz(name: str, examples: int, seed: int) -> dict[str, Any]:
    gen, run = TARGETS[name]
    rng = random.Random(seed)
    crashes = 0
    first: list[str] = []
    slowest = 0.0
    rss_before = rss_kb()
    t0 = time.perf_counter()
    for i in range(examples):
        case = gen(rng)
        t = time.perf_counter()
        try:
            run(case)
        except Exception as err:  # a crash: anything but the contract
            crashes += 1
            if len(first) < 5:
                first.append(f"#{i}: {type(err).__name__}: {str(err)[:200]} <- {str(case)[:200]}"
                             f"\n{traceback.format_exc(limit=3)[-600:]}")
        slowest = max(slowest, time.perf_counter() - t)
    elapsed = time.perf_counter() - t0
    return {"examples": examples, "crashes": crashes, "first_crashes": first,
            "seconds": round(elapsed, 1), "examples_per_s": round(examples / elapsed),
            "slowest_example_ms": round(slowest * 1000, 2), "rss_before_kb": rss_before,
            "rss_after_kb": rss_kb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1_000_000, help="per decoder")
    parser.add_argument("--only", default="", help="comma-separated name prefixes")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--quick", action="store_true", help="10,000 examples per decoder")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other decoders' figures from the last fuzz.json")
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    out = prov.output_dir(parser, args)
    meta = prov.provenance(  # at the start: the code under test is the one imported now
        seed=args.seed, nice=os.nice(0),
        generator="seeded random value-level generator + byte mutation (not Hypothesis)")
    at_commit = meta["commit"]
    examples = 10_000 if args.quick else args.examples
    names = [n for n in TARGETS if not args.only
             or any(n.startswith(p.strip()) for p in args.only.split(","))]
    results: dict[str, Any] = {}
    if args.merge and (out / "fuzz.json").exists():
        earlier = json.loads((out / "fuzz.json").read_text())
        for name, r in earlier["results"].items():  # each row keeps the commit it ran on
            results[name] = {"commit": earlier["meta"]["commit"],
                             "date": earlier["meta"]["date"], **r}
    for name in names:
        results[name] = {**fuzz(name, examples, args.seed), "commit": at_commit,
                         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        r = results[name]
        print(f"{name}: {r['examples']} examples, {r['crashes']} crashes, "
              f"{r['examples_per_s']}/s, RSS {r['rss_before_kb']}->{r['rss_after_kb']} kB",
              flush=True)
    meta["max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(prov.write_results(out, "fuzz", {"meta": meta, "results": results}, markdown))


def markdown(doc: dict[str, Any]) -> str:
    meta, results = doc["meta"], doc["results"]
    lines = ["# Decoder fuzzing (value-level, random generator + mutation)", "",
             f"Seed {meta['seed']}, nice {meta['nice']}.",
             "Contract: values or DecodeError (pure decoders); never an exception and every "
             "input counted (stream decoders). Examples/s include generating the example.", "",
             "| decoder | examples | crashes | examples/s | slowest ms | RSS before → after kB "
             "| commit |", "|---|---:|---:|---:|---:|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['examples']:,} | {r['crashes']} | {r['examples_per_s']:,} "
                     f"| {r['slowest_example_ms']} | {r['rss_before_kb']:,} → "
                     f"{r['rss_after_kb']:,} | {r.get('commit', meta['commit'])} |")
    for name, r in results.items():
        for c in r["first_crashes"]:
            lines += ["", f"Crash in {name}:", "```", c, "```"]
    lines += ["", "Reproduce: `make fuzz` (`nice -n 10 .venv/bin/python benchmarks/fuzz.py`); "
              "`--examples N`, `--only tic,lpp`, `--quick`; `--publish` writes "
              "benchmarks/results/.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
