"""Hostile model cards through the real CLI: each refused with one line and exit 2, no code run.

A card comes from outside (a downloaded bundle, a USB stick); before issue 24 the ``native``
backend wrote its ``name`` into a C comment, and ``*/`` + ``__attribute__((constructor))``
ran code at load. Here every fuzzed card is a shipped card (with the shipped model files next
to it, so every sha256 matches) with one to three of its fields replaced:

* a string field (any, at any depth, keys included): the issue's exploit (a comment closer, a
  constructor that creates the canary), quotes with a newline, a NUL, CR/LF, U+2028, a bidi
  override, ``$(touch canary)``, a 1 MB string; every payload holds at least one thing no
  card string may hold (a control character, ``/*`` or ``*/``, more than 4,096 characters),
  because a lone quote is legitimate prose (``the data's datum``);
* a number: NaN, ±Infinity, 1e400, 2**70, 10**400, a string, an array nested 12 deep;
* the whole: an unknown top-level key, a key twice, not an object, truncated JSON, invalid
  UTF-8, 5 MB, nesting 100,000 deep.

Each card goes through one command in turn — ``score --backend native`` (with and without
``--allow-unsigned-native``), ``evaluate --backend native``, ``models show``, ``models
install`` — run by the CLI's own entry point in this process (click's runner: the same group,
error handler and exit code as the console script), and one in :data:`SUBPROCESS_EVERY`
through the installed ``frugalai`` console script in a real process. Checked: exit 2, stderr
one line starting ``error:`` naming the problem, nothing on stdout, and the canary file never
created (checked after every card).

Writes fuzz_cards.json and fuzz_cards.md to build/benchmarks/ (benchmarks/results/ with
``--publish``)::

    nice -n 10 .venv/bin/python benchmarks/fuzz_cards.py [--cards 10000] [--seed 24] [--quick]
        [--publish]

tests/test_card_fuzz.py runs the same generator on 300 cards in ``make test``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
SHIPPED = ("energy-anomaly", "coastal-submersion")
#: one card in this many also runs through the console script in its own process.
SUBPROCESS_EVERY = 50
MB = 1 << 20


def exploit(canary: Path) -> str:
    """The issue's payload: close the comment, define a constructor that creates the canary."""
    return (f'x */ int system(const char *); __attribute__((constructor)) static void '
            f'fa_pwn(void) {{ system("touch {canary}"); }} /* ')


def string_payloads(canary: Path) -> list[str]:
    """Hostile strings; each holds a control character, a comment delimiter or > 4 KB."""
    return [
        exploit(canary),
        "energy-anomaly */ #include </etc/passwd> /*",
        'a"\n#define fa_energy_anomaly_fp32 system',
        "it's\nnot one line",
        "name\0hidden",
        'q"\0"',
        "line\r\nbreak",
        "sep\u2028arator",
        "bidi\u202eoverride",
        f"$(touch {canary})\n",
        f"`touch {canary}`\t",
        "/* comment opener",
        "A" * MB,
        exploit(canary) + "B" * MB,
        "\x1b[31mred\x1b[0m",
    ]


def number_payloads() -> list[Any]:
    """Numbers no card may hold, and wrong types (serialized with allow_nan)."""
    return [float("nan"), float("inf"), float("-inf"), 2 ** 70, -(2 ** 70), 10 ** 400,
            "12\n", _nested(12), "C" * MB]


