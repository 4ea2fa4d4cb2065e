"""Streaming scorers that put a bundle's features and model together for a flow.

Both speak the flow's one vocabulary, ``score_one(window, value) -> Score | None``
(:class:`frugalai.scoring.Scorer`), and keep their task's own name beside it:

* :class:`AnomalyScorer` (``task = "anomaly"``): ``update_one(window, value) -> score | None``.
* :class:`ClassScorer` (``task = "classification"``, the coastal nowcast):
  ``classify_one(window, value) -> (label, probability) | None``.

The features are the same classes the training code ran (``frugalai.features``), built from
the parameters in the card, so the gateway computes exactly what the model was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional, Union

import numpy as np
import numpy.typing as npt

from frugalai.errors import ModelError
from frugalai.features.coastal import CoastalFeatures, FloatArray
from frugalai.features.energy import EnergyFeatures
from frugalai.features.tide import Tide
from frugalai.features.window import WindowStats
from frugalai.runtime.model import BundleModel
from frugalai.scoring import Score

if TYPE_CHECKING:
    from frugalai.plan import FlowPlan


class AnomalyScorer:
    """Energy residual features -> anomaly score."""

    def __init__(self, model: BundleModel, **overrides: float) -> None:
        spec = model.card.get("features", {})
        if model.task != "anomaly" or spec.get("kind") != "energy_residuals":
            raise ModelError(f"{model.name}: not an energy anomaly bundle (task "
                             f"{model.task!r}, features {spec.get('kind')!r})")
        self.model = model
        self.features = EnergyFeatures(**{**spec["params"], **overrides})
        # Start warm from the profile learned at training, when it means the same slots.
        warm = model.card.get("warm_profile")
        same = all(self.features.params().get(k) == spec["params"].get(k, d) for k, d in
                   (("slot_s", 900), ("tz_offset_h", 1.0), ("day_types", 2),
                    ("time_zone", None)))
        self.warm = bool(warm) and same
        if warm and same:
            self.features.load_state(warm)

    def learn_one(self, ts: float, value: float) -> None:
        """Seed the meter's profile from its history (no scoring)."""
        self.features.learn_one(ts, value)

    def update_one(self, window: WindowStats, value: float) -> Optional[float]:
        row = self.features.update_one(window.start, value)
        if row is None:
            return None
        return float(self.model.predict_one(row))

    def score_one(self, window: WindowStats, value: float) -> Optional[Score]:
        score = self.update_one(window, value)
        return None if score is None else Score(score)

    # -- deferred model calls (a replay at full speed: frugalai.pipeline batches windows) ----

    @property
    def batch_exact(self) -> bool:
        """:meth:`finish_many` gives :meth:`finish_one`'s scores exactly."""
        return self.model.batch_exact

    def prepare_one(self, window: WindowStats, value: float) -> Optional[FloatArray]:
        """The feature step of :meth:`score_one` (the features' state advances now)."""
        return self.features.update_one(window.start, value)

    def finish_one(self, prepared: Optional[FloatArray]) -> Optional[Score]:
        """The model step of :meth:`score_one`: ``finish_one(prepare_one(w, v))`` is
        ``score_one(w, v)``."""
        return None if prepared is None else Score(float(self.model.predict_one(prepared)))

    def finish_many(self, prepared: Sequence[Optional[FloatArray]]) -> list[Optional[Score]]:
        """:meth:`finish_one` of each, with one model call for all the rows (the same
        post-processing per row, so the same scores when the backend's batch is exact)."""
        raws = _raw_rows(self.model, prepared)
        return [None if raw is None else Score(float(self.model.decide_one(raw)))
                for raw in raws]


