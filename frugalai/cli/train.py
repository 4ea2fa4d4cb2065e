"""``frugalai train``: an anomaly or coastal bundle from a user's data."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click

from frugalai.cli.core import (
    Steps,
    cli,
    command_line,
    file_info,
    user_input_errors,
    year_range,
)


def _bundle_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The card schema's rule for a name, checked before minutes of training."""
    from frugalai.errors import CardError
    from frugalai.runtime.card_schema import NAME

    try:
        NAME.check(value, "name")
    except CardError as err:
        raise click.BadParameter(str(err).split(": ", 1)[1]) from None
    return value


@cli.group("train")
def train_group() -> None:
    """Train a model and write its bundle (needs the 'train' extra)."""


@train_group.command("anomaly")
@click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
              help="Your series (CSV or .csv.gz; , ; or tab; UTF-8 or Latin-1). Without it: "
                   "the reference data (--data-dir).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The shared data folder (rebuilds the shipped bundle from Dutch 1997).")
@click.option("--time-col", default=None, help="Time column (default: the first that parses).")
@click.option("--value-col", default=None, help="Value column (default: the first numeric).")
@click.option("--time-format", default=None, help="strptime format (default: ISO 8601 or UNIX s).")
@click.option("--tz", default=None,
              help="Time zone of naive times and of the site's day: ±HH:MM or a name like "
                   "Europe/Paris (its standard offset sets the day slots).")
@click.option("--utc-offset", type=float, default=None,
              help="Hours to add to UTC for naive timestamps (older spelling of --tz).")
@click.option("--aggregate", type=click.Choice(["mean", "rate"]), default="mean",
              show_default=True, help="mean of the values, or rate of an energy counter.")
@click.option("--quantity", default="power", show_default=True,
              help="'power' keeps the power floors; anything else (temperature, flow...) uses "
                   "the series' own noise as the floor and one day type.")
@click.option("--window", "window_s", type=click.IntRange(60, 3600), default=None,
              help="Window seconds, dividing a day (default: 900 for power, else 3600).")
@click.option("--until", default=None,
              help="Train on rows before this time (ISO, same zone as the data); score the "
                   "rest with frugalai evaluate/score --start.")
@click.option("--tz-offset", type=float, default=None,
              help="Site local time offset for day slots, hours (default: from --tz, else 1).")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Bundle directory to write.")
@click.option("--name", default="energy-anomaly", show_default=True, callback=_bundle_name,
              help="The bundle's name (A-Z a-z 0-9 . _ -, at most 64).")
def train_anomaly(data: Optional[str], data_dir: Optional[str], time_col: Optional[str],
                  value_col: Optional[str], time_format: Optional[str], tz: Optional[str],
                  utc_offset: Optional[float], aggregate: str, quantity: str,
                  window_s: Optional[int], until: Optional[str], tz_offset: Optional[float],
                  out: str, name: str) -> None:
    """Fit the anomaly model on a series' history (a meter, or any sensor)."""
    from datetime import datetime as _dt
    from pathlib import Path

    from frugalai.extras import require

    require("train")
    from frugalai.learn.csvio import DataError, _parse_times, parse_tz, tz_label
    from frugalai.learn.data import Series, load_dutch, read_user_csv
    from frugalai.learn.energy import train_energy

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your CSV) or --data-dir")
    with user_input_errors():
        if data is not None:
            zone_text = tz if tz is not None else (
                f"{utc_offset:+03.0f}:00" if utc_offset is not None else None)
            zone = parse_tz(zone_text)
            delta = zone.utcoffset(_dt(2001, 1, 15))
            site_h = tz_offset if tz_offset is not None else (
                delta.total_seconds() / 3600 if zone_text is not None and delta is not None
                else 1.0)
            win = window_s or (900 if quantity == "power" else 3600)
            if 86400 % win:
                raise DataError(f"--window {win} s does not divide a day")
            series = read_user_csv(data, time_col, value_col, time_format, 0.0,  # type: ignore[arg-type]
                                   win, aggregate, tz=zone_text or "UTC")
            info = file_info(data)
            if until is not None:
                cut = float(_parse_times([until], None, zone)[0])
                if cut != cut:
                    raise DataError(f"--until {until!r} is not a time")
                keep = series.ts < cut
                if keep.sum() < 2:
                    raise DataError(f"no data before --until {until}")
                series = Series(series.ts[keep], series.values[keep], None, series.source)
                info["until"] = until
            with Steps(["features", "fit", "export"]) as steps:
                card = train_energy(series, Path(out), {"tz_offset_h": site_h,
                                                        "slot_s": win},
                                    name=name, progress=steps, quantity=quantity,
                                    data_info=info,
                                    time_zone=tz_label(zone) if zone_text else None)
        else:
            assert data_dir is not None
            with Steps(["features", "fit", "evaluate", "nab check", "compare", "export"]) as steps:
                card = train_energy(load_dutch(data_dir), Path(out), {"tz_offset_h": 0.0},
                                    warm_start_days=21, name=name, data_dir=Path(data_dir),
                                    compare=True, progress=steps)
    click.echo(json.dumps({"bundle": out, "rows": card["data"]["rows"],
                           "metrics": card.get("metrics", {}).get("fp32"),
                           "flow_defaults": card.get("flow_defaults"),
                           "sizes_bytes": card["sizes_bytes"]}, indent=2))



