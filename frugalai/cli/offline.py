"""``frugalai evaluate`` and ``frugalai score``: a bundle run on a recorded file."""

from __future__ import annotations

import json
from typing import Optional

import click

from frugalai.cli.core import (
    cli,
    models_dir_of,
    offline_options,
    user_input_errors,
)


@cli.command("evaluate")
@click.argument("bundle")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The shared data folder: recompute the card's own metrics.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="Labelled windows: JSON [[start, end], ...] (or NAB's {file: [...]}) or CSV.")
@offline_options
def evaluate_cmd(bundle: str, data_dir: Optional[str], labels: Optional[str],
                 data: Optional[str], time_col: Optional[str], value_col: Optional[str],
                 time_format: Optional[str], tz: Optional[str], start: Optional[str],
                 backend: str, precision: str, models_dir: Optional[str],
                 allow_unsigned_native: bool) -> None:
    """Metrics of BUNDLE: on the reference data (--data-dir), or on your CSV (--data), scored
    through the gateway's own code: window recall, alarms outside windows per month, AUC and
    lead time (anomaly, with --labels); hourly and per-episode P/R/F1 of model and rule
    (coastal: the labels come from your levels and the card's threshold)."""
    from pathlib import Path

    from frugalai.extras import require

    require("train", modules=("sklearn",))  # the metrics; before minutes of data loading
    from frugalai.learn.evaluate import evaluate_bundle
    from frugalai.runtime import load_model

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your CSV) or --data-dir")
    model = load_model(bundle, backend, precision, models_dir=models_dir_of(models_dir),
                       allow_unsigned_native=allow_unsigned_native)
    if data_dir is not None:
        click.echo(json.dumps(evaluate_bundle(model, Path(data_dir)), indent=2, default=str))
        return
    from frugalai.learn import offline
    from frugalai.learn.csvio import _parse_times, parse_tz

    assert data is not None
    with user_input_errors():
        series = offline.read_for_bundle(model, data, time_col, value_col, time_format, tz)
        t0 = float(_parse_times([start], None, parse_tz(tz))[0]) if start else None
        if offline.is_coastal(model):
            result = offline.evaluate_coastal(model, series, t0)
        else:
            if labels is None:
                raise click.UsageError("an anomaly bundle needs --labels (windows to find)")
            windows = offline.read_windows(labels, data, tz)
            result = offline.evaluate_windows(offline.score_series(model, series, t0), windows)
    click.echo(json.dumps({"model": model.info(), "data": Path(data).name, **result},
                          indent=2, default=str))


@cli.command("score")
@click.argument("bundle")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="CSV of per-window scores (or classes) and alarms.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG: series, score, thresholds, alarms, labelled windows (matplotlib).")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="Windows to shade on the plot.")
@click.option("--decision", type=click.Choice(["model", "baseline"]), default=None,
              help="Coastal: the card's default unless given.")
@offline_options
def score_cmd(bundle: str, out: str, plot: Optional[str], labels: Optional[str],
              decision: Optional[str], data: Optional[str], time_col: Optional[str],
              value_col: Optional[str], time_format: Optional[str], tz: Optional[str],
              start: Optional[str], backend: str, precision: str,
              models_dir: Optional[str], allow_unsigned_native: bool) -> None:
    """Score your CSV offline with BUNDLE, through the same streaming code as the gateway."""
    from pathlib import Path

    from frugalai.learn import offline
    from frugalai.learn.csvio import _parse_times, parse_tz
    from frugalai.runtime import load_model

    if data is None:
        raise click.UsageError("give --data (your CSV)")
    model = load_model(bundle, backend, precision, models_dir=models_dir_of(models_dir),
                       allow_unsigned_native=allow_unsigned_native)
    with user_input_errors():
        series = offline.read_for_bundle(model, data, time_col, value_col, time_format, tz)
        t0 = float(_parse_times([start], None, parse_tz(tz))[0]) if start else None
        sc = offline.score_series(model, series, t0, decision)
        windows = offline.read_windows(labels, data, tz) if labels else []
    coastal = offline.is_coastal(model)
    offline.write_scores(sc, out, coastal)
    click.echo(f"{out}: {len(sc.ts)} windows, {len(sc.raised)} "
               f"{'flood announcements' if coastal else 'alarms'}")
    if plot:
        pol = model.card.get("policy") or {}
        why = offline.plot_scores(sc, windows, plot, f"{model.name} on {Path(data).name}",
                                  None if coastal else pol.get("on"),
                                  None if coastal else pol.get("off"))
        click.echo(f"{plot}: written" if why is None else f"plot skipped: {why}")

