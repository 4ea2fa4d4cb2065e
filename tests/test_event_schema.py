"""The JSON event schema (frugalai.events.schema): what the gateway encodes is what the centre
accepts, and each of issue 24's hostile values is refused with the key named.

The same payloads go through a real collector and a real Mosquitto in
tests/test_collector_quarantine.py; this file checks the pure function on its own.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from frugalai.errors import DecodeError
from frugalai.events import schema
from frugalai.events.codec import decode_json, encode_json
from frugalai.events.event import Event, Stats

GOOD: dict[str, Any] = {"v": 1, "kind": "alarm", "sensor": "linky", "ts": 1_700_000_000.0,
                        "score": 5.0, "value": 2310.0, "label": 0, "sensor_id": 1,
                        "model_id": 0, "seq": 7, "id": "linky:7"}


def with_(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def test_what_the_gateway_encodes_the_centre_parses_back() -> None:
    events = [Event("alarm", "linky", 1.7e9, score=6.25, value=2310.0, sensor_id=1, seq=7),
              Event("class", "tide", 1.7e9, label=3, seq=0),
              Event("heartbeat", "x", 0.0, seq=2**63 - 1),
              Event("summary", "linky", 1.7e9, seq=9,
                    stats=Stats(period_s=900, readings=10, windows=1, min=1.0, mean=2.0,
                                max=3.0, implausible=2, lost=1))]
    for ev in events:
        back = decode_json(encode_json(ev))
        assert (back.kind, back.sensor, back.ts, back.seq, back.label, back.stats) == \
            (ev.kind, ev.sensor, ev.ts, ev.seq, ev.label, ev.stats)
        assert (math.isnan(back.value) and math.isnan(ev.value)) or back.value == ev.value


# issue 24's findings, then the rest of the schema, each with the key the reason must name
@pytest.mark.parametrize("payload,words", [
    (with_(seq=2**70), "seq: must be an integer"),
    (with_(stats=5), "stats: must be an object or null"),
    (with_(label={"a": 1}), "label: must be an integer"),
    (with_(ts=1e308), "ts: must be a finite number from 0"),
    (with_(ts=-1e308), "ts: must be a finite number from 0"),
    (with_(value=float("nan")), "not valid JSON: NaN is not a JSON number"),
    (with_(score=float("inf")), "not valid JSON: Infinity"),
    (with_(value=None, score=None).replace(b'"value": null', b'"value": 1e999'),
     "value: must be a finite number"),
    (with_(value=10**400), "value: must be a finite number"),
    (with_(seq=True), "seq: must be an integer"),
    (with_(seq=1.0), "seq: must be an integer"),
    (with_(sensor_id=256), "sensor_id: must be an integer from 0 to 255"),
    (with_(model_id=8), "model_id: must be an integer from 0 to 7"),
    (with_(label=-1), "label: must be an integer from 0 to 65535"),
    (with_(kind="boom"), "kind: must be one of"),
    (with_(sensor="a/b"), "sensor: must be a name"),
    (with_(sensor="x" * 65), "sensor: must be a name"),
    (with_(sensor="gw\n"), "sensor: must be a name"),
    (with_(id="linky:8"), "id: must be '<sensor>:<seq>'"),
    (with_(v=2), "v: must be an integer from 1 to 1"),
    (with_(gateway="gw2"), "unknown key(s) ['gateway']"),
    (with_(stats={"readings": 2**64}), "stats.readings: must be an integer"),
    (with_(stats={"mean": "1"}), "stats.mean: must be a finite number or null"),
    (with_(stats={"bogus": 1}), "stats: unknown key(s)"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "seq"}).encode(), "missing key(s) seq"),
    (b'{"v":1,"v":1,"kind":"alarm","sensor":"s","ts":1,"seq":1}', "key 'v' twice"),
    (b"[" * 10 + b"]" * 10, "must be a JSON object"),
    (b"[" * 2000 + b"]" * 2000, "nested too deep"),
    (b'{"a":' * 600 + b"1" + b"}" * 600, "unknown key(s) ['a']"),
    (b"\xff\xfe{}", "not UTF-8"),
    (with_(sensor="s" * 10, id="ssssssssss:7"), None),  # control: a valid one
    (b"{" + b" " * 5000 + b"}", "payload of 5002 bytes"),
    (b'{"v":1,"seq":' + b"9" * 5000 + b"}", "payload of"),
])
def test_hostile_values_are_refused_naming_the_key(payload: bytes, words: Any) -> None:
    if words is None:
        assert schema.parse(payload).sensor == "s" * 10
        return
    with pytest.raises(schema.SchemaError) as err:
        schema.parse(payload)
    assert words in str(err.value)
    assert isinstance(err.value, DecodeError) and "\n" not in str(err.value)


def test_deep_nesting_is_a_schema_error_not_a_recursion_error() -> None:
    with pytest.raises(schema.SchemaError, match="nested too deep|JSON object"):
        schema.parse(b'{"stats":' + b"[" * 2040 + b"]" * 2040 + b"}")


def test_the_encoder_refuses_what_the_centre_would_quarantine() -> None:
    with pytest.raises(ValueError, match="ts: must be a finite number"):
        encode_json(Event("alarm", "linky", 1e308, seq=1))
    with pytest.raises(ValueError, match="value: must be a finite number"):
        encode_json(Event("alarm", "linky", 1.7e9, value=math.inf, seq=1))
    with pytest.raises(ValueError, match="stats.readings"):
        encode_json(Event("summary", "linky", 1.7e9, seq=1, stats=Stats(readings=2**64)))


def test_the_doctests() -> None:
    import doctest

    result = doctest.testmod(schema)
    assert result.attempted > 0 and result.failed == 0


def test_the_config_bounds_flow_names_as_the_schema_bounds_sensor_names() -> None:
    from frugalai.config import loads_config
    from frugalai.errors import ConfigError

    def cfg(name: str) -> None:
        loads_config({"flow": [{"name": name, "source": "serial:///dev/ttyUSB0?protocol=tic"}]})

    cfg("s" * schema.MAX_NAME)
    encode_json(Event("alarm", "s" * schema.MAX_NAME, 1.7e9, seq=1))
    with pytest.raises(ConfigError, match=r"flow\[0\].name: must be at most 64"):
        cfg("s" * (schema.MAX_NAME + 1))


def test_a_reason_never_fails_on_the_value_it_shows() -> None:
    data = json.loads(with_())
    data["seq"] = 10**5000  # past Python's 4,300-digit str() limit
    with pytest.raises(schema.SchemaError, match="seq: must be an integer .* got an integer "
                       "of 16610 bits"):
        schema.check(data)
