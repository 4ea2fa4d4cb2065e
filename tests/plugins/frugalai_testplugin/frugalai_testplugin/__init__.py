"""A frugalai plugin written against the public extension points only.

* backend ``twin``: the numpy forward pass of the bundle's reference weights, under another
  name (it reads the ``reference`` artifact, so it agrees with ``reference`` on every card's
  self-test vectors). Each ``predict_one`` / ``predict_many`` call is appended to the file
  named by the environment variable ``FRUGALAI_TESTPLUGIN_LOG``, so a test can see a flow used
  it.
* uplink ``tap:///path/file[?codec=NAME]``: appends one line per event, through any registered
  codec (``csv`` by default).
* codec ``csv``: ``kind,sensor,ts,score,value,label,sensor_id,model_id,seq`` as UTF-8 text.
* policy ``edge``: an alarm on every window whose score reaches ``on`` (no hysteresis, no
  debounce), a clear on the first window below ``off`` after an alarm.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from frugalai import registry
from frugalai.errors import ConfigError, DecodeError, ModelError, UplinkError
from frugalai.events.codec import Codec
from frugalai.events.event import Event
from frugalai.runtime.backends import artifact
from frugalai.runtime.bundle import Bundle
from frugalai.runtime.dense import DenseNet

__all__ = ["CSV", "EdgePolicy", "TapSink", "TwinBackend", "edge_policy"]


class TwinBackend:
    """The numpy forward pass of the bundle's reference weights, under the name ``twin``.

    Written against the public pieces only (``artifact``, ``DenseNet``), not against another
    backend's internals."""

    name = "twin"
    extra: Optional[str] = None
    reads = "reference"  # the card's artifacts entry it loads (config check looks there)

    @staticmethod
    def unavailable() -> Optional[str]:
        return None

    def __init__(self) -> None:
        self.precision = "fp32"
        self.file = ""
        self.net: Optional[DenseNet] = None

    def load(self, bundle: Bundle, precision: str) -> TwinBackend:
        self.file = artifact(bundle, "reference", precision)
        try:
            self.net = DenseNet.load(bundle.file(self.file))
        except (OSError, KeyError, ValueError) as err:
            raise ModelError(f"{bundle.path}: cannot read {self.file}: {err}") from err
        if precision == "int8" and not self.net.quantized:
            raise ModelError(f"{bundle.path}: {self.file} has no int8 parameters")
        self.precision = precision
        return self

    def _run(self, X: npt.ArrayLike, call: str) -> npt.NDArray[np.float32]:
        assert self.net is not None, "call load() first"
        rows = np.asarray(X, dtype=np.float32).reshape(-1, self.net.n_inputs)
        if self.precision == "int8":
            out = np.asarray(self.net.forward_int8(rows), dtype=np.float32)
        else:
            out = np.asarray(self.net.forward(rows), dtype=np.float32)
        log = os.environ.get("FRUGALAI_TESTPLUGIN_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"twin {call} rows={len(out)}\n")
        return out

    def predict_many(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return self._run(X, "predict_many")

    def predict_one(self, x: npt.ArrayLike) -> npt.NDArray[np.float32]:
        return self._run(x, "predict_one")[0]

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "precision": self.precision, "file": self.file,
                "runtime": f"numpy {np.__version__}"}


_FIELDS = ("kind", "sensor", "ts", "score", "value", "label", "sensor_id", "model_id", "seq")


def _encode_csv(event: Event) -> bytes:
    return ",".join(repr(getattr(event, f)) if isinstance(getattr(event, f), float)
                    else str(getattr(event, f)) for f in _FIELDS).encode()


def _decode_csv(raw: bytes) -> dict[str, Any]:
    parts = raw.decode().split(",")
    if len(parts) != len(_FIELDS):
        raise DecodeError(f"csv event: expected {len(_FIELDS)} fields, got {len(parts)}")
    out: dict[str, Any] = dict(zip(_FIELDS, parts))
    for f in ("ts", "score", "value"):
        out[f] = float(out[f])
        if math.isnan(out[f]):
            out[f] = None
    for f in ("label", "sensor_id", "model_id", "seq"):
        out[f] = int(out[f])
    return out


CSV = Codec("csv", _encode_csv, _decode_csv, text=True)


class TapSink:
    """Appends each event as one line to a file, through a registered codec."""

    def __init__(self, path: str, codec: str = "csv") -> None:
        self.path = path
        self.codec: Codec = registry.codecs.get(codec, key="codec")
        self._fh: Optional[Any] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    @classmethod
    def from_url(cls, url: str, *, key: Optional[str] = None, **_: Any) -> TapSink:
        _, path, options = registry.split_url(url, key=key)
        registry.check_options(url, options, {"codec": "a registered codec (csv)"}, key=key)
        if not path:
            raise ConfigError(f"tap URL names no file: {url!r}", key=key)
        return cls(path, options.get("codec", "csv"))

    def send(self, events: Sequence[Event]) -> list[Event]:
        if self._fh is None:
            raise UplinkError(f"tap {self.path}: closed")
        for event in events:
            self._fh.write(self.codec.line(self.codec.encode(event)) + "\n")
        self._fh.flush()
        return list(events)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __repr__(self) -> str:
        return f"TapSink({self.path!r}, codec={self.codec.name!r})"


class EdgePolicy:
    """Alarm on every window at or above ``on``; clear once below ``off`` after an alarm."""

    def __init__(self, on: float, off: float) -> None:
        self.on, self.off = on, off
        self.alarmed = False

    def update_one(self, score: float) -> Optional[str]:
        if score >= self.on:
            self.alarmed = True
            return "alarm"
        if self.alarmed and score < self.off:
            self.alarmed = False
            return "clear"
        return None


def edge_policy(policy: Any) -> EdgePolicy:
    """``[flow.policy] kind = "edge"``: the factory receives the flow's resolved policy table."""
    on = 4.0 if policy.on is None else float(policy.on)
    return EdgePolicy(on, on / 2 if policy.off is None else float(policy.off))

