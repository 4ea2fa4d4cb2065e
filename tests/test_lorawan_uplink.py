"""Events out over LoRaWAN through emulated RN2483 / RAK3172 modems on real ptys.

A fake clock drives both the gateway's airtime planner and the modem's own duty cycle, so
duty-cycle waits and the daily budget are tested without sleeping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from lora_helpers import wait_for

from frugalai import registry
from frugalai.errors import ConfigError, UplinkError
from frugalai.events.codec import decode_binary, encode_binary
from frugalai.events.event import Event
from frugalai.pipeline import Pipeline
from frugalai.protocols.lorawan import JOIN_REQUEST_PHY, lorawan_time_on_air, time_on_air
from frugalai.sim.lora_modem import ModemEmulator, Rak3172Emulator, Rn2483Emulator
from frugalai.sources.base import Backoff
from frugalai.uplink.lorawan import LorawanSink
from frugalai.uplink.outbox import Outbox

EMULATORS = {"rak3172": Rak3172Emulator, "rn2483": Rn2483Emulator}
T0 = 1_767_225_600.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(modem: str, clock: FakeClock, connect: bool = True,
         **kwargs: Any) -> tuple[ModemEmulator, LorawanSink]:
    """An emulator and a sink; with ``connect``, joined and past the join's duty-cycle wait."""
    emu = EMULATORS[modem](clock=clock).start()
    kwargs.setdefault("backoff", Backoff(initial=0.05, cap=0.1, jitter=0.0))
    sink = LorawanSink(emu.path, modem=modem, clock=clock, timeout=1.0, tx_timeout=2.0,
                       join_timeout_s=2.0, **kwargs)
    if connect:
        sink.connect()
        clock.t += 200  # past the join request's off time (SF12: 1.2 s at 1 %)
    return emu, sink


