"""Sinks that write events as lines: ``stdout://`` and ``file:///path/events.jsonl``.

URL grammar::

    stdout://[?codec=NAME]          one line per event on standard output
    file:///var/lib/frugalai/events.jsonl[?codec=NAME]   appended, flushed per batch

``codec`` is any name in :data:`frugalai.registry.codecs` (``json`` by default, ``binary``, or a
plugin's). A text codec's payload is written as is; a binary one as hex (``codec=binary``: the
compact event a LoRaWAN uplink would carry). A sink reports which events it delivered; the
outbox keeps the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any, Optional

from frugalai.errors import ConfigError, UplinkError
from frugalai.events.event import Event
from frugalai.registry import check_options, split_url
from frugalai.uplink.base import find_codec

OPTIONS = {"codec": "a registered codec: json (default), binary (hex of the 11-byte form)..."}


class StreamSink:
    """Writes events to a text stream, one per line."""

    def __init__(self, stream: IO[str], codec: str = "json", name: str = "stdout",
                 owns_stream: bool = False) -> None:
        self._codec = find_codec(codec, key="codec")
        self.stream = stream
        self.codec = codec
        self.name = name
        self.owns_stream = owns_stream
        self.bytes_sent = 0
        self.events_sent = 0

    @classmethod
    def from_url(cls, url: str, *, key: Optional[str] = None, **_: Any) -> StreamSink:
        scheme, rest, options = split_url(url, key=key)
        check_options(url, options, OPTIONS, key=key)
        codec = options.get("codec", "json")
        find_codec(codec, key=key)
        if scheme == "stdout":
            return cls(sys.stdout, codec, "stdout")
        if not rest:
            raise ConfigError(f"file URL names no path: {url!r}", key=key)
        try:
            stream = open(rest, "a", encoding="utf-8")  # noqa: SIM115 - owned by the sink
            # A crash mid-write leaves a truncated last line; end it, so the next event starts
            # on its own line (the truncated event was not marked sent: it is written again).
            if stream.tell() > 0:
                with open(rest, "rb") as fh:
                    fh.seek(-1, 2)
                    if fh.read(1) != b"\n":
                        stream.write("\n")
        except OSError as err:
            raise ConfigError(f"cannot open {rest!r} for appending: {err}", key=key) from err
        return cls(stream, codec, f"file {rest}", owns_stream=True)

    @classmethod
    def validate_url(cls, url: str, *, key: Optional[str] = None, **_: Any) -> None:
        """The checks of ``from_url`` without opening (nor creating) the file."""
        scheme, rest, options = split_url(url, key=key)
        check_options(url, options, OPTIONS, key=key)
        find_codec(options.get("codec", "json"), key=key)
        if scheme != "stdout" and not rest:
            raise ConfigError(f"file URL names no path: {url!r}", key=key)

    def send(self, events: Sequence[Event]) -> list[Event]:
        """Write the events; return those written (all of them, or UplinkError)."""
        try:
            for event in events:
                payload = self._codec.encode(event)
                self.stream.write(self._codec.line(payload) + "\n")
                self.bytes_sent += len(payload)
                self.events_sent += 1
            self.stream.flush()
        except OSError as err:
            raise UplinkError(f"{self.name}: write failed: {err}") from err
        return list(events)

    def close(self) -> None:
        if self.owns_stream and not self.stream.closed:
            self.stream.close()

    def __repr__(self) -> str:
        return f"StreamSink({self.name!r}, codec={self.codec!r})"
