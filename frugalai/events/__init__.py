"""PURE: the Event that leaves the gateway, the policies that decide to emit one, its codecs."""

from __future__ import annotations

from frugalai.events.event import KINDS, Event

__all__ = ["KINDS", "Event"]
