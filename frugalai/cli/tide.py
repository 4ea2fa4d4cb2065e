"""``frugalai tide``: the tide a coastal bundle predicts, over a period you choose."""

from __future__ import annotations

import sys
from typing import Optional

import click

from frugalai.cli.core import cli, emit, models_dir_of, run_meta, user_input_errors


@cli.command("tide")
@click.argument("bundle")
@click.option("--start", required=True,
              help="First time: ISO date or datetime; naive means UTC, or give an offset.")
@click.option("--end", required=True, help="Last time (included), same form.")
@click.option("--step", "step_s", type=click.IntRange(min=60), default=3600, show_default=True,
              help="Seconds between predictions.")
@click.option("--json", "as_json", is_flag=True, help="JSON: run metadata and the points.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV: time_utc,tide_m (the default).")
@click.option("--models-dir", default=None)
def tide_cmd(bundle: str, start: str, end: str, step_s: int, as_json: bool, as_csv: bool,
             models_dir: Optional[str]) -> None:
    """Predicted tide of a coastal BUNDLE (m, the datum of the levels it was trained on), at
    UTC times; the JSON also names the zone the card says the gauge's record was in."""
    import csv

    from frugalai.learn import offline
    from frugalai.learn.csvio import DataError, _parse_times, parse_tz
    from frugalai.learn.run_meta import iso_utc
    from frugalai.runtime import load_model

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    model = load_model(bundle, models_dir=models_dir_of(models_dir))
    with user_input_errors():
        t0, t1 = (float(t) for t in _parse_times([start, end], None, parse_tz(None)))
        for text, t, opt in ((start, t0, "--start"), (end, t1, "--end")):
            if t != t:
                raise DataError(f"{opt} {text!r} is not a date or time (ISO 8601)")
        ts, tide = offline.predicted_tide(model, t0, t1, float(step_s))
    if as_json:
        meta = run_meta("tide", model)
        meta.backend = meta.precision = None  # the tide is the card's harmonics, no net
        meta.set_period(float(ts[0]), float(ts[-1]))
        meta.zone = "UTC"
        meta.origin("zone", "the output is UTC; naive --start/--end are read as UTC")
        spec = model.card["features"]["tide"]
        emit(meta, {"card_time_zone": (model.card.get("flow_defaults") or {}).get("time_zone"),
                    "datum": "the levels the bundle was trained on (m)",
                    "tide_source": (spec.get("meta") or {}).get("source"),
                    "step_s": step_s,
                    "points": [{"time_utc": iso_utc(t), "tide_m": round(float(v), 4)}
                               for t, v in zip(ts.tolist(), tide.tolist())]})
        return
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["time_utc", "tide_m"])
    for t, v in zip(ts.tolist(), tide.tolist()):
        w.writerow([iso_utc(t), f"{v:.4f}"])
