"""Several uplinks at once: each gets every event once, the outbox waits for the slowest."""

from __future__ import annotations

from pathlib import Path

from frugalai.errors import UplinkError
from frugalai.events.event import Event
from frugalai.pipeline import Pipeline
from frugalai.uplink.outbox import Outbox


class RecordingSink:
    """Accepts at most ``per_call`` events per send (a duty-cycled LoRaWAN modem), or fails."""

    def __init__(self, per_call: int | None = None) -> None:
        self.per_call = per_call
        self.down = False
        self.got: list[str] = []

    def send(self, events: list[Event]) -> list[Event]:
        if self.down:
            raise UplinkError("link down")
        taken = events if self.per_call is None else events[: self.per_call]
        self.got += [e.id for e in taken]
        return taken

    def close(self) -> None:
        pass


def _pipeline(tmp_path: Path, *sinks: RecordingSink) -> Pipeline:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    outbox.append_many(Event("alarm", "s", 1_700_000_000 + i, score=5.0) for i in range(10))
    return Pipeline([], outbox, list(sinks))


def test_a_fast_sink_gets_each_event_once_while_a_slow_one_catches_up(tmp_path: Path) -> None:
    fast, slow = RecordingSink(), RecordingSink(per_call=3)
    pipeline = _pipeline(tmp_path, fast, slow)
    rounds = 0
    while pipeline.outbox.depth() and rounds < 20:
        pipeline.flush()
        rounds += 1
    assert pipeline.outbox.depth() == 0
    assert sorted(fast.got) == sorted(set(fast.got)) and len(fast.got) == 10
    assert sorted(slow.got) == sorted(fast.got)
    assert pipeline.delivered == 10 and rounds == 4  # 3 + 3 + 3 + 1


def test_a_dead_sink_holds_events_in_the_outbox_without_blocking_the_other(tmp_path: Path) -> None:
    live, dead = RecordingSink(), RecordingSink()
    dead.down = True
    pipeline = _pipeline(tmp_path, live, dead)
    assert pipeline.flush() == 0
    assert len(live.got) == 10 and pipeline.outbox.depth() == 10  # kept for the dead one
    pipeline.flush()
    assert len(live.got) == 10  # not sent again
    dead.down = False
    assert pipeline.flush() == 10
    assert len(dead.got) == 10 and len(live.got) == 10 and pipeline.outbox.depth() == 0
