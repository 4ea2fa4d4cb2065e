"""Published tidal harmonic constants (the ``tide_constants`` table of the shared data).

The table (``stations.json.gz``: NOAA CO-OPS and TICON-4 records, each with its own licence and
attribution) is read at training time only; the constants a bundle needs are copied into its
card with the record's attribution, so the gateway never needs the table.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any, Union

from frugalai.errors import FrugalError
from frugalai.features.tide import Tide, from_constants

#: Where the shared data keeps the table, relative to a data folder.
TABLE = "coastal/tide_constants/stations.json.gz"


class StationError(FrugalError, ValueError):
    """Unknown station id or unreadable table; the message says which."""


def load_table(path: Union[str, Path]) -> list[dict[str, Any]]:
    path = Path(path)
    if path.is_dir():
        path = path / TABLE if (path / TABLE).is_file() else path / "stations.json.gz"
    if not path.is_file():
        raise StationError(f"tide constants table not found: {path} (give --tide-table)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        doc = json.load(fh)
    stations = doc["stations"] if isinstance(doc, dict) else doc
    return list(stations)


def find_station(stations: list[dict[str, Any]], station_id: str) -> dict[str, Any]:
    """A record by id (``noaa/8454000``), bare NOAA number (``8454000``) or TICON name
    (``brest-3-fra-refmar``); StationError listing a few known ids otherwise."""
    key = station_id.strip().lower()
    for r in stations:
        rid = str(r["id"]).lower()
        if key in (rid, rid.split("/", 1)[-1]):
            return r
    near = [r["id"] for r in stations if key.split("/")[-1][:4] in str(r["id"]).lower()]
    known = near or [r["id"] for r in stations][:8]
    raise StationError(f"unknown tide station {station_id!r}; known ids include "
                       f"{', '.join(map(str, known))}")


def station_tide(record: dict[str, Any]) -> tuple[Tide, list[str]]:
    """The station's tide about its mean sea level above its chart datum (when both are
    given), with where the constants came from in ``meta``."""
    datums = record.get("datums") or {}
    chart = record.get("chart_datum")
    z0 = 0.0
    if "MSL" in datums and chart in datums:
        z0 = float(datums["MSL"]) - float(datums[chart])
    lic = record.get("license") or {}
    meta = {"source": "published constants", "station": record["id"],
            "name": record.get("name"), "chart_datum": chart,
            "z0": f"MSL above {chart} from the record's datums" if z0 else "0 (no datums)",
            "epoch": record.get("epoch"), "attribution": record.get("attribution"),
            "license": lic.get("type"), "license_url": lic.get("url"),
            "origin": (record.get("source") or {}).get("name")}
    return from_constants(record["harmonic_constituents"], z0, meta)
