"""Logs an operator can read under faults, and an exit code that tells a loss (issue 14, item 12).

A broker outage used to log one warning per flush (the message carried a growing count, so it
was never "the same"), a full outbox one line per dropped event (1,040 lines a minute), and a
run that lost events exited 0. Here a real Mosquitto is stopped, a real outbox is capped, a real
TIC meter on a pty sends corrupt frames, and the real daemon runs out of disk.
"""

from __future__ import annotations

import logging
import resource
import signal
import time
from pathlib import Path

import pytest
from service_helpers import (
    Daemon,
    SquareLoad,
    flow_toml,
    gateway_toml,
    start_meter,
    status,
    wait_for,
)

from frugalai.events.event import Event
from frugalai.lograte import LogRate
from frugalai.pipeline import Pipeline
from frugalai.sim.clock import SimClock
from frugalai.sim.pty import PtyPort
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.uplink.outbox import Outbox


def lines(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name.startswith("frugalai") and r.levelno >= level]


def test_a_fault_every_10_s_for_an_hour_gives_one_line_then_one_per_5_minutes() -> None:
    log = logging.getLogger("test.lograte")
    got: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record.getMessage())

    log.addHandler(Capture())
    now = [0.0]
    rate = LogRate(log, every_s=300, clock=lambda: now[0])
    for t in range(0, 3600, 10):
        now[0] = float(t)
        rate.warning("k", "broker down (%s)", "refused", count=1)
    rate.end("k")
    assert len(got) == 1 + 3600 // 300  # the first, then one per 5 minutes (last at end())
    assert got[0] == "broker down (refused)"
    assert got[1] == "broker down (refused) (30 more in the last 300 s)"
    counted = sum(int(m.split("(")[2].split()[0]) for m in got[1:])
    assert counted + 1 == 360  # every occurrence is accounted for
    rate.warning("k", "broker down (%s)", "again")  # a new episode is news at once
    assert got[-1] == "broker down (again)"


def test_a_flapping_fault_is_one_episode_until_it_stays_away_for_settle_s() -> None:
    log = logging.getLogger("test.lograte.flap")
    got: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record.getMessage())

    log.addHandler(Capture())
    log.propagate = False
    now = [0.0]
    rate = LogRate(log, every_s=300, settle_s=300, clock=lambda: now[0])
    for t in range(0, 600, 10):  # down 5 s, up 5 s, for 10 minutes
        now[0] = float(t)
        rate.warning("link", "link down (%s)", t)
        now[0] = t + 5.0
        rate.recovered("link")
    assert got == ["link down (0)", "link down (300) (30 more in the last 300 s)"]
    now[0] = 599.0  # back 4 s after the last recovery: the same episode, counted
    rate.warning("link", "link down (%s)", "late")
    assert len(got) == 2
    rate.recovered("link")
    now[0] += 301.0  # away for longer than settle_s: the count still unsaid, then the news
    rate.warning("link", "link down (%s)", "news")
    assert got[2:] == ["link down (late) (30 more in the last 299 s)", "link down (news)"]
    plain = LogRate(log, clock=lambda: now[0])  # no settle_s: recovered() ends at once
    plain.warning("k", "again (%s)", 1)
    plain.recovered("k")
    plain.warning("k", "again (%s)", 2)
    assert got[-2:] == ["again (1)", "again (2)"]