def events(n: int, kind: str = "alarm") -> list[Event]:
    return [Event(kind, "tide", T0 + 60 * i, score=5.0, value=2.1 + i, sensor_id=3)
            for i in range(n)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.mark.parametrize("modem", ["rn2483", "rak3172"])
def test_duty_cycle_lets_one_uplink_through_then_waits(modem: str, clock: FakeClock) -> None:
    emu, sink = make(modem, clock)
    outbox = Outbox(":memory:")
    pipeline = Pipeline([], outbox, [sink])
    try:
        stored = outbox.append_many(events(3))
        assert pipeline.flush() == 1          # one uplink; sub-band M is then off for 6.17 s
        assert outbox.depth() == 2
        clock.t += 3.0
        assert pipeline.flush() == 0          # still waiting: nothing asked of the modem
        clock.t += 3.2
        assert pipeline.flush() == 1
        clock.t += 6.2
        assert pipeline.flush() == 1 and outbox.depth() == 0
        assert pipeline.summary()["uplinks"][repr(sink)]["uplinks"] == 3
    finally:
        pipeline.close()
        emu.close()
    assert [p for _, p in emu.uplinks] == [encode_binary(e) for e in stored]
    assert {port for port, _ in emu.uplinks} == {10}
    assert decode_binary(emu.uplinks[0][1])["value"] == pytest.approx(2.1, abs=0.01)
    s = sink.summary()
    assert s["uplinks"] == 3 and s["events_delayed"] == 2 and s["events_waiting"] == 0
    assert s["deferred_duty_cycle"] >= 2 and s["airtime_s"] == pytest.approx(
        3 * lorawan_time_on_air(11, 5))
    assert s["retries"] == {}   # the modem never had to refuse: the planner got there first


def test_rn2483_join_dialogue(clock: FakeClock) -> None:
    emu, sink = make("rn2483", clock, connect=False, dr=3)
    try:
        assert sink.send(events(1)) == []     # joined; the join request used sub-band M
        clock.t += 30.0
        assert len(sink.send(events(1))) == 1
    finally:
        sink.close()
        emu.close()
    cmds = emu.commands
    assert cmds[:6] == ["sys get ver", "mac resume", "mac set dr 3", "mac get dr",
                        "mac get status", "mac join otaa"]
    assert cmds[6] == "mac tx uncnf 10 " + encode_binary(events(1)[0]).hex().upper()


def test_rak3172_join_dialogue(clock: FakeClock) -> None:
    emu, sink = make("rak3172", clock, connect=False, fport=42)
    try:
        assert sink.send(events(1)) == []
        clock.t += 7.0
        assert len(sink.send(events(1))) == 1
    finally:
        sink.close()
        emu.close()
    assert emu.commands[:7] == ["AT", "AT+NWM=?", "AT+DR=5", "AT+DR=?", "AT+NJS=?",
                                "AT+JOIN=1:0:10:8",
                                "AT+SEND=42:" + encode_binary(events(1)[0]).hex().upper()]


def test_outbox_priority_decides_what_goes_first(clock: FakeClock) -> None:
    emu, sink = make("rn2483", clock)
    outbox = Outbox(":memory:")
    pipeline = Pipeline([], outbox, [sink])
    try:
        outbox.append_many(events(2, "summary") + events(1, "heartbeat") + events(1, "alarm"))
        pipeline.flush()
    finally:
        pipeline.close()
        emu.close()
    assert decode_binary(emu.uplinks[0][1])["kind"] == "alarm"


@pytest.mark.parametrize("modem,replies,rejoin", [
    ("rn2483", ["no_free_ch"], False),
    ("rn2483", ["busy"], False),
    ("rn2483", ["ok", "mac_err"], False),
    ("rn2483", ["not_joined"], True),
    ("rn2483", ["silent"], True),
    ("rn2483", ["frame_counter_err_rejoin_needed"], True),
    ("rn2483", ["mac_paused"], False),
    ("rak3172", ["AT_BUSY_ERROR"], False),
    ("rak3172", ["AT_ERROR"], False),
    ("rak3172", ["OK", "+EVT:SEND_CONFIRMED_FAILED"], False),
    ("rak3172", ["AT_NO_NETWORK_JOINED"], True),
])
def test_transient_replies_keep_the_events_and_retry(modem: str, replies: list[str],
                                                     rejoin: bool, clock: FakeClock) -> None:
    emu, sink = make(modem, clock)
    join = "mac join otaa" if modem == "rn2483" else "AT+JOIN=1:0:10:8"
    try:
        emu.script("mac tx" if modem == "rn2483" else "AT+SEND", *replies)
        assert sink.send(events(1)) == []              # kept in the outbox
        clock.t += 10
        if rejoin:                                     # joined again; the join used the band
            assert sink.send(events(1)) == []
            clock.t += 10
        assert len(sink.send(events(1))) == 1          # and sent on the next try
    finally:
        sink.close()
        emu.close()
    assert emu.commands.count(join) == (2 if rejoin else 1)
    assert sink.stats.retries == {replies[-1]: 1}
    if replies[0] == "mac_paused":
        assert "mac resume" in emu.commands[2:]


@pytest.mark.parametrize("modem,replies,message", [
    ("rn2483", ["invalid_param"], "invalid_param"),
    ("rn2483", ["invalid_data_len"], "too long"),
    ("rn2483", ["ok", "invalid_data_len"], "too long"),
    ("rak3172", ["AT_PARAM_ERROR"], "AT_PARAM_ERROR"),
    ("rak3172", ["AT_COMMAND_NOT_FOUND"], "AT_COMMAND_NOT_FOUND"),
])
def test_hard_errors_raise_uplink_error_and_lose_nothing(modem: str, replies: list[str],
                                                         message: str, clock: FakeClock) -> None:
    emu, sink = make(modem, clock)
    outbox = Outbox(":memory:")
    pipeline = Pipeline([], outbox, [sink])
    try:
        emu.script("mac tx" if modem == "rn2483" else "AT+SEND", *replies)
        with pytest.raises(UplinkError, match=message):
            sink.send(events(1))
        outbox.append_many(events(1))
        wait_for(lambda: False, 0.15)                  # past the backoff
        assert pipeline.flush() == 1                   # the modem recovers: it goes out
    finally:
        pipeline.close()
        emu.close()


def test_downlink_is_counted_against_the_budget(clock: FakeClock) -> None:
    emu, sink = make("rn2483", clock, budget_s=30)
    try:
        emu.downlink = (3, b"\x01\x02")                # type: ignore[attr-defined]
        assert len(sink.send(events(1))) == 1
    finally:
        sink.close()
        emu.close()
    s = sink.summary()
    assert s["downlinks"] == 1 and s["downlinks_24h"] == 1


def test_daily_budget_defers_and_summary_says_how_much(clock: FakeClock) -> None:
    toa, join = lorawan_time_on_air(11, 5), time_on_air(JOIN_REQUEST_PHY, 7)
    # room for the join request and 3 uplinks a day
    emu, sink = make("rak3172", clock, budget_s=join + 3.5 * toa)
    outbox = Outbox(":memory:")
    pipeline = Pipeline([], outbox, [sink])
    try:
        outbox.append_many(events(5))
        first = clock.t
        sent = 0
        for _ in range(5):
            sent += pipeline.flush()
            clock.t += 7.0                                  # past the duty-cycle off time
        assert sent == 3 and outbox.depth() == 2
        s = sink.summary()
        assert s["waiting_for"] == "budget" and s["deferred_budget"] >= 2
        assert s["events_waiting"] == 2
        assert s["airtime_24h_s"] == pytest.approx(join + 3 * toa, abs=1e-4)
        # the join and the first uplink leave the 24-hour window: one more may go
        clock.t = first + 86_400 + 0.1
        assert pipeline.flush() == 1 and outbox.depth() == 1
    finally:
        pipeline.close()
        emu.close()
    # a join request is airtime too
    assert s["joins"] == 1


def test_pack_puts_several_events_in_one_uplink(clock: FakeClock) -> None:
    emu, sink = make("rn2483", clock, pack=4, dr=0)
    try:
        assert len(sink.send(events(6))) == 4
    finally:
        sink.close()
        emu.close()
    assert len(emu.uplinks) == 1 and len(emu.uplinks[0][1]) == 44


def test_join_refused_then_accepted_after_backoff(clock: FakeClock) -> None:
    emu, sink = make("rn2483", clock, connect=False)
    emu.join_failures = 1
    try:
        with pytest.raises(UplinkError, match="join refused"):
            sink.send(events(1))
        assert sink.send(events(1)) == []      # backing off: the modem is left alone
        wait_for(lambda: False, 0.15)
        clock.t += 10
        assert sink.send(events(1)) == []      # joined now; the join request used sub-band M
        clock.t += 10
        assert len(sink.send(events(1))) == 1
    finally:
        sink.close()
        emu.close()
    assert sink.stats.join_failures == 1 and emu.commands.count("mac join otaa") == 2


@pytest.mark.parametrize("modem,reset", [("rn2483", "sys reset"), ("rak3172", "ATZ")])
def test_hung_modem_is_reset_rejoined_and_used_again(modem: str, reset: str,
                                                     clock: FakeClock) -> None:
    emu, sink = make(modem, clock)
    try:
        assert len(sink.send(events(1))) == 1
        emu.hang(until_reset=True)
        clock.t += 10
        with pytest.raises(UplinkError):
            sink.send(events(1))
        wait_for(lambda: False, 0.15)
        assert sink.send(events(1)) == []      # reset, joined again: the join used the band
        clock.t += 10
        assert len(sink.send(events(1))) == 1
    finally:
        sink.close()
        emu.close()
    assert reset in emu.commands and len(emu.uplinks) == 2
    assert sink.stats.joins == 2           # a reset modem has lost its session


def test_url_grammar() -> None:
    factory = registry.uplinks.get("lorawan")
    sink = factory("lorawan:///dev/ttyUSB1?modem=rn2483&dr=5&port=10&budget_s=30",
                   key="uplink[0].url", gateway="gw")
    assert sink.dr == 5 and sink.fport == 10 and sink.planner.budget.airtime_s == 30
    bad = {
        "lorawan:///dev/ttyUSB1?modem=rn2483&appkey=00": "unknown option",
        "lorawan:///dev/ttyUSB1?dr=5": "'modem' is required",
        "lorawan:///dev/ttyUSB1?modem=rn2483&dr=0&pack=5": "do not fit",
        "lorawan:///dev/ttyUSB1?modem=rn2483&port=0": "FPort",
        "lorawan:///dev/ttyUSB1?modem=rn2483&dr=7": "data rates",
    }
    for url, message in bad.items():
        with pytest.raises(ConfigError, match=message) as info:
            factory(url, key="uplink[0].url")
        assert info.value.key == "uplink[0].url"


def test_config_builds_lora_flows_and_uplink(tmp_path: Any) -> None:
    from lora_helpers import lpp_temperature_humidity

    from frugalai.config import loads_config
    from frugalai.sources.chirpstack import ChirpStackSource
    from frugalai.sources.lora_source import LoraSource

    registry.decoders.register("test-lpp", lpp_temperature_humidity)
    cfg = loads_config({
        "gateway": {"id": "port-quai", "state_dir": str(tmp_path)},
        "flow": [
            {"name": "node-a", "source": "lora:///dev/ttyUSB1?modem=rak3172&decoder=test-lpp"
             "&freq=868100000&sf=7", "quantity": "temperature_c_3", "aggregate": "mean"},
            {"name": "node-b", "source": "chirpstack://127.0.0.1:1883?application=x"
             "&dev_eui=0102030405060708&decoder=test-lpp", "quantity": "temperature_c_3",
             "aggregate": "mean"},
        ],
        "uplink": [{"url": "lorawan:///dev/ttyUSB2?modem=rn2483&dr=5&port=10&budget_s=30"}],
    })
    pipeline = Pipeline.from_config(cfg)
    try:
        assert isinstance(pipeline.flows[0].source, LoraSource)
        assert isinstance(pipeline.flows[1].source, ChirpStackSource)
        assert isinstance(pipeline.sinks[0], LorawanSink)
    finally:
        pipeline.close()


def test_flaky_modem_loses_nothing_and_keeps_order(clock: FakeClock) -> None:
    emu = Rn2483Emulator(clock=clock, fail_rate=0.3, seed=4).start()
    sink = LorawanSink(emu.path, modem="rn2483", clock=clock, timeout=1.0, tx_timeout=2.0,
                       backoff=Backoff(initial=0.01, cap=0.01, jitter=0.0))
    outbox = Outbox(":memory:")
    pipeline = Pipeline([], outbox, [sink])
    try:
        stored = outbox.append_many(events(10))
        for _ in range(100):
            clock.t += 7.0
            pipeline.flush()
            if outbox.depth() == 0:
                break
    finally:
        pipeline.close()
        emu.close()
    assert [p for _, p in emu.uplinks] == [encode_binary(e) for e in stored]
    assert sink.stats.retries.get("busy", 0) >= 1 and sink.stats.events_sent == 10


def test_malformed_reply_to_a_send_is_counted_and_retried(clock: FakeClock) -> None:
    emu, sink = make("rn2483", clock)
    try:
        emu.script("mac tx", "mac_tx_kinda_ok")
        assert sink.send(events(1)) == []
        emu.script("mac tx", "ok", "mac_rx x 0A")       # a downlink line that does not parse
        assert sink.send(events(1)) == []
        clock.t += 10
        assert len(sink.send(events(1))) == 1
    finally:
        sink.close()
        emu.close()
    assert sink.stats.bad_replies == 2


def test_too_long_for_the_current_data_rate_halves_the_pack(clock: FakeClock) -> None:
    emu, sink = make("rn2483", clock, pack=4, dr=5)
    try:
        emu.dr = 0  # type: ignore[attr-defined]  # ADR moved the modem down: 44 B still fit
        emu.script("mac tx", "invalid_data_len")            # ...but MAC commands took room
        assert sink.send(events(4)) == []
        assert len(sink.send(events(4))) == 2 and sink.pack == 2
    finally:
        sink.close()
        emu.close()
    assert len(emu.uplinks[0][1]) == 22


def test_daily_budget_survives_a_restart_and_ages_with_the_downtime(tmp_path: Path,
                                                                     clock: FakeClock) -> None:
    """A power cut must not hand the gateway a fresh 30 s of airtime: the budget is saved after
    each uplink and taken back at start, aged by the time the gateway was down."""
    import json

    state = tmp_path / "lorawan-budget.json"
    toa, join = lorawan_time_on_air(11, 5), time_on_air(JOIN_REQUEST_PHY, 7)
    emu, sink = make("rn2483", clock, budget_s=30, state_file=state)
    outbox = Outbox(":memory:")
    pipeline = Pipeline([], outbox, [sink])
    try:
        outbox.append_many(events(3))
        for _ in range(3):
            pipeline.flush()
            clock.t += 7.0
        assert outbox.depth() == 0
    finally:
        pipeline.close()
        emu.close()
    spent = join + 3 * toa
    assert json.loads(state.read_text())["budget"]["tx"][0][1] == pytest.approx(join)

    rebooted = FakeClock()
    rebooted.t = 3.0  # a monotonic clock starts again after a reboot
    again = LorawanSink("/dev/null-modem", modem="rn2483", budget_s=30, clock=rebooted,
                        state_file=state)
    assert again.planner.budget is not None
    assert again.planner.budget.used_s(rebooted()) == pytest.approx(spent, abs=1e-3)
    # restarted at once: the last uplink's sub-band silence (6.17 s at 1 %) still holds
    wait, why = again.planner.wait_s(11, rebooted())
    assert why == "duty_cycle" and 5.0 < wait <= 6.17

    data = json.loads(state.read_text())  # the same file, written 100 s short of a day ago
    data["saved_wall"] -= 86_400 - 100
    state.write_text(json.dumps(data))
    later = LorawanSink("/dev/null-modem", modem="rn2483", budget_s=30, clock=rebooted,
                        state_file=state)
    assert later.planner.budget is not None
    # the join, 200 s before the uplinks, has left the 24-hour window; the uplinks have not
    assert later.planner.budget.used_s(rebooted()) == pytest.approx(3 * toa, abs=1e-3)
    assert later.planner.wait_s(11, rebooted()) == (0.0, "")  # the silence is long over

    state.write_text("{not json")  # a corrupt file: the day counts as spent (issue 14 item 10)
    broken = LorawanSink("/dev/null-modem", modem="rn2483", budget_s=30, clock=rebooted,
                         state_file=state)
    assert broken.planner.budget is not None and broken.planner.budget.used_s(3.0) == 30.0


def test_the_gateway_keeps_the_budget_in_its_state_dir(tmp_path: Path) -> None:
    from frugalai import registry

    factory = registry.uplinks.get("lorawan")
    sink = factory("lorawan:///dev/ttyUSB2?modem=rak3172&budget_s=30", gateway="gw",
                   state_dir=str(tmp_path))
    assert sink.state_file == tmp_path / "lorawan-budget-dev_ttyUSB2.json"
    assert factory("lorawan:///dev/ttyUSB2?modem=rak3172", state_dir=str(tmp_path)).state_file \
        is None  # no budget configured, nothing to keep


def _budget_after(state: Path, content: object, clock: FakeClock) -> LorawanSink:
    import json

    state.write_text(content if isinstance(content, str) else json.dumps(content))
    return LorawanSink("/dev/null-modem", modem="rn2483", budget_s=30, clock=clock,
                       state_file=state)


@pytest.mark.parametrize("tampered", [
    {"budget": {"tx": [[10.0, -1000.0]], "rx": []}},            # negative airtime: 1,030 s/day
    {"budget": {"tx": [[10.0, float("nan")]], "rx": []}},
    {"budget": {"tx": [[-5.0, 0.06]], "rx": []}},                # an uplink in the future
    {"budget": {"tx": [[10.0, 1e300]], "rx": []}},               # absurd airtime
    {"budget": {"tx": [], "rx": []}, "duty_cycle": {"M": float("inf")}},   # silenced forever
    {"budget": {"tx": [], "rx": []}, "duty_cycle": {"M": -1e9}},
    {"budget": {"tx": [], "rx": []}, "duty_cycle": {"Z": 3.0}},
    {"budget": {"tx": "x", "rx": []}},
])
def test_budget_file_out_of_range_is_refused_and_the_day_counted_spent(
        tmp_path: Path, clock: FakeClock, tampered: dict[str, object],
        caplog: pytest.LogCaptureFixture) -> None:
    import json
    import math

    state = tmp_path / "lorawan-budget.json"
    doc = {"saved_wall": 1.0, **tampered}
    with caplog.at_level(logging.WARNING, "frugalai.uplink"):
        sink = _budget_after(state, json.dumps(doc), clock)
    budget = sink.planner.budget
    assert budget is not None
    assert budget.used_s(clock()) == pytest.approx(30.0)        # never more, never less
    wait, why = sink.planner.wait_s(11, clock())
    assert why == "budget" and math.isfinite(wait) and 86_000 < wait <= 86_400
    assert sink.stats.budget_state_errors == 1
    assert sum("airtime budget state" in r.getMessage() for r in caplog.records) == 1


def test_budget_file_deleted_after_the_first_run_counts_the_day_spent(
        tmp_path: Path, clock: FakeClock) -> None:
    state = tmp_path / "lorawan-budget.json"
    first = LorawanSink("/dev/null-modem", modem="rn2483", budget_s=30, clock=clock,
                        state_file=state)
    assert first.planner.budget is not None and first.planner.budget.used_s(clock()) == 0.0
    assert state.exists()                  # written at the first start, before any uplink
    again = LorawanSink("/dev/null-modem", modem="rn2483", budget_s=30, clock=clock,
                        state_file=state)
    assert again.planner.budget is not None and again.planner.budget.used_s(clock()) == 0.0
    state.unlink()                         # fair use must not reset with a deleted file
    third = LorawanSink("/dev/null-modem", modem="rn2483", budget_s=30, clock=clock,
                        state_file=state)
    assert third.planner.budget is not None
    assert third.planner.budget.used_s(clock()) == pytest.approx(30.0)
    assert third.stats.budget_state_errors == 1
