"""Modbus RTU codec for energy meters (Eastron SDM120 / SDM630 style): pure, no I/O.

Wire format (Modbus over serial line V1.02)::

    request   slave(1) func(1) addr(2 BE) count(2 BE) crc(2, low byte first)
    response  slave(1) func(1) bytecount(1) registers(2*count, BE) crc(2)
    exception slave(1) func|0x80(1) code(1) crc(2)

Eastron meters expose every measurement as an IEEE-754 float32 in two *input* registers (function
0x04), high word first (ABCD). A request may cover at most 30 values (60 registers); the meter
answers a larger one with an exception, so :func:`plan_blocks` splits a register map into blocks.

>>> build_read_request(1, 0x0000, 2).hex(" ")
'01 04 00 00 00 02 71 cb'
>>> parse_read_response(bytes.fromhex("010404436680006fdf"), slave=1, count=2)
(17254, 32768)
>>> registers_to_float32((17254, 32768))
230.5
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from frugalai.errors import DecodeError

READ_HOLDING = 0x03
READ_INPUT = 0x04
#: Eastron meters refuse more than 30 float values (60 registers) in one request.
MAX_REGISTERS_PER_REQUEST = 60

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (init 0xFFFF, reflected poly 0xA001, no final XOR).

    Sent low byte first. A whole frame including its CRC has residue 0.

    >>> hex(crc16_modbus(b"123456789"))
    '0x4b37'
    """
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def with_crc(pdu: bytes) -> bytes:
    """Append the CRC, low byte first (the Modbus RTU order)."""
    crc = crc16_modbus(pdu)
    return pdu + bytes((crc & 0xFF, crc >> 8))


def check_crc(frame: bytes) -> bytes:
    """Return the frame without its CRC; DecodeError if it is too short or the CRC is wrong."""
    if len(frame) < 4:
        raise DecodeError(f"Modbus frame too short ({len(frame)} bytes): {frame.hex(' ')}")
    if crc16_modbus(frame) != 0:
        got = frame[-2] | frame[-1] << 8
        raise DecodeError(
            f"Modbus CRC: expected {crc16_modbus(frame[:-2]):#06x}, got {got:#06x} in {frame.hex(' ')}"
        )
    return frame[:-2]


class ModbusException(DecodeError):
    """The slave answered with a Modbus exception (a well-formed "no")."""

    def __init__(self, slave: int, function: int, code: int) -> None:
        self.slave, self.function, self.code = slave, function, code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"Modbus slave {slave} function {function:#04x}: exception {code} ({name})")


def _check_slave(slave: int) -> None:
    if not 1 <= slave <= 247:
        raise ValueError(f"Modbus slave id must be 1..247, got {slave}")


def build_read_request(slave: int, address: int, count: int, function: int = READ_INPUT) -> bytes:
    """A read request (function 0x04 by default) for ``count`` registers from PDU ``address``.

    >>> build_read_request(1, 0x0156, 2).hex(" ")
    '01 04 01 56 00 02 90 27'
    """
    _check_slave(slave)
    if function not in (READ_HOLDING, READ_INPUT):
        raise ValueError(f"only read functions 0x03/0x04 are supported, got {function:#04x}")
    if not 1 <= count <= 125 or not 0 <= address <= 0xFFFF or address + count > 0x10000:
        raise ValueError(f"bad register range: address {address}, count {count}")
    return with_crc(struct.pack(">BBHH", slave, function, address, count))


@dataclass(frozen=True)
class ReadRequest:
    """A decoded read request (what a slave, e.g. the emulator, receives)."""

    slave: int
    function: int
    address: int
    count: int


def parse_read_request(frame: bytes) -> ReadRequest:
    """Decode an 8-byte read request; DecodeError on a bad CRC, length or function."""
    body = check_crc(frame)
    if len(body) != 6:
        raise DecodeError(f"Modbus read request must be 8 bytes, got {len(frame)}")
    slave, function, address, count = struct.unpack(">BBHH", body)
    if function not in (READ_HOLDING, READ_INPUT):
        raise DecodeError(f"Modbus: unsupported function {function:#04x}")
    return ReadRequest(slave, function, address, count)


