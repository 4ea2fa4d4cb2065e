"""The schema of an event as JSON: what the gateway encodes and the centre accepts. Pure.

One schema, used on both sides: :func:`frugalai.events.codec.encode_json` checks what it is
about to send with :func:`check` (a gateway never sends what the centre would refuse), and the
collector parses what it receives with :func:`parse` before anything is stored. A value is
accepted because it is in range, never because it parsed: Python's ``json`` takes ``NaN``,
``1e999`` (infinity), integers of any size and any nesting, and a value that SQLite or the
rest of the chain cannot hold (``"seq": 2**70``, ``"stats": 5``, ``"label": {"a": 1}``) must
be turned away with a reason, not raise somewhere further down.

The rules (``docs/event-format.md`` describes the fields):

=========  ========================================================================
key        accepted
=========  ========================================================================
v          the integer 1 (required)
kind       one of :data:`~frugalai.events.event.KINDS` (required)
sensor     a string of 1 to :data:`MAX_NAME` characters, no control characters, no
           ``/``, ``+`` or ``#`` (required)
ts         a finite number, 0 to :data:`TS_MAX` (the binary form's horizon, 2156)
           (required)
seq        an integer, -1 (not yet stored) to 2**63 - 1 (required)
score      a finite number or null
value      a finite number or null
label      an integer 0 to 65535
sensor_id  an integer 0 to 255 (the binary form's byte)
model_id   an integer 0 to 7 (the binary form's 3 bits)
id         ``"<sensor>:<seq>"`` of this very event
stats      null, or an object of :class:`~frugalai.events.event.Stats` fields: counters
           integers 0 to 2**63 - 1, min/mean/max/max_score finite numbers or null
=========  ========================================================================

No other key, no key twice, booleans are not numbers, and the whole payload is at most
:data:`MAX_PAYLOAD` bytes of UTF-8.

>>> ev = parse(b'{"v":1,"kind":"alarm","sensor":"linky","ts":1.7e9,"seq":3,"score":5.0}')
>>> ev.kind, ev.seq, ev.score
('alarm', 3, 5.0)
>>> try:
...     parse(b'{"v":1,"kind":"alarm","sensor":"linky","ts":1.7e9,"seq":1180591620717411303424}')
... except SchemaError as err:
...     print(err)
seq: must be an integer from -1 to 9223372036854775807, got 1180591620717411303424
"""

from __future__ import annotations

import json
import math
import sys
import unicodedata
from dataclasses import fields
from functools import lru_cache
from typing import Any, Callable, Optional

from frugalai.errors import DecodeError
from frugalai.events.event import KINDS, Event, Stats

VERSION = 1
#: The largest JSON event accepted, in bytes (a full summary is about 400).
MAX_PAYLOAD = 4096
#: The longest sensor name (a topic level).
MAX_NAME = 64
#: The latest time an event may carry: the binary form's u32 seconds since 2020-01-01.
TS_MAX = 1_577_836_800 + 0xFFFFFFFF
#: SQLite's INTEGER (signed 64 bits): the largest sequence number and counter.
INT_MAX = 2**63 - 1
#: The largest finite float: an integer beyond it would overflow ``float()``.
FLOAT_MAX = sys.float_info.max
#: The largest class index.
LABEL_MAX = 0xFFFF

_STATS_FLOATS = ("min", "mean", "max", "max_score")
_STATS_COUNTS = tuple(f.name for f in fields(Stats) if f.name not in _STATS_FLOATS)
_NOT_NAME = set("/+#")


class SchemaError(DecodeError):
    """A JSON event that is not in the schema; the message names the key and the reason."""


