"""``frugalai evaluate`` and ``frugalai score``: a bundle run on a recorded file."""

from __future__ import annotations

from typing import Optional

import click

from frugalai.cli.core import (
    absorb,
    cli,
    echo_resolved,
    emit,
    models_dir_of,
    offline_options,
    run_meta,
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
                 end: Optional[str], backend: str, precision: str,
                 models_dir: Optional[str], allow_low_agreement: bool,
                 allow_unsigned_native: bool) -> None:
    """Metrics of BUNDLE: on the reference data (--data-dir), or on your CSV (--data), scored
    through the gateway's own code: window recall, alarms outside windows per month, AUC and
    lead time (anomaly, with --labels); hourly and per-episode P/R/F1 of model and rule
    (coastal: the flood episodes are your --labels windows when given, else they come from
    your levels and the card's threshold). Zone, columns and threshold default to the card's;
    stderr says which value came from where."""
    from pathlib import Path

    from frugalai.extras import require

    require("train", modules=("sklearn",))  # the metrics; before minutes of data loading
    from frugalai.learn.evaluate import evaluate_bundle
    from frugalai.runtime import load_model

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your CSV) or --data-dir")
    model = load_model(bundle, backend, precision, models_dir=models_dir_of(models_dir),
                       allow_low_agreement=allow_low_agreement,
                       allow_unsigned_native=allow_unsigned_native)
    if data_dir is not None:
        meta = run_meta("evaluate", model)
        result = evaluate_bundle(model, Path(data_dir))
        meta.set_period(*result.pop("span"))
        result = {"runtime": result.pop("model"), **result}
        meta.zone = str(model.card.get("data", {}).get("time_zone") or "UTC")
        meta.origin("zone", "card data.time_zone (the reference data)")
        meta.origin("data", f"--data-dir: {model.card.get('data', {}).get('source')}")
        emit(meta, result)
        return
    from frugalai.learn import offline
    from frugalai.learn.userdata import DataOptions

    assert data is not None
    if labels is None and not offline.is_coastal(model):
        raise click.UsageError("an anomaly bundle needs --labels (windows to find)")
    meta = run_meta("evaluate", model, data)
    with user_input_errors():
        result = offline.evaluate_user(model, data, DataOptions(time_col, value_col, time_format,
                                                                tz, start, end), labels)
    echo_resolved(result["provenance"], [])
    if result.get("labels"):
        click.echo(f"truth: {result['labels']}", err=True)
    absorb(meta, result["provenance"], result.pop("warnings"))
    if result.get("span"):
        meta.set_period(*result.pop("span"))
    result.pop("data", None)  # the run metadata names the file (and its sha256)
    emit(meta, {"runtime": model.info(), **result})


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
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON summary (bundle, data sha256, period, zone, warnings).")
@offline_options
def score_cmd(bundle: str, out: str, plot: Optional[str], labels: Optional[str],
              decision: Optional[str], as_json: bool, data: Optional[str],
              time_col: Optional[str],
              value_col: Optional[str], time_format: Optional[str], tz: Optional[str],
              start: Optional[str], end: Optional[str], backend: str, precision: str,
              models_dir: Optional[str], allow_low_agreement: bool,
              allow_unsigned_native: bool) -> None:
    """Score your CSV offline with BUNDLE, through the same streaming code as the gateway."""
    from pathlib import Path

    import numpy as np

    from frugalai.extras import require
    from frugalai.learn import offline
    from frugalai.learn.run_meta import iso_utc
    from frugalai.learn.userdata import DataOptions
    from frugalai.runtime import load_model

    if data is None:
        raise click.UsageError("give --data (your CSV)")
    if plot:  # asked for a plot that cannot be drawn: say so (exit 2) before scoring anything
        require("bench", needed_by="--plot")
    model = load_model(bundle, backend, precision, models_dir=models_dir_of(models_dir),
                       allow_low_agreement=allow_low_agreement,
                       allow_unsigned_native=allow_unsigned_native)
    with user_input_errors():
        run = offline.score_user(model, data, DataOptions(time_col, value_col, time_format, tz,
                                                          start, end), decision, labels)
    echo_resolved(run.provenance, [])
    sc = run.scored
    windows = run.windows.spans if run.windows is not None else []
    coastal = offline.is_coastal(model)
    columns = offline.write_scores(sc, out, coastal)
    meta = run_meta("score", model, data)
    absorb(meta, run.provenance, run.warnings)
    if len(sc.ts):
        meta.set_period(float(sc.ts[0]), float(sc.ts[-1]))
    if not coastal and "rule_alarm" not in sc.extra:
        meta.warn("the card holds no fixed-thresholds rule: the rule_alarm column is empty")
    plotted, why = None, None
    if plot:
        pol = model.card.get("policy") or {}
        why = offline.plot_scores(sc, windows, plot, f"{model.name} on {Path(data).name}",
                                  None if coastal else pol.get("on"),
                                  None if coastal else pol.get("off"))
        plotted = plot if why is None else None
        if why is not None:
            meta.warn(f"plot skipped: {why}")
    if as_json:
        emit(meta, {"out": out, "columns": columns, "windows": len(sc.ts),
                    "scored_windows": int(np.isfinite(sc.score).sum()),
                    "decision": sc.extra.get("decision"),
                    "raised": len(sc.raised),
                    "raised_utc": [iso_utc(t) for t in sc.raised], "plot": plotted,
                    "provenance": run.provenance})
        return
    for w in meta.warnings:
        click.echo(f"warning: {w}", err=True)
    click.echo(f"{out}: {len(sc.ts)} windows, {len(sc.raised)} "
               f"{'flood announcements' if coastal else 'alarms'}")
    if plot:
        click.echo(f"{plot}: written" if why is None else f"plot skipped: {why}")

