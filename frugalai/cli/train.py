"""``frugalai train``: an anomaly or coastal bundle from a user's data."""

from __future__ import annotations

import sys
from typing import Any, Optional

import click

from frugalai.cli.core import (
    Steps,
    absorb,
    cli,
    command_line,
    echo_resolved,
    emit,
    file_info,
    run_meta,
    user_input_errors,
    year_range,
)
from frugalai.features.slots import DAY_TYPES


def trained_warnings(card: dict[str, Any]) -> list[str]:
    """What a finished training must say: the card's own warnings, and int8 not shipped."""
    out = [str(w) for w in card.get("warnings", [])]
    q = card.get("int8") or {}
    if q and not q.get("kept", True):
        agree = (q.get("decision_agreement_with_fp32") or {}).get("reference_tflite_int8")
        err = (q.get("error_over_output_span") or {}).get("reference_tflite_int8")
        out.append(f"int8 not shipped: decision agreement {agree} (min "
                   f"{q.get('min_decision_agreement')}), error {err} of the output span (max "
                   f"{q.get('max_error_over_output_span')}); the bundle runs fp32 only")
    return out


def _bundle_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """The card schema's rule for a name, checked before minutes of training."""
    from frugalai.errors import CardError
    from frugalai.runtime.card_schema import NAME

    try:
        NAME.check(value, "name")
    except CardError as err:
        raise click.BadParameter(str(err).split(": ", 1)[1]) from None
    return value


class BundleVersion(click.ParamType):  # type: ignore[type-arg]
    """A version a rollout takes (1 to 4 dotted numbers), checked before minutes of training."""

    name = "VERSION"

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> str:
        from frugalai.errors import ModelError
        from frugalai.runtime.stamp import check_version

        try:
            return check_version(str(value))
        except ModelError as err:
            self.fail(str(err), param, ctx)


VERSION_HELP = ("The bundle's version, 1 to 4 dotted numbers (default: the UTC time, "
                "YYYY.MMDD.HHMMSS: a later training is newer); rollouts compare it.")


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
              help="Time zone of naive times and of the site's day: ±HH:MM (fixed all year) "
                   "or a name like Europe/Paris (slots and day types follow its DST).")
@click.option("--utc-offset", type=float, default=None,
              help="Hours to add to UTC for naive timestamps (older spelling of --tz).")
@click.option("--aggregate", type=click.Choice(["mean", "rate"]), default="mean",
              show_default=True, help="mean of the values, or rate of an energy counter.")
@click.option("--quantity", default="power", show_default=True,
              help="'power' keeps the power floors; anything else (temperature, flow...) uses "
                   "the series' own noise as the floor.")
@click.option("--day-types", type=click.Choice(list(DAY_TYPES)), default=None,
              help="Profiles per slot: one for every day, weekdays apart from weekends, or each "
                   "ISO weekday apart (default: weekday-weekend for power, else single).")
@click.option("--window", "window_s", type=click.IntRange(60, 3600), default=None,
              help="Window seconds, dividing a day (default: 900 for power, else 3600).")
@click.option("--start", default=None,
              help="Train on rows from this date or time (ISO, naive = in --tz).")
@click.option("--end", default=None,
              help="Train on rows before this date or time (ISO, naive = in --tz); score the "
                   "rest with frugalai evaluate/score --start.")
@click.option("--until", default=None, hidden=True, help="Deprecated spelling of --end.")
@click.option("--tz-offset", type=float, default=None,
              help="Site local time offset for day slots, hours (default: from --tz, else 1).")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Bundle directory to write.")
@click.option("--name", default="energy-anomaly", show_default=True, callback=_bundle_name,
              help="The bundle's name (A-Z a-z 0-9 . _ -, at most 64).")
