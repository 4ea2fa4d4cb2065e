"""The replay's fast paths (issue 26) give what the general ones give, row for row.

``_rows_one`` (one value column at full speed) against ``_rows`` (any columns, paced) on a
file full of the usual trouble, and ``TimeParser``'s hour cache against ``parse_time`` on
files that mix ``HH:MM`` and ``HH:MM:SS`` rows, ``T`` separators and UNIX seconds.
"""

from __future__ import annotations

import csv
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from frugalai.sources.replay import ReplaySource, TimeParser, parse_offset, parse_time

MESSY = """timestamp,power_w,other
2024-01-01 00:00,1.5,x
2024-01-01 00:00:10,2.5
2024-01-01 00:00:20,,3
2024-01-01 00:00:30,  ,
2024-01-01 00:00:40,abc,1
2024-01-01 00:00:50,inf,1
not a time,4.0,1
2024-01-01 00:01:60,4.0,1
2024-01-01 24:00:00,4.0,1
2024-01-01T00:02:00,5.0,1
2024-01-01 00:02:10Z,6.0,1
1704067400,7.0,1
1704067410.5,8.0,1
,9.0,1
2024-01-01 00:03:00
2024-01-01 00:03:10,"10.0",1,extra,cells
2024-01-01 00:03:20, 11.0 ,1
2024-02-30 00:00:00,12.0,1
2024-01-01 01:00:00,13.0,1
2024-01-01 00:59:59,14.0,1
"""


def _run(src: ReplaySource, fast: bool) -> tuple[list[tuple[float, dict[str, float]]], dict[str, object]]:
    assert src.value_spec is not None
    with open(src.path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = (src._rows_one(reader, header, "timestamp", src.value_spec[0], threading.Event())
                if fast else
                src._rows(reader, header, "timestamp", src.value_spec, threading.Event()))
        got = [(r.ts, dict(r.values), dict(r.units)) for r in rows]
    return got, src.stats.as_dict()  # type: ignore[return-value]


@pytest.mark.parametrize("options", ["", "&limit=7", "&limit=15", "&tz=-05:00",
                                     "&start=2024-01-01T00:02:00&until=2024-01-01T01:00:00"])
def test_one_column_fast_loop_matches_the_general_one(tmp_path: Path, options: str) -> None:
    path = tmp_path / "messy.csv"
    path.write_text(MESSY)
    url = f"replay://{path}?speed=max&value=power_w:p:W{options}"
    fast, fast_stats = _run(ReplaySource.from_url(url, sensor="s"), fast=True)
    slow, slow_stats = _run(ReplaySource.from_url(url, sensor="s"), fast=False)
    assert fast == slow
    # when each reading came (the gateway's clock) differs by the run; both set it
    assert fast_stats.pop("last_received") > 0 and slow_stats.pop("last_received") > 0
    assert fast_stats == slow_stats
    assert fast_stats["frames_bad"] > 0 and fast_stats["skipped"] > 0  # the file is messy


def test_readings_take_the_fast_loop_for_one_column_at_full_speed(tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    path.write_text(MESSY)
    src = ReplaySource.from_url(f"replay://{path}?speed=max&value=power_w:p:W", sensor="s")
    got = [(r.ts, dict(r.values), dict(r.units)) for r in src.readings(threading.Event())]
    want, _ = _run(ReplaySource.from_url(f"replay://{path}?speed=max&value=power_w:p:W",
                                         sensor="s"), fast=False)
    assert got == want and len(got) > 5


def test_hour_cache_on_mixed_layouts_gives_parse_time() -> None:
    t0 = datetime(2023, 3, 26, 0, 0, 0)
    texts = []
    for k in range(2000):  # seconds apart, then hours apart (hourly records cross days)
        t = t0 + timedelta(seconds=10 * k + (k % 3)) if k < 1000 else \
            t0 + timedelta(hours=k - 990, minutes=k % 2 * 30)
        sep = "T" if k % 7 == 0 else " "
        text = t.isoformat(sep=sep)
        texts.append(text[:16] if k % 5 == 0 else text)
        if k % 11 == 0:
            texts.append(str(t.replace(tzinfo=timezone.utc).timestamp()))
        if k % 13 == 0:
            texts += [text[:14] + "60", text[:17] + "6x", text[:13] + ":5", text + "Z",
                      text[:11] + "24" + text[13:], text[:11] + "2x" + text[13:],
                      text[:10] + "_" + text[11:], text[:8] + "32" + text[10:],
                      text[:5] + "02-30" + text[10:]]
    for tz in (timezone.utc, parse_offset("-05:00"), parse_offset("+0530")):
        parse = TimeParser(tz)
        for text in texts:
            try:
                want: object = parse_time(text, tz)
            except ValueError:
                want = ValueError
            try:
                got: object = parse(text)
            except ValueError:
                got = ValueError
            assert got == want, (text, got, want)
