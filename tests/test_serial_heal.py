"""Serial sources that heal: a port reopened at a framing the kernel refuses, parity done in
software, a device that goes away and comes back under the same name.

On the reference kernel (6.18) a pty opened once at 7E1 refuses 7E1 on every later open with
EINVAL (plain pyserial does the same), while 8N1 opens: a TIC gateway lost its meter for good
at its first restart, reload or rollout. The source now opens 8N1 and checks the parity in
software (frugalai/sources/serial_open.py). These tests run the TIC emulator on real ptys, for
both framings the project uses (TIC's 7E1 and 8N1), historique (1200) and standard (9600).
"""

from __future__ import annotations

import doctest
import errno
import termios
import threading
import time
from pathlib import Path

import pytest
import serial

from frugalai.protocols import parity
from frugalai.protocols.parity import SoftFraming, with_parity
from frugalai.protocols.tic import HISTORIQUE, STANDARD, TicDecoder, encode_frame
from frugalai.reading import Reading
from frugalai.sim.clock import SimClock
from frugalai.sim.household import HouseholdProfile
from frugalai.sim.pty import PtyPort
from frugalai.sim.tic_meter import TicMeterEmulator
from frugalai.sources.serial_open import refused_framing
from frugalai.sources.serial_source import SerialSource

SOFT_7E1 = "7E1 in software (8N1 port: the port refused 7E1)"


def test_parity_doctests() -> None:
    assert doctest.testmod(parity).failed == 0


# ------------------------------------------------------------------ pure: software framing
FRAME = encode_frame([("ADCO", "031762270346"), ("BASE", "007640930"), ("PAPP", "00470")],
                     HISTORIQUE)


def test_a_7e1_frame_read_at_8n1_decodes_after_soft_framing_whatever_the_chunks() -> None:
    wire = with_parity(FRAME, "E") * 3
    assert any(b & 0x80 for b in wire)  # the parity bits are really there
    for step in (1, 7, 64, len(wire)):
        soft, decoder = SoftFraming("E"), TicDecoder(mode="historique")
        frames = [f for i in range(0, len(wire), step) for f in decoder.feed(soft.feed(
            wire[i:i + step]))]
        assert len(frames) == 3 and soft.parity_errors == 0
        assert frames[0].as_dict()["PAPP"] == "00470"


def test_a_byte_with_a_wrong_parity_bit_is_counted_and_its_frame_rejected() -> None:
    wire = bytearray(with_parity(FRAME, "E") * 2)
    wire[10] ^= 0x80  # the parity bit of one character of the first frame, data intact
    soft, decoder = SoftFraming("E"), TicDecoder(mode="historique")
    frames = list(decoder.feed(soft.feed(bytes(wire))))
    assert soft.parity_errors == 1
    assert len(frames) == 1 and decoder.stats.frames_bad == 1  # only the clean frame decodes


def test_odd_parity_and_7n1() -> None:
    assert SoftFraming("O").feed(with_parity(b"TIC", "O")) == b"TIC"
    assert SoftFraming("N").feed(bytes([0xC1, 0x41])) == b"AA"
    with pytest.raises(ValueError, match="parity must be one of E, O, N"):
        SoftFraming("X")


def test_refused_framing_reads_errno_from_every_kind_of_error() -> None:
    assert refused_framing(termios.error(errno.EINVAL, "Invalid argument"))
    assert refused_framing(serial.SerialException(errno.EINVAL, "could not configure"))
    try:
        try:
            raise termios.error(errno.EINVAL, "Invalid argument")
        except termios.error as inner:
            raise OSError("wrapped") from inner
    except OSError as outer:
        assert refused_framing(outer)
    assert not refused_framing(FileNotFoundError(errno.ENOENT, "no such file"))
    assert not refused_framing(PermissionError(errno.EACCES, "denied"))


# ------------------------------------------------------------------ real ptys
FRAMINGS = [(HISTORIQUE, ""), (HISTORIQUE, "8N1"), (STANDARD, ""), (STANDARD, "8N1")]


def source_for(path: str, mode: str, framing: str) -> SerialSource:
    extra = {"bytesize": 8, "parity": "N"} if framing == "8N1" else {}
    return SerialSource(path, sensor="linky", protocol="tic", mode=mode, **extra)  # type: ignore[arg-type]


def collect(source: SerialSource, count: int, timeout: float = 20.0) -> list[Reading]:
    stop = threading.Event()
    out: list[Reading] = []
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    try:
        for reading in source.readings(stop):
            out.append(reading)
            if len(out) >= count:
                break
    finally:
        timer.cancel()
    return out


def meter_on(port: PtyPort, mode: str) -> TicMeterEmulator:
    return TicMeterEmulator(HouseholdProfile(seed=4), SimClock(time.time(), 10.0),
                            frame_period_s=1.5, port=port, mode=mode).start()


@pytest.mark.parametrize(("mode", "framing"), FRAMINGS,
                         ids=[f"{m}-{f or '7E1'}" for m, f in FRAMINGS])
