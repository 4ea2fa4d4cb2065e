"""A full disk: events the outbox cannot store are held in memory, never dropped silently.

The disk fills for real: the gateway process runs under ``RLIMIT_FSIZE`` (no file may grow
past its size when the limit is set), so SQLite's writes fail in the kernel exactly as on a
full SD card (EFBIG instead of ENOSPC; SQLite reports both as an I/O error or "disk full").
Raising the limit again is the space coming back. A subprocess, so that pytest itself keeps
writing freely.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

GATEWAY = r"""
import json, resource, signal, sys
from pathlib import Path
from frugalai.events.event import Event
from frugalai.pipeline import Pipeline
from frugalai.uplink.outbox import Outbox

state, held_max, free_again = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process


class Collect:
    def __init__(self):
        self.got = []

    def send(self, events):
        self.got += [(e.id, e.kind) for e in events]
        return events

    def close(self):
        pass


sink = Collect()
pipeline = Pipeline([], Outbox(state / "outbox.sqlite"), [sink], held_max=held_max)
full = max(f.stat().st_size for f in state.iterdir())
resource.setrlimit(resource.RLIMIT_FSIZE, (full, resource.RLIM_INFINITY))  # the disk is full
created = stored = 0
for i in range(30):
    batch = [Event("alarm" if i % 3 == 0 else "summary", "s", 1_700_000_000 + 10 * i + k,
                   score=5.0) for k in range(10)]
    created += len(batch)
    stored += len(pipeline.store(batch))
during = {"stored": stored, "held": pipeline.held, "lost": pipeline.lost,
          "delivered": pipeline.flush(), "held_kinds": sorted({e.kind for e in pipeline._held})}
if free_again:
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    pipeline.flush()
after = {"held": pipeline.held, "depth": pipeline.outbox.depth()}
pipeline.close()
print(json.dumps({"created": created, "during": during, "after": after, "lost": pipeline.lost,
                  "delivered": sink.got}))
"""


def _run(tmp_path: Path, held_max: int, free_again: bool) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-c", GATEWAY, str(tmp_path), str(held_max),
                           "1" if free_again else "0"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_events_wait_in_memory_while_the_disk_is_full_then_all_are_stored_and_sent(
        tmp_path: Path) -> None:
    out, log = _run(tmp_path, held_max=10_000, free_again=True)
    during = out["during"]
    assert during["held"] > 0 and during["stored"] + during["held"] == out["created"]
    assert during["lost"] == 0
    assert during["delivered"] == during["stored"]  # what reached the disk still goes out
    assert out["after"] == {"held": 0, "depth": 0}
    ids = [i for i, _ in out["delivered"]]
    assert len(ids) == len(set(ids)) == out["created"] and out["lost"] == 0
    assert "holding them in memory" in log and "outbox writable again" in log


def test_past_the_memory_cap_summaries_go_first_and_every_loss_is_counted(tmp_path: Path) -> None:
    out, log = _run(tmp_path, held_max=50, free_again=False)
    during = out["during"]
    assert during["stored"] == 0 and during["held"] == 50
    assert during["held_kinds"] == ["alarm"]  # 100 alarms, 200 summaries: summaries dropped
    assert during["lost"] == out["created"] - 50
    # the process ends with the disk still full: the 50 held are lost too, and said so
    assert out["lost"] == out["created"] and out["delivered"] == []
    assert "LOST 50 event(s) held in memory at exit" in log
