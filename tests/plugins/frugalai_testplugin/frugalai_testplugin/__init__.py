"""A frugalai plugin written against the public extension points only.

* backend ``twin``: the numpy forward pass of the bundle's reference weights, under another
  name (it reads the ``reference`` artifact, so it agrees with ``reference`` on every card's
  self-test vectors). Each ``predict_many`` call is appended to the file named by the
  environment variable ``FRUGALAI_TESTPLUGIN_LOG``, so a test can see a flow used it.
* uplink ``tap:///path/file[?codec=NAME]``: appends one line per event, through any registered
  codec (``csv`` by default).
* codec ``csv``: ``kind,sensor,ts,score,value,label,sensor_id,model_id,seq`` as UTF-8 text.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from frugalai import registry
from frugalai.errors import ConfigError, DecodeError, UplinkError
from frugalai.events.codec import Codec
from frugalai.events.event import Event
from frugalai.runtime.backends import ReferenceBackend, artifact
from frugalai.runtime.bundle import Bundle
from frugalai.runtime.dense import DenseNet

__all__ = ["CSV", "TapSink", "TwinBackend"]


class TwinBackend(ReferenceBackend):
    """The reference numpy backend under the name ``twin``."""

    name = "twin"

    def load(self, bundle: Bundle, precision: str) -> TwinBackend:
        self.file = artifact(bundle, "reference", precision)
        self.net = DenseNet.load(bundle.file(self.file))
        self.precision = precision
        return self

    def predict_many(self, X: npt.ArrayLike) -> npt.NDArray[np.float32]:
        out = super().predict_many(X)
        log = os.environ.get("FRUGALAI_TESTPLUGIN_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as fh:
                fh.write(f"twin predict_many rows={len(out)}\n")
        return out


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
