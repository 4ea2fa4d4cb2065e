"""The SQLite outbox keeps events across a reopened database."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_overflow_drops_lowest_priority_oldest_first_and_counts(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_pending=4) as box:
        box.append_many([Event("heartbeat", "a", 0.0), Event("summary", "a", 1.0),
                         Event("alarm", "a", 2.0), Event("summary", "b", 3.0)])
        box.append(Event("alarm", "b", 4.0))  # heartbeat goes first
        assert [e.kind for e in box.pending()] == ["alarm", "alarm", "summary", "summary"]
        # then classes: each sensor's newest summary carries its counts, it goes after them
        box.append(Event("class", "a", 5.0))
        assert [e.id for e in box.pending()] == ["a:2", "b:1", "a:1", "b:0"]
        box.append(Event("summary", "c", 6.0))  # then the oldest of the newest summaries
        assert [e.id for e in box.pending()] == ["a:2", "b:1", "b:0", "c:0"]
        box.append_many([Event("alarm", "c", 7.0)] * 4)  # only alarms left: oldest alarms go
        assert [e.id for e in box.pending()] == ["c:1", "c:2", "c:3", "c:4"]
        assert box.counts() == {"stored": 11, "sent": 0, "pending": 4, "dropped": 7}
        assert (box.dropped("a"), box.dropped("b"), box.dropped("c")) == (4, 2, 1)
    with Outbox(tmp_path / "o.sqlite") as box:
        assert box.dropped() == 7, "the count survives a restart"


def test_delivered_rows_are_pruned_but_counted(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", keep_sent=5) as box:
        for _ in range(4):
            box.mark_sent(box.append_many([Event("alarm", "a", 0.0)] * 10))
        rows = box._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        assert rows == 5
        assert box.counts() == {"stored": 40, "sent": 40, "pending": 0, "dropped": 0}
        assert box.append(Event("alarm", "a", 0.0)).seq == 40


def test_appends_are_fsynced_marks_are_not(tmp_path: Path) -> None:
    def level(box: Outbox) -> int:
        return int(box._db.execute("PRAGMA synchronous").fetchone()[0])

    FULL, NORMAL = 2, 1  # sqlite's codes
    with Outbox(tmp_path / "a.sqlite") as box:
        event = box.append(Event("alarm", "a", 0.0))
        assert level(box) == FULL
        box.mark_sent([event])
        assert level(box) == NORMAL
        assert box._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with Outbox(tmp_path / "f.sqlite", sync="full") as box:
        box.mark_sent([box.append(Event("alarm", "a", 0.0))])
        assert level(box) == FULL
    with pytest.raises(ValueError, match="sync must be"):
        Outbox(tmp_path / "x.sqlite", sync="sometimes")


def test_database_of_the_first_version_is_upgraded(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE events (rowid INTEGER PRIMARY KEY AUTOINCREMENT, sensor TEXT NOT NULL,
            seq INTEGER NOT NULL, priority INTEGER NOT NULL, created REAL NOT NULL,
            body TEXT NOT NULL, sent_at REAL, UNIQUE (sensor, seq));
        CREATE TABLE sequences (sensor TEXT PRIMARY KEY, next INTEGER NOT NULL);
        INSERT INTO sequences VALUES ('a', 2);
        INSERT INTO events VALUES (1, 'a', 0, 0, 0, '{"kind":"alarm","sensor":"a","ts":0,"seq":0}', 1);
        INSERT INTO events VALUES (2, 'a', 1, 0, 0, '{"kind":"clear","sensor":"a","ts":1,"seq":1}', NULL);
    """)
    con.commit()
    con.close()
    with Outbox(db) as box:
        assert box.counts() == {"stored": 2, "sent": 1, "pending": 1, "dropped": 0}
        assert [e.id for e in box.pending()] == ["a:1"]


def test_unwritable_outbox_is_an_outbox_error(tmp_path: Path) -> None:
    from frugalai.uplink.outbox import OutboxError

    (tmp_path / "file").write_text("")
    with pytest.raises(OutboxError, match="cannot open"):
        Outbox(tmp_path / "file" / "o.sqlite")
    box = Outbox(tmp_path / "o.sqlite")
    box.close()
    with pytest.raises(OutboxError, match="closed"):
        box.append(Event("alarm", "a", 0.0))
    with pytest.raises(OutboxError, match="closed"):
        box.pending()
    box.close()  # twice is fine


WRITER = r"""
import sys
import pytest

from frugalai.events.event import Event
from frugalai.uplink.outbox import Outbox
box = Outbox(sys.argv[1], sync=sys.argv[2] if len(sys.argv) > 2 else "append")
i = 0
while True:
    stored = box.append_many([Event("alarm", "k", float(i + j)) for j in range(3)])
    print(" ".join(e.id for e in stored), flush=True)   # printed only after COMMIT returned
    i += 3
"""


