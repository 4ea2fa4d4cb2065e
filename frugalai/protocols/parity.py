"""Serial character framing done in software (pure): 7 data bits + a parity bit read as 8N1.

A 7E1 line (TIC: historique 1200 7E1, standard 9600 7E1) read by a port set to 8N1 gives the
same 10 bits per character, so each byte carries the 7 data bits and, in bit 7, the parity
bit. When a port refuses 7E1 (some kernels' ptys refuse every framing but 8N1 once they were
opened: ``tcsetattr`` fails with EINVAL; some USB adapters have no 7-bit mode), the gateway
opens it at 8N1 and :class:`SoftFraming` does what the UART would have done: check the parity
bit and strip it.

A byte whose parity is wrong is corrupt: it is counted and replaced by NUL, which is what a
UART with parity checking (``INPCK``) delivers, so the frame holding it fails its checksum and
is counted as a bad frame by the decoder, never decoded into a value.

>>> f = SoftFraming("E")
>>> f.feed(bytes([0x41, 0xC3]))  # 'A' (2 ones: parity 0), 'C' (3 ones: parity 1)
b'AC'
>>> f.feed(bytes([0xC1])), f.parity_errors  # 'A' with a wrong parity bit
(b'\\x00', 1)
>>> with_parity(b"AC", "E").hex()
'41c3'
"""

from __future__ import annotations

__all__ = ["SoftFraming", "parity_bit", "with_parity"]

_MODES = ("E", "O", "N")


def parity_bit(byte: int, parity: str) -> int:
    """The parity bit of the 7 data bits of ``byte`` (``E`` even, ``O`` odd, ``N`` none: 0).

    >>> parity_bit(ord("C"), "E"), parity_bit(ord("C"), "O"), parity_bit(ord("C"), "N")
    (1, 0, 0)
    """
    if parity == "N":
        return 0
    ones = bin(byte & 0x7F).count("1") & 1
    return ones if parity == "E" else ones ^ 1


def with_parity(data: bytes, parity: str) -> bytes:
    """``data`` (7-bit characters) as an 8-bit reader sees them on a 7-bit line with ``parity``:
    the parity bit in bit 7 (what the emulators write on their ptys)."""
    if parity not in _MODES:
        raise ValueError(f"parity must be one of {', '.join(_MODES)}, got {parity!r}")
    return bytes((b & 0x7F) | (parity_bit(b, parity) << 7) for b in data)


class SoftFraming:
    """7 data bits + parity from 8-bit bytes: checks, counts and strips the parity bit.

    Args:
        parity: ``E``, ``O`` (checked) or ``N`` (7N1: bit 7 only stripped).
    """

    def __init__(self, parity: str) -> None:
        if parity not in _MODES:
            raise ValueError(f"parity must be one of {', '.join(_MODES)}, got {parity!r}")
        self.parity = parity
        #: bytes whose parity bit was wrong (each replaced by NUL).
        self.parity_errors = 0

    def feed(self, data: bytes) -> bytes:
        """The 7-bit characters of ``data``; a character with a wrong parity bit becomes NUL."""
        if self.parity == "N":
            return bytes(b & 0x7F for b in data)
        out = bytearray(len(data))
        for i, b in enumerate(data):
            if b >> 7 == parity_bit(b, self.parity):
                out[i] = b & 0x7F
            else:
                self.parity_errors += 1  # out[i] stays 0: NUL, as INPCK delivers it
        return bytes(out)

    def __repr__(self) -> str:
        return f"SoftFraming(parity={self.parity!r})"
