"""Map TIC labels to named quantities with units (pure).

Names are the same in both modes where the quantity is the same, so a model trained on one
meter runs on the other: ``PAPP`` (historique) and ``SINSTS`` (standard) both give
``apparent_power_va``.
"""

from __future__ import annotations

from collections.abc import Mapping

from frugalai.errors import DecodeError
from frugalai.protocols.tic import TicFrame

#: label -> (quantity name, unit). Numeric labels only; text labels go to ``meta``.
NUMERIC_LABELS: Mapping[str, tuple[str, str]] = {
    # historique
    "PAPP": ("apparent_power_va", "VA"),
    "IINST": ("current_a", "A"),
    "IINST1": ("current_l1_a", "A"),
    "IINST2": ("current_l2_a", "A"),
    "IINST3": ("current_l3_a", "A"),
    "ISOUSC": ("subscribed_current_a", "A"),
    "IMAX": ("max_current_a", "A"),
    "BASE": ("energy_base_wh", "Wh"),
    "HCHC": ("energy_hc_wh", "Wh"),
    "HCHP": ("energy_hp_wh", "Wh"),
    # standard
    "SINSTS": ("apparent_power_va", "VA"),
    "EAST": ("energy_total_wh", "Wh"),
    "IRMS1": ("current_a", "A"),
    "URMS1": ("voltage_v", "V"),
}

TEXT_LABELS = frozenset({"ADCO", "ADSC", "OPTARIF", "PTEC", "NGTF", "LTARF", "MOTDETAT"})

#: Index labels summed into ``energy_total_wh`` when the meter gives several tariff indexes.
ENERGY_INDEXES = ("BASE", "HCHC", "HCHP")


def frame_values(frame: TicFrame) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    """Return (values, units, meta) for one frame.

    Raises:
        DecodeError: a numeric label whose data is not a number (corrupted but checksum-valid
            data is rare, but a wrong label map is not).
    """
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    meta: dict[str, str] = {}
    groups = frame.as_dict()
    for label, data in groups.items():
        if label in NUMERIC_LABELS:
            name, unit = NUMERIC_LABELS[label]
            try:
                values[name] = float(int(data.strip()))
            except ValueError:
                raise DecodeError(f"TIC {label}: expected an integer, got {data!r}") from None
            units[name] = unit
        elif label in TEXT_LABELS:
            meta[label.lower()] = data.strip(" .")
    if "energy_total_wh" not in values:
        indexes = [values[NUMERIC_LABELS[lb][0]] for lb in ENERGY_INDEXES if lb in groups]
        if indexes:
            values["energy_total_wh"] = float(sum(indexes))
            units["energy_total_wh"] = "Wh"
    return values, units, meta