def build_read_response(slave: int, registers: Iterable[int], function: int = READ_INPUT) -> bytes:
    """A read response carrying ``registers`` (used by the emulator and the tests).

    >>> build_read_response(1, (0x4366, 0x8000)).hex(" ")
    '01 04 04 43 66 80 00 6f df'
    """
    regs = list(registers)
    return with_crc(bytes((slave, function, 2 * len(regs))) + struct.pack(f">{len(regs)}H", *regs))


def build_exception(slave: int, function: int, code: int) -> bytes:
    """An exception response: function with the high bit set, then the code."""
    return with_crc(bytes((slave, function | 0x80, code)))


def response_length(head: bytes, function: int = READ_INPUT) -> int | None:
    """Total length of the response that starts with ``head``, once 3 bytes are known.

    Modbus RTU delimits frames by silence; a poller that knows the request can instead read
    exactly this many bytes. Returns None while fewer than 3 bytes are known.
    """
    if len(head) < 3:
        return None
    if head[1] == function | 0x80:
        return 5
    return 5 + head[2]


def parse_read_response(
    frame: bytes, *, slave: int, count: int, function: int = READ_INPUT
) -> tuple[int, ...]:
    """Registers of a read response, checked against the request that caused it.

    Raises:
        ModbusException: the slave answered with an exception.
        DecodeError: bad CRC, wrong slave or function, wrong byte count.
    """
    body = check_crc(frame)
    if body[0] != slave:
        raise DecodeError(f"Modbus: answer from slave {body[0]}, expected {slave}")
    if body[1] == function | 0x80 and len(body) == 3:
        raise ModbusException(slave, function, body[2])
    if body[1] != function:
        raise DecodeError(f"Modbus: answer for function {body[1]:#04x}, expected {function:#04x}")
    if len(body) < 3 or body[2] != 2 * count or len(body) != 3 + 2 * count:
        raise DecodeError(f"Modbus: expected {2 * count} data bytes, got frame {frame.hex(' ')}")
    return struct.unpack(f">{count}H", body[3:])


def registers_to_float32(regs: tuple[int, ...] | list[int], index: int = 0) -> float:
    """IEEE-754 float32 from two registers, high word first (Eastron's ABCD order)."""
    return float(struct.unpack(">f", struct.pack(">HH", regs[index], regs[index + 1]))[0])


def float32_to_registers(value: float) -> tuple[int, int]:
    """The two registers (high word first) that carry ``value`` as float32."""
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return int(hi), int(lo)


# --- register maps -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Register:
    """One float32 quantity: PDU address (register number − 30001), unit, and a scale factor.

    ``scale`` converts the meter's unit into the name's unit (Eastron kWh -> ``*_wh``: 1000).
    """

    name: str
    address: int
    unit: str
    scale: float = 1.0


RegisterMap = Mapping[str, Register]


def _map(rows: Iterable[tuple[str, int, str, float]]) -> dict[str, Register]:
    return {name: Register(name, addr, unit, scale) for name, addr, unit, scale in rows}


#: Eastron SDM120 (single phase), protocols.md §6 (reaper7/SDM_Energy_Meter SDM.h).
SDM120: RegisterMap = _map([
    ("voltage_v", 0x0000, "V", 1.0),
    ("current_a", 0x0006, "A", 1.0),
    ("power_w", 0x000C, "W", 1.0),
    ("apparent_power_va", 0x0012, "VA", 1.0),
    ("reactive_power_var", 0x0018, "VAr", 1.0),
    ("power_factor", 0x001E, "", 1.0),
    ("frequency_hz", 0x0046, "Hz", 1.0),
    ("energy_import_wh", 0x0048, "Wh", 1000.0),
    ("energy_export_wh", 0x004A, "Wh", 1000.0),
    ("energy_total_wh", 0x0156, "Wh", 1000.0),
])

