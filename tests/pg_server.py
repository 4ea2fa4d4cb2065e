"""A real PostgreSQL server for the tests and the central-store benchmark, on a free loopback
port, in a temporary directory, gone when stopped.

``initdb`` refuses to run as root: as root the cluster belongs to the ``postgres`` user (Debian's
package creates it) and its programs run through ``runuser``. The superuser is ``frugalai`` with
a password (SCRAM), so the tests see the connection string a territory would use, password
included, and can check that it never appears in a message. ``scripts/install-sysdeps``
installs the ``postgresql`` package; :func:`find_bin` says in one line when it is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

PASSWORD = "s3cret-pg-Pa55"


def find_bin() -> Optional[Path]:
    """The directory of initdb / pg_ctl (Debian: /usr/lib/postgresql/<major>/bin)."""
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists():
            return Path(cand)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def missing_reason() -> Optional[str]:
    if find_bin() is None:
        return ("PostgreSQL is not installed (apt-get install postgresql; "
                "scripts/install-sysdeps does it as root)")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """initdb + pg_ctl into a temporary directory; ``dsn`` connects as the superuser."""

    def __init__(self, settings: tuple[str, ...] = ()) -> None:
        bindir = find_bin()
        if bindir is None:
            raise RuntimeError(missing_reason() or "no PostgreSQL")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="frugalai-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.settings = settings
        self._as_postgres = hasattr(os, "geteuid") and os.geteuid() == 0

    @property
    def dsn(self) -> str:
        return f"postgresql://frugalai:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def start(self) -> PgServer:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_postgres:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
        got = self._run("initdb", "-D", str(self.data), "-U", "frugalai", "--auth=scram-sha-256",
                        f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync")
        if got.returncode != 0:
            raise RuntimeError(f"initdb failed: {got.stderr.strip()}")
        opts = " ".join([f"-p {self.port}", "-c listen_addresses=127.0.0.1",
                         f"-c unix_socket_directories={self.root}", "-c fsync=on",
                         *(f"-c {s}" for s in self.settings)])
        got = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w",
                        "-t", "60", "-o", opts, "start")
        if got.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {got.stderr.strip()} {log[-1000:]}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"PostgreSQL did not listen on {self.port}")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
