"""TIC label mapping (both modes, three-phase), horodate, bad values, power from the energy index."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalai.errors import DecodeError
from frugalai.protocols.tic import STANDARD, TicDecoder, encode_frame, encode_group
from frugalai.protocols.tic_values import EnergyRate, frame_values, parse_horodate


def standard(groups: list[tuple[str, str] | tuple[str, str, str]]) -> bytes:
    parts = [encode_group(g[0], g[-1], STANDARD, g[1] if len(g) == 3 else None) for g in groups]
    return b"\x02" + b"".join(parts) + b"\x03"


def values_of(raw: bytes) -> tuple[dict[str, float], dict[str, str], dict[str, str]]:
    (frame,) = TicDecoder().feed(raw)
    return frame_values(frame)


def test_horodate_spec_example_and_flags() -> None:
    h = parse_horodate("H081225223518")
    assert (h.iso, h.season, h.degraded) == ("2008-12-25T22:35:18+01:00", "H", False)
    assert h.ts == 1230240918.0  # 2008-12-25 21:35:18 UTC
    e = parse_horodate("E180716103423")
    assert e.ts == 1531730063.0 and e.iso.endswith("+02:00")  # 08:34:23 UTC
    assert parse_horodate("h150101150844").degraded
    assert parse_horodate(" 180716103423").season == ""


@pytest.mark.parametrize("bad", ["X180716103423", "E18071610342", "E181316103423", "E18071610342a", ""])
def test_bad_horodates_raise(bad: str) -> None:
    with pytest.raises(DecodeError, match="horodate"):
        parse_horodate(bad)


def test_standard_single_phase_frame_real_groups() -> None:
    values, units, meta = values_of(standard([
        ("ADSC", "123456789012"), ("VTIC", "02"), ("DATE", "E180716103423", ""),
        ("EAST", "011604109"), ("EASF01", "002741488"), ("EAIT", "000032781"), ("IRMS1", "005"),
        ("URMS1", "228"), ("SINSTS", "00046"), ("PREF", "03"), ("PCOUP", "03"),
        ("SMAXSN", "E180716063417", "00021"), ("CCASN", "E210414080000", "00806"),
        ("STGE", "002A0301"), ("NGTF", "     TEMPO      ")]))
    assert values["energy_total_wh"] == 11604109 and units["energy_total_wh"] == "Wh"
    assert values["energy_injected_wh"] == 32781
    assert (values["current_a"], units["current_a"]) == (5, "A")
    assert (values["voltage_v"], units["voltage_v"]) == (228, "V")
    assert (values["apparent_power_va"], units["apparent_power_va"]) == (46, "VA")
    assert values["subscribed_power_va"] == 3000 and values["cutoff_power_va"] == 3000
    assert values["max_apparent_power_va"] == 21 and values["load_curve_power_w"] == 806
    assert meta["date"] == "2018-07-16T10:34:23+02:00" and meta["clock_degraded"] == "0"
    assert meta["ngtf"] == "TEMPO" and meta["stge"] == "002A0301"


def test_three_phase_labels_in_both_modes() -> None:
    v_std, _, _ = values_of(standard([
        ("IRMS1", "004"), ("IRMS2", "002"), ("IRMS3", "001"), ("URMS1", "231"), ("URMS2", "240"),
        ("URMS3", "229"), ("SINSTS", "01000"), ("SINSTS1", "00500"), ("SINSTS2", "00531"),
        ("SINSTS3", "00010")]))
    assert {k: v_std[k] for k in ("current_l1_a", "current_l2_a", "current_l3_a")} == {
        "current_l1_a": 4, "current_l2_a": 2, "current_l3_a": 1}
    assert v_std["voltage_l1_v"] == 231 and v_std["voltage_l3_v"] == 229
    assert v_std["apparent_power_l2_va"] == 531 and "current_a" not in v_std
    v_hist, _, _ = values_of(encode_frame([("IINST1", "004"), ("IINST2", "002"), ("IINST3", "001"),
                                           ("IMAX1", "060"), ("PMAX", "06000"), ("PAPP", "01000")]))
    assert v_hist["current_l1_a"] == 4 and v_hist["current_l3_a"] == 1
    assert v_hist["max_current_l1_a"] == 60 and v_hist["max_power_w"] == 6000


def test_tempo_indexes_sum_into_energy_total() -> None:
    pairs = [("BBRHCJB", "018328856"), ("BBRHPJB", "023739545"), ("BBRHCJW", "001466099"),
             ("BBRHPJW", "002132883"), ("BBRHCJR", "000860118"), ("BBRHPJR", "000844115")]
    values, _, _ = values_of(encode_frame(pairs))
    assert values["energy_total_wh"] == sum(int(d) for _, d in pairs)
    assert values["energy_bbr_c_jb_wh"] == 18328856


@pytest.mark.parametrize("data", ["-00000001", "0000nan00", "000012.50", "   inf   ", "00001e005", ""])
def test_non_numeric_or_signed_data_is_a_decode_error(data: str) -> None:
    (frame,) = TicDecoder().feed(encode_frame([("BASE", data or " ")]))
    with pytest.raises(DecodeError, match="BASE"):
        frame_values(frame)


def test_energy_rate_gives_power_and_survives_resets() -> None:
    rate = EnergyRate(min_interval_s=60)
    assert rate.update(0, 1000) is None
    assert rate.update(30, 1005) is None
    assert rate.update(60, 1010) == 600.0
    assert rate.update(90, 1012) == 600.0  # held until the next full interval
    assert rate.update(120, 1030) == 1200.0
    assert rate.update(130, 5) is None and rate.resets == 1  # counter went backwards
    assert rate.update(190, 15) == 600.0


label_st = st.sampled_from(["PAPP", "BASE", "IINST", "EAST", "SINSTS", "PREF", "DATE", "URMS1", "XYZ"])
data_st = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters="\t"),
                  max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(label_st, st.one_of(st.none(), st.text("EeHh 0123456789", min_size=13,
                                                                max_size=13)), data_st),
                min_size=1, max_size=8))
def test_fuzz_frame_values_raises_only_decode_error(groups: list[tuple[str, str | None, str]]) -> None:
    raw = b"\x02" + b"".join(encode_group(lb, d, STANDARD, h) for lb, h, d in groups) + b"\x03"
    frames = list(TicDecoder().feed(raw))
    for frame in frames:
        try:
            values, _, _ = frame_values(frame)
        except DecodeError:
            continue
        assert all(v >= 0 for v in values.values())
