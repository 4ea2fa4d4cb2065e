"""``frugalai sensors check``: the gateway's sensor health checks on a user's CSV.

The CSV is read as ``train`` and ``evaluate`` read it (:func:`frugalai.learn.csvio.read_points`:
any delimiter, encoding, header offset, time zone); each row is one reading, in time order, as
the gateway would have received it. A tide gauge can be judged against a coastal bundle's tide
(``reference``): spikes, noise and drift are then measured on the surge, not on the tide.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Union

from frugalai.health.checks import Limits
from frugalai.health.offline import episodes, plot_timeline, run_checks, summarize, write_timeline
from frugalai.learn.csvio import DataError, read_points


def reference_tide(bundle: str, models_dir: Optional[str] = None) -> Any:
    """The tide of a coastal bundle (name or path), verified as ``run`` loads it."""
    from frugalai.features.tide import Tide
    from frugalai.runtime import load_model

    model = load_model(bundle, models_dir=models_dir)
    spec = model.card.get("features", {})
    if spec.get("kind") != "coastal" or "tide" not in spec:
        raise DataError(f"{bundle}: not a coastal bundle (no tide to use as the reference)")
    return Tide.from_dict(spec["tide"])


def check_csv(path: Union[str, Path], *, time_col: Optional[str] = None,
              value_col: Optional[str] = None, time_format: Optional[str] = None,
              tz: Optional[str] = None, period_s: Optional[float] = None,
              value_range: Optional[tuple[float, float]] = None, counter: bool = False,
              reference: Optional[str] = None, models_dir: Optional[str] = None,
              out: Optional[Union[str, Path]] = None, plot: Optional[Union[str, Path]] = None
              ) -> dict[str, Any]:
    """Run the checks over the CSV; write the timeline (``out``: .csv or .json) and the plot.

    Returns the summary (per check: episodes and hours; completeness, noise...) with the
    episodes and where the files went.
    """
    points = read_points(path, time_col, value_col, time_format, tz)
    ts, values = points.ts, points.values
    low, high = value_range if value_range is not None else (-math.inf, math.inf)
    if not low < high:
        raise DataError(f"--range: low must be below high, got {low:g} {high:g}")
    limits = Limits(period_s=float(period_s or 0.0), low=low, high=high, monotonic=counter)
    ref = None
    if reference:
        ref = reference_tide(reference, models_dir).predict(ts)
    changes, health = run_checks(ts.tolist(), values.tolist(),
                                 None if ref is None else ref.tolist(), limits)
    eps = episodes(changes)
    summary = summarize(changes, health, float(ts[0]), float(ts[-1]), len(ts) + points.skipped,
                        len(ts))
    summary.update({"data": Path(path).name, "time_col": points.time_col,
                    "value_col": points.value_col, "reference": reference, "limits": repr(limits)})
    written: dict[str, Optional[str]] = {}
    if out is not None:
        written["timeline"] = str(write_timeline(out, eps, summary))
    if plot is not None:
        done = plot_timeline(plot, ts.tolist(), values.tolist(), eps,
                             f"{Path(path).name}: sensor health")
        written["plot"] = None if done is None else str(done)
    return {**summary, "files": written, "episodes": [e.as_dict() for e in eps]}
