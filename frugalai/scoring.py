"""The seam between a flow's windows and its events: the Scorer and Policy protocols, and the
built-in scorers that need no bundle.

One vocabulary: a scorer turns a closed feature window into a :class:`Score` (None while it
learns). An anomaly scorer leaves ``label`` unset and the flow's policy turns the score into
alarm/clear events; a classifier sets ``label`` and the flow reports class changes. Scorers and
policies are built by name through :mod:`frugalai.registry` (``scorers``, ``policies``), so a
plugin's entry point is used exactly like a built-in. The factories that build the two
built-in scorers from a flow plan live in :mod:`frugalai.builtin_scorers`: this module is
what the plan imports, so it imports nothing of the plan (no import circle).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Protocol, runtime_checkable

from frugalai.events.policy import Hysteresis
from frugalai.features.profile import DailyProfile
from frugalai.features.window import WindowStats

if TYPE_CHECKING:
    from frugalai.config import PolicyConfig


@dataclass(frozen=True)
class Score:
    """What a scorer says about one window.

    Attributes:
        value: the anomaly score, or the probability of ``label`` for a classifier.
        label: the class index (classifiers only; None for anomaly scores).
    """

    value: float
    label: Optional[int] = None


class Scorer(Protocol):
    """Scores one closed feature window; None while it cannot score yet (learning)."""

    def score_one(self, window: WindowStats, value: float) -> Optional[Score]: ...


@runtime_checkable
class BatchScorer(Scorer, Protocol):
    """A scorer whose model call can wait: ``score_one(w, v)`` is
    ``finish_one(prepare_one(w, v))``, and ``finish_many`` gives ``finish_one`` of each of
    its items with one model call (exactly when ``batch_exact``). ``prepare_one`` runs the
    stateful feature step (in window order); what it returns is the scorer's own business.
    A flow replaying a file at full speed uses it to pay the model's per-call cost once per batch of windows
    (:meth:`frugalai.pipeline.Flow.batch_windows`)."""

    @property
    def batch_exact(self) -> bool: ...  # finish_many equals finish_one of each, bit for bit

    def prepare_one(self, window: WindowStats, value: float) -> Any: ...

    def finish_one(self, prepared: Any) -> Optional[Score]: ...

    def finish_many(self, prepared: Sequence[Any]) -> list[Optional[Score]]: ...


class Policy(Protocol):
    """Turns a stream of scores into event kinds (``"alarm"``, ``"clear"``) or None."""

    def update_one(self, score: float) -> Optional[str]: ...


class ProfileScorer:
    """The ``profile`` model: robust z-score against the meter's own learned daily profile.

    Windows scored as anomalous (>= ``learn_below``) are not learned, so an anomaly does not
    become the new normal.
    """

    def __init__(self, profile: DailyProfile, learn_below: float = 4.0) -> None:
        self.profile = profile
        self.learn_below = learn_below

    def update_one(self, window: WindowStats, value: float) -> Optional[float]:
        score = self.profile.score_one(window.start, value)
        if score is None or score < self.learn_below:
            self.profile.learn_one(window.start, value)
        return score

    def score_one(self, window: WindowStats, value: float) -> Optional[Score]:
        score = self.update_one(window, value)
        return None if score is None else Score(score)


class ThresholdScorer:
    """The ``threshold`` model: the window value is the score, so ``policy.on``/``off`` are
    plain thresholds in the quantity's unit (alarm above 6000 VA, clear below 4500 VA)."""

    def update_one(self, window: WindowStats, value: float) -> Optional[float]:
        return value

    def score_one(self, window: WindowStats, value: float) -> Optional[Score]:
        return Score(value)


# --- registry factory: (policy config) -> Policy ------------------------------------------------

def hysteresis(policy: PolicyConfig) -> Hysteresis:
    """``[flow.policy] kind = "hysteresis"`` from a policy table (unset keys: the built-in
    defaults; a flow plan passes its resolved table, card values included)."""
    from frugalai.config import FLOW_DEFAULTS

    return Hysteresis(
        FLOW_DEFAULTS["policy.on"] if policy.on is None else policy.on,
        FLOW_DEFAULTS["policy.off"] if policy.off is None else policy.off,
        FLOW_DEFAULTS["policy.debounce"] if policy.debounce is None else policy.debounce)
