"""LoRaWAN uplink: the gateway sends its own compact events through a modem in LoRaWAN mode.

URL grammar::

    lorawan://<port>?modem=rn2483|rak3172[&dr=5][&port=10][&budget_s=30][&downlinks=10]
             [&pack=1][&baud=N][&join_timeout_s=30]

``<port>`` is a device path or a pyserial URL. The modem must hold its OTAA keys already
(``mac set appkey ...; mac save`` / ``AT+APPKEY=...``): keys never go in a URL or the TOML.
Each uplink carries ``pack`` events of 11 bytes (``frugalai.events.codec.encode_binary``) on
FPort ``port``; ``pack * 11`` must fit the EU868 maximum payload of ``dr``.

Airtime is accounted before anything is sent (:class:`~frugalai.protocols.lorawan.AirtimePlanner`):
the EU868 sub-band duty cycle (1 % on the default channels) and, with ``budget_s``, a rolling
24-hour airtime budget (The Things Network fair use: 30 s and 10 downlinks a day). ``send``
returns only the events that went on air now; the rest stay in the outbox, which hands them back
most urgent first. ``summary()`` says how many events had to wait and why. In a gateway the
budget is kept in ``<state_dir>/lorawan-budget-<port>.json`` (saved after each uplink, taken
back at start and aged by the downtime), so a restart does not reset the day's fair use;
the sub-bands' duty-cycle silences are kept the same way.

Modem replies map to actions (:mod:`frugalai.protocols.at_modem`): ``busy``, ``no_free_ch``,
``mac_err``, ``AT_BUSY_ERROR`` -> retry later; ``not_joined``, ``silent``,
``frame_counter_err_rejoin_needed``, ``AT_NO_NETWORK_JOINED`` -> join again; ``mac_paused`` ->
``mac resume``; ``invalid_param``, ``AT_PARAM_ERROR`` and a modem that does not answer ->
:class:`~frugalai.errors.UplinkError` (the modem is reset and joined again, with backoff).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

from frugalai.errors import ConfigError, DecodeError, SourceError, UplinkError
from frugalai.events.codec import BINARY_SIZE, encode_binary
from frugalai.events.event import Event
from frugalai.fileio import atomic_write
from frugalai.modems.at_link import AtLink
from frugalai.modems.lora_modems import DRIVERS, ModemDriver
from frugalai.protocols.at_modem import TxOutcome
from frugalai.protocols.lorawan import (
    EU868_MAX_PAYLOAD,
    JOIN_REQUEST_PHY,
    AirtimeBudget,
    AirtimePlanner,
)
from frugalai.registry import check_options, split_url
from frugalai.retry import Backoff

log = logging.getLogger("frugalai.uplink.lorawan")


def budget_file_name(port: str) -> str:
    """The budget's state file in the state dir, one per modem port."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in port.strip("/"))
    return f"lorawan-budget-{safe}.json"

OPTIONS = {
    "modem": "rn2483 or rak3172 (in LoRaWAN mode, keys already in the modem)",
    "dr": "EU868 data rate 0..6 (default 5 = SF7/125)",
    "port": "FPort 1..223 (default 10)",
    "budget_s": "daily airtime budget, seconds (TTN fair use: 30; default: none)",
    "downlinks": "daily downlink budget, count (TTN fair use: 10)",
    "pack": "events per uplink, 11 bytes each (default 1)",
    "baud": "serial speed (default: the modem's)",
    "join_timeout_s": "seconds to wait for a join answer (default 30)",
}


@dataclass
class LorawanStats:
    """Counters of the LoRaWAN uplink (``summary()``)."""

    uplinks: int = 0
    events_sent: int = 0
    bytes_sent: int = 0
    airtime_s: float = 0.0
    joins: int = 0
    join_failures: int = 0
    downlinks: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    bad_replies: int = 0
    deferred_duty_cycle: int = 0
    deferred_budget: int = 0
    budget_state_errors: int = 0  # state file missing after the first run, corrupt, out of range
    events_delayed: int = 0
    modem_failures: int = 0
    last_error: str = ""


