"""Turn ../test_vectors.json (the single source of truth) into a C header for test_fb_frame.c.

Run by the Makefile; the header lands in build/ and is never committed.
"""

import json
import sys
from pathlib import Path


def arr(hexstr: str) -> tuple[str, int]:
    data = bytes.fromhex(hexstr)
    return "{" + ", ".join(f"0x{b:02x}" for b in data) + "}" if data else "{0}", len(data)


def main(src: str, dst: str) -> None:
    v = json.loads(Path(src).read_text())
    out = ["/* generated from test_vectors.json by gen_vectors.py: do not edit */",
           "#include <stdint.h>", "#include <stddef.h>",
           "typedef struct { const uint8_t *data; size_t len; unsigned crc; } crc_vec;",
           "typedef struct { const uint8_t *data; size_t len;"
           " const uint8_t *enc; size_t enc_len; } cobs_vec;",
           "typedef struct { uint8_t qid; int32_t raw; } reading_vec;",
           "typedef struct { unsigned node_id, seq; const reading_vec *readings; size_t n;"
           " const uint8_t *packet; size_t packet_len; const uint8_t *frame; size_t frame_len; } packet_vec;",
           "typedef struct { const char *why; const uint8_t *frame; size_t len; } bad_vec;"]
    rows = []
    for i, c in enumerate(v["crc16"]):
        a, n = arr(c["data"])
        out.append(f"static const uint8_t crc_{i}[] = {a};")
        rows.append(f"{{crc_{i}, {n}, {c['crc']}u}}")
    out.append("static const crc_vec CRC_VECS[] = {" + ", ".join(rows) + "};")
    rows = []
    for i, c in enumerate(v["cobs"]):
        a, n = arr(c["data"])
        e, m = arr(c["encoded"])
        out += [f"static const uint8_t cobs_d{i}[] = {a};", f"static const uint8_t cobs_e{i}[] = {e};"]
        rows.append(f"{{cobs_d{i}, {n}, cobs_e{i}, {m}}}")
    out.append("static const cobs_vec COBS_VECS[] = {" + ", ".join(rows) + "};")
    rows = []
    for i, p in enumerate(v["packets"]):
        rd = ", ".join(f"{{{r['qid']}, {r['raw']}}}" for r in p["readings"]) or "{0, 0}"
        a, n = arr(p["packet"])
        f, m = arr(p["frame"])
        out += [f"static const reading_vec pk_r{i}[] = {{{rd}}};", f"static const uint8_t pk_p{i}[] = {a};",
                f"static const uint8_t pk_f{i}[] = {f};"]
        n_readings = len(p["readings"])
        rows.append(f"{{{p['node_id']}u, {p['seq']}u, pk_r{i}, {n_readings}, pk_p{i}, {n}, pk_f{i}, {m}}}")
    out.append("static const packet_vec PACKET_VECS[] = {" + ", ".join(rows) + "};")
    rows = []
    for i, b in enumerate(v["bad_frames"]):
        f, m = arr(b["frame"])
        out.append(f"static const uint8_t bad_{i}[] = {f};")
        rows.append(f"{{\"{b['why']}\", bad_{i}, {m}}}")
    out.append("static const bad_vec BAD_VECS[] = {" + ", ".join(rows) + "};")
    out.append("#define N_VECS(a) (sizeof(a) / sizeof((a)[0]))")
    Path(dst).write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
