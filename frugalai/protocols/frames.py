"""firmware_bridge: the sensor-node -> gateway protocol (pure codec, no I/O).

One *packet* is the same bytes on every link::

    offset size  field
    0      1     version      (1)
    1      2     node_id      u16 big-endian
    3      2     seq          u16 big-endian, +1 per packet, wraps; lets the gateway count losses
    5      5*n   readings     quantity u8, value i32 big-endian (value = raw * scale of quantity)

* Over **LoRa** the packet is sent bare: the radio (or LoRaWAN's MIC) already checks integrity
  and every byte costs airtime. Decode it with :func:`decode_packet`.
* Over a **serial** line it is framed as ``COBS(packet + crc16(packet) big-endian) 0x00``: COBS
  removes every 0x00 from the body so a zero byte always marks a frame end, and a reader that
  joins mid-stream resynchronises at the next zero. CRC-16/CCITT-FALSE (poly 0x1021, init
  0xFFFF; ``crc16(b"123456789") == 0x29B1``) catches line noise. Decode with :class:`FbDecoder`.

The C side (``firmware_bridge/fb_frame.c``) encodes the same bytes; both sides are tested
against ``firmware_bridge/test_vectors.json``.

>>> pkt = Packet(node_id=7, seq=1, readings=(("water_level_m", 1.234),))
>>> encode_packet(pkt).hex(" ")
'01 00 07 00 01 03 00 00 04 d2'
>>> packet_values(decode_packet(encode_packet(pkt)))
{'water_level_m': (1.234, 'm')}
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from frugalai.errors import DecodeError

VERSION = 1
HEADER = struct.Struct(">BHH")
READING = struct.Struct(">Bi")
#: Largest packet: header + 48 readings (fits one LoRa packet of 255 bytes with margin).
MAX_READINGS = 48
MAX_PACKET = HEADER.size + READING.size * MAX_READINGS
#: Largest encoded serial frame: COBS overhead is 1 byte per 254, plus CRC and delimiter.
MAX_FRAME = MAX_PACKET + 2 + (MAX_PACKET + 2) // 254 + 2


@dataclass(frozen=True)
class Quantity:
    """A quantity the nodes can send: wire id, name (as the models consume it), unit, scale."""

    qid: int
    name: str
    unit: str
    scale: float


#: The quantity table, shared with ``fb_frame.h`` (FB_Q_* constants). Append, never renumber.
QUANTITIES: tuple[Quantity, ...] = (
    Quantity(1, "energy_total_wh", "Wh", 1.0),
    Quantity(2, "power_w", "W", 0.1),
    Quantity(3, "water_level_m", "m", 0.001),
    Quantity(4, "pressure_hpa", "hPa", 0.01),
    Quantity(5, "battery_v", "V", 0.001),
    Quantity(6, "temperature_c", "°C", 0.01),
    Quantity(7, "pulse_count", "", 1.0),
    Quantity(8, "humidity_pct", "%", 0.01),
    Quantity(9, "water_temperature_c", "°C", 0.01),
    Quantity(10, "rssi_dbm", "dBm", 1.0),
    Quantity(11, "anomaly_score", "", 0.01),  # an edge node's model score (energy_edge_node)
    Quantity(12, "alarm", "", 1.0),  # an edge node's event: 1 raised, 0 cleared
)
BY_ID: Mapping[int, Quantity] = {q.qid: q for q in QUANTITIES}
BY_NAME: Mapping[str, Quantity] = {q.name: q for q in QUANTITIES}


@dataclass(frozen=True)
class Packet:
    """One decoded packet. ``readings`` keeps the wire order (name, value in the name's unit)."""

    node_id: int
    seq: int
    readings: tuple[tuple[str, float], ...] = ()
    version: int = VERSION


# --- CRC and COBS ------------------------------------------------------------------------------

def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR).

    >>> hex(crc16_ccitt(b"123456789"))
    '0x29b1'
    """
    crc = 0xFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ b]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: output has no 0x00 (the delimiter is not added).

    >>> cobs_encode(b"\\x11\\x00\\x22").hex(" ")
    '02 11 02 22'
    """
    out = bytearray()
    block = bytearray()
    full = False  # the last block written was a full 254-byte one (code 0xFF, no implied zero)
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            full = False
        else:
            block.append(b)
            full = False
            if len(block) == 254:
                out.append(255)
                out += block
                block.clear()
                full = True
    if not full:  # a data end right after a full block needs no final empty block
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; DecodeError on a zero byte or a code past the end."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise DecodeError("COBS: zero byte inside a frame")
        end = i + code
        if end > n:
            raise DecodeError(f"COBS: block of {code - 1} bytes runs past the frame end")
        block = data[i + 1 : end]
        if 0 in block:
            raise DecodeError("COBS: zero byte inside a frame")
        out += block
        i = end
        if code < 255 and i < n:
            out.append(0)
    return bytes(out)


