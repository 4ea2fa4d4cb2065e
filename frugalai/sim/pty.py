"""A pseudo-terminal pair an emulator writes into, with unplug/replug and a stable link path.

The emulator holds the master side; the gateway opens the slave side by path, exactly as it
would open ``/dev/ttyUSB0``. ``link`` gives a stable path (like ``/dev/serial/by-id/...``) that
survives a replug, since each new pty gets a new ``/dev/pts/N``.
"""

from __future__ import annotations

import errno
import os
import select
import termios
import tty
from typing import Optional


class PtyPort:
    """One end of a real pty, owned by an emulator.

    Args:
        link: optional path of a symlink kept pointing at the current slave device.
    """

    def __init__(self, link: Optional[str] = None) -> None:
        self.link = link
        self.master: Optional[int] = None
        self._slave: Optional[int] = None
        self.slave_name = ""
        self.bytes_dropped = 0
        self.plug()

    @property
    def path(self) -> str:
        """The path a gateway should open: the link when there is one, else the slave device."""
        return self.link or self.slave_name

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> None:
        """Create a fresh pty (a device appearing) and point the link at it."""
        if self.master is not None:
            return
        master, slave = os.openpty()
        # Raw, so the line discipline does not turn CR into LF before the gateway opens it.
        tty.setraw(slave, termios.TCSANOW)
        tty.setraw(master, termios.TCSANOW)
        os.set_blocking(master, False)
        self.master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.tmp{os.getpid()}"
            os.symlink(self.slave_name, tmp)
            os.replace(tmp, self.link)

    def unplug(self) -> None:
        """Close both sides (a USB cable pulled): the gateway's reads fail from now on."""
        if self.link:
            try:
                os.unlink(self.link)
            except FileNotFoundError:
                pass
        for fd in (self.master, self._slave):
            if fd is not None:
                os.close(fd)
        self.master = self._slave = None

    def write(self, data: bytes) -> int:
        """Write what the pty accepts now; drop the rest (a meter does not wait for readers)."""
        if self.master is None:
            self.bytes_dropped += len(data)
            return 0
        try:
            n = os.write(self.master, data)
        except BlockingIOError:
            n = 0
        except OSError as err:
            if err.errno not in (errno.EIO, errno.EAGAIN):
                raise
            n = 0
        self.bytes_dropped += len(data) - n
        return n

    def read(self, timeout: float = 0.1, size: int = 4096) -> bytes:
        """Read what the gateway wrote (for request/response devices); b"" on timeout."""
        fd = self.master  # read once: another thread may unplug meanwhile
        if fd is None:
            return b""
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            return os.read(fd, size) if ready else b""
        except (OSError, ValueError):  # unplugged while waiting
            return b""

    def close(self) -> None:
        """Release the pty; safe to call twice."""
        self.unplug()

    def __enter__(self) -> PtyPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
