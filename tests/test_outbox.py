"""The SQLite outbox keeps events across a reopened database."""

from __future__ import annotations

from pathlib import Path

from frugalai.events.event import Event
from frugalai.uplink.outbox import Outbox


def test_events_survive_reopen_and_seq_continues(tmp_path: Path) -> None:
    db = tmp_path / "state" / "outbox.sqlite"
    with Outbox(db) as box:
        stored = box.append_many([Event("alarm", "linky", 1.0), Event("clear", "linky", 2.0),
                                  Event("alarm", "node", 3.0)])
        assert [e.seq for e in stored] == [0, 1, 0]
        box.mark_sent(stored[:1])
    with Outbox(db) as box:
        assert box.depth() == 2
        assert [e.id for e in box.pending()] == ["linky:1", "node:0"]
        more = box.append(Event("alarm", "linky", 4.0))
        assert more.seq == 2, "sequence numbers must never repeat after a restart"
        box.mark_sent(box.pending())
        assert box.depth() == 0
        assert box.counts() == {"stored": 4, "sent": 4, "pending": 0, "dropped": 0}


def test_pending_orders_alarms_before_summaries(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        box.append(Event("summary", "a", 1.0))
        box.append(Event("alarm", "a", 2.0))
        assert [e.kind for e in box.pending()] == ["alarm", "summary"]


def test_mark_sent_twice_counts_once(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as box:
        event = box.append(Event("alarm", "a", 1.0))
        assert box.mark_sent([event]) == 1
        assert box.mark_sent([event]) == 0
