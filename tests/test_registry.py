"""The registries: one place per list of names, built-ins loaded like plugins, clear errors."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from frugalai import registry
from frugalai.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

#: Literal containers allowed to hold several names of one kind, and why.
ALLOWED = {
    ("frugalai/registry.py", "precision"): "the one declaration of the precisions",
    # The exporter's manifest of the files it wrote for each built-in runtime: data written
    # into the card's "artifacts", read back by artifact(); not a list of valid names.
    ("frugalai/learn/export.py", "backend"): "files written per runtime",
    # pip extras and the modules they bring: "onnx" and "tflite" name extras and modules there.
    ("frugalai/extras.py", "backend"): "extra and module names",
}


def _builtin_names(reg: registry.Registry) -> set[str]:
    return {e.name for e in reg.entries() if e.origin == "built-in"}


def _literal_strings(node: ast.AST) -> set[str]:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        items: list[Any] = list(node.elts)
    elif isinstance(node, ast.Dict):
        items = [k for k in node.keys if k is not None]
    else:
        return set()
    return {e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def test_backend_precision_and_codec_names_are_listed_in_one_place() -> None:
    """No tuple, list, set or dict literal outside registry.py holds two names of one kind,
    and no comparison tests membership in a literal holding one (``x in ("onnx", ...)``)."""
    kinds = {"backend": _builtin_names(registry.backends), "codec": _builtin_names(registry.codecs),
             "precision": set(registry.PRECISIONS)}
    assert len(kinds["backend"]) >= 3 and len(kinds["codec"]) >= 2
    found = []
    for path in sorted([*ROOT.joinpath("frugalai").rglob("*.py"),
                        *ROOT.joinpath("benchmarks").glob("*.py")]):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            strings = _literal_strings(node)
            for kind, names in kinds.items():
                if len(strings & names) >= 2 and (rel, kind) not in ALLOWED:
                    found.append(f"{rel}:{node.lineno}: {kind} names {sorted(strings & names)}")
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn))
                                                     for op in node.ops):
                for right in node.comparators:
                    strings = _literal_strings(right)
                    for kind, names in kinds.items():
                        if strings & names and (rel, kind) not in ALLOWED:
                            found.append(f"{rel}:{node.lineno}: tests membership in {kind} "
                                         f"names {sorted(strings & names)}")
    assert not found, "read the registry instead:\n" + "\n".join(found)


def test_the_one_place_check_can_fail(tmp_path: Path) -> None:
    tree = ast.parse('if backend not in ("reference", "onnx", "tflite"): pass')
    compare = next(n for n in ast.walk(tree) if isinstance(n, ast.Compare))
    assert _literal_strings(compare.comparators[0]) >= {"onnx", "tflite"}


def test_unknown_name_lists_the_known_ones_with_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        registry.backends.get("tpu", key="flow[0].backend")
    assert err.value.key == "flow[0].backend"
    assert "unknown backend 'tpu'; known: " in str(err.value) and "reference" in str(err.value)
    with pytest.raises(ConfigError, match="unknown serial protocol 'tik'"):
        registry.protocols.check("tik")


def test_check_imports_nothing() -> None:
    import subprocess

    light = subprocess.run([sys.executable, "-c", "import sys, frugalai.registry; "
                            "print('importlib.metadata' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    assert light.stdout.strip() == "False"  # built-ins cost nothing until a name is looked up

    code = ("import sys; from frugalai import registry; registry.backends.check('onnx'); "
            "registry.uplinks.check('mqtt'); registry.meters.check('rapl'); "
            "print([m for m in ('frugalai.runtime.backends', 'frugalai.uplink.mqtt', "
            "'frugalai.energy.rapl') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_builtins_and_plugins_load_through_entry_points() -> None:
    from importlib.metadata import EntryPoint

    reg = registry.Registry("widget")
    reg.builtin("ref", "frugalai.runtime.backends:ReferenceBackend")
    entry = reg.entry("ref")
    assert entry.origin == "built-in" and entry.target == "frugalai.runtime.backends:ReferenceBackend"
    assert isinstance(entry._load, registry._EntryPointLoader)  # EntryPoint(...).load()
    from frugalai.runtime.backends import ReferenceBackend

    assert reg.get("ref") is ReferenceBackend
    # A plugin with a built-in's name is shadowed, kept for the listing, never used.
    reg._add(EntryPoint(name="ref", value="frugalai.runtime.backends:OnnxBackend",
                        group=reg.group), origin="plugin")
    reg._plugins_loaded = True
    assert reg.get("ref") is ReferenceBackend
    shadowed = [e for e in reg.entries(shadowed=True) if e.shadowed]
    assert [(e.name, e.origin) for e in shadowed] == [("ref", "plugin")]
    assert registry.Registry("policy").group == "frugalai.policies"


def test_listing_covers_every_registry_and_formats() -> None:
    found = registry.listing()
    assert set(found) == set(registry.ALL)
    assert {e["name"] for e in found["backend"]} >= {"reference", "onnx", "tflite"}
    text = registry.format_listing(found)
    assert "backends (entry points: frugalai.backends):" in text
    assert "frugalai.runtime.backends:ReferenceBackend" in text


def test_a_broken_plugin_is_a_config_error_and_plugins_check_reports_it() -> None:
    from importlib.metadata import EntryPoint

    from click.testing import CliRunner

    from frugalai.cli import cli
    from frugalai.runtime.backends import runtime_available

    registry.backends.names()  # plugins loaded first, so the probe is not overwritten
    registry.backends._add(EntryPoint(name="broken-probe", value="no_such_module_xyz:Backend",
                                      group="frugalai.backends"), origin="plugin")
    try:
        with pytest.raises(ConfigError, match="'broken-probe'.*cannot be loaded: "
                                              "ModuleNotFoundError") as err:
            registry.backends.get("broken-probe", key="flow[0].backend")
        assert err.value.key == "flow[0].backend"
        assert "cannot be loaded" in (runtime_available("broken-probe") or "")
        listed = CliRunner().invoke(cli, ["plugins"])
        assert listed.exit_code == 0 and "broken-probe" in listed.output
        checked = CliRunner().invoke(cli, ["plugins", "--check", "--json"])
        assert checked.exit_code == 1
        row = next(r for r in json.loads(checked.output)["backend"] if r["name"] == "broken-probe")
        assert "no_such_module_xyz" in row["error"]
    finally:
        registry.backends._entries.pop("broken-probe")


@pytest.mark.parametrize("args, message", [
    (["bench", "--meter", "wattmeter:/dev/x"], "unknown meter 'wattmeter'; known: estimate"),
    (["evaluate", "m", "--data-dir", ".", "--backend", "tpu"], "unknown backend 'tpu'; known:"),
    (["evaluate", "m", "--data-dir", ".", "--precision", "int4"], "'int4' is not one of"),
])
def test_cli_choices_come_from_the_registry(args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from frugalai.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and message in result.output, result.output
    if "backend" in message:
        known = result.output.split("known: ", 1)[1]
        assert all(name in known for name in registry.backends.names())
