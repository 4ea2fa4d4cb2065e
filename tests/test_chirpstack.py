"""The ChirpStack v4 MQTT feed through a real Mosquitto: uplinks -> Readings, losses counted."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest
from lora_helpers import lpp_temperature_humidity, wait_for

from frugalai import registry
from frugalai.errors import ConfigError, DecodeError
from frugalai.protocols.chirpstack import parse_uplink
from frugalai.reading import Reading
from frugalai.sources.chirpstack import ChirpStackSource

APP = "7c1a5b0e-2f4b-4c0e-9a37-0d6b1f3e2a11"
DEV = "0102030405060708"
OTHER = "a84041000181c061"


def uplink(f_cnt: int, data: bytes, dev: str = DEV, rssi: int = -36, snr: float = 10.5,
           f_port: int = 1) -> dict[str, Any]:
    """An UplinkEvent in ChirpStack's protobuf JSON mapping (docs example, trimmed)."""
    return {"deduplicationId": f"3ac7e3c4-{f_cnt:04d}", "time": "2026-01-05T10:00:00Z",
            "deviceInfo": {"tenantId": "52f14cd4", "applicationId": APP,
                           "applicationName": "coast", "deviceName": "tide-1", "devEui": dev},
            "devAddr": "00189440", "adr": True, "dr": 5, "fCnt": f_cnt, "fPort": f_port,
            "confirmed": False, "data": base64.b64encode(data).decode(),
            "rxInfo": [{"gatewayId": "0016c001f153a14c", "rssi": rssi - 20, "snr": snr - 5},
                       {"gatewayId": "0016c001f153a14d", "rssi": rssi, "snr": snr}],
            "txInfo": {"frequency": 868100000,
                       "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7}}}}


class Publisher:
    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="chirpstack-sim")
        self.client.connect(host, port)
        self.client.loop_start()

    def up(self, doc: Any, dev: str = DEV) -> None:
        raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        info = self.client.publish(f"application/{APP}/device/{dev}/event/up", raw, qos=1)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_source(src: ChirpStackSource, out: list[Reading]) -> threading.Event:
    stop = threading.Event()
    threading.Thread(target=lambda: out.extend(src.readings(stop)), daemon=True).start()
    assert src.subscribed.wait(10), "no subscription"
    return stop


def test_uplinks_become_readings_and_gaps_duplicates_unknowns_are_counted(
        mosquitto: Any) -> None:
    src = ChirpStackSource(mosquitto.host, mosquitto.port, sensor="tide-1", dev_eui=DEV,
                           decoder=lpp_temperature_humidity, application=APP)
    out: list[Reading] = []
    stop = run_source(src, out)
    pub = Publisher(mosquitto.host, mosquitto.port)
    try:
        pub.up(uplink(10, bytes.fromhex("03670110056700FF")))
        pub.up(uplink(11, bytes.fromhex("0367011002686C"), rssi=-80, snr=-2.0))
        pub.up(uplink(11, bytes.fromhex("0367011002686C")))          # duplicate fCnt
        pub.up(uplink(14, bytes.fromhex("0567FFD1")))                 # 12, 13 lost
        pub.up(uplink(15, bytes.fromhex("0567FFD1"), dev=OTHER), dev=OTHER)   # unknown device
        pub.up(b"{not json")
        pub.up({**uplink(15, b""), "data": "qg=!"})                   # bad base64
        pub.up(uplink(16, bytes.fromhex("036701")))                   # payload of the wrong size
        pub.up(uplink(0, bytes.fromhex("0167FFD7")))                  # rejoined: fCnt restarts
        assert wait_for(lambda: src.stats.bytes_read > 0 and len(out) >= 4
                        and src.stats.frames_bad >= 3, 10)
    finally:
        stop.set()
        pub.close()
        src.close()
    assert [r.values.get("temperature_c_3", r.values.get("temperature_c_5",
             r.values.get("temperature_c_1"))) for r in out] == [27.2, 27.2, -4.7, -4.1]
    assert out[0].values["rssi_dbm"] == -36 and out[0].values["snr_db"] == 10.5  # best gateway
    assert out[1].values["rssi_dbm"] == -80 and out[1].values["humidity_pct_2"] == 54.0
    assert out[2].values["f_cnt"] == 14 and out[0].meta["dev_eui"] == DEV
    s = src.stats
    # lost: 12 and 13 never came, 15 came unreadable (also counted in frames_bad)
    assert (s.lost_uplinks, s.duplicates, s.unknown_devices, s.fcnt_resets) == (3, 1, 1, 1)
    assert s.frames_bad == 3 and s.readings == 4


def test_broker_outage_is_survived(mosquitto: Any) -> None:
    src = ChirpStackSource(mosquitto.host, mosquitto.port, sensor="tide-1", dev_eui=DEV,
                           decoder=lpp_temperature_humidity)
    out: list[Reading] = []
    stop = run_source(src, out)
    try:
        mosquitto.restart()
        assert wait_for(lambda: src.stats.outages == 1, 10)
        assert src.subscribed.wait(15), "did not resubscribe after the outage"
        pub = Publisher(mosquitto.host, mosquitto.port)
        pub.up(uplink(1, bytes.fromhex("0567FFD1")))
        assert wait_for(lambda: len(out) == 1, 10)
        pub.close()
    finally:
        stop.set()
        src.close()
    assert src.stats.reconnects == 1


def test_parse_uplink_defaults_and_errors() -> None:
    # the docs example leaves fCnt out: protobuf default 0; devEui from the topic
    u = parse_uplink(b'{"dr":1,"fPort":1,"data":"qg==","rxInfo":[{"rssi":-36,"snr":10.5}]}',
                     f"application/{APP}/device/{DEV.upper()}/event/up")
    assert (u.dev_eui, u.application_id, u.f_cnt, u.data) == (DEV, APP, 0, b"\xaa")
    assert parse_uplink(b'{"devEui":"x","fCnt":"4294967295"}', "application/a/device/"
                        + DEV + "/event/up").f_cnt == 4294967295
    for bad in (b"[]", b'{"data": 5}', b'{"fCnt": 1.5}', b'{"deviceInfo": 3}', b"\xff"):
        with pytest.raises(DecodeError):
            parse_uplink(bad, f"application/{APP}/device/{DEV}/event/up")
    with pytest.raises(DecodeError, match="devEui"):
        parse_uplink(b'{"data": "qg=="}', "some/other/topic")


def test_url_grammar(monkeypatch: pytest.MonkeyPatch) -> None:
    registry.decoders.register("test-lpp", lpp_temperature_humidity)
    monkeypatch.setenv("CS_PASS", "s3cret")
    factory = registry.sources.get("chirpstack")
    src = factory(f"chirpstack://127.0.0.1:1884?application={APP}&dev_eui={DEV.upper()}"
                  "&decoder=test-lpp&username=gw&password_env=CS_PASS&fport=2", sensor="t")
    assert (src.port, src.dev_eui, src.password, src.fport) == (1884, DEV, "s3cret", 2)
    assert src.topic == f"application/{APP}/device/+/event/up"
    bad = {
        f"chirpstack://h?dev_eui={DEV}&decoder=test-lpp&password=x": "unknown option",
        "chirpstack://h?decoder=test-lpp": "'dev_eui' is required",
        "chirpstack://h?dev_eui=0102&decoder=test-lpp": "16 hex digits",
        f"chirpstack://h?dev_eui={DEV}&decoder=nope": "unknown decoder",
        f"chirpstack://h?dev_eui={DEV}&decoder=test-lpp&password_env=NOPE_X": "not set",
        f"chirpstack://h:port?dev_eui={DEV}&decoder=test-lpp": "bad option",
    }
    for url, message in bad.items():
        with pytest.raises(ConfigError, match=message) as info:
            factory(url, sensor="t", key="flow[1].source")
        assert info.value.key == "flow[1].source"


def test_real_lpp_decoder_on_the_docs_vectors() -> None:
    src = registry.sources.get("chirpstack")(
        f"chirpstack://127.0.0.1?dev_eui={DEV}&decoder=lpp", sensor="quai")
    topic = f"application/{APP}/device/{DEV}/event/up"
    raw = json.dumps({**uplink(1, b""), "data": "AYgILMMBiIMAAAACAAY="}).encode()
    reading = src.handle(topic, raw)
    assert reading is not None
    assert (reading.values["gps_lat_1"], reading.values["gps_lon_1"]) == (53.5747, 10.0483)
    assert reading.values["digital_in_2"] == 6 and reading.values["rssi_dbm"] == -36
    assert src.handle(topic, json.dumps(uplink(2, b"\x03\x67\x01")).encode()) is None
    assert src.stats.frames_bad == 1
