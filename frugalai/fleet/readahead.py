"""Read-ahead for a busy MQTT subscriber (the collector): one ``recv`` per burst, not four per
message.

paho reads a packet in pieces, straight from the socket: the command byte, the length bytes
one by one, then the body, each a ``recv`` system call (and each a release and re-take of the
GIL, which the collector's writer thread is waiting for). Draining a backlog of small events,
that was four ``recv`` per message. :class:`ReadAhead` wraps the connected socket and reads up
to 64 KiB at once, handing paho the pieces from memory; its ``pending()`` (the hook paho
already uses for TLS sockets) tells paho's loop that bytes are waiting, so it reads them
without waiting in ``select``.

Only the read side changes: writes, ``fileno`` (for ``select``), ``close`` and everything else
go to the socket itself. A TLS socket is wrapped the same way (its own ``pending`` is added).
"""

from __future__ import annotations

from typing import Any

#: bytes read at once: a few hundred events of a backlog.
CHUNK = 65536


class ReadAhead:
    """A socket whose ``recv`` serves from a buffer refilled ``CHUNK`` bytes at a time."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes: from the buffer, or one read of the socket when it is
        empty (whose ``BlockingIOError``/TLS want-read and ``b""`` at close pass through)."""
        if self._pos >= len(self._buf):
            data = self._sock.recv(max(bufsize, CHUNK))
            if len(data) <= bufsize:
                return bytes(data)
            self._buf, self._pos = data, 0
        end = self._pos + bufsize
        chunk = self._buf[self._pos:end]
        self._pos += len(chunk)
        return chunk

    def pending(self) -> int:
        """Bytes already read and not yet handed over (plus the TLS layer's own)."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + int(inner)

    def __getattr__(self, name: str) -> Any:  # send, fileno, close, setblocking, ...
        return getattr(self._sock, name)


def read_ahead_client(mqtt: Any) -> Any:
    """paho's ``Client`` with its sockets wrapped in :class:`ReadAhead`; paho's own class if
    this paho has no socket factory to wrap (then nothing changes but the speed)."""
    base = mqtt.Client
    if not hasattr(base, "_create_socket"):
        return base

    class ReadAheadClient(base):  # type: ignore[misc, valid-type]
        def _create_socket(self) -> Any:
            return ReadAhead(super()._create_socket())

    return ReadAheadClient
