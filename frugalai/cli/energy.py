"""``frugalai bench`` and ``frugalai report``: energy per inference, the frugality report."""

from __future__ import annotations

import json
from typing import Any, Optional

import click

from frugalai.cli.core import (
    ConfigPath,
    RegistryName,
    cli,
    models_dir_of,
    state_dir_of,
)
from frugalai.errors import ConfigError


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


@cli.command()
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file (default: the one the service in --state-dir runs).")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="State dir to read status.json and bench results from (default: the "
                   "config's).")
@click.option("--bench", "bench_path", type=click.Path(dir_okay=False), default=None,
              help="energy_per_inference.json (default: [energy] bench_results, then "
                   "<state_dir>/results, then the checkout's).")
@click.option("--summary", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A run summary to take byte and event counts from: what `frugalai demo "
                   "--json` prints (default: the service's status.json).")
@click.option("--summary-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Hours the summary covers (default: its simulated_hours).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: <state_dir>/report).")
@click.option("--no-html", is_flag=True, help="Markdown and JSON only.")
def report(config: Any, state_dir: Optional[str], bench_path: Optional[str],
           summary: Optional[str], summary_hours: Optional[float], out: Optional[str],
           no_html: bool) -> None:
    """The deployment's frugality report (Markdown, JSON and HTML with inline charts)."""
    from pathlib import Path

    from frugalai.config import load_config
    from frugalai.report.build import find_bench, write_report
    from frugalai.service.health.status import read_status

    status = read_status(state_dir) if state_dir else None
    if config is None:
        cfg_path = (status or {}).get("config")
        if not isinstance(cfg_path, str):
            raise click.UsageError("give --config (or --state-dir of a service that has run)")
        try:
            config = (cfg_path, load_config(cfg_path))
        except ConfigError as err:
            raise click.UsageError(f"{cfg_path}: {err}") from None
    path, cfg = config
    sd = state_dir or str(cfg.gateway.state_dir)
    if status is None and summary is None and Path(sd, "status.json").is_file():
        status = read_status(sd)
    bench_file = find_bench(cfg, bench_path, path)  # ConfigError: exit 2 with the message
    paths = write_report(cfg, bench_file, Path(out) if out else Path(sd) / "report",
                         Path(summary) if summary else None, summary_hours,
                         html_out=not no_html, status=status)
    rep = json.loads(paths["json"].read_text())
    click.echo(f"bench results: {bench_file}")
    if rep.get("measured_bytes"):
        click.echo(f"  {rep['measured_bytes']['text']}")
    g = rep["gateway_energy"]
    click.echo(f"  whole gateway: {g['kwh_per_year']:.3g} kWh/year, of which the AI "
               f"(inference) {g['ai_share'] * 100:.2g} %")
    for kind, p in paths.items():
        click.echo(f"{kind}: {p}")

