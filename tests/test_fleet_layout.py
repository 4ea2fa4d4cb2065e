"""The fleet package keeps its message logic pure: the modules that build and check messages
import no MQTT, no SQLite, no service and none of the fleet's I/O modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FLEET = Path(__file__).resolve().parents[1] / "frugalai" / "fleet"
PURE = ("topics", "records", "status", "manifest")
FORBIDDEN = ("paho", "sqlite3", "socket", "subprocess", "frugalai.uplink", "frugalai.service",
             "frugalai.sources", "frugalai.cli", "frugalai.fleet.link", "frugalai.fleet.collector",
             "frugalai.fleet.health", "frugalai.fleet.agent", "frugalai.fleet.rollout")


@pytest.mark.parametrize("module", PURE)
def test_fleet_message_modules_import_no_io(module: str) -> None:
    tree = ast.parse((FLEET / f"{module}.py").read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    bad = {n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"frugalai/fleet/{module}.py imports I/O: {sorted(bad)}"