def test_a_second_open_of_the_same_pty_reads_again(tmp_path: Path, mode: str,
                                                   framing: str) -> None:
    """What a restart, a reload that rebuilds the source, or the supervisor's reopen does."""
    port = PtyPort(link=str(tmp_path / "ttyLINKY"))
    meter = meter_on(port, mode)
    try:
        for attempt in range(3):
            source = source_for(port.path, mode, framing)
            try:
                got = collect(source, 3)
            finally:
                source.close()
            assert len(got) == 3, (attempt, source.stats)
            assert got[-1].meta["tic_mode"] == mode
            assert source.stats.parity_errors == 0 and source.stats.frames_bad == 0
            assert source.stats.outages == 0, source.stats.last_error
            if framing == "8N1":
                assert source.stats.framing == "8N1"
            else:  # the kernel's choice; either way the frames decode
                assert source.stats.framing in ("7E1", SOFT_7E1), source.stats.framing
    finally:
        meter.close()


def test_a_refused_7e1_is_read_in_software_and_its_parity_errors_counted(
        tmp_path: Path) -> None:
    port = PtyPort(link=str(tmp_path / "ttyLINKY"))
    try:
        first = serial.Serial(port.path, 1200, bytesize=7, parity="E", timeout=0.1)
        first.close()
        try:  # what this kernel does on a second 7E1 open
            serial.Serial(port.path, 1200, bytesize=7, parity="E", timeout=0.1).close()
        except (serial.SerialException, termios.error) as err:
            assert refused_framing(err), err
        else:
            pytest.skip("this kernel opens a pty at 7E1 twice: the 8N1 fallback is not used")
        source = source_for(port.path, HISTORIQUE, "")
        wire = bytearray(with_parity(FRAME, "E") * 4)
        wire[len(FRAME) + 5] ^= 0x80  # one bad parity bit in the second frame
        stop = threading.Event()
        got: list[Reading] = []

        def read() -> None:
            for reading in source.readings(stop):
                got.append(reading)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + 10
        while source._serial is None and time.monotonic() < deadline:
            time.sleep(0.02)
        port.write(bytes(wire))
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stop.set()
        reader.join(5)
        source.close()
    finally:
        port.close()
    assert source.stats.framing == SOFT_7E1
    assert source.stats.parity_errors == 1
    assert len(got) == 3 and source.stats.frames_bad == 1


@pytest.mark.parametrize("framing", ["", "8N1"], ids=["7E1", "8N1"])
def test_a_device_gone_for_several_retries_comes_back_under_the_same_name(
        tmp_path: Path, framing: str) -> None:
    """A USB adapter replugged: the link disappears (every reopen fails: ENOENT), then points
    at a new device; the source reopens it by itself, one outage, one reconnect."""
    port = PtyPort(link=str(tmp_path / "ttyLINKY"))
    meter = meter_on(port, HISTORIQUE)
    source = source_for(port.path, HISTORIQUE, framing)
    stop = threading.Event()
    got: list[Reading] = []

    def read() -> None:
        for reading in source.readings(stop):
            got.append(reading)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) >= 3
        port.unplug()
        deadline = time.monotonic() + 20
        while source.stats.outages == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.0)  # several reopen attempts fail meanwhile (backoff 0.5, 1 s...)
        assert source.stats.outages == 1 and "ttyLINKY" in source.stats.last_error
        before = len(got)
        port.plug()
        deadline = time.monotonic() + 60
        while len(got) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        reader.join(5)
        meter.close()
        source.close()
    assert len(got) >= before + 3, source.stats
    assert source.stats.outages == 1 and source.stats.reconnects == 1
    assert source.stats.parity_errors == 0


def test_a_link_re_pointed_at_a_new_device_while_the_old_one_stays_open(tmp_path: Path) -> None:
    """A ``/dev/serial/by-id`` link after a replug names a new device, while the old one is
    still there but silent: the source notices on the silent line and opens the new one."""
    import os

    link = tmp_path / "ttyLINKY"
    old = PtyPort(link=str(link))
    meter = meter_on(old, HISTORIQUE)
    source = source_for(str(link), HISTORIQUE, "")
    stop = threading.Event()
    got: list[Reading] = []

    def read() -> None:
        for reading in source.readings(stop):
            got.append(reading)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    new = PtyPort()
    try:
        deadline = time.monotonic() + 20
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) >= 3
        meter.stop()  # the old device goes silent but stays there (its pty is not closed)
        meter = meter_on(new, HISTORIQUE)
        tmp = tmp_path / "link.tmp"
        os.symlink(new.slave_name, tmp)
        os.replace(tmp, link)
        before = len(got)
        deadline = time.monotonic() + 60
        while len(got) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        reader.join(5)
        meter.close()
        source.close()
        new.close()
        old.close()
    assert len(got) >= before + 3, source.stats
    assert source.stats.outages == 1 and "names another device" in source.stats.last_error
