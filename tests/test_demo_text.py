"""What ``frugalai demo`` prints: injected beside found, the outbox as text, Ctrl-C summary."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path


def test_demo_says_what_it_injected_beside_what_it_found(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "frugalai", "demo", "--seconds", "10"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "injected by the emulator -> found by the gateway:" in text
    lines = {ln.split()[0]: ln for ln in text.splitlines()
             if ln.startswith("  ") and " -> " in ln and "UTC - " in ln}
    assert set(lines) == {"night_load", "spike", "dropout"}
    assert "value=0 W" in lines["dropout"]  # the dropout's ALARM value=0 W is explained
    assert "ALARM at" in lines["spike"]
    assert "; outbox: " in text and " delivered, " in text and "{" not in text.split("summary:")[1]


def test_ctrl_c_prints_the_summary_not_aborted(tmp_path: Path) -> None:
    p = subprocess.Popen([sys.executable, "-m", "frugalai", "demo", "--seconds", "60"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    assert p.stdout is not None
    first = p.stdout.readline()
    assert "events as they happen" in first
    event = p.stdout.readline()  # the first event: the meter runs, the pipeline reads
    assert "ALARM" in event
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted (Ctrl-C)" in out and "summary:" in out and "readings " in out
    assert "Aborted!" not in out + err and "Traceback" not in err
