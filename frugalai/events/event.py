"""The ``Event``: what leaves the gateway. Small, versioned, with a stable id.

An Event's sequence number is given by the outbox when it is stored (per sensor, persisted), so
``id`` = ``<sensor>:<seq>`` is stable across restarts and a receiver can drop duplicates that
at-least-once delivery may produce.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

#: Event kinds and their wire codes (3 bits in the binary codec).
KINDS: dict[str, int] = {
    "heartbeat": 0,
    "alarm": 1,
    "clear": 2,
    "class": 3,
    "summary": 4,
    "health": 5,
}

#: The sensor health checks (frugalai.health), by bit: a ``health`` event's ``label`` is the
#: mask of the checks failing now, its ``model_id`` the code (index) of the check that changed.
HEALTH_CHECKS: tuple[str, ...] = ("gap", "stuck", "range", "spike", "noise", "drift", "partner",
                                  "link")

#: Priorities: lower is more urgent. Alarms leave first; summaries can wait or be dropped first.
PRIORITY = {"alarm": 0, "clear": 0, "class": 1, "health": 1, "summary": 2, "heartbeat": 3}


@dataclass(frozen=True)
class Stats:
    """What a ``summary`` event reports about one period of one flow.

    A summary arrives even when nothing happened, so silence upstream means "the gateway is
    dead", never "all is well". Counters saturate on the wire (see :mod:`codec`), not here.

    Attributes:
        period_s: length of the period, seconds.
        readings: Readings the flow received.
        windows: feature windows scored.
        events: events the flow's policy emitted (alarms, clears, classes).
        errors: frames rejected and processing errors.
        dropped: events the outbox dropped on overflow (0 unless the uplink was down too long).
        implausible: values refused by the plausibility gates (never turned into readings).
        lost: events lost because the outbox took no writes and the memory cap was reached.

    Counts are per period, and a period covers everything since the last summary *stored*:
    when the outbox drops a summary on overflow, it merges it into the sensor's next summary
    (:func:`~frugalai.events.policy.merge_stats`), so the counts received upstream always add
    up to the totals. The binary codec has no field of its own for ``implausible`` and
    ``lost``: it adds them to ``errors`` and ``dropped`` (format unchanged).
        min, mean, max: of the key value over the scored windows (NaN when none).
        max_score: highest model score of the period (NaN when none).
    """

    period_s: int = 0
    readings: int = 0
    windows: int = 0
    events: int = 0
    errors: int = 0
    dropped: int = 0
    min: float = math.nan
    mean: float = math.nan
    max: float = math.nan
    max_score: float = math.nan
    implausible: int = 0
    lost: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stats:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("min", "mean", "max", "max_score"):
            if fields.get(name) is None:
                fields[name] = math.nan
        return cls(**fields)


@dataclass(frozen=True)
class Event:
    """One event.

    Attributes:
        kind: one of :data:`KINDS`.
        sensor: sensor name (as configured).
        ts: UNIX seconds of the observation that triggered it.
        score: model output (anomaly score, class probability); ``health``: 1 when the flow
            holds its model's decisions because of it, else 0.
        value: one key value for the receiver (window mean power W, water level m...);
            ``health``: the figure of the check that changed (gap s, the value out of range,
            the spike's size, the noise ratio, the drift, value unit...).
        label: class index for classifier events; for ``health`` events the mask of the
            checks failing now (bit i = :data:`HEALTH_CHECKS` [i]); 0 otherwise.
        sensor_id: small integer id of the sensor on the wire (0-255).
        model_id: small integer id of the model on the wire (0-7); for ``health`` events the
            code of the check whose state changed (its index in :data:`HEALTH_CHECKS`).
        seq: per-sensor sequence number, -1 until the outbox stores the event.
        stats: the period's figures, for ``summary`` events only.
    """

    kind: str
    sensor: str
    ts: float
    score: float = 0.0
    value: float = math.nan
    label: int = 0
    sensor_id: int = 0
    model_id: int = 0
    seq: int = -1
    stats: Optional[Stats] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"event kind must be one of {sorted(KINDS)}, got {self.kind!r}")

    @property
    def id(self) -> str:
        """Stable id: ``<sensor>:<seq>``."""
        return f"{self.sensor}:{self.seq}"

    @property
    def priority(self) -> int:
        return PRIORITY[self.kind]

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready: NaN becomes None)."""
        # built by hand: dataclasses.asdict deep-copies every field, a tenth of a simulated
        # gateway's CPU per event (each event is encoded for the outbox and for the wire)
        score, value = self.score, self.value
        data: dict[str, Any] = {
            "kind": self.kind, "sensor": self.sensor, "ts": self.ts,
            "score": None if isinstance(score, float) and math.isnan(score) else score,
            "value": None if isinstance(value, float) and math.isnan(value) else value,
            "label": self.label, "sensor_id": self.sensor_id, "model_id": self.model_id,
            "seq": self.seq}
        if self.stats is not None:
            data["stats"] = self.stats.as_dict()
        data["id"] = self.id
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for name in ("score", "value"):
            if fields.get(name) is None:
                fields[name] = math.nan
        if isinstance(fields.get("stats"), dict):
            fields["stats"] = Stats.from_dict(fields["stats"])
        return cls(**fields)
