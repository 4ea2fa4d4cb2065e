"""replay:// over the shared CSVs (plain and gzip) and over a file full of bad rows."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from frugalai.errors import ConfigError, SourceError
from frugalai.sources import open_source
from frugalai.sources.replay import ReplaySource


def test_dutch_power_csv_with_renamed_value(data_dir: Path) -> None:
    path = data_dir / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
    src = open_source(f"replay://{path}?speed=max&value=value:power_kw:kW&limit=96", sensor="nl")
    readings = list(src.readings(threading.Event()))
    assert len(readings) == 96 and src.stats.frames_ok == 96
    assert readings[0].ts == 852076800.0  # 1997-01-01 00:00 UTC
    assert readings[1].ts - readings[0].ts == 900.0
    assert readings[0].values == {"power_kw": 950.0} and readings[0].units == {"power_kw": "kW"}


def test_coastal_gzip_skips_gaps(data_dir: Path) -> None:
    path = data_dir / "coastal" / "providence_8454000" / "providence_8454000_hourly_1938_1969.csv.gz"
    src = ReplaySource.from_url(f"replay://{path}?speed=0&value=water_level_m_mllw:water_level_m:m&limit=2000",
                                sensor="tide")
    readings = list(src.readings(threading.Event()))
    assert src.stats.skipped > 0, "the 1938 record starts with empty hours"
    assert len(readings) + src.stats.skipped == 2000
    assert all(-2.0 < r.values["water_level_m"] < 4.0 for r in readings)
    assert all(b.ts > a.ts for a, b in zip(readings, readings[1:]))


def test_relative_path_and_default_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "d.csv").write_text("ts,a,b\n100,1,2\n160,3,\n")
    monkeypatch.chdir(tmp_path)
    readings = list(open_source("replay://d.csv?speed=max", sensor="s").readings(threading.Event()))
    assert [(r.ts, dict(r.values)) for r in readings] == [(100.0, {"a": 1.0, "b": 2.0}), (160.0, {"a": 3.0})]


def test_bad_rows_are_counted_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2020-01-01T00:00:00Z,1\nnot a date,2\n2020-01-01 00:02,nan\n"
                    "2020-01-01 00:03,abc\n2020-01-01 00:04,\n2020-01-01 00:05,-inf\n2020-01-01 00:06,7\n")
    src = open_source(f"replay://{path}?speed=max", sensor="s")
    readings = list(src.readings(threading.Event()))
    assert [r.values["value"] for r in readings] == [1.0, 7.0]
    assert (src.stats.frames_bad, src.stats.skipped) == (4, 1)


def test_a_row_the_csv_module_rejects_is_counted_and_the_replay_goes_on(tmp_path: Path) -> None:
    """A field over csv's 128 KiB limit (a log line pasted into the file, a corrupt export)
    and a NUL byte are bad rows like the others: counted, skipped, the next rows read."""
    path = tmp_path / "odd.csv"
    path.write_text("timestamp,value\n2020-01-01 00:00,1\n2020-01-01 00:01," + "9" * 200_000
                    + "\n2020-01-01 00:02,2\n2020-01-01 00:03,3\x00\n2020-01-01 00:04,4\n")
    src = open_source(f"replay://{path}?speed=max", sensor="s")
    readings = list(src.readings(threading.Event()))
    rejected = src.stats.frames_bad
    assert [r.values["value"] for r in readings] == [1.0, 2.0, 4.0], src.stats.last_error
    assert rejected == 2, src.stats.last_error


def test_speed_paces_by_file_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("ts,v\n0,1\n600,2\n1200,3\n")
    src = open_source(f"replay://{path}?speed=1200", sensor="s")  # 600 s of data = 0.5 s
    t0 = time.monotonic()
    assert len(list(src.readings(threading.Event()))) == 3
    assert time.monotonic() - t0 >= 0.95  # never faster than the file's clock allows


@pytest.mark.parametrize("url,words", [
    ("replay://x.csv?sped=3", "sped"), ("replay://x.csv?speed=fast", "bad option"),
    ("replay://x.csv?speed=-1", "speed"), ("replay://?speed=1", "no file")])
def test_bad_urls(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        open_source(url, sensor="s", key="flow[0].source")


def test_missing_file_or_column_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot open"):
        list(open_source(f"replay://{tmp_path}/none.csv", sensor="s").readings(threading.Event()))
    (tmp_path / "c.csv").write_text("when,v\n1,2\n")
    with pytest.raises(SourceError, match="no time column"):
        list(open_source(f"replay://{tmp_path}/c.csv", sensor="s").readings(threading.Event()))
    with pytest.raises(SourceError, match="no column"):
        src = open_source(f"replay://{tmp_path}/c.csv?time=when&value=w", sensor="s")
        list(src.readings(threading.Event()))


def test_replay_feeds_a_pipeline_flow(data_dir: Path, tmp_path: Path) -> None:
    """End to end: a replayed day of Dutch demand through the configured flow's windows."""
    from frugalai.config import load_config
    from frugalai.pipeline import Pipeline

    csv_path = data_dir / "energy" / "dutch_power_demand_1997" / "power_demand_1997_labeled.csv"
    cfg = tmp_path / "g.toml"
    cfg.write_text(f"""
[gateway]
id = "gw"
state_dir = "{tmp_path / 'state'}"

[[flow]]
name = "nl"
source = "replay://{csv_path}?speed=max&value=value:power_kw:kW&limit=192"
quantity = "power_kw"
aggregate = "mean"
window_s = 3600
""")
    pipeline = Pipeline.from_config(load_config(cfg), sinks=[], source_kwargs={"clock": time.time})
    try:
        pipeline.start(threading.Event())
        for t in pipeline._threads:
            t.join(timeout=30)
        (flow,) = pipeline.flows
        assert flow.stats.readings == 192 and flow.source.stats.frames_ok == 192
        assert flow.stats.windows >= 47  # two days of 15-min samples in hourly windows
    finally:
        pipeline.close()


