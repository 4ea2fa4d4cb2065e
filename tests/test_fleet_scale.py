"""The fleet scale test with a small N (``make fleet-test`` runs N = 50 and records figures).

Five real gateway processes, each with its own credentials, on one real Mosquitto with an ACL:
all report healthy; a gateway publishing under another's id is refused by the broker; a rollout
goes canary-then-all and every gateway's serial TIC flow (the real daemon on an emulated meter)
is healthy again after it, after a reload that reopens its port and after a restart; the broker
restarts; a bundle that fails its self-test is rolled back by
the canary itself and goes no further; sent to all at once (canary 100 %), every gateway rolls
it back by itself; the events published all along are collected with 0 lost.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mqtt_broker import MOSQUITTO
from test_service_models import SHIPPED

from frugalai import runtime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = [
    pytest.mark.skipif(not hasattr(runtime, "load_model") or not SHIPPED.is_dir(),
                       reason="the inference runtime and models/energy-anomaly are not on this "
                              "branch"),
    pytest.mark.skipif(MOSQUITTO is None, reason="mosquitto not installed: run "
                                                 "scripts/install-sysdeps (make test does)")]


@pytest.mark.slow
def test_five_gateways_on_one_broker_with_acls(tmp_path: Path) -> None:
    from fleet_scale import run

    r = run(5, tmp_path, event_period=0.5, timeout=300, serial=True)
    # every gateway also runs the real daemon on an emulated TIC meter (7E1 on a pty): after
    # the rollout (a model swap on the open port), a reload that reopens the port and a
    # restart of the process, every flow of every gateway is healthy again within 60 s
    # (HEAL_S, a deadline for "comes back by itself", not a speed claim)
    assert r["serial_all_healed"], r["serial_heal_s"]
    assert r["daemons"]["events_created"] > 0 and r["daemons"]["exit_codes"] == [0], r["daemons"]
    assert r["daemons"]["left_pending"] == 0
    assert r["acl_forged_status_refused"]
    assert r["rollout_ok"], r["rollout"]
    canary, everyone = r["rollout"]
    assert canary["targets"] == ["gw000"] and len(everyone["targets"]) == 5
    assert r["broken_stopped_at_canary"], r["broken_rollout"]
    assert r["all_on_v1_after_broken_rollout"]
    assert r["broken_to_all_rolled_back_everywhere"], r
    ev = r["events"]
    assert ev["appended"] > 0 and ev["lost"] == 0 and ev["missing_in_sequences"] == 0, ev
    assert ev["collected"] == ev["appended"] and ev["rejected"] == 0
    assert r["broker"]["rss_peak_mb"] > 0 and r["traffic"]["status_payload_bytes"] > 0