#: Eastron SDM630 (three phase): the SDM120 map plus phases 2-3 and total system power.
SDM630: RegisterMap = {
    **SDM120,
    **_map([
        ("voltage_l2_v", 0x0002, "V", 1.0),
        ("voltage_l3_v", 0x0004, "V", 1.0),
        ("current_l2_a", 0x0008, "A", 1.0),
        ("current_l3_a", 0x000A, "A", 1.0),
        ("power_l2_w", 0x000E, "W", 1.0),
        ("power_l3_w", 0x0010, "W", 1.0),
        ("power_total_w", 0x0034, "W", 1.0),
    ]),
}

BUILTIN_MAPS: Mapping[str, RegisterMap] = {"sdm120": SDM120, "sdm630": SDM630, "eastron": SDM630}


def register_map_from_dict(table: Mapping[str, object], *, where: str = "map") -> dict[str, Register]:
    """Build a register map from a TOML table ``name = {address = 0x0000, unit = "V", scale = 1}``.

    ``address`` is the PDU address; a register number ``30001..39999`` is accepted and converted.

    Raises:
        ValueError: naming the bad entry (``where.name.address``), for the config layer to wrap.
    """
    out: dict[str, Register] = {}
    for name, entry in table.items():
        key = f"{where}.{name}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{key}: expected a table like {{address = 0, unit = \"V\"}}, got {entry!r}")
        unknown = set(entry) - {"address", "unit", "scale"}
        if unknown:
            raise ValueError(f"{key}: unknown key(s) {sorted(unknown)}; known: address, unit, scale")
        addr = entry.get("address")
        if not isinstance(addr, int) or isinstance(addr, bool):
            raise ValueError(f"{key}.address: expected an integer, got {addr!r}")
        if 30001 <= addr <= 39999:
            addr -= 30001
        if not 0 <= addr <= 0xFFFE:
            raise ValueError(f"{key}.address: expected 0..65534 or 30001..39999, got {addr}")
        unit = entry.get("unit", "")
        if not isinstance(unit, str):
            raise ValueError(f"{key}.unit: expected a string, got {unit!r}")
        scale = entry.get("scale", 1.0)
        if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale):
            raise ValueError(f"{key}.scale: expected a finite number, got {scale!r}")
        out[name] = Register(name, addr, unit, float(scale))
    if not out:
        raise ValueError(f"{where}: the register map is empty")
    return out


@dataclass(frozen=True)
class Block:
    """One read request's worth of registers and the quantities inside it."""

    address: int
    count: int
    registers: tuple[Register, ...]


def plan_blocks(regmap: RegisterMap, max_registers: int = MAX_REGISTERS_PER_REQUEST,
                max_gap: int = 8) -> list[Block]:
    """Group a map into few read requests: adjacent quantities share a request.

    Two quantities share a block when the gap between them is at most ``max_gap`` registers (the
    unused registers cost 2 bytes each, cheaper than another request round trip at 2400 baud) and
    the block stays within ``max_registers``.
    """
    regs = sorted(regmap.values(), key=lambda r: r.address)
    blocks: list[Block] = []
    cur: list[Register] = []
    for reg in regs:
        if cur:
            start = cur[0].address
            end = max(r.address + 2 for r in cur)
            if reg.address - end <= max_gap and reg.address + 2 - start <= max_registers:
                cur.append(reg)
                continue
            blocks.append(Block(start, end - start, tuple(cur)))
        cur = [reg]
    if cur:
        start = cur[0].address
        end = max(r.address + 2 for r in cur)
        blocks.append(Block(start, end - start, tuple(cur)))
    return blocks


def block_values(block: Block, regs: tuple[int, ...]) -> dict[str, tuple[float, str]]:
    """Decode a block's registers into name -> (value, unit); NaN/inf are dropped (not a value)."""
    out: dict[str, tuple[float, str]] = {}
    for reg in block.registers:
        value = registers_to_float32(regs, reg.address - block.address) * reg.scale
        if math.isfinite(value):
            out[reg.name] = (value, reg.unit)
    return out
