"""Map TIC labels to named quantities with units (pure), and derive power from energy indexes.

Names are the same in both modes where the quantity is the same, so a model trained on one
meter runs on the other: ``PAPP`` (historique) and ``SINSTS`` (standard) both give
``apparent_power_va``. Single-phase meters give plain names (``current_a``, ``voltage_v``);
three-phase meters give per-phase names (``current_l1_a`` .. ``current_l3_a``) in both modes.

Units follow Enedis-NOI-CPT_54E §6: VA, Wh, A, V, W, VArh; ``PREF``/``PCOUP`` are in kVA on the
wire and converted to VA here.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Optional

from frugalai.errors import DecodeError
from frugalai.protocols.tic import TicFrame


def _phases(label: str, name: str, unit: str) -> dict[str, tuple[str, str, float]]:
    """label1..3 -> name_l1..3 (``current`` + ``a`` -> ``current_l1_a``)."""
    return {f"{label}{i}": (f"{name}_l{i}_{unit.lower()}", unit, 1.0) for i in (1, 2, 3)}


#: label -> (quantity name, unit, multiplier). Numeric labels only; text labels go to ``meta``.
NUMERIC_LABELS: Mapping[str, tuple[str, str, float]] = {
    # historique (54E §6.1.1)
    "PAPP": ("apparent_power_va", "VA", 1.0),
    "IINST": ("current_a", "A", 1.0),
    **_phases("IINST", "current", "A"),
    "ISOUSC": ("subscribed_current_a", "A", 1.0),
    "IMAX": ("max_current_a", "A", 1.0),
    **_phases("IMAX", "max_current", "A"),
    "ADPS": ("overcurrent_a", "A", 1.0),
    **_phases("ADIR", "overcurrent", "A"),
    "PMAX": ("max_power_w", "W", 1.0),
    "BASE": ("energy_base_wh", "Wh", 1.0),
    "HCHC": ("energy_hc_wh", "Wh", 1.0),
    "HCHP": ("energy_hp_wh", "Wh", 1.0),
    "EJPHN": ("energy_ejp_hn_wh", "Wh", 1.0),
    "EJPHPM": ("energy_ejp_hpm_wh", "Wh", 1.0),
    **{f"BBRH{p}J{c}": (f"energy_bbr_{p.lower()}_j{c.lower()}_wh", "Wh", 1.0)
       for p in ("C", "P") for c in ("B", "W", "R")},
    # standard (54E §6.2.2)
    "SINSTS": ("apparent_power_va", "VA", 1.0),
    **_phases("SINSTS", "apparent_power", "VA"),
    "SINSTI": ("injected_apparent_power_va", "VA", 1.0),
    "SMAXSN": ("max_apparent_power_va", "VA", 1.0),
    **_phases("SMAXSN", "max_apparent_power", "VA"),
    "SMAXSN-1": ("max_apparent_power_yesterday_va", "VA", 1.0),
    "SMAXIN": ("max_injected_apparent_power_va", "VA", 1.0),
    "SMAXIN-1": ("max_injected_apparent_power_yesterday_va", "VA", 1.0),
    "CCASN": ("load_curve_power_w", "W", 1.0),
    "CCASN-1": ("load_curve_power_previous_w", "W", 1.0),
    "CCAIN": ("injected_load_curve_power_w", "W", 1.0),
    "CCAIN-1": ("injected_load_curve_power_previous_w", "W", 1.0),
    "EAST": ("energy_total_wh", "Wh", 1.0),
    **{f"EASF{i:02d}": (f"energy_f{i:02d}_wh", "Wh", 1.0) for i in range(1, 11)},
    **{f"EASD{i:02d}": (f"energy_d{i:02d}_wh", "Wh", 1.0) for i in range(1, 5)},
    "EAIT": ("energy_injected_wh", "Wh", 1.0),
    **{f"ERQ{i}": (f"reactive_energy_q{i}_varh", "VArh", 1.0) for i in range(1, 5)},
    "IRMS1": ("current_a", "A", 1.0),
    "IRMS2": ("current_l2_a", "A", 1.0),
    "IRMS3": ("current_l3_a", "A", 1.0),
    "URMS1": ("voltage_v", "V", 1.0),
    "URMS2": ("voltage_l2_v", "V", 1.0),
    "URMS3": ("voltage_l3_v", "V", 1.0),
    "UMOY1": ("mean_voltage_v", "V", 1.0),
    "UMOY2": ("mean_voltage_l2_v", "V", 1.0),
    "UMOY3": ("mean_voltage_l3_v", "V", 1.0),
    "PREF": ("subscribed_power_va", "VA", 1000.0),
    "PCOUP": ("cutoff_power_va", "VA", 1000.0),
    "NTARF": ("tariff_index", "", 1.0),
    "NJOURF": ("tempo_day", "", 1.0),
    "NJOURF+1": ("tempo_day_next", "", 1.0),
}

#: In a three-phase standard frame, phase-1 labels take per-phase names like the others.
THREE_PHASE_L1: Mapping[str, str] = {
    "IRMS1": "current_l1_a", "URMS1": "voltage_l1_v", "UMOY1": "mean_voltage_l1_v",
}

TEXT_LABELS = frozenset({"ADCO", "ADSC", "OPTARIF", "PTEC", "NGTF", "LTARF", "MOTDETAT", "DEMAIN",
                         "HHPHC", "PPOT", "STGE", "VTIC", "PRM", "MSG1", "MSG2", "RELAIS"})

#: Historique index labels summed into ``energy_total_wh`` (standard meters give EAST).
ENERGY_INDEXES = ("BASE", "HCHC", "HCHP", "EJPHN", "EJPHPM", "BBRHCJB", "BBRHPJB", "BBRHCJW",
                  "BBRHPJW", "BBRHCJR", "BBRHPJR")


@dataclass(frozen=True)
class Horodate:
    """A decoded ``SAAMMJJhhmmss`` timestamp (54E §6.2.1.1).

    Attributes:
        ts: UNIX time, using the season flag for the offset (E = UTC+2, H = UTC+1, none: UTC+1).
        season: ``"E"`` (summer), ``"H"`` (winter) or ``""`` (not applicable).
        degraded: the meter's clock is in degraded mode (lowercase season letter).
    """

    ts: float
    season: str
    degraded: bool
    local: str

    @property
    def iso(self) -> str:
        offset = "+02:00" if self.season == "E" else "+01:00"
        return f"{self.local}{offset}"


def parse_horodate(text: str) -> Horodate:
    """Decode a 13-character horodate.

    >>> h = parse_horodate("H081225223518")
    >>> h.iso, h.degraded
    ('2008-12-25T22:35:18+01:00', False)
    >>> parse_horodate("e180716103423").degraded
    True
    >>> parse_horodate("H080231223518")
    Traceback (most recent call last):
    frugalai.errors.DecodeError: TIC horodate: 'H080231223518': day is out of range for month
    """
    if len(text) != 13 or not text[1:].isdigit() or text[0] not in "EeHh ":
        raise DecodeError(f"TIC horodate: expected SAAMMJJhhmmss, got {text!r}")
    season = text[0].upper().strip()
    year, month, day, hh, mm, ss = (int(text[i : i + 2]) for i in range(1, 13, 2))
    if not (1 <= month <= 12 and 1 <= day <= 31 and hh < 24 and mm < 60 and ss < 60):
        raise DecodeError(f"TIC horodate out of range: {text!r}")
    offset = 7200 if season == "E" else 3600
    try:
        # datetime checks the day against the month (31 February would pass timegm, and
        # later crash a consumer that parses the ISO text back)
        datetime(2000 + year, month, day, hh, mm, ss)
        ts = calendar.timegm((2000 + year, month, day, hh, mm, ss, 0, 0, 0)) - offset
    except (ValueError, OverflowError) as err:
        raise DecodeError(f"TIC horodate: {text!r}: {err}") from None
    local = f"{2000 + year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
    return Horodate(float(ts), season, text[0].islower(), local)


#: The widest TIC number is 9 digits (energy indexes, 54E §6); a longer one is corruption, and
#: bounding it keeps a 309-digit value from overflowing ``float`` (an OverflowError, not a
#: DecodeError, would have restarted the flow).
MAX_DIGITS = 12


def _number(label: str, data: str) -> float:
    # TIC numbers are unsigned, zero-padded decimals: a sign, a dot, "nan" or "inf" is corruption.
    digits = data.strip()
    if not digits.isdigit() or not digits.isascii():
        raise DecodeError(f"TIC {label}: expected an unsigned integer, got {data!r}")
    if len(digits) > MAX_DIGITS:
        raise DecodeError(f"TIC {label}: {len(digits)} digits, at most {MAX_DIGITS} expected: "
                          f"{data[:20]!r}...")
    return float(int(digits))


def frame_values(frame: TicFrame) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """Return (values, units, meta) for one frame.

    ``meta`` holds the text labels (lowercased keys) and, from the standard ``DATE`` group,
    ``date`` (ISO 8601 with offset) and ``clock_degraded`` (``"1"``/``"0"``).

    Raises:
        DecodeError: a numeric label whose data is not an unsigned integer, or a bad horodate
            (corrupted but checksum-valid data is rare, but a wrong label map is not).
    """
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    meta: dict[str, str] = {}
    groups = frame.as_dict()
    three_phase = any(lb in groups for lb in ("IRMS2", "IRMS3", "IINST2", "IINST3", "URMS2", "URMS3"))
    for group in frame.groups:
        label, data = group.label, group.data
        if label == "DATE" and group.horodate is not None:
            h = parse_horodate(group.horodate)
            meta["date"] = h.iso
            meta["clock_degraded"] = "1" if h.degraded else "0"
        elif label in NUMERIC_LABELS:
            name, unit, mult = NUMERIC_LABELS[label]
            if three_phase and label in THREE_PHASE_L1:
                name = THREE_PHASE_L1[label]
            values[name] = _number(label, data) * mult
            if unit:
                units[name] = unit
            if group.horodate is not None:
                parse_horodate(group.horodate)  # validated; the time of a maximum is not a value
        elif label in TEXT_LABELS:
            meta[label.lower()] = data.strip(" .")
    if "energy_total_wh" not in values:
        indexes = [values[NUMERIC_LABELS[lb][0]] for lb in ENERGY_INDEXES if lb in groups]
        if indexes:
            values["energy_total_wh"] = float(sum(indexes))
            units["energy_total_wh"] = "Wh"
    return values, units, meta


class EnergyRate:
    """Active power (W) from successive readings of an energy index (Wh).

    The TIC gives apparent power (VA) but active energy only as a 1 Wh index; a delta between
    consecutive frames (1-2 s apart) would be quantised to ~2 kW steps. So the rate is taken over
    at least ``min_interval_s`` and held between updates. A counter that goes backwards (meter
    replaced, index reset) restarts the measurement and is counted in ``resets``.

    >>> r = EnergyRate(min_interval_s=60)
    >>> r.update(0.0, 1000.0), r.update(30.0, 1005.0), r.update(60.0, 1010.0)
    (None, None, 600.0)
    """

    def __init__(self, min_interval_s: float = 60.0) -> None:
        self.min_interval_s = min_interval_s
        self.resets = 0
        self._anchor: Optional[tuple[float, float]] = None
        self._last: Optional[float] = None

    def update(self, ts: float, energy_wh: float) -> Optional[float]:
        """Feed one index reading; return the current power estimate (None until known)."""
        if self._anchor is None:
            self._anchor = (ts, energy_wh)
            return self._last
        t0, e0 = self._anchor
        if energy_wh < e0 or ts < t0:
            self.resets += 1
            self._anchor = (ts, energy_wh)
            self._last = None
            return None
        if ts - t0 >= self.min_interval_s:
            self._last = (energy_wh - e0) * 3600.0 / (ts - t0)
            self._anchor = (ts, energy_wh)
        return self._last

    def __repr__(self) -> str:
        return f"EnergyRate(min_interval_s={self.min_interval_s})"
