"""One computation of bytes, ratios, energy, carbon and euros, for ``demo``, ``status`` and
``report`` alike. Pure: numbers in, numbers out; no file, no clock.

**The upstream ratio** is *bytes read at the gateway's input* divided by *bytes sent upstream*,
both counted over the same run by the same process (``raw_bytes_read`` and
``upstream_bytes_binary`` of a pipeline summary, the same counters in ``status.json``). It is
a measurement. An earlier report divided a serial line's full capacity (baud / 10 bytes a second,
all day: 10,368,000 B for TIC at 1200 baud) by a *configured* four events a day: 235,636x for
the demo's Linky, where the run itself measured 4,961x with the same four events a day. The
whole gap is on the raw side: the emulated meter sends a frame a minute (about 218 kB a day),
not a saturated line. (A real Linky in historique mode does send continuously, so there the
bound is near the truth; only the count says.) The line capacity is still shown where nothing
was measured, as an upper bound and labelled so; it is never called "the" ratio.

**The whole gateway** is the board's own power all day (measured by a board meter, else the
board profile's idle figure and its source) plus what the work adds: inference, encoding, the
radio's time on air, and the outbox's storage writes. The AI's share is inference over that
total: on a Pi it is small, and saying so is the honest frugality claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional

from frugalai.protocols.lorawan import EU868_MAX_PAYLOAD, lorawan_time_on_air

#: size of one binary event on the wire (``frugalai.events.codec.BINARY_SIZE``).
EVENT_BYTES = 11
DAY_S = 86_400.0
DAYS_PER_YEAR = 365.0
DAYS_PER_MONTH = 365.0 / 12
#: ETSI EN 300 220 sub-band g1 (868.0-868.6 MHz, the three default LoRaWAN channels): 1 % duty
#: cycle, i.e. at most 864 s of transmission a day for a device using only those channels.
DUTY_CYCLE_S_PER_DAY = 0.01 * DAY_S
#: outbox writes per event: one append, one "sent" mark.
WRITES_PER_EVENT = 2


# --- the upstream ratio ------------------------------------------------------------------------

def upstream_ratio(raw_bytes: float, upstream_bytes: float) -> Optional[float]:
    """Bytes read at the input per byte sent upstream, over the same run; None if nothing
    was sent.

    >>> upstream_ratio(545_710, 110)
    4961.0
    >>> upstream_ratio(1000, 0) is None
    True
    """
    if upstream_bytes <= 0:
        return None
    return raw_bytes / upstream_bytes


def ratio_text(raw_bytes: float, upstream_bytes: float) -> str:
    """The one sentence ``demo``, ``status`` and ``report`` print.

    >>> ratio_text(545_710, 110)
    'bytes upstream 110 (binary events) vs raw bytes read 545,710: 4,961x less'
    """
    ratio = upstream_ratio(raw_bytes, upstream_bytes)
    verdict = "nothing sent yet" if ratio is None else f"{ratio:,.0f}x less"
    return (f"bytes upstream {upstream_bytes:,.0f} (binary events) vs raw bytes read "
            f"{raw_bytes:,.0f}: {verdict}")


def summary_bytes(summary: dict[str, Any]) -> tuple[float, float]:
    """(raw bytes read, bytes sent upstream) of a pipeline summary or a ``status.json``."""
    if "raw_bytes_read" in summary:
        return float(summary["raw_bytes_read"]), float(summary.get("upstream_bytes_binary", 0))
    counted = summary.get("bytes") or {}
    return float(counted.get("raw_read", 0)), float(counted.get("upstream", 0))


# --- measured flows ----------------------------------------------------------------------------

@dataclass(frozen=True)
class FlowCounts:
    """What one flow read and sent over ``hours`` (measured), or a configured guess.

    Attributes:
        raw_bytes: bytes read at the input (serial frames, LoRa packets, CSV rows).
        readings: readings decoded.
        events: events sent upstream.
        hours: period the counts cover.
        measured: True when counted by a run; False for configured rates (then ``raw_bytes``
            is a line-capacity upper bound).
        source: where the counts come from, for the report.
    """

    raw_bytes: float
    readings: float
    events: float
    hours: float
    measured: bool
    source: str

    def per_day(self, value: float) -> float:
        return value * 24.0 / self.hours if self.hours > 0 else 0.0

    @property
    def raw_bytes_per_day(self) -> float:
        return self.per_day(self.raw_bytes)

    @property
    def readings_per_day(self) -> float:
        return self.per_day(self.readings)

    @property
    def events_per_day(self) -> float:
        return self.per_day(self.events)


# --- board, radio, storage ---------------------------------------------------------------------

@dataclass(frozen=True)
class Board:
    """The board's own power: measured (a board meter) or a profile's figures with a source."""

    name: str
    idle_w: float
    active_w: float  # all cores busy
    measured: bool
    source: str


@dataclass(frozen=True)
class Costs:
    """Energy per event of the work besides inference (which is per flow), and the radio."""

    encode_uj: float
    storage_uj_per_write: float
    radio_tx_w: float
    lora_dr: int


def lora_airtime_s(payload_bytes_per_day: float, dr: int, per_message: Optional[int] = None
                   ) -> tuple[float, int]:
    """(seconds on air a day, uplinks a day) to carry ``payload_bytes_per_day`` at ``dr``.

    ``per_message`` bytes per uplink (an event); by default packed into uplinks of the
    data rate's maximum payload (a stream).

    >>> lora_airtime_s(110, 5, per_message=11)   # 10 events of 11 B at DR5: 10 x 61.696 ms
    (0.61696, 10)
    """
    if payload_bytes_per_day <= 0:
        return 0.0, 0
    size = per_message or EU868_MAX_PAYLOAD[dr]
    full, rest = divmod(payload_bytes_per_day, size)
    n_full = int(full)
    airtime = n_full * lorawan_time_on_air(size, dr)
    if rest > 0:
        airtime += lorawan_time_on_air(math.ceil(rest), dr)
    return airtime, n_full + (1 if rest > 0 else 0)


def airtime_verdict(airtime_s: float, fair_use_s: float) -> str:
    """Whether a day's airtime fits: fair use, the legal duty cycle, or neither."""
    if airtime_s > DUTY_CYCLE_S_PER_DAY:
        return (f"impossible: {airtime_s:,.0f} s/day exceeds the 1 % duty cycle "
                f"({DUTY_CYCLE_S_PER_DAY:.0f} s/day on the default channels)")
    if fair_use_s and airtime_s > fair_use_s:
        return f"over fair use: {airtime_s / fair_use_s:,.1f}x the {fair_use_s:g} s/day budget"
    share = airtime_s / fair_use_s if fair_use_s else 0.0
    return f"fits: {share:.1%} of the {fair_use_s:g} s/day fair-use budget"