@pytest.mark.parametrize("sync", ["append", "group"])
def test_sigkill_during_appends_loses_no_committed_event(tmp_path: Path, sync: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "o.sqlite"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db), sync], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(root)})
    acked: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while len(acked) < 600 and time.monotonic() < deadline:
        acked += proc.stdout.readline().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    acked += proc.stdout.read().split()  # lines already in the pipe were committed too
    assert len(acked) >= 600
    with Outbox(db) as box:
        assert box._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {e.id for e in box.pending(10**6)}
        assert set(acked) <= stored, f"lost: {sorted(set(acked) - stored)[:5]}"
        assert len(stored) % 3 == 0, "a batch is all or nothing"
        assert box.append(Event("alarm", "k", 0.0)).seq == len(stored)


GROUP_WRITER = r"""
import sys
import threading

from frugalai.events.event import Event
from frugalai.uplink.outbox import Outbox
box = Outbox(sys.argv[1])
out = threading.Lock()

def writer(k):
    i = 0
    while True:
        stored = box.append_many([Event("alarm", f"s{k}", float(i + j)) for j in range(3)])
        with out:  # printed only after this thread's append returned (its group committed)
            print(" ".join(e.id for e in stored), flush=True)
        i += 3

for k in range(8):
    threading.Thread(target=writer, args=(k,), daemon=True).start()
threading.Event().wait()
"""


def test_group_commit_under_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """8 threads append concurrently (their batches share commits); kill -9 in the middle,
    several times over the same database: every acknowledged event is there, every batch is
    whole, and sequence numbers have no holes."""
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "g.sqlite"
    root = Path(__file__).resolve().parents[1]
    acked: list[str] = []
    for _round in range(3):
        proc = subprocess.Popen([sys.executable, "-c", GROUP_WRITER, str(db)],
                                stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(root)})
        assert proc.stdout is not None
        target = len(acked) + 450
        deadline = time.monotonic() + 60
        while len(acked) < target and time.monotonic() < deadline:
            acked += proc.stdout.readline().split()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        acked += proc.stdout.read().split()
    assert len(acked) >= 3 * 450
    with Outbox(db) as box:
        assert box._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {e.id for e in box.pending(10**6)}
        lost = set(acked) - stored
        assert not lost, f"lost: {sorted(lost)[:5]}"
        for k in range(8):
            seqs = sorted(int(i.split(":")[1]) for i in stored if i.startswith(f"s{k}:"))
            assert seqs == list(range(len(seqs))), "no hole in a sensor's sequence"
            assert len(seqs) % 3 == 0, "a batch is all or nothing"


def test_concurrent_appends_share_commits(tmp_path: Path) -> None:
    import threading

    commits = 0
    with Outbox(tmp_path / "c.sqlite") as box:
        real = box._commit_group

        def counting(group: list) -> None:  # type: ignore[type-arg]
            nonlocal commits
            commits += 1
            real(group)

        box._commit_group = counting  # type: ignore[method-assign]
        start = threading.Barrier(8)

        def writer(k: int) -> None:
            start.wait()
            for i in range(25):
                box.append_many([Event("alarm", f"s{k}", float(i))])

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert box.counts()["stored"] == 200
        assert commits < 200, "appends that arrive during a commit join the next one"
        for k in range(8):
            assert [e.seq for e in box.pending(1000) if e.sensor == f"s{k}"] == list(range(25))


def test_group_sync_commits_at_once_and_fsyncs_before_anything_leaves(tmp_path: Path) -> None:
    """``group``: the first append fsyncs, those right after only commit (no fsync), and
    ``pending`` (what the delivery hands to the uplinks) fsyncs them first; an append past the
    interval fsyncs again; close leaves nothing unsynced."""
    def level(box: Outbox) -> int:
        return int(box._db.execute("PRAGMA synchronous").fetchone()[0])

    FULL, NORMAL = 2, 1
    box = Outbox(tmp_path / "g.sqlite", sync="group", sync_interval_s=3600.0)
    box.append(Event("alarm", "a", 0.0))
    assert level(box) == FULL and not box._unsynced
    box.append_many([Event("clear", "a", 1.0), Event("alarm", "a", 2.0)])
    assert level(box) == NORMAL and box._unsynced
    got = box.pending()
    assert [e.seq for e in got] == [0, 1, 2]
    assert level(box) == FULL and not box._unsynced
    box.append(Event("clear", "a", 3.0))
    assert box._unsynced
    box.sync_interval_s = 0.0  # the interval is over: the next append fsyncs the group
    box.append(Event("alarm", "a", 4.0))
    assert level(box) == FULL and not box._unsynced
    box.sync_interval_s = 3600.0
    box.append(Event("clear", "a", 5.0))
    assert box._unsynced
    box.close()
    assert not box._unsynced
    with Outbox(tmp_path / "g.sqlite") as again:
        assert [e.seq for e in again.pending()] == list(range(6))
    with pytest.raises(ValueError, match="sync must be"):
        Outbox(tmp_path / "x.sqlite", sync="grouped")
