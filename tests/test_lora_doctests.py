"""The doctest examples of the LoRa pure modules are executed (pytest here runs tests/ only)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["frugalai.protocols.lorawan", "frugalai.protocols.at_modem",
           "frugalai.protocols.chirpstack", "frugalai.protocols.payloads"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
