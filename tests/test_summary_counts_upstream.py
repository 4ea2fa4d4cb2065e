"""The counts of what was dropped always reach upstream (issue 14 item 7).

On c1edaa6 the summaries that carry the drop counts were the first events the outbox cap
dropped (after heartbeats), so a long outage showed upstream 32 of 1,560 drops. Now a
dropped summary is merged into the sensor's next one, and a sensor's newest summary is
dropped only after classes: what upstream receives adds up to every drop.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from frugalai.config import FlowConfig
from frugalai.events import codec
from frugalai.events.event import Event, Stats
from frugalai.events.policy import merge_stats
from frugalai.pipeline import Flow, Pipeline, build_scorer
from frugalai.sources.base import SourceStats
from frugalai.uplink.outbox import Outbox


def _pipeline(tmp_path: Path, cap: int) -> tuple[Pipeline, Flow, SourceStats]:
    config = FlowConfig(name="linky", source="serial:///dev/null", model="threshold",
                        summary_s=900)
    stats = SourceStats()
    flow = Flow(config, SimpleNamespace(stats=stats, close=lambda: None), build_scorer(config, "."))  # type: ignore[arg-type]
    return Pipeline([flow], Outbox(tmp_path / "o.sqlite", max_pending=cap), []), flow, stats


def _deliver_all(pipeline: Pipeline) -> list[Event]:
    """The uplink comes back: everything pending goes, through both wire codecs."""
    got = []
    while batch := pipeline.outbox.pending(500):
        got += batch
        pipeline.outbox.mark_sent(batch)
    return got


def test_every_drop_of_a_long_outage_is_counted_upstream(tmp_path: Path) -> None:
    pipeline, _flow, source_stats = _pipeline(tmp_path, cap=40)
    try:
        t = 1_700_000_000.0
        for _period in range(26):            # 26 periods of a dead uplink and a flapping sensor
            for i in range(60):
                pipeline.store([Event("alarm" if i % 2 else "clear", "linky", t + i)])
            source_stats.frames_bad += 3
            source_stats.implausible += 1
            pipeline.emit_summaries(force=True)
            t += 900
        got = _deliver_all(pipeline)
        pipeline.emit_summaries(force=True)  # the period in which the uplink came back
        got += _deliver_all(pipeline)
        total = pipeline.outbox.dropped("linky")
        summaries = [e for e in got if e.kind == "summary"]
        assert total >= 1500
        assert sum(s.stats.dropped for s in summaries if s.stats) == total
        assert sum(s.stats.errors for s in summaries if s.stats) == 26 * 3
        assert sum(s.stats.implausible for s in summaries if s.stats) == 26
        # the 37-byte binary form carries the same (implausible folded into errors)
        binary = [codec.decode_binary(codec.encode_binary(s))["stats"] for s in summaries]
        assert sum(b["dropped"] for b in binary) == total
        assert sum(b["errors"] for b in binary) == 26 * 4
    finally:
        pipeline.close()


def test_lost_events_reach_the_next_summary(tmp_path: Path) -> None:
    pipeline, _flow, _ = _pipeline(tmp_path, cap=1000)
    try:
        pipeline.held_max = 5
        pipeline._held.extend(Event("clear", "linky", float(i)) for i in range(5))
        pipeline.store([Event("alarm", "linky", 9.0)] * 3)   # held: the outbox "takes no writes"
        assert pipeline.lost == 3
        pipeline._held.clear()
        pipeline.emit_summaries(force=True)
        (summary,) = [e for e in _deliver_all(pipeline) if e.kind == "summary"]
        assert summary.stats is not None and summary.stats.lost == 3
        assert codec.decode_binary(codec.encode_binary(summary))["stats"]["dropped"] == 3
    finally:
        pipeline.close()


def test_a_summary_dropped_with_no_heir_is_carried_to_the_next_one(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_pending=2) as box:
        box.append(Event("summary", "a", 1.0, stats=Stats(period_s=900, dropped=7, errors=2)))
        box.append_many([Event("alarm", "b", 2.0)] * 2)       # a's only summary is dropped
        assert [e.kind for e in box.pending()] == ["alarm", "alarm"]
        box.mark_sent(box.pending())
        stored = box.append(Event("summary", "a", 3.0, stats=Stats(period_s=900, dropped=1)))
        assert stored.stats == merge_stats(Stats(period_s=900, dropped=7, errors=2),
                                           Stats(period_s=900, dropped=1))
        assert stored.stats is not None and (stored.stats.dropped, stored.stats.errors) == (8, 2)
    with Outbox(tmp_path / "o.sqlite") as box:   # nothing carried twice
        again = box.append(Event("summary", "a", 4.0, stats=Stats(dropped=0)))
        assert again.stats is not None and again.stats.dropped == 0
