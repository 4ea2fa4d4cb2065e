"""A modem that never sends a newline must not grow the gateway's memory (issue 14 item 11).

Real pty: the emulator side writes 1 MiB without a newline, then a normal line; the AtLink
buffer stays bounded, the over-long line is counted once and the next line still arrives.
"""

from __future__ import annotations

import threading
import time

from frugalai.modems.at_link import MAX_LINE, AtLink
from frugalai.sim.pty import PtyPort


def test_line_buffer_is_bounded_and_the_overflow_counted() -> None:
    port = PtyPort()
    link = AtLink(port.path, 115200)
    link.open()
    junk = b"A" * (1 << 20)

    def modem() -> None:
        for data in (junk, b"\r\n+EVT:TXP2P DONE\r\n"):
            view = memoryview(data)
            while view:
                n = port.write(bytes(view[:4096]))
                view = view[n:]
                if not n:
                    time.sleep(0.001)

    writer = threading.Thread(target=modem, daemon=True)
    writer.start()
    biggest, line = 0, None
    deadline = time.monotonic() + 60
    try:
        while line is None and time.monotonic() < deadline:
            line = link.read_line(0.01)
            biggest = max(biggest, len(link._buf))
    finally:
        writer.join(5)
        link.close()
        port.close()
    assert line == "+EVT:TXP2P DONE"
    assert link.overflows == 1
    assert biggest <= MAX_LINE + 4096  # one read past the bound at most
    assert link.bytes_read >= len(junk)