class ClassScorer:
    """Coastal features -> class index (0 normal, 1 watch, 2 flood) and its probability.

    The tide is evaluated at the window's start: the model was trained on the gauge's
    instantaneous hourly samples, each one the value at the top of its hour. (A gateway that
    averages faster readings over the hour sees the level of about half an hour later:
    a known bias, small against the 0.15 m watch margin only when the tide is slack.)
    """

    def __init__(self, model: BundleModel, threshold_m: Optional[float] = None,
                 horizon_h: Optional[int] = None, baseline: bool = False) -> None:
        spec = model.card.get("features", {})
        if model.task != "classification" or spec.get("kind") != "coastal":
            raise ModelError(f"{model.name}: not a coastal classifier bundle")
        params = spec["params"]
        trained_h = int(params["horizon_h"])
        if horizon_h is not None and int(horizon_h) != trained_h:
            raise ModelError(f"{model.name}: trained for a {trained_h} h horizon, the flow asks "
                             f"for {horizon_h} h: retrain (frugalai train coastal --horizon)")
        self.model = model
        self.baseline = baseline
        self.watch_margin_m = float(params.get("watch_margin_m", 0.15))
        self.features = CoastalFeatures(
            Tide.from_dict(spec["tide"]),
            float(params["threshold_m"] if threshold_m is None else threshold_m), trained_h)

    def classify_one(self, window: WindowStats, value: float) -> Optional[tuple[int, float]]:
        row = self.features.update_one(window.start, value)
        if row is None:
            return None
        if self.baseline:
            # certainty is not a notion of the rule, so the reported probability is 1.
            return self.rule_class(row), 1.0
        return self.model.classify_one(row)

    def rule_class(self, row: npt.NDArray[np.floating]) -> int:
        """The physical rule's class for a feature row: max predicted tide ahead + current
        surge - threshold (the row's last column) against 0 and the watch margin."""
        margin = float(row[-1])
        return 2 if margin >= 0 else 1 if margin >= -self.watch_margin_m else 0

    def score_one(self, window: WindowStats, value: float) -> Optional[Score]:
        result = self.classify_one(window, value)
        return None if result is None else Score(result[1], result[0])

    # -- deferred model calls (a replay at full speed: frugalai.pipeline batches windows) ----

    @property
    def batch_exact(self) -> bool:
        """:meth:`finish_many` gives :meth:`finish_one`'s decisions exactly (the rule has no
        model call; the net, when its backend's batch is exact)."""
        return self.baseline or self.model.batch_exact

    def prepare_one(self, window: WindowStats, value: float) -> Union[FloatArray, Score, None]:
        """The feature step of :meth:`score_one` (the features' state advances now); the
        rule's decision is taken at once (it has no model call to defer)."""
        row = self.features.update_one(window.start, value)
        if row is None or not self.baseline:
            return row
        return Score(1.0, self.rule_class(row))

    def finish_one(self, prepared: Union[FloatArray, Score, None]) -> Optional[Score]:
        """The model step of :meth:`score_one`: ``finish_one(prepare_one(w, v))`` is
        ``score_one(w, v)``."""
        if prepared is None or isinstance(prepared, Score):
            return prepared
        label, probability = self.model.classify_one(prepared)
        return Score(probability, label)

    def finish_many(self, prepared: Sequence[Union[FloatArray, Score, None]]
                    ) -> list[Optional[Score]]:
        """:meth:`finish_one` of each, with one model call for all the rows (the same
        post-processing per row, so the same decisions when the backend's batch is exact)."""
        if self.baseline:
            return [p if isinstance(p, Score) else None for p in prepared]
        out: list[Optional[Score]] = []
        for raw in _raw_rows(self.model, prepared):
            if raw is None:
                out.append(None)
            else:
                label, probability = self.model.label_and_probability(raw)
                out.append(Score(probability, label))
        return out


def _raw_rows(model: BundleModel, prepared: Sequence[object]) -> list[Optional[list[float]]]:
    """The model's raw outputs for the feature rows among ``prepared`` (one ``predict_many``
    call), as lists of floats in their places; None where there was no row."""
    at = [i for i, p in enumerate(prepared) if isinstance(p, np.ndarray)]
    out: list[Optional[list[float]]] = [None] * len(prepared)
    if at:
        raw = model.raw_many(np.stack([prepared[i] for i in at]))  # type: ignore[misc]
        for i, r in zip(at, raw.tolist()):
            out[i] = r
    return out


# --- registry factories (``registry.scorers``): a verified bundle in a flow plan -> scorer ------

def anomaly_scorer(plan: FlowPlan) -> AnomalyScorer:
    """``task = "anomaly"`` bundles; the time zone is the plan's (config, else the card's)."""
    return AnomalyScorer(plan.load_model(), tz_offset_h=plan.tz_offset_h)


def class_scorer(plan: FlowPlan) -> ClassScorer:
    """``task = "classification"`` bundles (the coastal nowcast)."""
    return ClassScorer(plan.load_model(), plan.config.threshold_m, plan.config.horizon_h,
                       baseline=plan.config.decision == "baseline")
