"""A line-oriented AT dialogue over a serial port (pyserial ``serial_for_url``).

Modems mix command replies with asynchronous lines (a received packet, ``+EVT:TX_DONE``), so
``command`` waits for a *final* line chosen by the caller and keeps every other line it sees in
``pending`` for the driver to handle later: nothing the modem says is lost to a dialogue.
Serial failures become :class:`~frugalai.errors.SourceError`; silence is a ``None`` / timeout.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Optional

from frugalai.errors import SourceError

#: The longest line a modem prints is a received packet in hex (255 B -> ~530 characters); a
#: "line" longer than this is noise or a modem gone mad, and is discarded up to its newline
#: (counted in ``overflows``) instead of growing the buffer without end.
MAX_LINE = 4096


class AtTimeout(SourceError):
    """The modem did not give the expected answer in time (it may be hung)."""


class AtLink:
    """Lines in and out of one serial port.

    Args:
        port: device path or pyserial URL.
        baud: line speed (RAK3172 115200, RN2483 57600).
    """

    def __init__(self, port: str, baud: int) -> None:
        self.port = port
        self.baud = baud
        self.pending: deque[str] = deque()
        self.bytes_read = 0
        #: over-long lines discarded (see MAX_LINE)
        self.overflows = 0
        self._serial: Any = None
        self._buf = b""
        self._discarding = False

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        import serial

        try:
            self._serial = serial.serial_for_url(self.port, baudrate=self.baud, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as err:
            raise SourceError(f"cannot open serial port {self.port!r}: {err}") from err
        self._buf = b""
        self._discarding = False
        self.pending.clear()

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:  # a vanished device may fail to close; it is gone either way
                pass
            self._serial = None

    def write_line(self, text: str) -> None:
        import serial

        if self._serial is None:
            raise SourceError(f"{self.port}: port not open")
        try:
            self._serial.write(text.encode("ascii") + b"\r\n")
        except (serial.SerialException, OSError) as err:
            raise SourceError(f"{self.port}: write failed: {err}") from err

    def read_line(self, timeout: float) -> Optional[str]:
        """The next non-empty line (pending ones first), or None after ``timeout`` seconds."""
        if self.pending:
            return self.pending.popleft()
        return self._read_wire(timeout)

    def _read_wire(self, timeout: float) -> Optional[str]:
        import serial

        if self._serial is None:
            raise SourceError(f"{self.port}: port not open")
        deadline = time.monotonic() + timeout
        while True:
            for sep in (b"\n", b"\r"):
                cut = self._buf.find(sep)
                if cut >= 0:
                    raw, self._buf = self._buf[:cut], self._buf[cut + 1:]
                    if self._discarding:  # the tail of an over-long line: not a line
                        self._discarding = False
                        break
                    line = raw.decode("ascii", "replace").strip()
                    if line:
                        return line
                    break
            else:
                if time.monotonic() >= deadline:
                    return None
                try:
                    data = self._serial.read(max(1, self._serial.in_waiting))
                except (serial.SerialException, OSError) as err:
                    raise SourceError(f"{self.port}: read failed: {err}") from err
                self.bytes_read += len(data)
                self._buf += data
                if len(self._buf) > MAX_LINE and b"\n" not in self._buf \
                        and b"\r" not in self._buf:
                    if not self._discarding:
                        self.overflows += 1
                    self._discarding, self._buf = True, b""

    def drain(self, quiet_s: float = 0.05) -> list[str]:
        """Read and return every line until the wire is quiet for ``quiet_s`` (after a reset)."""
        lines = list(self.pending)
        self.pending.clear()
        while True:
            line = self._read_wire(quiet_s)
            if line is None:
                return lines
            lines.append(line)

    def command(self, text: str, final: Callable[[str], bool], timeout: float = 2.0,
                keep: Callable[[str], bool] = lambda line: False) -> tuple[list[str], str]:
        """Send ``text``; return (lines before the final one, the final line).

        Lines for which ``keep`` is true (asynchronous events) go to ``pending`` instead.
        AtTimeout when no final line comes within ``timeout``.
        """
        self.write_line(text)
        return self.expect(final, timeout, keep, what=text)

    def expect(self, final: Callable[[str], bool], timeout: float,
               keep: Callable[[str], bool] = lambda line: False,
               what: str = "a reply") -> tuple[list[str], str]:
        """Read until a final line (see ``command``), without sending anything."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        kept: list[str] = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AtTimeout(f"{self.port}: no answer to {what!r} within {timeout:g} s"
                                    + (f" (got {lines})" if lines else ""))
                line = self._read_wire(left)
                if line is None:
                    continue
                if final(line):
                    return lines, line
                if keep(line):
                    kept.append(line)
                else:
                    lines.append(line)
        finally:
            self.pending.extend(kept)