def test_tz_option_reads_naive_timestamps_in_that_offset(tmp_path: Path) -> None:
    path = tmp_path / "local.csv"
    path.write_text("datetime,level\n2000-01-01 00:00,1.0\n2000-01-01 01:00,1.5\n"
                    "2000-01-01T02:00:00Z,2.0\n946692000,2.5\n")
    utc = list(open_source(f"replay://{path}?speed=max", sensor="s").readings(threading.Event()))
    est = list(open_source(f"replay://{path}?speed=max&tz=-05:00",
                           sensor="s").readings(threading.Event()))
    assert [r.ts for r in utc][:2] == [946684800.0, 946688400.0]
    assert [r.ts for r in est][:2] == [946684800.0 + 5 * 3600, 946688400.0 + 5 * 3600]
    # timestamps with their own offset, and UNIX seconds, are not shifted
    assert [r.ts for r in est][2:] == [r.ts for r in utc][2:] == [946692000.0, 946692000.0]


@pytest.mark.parametrize("bad", ["tz=Mars/Olympus", "tz=+25:00", "end=loop"])
def test_bad_tz_or_end_option_is_a_config_error(tmp_path: Path, bad: str) -> None:
    (tmp_path / "d.csv").write_text("ts,a\n1,2\n")
    with pytest.raises(ConfigError) as info:
        open_source(f"replay://{tmp_path / 'd.csv'}?{bad}", sensor="s")
    assert bad.split("=")[0] in str(info.value)


def test_named_zone_follows_dst_and_reads_the_repeated_hour_in_order(tmp_path: Path) -> None:
    """Issue 25: tz=Europe/Paris is the same reading as train/evaluate/score's: summer rows at
    +02:00, and the autumn hour written twice read as two hours, not one hour twice."""
    stamps = ["2024-10-27 01:30", "2024-10-27 02:00", "2024-10-27 02:30", "2024-10-27 02:00",
              "2024-10-27 02:30", "2024-10-27 03:00", "2024-07-01 12:00"]
    (tmp_path / "d.csv").write_text("timestamp,a\n" + "".join(f"{t},1\n" for t in stamps))
    src = open_source(f"replay://{tmp_path / 'd.csv'}?speed=max&tz=Europe/Paris", sensor="s")
    ts = [r.ts for r in src.readings(threading.Event())]
    assert [t - ts[0] for t in ts[:6]] == [0, 1800, 3600, 5400, 7200, 9000]
    assert ts[6] == 1719828000.0  # 2024-07-01 10:00 UTC


def test_start_and_until_select_the_period_like_the_commands_do(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("timestamp,a\n" + "".join(
        f"2024-01-0{d} 00:00,{d}\n" for d in range(1, 6)))
    src = open_source(f"replay://{tmp_path / 'd.csv'}?speed=max&tz=+01:00&start=2024-01-02"
                      f"&until=2024-01-04", sensor="s")
    assert [r.values["a"] for r in src.readings(threading.Event())] == [2.0, 3.0]
    with pytest.raises(ConfigError):
        open_source(f"replay://{tmp_path / 'd.csv'}?start=yesterday", sensor="s")


def test_end_stop_returns_at_eof_and_end_wait_holds_until_stopped(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("ts,a\n1,2\n2,3\n")
    src = open_source(f"replay://{tmp_path / 'd.csv'}?speed=max&end=stop", sensor="s")
    assert len(list(src.readings(threading.Event()))) == 2
    stop = threading.Event()
    waiting = open_source(f"replay://{tmp_path / 'd.csv'}?speed=max&end=wait", sensor="s")
    got: list[float] = []
    t = threading.Thread(target=lambda: got.extend(r.ts for r in waiting.readings(stop)))
    t.start()
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert got == [1.0, 2.0] and t.is_alive(), "end=wait: the source stays open after the file"
    stop.set()
    t.join(5)
    assert not t.is_alive()


def test_minute_cache_gives_the_same_times_as_fromisoformat(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from frugalai.sources.replay import TimeParser, parse_offset, parse_time

    start = datetime(2023, 3, 26, 0, 59, 0)
    texts = [(start + timedelta(seconds=7 * k)).isoformat(sep=" ") for k in range(3000)]
    texts += [t[:16] for t in texts[::50]] + ["2023-03-26 00:59:60", "2023-03-26 24:00:00",
                                              "2023-02-30 00:00:00", "2023-03-26T01:02:03"]
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
