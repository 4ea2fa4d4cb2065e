"""A checksum-valid bit flip must not become a 5.26e9 W power (issue 14 item 5).

The TIC checksum keeps 6 bits of the byte sum, so a flip of bit 6 (0x40) passes it: the
first letter of ``HCHP`` becomes 0x08, the frame loses its peak-hours index, the historique
total drops by the whole HCHP index and the power derived from it exploded. Two flips that
cancel (+0x20, -0x20) pass too and keep the label printable. Both are reproduced here, in a
stream through the real TIC framer, with the windows' rate as the pipeline computes it.
"""

from __future__ import annotations

import math

import pytest

from frugalai.features.window import WindowAggregator
from frugalai.protocols.plausibility import PlausibilityGate
from frugalai.protocols.tic import checksum, encode_frame
from frugalai.reading import Reading
from frugalai.sources.base import SourceStats
from frugalai.sources.framers import TicFramer

HCHC0, HCHP0 = 1_234_567, 7_654_321


def frame(i: int, corrupt: str = "") -> bytes:
    """Frame i of a 1.5 s stream at ~1 kW (HC.., 30 A subscription)."""
    wh = int(i * 1.5 * 1000 / 3600)
    raw = encode_frame([("ADCO", "021861348497"), ("OPTARIF", "HC.."), ("ISOUSC", "30"),
                        ("HCHC", f"{HCHC0:09d}"), ("HCHP", f"{HCHP0 + wh:09d}"),
                        ("PTEC", "HP.."), ("IINST", "005"), ("PAPP", "01100")])
    at = raw.index(b"HCHP")
    if corrupt == "bit6":           # 'H' 0x48 -> 0x08: the 6-bit sum is unchanged
        raw = raw[:at] + bytes([raw[at] ^ 0x40]) + raw[at + 1:]
    elif corrupt == "pair":         # 'H' +0x20 ('h'), 'C' -0x20 ('#'): the sum is unchanged
        raw = raw[:at] + b"h#" + raw[at + 2:]
    return raw


def test_which_flips_pass_the_tic_checksum() -> None:
    body = b"HCHP 007654321"
    assert checksum(bytes([body[0] ^ 0x40]) + body[1:]) == checksum(body)      # passes
    assert checksum(bytes([body[0] ^ 0x20]) + body[1:]) != checksum(body)      # 'h': caught
    assert checksum(b"h#HP 007654321") == checksum(body)                       # passes


@pytest.mark.parametrize("corrupt", ["bit6", "pair"])
def test_a_corrupted_hchp_label_never_becomes_a_power_or_a_rate(corrupt: str) -> None:
    stats = SourceStats()
    now = [1_700_000_000.0]
    framer = TicFramer("linky", stats, lambda: now[0])
    readings: list[Reading] = []
    n = 2400                                     # one hour of frames
    for i in range(n):
        now[0] = 1_700_000_000.0 + 1.5 * i
        readings += framer.feed(frame(i, corrupt if i % 97 == 50 else ""))
    limit = 30 * 200 * 3                         # ISOUSC 30 A x 200 VA x margin 3
    powers = [r.values["power_w"] for r in readings if "power_w" in r.values]
    assert powers and all(0 <= p <= limit for p in powers)
    assert max(powers) == pytest.approx(1000, rel=0.1)
    totals = [r.values["energy_total_wh"] for r in readings if "energy_total_wh" in r.values]
    assert all(b >= a for a, b in zip(totals, totals[1:]))     # an index never decreases
    window = WindowAggregator(900)
    rates = [w.rate_per_h for r in readings if "energy_total_wh" in r.values
             for w in [window.update(r.ts, r.values["energy_total_wh"])] if w is not None]
    assert rates and all(0 <= x <= limit for x in rates if not math.isnan(x))
    corrupted = len(range(50, n, 97))
    if corrupt == "bit6":   # a control character in a label: the frame is refused outright
        assert stats.frames_bad == corrupted and stats.implausible == 0
    else:                   # a printable wrong label: the total is refused, the rest is kept
        assert stats.frames_bad == 0 and stats.implausible == corrupted
        assert len(readings) == n


def test_power_above_the_subscription_is_refused_and_counted() -> None:
    gate = PlausibilityGate()
    kept, refused = gate.check(0.0, {"subscribed_power_va": 9000.0, "apparent_power_va": 5e9,
                                     "voltage_v": 231.0})
    assert kept == {"subscribed_power_va": 9000.0, "voltage_v": 231.0}
    assert refused == ["apparent_power_va"] and gate.refused == 1
    assert gate.check(1.0, {"apparent_power_va": 12_000.0})[1] == []   # within 3 x 9 kVA


def test_a_genuine_index_reset_is_accepted_after_ten_frames() -> None:
    gate = PlausibilityGate()
    gate.check(0.0, {"energy_total_wh": 5_000_000.0})
    results = [gate.check(1.0 + i, {"energy_total_wh": 10.0 + i})[1] for i in range(12)]
    assert results[:9] == [["energy_total_wh"]] * 9 and results[9:] == [[], [], []]
    assert gate.rebased == 1


def test_implausible_values_reach_prometheus() -> None:
    from frugalai.service.health import prometheus

    text = prometheus.render({"flows": {"linky": {"implausible": 3, "state": "running"}}})
    assert 'frugalai_flow_implausible_values_total{flow="linky"} 3' in text
