"""Drivers for AT-command LoRa modems (RAK3172 RUI3, Microchip RN2483) over an :class:`AtLink`.

One driver per module, same methods: ``wake`` (probe, and reset when it does not answer),
``configure_p2p`` + ``start_rx`` + ``handle_line`` for receiving sensor nodes point to point,
``configure_lorawan`` + ``join`` + ``send`` for sending the gateway's own events over LoRaWAN.
Every setting is read back after it is written: a module that silently keeps its old
frequency would otherwise listen to nothing for years.

Reply parsing and the meaning of each reply live in :mod:`frugalai.protocols.at_modem` (pure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar, Optional

from frugalai.errors import DecodeError, SourceError
from frugalai.modems.at_link import AtLink, AtTimeout
from frugalai.protocols.at_modem import (
    RAK3172_TX,
    RAK_FINAL,
    RAK_RX_NOISE,
    RAK_RX_PREFIX,
    RN2483_TX,
    RxPacket,
    TxOutcome,
    classify_tx,
    hex_payload,
    join_result,
    modem_number,
    parse_rak_p2p,
    parse_rak_rx,
    parse_rn_downlink,
    parse_rn_rx,
)

Downlink = Optional[tuple[int, bytes]]
#: (what it means, the modem's last reply, a downlink that came back)
SendResult = tuple[TxOutcome, str, Downlink]


@dataclass(frozen=True)
class RadioSettings:
    """Raw LoRa (P2P) settings. ``cr`` is 1..4 for 4/5..4/8, ``bw`` in kHz."""

    freq: int = 868_100_000
    sf: int = 7
    bw: int = 125
    cr: int = 1
    preamble: int = 8
    power: int = 14

    def validate(self) -> None:
        if not 7 <= self.sf <= 12:
            raise ValueError(f"sf must be 7..12, got {self.sf}")
        if self.bw not in (125, 250, 500):
            raise ValueError(f"bw must be 125, 250 or 500 (kHz), got {self.bw}")
        if not 1 <= self.cr <= 4:
            raise ValueError(f"cr must be 1..4 (4/5..4/8), got {self.cr}")
        if not 863_000_000 <= self.freq <= 870_000_000:
            raise ValueError(f"freq must be in the EU868 band (Hz), got {self.freq}")


class ModemDriver:
    """What both modules share; subclasses hold the dialogue."""

    name: ClassVar[str] = ""
    baud: ClassVar[int] = 0

    def __init__(self, link: AtLink, timeout: float = 2.0, reset_wait_s: float = 0.3) -> None:
        self.link = link
        self.timeout = timeout
        self.reset_wait_s = reset_wait_s
        self.resets = 0
        #: receive errors the modem reported (CRC failures on the air, RX timeouts)
        self.rx_errors = 0

    def probe(self) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        """Make sure the modem answers: probe, else reset and probe again; AtTimeout if dead."""
        if self.probe():
            return
        self.resets += 1
        self.reset()
        time.sleep(self.reset_wait_s)
        self.link.drain()  # the boot banner, and answers to what we said while it was hung
        if not self.probe():
            raise AtTimeout(f"{self.name} on {self.link.port}: no answer, even after a reset")

    def ok(self, text: str, expect: str = "ok") -> None:
        raise NotImplementedError

    def configure_p2p(self, s: RadioSettings) -> None:
        raise NotImplementedError

    def start_rx(self) -> None:
        raise NotImplementedError

    def handle_line(self, line: str) -> Optional[RxPacket]:
        raise NotImplementedError

    def keepalive(self) -> bool:
        raise NotImplementedError

    def configure_lorawan(self, dr: int) -> None:
        raise NotImplementedError

    def joined(self) -> bool:
        raise NotImplementedError

    def join(self, timeout: float) -> bool:
        raise NotImplementedError

    def send(self, port: int, payload: bytes, timeout: float) -> SendResult:
        raise NotImplementedError


class Rak3172(ModemDriver):
    """RAK3172 with RUI3 firmware (115200 8N1). ``AT+P2P`` bandwidth in kHz, CR index 0 = 4/5."""

    name = "rak3172"
    baud = 115200
    #: 65533: continuous RX that still accepts commands (the RUI3 library's P2P example).
    PRECV_CONTINUOUS = 65533

    def _final(self, line: str) -> bool:
        return line in RAK_FINAL

    @staticmethod
    def _event(line: str) -> bool:
        return line.startswith("+EVT:")

    def probe(self) -> bool:
        try:
            _, final = self.link.command("AT", self._final, timeout=0.5, keep=self._event)
        except AtTimeout:
            return False
        return final == "OK"

    def reset(self) -> None:
        self.link.write_line("ATZ")

    def ok(self, text: str, expect: str = "OK") -> None:
        """Send a command that must answer OK; SourceError naming the reply otherwise."""
        _, final = self.link.command(text, self._final, self.timeout, keep=self._event)
        if final != expect:
            raise SourceError(f"{self.name}: {text!r} answered {final}")

    def query(self, text: str) -> str:
        """``AT+X=?`` -> the value after ``AT+X=``."""
        lines, final = self.link.command(text, self._final, self.timeout, keep=self._event)
        prefix = text[:-1]
        values = [x[len(prefix):] for x in lines if x.startswith(prefix)]
        if final != "OK" or not values:
            raise SourceError(f"{self.name}: {text!r} answered {[*lines, final]}")
        return values[-1]

    def _mode(self, nwm: int) -> None:
        if self.query("AT+NWM=?") != str(nwm):
            self.ok(f"AT+NWM={nwm}")
            time.sleep(self.reset_wait_s)  # the module may reboot to switch mode
            self.wake()

    # --- P2P --------------------------------------------------------------------------------
    def configure_p2p(self, s: RadioSettings) -> None:
        self._mode(0)
        want = (s.freq, s.sf, s.bw, s.cr - 1, s.preamble, s.power)
        self.ok("AT+P2P=" + ":".join(str(v) for v in want))
        got = parse_rak_p2p(self.query("AT+P2P=?"))
        if got != want:
            raise SourceError(f"{self.name}: settings read back {got}, wrote {want}")

    def start_rx(self) -> None:
        self.ok(f"AT+PRECV={self.PRECV_CONTINUOUS}")

    def handle_line(self, line: str) -> Optional[RxPacket]:
        """A packet for an ``+EVT:RXP2P:`` line (DecodeError if malformed), else None."""
        if line.startswith(RAK_RX_PREFIX):
            return parse_rak_rx(line)
        if line in RAK_RX_NOISE:  # a CRC error or a timed receive that ended: listen again
            self.rx_errors += 1
            self.start_rx()
        return None

    def keepalive(self) -> bool:
        return self.probe()

    # --- LoRaWAN ----------------------------------------------------------------------------
    def configure_lorawan(self, dr: int) -> None:
        self._mode(1)
        self.ok(f"AT+DR={dr}")
        if self.query("AT+DR=?") != str(dr):
            raise SourceError(f"{self.name}: data rate read back differs from DR{dr}")

    def joined(self) -> bool:
        return self.query("AT+NJS=?") == "1"

    def join(self, timeout: float) -> bool:
        self.ok("AT+JOIN=1:0:10:8")  # join now, no auto-join, 10 s between attempts, 8 tries
        _, final = self.link.expect(lambda x: join_result(x) is not None, timeout,
                                    what="+EVT:JOINED")
        return bool(join_result(final))

    def send(self, port: int, payload: bytes, timeout: float) -> SendResult:
        text = f"AT+SEND={port}:{payload.hex().upper()}"
        _, first = self.link.command(text, lambda x: x in RAK3172_TX, self.timeout,
                                     keep=self._event)
        outcome = classify_tx(self.name, first)
        if outcome is not TxOutcome.PENDING:
            return outcome, first, None
        lines, second = self.link.expect(
            lambda x: x.startswith("+EVT:TX_DONE") or x.startswith("+EVT:SEND_CONFIRMED"),
            timeout, what="+EVT:TX_DONE")
        downlink: Downlink = None
        for line in lines:
            if line.startswith("+EVT:RX_"):
                parts = line.split(":")
                try:
                    downlink = (int(parts[-2]), hex_payload(parts[-1]))
                except (ValueError, IndexError):
                    raise DecodeError(f"{self.name}: malformed downlink {line!r}") from None
            elif line.startswith("+EVT:"):
                self.link.pending.append(line)
        return classify_tx(self.name, second), second, downlink


class Rn2483(ModemDriver):
    """Microchip RN2483 (57600 8N1). Raw radio needs the LoRaWAN stack paused (``mac pause``)."""

    name = "rn2483"
    baud = 57600
    #: Second replies that arrive on their own, after a first ``ok``.
    ASYNC = ("radio_rx", "radio_err", "radio_tx_ok", "mac_tx_ok", "mac_rx", "mac_err",
             "accepted", "denied")
    SYNC_WORD = "12"  # private networks (P2P); 34 is LoRaWAN public

    def _async(self, line: str) -> bool:
        return line.split(" ", 1)[0] in self.ASYNC

    def _reply(self, line: str) -> bool:
        return not self._async(line)

    def say(self, text: str) -> str:
        """Send one command; its (first) reply."""
        _, reply = self.link.command(text, self._reply, self.timeout, keep=self._async)
        return reply

    def ok(self, text: str, expect: str = "ok") -> None:
        reply = self.say(text)
        if reply != expect:
            raise SourceError(f"{self.name}: {text!r} answered {reply}")

    def probe(self) -> bool:
        try:
            return self.say("sys get ver").startswith("RN2")
        except AtTimeout:
            return False

    def reset(self) -> None:
        self.link.write_line("sys reset")

    # --- P2P --------------------------------------------------------------------------------
    def configure_p2p(self, s: RadioSettings) -> None:
        reply = self.say("mac pause")
        if not reply.isdigit():
            raise SourceError(f"{self.name}: 'mac pause' answered {reply}")
        want = {"mod": "lora", "freq": str(s.freq), "sf": f"sf{s.sf}", "bw": str(s.bw),
                "cr": f"4/{s.cr + 4}", "crc": "on", "sync": self.SYNC_WORD,
                "prlen": str(s.preamble), "pwr": str(s.power), "wdt": "0"}
        for key, value in want.items():
            self.ok(f"radio set {key} {value}")
        for key in ("freq", "sf", "bw", "cr"):
            got = self.say(f"radio get {key}")
            if got != want[key]:
                raise SourceError(f"{self.name}: radio {key} read back {got!r}, wrote "
                                  f"{want[key]!r}")

    def start_rx(self) -> None:
        reply = self.say("radio rx 0")
        if reply == "busy":  # still in a receive we lost track of
            self.say("radio rxstop")
            self.ok("radio rx 0")
        elif reply != "ok":
            raise SourceError(f"{self.name}: 'radio rx 0' answered {reply}")

    def handle_line(self, line: str) -> Optional[RxPacket]:
        """A packet for ``radio_rx`` (with snr/rssi asked for), None otherwise; listens again."""
        if line.startswith("radio_rx"):
            try:
                packet = parse_rn_rx(line)
            except DecodeError:
                self.start_rx()  # the radio left RX with this packet, good or bad
                raise
            snr = self._number(self.say("radio get snr"))
            rssi = self._number(self.say("radio get pktrssi"))  # firmware >= 1.0.5 only
            self.start_rx()
            return RxPacket(packet.payload, rssi, snr)
        if line == "radio_err":  # watchdog or a receive (CRC) error: listen again
            self.rx_errors += 1
            self.start_rx()
        return None

    @staticmethod
    def _number(text: str) -> Optional[float]:
        return modem_number(text)  # bounded: no "nan", no 400-digit number

    def keepalive(self) -> bool:
        try:
            if self.say("radio rxstop") != "ok":
                return False
            self.start_rx()
        except (AtTimeout, SourceError):
            return False
        return True

    # --- LoRaWAN ----------------------------------------------------------------------------
    def configure_lorawan(self, dr: int) -> None:
        self.ok("mac resume")
        self.ok(f"mac set dr {dr}")
        if self.say("mac get dr") != str(dr):
            raise SourceError(f"{self.name}: data rate read back differs from DR{dr}")

    def joined(self) -> bool:
        status = self.say("mac get status")
        try:
            return bool(int(status, 16) & 1)
        except ValueError:
            raise SourceError(f"{self.name}: 'mac get status' answered {status!r}") from None

    def join(self, timeout: float) -> bool:
        reply = self.say("mac join otaa")
        if reply != "ok":
            return False
        _, final = self.link.expect(lambda x: x in ("accepted", "denied"), timeout,
                                    what="accepted")
        return final == "accepted"

    def send(self, port: int, payload: bytes, timeout: float) -> SendResult:
        text = f"mac tx uncnf {port} {payload.hex().upper()}"
        first = self.say(text)
        outcome = classify_tx(self.name, first)
        if outcome is not TxOutcome.PENDING:
            return outcome, first, None
        _, second = self.link.expect(
            lambda x: x in RN2483_TX or x.startswith("mac_rx"), timeout, what="mac_tx_ok")
        downlink: Downlink = None
        if second.startswith("mac_rx"):
            downlink = parse_rn_downlink(second)
        return classify_tx(self.name, second), second, downlink


DRIVERS: dict[str, type[ModemDriver]] = {"rak3172": Rak3172, "rn2483": Rn2483}
