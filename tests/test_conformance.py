"""Conformance suites parametrized over the registries (river's ``check_estimator`` idea).

Every name registered in :mod:`frugalai.registry`, built-in or plugin, runs the same contract
checks; the parameters are read from ``registry.X.names()`` at collection time, so a new
registration gets them for free:

* **codecs**: round trip (kind, ids, seq mod 65536, time to the second, value and score to the
  codec's precision), ``encode`` does not modify the event, ``line`` is one line, garbage is a
  ``DecodeError``. Nothing to set up: every codec runs.
* **backends x precisions x shipped bundles**: outputs agree with the card's self-test vectors
  (the card's convention: vectors under ``<backend>_<precision>`` if the backend rounds its own
  way, else ``<precision>``, i.e. the reference's), ``predict_one`` equals a row of
  ``predict_many``, the input is not modified. A runtime not installed here, or a bundle without
  that backend/precision, is a skip with the reason.
* **uplinks**: ``send([])`` returns ``[]``; ``send`` returns the accepted events, a prefix of
  what it was given, and does not modify the list; delivered events really arrive where the
  sink writes them when the suite can see it (file, stdout); ``close`` twice; the context
  manager if offered. Built-ins run against real parts (a file, stdout, a real Mosquitto, TLS
  Mosquitto for ``mqtts``, the emulated LoRaWAN modem); a plugin is tried with the generic URL
  ``<scheme>://<tmp>/out`` and skipped, with the factory's own error, if that does not build.
* **sources** and **serial protocols**: the Readings come with the configured sensor name,
  hold only the quantities the source declares (if it does), the counters follow, ``close``
  twice and the context manager work, and the source stops when asked. Each built-in runs
  against its emulator on a real pty (TIC meter, firmware_bridge node, Modbus meter, LoRa
  modem), a real file (replay) or a real Mosquitto (ChirpStack); a plugin source needs a
  device this suite cannot know, so it is skipped with that reason.
* **meters**: ``read()`` is non-decreasing, ``describe()`` says what it is, ``close`` twice.
  A meter whose hardware is absent here is skipped with the meter's own error.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from lora_helpers import collect

from frugalai import registry
from frugalai.energy.base import MeterError, open_meter
from frugalai.errors import ConfigError, DecodeError, ModelError
from frugalai.events.event import Event, Stats
from frugalai.reading import Reading
from frugalai.runtime.backends import make_backend, runtime_available
from frugalai.runtime.bundle import Bundle, verify_bundle
from frugalai.runtime.model import list_bundles, shipped_models_dir
from frugalai.sources import open_source
from frugalai.sources.base import Source
from frugalai.uplink.base import Sink

T0 = 1_767_225_600.0


# ----------------------------------------------------------------------------------- codecs

def sample_events() -> list[Event]:
    stats = Stats(period_s=3600, readings=3600, windows=4, events=2, errors=1, dropped=0,
                  min=120.5, mean=480.25, max=2310.0, max_score=6.2)
    return [
        Event("alarm", "linky", T0, score=6.25, value=2310.0, sensor_id=1, model_id=2, seq=7),
        Event("clear", "linky", T0 + 900, score=1.5, value=410.0, sensor_id=1, seq=8),
        Event("class", "tide", T0 + 3600, score=0.93, value=2.07, label=2, sensor_id=3,
              model_id=1, seq=70000),
        Event("summary", "linky", T0 + 7200, score=6.2, value=480.25, sensor_id=1, seq=9,
              stats=stats),
        Event("heartbeat", "gw", T0 + 7300, sensor_id=0, seq=10),
    ]


def as_fields(decoded: Any) -> dict[str, Any]:
    return decoded.as_dict() if isinstance(decoded, Event) else dict(decoded)


def close_enough(got: Any, want: float, rel: float, abs_: float) -> bool:
    if want != want:  # NaN is carried as NaN or None
        return got is None or (isinstance(got, float) and got != got)
    return got is not None and math.isclose(float(got), want, rel_tol=rel, abs_tol=abs_)


@pytest.mark.parametrize("name", registry.codecs.names())
def test_codec_round_trip_without_mutation(name: str) -> None:
    codec = registry.codecs.get(name)
    for event in sample_events():
        before = copy.deepcopy(event)
        payload = codec.encode(event)
        assert event == before, f"{name}.encode modified the event"
        assert isinstance(payload, bytes) and payload
        line = codec.line(payload)
        assert "\n" not in line and line
        back = as_fields(codec.decode(payload))
        assert back["kind"] == event.kind
        assert back["sensor_id"] == event.sensor_id and back["model_id"] == event.model_id
        assert back["seq"] % 65536 == event.seq % 65536
        assert abs(back["ts"] - event.ts) <= 1.0
        if event.kind == "class":
            assert back["label"] == event.label
        if "value" in back:  # the binary summary layout carries stats instead
            assert close_enough(back["value"], event.value, 1e-3, 1e-6), (name, back, event)
        if "score" in back and event.kind != "summary":
            assert close_enough(back["score"], event.score, 0.0, 0.051), (name, back, event)


@pytest.mark.parametrize("name", registry.codecs.names())
def test_codec_refuses_garbage_with_a_decode_error(name: str) -> None:
    codec = registry.codecs.get(name)
    with pytest.raises(DecodeError):
        codec.decode(b"not an event")


# --------------------------------------------------------------------------------- backends

BUNDLES: list[Bundle] = list_bundles(shipped_models_dir())


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda b: b.name)
@pytest.mark.parametrize("precision", registry.PRECISIONS)
@pytest.mark.parametrize("backend", registry.backends.names())
def test_backend_agrees_with_the_self_test_vectors(backend: str, precision: str, bundle: Bundle
                                                   ) -> None:
    why = runtime_available(backend)
    if why:
        pytest.skip(why)
    try:
        be = make_backend(backend).load(verify_bundle(bundle.path), precision)
    except ModelError as err:
        if "no " in str(err) and " model in this bundle" in str(err):
            pytest.skip(str(err))
        raise
    vectors = bundle.card["self_test"]
    X = np.asarray(vectors["inputs"], dtype=np.float32)
    X_before = X.copy()
    key = f"{backend}_{precision}" if f"{backend}_{precision}" in vectors["outputs"] else precision
    if key not in vectors["outputs"]:
        pytest.skip(f"{bundle.name}: the card has no {precision} self-test vectors")
    want = np.asarray(vectors["outputs"][key], dtype=np.float32)
    got = be.predict_many(X)
    assert np.array_equal(X, X_before), "predict_many modified its input"
    assert got.dtype == np.float32 and got.shape == want.shape
    err = float(np.abs(got - want).max())
    assert err <= float(vectors["atol"][key]), f"{backend}/{precision}: max error {err:.3g}"
    info = be.info()
    assert info["precision"] == precision and info["backend"] == be.name
    one = be.predict_one(X[0])
    assert np.array_equal(X, X_before), "predict_one modified its input"
    # A row alone gets what it gets in a batch (found by this suite: a dynamic-quantized int8
    # ONNX did not; the export policy no longer ships one, tests/test_onnx_int8_rows.py).
    np.testing.assert_allclose(one, got[0], atol=float(vectors["atol"][key]))


# ---------------------------------------------------------------------------------- uplinks

def _events(n: int) -> list[Event]:
    return [Event("alarm", "tide", T0 + 60 * i, score=5.0, value=2.1 + i, sensor_id=3, seq=i)
            for i in range(n)]


@contextmanager
def built_uplink(scheme: str, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> Iterator[tuple[Any, Callable[[], list[str]]]]:
    """(sink, a function returning what arrived as text lines, or [] if not observable)."""
    factory = registry.uplinks.get(scheme)
    if scheme == "file":
        out = tmp_path / "events.jsonl"
        yield factory(f"file://{out}"), lambda: out.read_text().splitlines()
    elif scheme == "stdout":
        capsys = request.getfixturevalue("capsys")
        sink = factory("stdout://")
        yield sink, lambda: capsys.readouterr().out.splitlines()
    elif scheme == "mqtt":
        broker = request.getfixturevalue("mosquitto")
        sink = factory(f"{broker.url}?retry_min=1&retry_max=2&timeout=5", gateway="gw")
        assert sink.wait_connected(10), sink.last_error
        yield sink, lambda: []
    elif scheme == "mqtts":
        pytest.importorskip("cryptography", reason="cryptography not installed (extra 'sign')")
        from mqtt_broker import MOSQUITTO, Mosquitto
        from test_mqtt_uplink import _make_ca

        if MOSQUITTO is None:
            pytest.skip("mosquitto not installed: run scripts/install-sysdeps (make test does)")
        ca, cert, key = _make_ca(tmp_path, "good")
        broker = Mosquitto(tmp_path / "broker", users={"gw": "s3cret"}, tls=(ca, cert, key))
        broker.start()
        try:
            sink = factory(f"mqtts://gw:s3cret@{broker.host}:{broker.port}?ca={ca}"
                           f"&retry_min=1&retry_max=2&timeout=5", gateway="gw")
            assert sink.wait_connected(10), sink.last_error
            yield sink, lambda: []
        finally:
            broker.stop()
    elif scheme == "lorawan":
        from test_lorawan_uplink import FakeClock, make

        emu, sink = make("rak3172", FakeClock())
        try:
            yield sink, lambda: []
        finally:
            emu.stop()
    else:  # a plugin: try the generic form
        url = f"{scheme}://{tmp_path}/out"
        try:
            sink = factory(url, key="uplink[0].url", gateway="gw", state_dir=str(tmp_path))
        except (ConfigError, OSError) as err:
            pytest.skip(f"uplink {scheme!r} cannot be built with the generic URL {url!r} here: "
                        f"{err}")
        yield sink, lambda: []


@pytest.mark.parametrize("scheme", registry.uplinks.names())
def test_uplink_contract(scheme: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with built_uplink(scheme, tmp_path, request) as (sink, arrived):
        assert isinstance(sink, Sink), "not a frugalai.uplink.base.Sink"
        try:
            assert sink.send([]) == []
            batch = _events(3)
            given = list(batch)
            accepted = sink.send(batch)
            assert batch == given, "send modified the list it was given"
            assert isinstance(accepted, list)
            assert accepted == batch[:len(accepted)], "send must return an accepted prefix"
            lines = arrived()
            if lines:
                assert len(lines) == len(accepted)
        finally:
            sink.close()
        sink.close()  # twice: no error
    if hasattr(sink, "__enter__"):
        (tmp_path / "again").mkdir()
        with built_uplink(scheme, tmp_path / "again", request) as (again, _), again as inside:
            assert inside is again


# ---------------------------------------------------------------------------------- sources

def _check_source(src: Any, sensor: str, count: int, start: Callable[[], None] = lambda: None,
                  timeout: float = 15.0) -> list[Reading]:
    assert isinstance(src, Source), "not a frugalai.sources.base.Source"
    start()
    readings = collect(src, count, timeout=timeout)
    assert len(readings) >= count, f"{len(readings)} readings in {timeout} s: {src.stats}"
    assert all(isinstance(r, Reading) and r.sensor.startswith(sensor) for r in readings)
    assert src.stats.readings >= len(readings)
    declared = getattr(src, "quantities", None)
    if declared is not None:  # what config check trusts: no value outside the declaration
        assert all(set(r.values) <= set(declared) for r in readings), \
            sorted({k for r in readings for k in r.values} - set(declared))
    assert src.stats.last_reading_ts == readings[-1].ts or src.stats.readings > len(readings)
    # Stops when asked, even with data flowing.
    stop = threading.Event()
    stop.set()
    t0 = time.monotonic()
    assert list(src.readings(stop)) == []
    assert time.monotonic() - t0 < 5
    src.close()
    src.close()
    if hasattr(src, "__enter__"):
        with src as inside:
            assert inside is src
    return readings


def _serial_emulator(protocol: str) -> tuple[Any, str]:
    from frugalai.sim.household import HouseholdProfile

    if protocol == "tic":
        from frugalai.sim.tic_meter import TicMeterEmulator

        emu: Any = TicMeterEmulator(HouseholdProfile(seed=4), frame_period_s=0.0, mode="standard")
        return emu, "protocol=tic&mode=standard"
    if protocol == "fb":
        from frugalai.sim.fb_node import FbNodeEmulator

        return FbNodeEmulator(3, "energy", period_s=0.05), "protocol=fb"
    if protocol == "modbus":
        from frugalai.sim.modbus_meter import ModbusMeterEmulator

        return (ModbusMeterEmulator(HouseholdProfile(seed=2)),
                "protocol=modbus&interval=0.1&timeout=0.2&retries=1")
    pytest.skip(f"serial protocol {protocol!r}: no emulator for it in this suite (a plugin's "
                f"device cannot be known here)")


@pytest.mark.parametrize("protocol", registry.protocols.names())
def test_serial_protocol_over_a_pty(protocol: str) -> None:
    emu, query = _serial_emulator(protocol)
    with emu:
        src = open_source(f"serial://{emu.path}?{query}", sensor="dev")
        _check_source(src, "dev", 2, start=emu.start)
    assert src.stats.frames_ok >= 2 and src.stats.bytes_read > 0


def _source_case(scheme: str, tmp_path: Path, request: pytest.FixtureRequest
                 ) -> Iterator[tuple[Any, Callable[[], None]]]:
    if scheme == "replay":
        csv = tmp_path / "r.csv"
        csv.write_text("timestamp,value\n" + "".join(f"{T0 + 900 * i},{i}.5\n" for i in range(5)))
        yield open_source(f"replay://{csv}?speed=max", sensor="dev"), lambda: None
    elif scheme == "serial":
        emu, query = _serial_emulator("tic")
        with emu:
            yield open_source(f"serial://{emu.path}?{query}", sensor="dev"), emu.start
    elif scheme == "lora":
        from test_lora_p2p import feed_when_listening

        from frugalai.protocols.frames import Packet, encode_packet
        from frugalai.sim.lora_modem import Rak3172Emulator

        packets = [encode_packet(Packet(7, i, (("water_level_m", 1.0 + i / 10),)))
                   for i in range(1, 4)]
        with Rak3172Emulator() as emu:
            src = open_source(f"lora://{emu.path}?modem=rak3172&decoder=fb", sensor="dev")
            yield src, lambda: feed_when_listening(emu, *packets)
    elif scheme == "chirpstack":
        from test_chirpstack import APP, DEV, Publisher, uplink

        from frugalai.protocols.frames import Packet, encode_packet

        broker = request.getfixturevalue("mosquitto")
        src = open_source(f"chirpstack://{broker.host}:{broker.port}?application={APP}"
                          f"&dev_eui={DEV}&decoder=fb", sensor="dev")
        pub = Publisher(broker.host, broker.port)

        def publish() -> None:
            def later() -> None:
                assert src.subscribed.wait(10)
                for i in range(1, 4):
                    pub.up(uplink(i, encode_packet(Packet(7, i, (("water_level_m", 1.0),)))))
            threading.Thread(target=later, daemon=True).start()

        try:
            yield src, publish
        finally:
            pub.close()
    else:
        pytest.skip(f"source {scheme!r}: needs a device this suite cannot know (a plugin "
                    f"source is exercised by its own package's tests)")


@pytest.mark.parametrize("scheme", registry.sources.names())
def test_source_contract(scheme: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    cases = _source_case(scheme, tmp_path, request)
    src, start = next(cases)
    try:
        _check_source(src, "dev", 2 if scheme != "replay" else 5, start=start)
    finally:
        src.close()
        cases.close()


def test_replay_source_payload_is_what_the_file_says(tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    cases = _source_case("replay", tmp_path, request)
    src, _ = next(cases)
    readings = collect(src, 5)
    assert [r.ts for r in readings] == [T0 + 900 * i for i in range(5)]
    assert [next(iter(r.values.values())) for r in readings] == [i + 0.5 for i in range(5)]
    cases.close()


# ----------------------------------------------------------------------------------- meters

@pytest.mark.parametrize("name", registry.meters.names())
def test_meter_contract(name: str) -> None:
    try:
        meter = open_meter(name)
    except (MeterError, ConfigError, OSError) as err:
        pytest.skip(f"meter {name!r} cannot open here: {err}")
    try:
        first = meter.read()
    except MeterError as err:
        meter.close()
        pytest.skip(f"meter {name!r} cannot read here: {err}")
    sum(i * i for i in range(200_000))  # a little work between two readings
    second = meter.read()
    assert second >= first >= 0.0
    info = meter.describe()
    assert {"meter", "estimated", "scope", "rel_uncertainty"} <= set(info)
    meter.close()
    meter.close()
    with open_meter(name) as again:
        assert again.read() >= 0.0


def test_the_suites_read_the_registries() -> None:
    """A name registered at run time is what the next collection would parametrize over; the
    protocol checks can fail."""
    assert not isinstance(object(), Source) and not isinstance(object(), Sink)
    registry.codecs.register("conformance-probe", registry.codecs.get("json"))
    try:
        assert "conformance-probe" in registry.codecs.names()
    finally:
        registry.codecs._entries.pop("conformance-probe")