class Raw:
    """A field value written as raw JSON text (``1e400`` parses to inf, not to a float)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every (path, leaf) of a JSON tree; objects and arrays are also yielded (their key or
    index is a target too)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*path, k), v
            yield from leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:4]):  # long matrices: a few rows are enough
            yield (*path, i), v
            yield from leaves(v, (*path, i))


def _parent(card: Any, path: tuple[Any, ...]) -> Any:
    """The object or array holding ``path``'s last step, or None when an earlier mutation of
    this card replaced or renamed a step on the way."""
    target = card
    for p in path[:-1]:
        if (isinstance(target, dict) and p in target) or (isinstance(target, list) and \
                isinstance(p, int) and p < len(target)):
            target = target[p]
        else:
            return None
    last = path[-1]
    if isinstance(target, dict) and last in target:
        return target
    if isinstance(target, list) and isinstance(last, int) and last < len(target):
        return target
    return None


def _set(card: Any, path: tuple[Any, ...], value: Any) -> bool:
    target = _parent(card, path)
    if target is None:
        return False
    target[path[-1]] = value
    return True


def _rename(card: Any, path: tuple[Any, ...], new_key: str) -> bool:
    target = _parent(card, path)
    if not isinstance(target, dict):
        return False
    target[new_key] = target.pop(path[-1])
    return True


@dataclass
class Case:
    """One fuzzed card: its bytes and what was done to it."""

    data: bytes
    mutations: list[str] = field(default_factory=list)


def _dumps(card: Any, raws: dict[str, str]) -> str:
    text = json.dumps(card, allow_nan=True)
    for marker, raw in raws.items():
        text = text.replace(json.dumps(marker), raw)
    return text


def hostile_cards(rng: random.Random, n: int, canary: Path) -> Iterator[Case]:
    """``n`` hostile cards from the shipped ones (deterministic for a seeded ``rng``)."""
    bases = {name: json.loads((MODELS / name / "card.json").read_text()) for name in SHIPPED}
    targets = {name: list(leaves(card)) for name, card in bases.items()}
    strings = string_payloads(canary)
    numbers = number_payloads()
    for i in range(n):
        name = SHIPPED[i % len(SHIPPED)]
        card = json.loads(json.dumps(bases[name]))
        raws: dict[str, str] = {}
        case = Case(b"", [name])
        r = rng.random()
        if r < 0.06:
            case.data, what = _whole(rng, card)
            case.mutations.append(what)
            yield case
            continue
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            path, leaf = rng.choice(targets[name])
            where = ".".join(map(str, path))
            choice = rng.random()
            if choice < 0.15 and isinstance(path[-1], str):
                payload = rng.choice(strings)
                if _rename(card, path, payload):
                    case.mutations.append(f"key of {where}: {payload[:30]!r}")
            elif isinstance(leaf, str) or (choice < 0.3 and not isinstance(leaf, (int, float))):
                payload = rng.choice(strings)
                if _set(card, path, payload):
                    case.mutations.append(f"{where}: {payload[:30]!r}")
            elif (isinstance(leaf, (int, float)) and not isinstance(leaf, bool)) or choice < 0.5:
                value = rng.choice([*numbers, Raw("1e400"), Raw("-1e400")])
                if isinstance(value, Raw):
                    marker = f"@@raw{len(raws)}@@"
                    raws[marker] = value.text
                    value = marker
                    shown = raws[marker]
                else:
                    shown = repr(value)[:30]
                if _set(card, path, value):
                    case.mutations.append(f"{where}: {shown}")
            else:  # a bool, an object or an array: replaced by a hostile string
                payload = rng.choice(strings)
                if _set(card, path, payload):
                    case.mutations.append(f"{where}: {payload[:30]!r}")
        case.data = _dumps(card, raws).encode("utf-8", "surrogatepass")
        yield case


def _whole(rng: random.Random, card: dict[str, Any]) -> tuple[bytes, str]:
    """A change to the card as a whole."""
    text = json.dumps(card)
    kind = rng.randrange(8)
    if kind == 0:
        card[rng.choice(["x", "name2", "__proto__", "comment */"])] = "extra"
        return json.dumps(card).encode(), "unknown top-level key"
    if kind == 1:
        return (text[:-1] + ', "name": "other"}').encode(), "key twice"
    if kind == 2:
        return rng.choice([b"[]", b'"card"', b"null", b"42"]), "not an object"
    if kind == 3:
        return text[: rng.randrange(1, len(text))].encode(), "truncated JSON"
    if kind == 4:
        return text.encode()[:100] + b"\xff\xfe" + text.encode()[100:], "invalid UTF-8"
    if kind == 5:
        card["description"] = "D" * (5 * MB)
        return json.dumps(card).encode(), "5 MB card"
    if kind == 6:
        return b"[" * 100_000 + b"]" * 100_000, "nested 100,000 deep"
    return (text[:-1] + ', "name": NaN}').encode(), "NaN token"


# --- the run ----------------------------------------------------------------------------------

@dataclass
class Workspace:
    """A bundle directory (shipped model files + the card under test), the data and config
    the commands need, and the canary path the payloads try to create."""

    root: Path
    canary: Path

    @classmethod
    def make(cls, root: Path) -> Workspace:
        ws = cls(root, root / "canary")
        for name in SHIPPED:
            d = root / name
            d.mkdir()
            for f in (MODELS / name).iterdir():
                if f.is_file() and f.name != "card.json":
                    shutil.copy2(f, d / f.name)
        (root / "data.csv").write_text("time,value\n2024-01-01T00:00:00,1.0\n"
                                       "2024-01-01T00:15:00,2.0\n")
        state = root / "state"
        (root / "gateway.toml").write_text(
            f'[gateway]\nid = "fuzz"\nstate_dir = "{state}"\nmodels_dir = "{root / "installed"}"\n'
            '[[flow]]\nname = "linky"\n'
            'source = "serial:///dev/ttyUSB0?protocol=tic&mode=historique"\nsensor_id = 1\n'
            '[[uplink]]\nurl = "stdout://"\n')
        return ws

    def commands(self, bundle: Path) -> list[list[str]]:
        out = str(self.root / "out.csv")
        data = str(self.root / "data.csv")
        return [
            ["score", str(bundle), "--backend", "native", "--data", data, "--out", out],
            ["score", str(bundle), "--backend", "native", "--allow-unsigned-native",
             "--data", data, "--out", out],
            ["evaluate", str(bundle), "--backend", "native", "--data", data],
            ["models", "show", str(bundle)],
            ["models", "install", str(bundle), "--config", str(self.root / "gateway.toml"),
             "--no-reload"],
        ]


@dataclass
class Outcome:
    exit_code: Optional[int]
    stdout: str
    stderr: str
    how: str

    def problem(self) -> Optional[str]:
        """None if the card was refused as it must be, else what was wrong."""
        lines = self.stderr.splitlines()
        if self.exit_code != 2:
            return f"exit {self.exit_code} (expected 2)"
        if len(lines) != 1 or not lines[0].startswith("error: "):
            return f"stderr is not one 'error:' line: {self.stderr[:200]!r}"
        if "Traceback" in self.stderr or self.stdout.strip():
            return f"output beyond the one line: {self.stdout[:200]!r}"
        return None


def run_in_process(runner: CliRunner, args: list[str]) -> Outcome:
    from frugalai.cli import cli

    result = runner.invoke(cli, args, catch_exceptions=True)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\nTraceback: {type(result.exception).__name__}: {result.exception}"
    return Outcome(result.exit_code, result.stdout, stderr, "in-process")


def run_subprocess(args: list[str], cwd: Path) -> Outcome:
    exe = Path(sys.executable).with_name("frugalai")
    p = subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd,
                       timeout=300, errors="replace")
    return Outcome(p.returncode, p.stdout, p.stderr, "subprocess")


def fuzz(n: int, seed: int, root: Path, subprocess_every: int = SUBPROCESS_EVERY,
         progress: bool = False) -> dict[str, Any]:
    """Run ``n`` hostile cards; a summary with counts and the first failures."""
    ws = Workspace.make(root)
    rng = random.Random(seed)
    runner = CliRunner()
    counts: Counter[str] = Counter()
    failures: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    slowest = (0.0, "")
    t0 = time.monotonic()
    for i, case in enumerate(hostile_cards(rng, n, ws.canary)):
        bundle = root / case.mutations[0]
        (bundle / "card.json").write_bytes(case.data)
        commands = ws.commands(bundle)
        args = commands[i % len(commands)]
        start = time.monotonic()
        outcome = run_in_process(runner, args)
        outcomes = [outcome]
        if subprocess_every and i % subprocess_every == 0:
            outcomes.append(run_subprocess(args, root))
        took = time.monotonic() - start
        if took > slowest[0]:
            slowest = (took, ", ".join(case.mutations)[:200])
        for o in outcomes:
            counts[o.how] += 1
            bad = o.problem()
            if bad is None:
                counts["refused"] += 1
                reasons[_reason(o.stderr)] += 1
            else:
                counts["not_refused"] += 1
                if len(failures) < 20:
                    failures.append({"card": i, "command": args[:2], "how": o.how,
                                     "mutations": case.mutations, "problem": bad})
        if ws.canary.exists():
            counts["canary"] += 1
            failures.append({"card": i, "mutations": case.mutations,
                             "problem": "the canary file was created: code ran"})
            ws.canary.unlink()
        if progress and (i + 1) % 500 == 0:
            print(f"{i + 1}/{n} cards, {counts['not_refused']} not refused, "
                  f"{time.monotonic() - t0:.0f} s", file=sys.stderr)
    return {"cards": n, "seed": seed, "runs": counts["in-process"] + counts["subprocess"],
            "runs_in_process": counts["in-process"], "runs_subprocess": counts["subprocess"],
            "refused_one_line_exit_2": counts["refused"], "not_refused": counts["not_refused"],
            "canary_created": counts["canary"], "seconds": round(time.monotonic() - t0, 1),
            "slowest_card_s": round(slowest[0], 3), "slowest_card": slowest[1],
            "reasons": dict(reasons.most_common(25)), "failures": failures}


def _reason(stderr: str) -> str:
    """The kind of refusal, without the values: the problem after the field."""
    line = stderr.strip()
    for marker in ("must be", "contains", "is missing", "unknown key", "not a JSON card",
                   "finite number", "appears twice", "bytes, a card may have",
                   "characters long", "nested deeper", "integer out of range",
                   "rows of different", "which the card's files do not list"):
        if marker in line:
            return marker
    return line[:80]


def render(doc: dict[str, Any]) -> str:
    lines = ["# Hostile model cards through the CLI (issue 24)", "",
             f"{doc['cards']:,} fuzzed cards (seed {doc['seed']}), {doc['runs']:,} CLI runs "
             f"({doc['runs_in_process']:,} in-process through the CLI's entry point, "
             f"{doc['runs_subprocess']:,} as real processes), {doc['seconds']} s.", "",
             "| check | count |", "|---|---:|",
             f"| refused: exit 2, one `error:` line | {doc['refused_one_line_exit_2']:,} |",
             f"| not refused as required | {doc['not_refused']} |",
             f"| canary file created (code ran) | {doc['canary_created']} |", "",
             f"Slowest card: {doc['slowest_card_s']} s ({doc['slowest_card']}).", "",
             "Refusals by kind:", "", "| problem named | runs |", "|---|---:|"]
    lines += [f"| {k} | {v:,} |" for k, v in doc["reasons"].items()]
    if doc["failures"]:
        lines += ["", "First failures:", ""]
        lines += [f"- card {f['card']}: {f['problem']} ({'; '.join(f['mutations'])})"
                  for f in doc["failures"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    import provenance as prov

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--subprocess-every", type=int, default=SUBPROCESS_EVERY)
    parser.add_argument("--quick", action="store_true", help="1,000 cards")
    prov.add_output_arguments(parser)
    args = parser.parse_args()
    out = prov.output_dir(parser, args)
    if args.quick:
        args.cards = min(args.cards, 1000)
    meta = prov.provenance()
    with tempfile.TemporaryDirectory(prefix="fuzz-cards-") as tmp:
        doc = fuzz(args.cards, args.seed, Path(tmp), args.subprocess_every, progress=True)
    doc = {"meta": meta, **doc}
    print(prov.write_results(out, "fuzz_cards", doc, render), end="")
    if doc["not_refused"] or doc["canary_created"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
