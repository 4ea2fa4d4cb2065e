"""Lifetime counters in the state dir: what retired sources and earlier runs counted is kept.

The daemon-level behaviour (counts going on across a reload that reopens the ports and across a
restart) is in tests/test_service_heal.py; here the store itself, and a file it cannot read.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest

from frugalai.service.counters import COUNTERS_FILE, LifetimeCounters, source_counts
from frugalai.sources.base import SourceStats


def test_totals_survive_a_save_and_a_new_process(tmp_path: Path) -> None:
    first = LifetimeCounters(tmp_path)
    first.fold("linky", {"readings": 10, "bytes_read": 1500})  # a source restarted
    live = {"linky": Counter({"readings": 3, "bytes_read": 450, "events": 1})}
    first.save(live, {"upstream_bytes": 40}, tmp_path)
    again = LifetimeCounters(tmp_path)  # the next run: live counts start from zero
    assert again.total("linky", {}) == Counter({"readings": 13, "bytes_read": 1950, "events": 1})
    assert again.total("linky", {"readings": 2})["readings"] == 15
    assert again.snapshot({}, {"upstream_bytes": 5})["gateway"] == {"upstream_bytes": 45}


def test_source_counts_reads_any_stats_object() -> None:
    stats = SourceStats(readings=4, bytes_read=99, parity_errors=1)
    assert source_counts(stats)["parity_errors"] == 1 and source_counts(stats)["readings"] == 4
    assert source_counts(object())["readings"] == 0  # a plugin's stats without the fields


@pytest.mark.parametrize("text", ["{not json", '{"v": 99, "flows": {}}', '{"v": 1, "flows": 3}'])
def test_an_unreadable_file_is_said_and_counting_starts_again(
        tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / COUNTERS_FILE).write_text(text)
    with caplog.at_level(logging.WARNING, logger="frugalai.service"):
        counters = LifetimeCounters(tmp_path)
    assert counters.flows == {} and "lifetime counters start again from zero" in caplog.text
