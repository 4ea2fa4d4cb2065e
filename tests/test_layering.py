"""The layers of docs/architecture.md and the absence of import cycles, checked by reading imports.

Layers, lowest first. A module may import its own package (group) and any group of a LOWER
rank; two groups of the same rank may not import each other (except inside the foundation):

====  ===========================================  ==========================================
rank  groups                                       why
====  ===========================================  ==========================================
0     frugalai (package), errors, reading, fileio,  the foundation: exceptions, the Reading,
      retry, registry, redact, lograte, extras,    atomic writes, backoff, the registries,
      credentials, mqtt_connect, fleet.topics,     secret redaction, rate-limited logs, the
      digest                                       SHA-256 without OpenSSL,
                                                   optional extras' names, broker passwords,
                                                   MQTT connection errors, the fleet's topic
                                                   tree (the config checks gateway ids with it)
1     protocols, features, events, config,         pure logic (no I/O) and the config schema;
      report.render                                the report's Markdown-to-HTML and SVG
                                                   charts (no frugalai import: the benchmark's
                                                   page uses them too)
2     scoring, health                              the Score/Scorer/Policy vocabulary and the
                                                   built-in scorers that need no bundle; the
                                                   sensor health checks (pure)
3     runtime, modems, sim, footprint,             models; AT modem drivers; device emulators;
      report.worth                                 the bytes/energy/carbon arithmetic (pure);
                                                   the demo's log of alarmed windows
4     sources, uplink, learn, fleet                I/O in and out; training; the fleet's
                                                   messages, MQTT link and health
5     plan                                         config + cards -> validated flow plans
6     pipeline, energy, builtin_scorers            the wiring of flows; meters and the energy
                                                   harness; the built-in scorers' factories
                                                   (read a flow plan)
7     service, report                              the daemon; the deployment's evaluation
                                                   (reads plans, meters' results, learn's
                                                   evaluation)
8     demo, demo_coastal, fleet.agent              the demos (build pipelines, run emulators);
                                                   the rollout agent (installs through the
                                                   service's model store)
9     cli                                          the command line
10    __main__                                     ``python -m frugalai``
====  ===========================================  ==========================================

So ``sources`` and ``uplink`` never import each other (both use ``modems``), ``runtime`` never
imports ``learn``, and nothing below ``service`` imports it.

What counts as an import: every ``import`` / ``from ... import`` statement of a frugalai module,
at module level AND inside functions or classes ("late" imports, used to keep heavy or optional
dependencies out of ``import frugalai``). Late imports obey the same layer rule and take part
in the cycle check: a cycle closed by a late import still couples the modules. The only
statements left out of the layer rule are those under ``if TYPE_CHECKING:`` (never executed);
the cycle check is run a second time with them: two modules that need each other's types are
still one module cut in two (plan and scoring were, until the scorer factories moved to
builtin_scorers). Entries of
:mod:`frugalai.registry` are ``"module:attr"`` strings, not imports: that is how a lower layer
names an implementation without depending on it (the meters, the backends, the uplinks).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest

PKG = Path(__file__).resolve().parents[1] / "frugalai"

RANKS: list[set[str]] = [
    {"frugalai", "errors", "reading", "fileio", "retry", "registry", "redact", "lograte",
     "extras", "credentials", "mqtt_connect", "fleet.topics", "digest"},
    {"protocols", "features", "events", "config", "report.render"},
    {"scoring", "health"},
    {"runtime", "modems", "sim", "footprint", "report.worth"},
    {"sources", "uplink", "learn", "fleet"},
    {"plan"},
    {"pipeline", "energy", "builtin_scorers"},
    {"service", "report"},
    {"demo", "demo_coastal", "fleet.agent"},
    {"cli"},
    {"__main__"},
]
RANK = {group: rank for rank, groups in enumerate(RANKS) for group in groups}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


#: modules ranked apart from their package (an application inside a lower package)
GROUP_OF_MODULE = {"frugalai.fleet.agent": "fleet.agent",
                   "frugalai.fleet.topics": "fleet.topics",
                   "frugalai.report.html": "report.render",
                   "frugalai.report.svgchart": "report.render",
                   "frugalai.report.fmt": "report.render",
                   "frugalai.report.worth": "report.worth"}


def group(module: str) -> str:
    if module in GROUP_OF_MODULE:
        return GROUP_OF_MODULE[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "frugalai"


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skip.update(id(n) for n in ast.walk(inner))
    return skip


def _resolve(name: str) -> str:
    """The frugalai module an imported name belongs to (longest module prefix)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str, types: bool = False) -> Iterator[tuple[str, int, bool]]:
    """(imported frugalai module, line, late) for every counted import statement (with
    ``types``, those under ``if TYPE_CHECKING:`` too)."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skip = set() if types else _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        late = node.col_offset > 0
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                       for a in node.names]
        for target in targets:
            if target == "frugalai" or target.startswith("frugalai."):
                yield _resolve(target), node.lineno, late


GRAPH = {m: sorted({(t, line, late) for t, line, late in imports_of(m) if t != m})
         for m in MODULES}
GRAPH_WITH_TYPES = {m: sorted({(t, line, late) for t, line, late in imports_of(m, True)
                               if t != m}) for m in MODULES}


def test_every_package_has_a_layer() -> None:
    missing = sorted({group(m) for m in MODULES} - set(RANK))
    assert not missing, f"give these packages a rank in RANKS (and in the docstring): {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_from_a_higher_or_sibling_layer(module: str) -> None:
    mine = group(module)
    bad = []
    for target, line, late in GRAPH[module]:
        theirs = group(target)
        if theirs == mine or RANK[theirs] < RANK[mine]:
            continue
        if RANK[theirs] == RANK[mine] == 0:
            continue  # the foundation modules may use each other (no cycle: checked below)
        bad.append(f"line {line}: {target} ({'late ' if late else ''}import; {theirs} is rank "
                   f"{RANK[theirs]}, {mine} is rank {RANK[mine]})")
    assert not bad, f"{module} imports upward or sideways:\n" + "\n".join(bad)


def _cycles(graph: Optional[dict[str, list[tuple[str, int, bool]]]] = None
            ) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over all imports."""
    graph = GRAPH if graph is None else graph
    edges = {m: sorted({t for t, _, _ in graph[m]}) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_frugalai_modules() -> None:
    assert _cycles() == []


def test_no_import_cycle_even_for_types() -> None:
    assert _cycles(GRAPH_WITH_TYPES) == []
    typed = {(m, t) for m, targets in GRAPH_WITH_TYPES.items() for t, _, _ in targets}
    assert ("frugalai.runtime.scorers", "frugalai.plan") in typed  # the graph holds them
    assert ("frugalai.scoring", "frugalai.plan") not in typed  # the circle that went


def test_the_checker_sees_late_imports_and_finds_cycles() -> None:
    """The checks above can fail: the graph holds late imports, and a cycle is detected."""
    late = [(m, t) for m, targets in GRAPH.items() for t, _, is_late in targets if is_late]
    assert ("frugalai.pipeline", "frugalai.plan") in late  # build_plans, imported late
    saved = GRAPH["frugalai.errors"]
    GRAPH["frugalai.errors"] = [*saved, ("frugalai.registry", 1, True)]
    try:
        assert ["frugalai.errors", "frugalai.registry"] in _cycles()
    finally:
        GRAPH["frugalai.errors"] = saved
