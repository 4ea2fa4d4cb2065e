"""Documentation tests (datasette style): docs/extending.md's examples run, and cover each kind.

Every ```python block of docs/extending.md is executed, in order, each in a fresh namespace with
the working directory in a temporary folder. The examples register names in the global
registries; the test puts each registry back as it was afterwards, so other tests see the same
names as in a session without this one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from frugalai import registry

ROOT = Path(__file__).resolve().parents[1]
EXTENDING = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def sections() -> dict[str, list[str]]:
    """``## kind`` heading -> the python blocks under it."""
    out: dict[str, list[str]] = {}
    for part in re.split(r"^## ", EXTENDING.read_text(), flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        out[heading.strip()] = BLOCK.findall(body)
    return out


@pytest.fixture
def restored_registries() -> Iterator[None]:
    saved = {kind: dict(reg._entries) for kind, reg in registry.ALL.items()}
    yield
    for kind, reg in registry.ALL.items():
        reg._entries.clear()
        reg._entries.update(saved[kind])


def test_every_kind_with_built_ins_has_a_worked_example() -> None:
    found = sections()
    for kind, reg in registry.ALL.items():
        if any(e.origin == "built-in" for e in reg.entries()):
            assert found.get(kind), f"docs/extending.md needs a '## {kind}' section with an example"


@pytest.mark.parametrize("kind", list(sections()))
def test_extending_examples_run(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                restored_registries: None) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = sections()[kind]
    assert blocks, f"section {kind!r} has no python example"
    for i, code in enumerate(blocks):
        namespace: dict[str, object] = {"__name__": f"extending_{kind}_{i}"}
        exec(compile(code, f"{EXTENDING}:{kind}[{i}]", "exec"), namespace)


def test_the_examples_register_what_they_claim(restored_registries: None) -> None:
    """The examples are not vacuous: after running them, their names resolve."""
    for kind in sections():
        for code in sections()[kind]:
            exec(compile(code, str(EXTENDING), "exec"), {"__name__": "extending"})
    assert {"sine"} <= set(registry.sources.names())
    assert {"kv"} <= set(registry.protocols.names()) and {"kv"} <= set(registry.codecs.names())
    assert {"f64"} <= set(registry.backends.names()) and "sqlite" in registry.uplinks
    assert "level-cm" in registry.decoders and "const" in registry.meters
    assert "edge" in registry.policies and "jump" in registry.scorers
