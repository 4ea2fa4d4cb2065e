"""I/O only: transports that turn devices and files into Readings. Built by URL via the registry."""

from __future__ import annotations

from frugalai import registry
from frugalai.sources.base import Source


def open_source(url: str, *, sensor: str, key: str | None = None, **kwargs: object) -> Source:
    """Build the source for ``url`` (``serial://...``, ``replay://...``) from the registry."""
    scheme, _, _ = registry.split_url(url, key=key)
    factory = registry.sources.get(scheme, key=key)
    source: Source = factory(url, sensor=sensor, key=key, **kwargs)
    return source
