"""Batched model calls in a replay at full speed (issue 26): the same events, decisions and
counts as the per-window path, on real data, for every backend that says its batch is exact.

A flow replaying a file at ``speed=max`` gathers closed windows and scores them with one
model call (frugalai.pipeline.Flow.batch_windows). The per-window path is the same flow fed
by the same replay through a source that does not say it is unpaced (a live source's view),
so both runs read the same rows through the same parser.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalai.config import loads_config
from frugalai.events.event import Event
from frugalai.pipeline import Flow, run_flow
from frugalai.plan import build_plans
from frugalai.reading import Reading
from frugalai.runtime import load_model, runtime_available
from frugalai.runtime.model import shipped_models_dir
from frugalai.sources.base import SourceStats
from frugalai.sources.replay import ReplaySource, parse_offset

MODELS = shipped_models_dir()
PROVIDENCE = "coastal/providence_8454000/providence_8454000_hourly_1970_1999.csv.gz"
DUTCH = "energy/dutch_power_demand_1997/power_demand_1997_labeled.csv"
#: (backend, precision) pairs whose batches are declared exact
EXACT = [("onnx", "int8"), ("onnx", "fp32"), ("tflite", "int8"), ("native", "int8"),
         ("reference", "int8")]


class PerWindow:
    """The replay as a live source would be seen: no ``unpaced``, so no batching."""

    def __init__(self, inner: ReplaySource) -> None:
        self.inner = inner
        self.sensor = inner.sensor

    @property
    def stats(self) -> SourceStats:
        return self.inner.stats

    def readings(self, stop: threading.Event) -> Iterator[Reading]:
        return self.inner.readings(stop)

    def close(self) -> None:
        self.inner.close()


def _skip_unless(backend: str) -> None:
    reason = runtime_available(backend)
    if reason:
        pytest.skip(reason)


def _plan(data_dir: Path, model: str, backend: str, precision: str, **flow: Any) -> Any:
    if model == "coastal-submersion":
        url = (f"replay://{data_dir / PROVIDENCE}?speed=max&value=water_level_m_mllw:"
               f"water_level_m:m&tz=-05:00&end=stop&limit=30000")
        # the net decides (the card's default decision is the rule)
        keys = {"quantity": "water_level_m", "window_s": 3600, "decision": "model"}
    else:
        url = f"replay://{data_dir / DUTCH}?speed=max&value=value:power_kw:kW&end=stop"
        keys = {"quantity": "power_kw", "window_s": 900}
    cfg = loads_config({"gateway": {"models_dir": str(MODELS)}, "flow": [{
        "name": "f", "source": url, "model": model, "aggregate": "mean", "backend": backend,
        "precision": precision, "summary_s": 0, **keys, **flow}]})
    return build_plans(cfg, check_uplinks=False).flows[0]


def _run(plan: Any, batched: bool, max_windows: int = 64) -> tuple[Flow, list[Event]]:
    source = plan.open_source()
    flow = Flow.from_plan(plan, source=source if batched else PerWindow(source))
    if batched:
        assert flow.batch_windows(max_windows=max_windows, max_delay_s=3600.0)
    got: list[Event] = []
    run_flow(flow, threading.Event(), got.extend)
    return flow, got


def _same(a: tuple[Flow, list[Event]], b: tuple[Flow, list[Event]]) -> None:
    (fa, ea), (fb, eb) = a, b
    assert [(e.kind, e.ts, e.score, e.value, e.label) for e in ea] == \
        [(e.kind, e.ts, e.score, e.value, e.label) for e in eb]
    assert asdict(fa.stats) == asdict(fb.stats)
    assert fa.stats.scored > 100  # the model decided, many windows over
    assert fa.scorer.model.info()["backend"] == fb.scorer.model.info()["backend"]


@pytest.mark.parametrize(("backend", "precision"), EXACT)
def test_coastal_batches_decide_as_window_by_window(data_dir: Path, backend: str,
                                                    precision: str) -> None:
    _skip_unless(backend)
    plan = _plan(data_dir, "coastal-submersion", backend, precision)
    per_window = _run(plan, batched=False)
    # 7 windows a batch: batches end mid-episode, and the health events cut them too
    batched = _run(plan, batched=True, max_windows=7)
    _same(batched, per_window)
    assert not batched[0].scorer.baseline  # the net, not the rule
    kinds = {e.kind for e in per_window[1]}
    assert "class" in kinds and "health" in kinds  # decisions and health events interleave


@pytest.mark.parametrize(("backend", "precision"), [("onnx", "int8"), ("native", "int8")])
def test_energy_batches_decide_as_window_by_window(data_dir: Path, backend: str,
                                                   precision: str) -> None:
    _skip_unless(backend)
    plan = _plan(data_dir, "energy-anomaly", backend, precision)
    per_window, batched = _run(plan, batched=False), _run(plan, batched=True)
    _same(batched, per_window)
    assert any(e.kind == "alarm" for e in per_window[1])


def test_what_is_not_batched(data_dir: Path) -> None:
    """The reference fp32 (BLAS sums a batch in another order), a paced replay, a flow that
    holds decisions while the sensor is unhealthy: window by window."""
    plan = _plan(data_dir, "coastal-submersion", "reference", "fp32")
    assert not Flow.from_plan(plan).batch_windows()
    plan = _plan(data_dir, "coastal-submersion", "reference", "int8", hold_when_unhealthy=True)
    assert not Flow.from_plan(plan).batch_windows()
    plan = _plan(data_dir, "coastal-submersion", "reference", "int8")
    assert Flow.from_plan(plan).batch_windows()
    paced = plan.open_source()
    assert isinstance(paced, ReplaySource)
    paced.speed = 3600.0
    assert not Flow.from_plan(plan, source=paced).batch_windows()
    ends = plan.open_source()
    assert isinstance(ends, ReplaySource)
    ends.end = "wait"  # the source stays open after its file: no batch waits for it
    assert not Flow.from_plan(plan, source=ends).batch_windows()
    rule = _plan(data_dir, "coastal-submersion", "reference", "fp32", decision="baseline")
    assert Flow.from_plan(rule).batch_windows()  # the rule has no model call to differ


@pytest.mark.parametrize(("backend", "precision"),
                         [*EXACT, ("tflite", "fp32"), ("native", "fp32")])
def test_declared_exact_batches_are_the_one_row_outputs(data_dir: Path, backend: str,
                                                        precision: str) -> None:
    """Each backend that says ``batch_exact``: predict_many's rows are predict_one's, bit
    for bit, on the coastal features of real data, whatever the batch size."""
    _skip_unless(backend)
    from frugalai.features.coastal import CoastalFeatures
    from frugalai.features.tide import Tide

    model = load_model(MODELS / "coastal-submersion", backend, precision)
    assert model.batch_exact
    spec = model.card["features"]
    src = ReplaySource(str(data_dir / PROVIDENCE), sensor="g", speed=0.0, limit=8000,
                       values=[("water_level_m_mllw", "x", "m")], tz=parse_offset("-05:00"))
    feats = CoastalFeatures(Tide.from_dict(spec["tide"]), float(spec["params"]["threshold_m"]),
                            int(spec["params"]["horizon_h"]))
    rows = [r for r in (feats.update_one(rd.ts, rd.values["x"])
                        for rd in src.readings(threading.Event())) if r is not None]
    X = np.stack(rows)
    one = np.stack([model.raw_one(r) for r in rows]).astype(np.float32)
    for size in (1, 7, 64, 1000):
        many = np.concatenate([model.raw_many(X[i:i + size]) for i in range(0, len(X), size)])
        assert many.view(np.uint32).tolist() == one.view(np.uint32).tolist()


@pytest.mark.parametrize(("bundle", "backend", "precision"),
                         [("coastal-submersion", "onnx", "int8"),
                          ("energy-anomaly", "onnx", "int8"),
                          ("energy-anomaly", "native", "int8")])
def test_score_in_blocks_is_score_row_by_row(data_dir: Path, bundle: str, backend: str,
                                             precision: str) -> None:
    """``frugalai score`` (score_series) calls the model once per block of rows when the
    backend's batch is exact; the same columns as the model called row by row (the same
    model told its batch is not exact)."""
    _skip_unless(backend)
    from frugalai.learn.data import load_dutch, load_providence
    from frugalai.learn.offline import score_series

    series = load_providence(data_dir) if bundle.startswith("coastal") else load_dutch(data_dir)
    start = float(series.ts[0]) if bundle.startswith("energy") else float(series.ts[-20000])
    blocks = load_model(MODELS / bundle, backend, precision)
    rows = load_model(MODELS / bundle, backend, precision)
    rows.backend.batch_exact = False  # type: ignore[misc]  (this instance: row by row)
    assert blocks.batch_exact and not rows.batch_exact
    a, b = score_series(blocks, series, start), score_series(rows, series, start)
    assert np.isfinite(a.score).sum() > 1000
    for got, want in ((a.score, b.score), (a.alarm, b.alarm)):
        assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f")
    assert a.raised == b.raised
    for key in ("model_class", "probability"):
        if key in b.extra:
            assert np.array_equal(a.extra[key], b.extra[key], equal_nan=True)


def test_a_source_that_fails_mid_file_loses_no_batched_window(data_dir: Path,
                                                              tmp_path: Path) -> None:
    """A truncated gzip ends the replay with a SourceError (the supervisor restarts it): the
    windows read before the failure are decided and stored as window by window."""
    import gzip

    from frugalai.errors import SourceError

    _skip_unless("onnx")
    with gzip.open(data_dir / PROVIDENCE, "rb") as fh:
        text = fh.read(2_000_000)
    whole = gzip.compress(text)
    cut = tmp_path / "cut.csv.gz"
    cut.write_bytes(whole[:len(whole) * 2 // 3])  # no gzip trailer, cut mid-stream
    url = (f"replay://{cut}?speed=max&value=water_level_m_mllw:water_level_m:m&tz=-05:00"
           f"&end=stop")
    cfg = loads_config({"gateway": {"models_dir": str(MODELS)}, "flow": [{
        "name": "f", "source": url, "model": "coastal-submersion", "aggregate": "mean",
        "backend": "onnx", "precision": "int8", "summary_s": 0, "quantity": "water_level_m",
        "window_s": 3600, "decision": "model"}]})
    plan = build_plans(cfg, check_uplinks=False).flows[0]
    runs = []
    for batched in (True, False):
        source = plan.open_source()
        flow = Flow.from_plan(plan, source=source if batched else PerWindow(source))
        assert flow.batch_windows() is batched
        got: list[Event] = []
        with pytest.raises(SourceError):
            run_flow(flow, threading.Event(), got.extend)
        runs.append((flow, got))
    _same(runs[0], runs[1])
