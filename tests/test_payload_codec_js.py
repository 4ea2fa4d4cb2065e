"""The JavaScript payload codec (ChirpStack v4 / The Things Stack) run by node on Python's bytes."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from frugalai.events.codec import SUMMARY_SIZE, decode_binary, encode_binary
from frugalai.events.event import KINDS, Event, Stats

JS = Path(__file__).resolve().parents[1] / "frugalai" / "events" / "payload_codec.js"
NODE = shutil.which("node") or shutil.which("nodejs")

# Runs the codec the way each network server does: ChirpStack v4 evaluates the file then calls
# decodeUplink({bytes, fPort, recvTime, variables}); The Things Stack calls
# decodeUplink({bytes, fPort, recvTime}). Both read {data, warnings, errors}.
RUNNER = r"""
const fs = require("fs");
const vm = require("vm");
const src = fs.readFileSync(process.argv[process.argv.length - 1], "utf8");
const cases = JSON.parse(fs.readFileSync(0, "utf8"));
const sandbox = {};
vm.createContext(sandbox);            // no `module`, no `require`: like QuickJS / goja
vm.runInContext(src, sandbox);
const viaModule = require(process.argv[process.argv.length - 1]);
const out = cases.map(function (c, i) {
  const input = i % 2
    ? {bytes: c, fPort: 10, recvTime: new Date(), variables: {}}   // ChirpStack v4
    : {bytes: c, fPort: 10, recvTime: new Date()};                 // The Things Stack
  sandbox.input = input;
  const a = vm.runInContext("decodeUplink(input)", sandbox);
  const b = viaModule.decodeUplink(input);
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error("sandbox and module differ");
  return a;
});
process.stdout.write(JSON.stringify(out));
"""


def run_node(payloads: list[bytes]) -> list[dict[str, Any]]:
    if NODE is None:
        pytest.skip("node not installed: scripts/install-sysdeps installs nodejs (make test does)")
    proc = subprocess.run([NODE, "-e", RUNNER, str(JS)], input=json.dumps([list(p) for p in
                          payloads]), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result: list[dict[str, Any]] = json.loads(proc.stdout)
    return result


def random_events(n: int, seed: int = 7) -> list[Event]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        kind = rng.choice(sorted(KINDS))
        value = rng.choice([math.nan, 0.0, -0.0, 1e-6, 65504.0, 1e9, -1e9,
                            rng.uniform(-70000, 70000), rng.uniform(-5, 5)])
        stats = None
        if kind == "summary" and rng.random() < 0.7:
            empty = rng.random() < 0.2
            stats = Stats(period_s=rng.randrange(0, 2**33), readings=rng.randrange(0, 2**33),
                          windows=rng.randrange(0, 70000), events=rng.randrange(0, 300),
                          errors=rng.randrange(0, 70000), dropped=rng.randrange(0, 10),
                          min=math.nan if empty else rng.uniform(-1e6, 0),
                          mean=math.nan if empty else rng.uniform(-3, 3),
                          max=math.nan if empty else rng.uniform(0, 1e38),
                          max_score=math.nan if empty else rng.uniform(0, 40))
        out.append(Event(kind, "s", 1_577_836_800 + rng.randrange(0, 2**32), score=rng.uniform(0, 30),
                         value=value, label=rng.randrange(0, 256), sensor_id=rng.randrange(256),
                         model_id=rng.randrange(8), seq=rng.randrange(0, 10**6), stats=stats))
    return out


def test_js_decodes_exactly_what_python_decodes() -> None:
    evs = random_events(400)
    payloads = [encode_binary(e) for e in evs]
    # and the short form of summaries, for links limited to 11 bytes (US915 DR0)
    payloads += [encode_binary(e, max_size=11) for e in evs if e.stats is not None]
    assert any(len(p) == SUMMARY_SIZE for p in payloads) and any(len(p) == 11 for p in payloads)
    results = run_node(payloads)
    for raw, res in zip(payloads, results):
        assert res["errors"] == [] and res["warnings"] == []
        data = res["data"]
        from datetime import datetime, timezone

        expected = decode_binary(raw)
        assert data.pop("time") == datetime.fromtimestamp(
            expected["ts"], tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        assert data == expected, raw.hex()


@pytest.mark.parametrize("raw, message", [
    (b"", "expected 11 or 37 bytes, got 0"),
    (bytes(12), "expected 11 or 37 bytes, got 12"),
    (bytes(11), "expected version 1, got 0"),
    (bytes([0x78]) + bytes(10), "unknown kind code 7"),
    (bytes([0x48]) + bytes(36), "37 bytes is the summary layout, but the kind is alarm"),
])
def test_js_reports_bad_input_in_errors(raw: bytes, message: str) -> None:
    (res,) = run_node([raw])
    assert "data" not in res
    assert res["errors"] == [f"frugalai: {message}"]


def test_js_decodes_a_health_event() -> None:
    """A health event: the failing checks' mask in byte 8, the check that changed in the
    model id bits, its figure as the value (a stuck gauge: 3 h, with a gap still open)."""
    event = Event("health", "gauge", 1_700_000_000.0, value=10800.0, label=0b11, sensor_id=4,
                  model_id=1, seq=9)
    raw = encode_binary(event)
    assert len(raw) == 11 and raw[8] == 0b11
    (res,) = run_node([raw])
    assert res["errors"] == []
    data = res["data"]
    assert data["kind"] == "health" and data["check"] == "stuck"
    assert data["faults"] == ["gap", "stuck"] and data["label"] == 3
    assert data["value"] == 10800.0 and data["sensor_id"] == 4
    py = decode_binary(raw)
    assert py["faults"] == data["faults"] and py["check"] == data["check"]
