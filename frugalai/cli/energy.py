"""``frugalai bench``: energy per inference (the report is :mod:`frugalai.cli.report`)."""

from __future__ import annotations

from typing import Any, Optional

import click

from frugalai.cli.core import (
    ConfigPath,
    RegistryName,
    cli,
    models_dir_of,
    state_dir_of,
)


@cli.command()
@click.option("--quick", is_flag=True, help="Short windows: a smoke run, not for publication.")
@click.option("--meter", type=RegistryName("meter", spec=True), default=None,
              help="NAME[:rest][?options], NAME a registered meter (frugalai plugins): "
                   "estimate[:board], rapl[:domains], hwmon[:name], ina219:/dev/i2c-N, pmic, "
                   "um25c:/dev/rfcommN (default: [energy] meter of --config, else estimate). "
                   "A board meter also measures the board's idle power for the report.")
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file: results go to <state_dir>/results.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Write to <state-dir>/results (instead of --config).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write here instead (default: <state_dir>/results).")
@click.option("--publish", is_flag=True, hidden=True,
              help="Refused: a checkout publishes with benchmarks/energy_per_inference.py.")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="Bundles to measure (default: the shipped ones).")
@click.option("--batches", default="1,32", show_default=True, help="Comma-separated batch sizes.")
def bench(quick: bool, meter: Optional[str], config: Any, state_dir: Optional[str], out: Optional[str],
          publish: bool, models_dir: Optional[str], batches: str) -> None:
    """Energy per inference of every shipped model x backend x precision x batch.

    Results (JSON, Markdown, HTML; PNG when matplotlib is installed) go to the state dir's
    results directory, never over the shipped ones (benchmarks/energy_per_inference.py
    --publish writes those, with the run's provenance)."""
    from pathlib import Path

    from frugalai.energy.bench import results_dir, run_bench

    try:
        sizes = tuple(int(b) for b in batches.split(","))
    except ValueError:
        raise click.BadParameter(f"expected integers like 1,32, got {batches!r}",
                                 param_hint="--batches") from None
    if publish:  # the published figures carry the run's provenance: the script writes them
        raise click.UsageError("the published results of a checkout are written by "
                               "`python benchmarks/energy_per_inference.py --publish` (with the "
                               "run's date, commit and machine); give --out DIR here")
    if out:
        target = Path(out)
    else:
        sd = state_dir_of(config, state_dir)
        if sd is None:
            from frugalai.config import GatewayConfig

            sd = GatewayConfig().state_dir
        target = results_dir(sd)
    if meter is None:
        meter = config[1].energy.meter if config is not None else "estimate"
    from frugalai.runtime.model import shipped_models_dir

    doc = run_bench(target, meter, quick=quick,
                    models_dir=Path(models_dir_of(models_dir) or shipped_models_dir()),
                    batches=sizes)
    if doc.get("chart_skipped"):
        click.echo(doc["chart_skipped"], err=True)
    click.echo(f"{len(doc['results'])} configurations -> {target}/energy_per_inference.json "
               "(.md, .html)")

