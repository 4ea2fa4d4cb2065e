"""``frugalai sensors``: is each sensor still telling the truth? (docs/sensors.md)

``sensors check`` runs the gateway's health checks on a CSV; ``sensors report`` holds each
configured sensor to its data sheet from the gateway's own records.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import click

from frugalai.cli.core import ConfigPath, cli, user_input_errors


@cli.group("sensors")
def sensors_group() -> None:
    """Sensor health: the checks on a CSV, the field report against the data sheet."""


@sensors_group.command("check")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Your CSV (any dialect train reads).")
@click.option("--time-col", default=None)
@click.option("--value-col", default=None)
@click.option("--time-format", default=None)
@click.option("--tz", default=None, help="Zone of naive times: ±HH:MM or a name.")
@click.option("--period-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Sampling period of the data sheet (default: learned).")
@click.option("--range", "value_range", type=(float, float), default=None,
              help="The sensor's stated range: LOW HIGH.")
@click.option("--counter", is_flag=True, help="The value is an index that never goes back.")
@click.option("--reference", default=None,
              help="A coastal bundle whose tide the levels should follow (name or path).")
@click.option("--models-dir", default=None)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the health timeline: .csv, or .json (with the summary).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG of the series with its faults (needs matplotlib: the bench extra).")
def check_cmd(data: str, time_col: Optional[str], value_col: Optional[str],
              time_format: Optional[str], tz: Optional[str], period_s: Optional[float],
              value_range: Optional[tuple[float, float]], counter: bool,
              reference: Optional[str], models_dir: Optional[str], out: Optional[str],
              plot: Optional[str]) -> None:
    """Run the sensor health checks on a CSV; print the summary, write the timeline."""
    from frugalai.learn.sensor_check import check_csv

    with user_input_errors():
        result = check_csv(data, time_col=time_col, value_col=value_col,
                           time_format=time_format, tz=tz, period_s=period_s,
                           value_range=value_range, counter=counter, reference=reference,
                           models_dir=models_dir, out=out, plot=plot)
    if plot and result["files"].get("plot") is None:
        click.echo("note: no plot (matplotlib is not installed: pip install 'frugalai[bench]')",
                   err=True)
    result.pop("episodes")
    click.echo(json.dumps(result, indent=1, default=str))


@sensors_group.command("report")
@click.option("--config", "config", type=ConfigPath(), required=True, help="TOML file.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="State dir to read (default: the config's).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def report_cmd(config: Any, state_dir: Optional[str], as_json: bool) -> None:
    """Per sensor: completeness, uptime, MTBF, gaps, noise, drift per year, against the data
    sheet (``spec``) -- kept / not kept -- from the gateway's own statistics files."""
    from frugalai.health.report import jsonable, render, reports

    with user_input_errors():
        reps = reports(config[1], state_dir)
    click.echo(json.dumps(jsonable(reps), indent=1) if as_json else render(reps))
