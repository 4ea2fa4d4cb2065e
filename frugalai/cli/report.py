"""``frugalai report``: the deployment's evaluation (Markdown, JSON, HTML, PDF; fr or en)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import click

from frugalai.cli.core import ConfigPath, cli
from frugalai.errors import ConfigError


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
@click.option("--lang", type=click.Choice(["fr", "en"]), default="en", show_default=True,
              help="Language of the edition.")
@click.option("--pdf", is_flag=True, help="Also print a PDF with headless Chromium.")
@click.option("--impact-data", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A meter's record (CSV: time, power) for the before/after measurement.")
@click.option("--value-col", default=None, help="Column of --impact-data holding the power.")
@click.option("--power-unit", type=click.Choice(["W", "kW"]), default="W", show_default=True,
              help="Unit of the power in --impact-data.")
@click.option("--temperature", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Outdoor temperature (CSV: time, °C) for the degree-day adjustment of the "
                   "before/after (default: no adjustment, and the report says so).")
@click.option("--baseline", default=None, help="Baseline period START/END (YYYY-MM[-DD]).")
@click.option("--reporting", default=None, help="Reporting period START/END (YYYY-MM[-DD]).")
@click.option("--coast-data", type=click.Path(exists=True), default=None,
              help="A gauge's record: a level CSV, or the data directory holding the "
                   "Providence files (then the card's validation years).")
def report(config: Any, state_dir: Optional[str], bench_path: Optional[str],
           summary: Optional[str], summary_hours: Optional[float], out: Optional[str],
           no_html: bool, lang: str, pdf: bool, impact_data: Optional[str],
           value_col: Optional[str], power_unit: str, temperature: Optional[str],
           baseline: Optional[str],
           reporting: Optional[str], coast_data: Optional[str]) -> None:
    """The deployment's evaluation: a one-page summary, the whole life cycle, the measured
    impact (IPMVP), the coast per season, the need for AI per flow (Markdown, JSON, HTML,
    PDF)."""
    from frugalai.config import load_config
    from frugalai.report.build import find_bench, model_for, write_report
    from frugalai.report.impact import coast_seasons, energy_impact
    from frugalai.service.health.status import read_status

    if impact_data and not (baseline and reporting):
        raise click.UsageError("--impact-data needs --baseline and --reporting")
    if (baseline or reporting or temperature) and not impact_data:
        raise click.UsageError("--baseline, --reporting and --temperature need --impact-data")
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
    impact = None
    if impact_data and baseline and reporting:
        impact = energy_impact(model_for(cfg, "energy_residuals", "energy-anomaly"),
                               Path(impact_data), baseline, reporting,
                               cfg.energy.electricity_eur_per_kwh,
                               1000.0 if power_unit == "kW" else 1.0, value_col,
                               Path(temperature) if temperature else None)
    coast = (coast_seasons(model_for(cfg, "coastal", "coastal-submersion"), Path(coast_data))
             if coast_data else None)
    paths = write_report(cfg, bench_file, Path(out) if out else Path(sd) / "report",
                         Path(summary) if summary else None, summary_hours,
                         html_out=not no_html, status=status, lang=lang, pdf=pdf,
                         impact=impact, coast=coast)
    rep = json.loads(paths["json"].read_text())
    click.echo(f"bench results: {bench_file}")
    if rep.get("measured_bytes"):
        click.echo(f"  {rep['measured_bytes']['text']}")
    for row in rep["summary"]:
        click.echo(f"  {row['label']}: {row['value']}")
    for key in rep["life_cycle"]["missing"]:
        click.echo(f"  to complete: set {key}")
    for kind, p in paths.items():
        click.echo(f"{kind}: {p}")
