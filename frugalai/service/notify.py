"""The systemd notify protocol on the standard library: one datagram to ``$NOTIFY_SOCKET``.

systemd gives a ``Type=notify`` service the path of a datagram socket in ``NOTIFY_SOCKET``
(``@`` prefix: Linux abstract namespace) and, with ``WatchdogSec=``, the watchdog period in
``WATCHDOG_USEC`` (for the process ``WATCHDOG_PID`` when set). Messages are newline-separated
``KEY=value`` lines: ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``RELOADING=1``, ``STOPPING=1``.

Outside systemd (no ``NOTIFY_SOCKET``) every call is a cheap no-op, so the same code runs in a
terminal, in tests, and under systemd. A failing send is logged once, never raised: losing a
status line must not stop the gateway (if pings stop, systemd restarts us, which is the point).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Optional

log = logging.getLogger("frugalai.service")


class Notifier:
    """Sends sd_notify messages; the environment is read once, at construction."""

    def __init__(self, env: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self.address: Optional[str] = None
        if path.startswith("@"):
            self.address = "\0" + path[1:]
        elif path.startswith("/"):
            self.address = path
        self.watchdog_s: Optional[float] = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._sock: Optional[socket.socket] = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def ping_every(self) -> Optional[float]:
        """How often to send WATCHDOG=1: half the period, as sd_watchdog_enabled(3) advises."""
        return None if self.watchdog_s is None else self.watchdog_s / 2

    def send(self, **fields: object) -> bool:
        """Send ``KEY=value`` lines (``send(READY=1, STATUS="ok")``); True if sent."""
        if self.address is None:
            return False
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(message, self.address)
        except OSError as err:
            if not self._warned:
                log.warning("cannot notify systemd at %r: %s", self.address, err)
                self._warned = True
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def reloading(self) -> bool:
        return self.send(RELOADING=1)

    def stopping(self, status: str = "stopping") -> bool:
        return self.send(STOPPING=1, STATUS=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
