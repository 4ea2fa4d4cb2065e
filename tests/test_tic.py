"""TIC framing and checksums against the verified vectors of shared/docs/protocols.md."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frugalai.errors import DecodeError
from frugalai.protocols.tic import (
    HISTORIQUE,
    STANDARD,
    TicDecoder,
    checksum,
    encode_frame,
    encode_group,
    parse_group,
)
from frugalai.protocols.tic_values import frame_values

# A complete real Tempo frame (pyteleinfo captured_frames.bin), protocols.md §1.
TEMPO_FRAME = (
    b"\x02\nADCO 021861348497 L\r\nOPTARIF BBR( S\r\nISOUSC 30 9\r\nBBRHCJB 018328856 F\r\n"
    b"BBRHPJB 023739545 P\r\nBBRHCJW 001466099 U\r\nBBRHPJW 002132883 Z\r\nBBRHCJR 000860118 E\r\n"
    b"BBRHPJR 000844115 Q\r\nPTEC HCJB C\r\nDEMAIN ROUG +\r\nIINST 012 Z\r\nIMAX 090 H\r\n"
    b"PAPP 02840 /\r\nHHPHC A ,\r\nMOTDETAT 000000 B\r\x03"
)
STANDARD_FRAME = (
    b"\x02\nADSC\t041067003463\t/\r\nVTIC\t01\tI\r\nDATE\th150101150844\t\t_\r\n"
    b"NGTF\t       HC       \t,\r\nLTARF\t       BASE     \tF\r\nEAST\t000046245\t$\r\n"
    b"SMAXN-1\th141230000000\t00000\tC\r\x03"
)
BASE_GROUPS = [
    ("ADCO 031762270346", "@"), ("OPTARIF BASE", "0"), ("ISOUSC 30", "9"),
    ("BASE 007640930", "("), ("PTEC TH..", "$"), ("IINST 002", "Y"), ("IMAX 090", "H"),
    ("PAPP 00390", "-"), ("HHPHC A", ","), ("MOTDETAT 000000", "B"),
]
HC_GROUPS = [
    ("ADCO 021528603314", ":"), ("OPTARIF HC..", "<"), ("ISOUSC 15", "<"),
    ("HCHC 000723392", " "), ("HCHP 001742238", "."), ("PTEC HP..", " "), ("IINST 001", "X"),
    ("IMAX 002", "A"), ("PAPP 00180", "*"),
]
STANDARD_GROUPS = [
    "ADSC\t123456789012\t=", "VTIC\t02\tJ", "DATE\tE180716103423\t\tB", "EAST\t011604109\t%",
    "EASF01\t002741488\tD", "EAIT\t000032781\tZ", "IRMS1\t005\t3", "URMS1\t228\tF",
    "URMS2\t240\tA", "SINSTS\t00046\tP", "SINSTS2\t00531\tA", "PREF\t03\tB", "PCOUP\t03\t\\",
    "SMAXSN\tE180716063417\t00021\t9", "UMOY1\tE180716103000\t230\t+",
    "CCASN\tE210414080000\t00806\t:", "NGTF\t     TEMPO      \tF", "STGE\t002A0301\t<",
    "EASD01\t000000000\t ",
]
STANDARD_BAD = ["ADSC\t041067003463\t1", "LTARF\t       BASE     \tG", "EAST\t000046245\t4"]


def historique(groups: list[tuple[str, str]]) -> bytes:
    return b"\x02" + b"".join(f"\n{g} {c}\r".encode() for g, c in groups) + b"\x03"


@pytest.mark.parametrize("body,cks", BASE_GROUPS + HC_GROUPS)
def test_historique_checksum_vectors(body: str, cks: str) -> None:
    assert chr(checksum(body.encode())) == cks
    _label, _, data = body.partition(" ")
    assert parse_group(f"{body} {cks}".encode(), HISTORIQUE).data == data


def test_checksum_can_be_a_space() -> None:
    group = parse_group(b"HCHC 000723392  ", HISTORIQUE)
    assert (group.label, group.data) == ("HCHC", "000723392")
    assert parse_group(b"PTEC HP..  ", HISTORIQUE).data == "HP.."


@pytest.mark.parametrize("raw", STANDARD_GROUPS)
def test_standard_group_vectors(raw: str) -> None:
    group = parse_group(raw.encode(), STANDARD)
    assert group.label == raw.split("\t")[0]
    assert encode_group(group.label, group.data, STANDARD, group.horodate) == f"\n{raw}\r".encode()


def test_standard_date_group_has_empty_data_and_horodate() -> None:
    group = parse_group(b"DATE\tE180716103423\t\tB", STANDARD)
    assert (group.horodate, group.data) == ("E180716103423", "")


@pytest.mark.parametrize("raw", STANDARD_BAD)
def test_standard_bad_checksums_raise(raw: str) -> None:
    with pytest.raises(DecodeError, match="checksum"):
        parse_group(raw.encode(), STANDARD)


def test_real_tempo_frame_decodes() -> None:
    frames = list(TicDecoder().feed(TEMPO_FRAME))
    assert len(frames) == 1
    groups = frames[0].as_dict()
    assert frames[0].mode == HISTORIQUE and len(frames[0].groups) == 16
    assert groups["PAPP"] == "02840" and groups["DEMAIN"] == "ROUG"


def test_real_standard_frame_decodes_in_auto_mode() -> None:
    (frame,) = TicDecoder(mode="auto").feed(STANDARD_FRAME)
    assert frame.mode == STANDARD
    assert frame.as_dict()["EAST"] == "000046245"
    assert frame.groups[2].horodate == "h150101150844"


@pytest.mark.parametrize("groups", [BASE_GROUPS, HC_GROUPS])
def test_frame_values_units(groups: list[tuple[str, str]]) -> None:
    (frame,) = TicDecoder().feed(historique(groups))
    values, units, meta = frame_values(frame)
    assert units["apparent_power_va"] == "VA" and units["energy_total_wh"] == "Wh"
    if groups is BASE_GROUPS:
        assert values["apparent_power_va"] == 390.0
        assert values["energy_total_wh"] == 7640930.0
        assert meta["adco"] == "031762270346"
    else:
        assert values["energy_total_wh"] == 723392.0 + 1742238.0


def test_bad_checksum_frame_is_counted_and_skipped() -> None:
    bad = bytearray(historique(BASE_GROUPS))
    bad[bad.index(b"00390")] = ord("1")  # PAPP 10390 with the old checksum
    good = historique(BASE_GROUPS)
    decoder = TicDecoder()
    frames = list(decoder.feed(good + bytes(bad) + good))
    assert len(frames) == 2
    assert decoder.stats.frames_ok == 2 and decoder.stats.frames_bad == 1
    assert "checksum" in decoder.stats.last_error


def test_eot_aborts_frame_and_garbage_is_skipped() -> None:
    good = historique(BASE_GROUPS)
    decoder = TicDecoder()
    stream = b"\xff\x00garbage" + good[:40] + b"\x04" + good + good[:30] + good
    frames = list(decoder.feed(stream))
    assert len(frames) == 2
    assert decoder.stats.frames_aborted == 1
    assert decoder.stats.frames_bad == 1  # STX inside a frame: the truncated one
    assert decoder.stats.bytes_skipped == len(b"\xff\x00garbage")


def test_8n1_misconfigured_port_still_decodes() -> None:
    # An even-parity bit in bit 7, as an 8N1 port would deliver 7E1 characters.
    def with_parity(b: int) -> int:
        return b | (0x80 if bin(b).count("1") % 2 else 0)

    raw = bytes(with_parity(b) for b in historique(BASE_GROUPS))
    assert len(list(TicDecoder().feed(raw))) == 1


def test_encode_frame_round_trip() -> None:
    pairs = [(g.split(" ", 1)[0], g.split(" ", 1)[1]) for g, _ in BASE_GROUPS]
    assert encode_frame(pairs) == historique(BASE_GROUPS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=400), max_size=30))
def test_chunking_never_changes_frames(cuts: list[int]) -> None:
    stream = TEMPO_FRAME + historique(BASE_GROUPS) + b"\x04junk" + STANDARD_FRAME
    whole = list(TicDecoder().feed(stream))
    decoder = TicDecoder()
    chunked = []
    points = sorted({min(c, len(stream)) for c in cuts})
    for a, b in zip([0, *points], [*points, len(stream)]):
        chunked.extend(decoder.feed(stream[a:b]))
    assert chunked == whole and len(whole) == 3


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    decoder = TicDecoder()
    for frame in decoder.feed(data):
        assert frame.groups
    assert decoder.stats.bytes_in == len(data)
