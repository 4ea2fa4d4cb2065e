"""Shared fixtures. Real data is read from ../shared/data, never copied into the repo."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"real data not found at {DATA} (the shared/ folder beside the repo)")
    return DATA


@pytest.fixture
def mosquitto(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A started anonymous Mosquitto on a free loopback port (see tests/mqtt_broker.py)."""
    from mqtt_broker import MOSQUITTO, Mosquitto

    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed: run scripts/install-sysdeps (make test does)")
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    broker.stop()