@click.option("--version", "version", type=BundleVersion(), default=None, help=VERSION_HELP)
def train_anomaly(data: Optional[str], data_dir: Optional[str], time_col: Optional[str],
                  value_col: Optional[str], time_format: Optional[str], tz: Optional[str],
                  utc_offset: Optional[float], aggregate: str, quantity: str,
                  day_types: Optional[str], window_s: Optional[int], start: Optional[str],
                  end: Optional[str], until: Optional[str], tz_offset: Optional[float],
                  out: str, name: str, version: Optional[str]) -> None:
    """Fit the anomaly model on a series' history (a meter, or any sensor)."""
    from pathlib import Path

    from frugalai.extras import require

    require("train")
    from frugalai.learn.csvio import DataError
    from frugalai.learn.data import load_dutch
    from frugalai.learn.energy import train_energy
    from frugalai.learn.userdata import DataOptions
    from frugalai.learn.usertrain import prepare_anomaly

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your CSV) or --data-dir")
    if until is not None:
        click.echo("note: --until is now --end", err=True)
        end = end or until
    warnings: list[str] = []
    provenance: Optional[dict[str, Any]] = None
    with user_input_errors():
        if data is not None:
            zone_text = tz if tz is not None else (
                f"{utc_offset:+03.0f}:00" if utc_offset is not None else None)
            prep = prepare_anomaly(data, DataOptions(time_col, value_col, time_format,
                                                     zone_text, start, end),
                                   quantity=quantity, day_types=day_types, window_s=window_s,
                                   aggregate=aggregate, tz_offset_h=tz_offset,
                                   file_info=file_info(data))
            provenance = prep.resolved.provenance()
            echo_resolved(provenance, prep.warnings)
            warnings = prep.warnings
            series = prep.series
            with Steps(["features", "fit", "export"]) as steps:
                card = train_energy(prep.series, Path(out), prep.params,
                                    name=name, progress=steps, quantity=quantity,
                                    data_info=prep.info,
                                    time_zone=prep.info["time_zone"] if zone_text else None,
                                    day_types_origin=prep.resolved.origins["day_types"])
        else:
            assert data_dir is not None
            if start or end or day_types:
                raise DataError("--start, --end and --day-types apply to --data (your CSV); "
                                "--data-dir rebuilds the shipped bundle as published")
            with Steps(["features", "fit", "evaluate", "nab check", "compare", "export"]) as steps:
                series = load_dutch(data_dir)
                card = train_energy(series, Path(out), {"tz_offset_h": 0.0},
                                    warm_start_days=21, name=name, data_dir=Path(data_dir),
                                    compare=True, progress=steps)
    from frugalai.runtime.stamp import stamp_version

    card = stamp_version(out, version)
    meta = train_meta("train anomaly", out, card, data, tz if tz is not None else (
        f"{utc_offset:+03.0f}:00" if utc_offset is not None else None), series)
    absorb(meta, provenance, [*warnings, *trained_warnings(card)])
    emit(meta, {"out": out, "rows": card["data"]["rows"],
                "metrics": card.get("metrics", {}).get("fp32"),
                "flow_defaults": card.get("flow_defaults"),
                "sizes_bytes": card["sizes_bytes"], "provenance": provenance},
         printed=tuple(warnings))


def train_meta(command: str, out: str, card: dict[str, Any], data: Optional[str],
               tz: Optional[str], series: Any) -> Any:
    """The run metadata of a training: the bundle written (name, version), its int8
    backends, the data (file and sha256, or the reference data's source), the period read."""
    import numpy as np

    from frugalai.runtime.bundle import bundle_version, verify_bundle

    meta = run_meta(command, None, data, tz)
    bundle = verify_bundle(out)
    meta.bundle, meta.version = bundle.name, bundle_version(bundle)
    meta.precision = "fp32+int8" if card.get("int8", {}).get("kept") else "fp32"
    meta.backend = "+".join(sorted(card.get("artifacts", {})))
    if data is None:
        meta.data_file = str(card.get("data", {}).get("source"))
        meta.zone = str(card.get("data", {}).get("time_zone") or "UTC")
        meta.origin("zone", "the reference data's own zone")
    ok = np.isfinite(series.values)
    if ok.any():
        meta.set_period(float(series.ts[ok][0]), float(series.ts[ok][-1]))
    return meta



@train_group.command("coastal")
@click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
              help="Your gauge's record: CSV (or .csv.gz), any of , ; tab, UTF-8 or Latin-1.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The shared data folder (Providence 8454000, the shipped bundle).")
@click.option("--time-col", default=None, help="Time column (default: the first that parses).")
@click.option("--value-col", default=None, help="Level column (default: the first numeric).")
@click.option("--level-col", default=None, hidden=True, help="Deprecated spelling of --value-col.")
@click.option("--time-format", default=None, help="strptime format (default: ISO 8601 or UNIX s).")
@click.option("--tz", default=None,
              help="Time zone of naive times: ±HH:MM or a name (default UTC; Providence: -05:00).")
@click.option("--start", default=None, help="Use the record from this date or time (ISO).")
@click.option("--end", default=None, help="Use the record before this date or time (ISO).")
@click.option("--threshold", type=float, default=None,
              help="Flood threshold, m, same datum as the levels (Providence: HAT 1.987 m MLLW).")
@click.option("--tide", "tide_station", default=None,
              help="Use a station's published constants (e.g. noaa/8454000, "
                   "brest-3-fra-refmar) instead of fitting the tide.")