# --- packet ------------------------------------------------------------------------------------

def encode_packet(pkt: Packet) -> bytes:
    """The bare packet (the LoRa payload). ValueError on unknown quantities or values out of range."""
    if not 0 <= pkt.node_id <= 0xFFFF or not 0 <= pkt.seq <= 0xFFFF:
        raise ValueError(f"node_id and seq must be 0..65535, got {pkt.node_id}, {pkt.seq}")
    if len(pkt.readings) > MAX_READINGS:
        raise ValueError(f"at most {MAX_READINGS} readings per packet, got {len(pkt.readings)}")
    out = bytearray(HEADER.pack(pkt.version, pkt.node_id, pkt.seq))
    for name, value in pkt.readings:
        q = BY_NAME.get(name)
        if q is None:
            raise ValueError(f"unknown quantity {name!r}; known: {', '.join(BY_NAME)}")
        if not math.isfinite(value):
            raise ValueError(f"{name}: value must be finite, got {value}")
        raw = round(value / q.scale)
        if not -(2**31) <= raw < 2**31:
            raise ValueError(f"{name}: {value} does not fit in int32 at scale {q.scale}")
        out += READING.pack(q.qid, raw)
    return bytes(out)


def decode_packet(data: bytes) -> Packet:
    """Decode a bare packet (as carried in a LoRa payload, no COBS, no CRC).

    Raises:
        DecodeError: unknown version, bad length, unknown quantity id.
    """
    if len(data) < HEADER.size:
        raise DecodeError(f"firmware_bridge packet too short: {len(data)} bytes, header is {HEADER.size}")
    version, node_id, seq = HEADER.unpack_from(data)
    if version != VERSION:
        raise DecodeError(f"firmware_bridge version {version} not supported (expected {VERSION})")
    body = len(data) - HEADER.size
    if body % READING.size or body // READING.size > MAX_READINGS:
        raise DecodeError(f"firmware_bridge packet: {body} reading bytes is not a multiple of {READING.size}")
    readings = []
    for off in range(HEADER.size, len(data), READING.size):
        qid, raw = READING.unpack_from(data, off)
        q = BY_ID.get(qid)
        if q is None:
            raise DecodeError(f"firmware_bridge: unknown quantity id {qid}")
        readings.append((q.name, _scaled(raw, q.scale)))
    return Packet(node_id, seq, tuple(readings), version)


def _scaled(raw: int, scale: float) -> float:
    # raw * 0.001 gives 1.2340000000000002; dividing by the exact inverse keeps decimals clean.
    inv = round(1.0 / scale)
    return raw / inv if scale < 1.0 and abs(inv * scale - 1.0) < 1e-12 else raw * scale


def packet_values(pkt: Packet) -> dict[str, tuple[float, str]]:
    """Plain data: quantity name -> (value, unit). A repeated quantity keeps its last value."""
    return {name: (value, BY_NAME[name].unit) for name, value in pkt.readings}


