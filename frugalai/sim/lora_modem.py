"""Emulated LoRa modems on real ptys: a RAK3172 (RUI3 AT commands) and a Microchip RN2483.

The gateway opens the pty's slave path exactly as it would open ``/dev/ttyUSB1`` and holds the
AT dialogue of docs/protocols.md §5 with it. The emulator answers the commands a driver uses,
checks their arguments like the modules do, and lets a test play the air and the faults:

* ``inject(payload, rssi, snr)``: a packet arrives over the air (delivered if the modem listens);
* ``inject_line(text)``: any line on the wire (malformed replies, odd-length hex);
* ``script(prefix, *replies)``: the next command starting with ``prefix`` gets these replies
  instead (``busy``, ``no_free_ch``, ``AT_BUSY_ERROR``...), to walk every error path;
* ``hang(seconds)``: the modem stops answering (a firmware lock-up), then recovers;
* ``fail_rate``: a seeded fraction of transmit commands answered ``busy`` / ``AT_BUSY_ERROR``;
* LoRaWAN mode keeps its own EU868 duty cycle (answering ``no_free_ch`` / ``AT_BUSY_ERROR``),
  joins after ``join_delay_s`` (or is denied ``join_failures`` times first), and records every
  uplink in ``uplinks``.

Timing uses ``clock`` (seconds; a SimClock or a test's fake clock) for the duty cycle and real
time (``latency_s``) between a command's ``OK`` and its asynchronous result.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, ClassVar, Optional

import numpy as np

from frugalai.protocols.at_modem import hex_payload
from frugalai.protocols.lorawan import (
    EU868_DEFAULT_CHANNELS,
    EU868_DR,
    EU868_MAX_PAYLOAD,
    JOIN_REQUEST_PHY,
    DutyCycle,
    lorawan_time_on_air,
    time_on_air,
)
from frugalai.sim.device import EmulatedDevice
from frugalai.sim.pty import PtyPort


class ModemEmulator(EmulatedDevice):
    """The shared machinery: a reader thread, line splitting, scripted replies, hangs, timers."""

    name = "modem"
    reset_command = ""
    crc_error_line = ""

    def __init__(self, port: Optional[PtyPort] = None, *, clock: Callable[[], float] = time.monotonic,
                 seed: int = 0, fail_rate: float = 0.0, latency_s: float = 0.02) -> None:
        self.port = port or PtyPort()
        self.clock = clock
        self.fail_rate = fail_rate
        self.latency_s = latency_s
        self.commands: list[str] = []
        self.uplinks: list[tuple[int, bytes]] = []
        self.packets_delivered = 0
        self.packets_missed = 0
        self.join_failures = 0
        self.join_delay_s = 0.05
        self.duty_cycle = DutyCycle()
        self._rng = np.random.default_rng(seed)
        self._buf = b""
        self._lock = threading.Lock()
        self._air: deque[tuple[bytes, float, float]] = deque()
        self._later: list[tuple[float, str]] = []
        self._script: list[tuple[str, list[str]]] = []
        self._hang_until = 0.0
        self._hang_reset = False
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._channel = 0
        self.reset_state()

    # --- what tests call --------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self.port.path

    def inject(self, payload: bytes, rssi: float = -60.0, snr: float = 7.5) -> None:
        """A packet arrives over the air."""
        with self._lock:
            self._air.append((payload, rssi, snr))

    def inject_line(self, text: str) -> None:
        """Write any line on the wire now."""
        self._write(text)

    def inject_crc_error(self) -> None:
        """A packet garbled on the air: the radio's CRC rejects it and the modem says so."""
        if self.listening():
            self.inject_line(self.crc_error_line)
        else:
            self.packets_missed += 1

    def script(self, prefix: str, *replies: str) -> None:
        """The next command starting with ``prefix`` is answered with ``replies``."""
        with self._lock:
            self._script.append((prefix, list(replies)))

    def hang(self, seconds: float = float("inf"), until_reset: bool = False) -> None:
        """Stop answering (and receiving) for ``seconds`` of real time.

        With ``until_reset`` the lock-up also ends when the reset command (``ATZ``,
        ``sys reset``) arrives: a wedged command parser that a reset clears.
        """
        self._hang_until = time.monotonic() + seconds
        self._hang_reset = until_reset

    @property
    def hung(self) -> bool:
        return time.monotonic() < self._hang_until

    def _thread_label(self) -> str:
        return self.name

    def __enter__(self) -> ModemEmulator:
        return self.start()

    # --- for subclasses ---------------------------------------------------------------------
    def reset_state(self) -> None:
        raise NotImplementedError

    def handle(self, line: str) -> list[str]:
        raise NotImplementedError

    def listening(self) -> bool:
        raise NotImplementedError

    def rx_line(self, payload: bytes, rssi: float, snr: float) -> str:
        raise NotImplementedError

    def after_rx(self) -> None:
        """Called after a packet is delivered (single-shot receive modes stop here)."""

    def later(self, delay_s: float, line: str) -> None:
        with self._lock:
            self._later.append((time.monotonic() + delay_s, line))

    def flaky(self) -> bool:
        return self.fail_rate > 0 and bool(self._rng.random() < self.fail_rate)

    def next_channel(self) -> Optional[int]:
        """A free default channel now (round robin), None when the duty cycle forbids all."""
        now = self.clock()
        for k in range(len(EU868_DEFAULT_CHANNELS)):
            freq = EU868_DEFAULT_CHANNELS[(self._channel + k) % len(EU868_DEFAULT_CHANNELS)]
            if self.duty_cycle.wait_s(freq, now) == 0.0:
                self._channel += k + 1
                return freq
        return None

    def transmit(self, port: int, payload: bytes, dr: int) -> Optional[float]:
        """Account a LoRaWAN uplink; None when no channel is free (duty cycle)."""
        freq = self.next_channel()
        if freq is None:
            return None
        toa = lorawan_time_on_air(len(payload), dr)
        self.duty_cycle.record(freq, toa, self.clock())
        self.uplinks.append((port, payload))
        return toa

    def transmit_join(self, dr: int) -> bool:
        """Account a join request's airtime; False when the duty cycle forbids it now."""
        freq = self.next_channel()
        if freq is None:
            return False
        sf, bw = EU868_DR[dr]
        self.duty_cycle.record(freq, time_on_air(JOIN_REQUEST_PHY, sf, bw), self.clock())
        return True

    @staticmethod
    def max_payload(dr: int) -> int:
        return EU868_MAX_PAYLOAD[dr]

    @staticmethod
    def valid_hex(text: str) -> Optional[bytes]:
        try:
            return hex_payload(text)
        except ValueError:
            return None

    # --- the loop ---------------------------------------------------------------------------
    def _write(self, line: str) -> None:
        try:
            self.port.write(line.encode("ascii", "replace") + b"\r\n")
        except (TypeError, OSError):  # unplugged by another thread mid-write: the line is lost
            pass

    def run(self) -> None:
        while not self._stop.is_set():
            if not self.port.plugged:
                self._stop.wait(0.05)
                continue
            try:
                data = self.port.read(timeout=0.01)
            except (TypeError, OSError):  # unplugged by another thread mid-read
                data = b""
            if data:
                self._buf += data
                while True:
                    cut = min((i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0),
                              default=-1)
                    if cut < 0:
                        break
                    raw, self._buf = self._buf[:cut], self._buf[cut + 1:]
                    line = raw.decode("ascii", "replace").strip()
                    if self.hung:
                        if not (self._hang_reset and line == self.reset_command):
                            continue
                        self._hang_until = 0.0
                    if line:
                        self.commands.append(line)
                        for reply in self._answer(line):
                            self._write(reply)
            if not self.hung:
                self._tick()

    def _answer(self, line: str) -> list[str]:
        with self._lock:
            for i, (prefix, replies) in enumerate(self._script):
                if line.startswith(prefix):
                    del self._script[i]
                    return replies
        return self.handle(line)

    def _tick(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [x for x in self._later if x[0] <= now]
            self._later = [x for x in self._later if x[0] > now]
        for _, line in sorted(due):
            self._write(line)
        while True:
            with self._lock:
                if not self._air:
                    return
                payload, rssi, snr = self._air.popleft()
            if self.listening():
                self.packets_delivered += 1
                self._write(self.rx_line(payload, rssi, snr))
                self.after_rx()
            else:
                self.packets_missed += 1


class Rak3172Emulator(ModemEmulator):
    """RAK3172 with RUI3 firmware: P2P (``AT+NWM=0``) and LoRaWAN (``AT+NWM=1``) modes."""

    name = "rak3172"
    reset_command = "ATZ"
    crc_error_line = "+EVT:RXP2P RECEIVE ERROR"
    VERSION = "RUI_4.0.6_RAK3172-E"
    P2P_SF = range(5, 13)
    P2P_BW = (125, 250, 500)

    def reset_state(self) -> None:
        self.nwm = 1
        self.p2p = (868_000_000, 7, 125, 0, 8, 14)
        self.precv = 0
        self.joined = False
        self.dr = 0
        self.downlink: Optional[tuple[int, bytes]] = None

    def listening(self) -> bool:
        return self.nwm == 0 and self.precv != 0

    def rx_line(self, payload: bytes, rssi: float, snr: float) -> str:
        return f"+EVT:RXP2P:{rssi:.0f}:{snr:.0f}:{payload.hex().upper()}"

    def after_rx(self) -> None:
        if self.precv == 65535:  # single packet, then RX off
            self.precv = 0

    def handle(self, line: str) -> list[str]:
        cmd, _, arg = line.partition("=")
        if line == "AT":
            return ["OK"]
        if line == "ATZ":
            self.reset_state()
            return []  # the module reboots: no OK (RUI3 prints nothing we rely on)
        if line == "AT+VER=?":
            return [f"AT+VER={self.VERSION}", "OK"]
        if cmd == "AT+NWM":
            if arg == "?":
                return [f"AT+NWM={self.nwm}", "OK"]
            if arg not in ("0", "1"):
                return ["AT_PARAM_ERROR"]
            if int(arg) != self.nwm:
                self.nwm, self.precv, self.joined = int(arg), 0, False
            return ["OK"]
        if cmd == "AT+P2P":
            if self.nwm != 0:
                return ["AT_MODE_NO_SUPPORT"]
            if arg == "?":
                return ["AT+P2P=" + ":".join(str(v) for v in self.p2p), "OK"]
            parts = arg.split(":")
            if len(parts) != 6 or not all(p.isdigit() for p in parts):
                return ["AT_PARAM_ERROR"]
            f, sf, bw, cr, pre, pwr = (int(p) for p in parts)
            if not (150_000_000 <= f <= 960_000_000 and sf in self.P2P_SF and bw in self.P2P_BW
                    and 0 <= cr <= 3 and 2 <= pre <= 65535 and 5 <= pwr <= 22):
                return ["AT_PARAM_ERROR"]
            self.p2p = (f, sf, bw, cr, pre, pwr)
            return ["OK"]
        if cmd == "AT+PRECV":
            if self.nwm != 0:
                return ["AT_MODE_NO_SUPPORT"]
            if not arg.isdigit() or int(arg) > 65535:
                return ["AT_PARAM_ERROR"]
            self.precv = int(arg)
            return ["OK"]
        if cmd == "AT+PSEND":
            if self.nwm != 0:
                return ["AT_MODE_NO_SUPPORT"]
            if self.valid_hex(arg) is None or not arg or len(arg) > 510:
                return ["AT_PARAM_ERROR"]
            if self.flaky():
                return ["AT_BUSY_ERROR"]
            self.later(self.latency_s, "+EVT:TXP2P DONE")
            return ["OK"]
        if cmd == "AT+NJS" and arg == "?":
            return [f"AT+NJS={int(self.joined)}", "OK"]
        if cmd == "AT+DR":
            if arg == "?":
                return [f"AT+DR={self.dr}", "OK"]
            if not arg.isdigit() or int(arg) > 7:
                return ["AT_PARAM_ERROR"]
            self.dr = int(arg)
            return ["OK"]
        if cmd == "AT+JOIN":
            if self.nwm != 1:
                return ["AT_MODE_NO_SUPPORT"]
            if not self.transmit_join(self.dr):
                return ["AT_BUSY_ERROR"]
            if self.join_failures > 0:
                self.join_failures -= 1
                self.later(self.join_delay_s, "+EVT:JOIN_FAILED_RX_TIMEOUT")
            else:
                self.joined = True
                self.later(self.join_delay_s, "+EVT:JOINED")
            return ["OK"]
        if cmd == "AT+SEND":
            return self._send(arg)
        return ["AT_COMMAND_NOT_FOUND"]

    def _send(self, arg: str) -> list[str]:
        if self.nwm != 1:
            return ["AT_MODE_NO_SUPPORT"]
        port_s, _, hex_s = arg.partition(":")
        payload = self.valid_hex(hex_s)
        if not port_s.isdigit() or not 1 <= int(port_s) <= 223 or payload is None:
            return ["AT_PARAM_ERROR"]
        if not self.joined:
            return ["AT_NO_NETWORK_JOINED"]
        if len(payload) > self.max_payload(self.dr):
            return ["AT_PARAM_ERROR"]
        if self.flaky():
            return ["AT_BUSY_ERROR"]
        if self.transmit(int(port_s), payload, self.dr) is None:
            return ["AT_BUSY_ERROR"]  # RUI3 refuses while the duty cycle forbids every channel
        if self.downlink is not None:  # RUI3 reports the RX window before TX_DONE
            port, data = self.downlink
            self.downlink = None
            self.later(self.latency_s, f"+EVT:RX_1:-70:8:UNICAST:{port}:{data.hex().upper()}")
        self.later(self.latency_s * 1.5, "+EVT:TX_DONE")
        return ["OK"]


class Rn2483Emulator(ModemEmulator):
    """Microchip RN2483 (firmware 1.0.5): ``radio`` raw LoRa commands and the ``mac`` stack."""

    name = "rn2483"
    reset_command = "sys reset"
    crc_error_line = "radio_err"
    VERSION = "RN2483 1.0.5 Oct 31 2018 15:06:52"
    RADIO_VALUES: ClassVar[dict[str, Callable[[str], bool]]] = {
        "mod": lambda v: v in ("lora", "fsk"),
        "freq": lambda v: v.isdigit() and (433_050_000 <= int(v) <= 434_790_000
                                           or 863_000_000 <= int(v) <= 870_000_000),
        "sf": lambda v: v in {f"sf{n}" for n in range(7, 13)},
        "bw": lambda v: v in ("125", "250", "500"),
        "cr": lambda v: v in ("4/5", "4/6", "4/7", "4/8"),
        "crc": lambda v: v in ("on", "off"),
        "sync": lambda v: len(v) <= 2 and all(c in "0123456789abcdefABCDEF" for c in v),
        "wdt": lambda v: v.isdigit() and int(v) <= 4_294_967_295,
        "pwr": lambda v: v.lstrip("-").isdigit() and -3 <= int(v) <= 15,
        "prlen": lambda v: v.isdigit() and int(v) <= 65535,
        "iqi": lambda v: v in ("on", "off"),
    }

    def __init__(self, *args: object, double_space: bool = True, **kwargs: object) -> None:
        self.double_space = double_space
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def reset_state(self) -> None:
        self.radio = {"mod": "lora", "freq": "868100000", "sf": "sf12", "bw": "125",
                      "cr": "4/5", "crc": "on", "sync": "34", "wdt": "15000", "pwr": "1",
                      "prlen": "8", "iqi": "off"}
        self.paused = False
        self.rx_on = False
        self.joined = False
        self.dr = 0
        self.last_rssi: Optional[float] = None
        self.last_snr: Optional[float] = None
        self.downlink: Optional[tuple[int, bytes]] = None

    def listening(self) -> bool:
        return self.rx_on

    def inject_line(self, text: str) -> None:
        """As the base, and a ``radio_rx``/``radio_err`` line ends the receive like a packet."""
        if text.split(" ", 1)[0] in ("radio_rx", "radio_err"):
            self.rx_on = False
        super().inject_line(text)

    def rx_line(self, payload: bytes, rssi: float, snr: float) -> str:
        self.last_rssi, self.last_snr = rssi, snr
        sep = "  " if self.double_space else " "
        return f"radio_rx{sep}{payload.hex().upper()}"

    def after_rx(self) -> None:
        self.rx_on = False  # one packet per ``radio rx 0``

    def handle(self, line: str) -> list[str]:
        words = line.split()
        if words[:2] == ["sys", "reset"]:
            self.reset_state()
            return [self.VERSION]
        if words[:3] == ["sys", "get", "ver"]:
            return [self.VERSION]
        if self.rx_on and words[:2] != ["radio", "rxstop"]:
            return ["busy"]
        if words[:2] == ["mac", "pause"]:
            self.paused = True
            return ["4294967245"]
        if words[:2] == ["mac", "resume"]:
            self.paused = False
            return ["ok"]
        if words[:2] == ["radio", "set"] and len(words) == 4:
            check = self.RADIO_VALUES.get(words[2])
            if check is None or not check(words[3]):
                return ["invalid_param"]
            if not self.paused:
                return ["busy"]
            self.radio[words[2]] = words[3]
            return ["ok"]
        if words[:2] == ["radio", "get"] and len(words) == 3:
            if words[2] == "snr":
                return [str(int(self.last_snr if self.last_snr is not None else 0))]
            if words[2] == "pktrssi":
                return [str(int(self.last_rssi if self.last_rssi is not None else -128))]
            return [self.radio[words[2]]] if words[2] in self.radio else ["invalid_param"]
        if words == ["radio", "rx", "0"]:
            if not self.paused:
                return ["busy"]
            self.rx_on = True
            return ["ok"]
        if words == ["radio", "rxstop"]:
            self.rx_on = False
            return ["ok"]
        if words[:2] == ["radio", "tx"] and len(words) == 3:
            if not self.paused:
                return ["busy"]
            if self.valid_hex(words[2]) is None:
                return ["invalid_param"]
            self.later(self.latency_s, "radio_err" if self.flaky() else "radio_tx_ok")
            return ["ok"]
        if words[:3] == ["mac", "set", "dr"] and len(words) == 4:
            if not words[3].isdigit() or int(words[3]) > 7:
                return ["invalid_param"]
            self.dr = int(words[3])
            return ["ok"]
        if words[:3] == ["mac", "get", "status"]:
            return [f"{int(self.joined):08X}"]  # bit 0: joined
        if words[:3] == ["mac", "get", "dr"]:
            return [str(self.dr)]
        if words == ["mac", "save"]:
            return ["ok"]
        if words[:2] == ["mac", "join"] and len(words) == 3 and words[2] in ("otaa", "abp"):
            if self.paused:
                return ["mac_paused"]
            if not self.transmit_join(self.dr):
                return ["no_free_ch"]
            if self.join_failures > 0:
                self.join_failures -= 1
                self.later(self.join_delay_s, "denied")
            else:
                self.joined = True
                self.later(self.join_delay_s, "accepted")
            return ["ok"]
        if words[:2] == ["mac", "tx"] and len(words) == 5 and words[2] in ("cnf", "uncnf"):
            return self._mac_tx(words[3], words[4])
        return ["invalid_param"]

    def _mac_tx(self, port_s: str, hex_s: str) -> list[str]:
        payload = self.valid_hex(hex_s)
        if not port_s.isdigit() or not 1 <= int(port_s) <= 223 or payload is None:
            return ["invalid_param"]
        if self.paused:
            return ["mac_paused"]
        if not self.joined:
            return ["not_joined"]
        if len(payload) > self.max_payload(self.dr):
            return ["invalid_data_len"]
        if self.flaky():
            return ["busy"]
        if self.transmit(int(port_s), payload, self.dr) is None:
            return ["no_free_ch"]
        if self.downlink is not None:
            port, data = self.downlink
            self.downlink = None
            self.later(self.latency_s, f"mac_rx {port} {data.hex().upper()}")
        else:
            self.later(self.latency_s, "mac_tx_ok")
        return ["ok"]


MODEM_EMULATORS: dict[str, type[ModemEmulator]] = {"rak3172": Rak3172Emulator,
                                                    "rn2483": Rn2483Emulator}