@train_group.command("coastal")
@click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
              help="Your gauge's record: CSV (or .csv.gz), any of , ; tab, UTF-8 or Latin-1.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The shared data folder (Providence 8454000, the shipped bundle).")
@click.option("--time-col", default=None, help="Time column (default: the first that parses).")
@click.option("--level-col", default=None, help="Level column (default: the first numeric).")
@click.option("--time-format", default=None, help="strptime format (default: ISO 8601).")
@click.option("--tz", default=None,
              help="Time zone of naive times: ±HH:MM or a name (default UTC; Providence: -05:00).")
@click.option("--threshold", type=float, default=None,
              help="Flood threshold, m, same datum as the levels (Providence: HAT 1.987 m MLLW).")
@click.option("--tide", "tide_station", default=None,
              help="Use a station's published constants (e.g. noaa/8454000, "
                   "brest-3-fra-refmar) instead of fitting the tide.")
@click.option("--tide-table", type=click.Path(), default=None,
              help="stations.json.gz (default: <data-dir or ../shared/data>/coastal/"
                   "tide_constants).")
@click.option("--tide-years", default=None, help="YEAR-YEAR of the tide fit (default: training).")
@click.option("--train-until", type=int, default=None, help="Last training year.")
@click.option("--valid-years", default=None, help="YEAR-YEAR validated on.")
@click.option("--horizon", type=click.IntRange(1, 24), default=3, show_default=True,
              help="Hours ahead.")
@click.option("--hidden", type=click.IntRange(2, 256), default=16, show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False), required=True)
@click.option("--name", default="coastal-submersion", show_default=True,
              callback=_bundle_name, help="The bundle's name (A-Z a-z 0-9 . _ -, at most 64).")
def train_coastal_cmd(data: Optional[str], data_dir: Optional[str], time_col: Optional[str],
                      level_col: Optional[str], time_format: Optional[str], tz: Optional[str],
                      threshold: Optional[float], tide_station: Optional[str],
                      tide_table: Optional[str], tide_years: Optional[str],
                      train_until: Optional[int], valid_years: Optional[str], horizon: int,
                      hidden: int, out: str, name: str) -> None:
    """Fit the submersion nowcast (tide + MLP) on a gauge's record; compare it with the rule.

    \b
    Your gauge:  frugalai train coastal --data gauge.csv.gz --tz +01:00 --threshold 7.2 --out b
    Providence:  frugalai train coastal --data-dir ../shared/data --out models/coastal-submersion
    """
    from datetime import datetime as _dt
    from pathlib import Path

    from frugalai.extras import require

    require("train")
    from frugalai.learn.coastal import PROVIDENCE_HAT_M, train_coastal
    from frugalai.learn.csvio import DataError, parse_tz, tz_label
    from frugalai.learn.data import PROVIDENCE, load_providence, read_level_csv
    from frugalai.learn.tide_stations import find_station, load_table, station_tide

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your gauge's CSV) or --data-dir")
    command = command_line(sys.argv[1:] if sys.argv and "frugalai" in sys.argv[0]
                            else ["train", "coastal"])
    with user_input_errors():
        vy = year_range(valid_years, "--valid-years")
        ty = year_range(tide_years, "--tide-years")
        if data is not None:
            if threshold is None:
                raise DataError("give --threshold: the site's flood level, in the data's datum")
            zone = parse_tz(tz)
            delta = zone.utcoffset(_dt(2000, 1, 1))
            offset_h = delta.total_seconds() / 3600 if delta is not None else 0.0
            series = read_level_csv(data, time_col, level_col, time_format, tz)
            info = file_info(data, time_col=time_col, level_col=level_col)
            if (train_until is None) != (vy is None):
                raise DataError("give both --train-until and --valid-years, or neither "
                                "(then the last quarter of the record validates)")
            split: dict[str, Any] = {"tide_years": ty, "train_until": train_until,
                                     "valid_years": vy}
            zone_text = tz_label(zone)
        else:
            assert data_dir is not None
            series = load_providence(data_dir)
            files = sorted((Path(data_dir) / PROVIDENCE).glob("providence_8454000_hourly_*.csv.gz"))
            info = {"source": series.source,
                    "files": [file_info(str(f)) for f in files]}
            offset_h = -5.0
            threshold = PROVIDENCE_HAT_M if threshold is None else threshold
            split = {"tide_years": ty or (1971, 1990), "train_until": train_until or 1990,
                     "valid_years": vy or (1991, 2005)}
            zone_text = "UTC-05:00 (local standard time, no DST; read as such)"
        tide = None
        if tide_station is not None:
            table = tide_table or str(Path(data_dir or "../shared/data"))
            tide, skipped = station_tide(find_station(load_table(table), tide_station))
            if skipped:
                click.echo(f"note: constituents not used: {', '.join(skipped)}", err=True)
        with Steps(["tide fit", "features", "fit", "evaluate", "export"]) as steps:
            card = train_coastal(series, Path(out), threshold, horizon, hidden=hidden,
                                 name=name, progress=steps, tide=tide, utc_offset_h=offset_h,
                                 time_zone=zone_text, data_info=info, command=command,
                                 **split)
    v = card["metrics"]["validation"]
    click.echo(json.dumps({"bundle": out, "decision_default": card["decision"]["default"],
                           "validation": {k: {"hourly": v[k]["flood"],
                                              "episodes": v[k]["flood_events"]}
                                          for k in ("model_fp32", "model_int8", "baseline")},
                           "sizes_bytes": card["sizes_bytes"]}, indent=2))