@click.option("--tide-table", type=click.Path(), default=None,
              help="stations.json.gz (default: <data-dir or ../shared/data>/coastal/"
                   "tide_constants).")
@click.option("--tide-years", default=None, help="YEAR-YEAR of the tide fit (default: training).")
@click.option("--train-until", default=None,
              help="Last training year (1990), or the date/time training stops (2004-10-15, "
                   "ISO, in --tz); validation runs from there unless --valid-years.")
@click.option("--valid-years", default=None, help="YEAR-YEAR validated on.")
@click.option("--horizon", type=click.IntRange(1, 24), default=3, show_default=True,
              help="Hours ahead.")
@click.option("--hidden", type=click.IntRange(2, 256), default=16, show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False), required=True)
@click.option("--name", default="coastal-submersion", show_default=True,
              callback=_bundle_name, help="The bundle's name (A-Z a-z 0-9 . _ -, at most 64).")
@click.option("--version", "version", type=BundleVersion(), default=None, help=VERSION_HELP)
def train_coastal_cmd(data: Optional[str], data_dir: Optional[str], time_col: Optional[str],
                      value_col: Optional[str], level_col: Optional[str],
                      time_format: Optional[str], tz: Optional[str], start: Optional[str],
                      end: Optional[str], threshold: Optional[float],
                      tide_station: Optional[str], tide_table: Optional[str],
                      tide_years: Optional[str], train_until: Optional[str],
                      valid_years: Optional[str], horizon: int, hidden: int, out: str,
                      name: str, version: Optional[str]) -> None:
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
    from frugalai.learn.csvio import DataError, tz_label
    from frugalai.learn.data import PROVIDENCE, load_providence
    from frugalai.learn.tide_stations import find_station, load_table, station_tide
    from frugalai.learn.userdata import DataOptions
    from frugalai.learn.usertrain import coastal_split, prepare_coastal

    if level_col is not None:
        click.echo("note: --level-col is now --value-col", err=True)
        value_col = value_col or level_col
    warnings: list[str] = []
    provenance: Optional[dict[str, Any]] = None

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
            prep = prepare_coastal(data, DataOptions(time_col, value_col, time_format, tz,
                                                     start, end), file_info(data))
            provenance = prep.resolved.provenance()
            echo_resolved(provenance, prep.warnings)
            warnings = list(prep.warnings)
            zone = prep.resolved.zone
            delta = zone.utcoffset(_dt(2000, 1, 1))
            offset_h = delta.total_seconds() / 3600 if delta is not None else 0.0
            series, info = prep.series, prep.info
            years_only = train_until is None or (train_until.isdigit() and len(train_until) == 4)
            if years_only and (train_until is not None) == (vy is not None):
                split: dict[str, Any] = {"tide_years": ty, "valid_years": vy,
                                         "train_until": int(train_until) if train_until
                                         else None}
            else:
                split = {"tide_years": ty, **coastal_split(
                    prep.resolved, train_until,
                    str(vy[0]) if vy else None, str(vy[1]) if vy else None)}
            zone_text = tz_label(zone)
        else:
            assert data_dir is not None
            if start or end or (train_until and not (train_until.isdigit()
                                                     and len(train_until) == 4)):
                raise DataError("with --data-dir, --train-until takes a year and --start/--end "
                                "do not apply (they are for --data, your CSV)")
            series = load_providence(data_dir)
            files = sorted((Path(data_dir) / PROVIDENCE).glob("providence_8454000_hourly_*.csv.gz"))
            info = {"source": series.source,
                    "files": [file_info(str(f)) for f in files]}
            offset_h = -5.0
            threshold = PROVIDENCE_HAT_M if threshold is None else threshold
            split = {"tide_years": ty or (1971, 1990),
                     "train_until": int(train_until) if train_until else 1990,
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
    for w in trained_warnings(card):
        click.echo(f"warning: {w}", err=True)
    warnings = [*warnings, *trained_warnings(card)]
    v = card["metrics"]["validation"]
    from frugalai.runtime.stamp import stamp_version

    card = stamp_version(out, version)
    meta = train_meta("train coastal", out, card, data, tz, series)
    absorb(meta, provenance, warnings)
    emit(meta, {"out": out, "decision_default": card["decision"]["default"],
                "provenance": provenance,
                "validation": {k: {"hourly": v[k]["flood"], "episodes": v[k]["flood_events"]}
                               for k in ("model_fp32", "model_int8", "baseline")},
                "sizes_bytes": card["sizes_bytes"]}, printed=tuple(warnings))