class LorawanSink:
    """A sink (``send(events) -> delivered``, ``close()``) over a LoRaWAN modem."""

    def __init__(
        self,
        port: str,
        *,
        modem: str,
        dr: int = 5,
        fport: int = 10,
        budget_s: Optional[float] = None,
        downlinks: int = 10,
        pack: int = 1,
        baud: Optional[int] = None,
        join_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 2.0,
        tx_timeout: float = 15.0,
        backoff: Optional[Backoff] = None,
        state_file: Union[str, Path, None] = None,
    ) -> None:
        if modem not in DRIVERS:
            raise ConfigError(f"unknown modem {modem!r}; known: {', '.join(sorted(DRIVERS))}",
                              key="modem")
        if not 0 <= dr <= 6:
            raise ConfigError(f"EU868 LoRa data rates are 0..6, got {dr}", key="dr")
        if not 1 <= fport <= 223:
            raise ConfigError(f"FPort must be 1..223, got {fport}", key="port")
        if pack < 1 or pack * BINARY_SIZE > EU868_MAX_PAYLOAD[dr]:
            raise ConfigError(f"pack={pack} events of {BINARY_SIZE} B do not fit the "
                              f"{EU868_MAX_PAYLOAD[dr]} B payload of DR{dr}", key="pack")
        budget = AirtimeBudget(budget_s, downlinks) if budget_s is not None else None
        self.port = port
        self.dr = dr
        self.fport = fport
        self.pack = pack
        self.join_timeout_s = join_timeout_s
        self.tx_timeout = tx_timeout
        self.clock = clock
        self.planner = AirtimePlanner(dr, budget=budget)
        self.stats = LorawanStats()
        cls = DRIVERS[modem]
        self.link = AtLink(port, baud or cls.baud)
        self.driver: ModemDriver = cls(self.link, timeout=timeout)
        self.backoff = backoff or Backoff(initial=1.0, cap=300.0)
        self._ready = False
        self._joined = False
        self._retry_at = 0.0
        self._waiting: set[str] = set()
        self.name = f"lorawan {modem} {port}"
        #: where the daily budget survives restarts (a power cut must not reset fair use)
        self.state_file = Path(state_file) if state_file is not None and budget else None
        self._save_error = ""
        self._load_budget()

    @classmethod
    def from_url(cls, url: str, *, key: Optional[str] = None, **kwargs: Any) -> LorawanSink:
        """Build from ``lorawan://...``; ConfigError (naming ``key``) on a bad URL."""
        kwargs.pop("gateway", None)
        state_dir = kwargs.pop("state_dir", None)
        _, port, options = split_url(url, key=key)
        if state_dir is not None and "state_file" not in kwargs:
            kwargs["state_file"] = Path(state_dir) / budget_file_name(port)
        check_options(url, options, OPTIONS, key=key)
        if not port:
            raise ConfigError(f"lorawan URL names no port: {url!r}", key=key)
        if "modem" not in options:
            raise ConfigError(f"option 'modem' is required in {url!r} ({OPTIONS['modem']})",
                              key=key)
        try:
            return cls(
                port, modem=options["modem"], dr=int(options.get("dr", "5")),
                fport=int(options.get("port", "10")),
                budget_s=float(options["budget_s"]) if "budget_s" in options else None,
                downlinks=int(options.get("downlinks", "10")),
                pack=int(options.get("pack", "1")),
                baud=int(options["baud"]) if "baud" in options else None,
                join_timeout_s=float(options.get("join_timeout_s", "30")), **kwargs)
        except ValueError as err:
            raise ConfigError(f"bad option in {url!r}: {err}", key=key) from None
        except ConfigError as err:
            raise ConfigError(f"{err} (in {url!r})", key=key) from None

    @classmethod
    def validate_url(cls, url: str, *, key: Optional[str] = None, **_: Any) -> None:
        """The checks of ``from_url``, without touching the modem or the budget file."""
        cls.from_url(url, key=key).close()  # the constructor opens nothing

    # --- the budget's state file --------------------------------------------------------------
    def _load_budget(self) -> None:
        """Take back the last 24 h of airtime and the sub-bands' silences from the state
        file, aged by the downtime.

        The file is range-checked (a negative airtime would widen the budget, an infinite wait
        silence the uplink forever). A file missing after the first run (the marker beside it
        says there was one) or unreadable is treated conservatively: the day's budget counts as
        spent, so fair use is never reset by a deleted or corrupted file. Logged once, here.
        """
        budget = self.planner.budget
        if self.state_file is None or budget is None:
            return
        marker = self.state_file.with_name(self.state_file.name + ".since")
        try:
            data = json.loads(self.state_file.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            saved = float(data["saved_wall"])
            if not math.isfinite(saved):
                raise ValueError(f"saved_wall is {saved}")
            # The wall clock only measures the downtime; a clock that went back counts as none.
            elapsed = max(0.0, time.time() - saved)
            budget.restore(data["budget"], self.clock(), elapsed)  # checks, then takes
            self.planner.duty_cycle.restore(data.get("duty_cycle", {}), self.clock(), elapsed)
        except FileNotFoundError:
            if marker.exists():
                self._spend_the_day(f"{self.state_file} is missing although {marker.name} "
                                    "says a budget was kept")
            else:  # the first run: start the budget file and its marker now
                self._save_budget()
                self._mark(marker)
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            self._spend_the_day(f"{self.state_file} unreadable or out of range ({err})")
            return
        self._mark(marker)
        log.info("%s: %.1f s of airtime and %d downlinks in the last 24 h (from %s)",
                 self.name, budget.used_s(self.clock()), budget.downlinks_used(self.clock()),
                 self.state_file)

    def _spend_the_day(self, why: str) -> None:
        """Count the whole daily budget as spent now (the safe side of an unknown past)."""
        budget = self.planner.budget
        assert budget is not None
        budget.record(budget.airtime_s, self.clock())
        self.stats.budget_state_errors += 1
        log.warning("%s: airtime budget state: %s; counting the day's %.0f s of airtime as "
                    "spent (uplinks resume within 24 h)", self.name, why, budget.airtime_s)
        self._save_budget()

    @staticmethod
    def _mark(marker: Path) -> None:
        if not marker.exists():
            try:
                atomic_write(marker, f"{time.time():.0f}\n", fsync=True)
            except OSError:
                pass  # the next start tries again; without it a lost file resets fair use

    def _save_budget(self) -> None:
        """Write the budget atomically (temp file, fsync, rename): one small write per uplink,
        a few hundred a day at most."""
        budget = self.planner.budget
        if self.state_file is None or budget is None:
            return
        now = self.clock()
        data = {"saved_wall": time.time(), "budget": budget.snapshot(now),
                "duty_cycle": self.planner.duty_cycle.snapshot(now)}
        try:
            atomic_write(self.state_file, json.dumps(data), fsync=True)
        except OSError as err:
            if str(err) != self._save_error:  # say it once per kind of failure
                log.warning("%s: cannot save the airtime budget to %s: %s", self.name,
                            self.state_file, err)
            self._save_error = str(err)
        else:
            self._save_error = ""

    # --- modem state ------------------------------------------------------------------------
    def connect(self) -> None:
        """Open, wake, set the data rate, join (the join request's airtime counts too).

        SourceError / UplinkError when it cannot; ``send`` calls it as needed.
        """
        if not self._ready:
            if not self.link.is_open:
                self.link.open()
            self.driver.wake()
            self.driver.configure_lorawan(self.dr)
            self._ready = True
            self._joined = self.driver.joined()
        if not self._joined:
            self.stats.joins += 1
            self.planner.record_phy(JOIN_REQUEST_PHY, self.clock())
            self._save_budget()
            if not self.driver.join(self.join_timeout_s):
                self.stats.join_failures += 1
                raise UplinkError(f"{self.name}: join refused (check the keys in the modem and "
                                  "the network server)")
            self._joined = True
            log.info("%s: joined", self.name)

    def _failed(self, err: BaseException) -> None:
        """Back off before touching the modem again."""
        self.stats.modem_failures += 1
        self.stats.last_error = str(err)
        self._retry_at = time.monotonic() + self.backoff.next_delay()

    # --- the sink interface -----------------------------------------------------------------
    def send(self, events: Sequence[Event]) -> list[Event]:
        """Send what airtime allows now; return the events that went on air."""
        if not events or time.monotonic() < self._retry_at:
            return []
        try:
            self.connect()
        except (SourceError, DecodeError) as err:
            self._ready = False
            self.link.close()
            self._failed(err)
            raise UplinkError(f"{self.name}: modem not ready: {err}") from err
        except UplinkError as err:
            self._failed(err)
            raise
        delivered: list[Event] = []
        try:
            for i in range(0, len(events), self.pack):
                batch = list(events[i:i + self.pack])
                if not self._send_batch(batch):
                    break
                delivered += batch
        except (SourceError, UplinkError) as err:
            self._ready = False
            self.link.close()
            self._failed(err)
            if not delivered:
                raise UplinkError(f"{self.name}: {err}") from err
            log.warning("%s: %s (after %d events sent)", self.name, err, len(delivered))
        else:
            self.backoff.reset()
        for event in delivered:
            self._waiting.discard(event.id)
        for event in events[len(delivered):]:
            if event.id not in self._waiting:
                self._waiting.add(event.id)
                self.stats.events_delayed += 1
        return delivered

    def _send_batch(self, batch: list[Event]) -> bool:
        """True when ``batch`` went on air; False to stop for now (events stay pending)."""
        payload = b"".join(encode_binary(e) for e in batch)
        now = self.clock()
        wait, reason = self.planner.wait_s(len(payload), now)
        if wait > 0:
            if reason == "budget":
                self.stats.deferred_budget += 1
            else:
                self.stats.deferred_duty_cycle += 1
            log.debug("%s: %s, next uplink in %.1f s", self.name, reason, wait)
            return False
        try:
            outcome, reply, downlink = self.driver.send(self.fport, payload, self.tx_timeout)
        except DecodeError as err:  # an unexpected line: count it, try again later
            self.stats.bad_replies += 1
            self.stats.last_error = str(err)
            return False
        if outcome is TxOutcome.SENT:
            toa = self.planner.record(len(payload), now)
            self.stats.uplinks += 1
            self.stats.events_sent += len(batch)
            self.stats.bytes_sent += len(payload)
            self.stats.airtime_s += toa
            if downlink is not None:
                self.stats.downlinks += 1
                if self.planner.budget is not None:
                    self.planner.budget.record_downlink(now)
            self._save_budget()
            return True
        self.stats.retries[reply] = self.stats.retries.get(reply, 0) + 1
        if outcome is TxOutcome.RETRY:
            if reply == "mac_err":  # it went on air, unheard: the airtime is spent anyway
                self.planner.record(len(payload), now)
                self._save_budget()
            return False
        if outcome is TxOutcome.REJOIN:
            self._joined = False
            return False
        if outcome is TxOutcome.RESUME:
            self.driver.ok("mac resume")
            return False
        if outcome is TxOutcome.TOO_LONG:
            if len(batch) > 1:  # ADR lowered the data rate, or MAC commands took room: halve
                self.pack = max(1, len(batch) // 2)
                log.warning("%s: %d B refused at the current data rate; %d events per uplink "
                            "from now on", self.name, len(payload), self.pack)
                return False
            raise UplinkError(f"{self.name}: {len(payload)} B refused as too long at DR{self.dr}"
                              f" ({reply}); raise dr")
        raise UplinkError(f"{self.name}: modem answered {reply!r} to a send")

    def summary(self) -> dict[str, Any]:
        """Counters plus the airtime situation now."""
        now = self.clock()
        out = asdict(self.stats)
        out["events_waiting"] = len(self._waiting)
        out["line_overflows"] = self.link.overflows  # over-long modem lines discarded
        out["dr"] = self.dr
        wait, reason = self.planner.wait_s(self.pack * BINARY_SIZE, now)
        out["next_uplink_in_s"] = round(wait, 3)
        out["waiting_for"] = reason
        budget = self.planner.budget
        if budget is not None:
            out["budget_s"] = budget.airtime_s
            out["airtime_24h_s"] = round(budget.used_s(now), 4)
            out["downlinks_24h"] = budget.downlinks_used(now)
            if out["downlinks_24h"] > budget.downlinks:
                log.warning("%s: %d downlinks in 24 h, over the budget of %d", self.name,
                            out["downlinks_24h"], budget.downlinks)
        return out

    def close(self) -> None:
        """Close the port; safe to call twice."""
        self.link.close()
        self._ready = False

    def __repr__(self) -> str:
        return f"LorawanSink({self.port!r}, modem={self.driver.name!r}, dr={self.dr})"
