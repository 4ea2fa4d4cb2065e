"""Every power meter against the file layouts, command outputs and byte streams it reads.

sysfs trees (powercap, hwmon) are built in a temp dir with the kernel's file names; the USB
meter is an emulator answering 0xF0 on a real pty; the Pi 5 PMIC and the INA219 chip cannot run
here, so a realistic ``vcgencmd`` output and a register-level INA219 emulator (datasheet
equations) stand in for them, said in each test.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from pathlib import Path

import pytest

from frugalai.energy import MeterError, open_meter
from frugalai.energy import ina219 as ina
from frugalai.energy.estimate import PROFILES, EstimateMeter, detect_board, get_profile
from frugalai.energy.hwmon import HwmonMeter
from frugalai.energy.pmic import PmicMeter, parse_pmic_adc, rails_power
from frugalai.energy.rapl import PERMISSION_HINT, RaplMeter
from frugalai.energy.usbmeter import UsbMeter, build_record, parse_record
from frugalai.errors import ConfigError

ROOT_USER = os.geteuid() == 0 if hasattr(os, "geteuid") else False


# ---------------------------------------------------------------- RAPL


def rapl_tree(root: Path, max_range: int = 262_143_328_850) -> Path:
    """The powercap layout of a one-socket Intel machine: package-0 > core, dram; psys."""
    def domain(path: Path, name: str, energy: int) -> None:
        path.mkdir(parents=True)
        (path / "name").write_text(name + "\n")
        (path / "energy_uj").write_text(f"{energy}\n")
        (path / "max_energy_range_uj").write_text(f"{max_range}\n")
        (path / "enabled").write_text("1\n")

    pc = root / "powercap"
    domain(pc / "intel-rapl:0", "package-0", 1_000_000)
    domain(pc / "intel-rapl:0" / "intel-rapl:0:0", "core", 500_000)
    domain(pc / "intel-rapl:0" / "intel-rapl:0:1", "dram", 100_000)
    domain(pc / "intel-rapl:1", "psys", 9_000_000)
    # the kernel exposes subdomains at the top level too, as symlinks
    os.symlink(pc / "intel-rapl:0" / "intel-rapl:0:0", pc / "intel-rapl:0:0")
    os.symlink(pc / "intel-rapl:0" / "intel-rapl:0:1", pc / "intel-rapl:0:1")
    return pc


def set_uj(pc: Path, rel: str, value: int) -> None:
    (pc / rel / "energy_uj").write_text(f"{value}\n")


def test_rapl_sums_packages_only_by_default(tmp_path: Path) -> None:
    pc = rapl_tree(tmp_path)
    m = RaplMeter(pc, interval=0)
    assert [d.name for d in m.domains] == ["package-0"]
    set_uj(pc, "intel-rapl:0", 3_500_000)
    set_uj(pc, "intel-rapl:0/intel-rapl:0:0", 9_000_000)  # core moves too: not counted
    assert m.read() == pytest.approx(2.5)


def test_rapl_counter_wrap(tmp_path: Path) -> None:
    pc = rapl_tree(tmp_path, max_range=10_000_000)
    set_uj(pc, "intel-rapl:0", 9_000_000)
    m = RaplMeter(pc, interval=0)
    set_uj(pc, "intel-rapl:0", 500_000)  # wrapped: 1 J to the top, then 0.5 J
    assert m.read() == pytest.approx(1.5)
    assert m.wraps == 1
    set_uj(pc, "intel-rapl:0", 2_500_000)
    assert m.read() == pytest.approx(3.5)


def test_rapl_named_domains_and_overlap_refused(tmp_path: Path) -> None:
    pc = rapl_tree(tmp_path)
    m = RaplMeter(pc, domains=("core", "dram"), interval=0)
    set_uj(pc, "intel-rapl:0/intel-rapl:0:0", 700_000)
    set_uj(pc, "intel-rapl:0/intel-rapl:0:1", 150_000)
    assert m.read() == pytest.approx(0.25)
    with pytest.raises(MeterError, match="overlap"):
        RaplMeter(pc, domains=("package-0", "core"), interval=0)
    with pytest.raises(MeterError, match="overlap"):
        RaplMeter(pc, domains=("psys", "dram"), interval=0)
    with pytest.raises(MeterError, match=r"not found; available: \['core', 'dram'"):
        RaplMeter(pc, domains=("uncore",), interval=0)


def test_rapl_background_sampling_catches_wraps(tmp_path: Path) -> None:
    pc = rapl_tree(tmp_path, max_range=10_000_000)
    m = RaplMeter(pc, interval=0.01)
    try:
        for v in (9_000_000, 5_000_000, 9_000_000, 5_000_000):  # two wraps between our reads
            set_uj(pc, "intel-rapl:0", v)
            deadline = threading.Event()
            deadline.wait(0.1)
        assert m.read() == pytest.approx(8 + 6 + 4 + 6)  # 1->9, wrap->5, 9, wrap->5 J
        assert m.wraps == 2
    finally:
        m.close()


def test_rapl_root_only_error_explained(tmp_path: Path) -> None:
    """energy_uj mode 0400 root, read by an unprivileged user (as root: a child as nobody)."""
    import subprocess
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="rapl-perm-"))
    try:
        base.chmod(0o755)
        pc = rapl_tree(base)
        for f in pc.rglob("energy_uj"):
            f.chmod(0o400)
        code = ("import os\nfrom frugalai.energy.rapl import RaplMeter\n"
                "from frugalai.energy import MeterError\n"
                "if os.geteuid() == 0:\n    os.setgid(65534)\n    os.setuid(65534)\n"
                f"try:\n    RaplMeter({str(pc)!r}, interval=0)\n"
                "except MeterError as e:\n    print(e)\n")
        if ROOT_USER:
            for f in pc.rglob("energy_uj"):
                os.chown(f, 0, 0)
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
                                 check=True, cwd="/").stdout
        else:
            with pytest.raises(MeterError) as err:
                RaplMeter(pc, interval=0)
            out = str(err.value)
        assert "permission denied" in out and "CVE-2020-8694" in out and "chmod" in out
    finally:
        import shutil

        shutil.rmtree(base)


def test_rapl_permission_message_is_what_users_see() -> None:
    # Runs as root too: the hint itself must tell the cause and the fix.
    assert "root" in PERMISSION_HINT and "CVE-2020-8694" in PERMISSION_HINT
    assert "estimate" in PERMISSION_HINT


def test_rapl_no_powercap(tmp_path: Path) -> None:
    with pytest.raises(MeterError, match="no powercap"):
        RaplMeter(tmp_path / "missing", interval=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeterError, match="no RAPL domain"):
        RaplMeter(tmp_path / "empty", interval=0)


# ---------------------------------------------------------------- hwmon


def hwmon_tree(root: Path, with_power: bool = True) -> Path:
    hw = root / "hwmon"
    for i, name in enumerate(("acpitz", "coretemp", "ina219")):
        d = hw / f"hwmon{i}"
        d.mkdir(parents=True)
        (d / "name").write_text(name + "\n")
    ina_dir = hw / "hwmon2"
    (ina_dir / "in0_input").write_text("40\n")        # shunt mV
    (ina_dir / "in1_input").write_text("5104\n")      # bus mV
    (ina_dir / "curr1_input").write_text("612\n")     # mA
    if with_power:
        (ina_dir / "power1_input").write_text("3124000\n")  # µW
    return hw


def test_hwmon_reads_power_input(tmp_path: Path) -> None:
    m = HwmonMeter(hwmon_tree(tmp_path), interval=10)
    assert m.chip == "ina219"
    assert m.watts() == pytest.approx(3.124)


def test_hwmon_falls_back_to_volts_times_amps(tmp_path: Path) -> None:
    m = HwmonMeter(hwmon_tree(tmp_path, with_power=False), interval=10)
    assert m.watts() == pytest.approx(5.104 * 0.612)


def test_hwmon_integrates_energy(tmp_path: Path) -> None:
    clock = iter([0.0, 2.0, 4.0]).__next__
    hw = hwmon_tree(tmp_path)
    m = HwmonMeter(hw, interval=10)
    m._clock = clock  # deterministic trapezoids
    m.sample()
    (hw / "hwmon2" / "power1_input").write_text("5000000\n")
    m.sample()
    m.sample()
    assert m._joules == pytest.approx((3.124 + 5) / 2 * 2 + 5 * 2)


def test_hwmon_no_device(tmp_path: Path) -> None:
    hw = hwmon_tree(tmp_path)
    with pytest.raises(MeterError, match=r"no hwmon device named ina226.*found: \['acpitz'"):
        HwmonMeter(hw, name="ina226")
    with pytest.raises(MeterError, match="no hwmon class"):
        HwmonMeter(tmp_path / "nope")


def test_hwmon_garbage_value(tmp_path: Path) -> None:
    hw = hwmon_tree(tmp_path)
    (hw / "hwmon2" / "power1_input").write_text("\n")
    with pytest.raises(MeterError, match="unreadable"):
        HwmonMeter(hw, interval=10).watts()


# ---------------------------------------------------------------- INA219


@pytest.mark.parametrize(("lsb", "shunt", "cal"), [
    (0.0001, 0.1, 4096),    # 32 V / 2 A on the usual 0.1 ohm breakout
    (0.00004, 0.1, 10240),  # 32 V / 1 A
    (0.00005, 0.1, 8192),   # 16 V / 400 mA
])
def test_ina219_calibration_vectors(lsb: float, shunt: float, cal: int) -> None:
    assert ina.calibration(lsb, shunt) == cal


def test_ina219_current_lsb_choice() -> None:
    assert ina.current_lsb_for(2.0) == pytest.approx(0.0001)
    assert ina.current_lsb_for(1.0) == pytest.approx(0.00004)
    assert ina.current_lsb_for(3.2) == pytest.approx(0.0001)


def test_ina219_register_decoding() -> None:
    assert ina.shunt_voltage(0x7D00) == pytest.approx(0.32)      # +320 mV full scale
    assert ina.shunt_voltage(0x8300) == pytest.approx(-0.32)
    assert ina.shunt_voltage(0x0FA0) == pytest.approx(0.04)
    assert ina.bus_voltage((3000 << 3) | 0x2) == pytest.approx(12.0)  # CNVR set
    with pytest.raises(ValueError, match="overflow"):
        ina.bus_voltage((3000 << 3) | 0x1)
    assert ina.current(4000, 0.0001) == pytest.approx(0.4)
    assert ina.current(0x10000 - 4000, 0.0001) == pytest.approx(-0.4)
    assert ina.power(2400, 0.0001) == pytest.approx(4.8)
    assert ina.swap16(0xA00F) == 0x0FA0


class Ina219Emulator:
    """A register-level INA219 (no I2C bus can exist here): computes the current and power
    registers from shunt/bus voltages with the datasheet equations, MSB first."""

    def __init__(self, shunt_ohm: float, amps: float, volts: float) -> None:
        self.shunt_ohm, self.amps, self.volts = shunt_ohm, amps, volts
        self.regs = {0: 0x399F, 5: 0}
        self.ptr = 0
        self.closed = False

    def _value(self, reg: int) -> int:
        shunt = round(self.amps * self.shunt_ohm / 10e-6)
        bus = round(self.volts / 0.004)
        cur = shunt * self.regs[5] // 4096
        if reg == 1:
            return shunt & 0xFFFF
        if reg == 2:
            return (bus << 3) | 0x2
        if reg == 3:
            return cur * bus // 5000 & 0xFFFF
        if reg == 4:
            return cur & 0xFFFF
        return self.regs.get(reg, 0)

    def write(self, data: bytes) -> int:
        self.ptr = data[0]
        if len(data) == 3:
            self.regs[self.ptr] = (data[1] << 8) | data[2]
        return len(data)

    def read(self, size: int) -> bytes:
        return struct.pack(">H", self._value(self.ptr))[:size]

    def close(self) -> None:
        self.closed = True


def test_ina219_meter_calibrates_and_reads_power() -> None:
    chip = Ina219Emulator(shunt_ohm=0.1, amps=0.4, volts=12.0)
    m = ina.Ina219Meter(chip, shunt_ohm=0.1, max_current_a=2.0, interval=10)  # type: ignore[arg-type]
    assert chip.regs[5] == 4096 and chip.regs[0] == ina.DEFAULT_CONFIG
    assert m.watts() == pytest.approx(4.8)
    v, a = m.volts_amps()
    assert (v, a) == (pytest.approx(12.0), pytest.approx(0.4))
    m.close()
    assert chip.closed


def test_ina219_wrong_chip_refused() -> None:
    class Deaf(Ina219Emulator):
        def write(self, data: bytes) -> int:
            self.ptr = data[0]
            return len(data)  # ignores register writes: not an INA219

    with pytest.raises(MeterError, match="calibration"):
        ina.Ina219Meter(Deaf(0.1, 0.4, 12.0))  # type: ignore[arg-type]


def test_ina219_no_ack_is_a_meter_error() -> None:
    class Nack(Ina219Emulator):
        def write(self, data: bytes) -> int:
            raise OSError(121, "Remote I/O error")

    with pytest.raises(MeterError, match="no ACK"):
        ina.Ina219Meter(Nack(0.1, 0.4, 12.0))  # type: ignore[arg-type]


def test_i2c_device_errors(tmp_path: Path) -> None:
    with pytest.raises(MeterError, match="no I2C adapter"):
        ina.I2CDevice(str(tmp_path / "i2c-7"), 0x40)
    plain = tmp_path / "not-a-bus"
    plain.write_bytes(b"")
    with pytest.raises(MeterError, match="not an I2C adapter"):
        ina.I2CDevice(str(plain), 0x40)


# ---------------------------------------------------------------- Pi 5 PMIC

PMIC_SAMPLE = """\
   3V7_WL_SW_A current(0)=0.00000000A
   3V3_SYS_A current(1)=0.05367720A
   1V8_SYS_A current(2)=0.16984740A
   DDR_VDD2_A current(3)=0.02147088A
   DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.18739380A
   0V8_SW_A current(6)=0.33185340A
   VDD_CORE_A current(7)=2.34567000A
   3V3_DAC_A current(17)=0.00048840A
   3V3_ADC_A current(18)=0.00042735A
   0V8_AON_A current(16)=0.00512820A
   HDMI_A current(22)=0.02122848A
   3V7_WL_SW_V volt(8)=3.71216800V
   3V3_SYS_V volt(9)=3.31290200V
   1V8_SYS_V volt(10)=1.79963200V
   DDR_VDD2_V volt(11)=1.11065500V
   DDR_VDDQ_V volt(12)=0.60842770V
   1V1_SYS_V volt(13)=1.10651200V
   0V8_SW_V volt(14)=0.80185920V
   VDD_CORE_V volt(15)=0.87234000V
   3V3_DAC_V volt(20)=3.30802100V
   3V3_ADC_V volt(21)=3.30680000V
   0V8_AON_V volt(19)=0.80185920V
   HDMI_V volt(23)=5.10180000V
   EXT5V_V volt(24)=5.08962000V
   BATT_V volt(25)=0.00000000V
