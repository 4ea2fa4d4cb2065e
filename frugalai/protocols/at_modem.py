"""AT-command LoRa modems: parsing their reply lines, and what each reply means (pure).

Two modules are covered (see docs/protocols.md §5):

* Microchip **RN2483** (57600 8N1, CR LF): raw LoRa with ``radio rx 0`` -> ``ok`` then
  ``radio_rx <hex>`` (some firmware prints two spaces) or ``radio_err``; LoRaWAN with
  ``mac tx uncnf <port> <hex>`` -> a first reply (``ok``, ``not_joined``, ``no_free_ch``...) and,
  after ``ok``, a second one (``mac_tx_ok``, ``mac_rx <port> <hex>``, ``mac_err``...).
* RAKwireless **RAK3172** with RUI3 (115200 8N1): ``OK`` or an ``AT_...`` error, plus
  asynchronous ``+EVT:`` lines such as ``+EVT:RXP2P:<rssi>:<snr>:<hex>``.

Nothing here touches a port: the drivers in ``sources/`` and ``uplink/`` feed lines in and act
on the :class:`TxOutcome` a reply maps to. Malformed lines raise
:class:`~frugalai.errors.DecodeError`, which the drivers count and skip.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from enum import Enum

from frugalai.errors import DecodeError


@dataclass(frozen=True)
class RxPacket:
    """One LoRa packet a modem received. rssi/snr are None when the modem does not say."""

    payload: bytes
    rssi: float | None = None
    snr: float | None = None


def hex_payload(text: str) -> bytes:
    """Decode the hex a modem prints; DecodeError on odd length or a non-hex character.

    >>> hex_payload("48656C6C6F")
    b'Hello'
    """
    text = text.strip()
    if len(text) % 2:
        raise DecodeError(f"odd-length hex payload ({len(text)} chars): {text[:40]!r}")
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError) as err:
        raise DecodeError(f"not hex: {text[:40]!r}") from err


# --- RAK3172 / RUI3 ------------------------------------------------------------------------

RAK_RX_PREFIX = "+EVT:RXP2P:"
#: rssi/snr are a few digits; a longer number is a corrupt line, not a value (bounded here so
#: no float or int conversion ever sees an unbounded string).
_RAK_RX = re.compile(r"^\+EVT:RXP2P:(-?\d{1,4}(?:\.\d{1,3})?):(-?\d{1,4}(?:\.\d{1,3})?):"
                     r"([0-9A-Fa-f]*)$", re.ASCII)
#: the longest decimal number any reply field holds (a frequency in Hz: 9 digits)
MAX_DIGITS = 10
_NUMBER = re.compile(r"^-?\d{1,10}(?:\.\d{1,3})?$", re.ASCII)  # 10 = MAX_DIGITS


def modem_number(text: str) -> float | None:
    """A decimal number a modem printed (``radio get snr`` -> ``-7``), None for anything else.

    Bounded: an over-long digit string, ``nan``, ``inf`` or an exponent is not a modem's number.

    >>> modem_number("-7"), modem_number("12.5"), modem_number("9" * 400), modem_number("nan")
    (-7.0, 12.5, None, None)
    """
    text = text.strip()
    return float(text) if _NUMBER.match(text) else None
#: RX timeouts / errors as the RAK demo code and the RUI3 library spell them.
RAK_RX_NOISE = ("+EVT:RXP2P RECEIVE TIMEOUT", "+EVT:RXP2P_RECEIVE_TIMEOUT",
                "+EVT:RXP2P RECEIVE ERROR", "+EVT:RXP2P_RECEIVE_ERROR")


def parse_rak_rx(line: str) -> RxPacket:
    """Parse ``+EVT:RXP2P:<rssi>:<snr>:<hex>``.

    >>> parse_rak_rx("+EVT:RXP2P:-28:5:48656C6C6F2052616B33313732")
    RxPacket(payload=b'Hello Rak3172', rssi=-28.0, snr=5.0)
    """
    m = _RAK_RX.match(line.strip())
    if m is None:
        raise DecodeError(f"RAK3172: expected +EVT:RXP2P:<rssi>:<snr>:<hex>, got {line!r}")
    return RxPacket(hex_payload(m.group(3)), float(m.group(1)), float(m.group(2)))


#: RUI3 final replies. ``OK`` ends a command; each ``AT_...`` is an error.
RAK_FINAL = ("OK", "AT_ERROR", "AT_PARAM_ERROR", "AT_BUSY_ERROR", "AT_TEST_PARAM_OVERFLOW",
             "AT_NO_CLASSB_ENABLE", "AT_NO_NETWORK_JOINED", "AT_RX_ERROR",
             "AT_MODE_NO_SUPPORT", "AT_COMMAND_NOT_FOUND")


def rak_is_final(line: str) -> bool:
    return line in RAK_FINAL


def parse_rak_p2p(value: str) -> tuple[int, int, int, int, int, int]:
    """``AT+P2P=?`` read-back ``freq:sf:bw:cr:preamble:power`` (the ``AT+P2P=`` prefix optional).

    >>> parse_rak_p2p("AT+P2P=868100000:7:125:0:8:14")
    (868100000, 7, 125, 0, 8, 14)
    """
    text = value.strip()
    if text.startswith("AT+P2P="):
        text = text[len("AT+P2P="):]
    parts = text.split(":")
    if len(parts) != 6 or not all(_NUMBER.match(p) and "." not in p for p in parts):
        raise DecodeError(f"RAK3172: expected freq:sf:bw:cr:preamble:power, got {value!r}")
    f, sf, bw, cr, pre, pwr = (int(p) for p in parts)
    return f, sf, bw, cr, pre, pwr


# --- RN2483 --------------------------------------------------------------------------------

def parse_rn_rx(line: str) -> RxPacket:
    """Parse ``radio_rx <hex>`` (one or two spaces; rssi/snr are asked for separately).

    >>> parse_rn_rx("radio_rx  48656C6C6F").payload
    b'Hello'
    """
    parts = line.split()
    if len(parts) != 2 or parts[0] != "radio_rx":
        raise DecodeError(f"RN2483: expected 'radio_rx <hex>', got {line!r}")
    return RxPacket(hex_payload(parts[1]))


def parse_rn_downlink(line: str) -> tuple[int, bytes]:
    """Parse ``mac_rx <port> <hex>`` into (port, payload).

    >>> parse_rn_downlink("mac_rx 1 54657374696E6720313233")
    (1, b'Testing 123')
    """
    parts = line.split()
    if (len(parts) not in (2, 3) or parts[0] != "mac_rx" or not parts[1].isdigit()
            or not parts[1].isascii() or len(parts[1]) > 3):
        raise DecodeError(f"RN2483: expected 'mac_rx <port> <hex>', got {line!r}")
    return int(parts[1]), hex_payload(parts[2] if len(parts) == 3 else "")


# --- What a transmit reply means -----------------------------------------------------------

class TxOutcome(Enum):
    """What the uplink does with a modem's answer to a send."""

    PENDING = "pending"      # first reply ok: wait for the second one
    SENT = "sent"            # on air: the events are delivered
    RETRY = "retry"          # transient (busy, duty cycle, no ack): keep events, try later
    REJOIN = "rejoin"        # the session is gone: join again, keep events
    RESUME = "resume"        # RN2483 LoRaWAN stack paused: ``mac resume``, keep events
    TOO_LONG = "too_long"    # payload too long for the current data rate
    ERROR = "error"          # a configuration or driver bug: UplinkError


