"""The collector's read-ahead socket (frugalai.fleet.readahead) over a real socket pair: paho
gets exactly the bytes, in the pieces it asks for, whatever the chunking; ``pending`` says what
is buffered (paho's loop reads it without waiting in select); a would-block and the peer's close
reach paho as the socket gives them."""

from __future__ import annotations

import random
import socket

import pytest

from frugalai.fleet.readahead import CHUNK, ReadAhead


def test_pieces_come_back_in_order_whatever_the_sizes_asked() -> None:
    a, b = socket.socketpair()
    with a, b:
        rng = random.Random(7)
        data = bytes(rng.getrandbits(8) for _ in range(3 * CHUNK + 123))
        b.setblocking(False)
        reader = ReadAhead(b)
        got = bytearray()
        sent = 0
        while len(got) < len(data):
            if sent < len(data):
                sent += a.send(data[sent:sent + 50_000])
            try:
                piece = reader.recv(rng.choice((1, 2, 7, 300, 5000)))
            except BlockingIOError:
                continue
            assert piece
            got += piece
        assert bytes(got) == data
        assert reader.pending() == 0


def test_pending_counts_what_was_read_ahead_and_not_handed_over() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"\x30\x05hello\x30\x03abc")
        reader = ReadAhead(b)
        assert reader.recv(1) == b"\x30"
        assert reader.pending() == 11  # everything else arrived in the one read
        assert reader.recv(1) == b"\x05"
        assert reader.recv(5) == b"hello"
        assert reader.recv(100) == b"\x30\x03abc"
        assert reader.pending() == 0


def test_would_block_and_close_pass_through() -> None:
    a, b = socket.socketpair()
    with b:
        b.setblocking(False)
        reader = ReadAhead(b)
        with pytest.raises(BlockingIOError):
            reader.recv(1)
        a.sendall(b"xy")
        a.close()
        assert reader.recv(1) == b"x"
        assert reader.recv(1) == b"y"
        assert reader.recv(1) == b""  # the peer closed: paho sees a lost connection
        assert reader.fileno() == b.fileno()  # select() watches the socket itself
