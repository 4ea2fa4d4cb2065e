"""The broker fixture itself: a real Mosquitto that stops and comes back on the same port."""

from __future__ import annotations

import socket

import pytest


def test_broker_accepts_then_refuses_then_accepts(mosquitto) -> None:  # type: ignore[no-untyped-def]
    with socket.create_connection((mosquitto.host, mosquitto.port), timeout=1):
        pass
    mosquitto.stop()
    with pytest.raises(OSError), socket.create_connection((mosquitto.host, mosquitto.port),
                                                           timeout=1):
        pass
    mosquitto.start()
    with socket.create_connection((mosquitto.host, mosquitto.port), timeout=1):
        pass
