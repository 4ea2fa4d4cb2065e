"""What the collector's stores share: a batch, and the two ways a store can say no. Pure.

A store (:class:`frugalai.fleet.collector.EventStore`, SQLite; :class:`frugalai.fleet.pgstore.
PgEventStore`, PostgreSQL) takes a :class:`Batch` in one transaction and either keeps all of it,
or raises :class:`StoreError` (the database failed: the collector stops without acknowledging)
or :class:`Refused` (a value of some message was refused: the collector stores the messages one
by one to find it and quarantines it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from frugalai.errors import UplinkError
from frugalai.fleet.records import Record


@dataclass
class Batch:
    """What one transaction stores: per event message its records (a ChirpStack frame has
    several) and the time it was received; quarantined messages (topic, bytes, reason,
    received); gateway statuses and rollout reports (the PostgreSQL store keeps their
    history; the SQLite store ignores them)."""

    events: list[tuple[list[Record], float]] = field(default_factory=list)
    quarantine: list[tuple[str, bytes, str, float]] = field(default_factory=list)
    health: list[dict[str, Any]] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)


class Refused(Exception):
    """The database refused the batch because of what a message holds (a value it cannot
    bind), not because it failed: storing the messages one by one finds which."""


class StoreError(UplinkError):
    """The database failed (SQLite's :data:`frugalai.fleet.collector.STORE_FAULTS`,
    PostgreSQL's connection, disk or server errors, or a quarantine row could not be written):
    the collector stops without acknowledging the batch."""
