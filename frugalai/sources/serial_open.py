"""Opening a serial port at a framing it may refuse: fall back to 8N1 and frame in software.

Some ports refuse a framing other than 8N1 with EINVAL from ``tcsetattr``: on this project's
reference kernel a pty that was opened once at 7E1 (or 8E1, 7N1) refuses it on every later
open, even from plain pyserial, while 8N1 opens; a few USB adapters have no 7-bit mode at all.
Without a fallback a TIC gateway (7E1) loses its meter for good at its first restart, reload
or rollout. So when the configured framing is refused with EINVAL, the port is opened at 8N1
with the same speed:

* 7 data bits (7E1, 7O1, 7N1): the 8-bit bytes hold the character and, in bit 7, its parity
  bit; :class:`~frugalai.protocols.parity.SoftFraming` checks it (counting and blanking the
  corrupt ones) and strips it, so the decoder sees what a 7E1 port would have given;
* 8 data bits with parity (Modbus RTU 8E1): the parity bit cannot be read at 8N1; on a pty
  there is no line so nothing is lost, on a real line the frames' CRC still catches errors.
  The framing string says "parity unchecked".

Any other error (no such device, permission denied, EINVAL at 8N1 too) is the caller's.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from typing import Any, Optional

from frugalai.protocols.parity import SoftFraming

log = logging.getLogger("frugalai.sources")

__all__ = ["Opened", "device_replaced", "framing_name", "open_serial", "refused_framing"]


@dataclass
class Opened:
    """An open port and how its framing is done."""

    serial: Any
    #: set when the configured 7-bit framing is done in software on an 8N1 port.
    soft: Optional[SoftFraming]
    #: e.g. ``7E1``, or ``7E1 in software (8N1 port: the port refused 7E1)``.
    framing: str


def framing_name(settings: dict[str, Any]) -> str:
    """``7E1``-style name of pyserial settings (bytesize, parity, stopbits)."""
    return f"{settings.get('bytesize', 8)}{settings.get('parity', 'N')}" \
           f"{settings.get('stopbits', 1)}"


def refused_framing(err: BaseException) -> bool:
    """True if ``err`` (pyserial's SerialException, an OSError or a ``termios.error``) is the
    EINVAL a port gives for a framing it does not take."""
    seen: Optional[BaseException] = err
    while seen is not None:
        code = getattr(seen, "errno", None)
        if code is None and seen.args and isinstance(seen.args[0], int):
            code = seen.args[0]  # termios.error carries (errno, text) in args only
        if code == errno.EINVAL:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def device_replaced(port: str, ser: Any) -> bool:
    """True if the path ``port`` no longer names the device ``ser`` holds open: a link
    re-pointed at a new device (a pty recreated, a ``/dev/serial/by-id`` link after a replug)
    while the old one still answers, or the path gone. False for URLs and when unsure."""
    import os

    fd = getattr(ser, "fd", None)
    if not port.startswith("/") or not isinstance(fd, int):
        return False
    try:
        named, held = os.stat(port), os.fstat(fd)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return (named.st_rdev, named.st_ino, named.st_dev) != (held.st_rdev, held.st_ino,
                                                             held.st_dev)


def open_serial(port: str, settings: dict[str, Any], *, what: str = "") -> Opened:
    """Open ``port`` with ``settings``; at 8N1 with software framing if the framing is refused.

    Raises whatever pyserial raises (SerialException, OSError, ValueError, termios.error) when
    the port cannot be opened either way; the first error when the fallback fails too.
    """
    import serial  # pyserial, a core dependency, imported late to keep import light

    name = framing_name(settings)
    try:
        return Opened(serial.serial_for_url(port, **settings), None, name)
    except Exception as err:  # termios.error is no OSError: sorted out below
        if name == "8N1" or not refused_framing(err):
            raise
        first = err
    eight = {**settings, "bytesize": 8, "parity": "N"}
    try:
        ser = serial.serial_for_url(port, **eight)
    except Exception:
        raise first from None
    parity = str(settings.get("parity", "N"))
    if int(settings.get("bytesize", 8)) == 7:
        soft: Optional[SoftFraming] = SoftFraming(parity)
        how = f"{name} in software (8N1 port: the port refused {name})"
    else:
        soft = None
        how = f"8N1, parity unchecked (the port refused {name})"
    log.info("%s%s: %s refused (EINVAL); opened as %s", what or "serial ", port, name, how)
    return Opened(ser, soft, how)