#: RN2483 ``mac tx`` first replies (rn2xx3.cpp txCommand) and second replies.
RN2483_TX = {
    "ok": TxOutcome.PENDING,
    "invalid_param": TxOutcome.ERROR,
    "not_joined": TxOutcome.REJOIN,
    "no_free_ch": TxOutcome.RETRY,
    "silent": TxOutcome.REJOIN,
    "frame_counter_err_rejoin_needed": TxOutcome.REJOIN,
    "busy": TxOutcome.RETRY,
    "mac_paused": TxOutcome.RESUME,
    "invalid_data_len": TxOutcome.TOO_LONG,
    "mac_tx_ok": TxOutcome.SENT,
    "mac_err": TxOutcome.RETRY,
}

#: RAK3172 ``AT+SEND`` replies and the events that follow an ``OK``.
RAK3172_TX = {
    "OK": TxOutcome.PENDING,
    "AT_NO_NETWORK_JOINED": TxOutcome.REJOIN,
    "AT_BUSY_ERROR": TxOutcome.RETRY,
    "AT_PARAM_ERROR": TxOutcome.ERROR,
    "AT_ERROR": TxOutcome.RETRY,
    "AT_COMMAND_NOT_FOUND": TxOutcome.ERROR,
    "AT_MODE_NO_SUPPORT": TxOutcome.ERROR,
    "+EVT:TX_DONE": TxOutcome.SENT,
    "+EVT:SEND_CONFIRMED_OK": TxOutcome.SENT,
    "+EVT:SEND_CONFIRMED_FAILED": TxOutcome.RETRY,
}


def classify_tx(modem: str, line: str) -> TxOutcome:
    """Map one reply line of ``modem`` (``rn2483`` or ``rak3172``) to a :class:`TxOutcome`.

    An unknown line is a DecodeError (the driver counts it and waits for the next line).

    >>> classify_tx("rn2483", "no_free_ch"), classify_tx("rn2483", "mac_rx 1 AB")
    (<TxOutcome.RETRY: 'retry'>, <TxOutcome.SENT: 'sent'>)
    >>> classify_tx("rak3172", "AT_NO_NETWORK_JOINED")
    <TxOutcome.REJOIN: 'rejoin'>
    """
    line = line.strip()
    if modem == "rn2483":
        if line.startswith("mac_rx"):
            parse_rn_downlink(line)
            return TxOutcome.SENT
        table = RN2483_TX
    elif modem == "rak3172":
        if line.startswith("+EVT:RX_"):  # a downlink after the uplink: still sent
            return TxOutcome.SENT
        table = RAK3172_TX
    else:
        raise ValueError(f"unknown modem {modem!r}; known: rak3172, rn2483")
    try:
        return table[line]
    except KeyError:
        raise DecodeError(f"{modem}: unexpected reply to a send: {line!r}") from None


#: Join answers: RN2483 ``accepted``/``denied`` after ``ok``; RUI3 ``+EVT:JOINED`` or
#: ``+EVT:JOIN_FAILED_...`` after ``OK``.
JOIN_OK = ("accepted", "+EVT:JOINED")


def join_result(line: str) -> bool | None:
    """True for a join accepted, False for refused/failed, None for a line that says neither.

    >>> join_result("accepted"), join_result("+EVT:JOIN_FAILED_RX_TIMEOUT"), join_result("ok")
    (True, False, None)
    """
    line = line.strip()
    if line in JOIN_OK:
        return True
    if line == "denied" or line.startswith("+EVT:JOIN_FAILED") or line.startswith(
            "+EVT:JOIN FAILED"):
        return False
    return None
