"""The dependency rule of docs/architecture.md, checked by reading imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "frugalai"
PURE = ("protocols", "features", "events")
FORBIDDEN = ("frugalai.sources", "frugalai.uplink", "frugalai.service", "frugalai.cli",
             "frugalai.pipeline", "serial", "paho", "sqlite3", "socket")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_import_no_io(package: str) -> None:
    for path in (PKG / package).rglob("*.py"):
        bad = {n for n in imports(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"


def test_import_frugalai_needs_only_numpy() -> None:
    import subprocess
    import sys

    code = ("import sys, frugalai, frugalai.registry, frugalai.config;"
            "heavy = [m for m in ('onnxruntime','serial','paho','sklearn','click') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