def encode_frame(pkt: Packet) -> bytes:
    """The serial frame: ``COBS(packet + crc16 BE) 0x00``."""
    body = encode_packet(pkt)
    return cobs_encode(body + struct.pack(">H", crc16_ccitt(body))) + b"\x00"


def decode_frame(frame: bytes) -> Packet:
    """Decode one serial frame (with or without its trailing 0x00).

    Raises:
        DecodeError: bad COBS, bad CRC, or a bad packet inside.
    """
    if frame.endswith(b"\x00"):
        frame = frame[:-1]
    raw = cobs_decode(frame)
    if len(raw) < HEADER.size + 2:
        raise DecodeError(f"firmware_bridge frame too short: {len(raw)} bytes after COBS")
    body, (crc,) = raw[:-2], struct.unpack(">H", raw[-2:])
    if crc16_ccitt(body) != crc:
        raise DecodeError(f"firmware_bridge CRC: expected {crc16_ccitt(body):#06x}, got {crc:#06x}")
    return decode_packet(body)


# --- stream decoder and loss counting ----------------------------------------------------------

@dataclass
class FbStats:
    """Counters of one decoder; never reset by it."""

    bytes_in: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    bytes_skipped: int = 0
    frames_lost: int = 0
    last_error: str = ""


@dataclass
class SeqTracker:
    """Counts lost packets per node from sequence-number gaps (mod 65536).

    A gap larger than ``reset_gap`` (or a step backwards) is taken as a node reboot, not as
    thousands of lost packets.
    """

    reset_gap: int = 1024
    last: dict[int, int] = field(default_factory=dict)
    lost: dict[int, int] = field(default_factory=dict)
    resets: dict[int, int] = field(default_factory=dict)
    duplicates: int = 0

    def update(self, node_id: int, seq: int) -> int:
        """Record a packet; return how many packets of this node were lost just before it."""
        prev = self.last.get(node_id)
        self.last[node_id] = seq
        if prev is None:
            return 0
        gap = (seq - prev) & 0xFFFF
        if gap == 0:
            self.duplicates += 1
            return 0
        if gap > self.reset_gap:
            self.resets[node_id] = self.resets.get(node_id, 0) + 1
            return 0
        self.lost[node_id] = self.lost.get(node_id, 0) + gap - 1
        return gap - 1


@dataclass
class FbDecoder:
    """Incremental serial decoder: feed bytes, get packets. Bad frames are counted, not raised.

    The bytes before the first 0x00 are decoded if they form a valid frame and otherwise counted
    as skipped, not bad (we joined the line mid-frame). An over-long run without a delimiter is
    dropped as garbage.
    """

    stats: FbStats = field(default_factory=FbStats)
    seq: SeqTracker = field(default_factory=SeqTracker)
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _synced: bool = field(default=False, repr=False)

    def feed(self, data: bytes) -> Iterator[Packet]:
        """Feed raw bytes; yield each valid packet they complete."""
        self.stats.bytes_in += len(data)
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                self._append(data[start:])
                return
            self._append(data[start:end])
            start = end + 1
            if not self._buf:
                self._synced = True
                continue  # back-to-back delimiters: idle line
            frame = bytes(self._buf)
            self._buf.clear()
            try:
                pkt = decode_frame(frame)
            except DecodeError as err:
                if self._synced:
                    self.stats.frames_bad += 1
                    self.stats.last_error = str(err)
                else:  # the tail of a frame we joined in the middle of: not an error
                    self.stats.bytes_skipped += len(frame)
                self._synced = True
                continue
            self._synced = True
            self.stats.frames_ok += 1
            self.stats.frames_lost += self.seq.update(pkt.node_id, pkt.seq)
            yield pkt

    def _append(self, chunk: bytes) -> None:
        self._buf += chunk
        if len(self._buf) > MAX_FRAME:
            if self._synced:
                self.stats.frames_bad += 1
                self.stats.last_error = f"no frame delimiter within {MAX_FRAME} bytes"
            else:
                self.stats.bytes_skipped += len(self._buf)
            self._buf.clear()
            self._synced = False
