"""Linky TIC (télé-information client) framing and decoding, historique and standard modes.

Pure: feed bytes, get frames. The transport (serial port, replay file) lives in ``sources/``.

Wire format (Enedis-NOI-CPT_54E §5.3.6)::

    STX(0x02) group ... group ETX(0x03)        EOT(0x04) aborts the frame in progress
    historique group: LF label SP data SP checksum CR
    standard group:   LF label HT [horodate HT] data HT checksum CR

Checksum: ``chr((sum(bytes) & 0x3F) + 0x20)``. In historique mode the sum covers label..data
(the SP before the checksum is excluded); in standard mode it includes the HT before the checksum.
A group is parsed from its end: the checksum may itself be a space, and standard data may contain
spaces, so splitting on whitespace is wrong.

A frame with any bad group is rejected whole (counted in :attr:`TicDecoder.stats`): a frame is one
consistent snapshot of the meter, and the next one follows within two seconds.

>>> d = TicDecoder()
>>> [f.groups[0].label for f in d.feed(b"\\x02\\nIINST 002 Y\\r\\x03")]
['IINST']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Optional

from frugalai.errors import DecodeError

STX, ETX, EOT = 0x02, 0x03, 0x04
LF, CR, SP, HT = 0x0A, 0x0D, 0x20, 0x09

HISTORIQUE = "historique"
STANDARD = "standard"
MODES = (HISTORIQUE, STANDARD)

#: A frame longer than this (bytes) is garbage (the largest standard frames are ~1 KB).
MAX_FRAME_BYTES = 4096


def checksum(data: bytes) -> int:
    """TIC checksum of ``data`` (the bytes the mode's rule says to sum).

    >>> chr(checksum(b"IINST 002"))
    'Y'
    """
    return (sum(data) & 0x3F) + 0x20


@dataclass(frozen=True)
class TicGroup:
    """One information group: label, data and, in standard mode, an optional horodate."""

    label: str
    data: str
    horodate: Optional[str] = None


@dataclass(frozen=True)
class TicFrame:
    """One complete, checksum-valid frame."""

    mode: str
    groups: tuple[TicGroup, ...]

    def as_dict(self) -> dict[str, str]:
        """label -> data (last wins), the usual way to read a frame."""
        return {g.label: g.data for g in self.groups}


#: the bytes a group's label and data may hold (printable ASCII, and HT in standard mode)
_PRINTABLE_OR_HT = bytes(range(0x20, 0x7F)) + b"\t"


def parse_group(raw: bytes, mode: str) -> TicGroup:
    """Parse one group body (between LF and CR, both excluded) and check its checksum.

    Raises:
        DecodeError: the group is malformed or its checksum is wrong.

    >>> parse_group(b"HCHC 000723392  ", HISTORIQUE)
    TicGroup(label='HCHC', data='000723392', horodate=None)
    >>> parse_group(b"DATE\\tE180716103423\\t\\tB", STANDARD).horodate
    'E180716103423'
    """
    if len(raw) < 3:
        raise DecodeError(f"TIC group too short: {raw!r}")
    sep = SP if mode == HISTORIQUE else HT
    cks = raw[-1]
    if raw[-2] != sep:
        raise DecodeError(f"TIC group: expected separator {sep:#04x} before checksum in {raw!r}")
    summed = raw[:-2] if mode == HISTORIQUE else raw[:-1]
    expected = checksum(summed)
    if cks != expected:
        raise DecodeError(
            f"TIC checksum: expected {chr(expected)!r}, got {chr(cks)!r} in {raw!r}"
        )
    if raw[:-2].translate(None, _PRINTABLE_OR_HT):
        # 54E §5.3.6: labels and data are printable ASCII. A control character here is a
        # corruption the 6-bit checksum missed (bit 6 flipped: 'H' 0x48 -> 0x08 sums the same).
        raise DecodeError(f"TIC group holds a control or non-ASCII character: {raw!r}")
    body = raw[:-2].decode("ascii")
    if mode == HISTORIQUE:
        label, sp, data = body.partition(" ")
        if not sp or not label:
            raise DecodeError(f"TIC historique group without label/data separator: {raw!r}")
        return TicGroup(label, data)
    fields = body.split("\t")
    if len(fields) == 2:
        return TicGroup(fields[0], fields[1])
    if len(fields) == 3:
        return TicGroup(fields[0], fields[2], horodate=fields[1])
    raise DecodeError(f"TIC standard group: expected 2 or 3 fields, got {len(fields)} in {raw!r}")


def detect_mode(group_body: bytes) -> Optional[str]:
    """Guess the mode from one group body: standard groups use HT, historique ones SP."""
    if len(group_body) >= 2 and group_body[-2] == HT:
        return STANDARD
    if len(group_body) >= 2 and group_body[-2] == SP:
        return HISTORIQUE
    return None


@dataclass
class TicStats:
    """Counters kept by a decoder; never reset by the decoder itself."""

    bytes_in: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    frames_aborted: int = 0
    bytes_skipped: int = 0
    last_error: str = ""


@dataclass
class TicDecoder:
    """Incremental TIC frame decoder (a Packetizer in pyserial's sense).

    Args:
        mode: ``"historique"``, ``"standard"`` or ``"auto"`` (decided per frame from the first
            group's separator).

    Bytes are masked to 7 bits: the link is 7E1, and a port opened as 8N1 by mistake then
    still decodes instead of failing every checksum.
    """

    mode: str = "auto"
    stats: TicStats = field(default_factory=TicStats)
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _in_frame: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in (*MODES, "auto"):
            raise ValueError(f"TIC mode must be historique, standard or auto, got {self.mode!r}")

    def feed(self, data: bytes) -> Iterator[TicFrame]:
        """Feed raw bytes; yield every frame completed by them. Bad frames are counted."""
        self.stats.bytes_in += len(data)
        for byte in data:
            b = byte & 0x7F
            if b == STX:
                if self._in_frame:
                    self._reject("STX inside a frame (ETX lost)")
                self._in_frame = True
                self._buf.clear()
            elif not self._in_frame:
                self.stats.bytes_skipped += 1
            elif b == EOT:
                self.stats.frames_aborted += 1
                self._in_frame = False
                self._buf.clear()
            elif b == ETX:
                self._in_frame = False
                frame = self._finish()
                if frame is not None:
                    yield frame
            else:
                self._buf.append(b)
                if len(self._buf) > MAX_FRAME_BYTES:
                    self._reject(f"frame longer than {MAX_FRAME_BYTES} bytes")
                    self._in_frame = False

    def _reject(self, why: str) -> None:
        self.stats.frames_bad += 1
        self.stats.last_error = why
        self._buf.clear()

    def _finish(self) -> Optional[TicFrame]:
        try:
            frame = decode_frame_body(bytes(self._buf), self.mode)
        except DecodeError as err:
            self._reject(str(err))
            return None
        self._buf.clear()
        self.stats.frames_ok += 1
        return frame


def decode_frame_body(body: bytes, mode: str = "auto") -> TicFrame:
    """Decode the bytes between STX and ETX.

    Raises:
        DecodeError: empty frame, a group not delimited by LF..CR, or a bad checksum.
    """
    if not body:
        raise DecodeError("empty TIC frame")
    groups: list[TicGroup] = []
    frame_mode = None if mode == "auto" else mode
    pos = 0
    while pos < len(body):
        if body[pos] != LF:
            raise DecodeError(f"TIC group must start with LF at offset {pos}: {body[pos:pos+20]!r}")
        end = body.find(CR, pos + 1)
        if end < 0:
            raise DecodeError(f"TIC group without CR at offset {pos}")
        raw = body[pos + 1 : end]
        if frame_mode is None:
            frame_mode = detect_mode(raw)
            if frame_mode is None:
                raise DecodeError(f"cannot tell the TIC mode from group {raw!r}")
        groups.append(parse_group(raw, frame_mode))
        pos = end + 1
    assert frame_mode is not None  # set by the first group; the body is non-empty
    return TicFrame(frame_mode, tuple(groups))


def encode_group(label: str, data: str, mode: str = HISTORIQUE, horodate: str | None = None) -> bytes:
    """Encode one group with its checksum, LF..CR included (used by the emulator and tests).

    >>> encode_group("IINST", "002")
    b'\\nIINST 002 Y\\r'
    """
    if mode == HISTORIQUE:
        if horodate is not None:
            raise ValueError("historique groups have no horodate")
        body = f"{label} {data}".encode("ascii")
        return b"\n" + body + b" " + bytes([checksum(body)]) + b"\r"
    parts = [label, horodate, data] if horodate is not None else [label, data]
    body = ("\t".join(parts) + "\t").encode("ascii")
    return b"\n" + body + bytes([checksum(body)]) + b"\r"


def encode_frame(groups: list[tuple[str, str]], mode: str = HISTORIQUE) -> bytes:
    """Encode a whole frame from (label, data) pairs, STX..ETX included."""
    return bytes([STX]) + b"".join(encode_group(lb, d, mode) for lb, d in groups) + bytes([ETX])