# --- prices and carbon -------------------------------------------------------------------------

@dataclass(frozen=True)
class Prices:
    """Conversion factors. The defaults are stated with their source and date in the config's
    ``[energy]`` table; a user should check them against their own contract."""

    co2_g_per_kwh: float
    electricity_eur_per_kwh: float
    cellular_eur_per_mb: float


def kwh(joules: float) -> float:
    return joules / 3.6e6


def co2_kg(kwh_value: float, prices: Prices) -> float:
    return kwh_value * prices.co2_g_per_kwh / 1000


def electricity_eur(kwh_value: float, prices: Prices) -> float:
    return kwh_value * prices.electricity_eur_per_kwh


def cellular_mb_per_month(bytes_per_day: float) -> float:
    """Payload megabytes (10^6 B) a month; TCP/TLS/MQTT overhead comes on top."""
    return bytes_per_day * DAYS_PER_MONTH / 1e6


# --- the whole gateway and the three scenarios -------------------------------------------------

@dataclass(frozen=True)
class DayEnergy:
    """Joules a day by part."""

    board: float
    inference: float
    encode: float
    radio: float
    storage: float

    @property
    def marginal(self) -> float:
        return self.inference + self.encode + self.radio + self.storage

    @property
    def total(self) -> float:
        return self.board + self.marginal

    @property
    def ai_share(self) -> float:
        return self.inference / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"board_j": self.board, "inference_j": self.inference, "encode_j": self.encode,
                "radio_j": self.radio, "storage_j": self.storage,
                "marginal_j": self.marginal, "total_j": self.total, "ai_share": self.ai_share}


def gateway_day(board: Board, flows: list[tuple[FlowCounts, float, float]], costs: Costs
                ) -> DayEnergy:
    """The gateway's joules a day: ``flows`` is (counts, inferences/day, µJ/inference) each.

    Events cost encoding, the radio's time on air for one 11-byte uplink, and two storage
    writes each.
    """
    inference = sum(n * uj for _, n, uj in flows) / 1e6
    day = _events_day(board, sum(c.events_per_day for c, _, _ in flows), costs)
    return DayEnergy(board=day.board, inference=inference, encode=day.encode, radio=day.radio,
                     storage=day.storage)


def _events_day(board: Board, events: float, costs: Costs) -> DayEnergy:
    """The board all day and ``events`` events sent, no inference."""
    radio_uj = lorawan_time_on_air(EVENT_BYTES, costs.lora_dr) * costs.radio_tx_w * 1e6
    return DayEnergy(board=board.idle_w * DAY_S, inference=0.0,
                     encode=events * costs.encode_uj / 1e6, radio=events * radio_uj / 1e6,
                     storage=events * WRITES_PER_EVENT * costs.storage_uj_per_write / 1e6)