def _preview(value: Any) -> str:
    """A short repr for a reason; never raises (an integer past Python's 4,300-digit str
    limit, a nesting as deep as the parser allowed)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(key: str, expected: str, value: Any) -> SchemaError:
    return SchemaError(f"{key}: must be {expected}, got {_preview(value)}")


def _int(key: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(key, f"an integer from {lo} to {hi}", value)
    return int(value)


def _number(key: str, value: Any, lo: float = -FLOAT_MAX, hi: float = FLOAT_MAX,
            nullable: bool = False) -> Optional[float]:
    if value is None and nullable:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    # compare before float(): an integer of 400 digits would overflow the conversion
    if ok and isinstance(value, float):
        ok = math.isfinite(value)
    if ok:
        ok = lo <= value <= hi
    if not ok:
        span = "a finite number" if lo == -FLOAT_MAX else f"a finite number from {lo:g} to {hi:g}"
        raise _fail(key, span + (" or null" if nullable else ""), value)
    return float(value)


@lru_cache(maxsize=4096)
def _good_name(value: str) -> bool:
    """A sensor name is judged once (names are few and come back with every event)."""
    return 1 <= len(value) <= MAX_NAME \
        and not any(c in _NOT_NAME or unicodedata.category(c)[0] == "C" for c in value)


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not _good_name(value):
        raise _fail(key, f"a name of 1 to {MAX_NAME} characters without control characters, "
                    f"'/', '+' or '#'", value)
    return value


def _stats(value: Any) -> Optional[Stats]:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail("stats", "an object or null", value)
    unknown = sorted(set(value) - set(_STATS_COUNTS) - set(_STATS_FLOATS) - {"saturated"})
    if unknown:
        raise SchemaError(f"stats: unknown key(s) {_preview(unknown)[:80]}")
    sat = value.get("saturated", [])
    # the binary summary's flags (frugalai.events.codec): which 16-bit counters hit 65,535
    if not isinstance(sat, list) or len(sat) > len(_STATS_COUNTS) \
            or any(s not in _STATS_COUNTS for s in sat):
        raise _fail("stats.saturated", "a list of counter names", sat)
    out: dict[str, Any] = {}
    for name in _STATS_COUNTS:
        if name in value:
            out[name] = _int(f"stats.{name}", value[name], 0, INT_MAX)
    for name in _STATS_FLOATS:
        if name in value:
            x = _number(f"stats.{name}", value[name], nullable=True)
            out[name] = math.nan if x is None else x
    return Stats(**out)


def _kind(value: Any) -> str:
    if not isinstance(value, str) or value not in KINDS:
        raise _fail("kind", f"one of {', '.join(sorted(KINDS))}", value)
    return value


_REQUIRED = ("v", "kind", "sensor", "ts", "seq")
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "v": lambda x: _int("v", x, VERSION, VERSION),
    "kind": _kind,
    "sensor": lambda x: _name("sensor", x),
    "ts": lambda x: _number("ts", x, 0, TS_MAX),
    "seq": lambda x: _int("seq", x, -1, INT_MAX),
    "score": lambda x: _number("score", x, nullable=True),
    "value": lambda x: _number("value", x, nullable=True),
    "label": lambda x: _int("label", x, 0, LABEL_MAX),
    "sensor_id": lambda x: _int("sensor_id", x, 0, 255),
    "model_id": lambda x: _int("model_id", x, 0, 7),
    "id": lambda x: x,  # checked against sensor and seq below
    "stats": _stats,
}
#: Every key a JSON event may carry.
KEYS = tuple(_CHECKS)




def check(data: Any) -> Event:
    """The :class:`Event` of one decoded JSON object; :class:`SchemaError` naming the first key
    out of the schema."""
    if not isinstance(data, dict):
        raise _fail("event", "a JSON object", data)
    unknown = [k for k in data if k not in _CHECKS]
    if unknown:
        raise SchemaError(f"unknown key(s) {_preview(sorted(map(str, unknown)))}; known: "
                          f"{', '.join(KEYS)}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise SchemaError(f"missing key(s) {', '.join(missing)}")
    got = {k: _CHECKS[k](v) for k, v in data.items()}
    if "id" in got and got["id"] != f"{got['sensor']}:{got['seq']}":
        raise _fail("id", f"'<sensor>:<seq>' = {got['sensor']}:{got['seq']!r}", data["id"])
    return Event(kind=got["kind"], sensor=got["sensor"], ts=got["ts"],
                 score=math.nan if got.get("score") is None else got["score"],
                 value=math.nan if got.get("value") is None else got["value"],
                 label=got.get("label", 0), sensor_id=got.get("sensor_id", 0),
                 model_id=got.get("model_id", 0), seq=got["seq"], stats=got.get("stats"))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"key {k!r} twice")
        out[k] = v
    return out


def loads(raw: bytes) -> Any:
    """The JSON value of a payload, bounded: size, UTF-8, no NaN/Infinity, no key twice, no
    nesting deep enough to exhaust the stack; :class:`SchemaError` otherwise."""
    if len(raw) > MAX_PAYLOAD:
        raise SchemaError(f"payload of {len(raw)} bytes (a JSON event is at most "
                          f"{MAX_PAYLOAD})")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_no_constant,
                          object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as err:
        raise SchemaError(f"not UTF-8: {err.reason} at byte {err.start}") from None
    except RecursionError:
        raise SchemaError("JSON nested too deep") from None
    except ValueError as err:  # JSONDecodeError, the hooks, an integer of > 4300 digits
        raise SchemaError(f"not valid JSON: {str(err)[:120]}") from None


def parse(raw: bytes) -> Event:
    """The :class:`Event` of one JSON payload, checked whole; :class:`SchemaError` otherwise."""
    return check(loads(raw))


__all__ = ["INT_MAX", "KEYS", "MAX_NAME", "MAX_PAYLOAD", "TS_MAX", "SchemaError", "check",
           "loads", "parse"]
