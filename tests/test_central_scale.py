"""The territory scale run (``make fleet-scale``, benchmarks/central_scale.py) in small: 40
gateways (the real outbox and MQTT uplink, each its own broker identity under the fleet ACL),
real Mosquitto and PostgreSQL, a collector SIGKILLed and the broker restarted mid-run, a burst,
hostile messages. What it must show is what the full run must: nothing lost, nothing twice,
every hostile message quarantined (or, a random payload that happens to be a well-formed event,
stored under the hostile identity and nowhere else), nothing left in the outboxes. The timing
figures are the benchmark's, not asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_small_territory_run_loses_nothing_and_quarantines_every_hostile_message(
        tmp_path: Path) -> None:
    import pg_server
    from mqtt_broker import MOSQUITTO

    pytest.importorskip("psycopg", reason="the 'central' extra (psycopg) is not installed")
    if pg_server.missing_reason() or MOSQUITTO is None:
        pytest.skip(pg_server.missing_reason() or "mosquitto is not installed")
    got = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "central_scale.py"), "--gateways", "40",
         "--procs", "2", "--normal-period", "2", "--normal-s", "9", "--burst-rate", "20",
         "--burst-s", "4", "--solo-events", "2000", "--drain-timeout", "120",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert got.returncode == 0, got.stderr[-3000:]
    doc = json.loads((tmp_path / "fleet_scale.json").read_text())
    assert doc["collector_kills"] == 1 and doc["broker_restarts"] == 1
    assert doc["produced"] > 40 * 20 * 4  # the burst alone
    assert doc["pending_in_outboxes"] == 0
    assert doc["lost"] == 0 and doc["stored"] == doc["produced"]
    assert doc["duplicate_rows"] == 0
    assert doc["gateways_with_seq_gaps"] == 0
    assert doc["quarantined"] + doc["hostile_stored_as_events"] == doc["hostile_sent"] > 0
    assert doc["burst"]["drained_s_after_burst"] is not None
    assert doc["meta"]["commit"]  # provenance recorded