def test_a_broker_outage_logs_a_few_lines_not_one_per_flush(
        mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (extra 'mqtt')")
    from frugalai.uplink.mqtt import MqttSink

    caplog.set_level(logging.INFO, logger="frugalai")
    sink = MqttSink.from_url(f"{mosquitto.url}?retry_min=1&retry_max=2&timeout=0.5",
                             gateway="gw")
    assert sink.wait_connected(10)
    pipeline = Pipeline([], Outbox(tmp_path / "outbox.sqlite"), [sink])
    try:
        pipeline.store([Event("alarm", "s", 1_700_000_000.0, score=5.0)])
        assert pipeline.flush() == 1
        mosquitto.stop()
        for i in range(100):  # 100 events during the outage, a flush after each
            pipeline.store([Event("alarm", "s", 1_700_000_010.0 + i, score=5.0)])
            pipeline.flush()
        during = lines(caplog)
        assert 1 <= len(during) <= 4, during
        assert sum("uplink failed" in m for m in during) == 1, during
        mosquitto.start()
        assert sink.wait_connected(15)
        wait_for(lambda: pipeline.flush() or pipeline.outbox.depth() == 0, 20,
                 "delivery after the outage")
        assert pipeline.outbox.depth() == 0
    finally:
        pipeline.close()
    after = lines(caplog)
    summary = [m for m in after if "uplink failed" in m and "more in the last" in m]
    assert len(summary) == 1, after  # the count, said once when the outage ends
    assert int(summary[0].rsplit("(", 1)[1].split()[0]) >= 99
    assert len(after) <= 6, after


def test_a_capped_outbox_logs_its_drops_once_then_a_count(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="frugalai")
    outbox = Outbox(tmp_path / "outbox.sqlite", max_pending=10)
    for i in range(1040):
        outbox.append_many([Event("summary", "s", 1_700_000_000.0 + i)])
    assert outbox.counts()["dropped"] == 1030
    assert len(lines(caplog)) == 1 and "dropped 1 event(s)" in lines(caplog)[0]
    outbox.close()
    final = lines(caplog)
    assert len(final) == 2 and "(1029 more in the last" in final[1], final


def test_a_burst_of_corrupt_frames_is_one_line_in_the_daemon_log(tmp_path: Path) -> None:
    clock = SimClock(time.time(), 10.0)
    meter = TicMeterEmulator(SquareLoad(), clock, frame_period_s=1.5,  # type: ignore[arg-type]
                             corrupt_rate=0.5, seed=3,
                             port=PtyPort(link=str(tmp_path / "ttya"))).start()
    state = tmp_path / "state"
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(state, [flow_toml("linky", tmp_path / "ttya", 1)],
                                   [f"file://{tmp_path / 'events.jsonl'}"]))
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        wait_for(lambda: status(state)["flows"]["linky"]["decode_errors"] >= 15, 30,
                 "15 corrupt frames")
        time.sleep(1.5)  # three more health ticks, each seeing new rejected frames
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.alive():
            daemon.kill()
        meter.close()
    rejected = [ln for ln in daemon.log_text().splitlines() if "frame(s) rejected" in ln]
    assert len(rejected) == 1, rejected
    assert "flow linky:" in rejected[0] and "(last: " in rejected[0]


def test_a_run_that_lost_events_exits_non_zero(tmp_path: Path) -> None:
    """The daemon runs out of disk (RLIMIT_FSIZE set on the running process, as in
    test_outbox_full_disk.py); what it holds in memory at SIGTERM is lost: exit code 3."""
    link = tmp_path / "ttya"
    meter = start_meter(link)
    state = tmp_path / "state"
    config = tmp_path / "gateway.toml"
    config.write_text(gateway_toml(state, [flow_toml("linky", link, 1)],
                                   [f"file://{tmp_path / 'events.jsonl'}"]))
    daemon = Daemon(config, tmp_path / "log.txt")
    try:
        daemon.wait_running(state)
        wait_for(lambda: status(state).get("outbox", {}).get("sent", 0) > 0, 60,
                 "a first event delivered")
        # Room for the health files and the log, not for one outbox transaction (two pages
        # of the WAL, 8,272 bytes): SQLite rewrites its WAL from the start after a
        # checkpoint, so a limit at the files' sizes would still let appends through.
        full = 1024 + max(p.stat().st_size for p in (state / "status.json",
                                                      state / "frugalai.prom", daemon.log))
        assert full < 8272
        resource.prlimit(daemon.proc.pid, resource.RLIMIT_FSIZE, (full, full))  # disk full
        wait_for(lambda: status(state).get("outbox", {}).get("held_in_memory", 0) > 0, 60,
                 "events held in memory")
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(30)
    finally:
        if daemon.alive():
            daemon.kill()
        meter.close()
    log = daemon.log_text()
    assert "LOST" in log and "held in memory at exit" in log, log[-2000:]
    assert log.count("outbox cannot store events") == 1, log[-2000:]
    assert code == 3, log[-2000:]
    assert "exiting with code 3:" in log
