"""Follow a document's marked blocks command by command, as a user would (tests/test_docs_walk.py).

A block is marked by an HTML comment on the line before its fence, invisible once rendered:

* ``<!-- walk: NAME -->`` + a ``sh`` block: each line is one command, run by ``bash -c`` in
  the walk's directory; a line ending with `` &`` (after substitution: a test without systemd
  maps ``systemctl enable --now`` to the unit's command, started so) starts a process that
  keeps running;
* ``<!-- walk: NAME file PATH -->``: the block's text is written to ``PATH``;
* ``<!-- walk: NAME output -->`` + a ``text`` block: what the previous command block printed
  (its foreground commands' stdout, in order). ``...`` in a line matches any text; a line that
  is only ``...`` matches any number of lines;
* ``<!-- walk: NAME wait -->``: a command block run again (up to a bound) until it exits 0
  and prints what the next output block shows (a fleet takes a few seconds to report);
* ``<!-- walk: NAME restart -->``: each line is a background command started before: it is
  stopped (SIGTERM, as Ctrl-C or kill would) and started again;
* ``<!-- walk: NAME stop -->``: each line is a background command started before: it is
  stopped, and what it printed is the block's output.

Before running, every text is passed through the walk's substitution table (a broker's port,
the ptys standing for serial adapters, a data file's path), declared by the test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

MARK = re.compile(r"^<!-- walk: (\S+)(?: (\w+)(?: (\S+))?)? -->\s*$")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    """One marked block of a document."""

    kind: str  # run, file, output, wait, restart, stop
    text: str
    line: int  # where the block starts in the document (1-based), for messages
    path: str = ""


def blocks(doc: Path, walk: str) -> list[Block]:
    """The blocks of ``doc`` marked for ``walk``, in order."""
    lines = doc.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if m and m.group(1) == walk:
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j >= len(lines) or not FENCE.match(lines[j]):
                raise AssertionError(f"{doc}:{i + 1}: a walk mark must precede a fenced block")
            k = j + 1
            while k < len(lines) and not lines[k].startswith("```"):
                k += 1
            out.append(Block(m.group(2) or "run", "\n".join(lines[j + 1:k]) + "\n", j + 2,
                             m.group(3) or ""))
            i = k
        i += 1
    return out


def commands(text: str) -> list[str]:
    """Command lines of a ``sh`` block: continuation lines joined, blank lines dropped."""
    out: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip():
            out.append(line.strip())
    return out


def matches(expected: str, got: str) -> Optional[str]:
    """None when ``got`` fits ``expected`` (``...`` wildcards), else the first difference."""
    want = expected.rstrip("\n").splitlines()
    have = got.rstrip("\n").splitlines()
    pattern = ""
    for line in want:
        if line.strip() == "...":
            pattern += r"(?:[^\n]*\n)*?"
            continue
        pattern += ".*?".join(re.escape(part) for part in line.split("...")) + r"[ \t]*\n"
    if re.fullmatch(pattern, "\n".join(have) + "\n" if have else ""):
        return None
    for n, line in enumerate(want):
        if line.strip() == "...":
            break
        if n >= len(have):
            return f"missing line {n + 1}: {line!r}"
        regex = ".*?".join(re.escape(part) for part in line.split("...")) + r"[ \t]*"
        if not re.fullmatch(regex, have[n]):
            return f"line {n + 1}: expected {line!r}, got {have[n]!r}"
    return "the output differs"


@dataclass
class Walk:
    """Runs the blocks of one walk in ``workdir`` with ``env``; ``subs`` maps doc text to the
    text the test runs."""

    doc: Path
    name: str
    workdir: Path
    env: dict[str, str]
    subs: list[tuple[str, str]]
    wait_s: float = 180.0
    background: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def sub(self, text: str) -> str:
        for doc_text, real in self.subs:
            text = text.replace(doc_text, real)
        return text

    def run(self, command: str, timeout: float = 900.0) -> tuple[int, str, str]:
        done = subprocess.run(["bash", "-c", self.sub(command)], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        self.log.append(f"$ {command}\n{done.stdout}{done.stderr}")
        return done.returncode, done.stdout, done.stderr

    def start(self, command: str) -> None:
        line = self.sub(command).rstrip()[:-1].strip()
        name = f"bg{len(self.log)}.log"
        out = open(self.workdir / name, "w")  # noqa: SIM115 - closed with the process
        self.background[command] = subprocess.Popen(
            ["bash", "-c", f"exec {line}"], cwd=self.workdir, env=self.env,
            stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.background[command].log_name = name  # type: ignore[attr-defined]
        self.log.append(f"$ {command}  (log in {name})")

    def stop(self, command: str, timeout: float = 60.0) -> str:
        proc = self.background.pop(command, None)
        if proc is None:
            raise AssertionError(f"{command!r} was not started by an earlier block")
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise AssertionError(f"{command!r} did not stop on SIGTERM within {timeout} s") from None
        text = (self.workdir / proc.log_name).read_text()  # type: ignore[attr-defined]
        if proc.returncode not in (0, -signal.SIGTERM):
            raise AssertionError(f"{command!r} exited {proc.returncode} on SIGTERM:\n{text}")
        return text

    def close(self) -> None:
        for command in list(self.background):
            proc = self.background.pop(command)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def background_logs(self) -> str:
        return "\n".join(f"--- {cmd}\n" + (self.workdir / p.log_name).read_text()[-3000:]  # type: ignore[attr-defined]
                         for cmd, p in self.background.items())

    def fail(self, block: Block, why: str) -> AssertionError:
        return AssertionError(f"{self.doc.name}:{block.line}: {why}\n\n"
                              + "\n".join(self.log[-6:]) + "\n" + self.background_logs())

    def follow(self) -> list[str]:
        """Run every block; the list of steps done (AssertionError at the first mismatch)."""
        todo = blocks(self.doc, self.name)
        assert todo, f"no block marked 'walk: {self.name}' in {self.doc}"
        steps: list[str] = []
        printed: Optional[str] = None
        i = 0
        while i < len(todo):
            block = todo[i]
            expect = todo[i + 1] if i + 1 < len(todo) and todo[i + 1].kind == "output" else None
            if block.kind == "file":
                target = (self.workdir / self.sub(block.path)).resolve()
                if self.workdir.resolve() not in target.parents:  # never outside the walk
                    raise self.fail(block, f"{block.path} is outside the walk's directory: "
                                           "map it in the substitution table")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(self.sub(block.text))
                steps.append(f"wrote {block.path}")
            elif block.kind == "output":
                if printed is None:
                    raise self.fail(block, "an output block follows no command block")
                diff = matches(self.sub(block.text), printed)
                if diff is not None:
                    raise self.fail(block, f"printed something else than the doc shows: {diff}"
                                           f"\n--- printed:\n{printed}")
                printed = None
            elif block.kind == "wait":
                printed = self._wait(block, expect)
                steps.append(f"waited for {block.text.strip()}")
            elif block.kind in ("restart", "stop"):
                printed = ""
                for command in commands(block.text):
                    text = self.stop(command)
                    if block.kind == "restart":
                        self.start(command)
                        steps.append(f"restarted {command}")
                    else:
                        printed += text
                        steps.append(f"stopped {command}")
            else:
                printed = ""
                for command in commands(block.text):
                    if self.sub(command).rstrip().endswith("&"):  # (the table may say so)
                        self.start(command)
                        steps.append(f"started {command}")
                        continue
                    code, out, err = self.run(command)
                    if code != 0:
                        raise self.fail(block, f"`{command}` exited {code}:\n{out}{err}")
                    printed += out
                    steps.append(f"ran {command}")
            i += 1
        return steps

    def _wait(self, block: Block, expect: Optional[Block]) -> str:
        deadline = time.monotonic() + self.wait_s
        last = ""
        while True:
            out = ""
            ok = True
            for command in commands(block.text):
                code, text, err = self.run(command, timeout=120)
                out += text
                ok = ok and code == 0
                last = text + err
            if ok and (expect is None or matches(self.sub(expect.text), out) is None):
                return out
            if time.monotonic() > deadline:
                raise self.fail(block, f"not as the doc shows after {self.wait_s:.0f} s; last "
                                       f"output:\n{last}")
            time.sleep(2)
