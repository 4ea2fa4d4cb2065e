"""What every uplink shares: the :class:`Sink` protocol and codec lookup by name.

A sink is built from its URL by the factory registered in :data:`frugalai.registry.uplinks`
(``factory(url, key=..., gateway=..., state_dir=...)``; a factory takes ``**kwargs`` and ignores
what it does not need). The outbox hands it batches; the sink returns the events it delivered,
and the outbox keeps the rest for the next try.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Protocol, cast, runtime_checkable

from frugalai import registry
from frugalai.events.codec import Codec
from frugalai.events.event import Event

__all__ = ["Sink", "find_codec"]


@runtime_checkable
class Sink(Protocol):
    """Where events leave the gateway.

    ``send`` returns the events it accepted (all, a prefix, or none); it never drops one
    silently: an event not returned stays in the outbox. A failure of the link is an
    :class:`~frugalai.errors.UplinkError` (the outbox keeps the whole batch). ``send`` does not
    modify the events. ``close`` releases the link and is safe to call twice.
    """

    def send(self, events: Sequence[Event]) -> list[Event]: ...

    def close(self) -> None: ...


def find_codec(name: str, *, key: Optional[str] = None) -> Codec:
    """The codec registered as ``name`` (:data:`frugalai.registry.codecs`); ConfigError listing
    the known ones otherwise."""
    return cast(Codec, registry.codecs.get(name, key=key))
