"""The registry's factories of the two built-in scorers that need no bundle: a flow plan ->
:class:`~frugalai.scoring.ProfileScorer` (``model = "profile"``) or
:class:`~frugalai.scoring.ThresholdScorer` (``model = "threshold"``).

Apart from :mod:`frugalai.scoring` because they read a :class:`~frugalai.plan.FlowPlan`, and the
plan imports the scoring protocols: with the factories there, plan and scoring imported each
other (for types). Here the imports run one way: builtin_scorers -> plan -> scoring.
"""

from __future__ import annotations

from frugalai.features.profile import DailyProfile
from frugalai.plan import FlowPlan
from frugalai.scoring import ProfileScorer, ThresholdScorer


def profile_scorer(plan: FlowPlan) -> ProfileScorer:
    """``model = "profile"``, from the flow's resolved ``[flow.profile]`` and ``policy.on``."""
    p = plan.config.profile
    return ProfileScorer(
        DailyProfile(slot_s=p.slot_s, history=p.history, min_history=p.min_history,
                     floor=p.floor, tz_offset_h=plan.tz_offset_h),
        learn_below=plan.policy_on,
    )


def threshold_scorer(plan: FlowPlan) -> ThresholdScorer:
    """``model = "threshold"``."""
    return ThresholdScorer()