"""


def test_pmic_parse_pairs_rails() -> None:
    rails = parse_pmic_adc(PMIC_SAMPLE)
    assert len(rails) == 12 and "EXT5V" not in rails  # voltage only: no power
    assert rails["VDD_CORE"] == (pytest.approx(0.87234), pytest.approx(2.34567))
    expected = sum(v * a for v, a in rails.values())
    assert rails_power(rails) == pytest.approx(expected)
    assert 2.0 < expected < 3.5


def test_pmic_meter_through_a_command(tmp_path: Path) -> None:
    # No Pi 5 here: a script prints what vcgencmd prints, run through the real subprocess path.
    fake = tmp_path / "vcgencmd"
    fake.write_text(f"#!/bin/sh\ncat <<'X'\n{PMIC_SAMPLE}X\n")
    fake.chmod(0o755)
    m = PmicMeter(command=(str(fake), "pmic_read_adc"), interval=10)
    assert m.watts() == pytest.approx(rails_power(parse_pmic_adc(PMIC_SAMPLE)))
    fit = PmicMeter(command=(str(fake), "pmic_read_adc"), fit=True, interval=10)
    assert fit.watts() == pytest.approx(m.watts() * 1.1451 + 0.5879)


def test_pmic_errors(tmp_path: Path) -> None:
    with pytest.raises(MeterError, match="not found: .*Raspberry Pi 5"):
        PmicMeter(command=(str(tmp_path / "vcgencmd"), "pmic_read_adc"))
    failing = tmp_path / "vcgencmd-old"
    failing.write_text("#!/bin/sh\necho 'error=1 error_msg=\"Command not registered\"'; exit 255\n")
    failing.chmod(0o755)
    with pytest.raises(MeterError, match="exited 255: .*Command not registered"):
        PmicMeter(command=(str(failing), "pmic_read_adc"))
    with pytest.raises(MeterError, match="no rail"):
        PmicMeter(runner=lambda cmd: "temp=45.0'C\n")


# ---------------------------------------------------------------- UM25C over a pty


class Um25cEmulator:
    """A UM25C on the far side of an rfcomm-like serial link: answers 0xF0 with a record."""

    def __init__(self, port: object, volts: float, amps: float, reply: bool = True) -> None:
        self.port, self.volts, self.amps, self.reply = port, volts, amps, reply
        self.requests = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            data = self.port.read(timeout=0.05)  # type: ignore[attr-defined]
            for byte in data:
                if byte == 0xF0:
                    self.requests += 1
                    if self.reply:
                        self.port.write(build_record("UM25C", self.volts, self.amps))  # type: ignore[attr-defined]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)


def test_usb_record_layout() -> None:
    rec = build_record("UM25C", 5.123, 0.4567, group_mwh=1234)
    assert len(rec) == 130 and rec[:2] == b"\x09\xc9"
    assert rec[2:4] == (5123).to_bytes(2, "big") and rec[4:6] == (4567).to_bytes(2, "big")
    parsed = parse_record(rec)
    assert parsed.model == "UM25C" and parsed.volts == pytest.approx(5.123)
    assert parsed.amps == pytest.approx(0.4567) and parsed.watts == pytest.approx(2.34, abs=1e-3)
    assert parsed.group_mwh[0] == 1234
    um24 = parse_record(build_record("UM24C", 5.12, 0.456))
    assert um24.volts == pytest.approx(5.12) and um24.amps == pytest.approx(0.456)
    with pytest.raises(ValueError, match="130-byte"):
        parse_record(rec[:-1])
    with pytest.raises(ValueError, match="unknown model id 0x1234"):
        parse_record(b"\x12\x34" + rec[2:])
    with pytest.raises(ValueError, match="configured as UM34C"):
        parse_record(rec, "UM34C")


def test_usb_meter_on_a_pty() -> None:
    from frugalai.sim.pty import PtyPort

    with PtyPort() as port:
        emu = Um25cEmulator(port, volts=5.08, amps=0.61)
        try:
            m = UsbMeter(port.path, "UM25C", timeout=2, interval=10)
            assert m.watts() == pytest.approx(5.08 * 0.61, abs=1e-3)
            assert m.last is not None and m.last.volts == pytest.approx(5.08)
            assert emu.requests >= 2
            m.close()
        finally:
            emu.close()


def test_usb_meter_silent_and_unplugged() -> None:
    from frugalai.sim.pty import PtyPort

    with PtyPort() as port:
        emu = Um25cEmulator(port, 5.0, 0.5, reply=False)
        try:
            with pytest.raises(MeterError, match="no answer from the UM25C to 0xF0"):
                UsbMeter(port.path, "UM25C", timeout=0.3)
        finally:
            emu.close()
    with PtyPort() as port:
        emu = Um25cEmulator(port, 5.0, 0.5)
        m = UsbMeter(port.path, "UM25C", timeout=0.5, interval=10)
        emu.close()
        port.unplug()
        with pytest.raises(MeterError, match="link lost|no answer"):
            m.watts()
        m.close()
    with pytest.raises(MeterError, match="cannot open the UM25C"):
        UsbMeter("/dev/rfcomm-does-not-exist", "UM25C")


# ---------------------------------------------------------------- estimate and specs


def test_detect_board_from_device_tree(tmp_path: Path) -> None:
    model = tmp_path / "model"
    for text, name in (("Raspberry Pi 4 Model B Rev 1.4", "pi-4b"),
                       ("Raspberry Pi 5 Model B Rev 1.0", "pi-5"),
                       ("Raspberry Pi 3 Model B Plus Rev 1.3", "pi-3b+"),
                       ("Raspberry Pi Zero 2 W Rev 1.0", "pi-zero-2w")):
        model.write_bytes(text.encode() + b"\x00")
        assert detect_board(model).name == name
    assert detect_board(tmp_path / "none", machine="x86_64").name == "generic-x86"
    with pytest.raises(MeterError, match="name a profile"):
        detect_board(tmp_path / "none", machine="riscv64")
    with pytest.raises(MeterError, match="unknown board profile"):
        get_profile("pi-6")


def test_estimate_is_cpu_time_times_power_and_labelled() -> None:
    ticks = iter([10.0, 10.5, 12.0])
    m = EstimateMeter(PROFILES["pi-4b"], cpu_clock=lambda: next(ticks))
    assert m.read() == pytest.approx(0.5 * 0.8)
    assert m.read() == pytest.approx(2.0 * 0.8)
    d = m.describe()
    assert d["estimated"] is True and d["label"] == "estimated (pi-4b profile)"
    assert d["profile"]["active_w_per_core"] == 0.8


def test_estimate_follows_real_cpu_work() -> None:
    m = EstimateMeter(PROFILES["generic-x86"])
    e0 = m.read()
    sum(i * i for i in range(300_000))
    assert m.read() > e0


def test_open_meter_specs(tmp_path: Path) -> None:
    assert open_meter("estimate:pi-5").describe()["profile"]["name"] == "pi-5"
    with pytest.raises(ConfigError, match="unknown meter"):
        open_meter("wattmeter")
    with pytest.raises(MeterError, match="no I2C adapter"):
        open_meter(f"ina219:{tmp_path}/i2c-9@0x41")


@pytest.mark.skipif(sys.platform != "linux", reason="powercap is Linux-only")
def test_rapl_on_this_machine_fails_clearly_or_reads() -> None:
    try:
        m = open_meter("rapl")
    except MeterError as err:
        assert "RAPL" in str(err) or "powercap" in str(err)
        return
    assert m.read() >= 0.0
    m.close()
