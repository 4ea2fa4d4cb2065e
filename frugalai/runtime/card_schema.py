"""The one schema of a bundle's ``card.json``: every field's type, range, characters, length.

A card comes from outside as often as from ``frugalai train``: a bundle downloaded, copied
from a USB stick, sent by a fleet. Its text reaches logs, reports, the flow plan and, through
the ``native`` backend, a C compiler. So a card is checked here, whole, before any of its
fields is used — by :func:`frugalai.runtime.bundle.verify_bundle` (every command, every load
path, signed or not) and by :func:`frugalai.runtime.bundle.write_card` (what training writes
is held to the same schema, so every card ``frugalai train`` writes passes).

Three kinds of values:

* **typed fields**, the ones code reads (``name``, ``task``, ``files``, ``artifacts``,
  ``features.params``, ``policy``, ``decision.thresholds``, ``self_test``...): each with a
  type and a range; names and identifiers match a fixed pattern (ASCII letters, digits and
  ``._-``, bounded length), so no quote, space, ``/``, comment closer or newline can be in
  one;
* **prose** (``description``, ``baseline``, ``features.input``...): at most
  :data:`MAX_TEXT` characters, no control or format characters (newline, NUL, bidi
  overrides...), no ``/*`` or ``*/``; never written into generated code;
* **documentation** (``metrics``, ``data``, ``targets``, ``int8``...): any JSON tree of bounded
  depth and size whose strings are prose, whose keys are short prose, whose numbers are
  finite and whose integers fit in 53 bits.

An unknown top-level key is refused (a typo would otherwise be ignored silently). A violation
is a :class:`~frugalai.errors.CardError` of one line naming the field (``features.params.clip``)
and the problem; the CLI exits 2 with it.

>>> check_card({"name": "energy-anomaly", "files": {"w.npz": {"sha256": "0" * 64, "bytes": 1}}})
>>> check_card({"name": "x */ y", "files": {}})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
frugalai.errors.CardError: card field 'name': must be 1-64 of A-Z a-z 0-9 . _ - ..., got 'x */ y'
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from frugalai.errors import CardError
from frugalai.registry import PRECISIONS

#: a card file larger than this is refused before parsing (the shipped ones are < 32 KB).
MAX_CARD_BYTES = 4 << 20
#: longest prose string (a description, a rule, a command line).
MAX_TEXT = 4096
#: longest key of a documentation object.
MAX_KEY = 200
#: deepest nesting of a documentation tree.
MAX_DEPTH = 8
#: most items in one list or object of a card.
MAX_ITEMS = 100_000
#: integers beyond this lose precision as floats (and in JSON readers of other languages).
MAX_INT = 2 ** 53

TASKS = ("anomaly", "classification")


def _where(path: str) -> str:
    return f"card field {path!r}" if path else "card"


def _fail(path: str, problem: str) -> CardError:
    return CardError(f"{_where(path)}: {problem}", field=path)


def _shown(value: Any) -> str:
    """A value as a message may show it: short, one line, no control characters."""
    if isinstance(value, str):
        text = value[:60] + ("..." if len(value) > 60 else "")
        return repr(text)
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    return repr(value)[:60]


def _number(value: float) -> str:
    """A number as a message shows it: an integer of hundreds of digits by its size."""
    if isinstance(value, int) and abs(value) >= 10 ** 15:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)[:40]


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an object" if isinstance(value, dict) else "an array"


class Field:
    """One node of the schema: ``check(value, path)`` returns the value or raises."""

    def check(self, value: Any, path: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class Pattern(Field):
    """A string matching ``regex`` in full (names, identifiers, hashes, versions)."""

    def __init__(self, regex: str, what: str) -> None:
        self.regex = re.compile(regex)
        self.what = what

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise _fail(path, f"must be a string ({self.what}), got {_kind(value)}")
        if not self.regex.fullmatch(value):
            raise _fail(path, f"must be {self.what}, got {_shown(value)}")


class Enum(Field):
    def __init__(self, *values: str) -> None:
        self.values = values

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or value not in self.values:
            raise _fail(path, f"must be one of {', '.join(self.values)}, got {_shown(value)}")


class Text(Field):
    """Prose: bounded, printable, no comment delimiters."""

    def __init__(self, max_len: int = MAX_TEXT) -> None:
        self.max_len = max_len

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str):
            raise _fail(path, f"must be a string, got {_kind(value)}")
        check_text(value, path, self.max_len)


def check_text(value: str, path: str, max_len: int = MAX_TEXT) -> None:
    """Prose rules: at most ``max_len`` characters, no control/format/separator characters
    (newline, NUL, bidi overrides, U+2028), no ``/*`` or ``*/``."""
    if len(value) > max_len:
        raise _fail(path, f"is {len(value)} characters long, at most {max_len} allowed")
    for ch in value:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            raise _fail(path, f"contains the control character U+{ord(ch):04X} "
                              "(text must be one printable line)")
    if "*/" in value or "/*" in value:
        raise _fail(path, "contains a comment delimiter ('/*' or '*/')")


class Number(Field):
    """A finite number in [lo, hi]; ``integer`` refuses a fraction (2.0 is not an int)."""

    def __init__(self, lo: float, hi: float, integer: bool = False) -> None:
        self.lo, self.hi, self.integer = lo, hi, integer

    def check(self, value: Any, path: str) -> None:
        what = "an integer" if self.integer else "a number"
        ok_type = isinstance(value, int) if self.integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            raise _fail(path, f"must be {what} in [{self.lo:g}, {self.hi:g}], got "
                              f"{_kind(value) if not isinstance(value, float) else _shown(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _fail(path, f"must be a finite number, got {value!r}")
        if not self.lo <= value <= self.hi:
            raise _fail(path, f"must be in [{self.lo:g}, {self.hi:g}], got {_number(value)}")


def Int(lo: float, hi: float) -> Number:
    return Number(lo, hi, integer=True)


class Bool(Field):
    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, bool):
            raise _fail(path, f"must be true or false, got {_kind(value)}")


class Nullable(Field):
    def __init__(self, inner: Field) -> None:
        self.inner = inner

    def check(self, value: Any, path: str) -> None:
        if value is not None:
            self.inner.check(value, path)


class Array(Field):
    def __init__(self, item: Field, min_items: int = 0, max_items: int = MAX_ITEMS) -> None:
        self.item, self.min_items, self.max_items = item, min_items, max_items

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list):
            raise _fail(path, f"must be an array, got {_kind(value)}")
        if not self.min_items <= len(value) <= self.max_items:
            raise _fail(path, f"must have {self.min_items} to {self.max_items} items, got "
                              f"{len(value)}")
        for i, v in enumerate(value):
            self.item.check(v, f"{path}[{i}]")


class Obj(Field):
    """A JSON object with known keys (``required`` ones must be there); other keys are
    refused unless ``extra`` says how to check them (keys then must be ``extra_key``)."""

    def __init__(self, fields: Mapping[str, Field], required: Sequence[str] = (),
                 extra: Optional[Field] = None, extra_key: Optional[Field] = None) -> None:
        self.fields = dict(fields)
        self.required = tuple(required)
        self.extra = extra
        self.extra_key = extra_key or Text(MAX_KEY)

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _fail(path, f"must be an object, got {_kind(value)}")
        if len(value) > MAX_ITEMS:
            raise _fail(path, f"has {len(value)} keys, at most {MAX_ITEMS} allowed")
        for key in self.required:
            if key not in value:
                raise _fail(_join(path, key), "is missing")
        for key, v in value.items():
            sub = _join(path, key)
            spec = self.fields.get(key)
            if spec is None:
                if self.extra is None:
                    known = ", ".join(sorted(self.fields))
                    check_text(key, path, MAX_KEY)
                    raise _fail(sub, f"unknown key (known here: {known})")
                self.extra_key.check(key, f"{sub} (key)")
                spec = self.extra
            spec.check(v, sub)


def _join(path: str, key: str) -> str:
    shown = key if len(key) <= 60 else key[:60] + "..."
    return f"{path}.{shown}" if path else shown


class Map(Obj):
    """An object whose keys all match ``key`` and whose values all match ``value``."""

    def __init__(self, key: Field, value: Field, min_items: int = 0,
                 max_items: int = MAX_ITEMS) -> None:
        super().__init__({}, extra=value, extra_key=key)
        self.min_items, self.max_items = min_items, max_items

    def check(self, value: Any, path: str) -> None:
        if isinstance(value, dict) and not self.min_items <= len(value) <= self.max_items:
            raise _fail(path, f"must have {self.min_items} to {self.max_items} entries, got "
                              f"{len(value)}")
        super().check(value, path)


class Doc(Field):
    """Documentation: any JSON tree of bounded depth whose strings are prose, numbers finite
    and integers within 53 bits. Read by people and reports, never by code that acts on it."""

    def __init__(self, depth: int = MAX_DEPTH) -> None:
        self.depth = depth

    def check(self, value: Any, path: str) -> None:
        self._check(value, path, self.depth)

    def _check(self, value: Any, path: str, depth: int) -> None:
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, int):
            if abs(value) > MAX_INT:
                raise _fail(path, f"integer out of range (|x| <= 2**53), got {_number(value)}")
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _fail(path, f"must be a finite number, got {value!r}")
            return
        if isinstance(value, str):
            check_text(value, path)
            return
        if depth <= 0:
            raise _fail(path, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, list):
            if len(value) > MAX_ITEMS:
                raise _fail(path, f"has {len(value)} items, at most {MAX_ITEMS} allowed")
            for i, v in enumerate(value):
                self._check(v, f"{path}[{i}]", depth - 1)
            return
        if isinstance(value, dict):
            if len(value) > MAX_ITEMS:
                raise _fail(path, f"has {len(value)} keys, at most {MAX_ITEMS} allowed")
            for k, v in value.items():
                check_text(k, f"{path} (key)", MAX_KEY)
                self._check(v, _join(path, k), depth - 1)
            return
        raise _fail(path, f"unexpected {type(value).__name__}")  # pragma: no cover - not JSON


# --- the vocabulary ----------------------------------------------------------------------------

#: a bundle name: what `models install` names the live link and the native prefix comes from.
NAME = Pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
               "1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit")
#: a key, a class, a constituent, a backend: a short identifier.
IDENT = Pattern(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}",
                "an identifier (1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit)")
#: a file of the bundle: a plain name, no directory part.
FILE_NAME = Pattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}",
                    "a plain file name (file names must be plain names inside the bundle: "
                    "1-128 of A-Z a-z 0-9 . _ -)")
SHA256 = Pattern(r"[0-9a-f]{64}", "64 lowercase hex digits (a sha256)")
VERSION = Pattern(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}", "a version (1-32 of 0-9 A-Z a-z . + _ -)")
#: a C identifier (the native prefix the card records; the backend recomputes its own).
C_IDENT = Pattern(r"[A-Za-z_][A-Za-z0-9_]{0,79}", "a C identifier")

#: physical quantities: wide but finite; a gateway never needs 1e30 of anything.
REAL = Number(-1e12, 1e12)
BYTES = Int(0, 1 << 40)
COUNT = Int(0, MAX_INT)

FILES = Map(FILE_NAME, Obj({"sha256": SHA256, "bytes": BYTES}, required=("sha256",)),
            min_items=1, max_items=64)
ARTIFACTS = Map(IDENT, Map(Enum(*PRECISIONS), FILE_NAME), max_items=32)

POLICY = Obj({"on": Number(-1e6, 1e6), "off": Number(-1e6, 1e6), "debounce": Int(1, 100_000)})

#: the parameters the feature code takes from a card (energy residuals and coastal).
FEATURE_PARAMS = Obj({
    "slot_s": Int(1, 86400), "history": Int(1, 10_000), "min_history": Int(0, 10_000),
    "window": Int(1, 4096), "floor_rel": Number(0, 1e6), "floor_level": Number(0, 1e12),
    "floor_abs": Nullable(Number(0, 1e12)), "clip": Number(0, 1e6),
    "learn_below": Number(0, 1e6), "tz_offset_h": Number(-14, 14), "max_gap": Int(0, 10_000),
    "day_types": Int(1, 7), "floor": Nullable(Number(0, 1e12)),
    "threshold_m": REAL, "horizon_h": Int(1, 1000), "watch_margin_m": Number(0, 1e6),
    "step_s": Int(1, 86400), "time_zone": Text(200),
})

TIDE = Obj({"constituents": Array(IDENT, max_items=512), "cos": Array(REAL, max_items=512),
            "sin": Array(REAL, max_items=512), "z0": REAL, "trend_m_per_year": REAL,
            "epoch": Doc(), "basis": IDENT, "nodal": Text(), "meta": Doc()})

FEATURES = Obj({"kind": IDENT, "params": FEATURE_PARAMS, "tide": TIDE,
                "columns": Array(Text(128), max_items=4096), "input": Text(), "value": Text(),
                "inputs": Int(1, 1 << 20)})

DECISION = Obj({"default": Enum("model", "baseline"),
                "thresholds": Array(Number(0, 1), max_items=64)}, extra=Doc())

FLOW_DEFAULTS = Obj({"decision": Enum("model", "baseline"), "threshold_m": REAL,
                     "horizon_h": Int(1, 1000), "time_zone": Text(200),
                     "window_s": Int(1, 86400), "tz_offset_h": Number(-14, 14),
                     "policy": POLICY})

MATRIX = Array(Array(REAL, 1, 1 << 16), max_items=4096)
#: the self-test's outputs: one per precision, and onnxruntime's own int8 rounding
SELF_TEST_KEY = Enum(*PRECISIONS, "onnx_int8")
SELF_TEST = Obj({"inputs": MATRIX, "outputs": Map(SELF_TEST_KEY, MATRIX),
                 "atol": Map(SELF_TEST_KEY, Number(0, 1e12)), "about": Text()},
                required=("inputs", "outputs", "atol"))

NATIVE = Obj({"generator": Text(200), "prefix": C_IDENT, "about": Text(),
              **{p: Obj({"flash_bytes": BYTES, "ram_bytes": BYTES}) for p in PRECISIONS}})

#: every top-level key a card may have.
CARD = Obj({
    "name": NAME, "version": VERSION, "task": Enum(*TASKS), "frugalai_version": VERSION,
    # the sha256 of the files' names and hashes (frugalai.runtime.stamp: `train` writes it)
    "content_sha256": SHA256,
    "description": Text(), "baseline": Text(), "quantity": IDENT,
    "classes": Array(IDENT, 1, 64), "files": FILES, "sizes_bytes": Map(FILE_NAME, BYTES),
    "artifacts": ARTIFACTS, "features": FEATURES, "policy": POLICY, "decision": DECISION,
    "flow_defaults": FLOW_DEFAULTS, "self_test": SELF_TEST, "native": NATIVE,
    "warm_profile": Obj({"slots": Map(Pattern(r"[0-9]{1,2}:[0-9]{1,6}", "'<day type>:<slot>'"),
                                      Array(REAL, max_items=100_000)),
                         "level": Map(Pattern(r"[0-9]{1,2}", "a day type"), REAL)},
                        extra=Doc()),
    # documentation: read by people and reports
    "day_types": Obj({"profiles": Int(1, 7), "choice": Enum("single", "weekday-weekend",
                                                            "iso-week", "?"),
                      "from": Text(200), "zone": Text(200)}),
    "warnings": Array(Text(), max_items=64),
    "data": Doc(), "metrics": Doc(), "targets": Doc(), "int8": Doc(), "labels": Doc(),
    "model": Doc(), "output": Doc(), "tide_constants": Doc(),
})


def check_card(card: Any) -> None:
    """Check a parsed card against the schema; CardError naming the first bad field."""
    if not isinstance(card, dict):
        raise _fail("", f"must be a JSON object, got {_kind(card)}")
    CARD.check(card, "")
    _cross_check(card)


def _cross_check(card: dict[str, Any]) -> None:
    """What one field says about another: every artifact is a listed file; self-test
    matrices are rectangular, one output row per input row, one tolerance per output."""
    files = card.get("files", {})
    for backend, by_precision in card.get("artifacts", {}).items():
        for precision, name in by_precision.items():
            if name not in files:
                raise _fail(f"artifacts.{backend}.{precision}",
                            f"names {name!r}, which the card's files do not list")
    st = card.get("self_test")
    if st is None:
        return
    _rectangular(st["inputs"], "self_test.inputs")
    for key, rows in st["outputs"].items():
        where = f"self_test.outputs.{key}"
        _rectangular(rows, where)
        if len(rows) != len(st["inputs"]):
            raise _fail(where, f"has {len(rows)} rows for {len(st['inputs'])} inputs")
        if key not in st["atol"]:
            raise _fail(f"self_test.atol.{key}", "is missing (one tolerance per output)")


def _rectangular(rows: list[list[Any]], path: str) -> None:
    if rows and any(len(r) != len(rows[0]) for r in rows):
        raise _fail(path, "rows of different lengths")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise CardError(f"card: key {_shown(k)} appears twice in one object (which one "
                            "counts would depend on the reader)", field=k)
        out[k] = v
    return out


def parse_card(data: bytes, where: str = "card.json") -> dict[str, Any]:
    """Parse and check the bytes of a card: bounded size, JSON without a duplicate key, then
    :func:`check_card` (which refuses NaN and infinities wherever they are). CardError (one
    line, prefixed with ``where``) otherwise."""
    if len(data) > MAX_CARD_BYTES:
        raise CardError(f"{where}: {len(data)} bytes, a card may have at most "
                        f"{MAX_CARD_BYTES} bytes", field="")
    try:
        text = data.decode("utf-8")
        # NaN/Infinity tokens parse (to floats) so that the schema refuses them naming the
        # field: every number of the schema must be finite.
        card = json.loads(text, object_pairs_hook=_no_duplicates)
    except CardError as err:
        raise CardError(f"{where}: {err}", field=err.field) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise CardError(f"{where}: not a JSON card: {reason}", field="") from None
    try:
        check_card(card)
    except CardError as err:
        raise CardError(f"{where}: {err}", field=err.field) from None
    result: dict[str, Any] = card
    return result