@dataclass(frozen=True)
class Scenario:
    """One way of running the site, a day of it."""

    key: str
    name: str
    energy: DayEnergy
    upstream_bytes_per_day: float
    uplinks_per_day: int
    airtime_s_per_day: float
    airtime_verdict: str
    alarms: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def yearly(self, prices: Prices) -> dict[str, float]:
        k = kwh(self.energy.total) * DAYS_PER_YEAR
        mb_month = cellular_mb_per_month(self.upstream_bytes_per_day)
        return {"kwh": k, "co2_kg": co2_kg(k, prices),
                "electricity_eur": electricity_eur(k, prices),
                "cellular_mb_per_month": mb_month,
                "cellular_eur": mb_month * 12 * prices.cellular_eur_per_mb,
                "total_eur": electricity_eur(k, prices) + mb_month * 12
                * prices.cellular_eur_per_mb}

    def as_dict(self, prices: Prices) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "energy_per_day": self.energy.as_dict(),
                "upstream_bytes_per_day": self.upstream_bytes_per_day,
                "uplinks_per_day": self.uplinks_per_day,
                "airtime_s_per_day": self.airtime_s_per_day,
                "airtime_verdict": self.airtime_verdict, "alarms": self.alarms,
                "notes": list(self.notes), "per_year": self.yearly(prices)}


def scenarios(board: Board, flows: list[tuple[FlowCounts, float, float]], costs: Costs,
              fair_use_s: float, baseline_events_per_day: Optional[float] = None,
              alarms: Optional[dict[str, dict[str, Any]]] = None) -> list[Scenario]:
    """(a) frugalai, events only; (b) every raw byte streamed upstream; (c) no AI.

    All three from the same counted flows. (b) runs no model and sends the raw bytes read,
    packed into full LoRaWAN uplinks (or as cellular megabytes). (c) runs no model either
    (a threshold rule costs nothing measurable) and sends the events its rule would raise:
    ``baseline_events_per_day`` when the cards give a rate, else the same number as (a).
    """
    alarms = alarms or {}
    events = sum(c.events_per_day for c, _, _ in flows)
    ours = gateway_day(board, flows, costs)
    up = events * EVENT_BYTES
    air, n = lora_airtime_s(up, costs.lora_dr, per_message=EVENT_BYTES)
    a = Scenario("a", "frugalai: events only", ours, up, n, air, airtime_verdict(air, fair_use_s),
                 alarms.get("model", {}))
    raw = sum(c.raw_bytes_per_day for c, _, _ in flows)
    air_b, n_b = lora_airtime_s(raw, costs.lora_dr)
    stream = DayEnergy(board=ours.board, inference=0.0, encode=0.0,
                       radio=air_b * costs.radio_tx_w,
                       storage=n_b * costs.storage_uj_per_write / 1e6)
    b_notes = ("no model on the gateway; raw bytes as read, packed into "
               f"{EU868_MAX_PAYLOAD[costs.lora_dr]}-byte uplinks at DR{costs.lora_dr}",
               "radio energy as if LoRaWAN could carry it; a cellular modem's own draw "
               "is not counted")
    b = Scenario("b", "stream the raw readings upstream", stream, raw, n_b, air_b,
                 airtime_verdict(air_b, fair_use_s), {}, b_notes)
    base_events = events if baseline_events_per_day is None else baseline_events_per_day
    no_ai = _events_day(board, base_events, costs)
    up_c = base_events * EVENT_BYTES
    air_c, n_c = lora_airtime_s(up_c, costs.lora_dr, per_message=EVENT_BYTES)
    c_notes: tuple[str, ...] = (
        "same events as (a)" if baseline_events_per_day is None else
        "events scaled by the baseline's alarm rate against the model's (cards)",)
    method = alarms.get("baseline", {}).get("method")
    if method:
        c_notes += (f"the rule: {method}",)
    c = Scenario("c", "no AI: the non-AI baseline rule", no_ai, up_c, n_c, air_c,
                 airtime_verdict(air_c, fair_use_s), alarms.get("baseline", {}), c_notes)
    return [a, b, c]


# --- what the anomalies were worth -------------------------------------------------------------

def alarm_excess(windows: list[tuple[float, float, float]]) -> dict[str, float]:
    """Energy of alarmed windows above (and below) the learned profile.

    ``windows``: (seconds, observed W, expected W) of each window an alarm covered.

    >>> alarm_excess([(900, 3000.0, 1000.0), (900, 500.0, 1000.0)])
    {'excess_kwh': 0.5, 'deficit_kwh': 0.125, 'hours': 0.5}
    """
    above = sum(s * max(obs - exp, 0.0) for s, obs, exp in windows) / 3.6e6
    below = sum(s * max(exp - obs, 0.0) for s, obs, exp in windows) / 3.6e6
    return {"excess_kwh": above, "deficit_kwh": below,
            "hours": sum(s for s, _, _ in windows) / 3600}
