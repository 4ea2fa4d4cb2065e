"""The whole life cycle of the gateway, a year of it, each part with its source; and the rule
that **a total with an unknown part is not a total**.

Parts: the board's manufacture (its product carbon footprint spread over the years it is used),
the board's own power all day, and what the work adds (inference, encoding, the radio's time on
air = the network, the outbox's writes = storage). Each part carries kWh/year, kg CO2e/year and
€/year where they apply, and where the figure comes from. When a part is unknown (a board with no
power figure, a manufacture figure nobody gave), the totals it enters are ``None`` and
``missing`` names the config key to set: the report prints that line instead of a total.
Pure: numbers in, numbers out.
"""

from __future__ import annotations

from typing import Any, Optional

#: the config keys a user sets to make an unknown part known (the editions say it in words:
#: ``set_energy.board`` and ``set_energy.board_embodied_kg_co2e`` of :mod:`frugalai.report.i18n`)
SET_BOARD = "energy.board"
SET_EMBODIED = "energy.board_embodied_kg_co2e"


def life_cycle(gateway_j_per_day: dict[str, float], board_known: bool, board_source: str,
               e: Any) -> dict[str, Any]:
    """The year's parts and totals; ``e`` is the config's ``[energy]`` table."""
    g = gateway_j_per_day
    kwh_year = {k: g[k] / 3.6e6 * 365 for k in ("board_j", "inference_j", "encode_j",
                                                 "radio_j", "storage_j")}
    factor = e.co2_g_per_kwh / 1000.0
    price = e.electricity_eur_per_kwh

    def use(key: str, name: str, source: str, known: bool = True) -> dict[str, Any]:
        k = kwh_year[key] if known else None
        return {"part": name, "kwh_per_year": k,
                "kg_co2e_per_year": None if k is None else k * factor,
                "eur_per_year": None if k is None else k * price, "source": source,
                "set": None if known else SET_BOARD}

    embodied_known = e.board_embodied_kg_co2e >= 0
    manufacture = {
        "part": "manufacture", "kwh_per_year": None, "eur_per_year": None,
        "kg_co2e_per_year": (e.board_embodied_kg_co2e / e.board_lifetime_years
                             if embodied_known else None),
        "kg_co2e": e.board_embodied_kg_co2e if embodied_known else None,
        "lifetime_years": e.board_lifetime_years,
        "source": e.board_embodied_source if embodied_known else "",
        "set": None if embodied_known else SET_EMBODIED}
    parts = [manufacture,
             use("board_j", "board", board_source, board_known),
             use("inference_j", "inference", "benchmark (energy per inference x inferences)"),
             use("encode_j", "encoding", "benchmark (encode-binary)"),
             use("radio_j", "network", "LoRa time on air x radio transmit power"),
             use("storage_j", "storage", e.storage_source)]
    use_parts = parts[1:]

    def total(key: str, among: list[dict[str, Any]]) -> Optional[float]:
        vals = [p[key] for p in among]
        return None if any(v is None for v in vals) else float(sum(vals))

    missing = [p["set"] for p in parts if p["set"]]
    return {
        "parts": parts,
        "kwh_per_year": total("kwh_per_year", use_parts),
        "eur_per_year": total("eur_per_year", use_parts),
        "kg_co2e_per_year_use": total("kg_co2e_per_year", use_parts),
        "kg_co2e_per_year": total("kg_co2e_per_year", parts),
        "missing": missing,
        "factors": {
            "co2": {"g_per_kwh": e.co2_g_per_kwh, "source": e.co2_source, "year": e.co2_year,
                    "basis": e.co2_basis, "scope": e.co2_scope},
            "electricity": {"eur_per_kwh": price, "source": e.electricity_price_source,
                            "date": e.electricity_price_date, "scope": "price incl. taxes"},
            "manufacture": {"kg_co2e": manufacture["kg_co2e"],
                            "lifetime_years": e.board_lifetime_years,
                            "source": manufacture["source"], "scope": "life cycle (cradle to "
                            "gate)"},
        },
    }
