"""What every benchmark records about its run, and where it writes: one rule for benchmarks/.

Why: a published figure is only worth reading with the date, the commit and the machine it was
measured on (a 2-core shared VM and a quiet Pi differ by 3x), and a casual run on a loaded
machine must never overwrite the published figures. So every script in ``benchmarks/``:

* starts with :func:`provenance` (date, commit and whether the tree was dirty, machine, runtime
  versions, load average at start, command line) and stores it under the ``meta`` key of its
  JSON; :func:`write_results` puts :func:`provenance_line` at the top of its Markdown;
* takes ``--out DIR`` (default ``build/benchmarks/``) and ``--publish`` (write
  ``benchmarks/results/``, the committed figures) through :func:`add_output_arguments`, and
  asks :func:`output_dir` where to write. ``--out benchmarks/results`` without ``--publish``
  is refused: publishing is always asked for by name.

Runtime versions are read from the installed distributions' metadata, not by importing them:
importing onnxruntime would add its memory to a benchmark that measures RSS.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

ROOT = Path(__file__).resolve().parents[1]
#: the committed figures (written only with --publish)
PUBLISHED = ROOT / "benchmarks" / "results"
#: where a run writes by default
UNPUBLISHED = ROOT / "build" / "benchmarks"
META_KEY = "meta"
#: distribution name -> label, the runtimes whose version changes the figures
RUNTIMES = {"numpy": "numpy", "onnxruntime": "onnxruntime", "ai-edge-litert": "ai-edge-litert",
            "scikit-learn": "scikit-learn"}

_started: Optional[float] = None


def _git(*args: str) -> Optional[str]:
    try:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip()


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo``: x86 ``model name``, ARM ``Model``/
    ``Hardware``), else what :mod:`platform` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    for key in ("model name", "Model", "Hardware"):
        for line in lines:
            if line.split(":", 1)[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def runtime_versions() -> dict[str, Optional[str]]:
    """Installed version of each runtime (None when not installed)."""
    from importlib import metadata

    out: dict[str, Optional[str]] = {}
    for dist in RUNTIMES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def command_line(argv: Optional[list[str]] = None) -> str:
    """The command that reproduces this run, script path relative to the checkout."""
    argv = list(sys.argv if argv is None else argv)
    if argv:
        script = Path(argv[0])
        try:
            argv[0] = str(script.resolve().relative_to(ROOT))
        except ValueError:
            pass
    return shlex.join(["python", *argv])


def provenance(**extra: Any) -> dict[str, Any]:
    """The run's provenance; call it at the start of the run (the load average is the one
    the run started under). ``extra`` adds the script's own settings (repeat, seed...)."""
    global _started
    _started = time.monotonic()
    commit = _git("rev-parse", "--short", "HEAD")
    # Uncommitted changes to the code measured; the results a publish run has just written
    # (benchmarks/results, build/) are not the code and must not mark the next script dirty.
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".",
                  ":(exclude)benchmarks/results", ":(exclude)build") if commit else None
    try:
        load: Optional[list[float]] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit or "unknown",
        "dirty": None if status is None else bool(status),
        "machine": {"arch": platform.machine(), "cpu": cpu_model(), "cores": os.cpu_count(),
                    "os": platform.platform()},
        "python": platform.python_version(),
        "versions": runtime_versions(),
        "load_average_at_start": load,
        "command": command_line(),
        **extra,
    }


def provenance_line(meta: dict[str, Any]) -> str:
    """One Markdown line: when, which commit, which machine, under which load."""
    m = meta.get("machine")
    machine = (f"{m['arch']}, {m['cpu']}, {m['cores']} cores, {m['os']}" if isinstance(m, dict)
               else str(m))  # a file written before this module: re-rendered, not re-run
    dirty = " with uncommitted changes" if meta.get("dirty") else ""
    versions = ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items() if v)
    load = meta.get("load_average_at_start")
    load_text = f"load average at start {' / '.join(f'{v:g}' for v in load)}" if load else \
        "load average unknown"
    took = f", {meta['seconds']:.0f} s" if meta.get("seconds") is not None else ""
    return (f"_Run {meta.get('date')}, commit `{meta.get('commit')}`{dirty}; {machine}; "
            f"Python {meta.get('python')}"
            f"{', ' + versions if versions else ''}; {load_text}{took}. "
            f"Command: `{meta.get('command', '?')}`._")


def with_provenance(markdown: str, meta: dict[str, Any]) -> str:
    """The Markdown with the provenance line under its title (or first, without a title)."""
    lines = markdown.split("\n")
    if lines and lines[0].startswith("# "):
        rest = lines[1:]
        while rest and not rest[0].strip():
            rest = rest[1:]
        return "\n".join([lines[0], "", provenance_line(meta), "", *rest])
    return "\n".join([provenance_line(meta), "", *lines])


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--out DIR`` and ``--publish``, the same in every script."""
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for the results (default build/benchmarks/; never "
                             "benchmarks/results/ without --publish)")
    parser.add_argument("--publish", action="store_true",
                        help="write the published figures, benchmarks/results/ (run on a quiet "
                             "machine)")


def output_dir(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Path:
    """Where this run writes; refuses to touch the published figures unless --publish."""
    if args.publish:
        if args.out is not None and args.out.resolve() != PUBLISHED.resolve():
            parser.error("--publish writes benchmarks/results/; leave out --out")
        return PUBLISHED
    out: Path = args.out if args.out is not None else UNPUBLISHED
    if out.resolve() == PUBLISHED.resolve():
        parser.error("benchmarks/results/ holds the published figures: use --publish to "
                     "overwrite them")
    return out


Render = Callable[[dict[str, Any]], str]


def render_markdown(doc: dict[str, Any], render: Union[str, Render]) -> str:
    """The script's Markdown for ``doc`` with the provenance line at the top."""
    text = render if isinstance(render, str) else render(doc)
    return with_provenance(text, doc[META_KEY])


def write_results(out: Path, name: str, doc: dict[str, Any], render: Union[str, Render],
                  indent: int = 2) -> str:
    """Write ``out/name.json`` (``meta`` first, with the run's duration) and ``out/name.md``
    (provenance line at the top); return the Markdown."""
    if META_KEY not in doc:
        raise ValueError(f"{name}: the document has no '{META_KEY}' (call provenance())")
    meta = doc[META_KEY]
    if _started is not None and "seconds" not in meta:
        meta["seconds"] = round(time.monotonic() - _started, 1)
    meta["published"] = out.resolve() == PUBLISHED.resolve()
    doc = {META_KEY: meta, **{k: v for k, v in doc.items() if k != META_KEY}}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(doc, indent=indent, default=str) + "\n")
    text = render_markdown(doc, render)
    if not text.endswith("\n"):
        text += "\n"
    (out / f"{name}.md").write_text(text)
    return text
