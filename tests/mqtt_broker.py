"""A real Mosquitto broker for the tests, on a free loopback port.

Tests that talk MQTT start one of these; it can be stopped and restarted on the same port (a
broker outage) and configured with a password file and TLS certificates. ``scripts/
install-sysdeps`` installs mosquitto on a fresh machine; if it is still missing the fixture skips
with the reason (``make test`` fails earlier than that, in install-sysdeps).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto"
                                          if Path("/usr/sbin/mosquitto").exists() else None)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """One broker process with its own config and persistence dir.

    Args:
        workdir: where the config, password file and logs go.
        users: {username: password}; when given, anonymous clients are refused.
        tls: (cafile, certfile, keyfile) for a TLS listener instead of plain TCP.
        acl: text of a Mosquitto ``acl_file`` (with ``users``: per-user topic rights).
        persistence: keep sessions and retained messages across a restart (on disk).
        extra: more configuration lines.
    """

    def __init__(self, workdir: Path, users: Optional[dict[str, str]] = None,
                 tls: Optional[tuple[Path, Path, Path]] = None, acl: Optional[str] = None,
                 persistence: bool = False, extra: tuple[str, ...] = ()) -> None:
        if MOSQUITTO is None:
            raise RuntimeError("mosquitto is not installed (scripts/install-sysdeps installs it)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log = self.workdir / "mosquitto.log"
        lines = [f"listener {self.port} 127.0.0.1", f"log_dest file {self.log}", "log_type all"]
        if persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        if acl is not None:
            aclfile = self.workdir / "acl"
            aclfile.write_text(acl)
            aclfile.chmod(0o600)
            lines.append(f"acl_file {aclfile}")
        lines += list(extra)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root, mosquitto drops to user "mosquitto", which cannot read a 0700 tmp dir
            # (password file, certificates, log): keep the test broker as the test's user.
            lines.append("user root")
        if users:
            pwfile = self.workdir / "passwd"
            pwfile.write_text("")
            for user, password in users.items():
                subprocess.run([MOSQUITTO_PASSWD or "mosquitto_passwd", "-b", str(pwfile), user,
                                password], check=True, capture_output=True)
            pwfile.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            lines.append("allow_anonymous true")
        if tls:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}",
                      "tls_version tlsv1.2"]
        self.conf = self.workdir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts TCP connections."""
        self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err}\n{self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        """Stop the broker (an outage); safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
