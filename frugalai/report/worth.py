"""What the anomalies were worth: the windows an alarm covered, beside the learned profile.

:class:`WindowLog` wraps an energy scorer and keeps, for each scored window, its end, length,
observed mean power and the profile's expected power for that slot (read before the window is
learned). :func:`alarmed_windows` pairs that log with the alarm and clear events of the same run:
a window is alarmed when it ends at or after an alarm and before the clear that follows.
:func:`frugalai.footprint.alarm_excess` turns them into kWh above (and below) the profile.

For a run of bounded length (the demo, a replay): the log grows by one entry per window.
"""

from __future__ import annotations

from typing import Any, Optional

from frugalai.scoring import Score


class WindowLog:
    """An :class:`~frugalai.runtime.scorers.AnomalyScorer` that also logs its windows."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        self.model = scorer.model
        #: (window end, seconds, observed W, expected W or None)
        self.windows: list[tuple[float, float, float, Optional[float]]] = []

    def learn_one(self, ts: float, value: float) -> None:
        self.scorer.learn_one(ts, value)

    def update_one(self, window: Any, value: float) -> Optional[float]:
        expected = self.scorer.features.expected(window.start)
        self.windows.append((window.end, window.end - window.start, value, expected))
        score: Optional[float] = self.scorer.update_one(window, value)
        return score

    def score_one(self, window: Any, value: float) -> Optional[Score]:
        """The flow's vocabulary (:class:`frugalai.scoring.Scorer`)."""
        score = self.update_one(window, value)
        return None if score is None else Score(score)


def alarmed_windows(windows: list[tuple[float, float, float, Optional[float]]],
                    events: list[tuple[str, float]]) -> list[tuple[float, float, float]]:
    """(seconds, observed W, expected W) of every logged window an alarm covered.

    ``events``: (kind, ts) of the run's alarm and clear events; an alarm still open at the end
    covers the windows up to the last.

    >>> log = [(900, 900, 100.0, 100.0), (1800, 900, 900.0, 100.0), (2700, 900, 100.0, 100.0)]
    >>> alarmed_windows(log, [("alarm", 1800), ("clear", 2700)])
    [(900, 900.0, 100.0)]
    """
    spans: list[tuple[float, float]] = []
    start: Optional[float] = None
    for kind, ts in sorted(events, key=lambda e: e[1]):
        if kind == "alarm" and start is None:
            start = ts
        elif kind == "clear" and start is not None:
            spans.append((start, ts))
            start = None
    if start is not None:
        spans.append((start, float("inf")))
    return [(seconds, observed, expected) for end, seconds, observed, expected in windows
            if expected is not None and any(a <= end < b for a, b in spans)]


def run_worth(log: WindowLog, events: list[Any]) -> list[list[float]]:
    """The alarmed windows of a run, JSON-ready (what a run summary's ``alarm_windows`` holds)."""
    pairs = [(e.kind, e.ts) for e in events if e.kind in ("alarm", "clear")]
    return [list(w) for w in alarmed_windows(log.windows, pairs)]
