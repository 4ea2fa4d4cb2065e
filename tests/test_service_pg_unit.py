"""``frugalai service install-collector --db postgresql://...``: a territory's PostgreSQL
collector as a systemd service.

The unit is rendered (``--dry-run``) and checked by ``systemd-analyze`` as the SQLite
collector's is; what cannot go in a unit (a password in the connection string, ``--out`` with
``--db``, a bad URL, a share group MQTT 5 forbids, a pgpass file libpq would ignore) is refused
with exit 2 naming the option; and the unit's own ``ExecStart=`` and ``Environment=`` are run
for real against Mosquitto and PostgreSQL (tests/pg_server.py, SCRAM password): the collector
authenticates through the unit's ``PGPASSFILE`` only, stores what a gateway sends, writes its
metrics and stops cleanly on the unit's ``KillSignal``.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from service_helpers import unit_user

from frugalai.cli import cli

# the installer checks a connection string with libpq's parser: the 'central' extra
psycopg = pytest.importorskip("psycopg", reason="the 'central' extra (psycopg) is not installed")

import pg_server  # noqa: E402  (tests/ is on the path)

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
BROKER = "mqtts://collector@broker.example.org:8883"
DSN = "postgresql://collector@db.example.org/territory"
SECRET = "s3cret-Pa55"


def install(*args: str) -> Result:
    return CliRunner().invoke(cli, ["service", "install-collector", *args, "--dry-run"])


def setting(unit: list[str], key: str) -> list[str]:
    return [ln[len(key) + 1:] for ln in unit if ln.startswith(key + "=")]


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory the unit would see (not under /tmp, which PrivateTmp= makes private, nor a
    home): build/ of this checkout (ignored by git) when the checkout is not itself under one
    of those, else /var/lib, /srv or /opt where this user may write (CI runs as root)."""
    from frugalai.errors import ConfigError
    from frugalai.service.collector_db import check_visible

    path = None
    for base in (ROOT / "build", Path("/var/lib"), Path("/srv"), Path("/opt")):
        try:
            check_visible(str(base / "probe"), "--pgpass", "")
            base.mkdir(exist_ok=True)
            path = Path(tempfile.mkdtemp(prefix="frugalai-pg-unit-", dir=base))
        except (ConfigError, OSError):
            continue
        break
    if path is None:
        pytest.skip("no directory a unit sees (outside /tmp, /var/tmp and the homes) is "
                    "writable by this user")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_pg_unit_writes_nothing_local_names_no_sqlite_and_keeps_the_hardening() -> None:
    user = unit_user()
    sqlite = install("--broker", BROKER, "--user", user)
    assert sqlite.exit_code == 0, sqlite.output
    result = install("--broker", BROKER, "--db", DSN, "--pgpass", "/etc/frugalai/collector.pgpass",
                     "--share", "territory", "--client-id", "collector-1", "--user", user)
    assert result.exit_code == 0, result.output
    text = result.stdout
    unit = text.splitlines()
    assert "sqlite" not in text.lower() and "--out" not in text
    assert "PostgreSQL" in unit[1] and setting(unit, "Description")[0].endswith(f"-> {DSN})")
    assert setting(unit, "Environment") == ["PGPASSFILE=/etc/frugalai/collector.pgpass"]
    # nothing written locally: no writable path, no state directory
    assert not setting(unit, "ReadWritePaths") and not setting(unit, "StateDirectory")
    assert setting(unit, "WorkingDirectory") == ["/"]
    # every other setting of the SQLite collector's unit is there (its hardening)
    for line in sqlite.stdout.splitlines():
        if line.startswith(("#", "Description=", "ExecStart=", "ReadWritePaths=", "State",
                            "WorkingDirectory=")) or not line:
            continue
        assert line in unit, line
    # the pgpass file is not on this machine: said in one line, not silently accepted
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "/etc/frugalai/collector.pgpass" in warnings[0], \
        result.stderr

    # --metrics: its directory becomes the one writable path, never chowned by StateDirectory=
    with_metrics = install("--broker", BROKER, "--db", DSN, "--metrics",
                           "/var/lib/prometheus/node-exporter/frugalai-collector-1.prom",
                           "--user", user)
    assert with_metrics.exit_code == 0, with_metrics.output
    unit = with_metrics.stdout.splitlines()
    assert setting(unit, "ReadWritePaths") == ["/var/lib/prometheus/node-exporter"]
    assert not setting(unit, "StateDirectory")
    assert "--metrics /var/lib/prometheus/node-exporter/frugalai-collector-1.prom" in \
        setting(unit, "ExecStart")[0]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze missing: "
                    "scripts/install-sysdeps installs the systemd package")
@pytest.mark.parametrize("metrics", [False, True])
def test_the_pg_unit_passes_systemd_analyze_verify_and_security(tmp_path: Path,
                                                                metrics: bool) -> None:
    extra = ["--metrics", "/var/lib/frugalai-collector-2/collector.prom"] if metrics else []
    result = install("--broker", BROKER, "--db", DSN, "--pgpass", "/etc/frugalai/c.pgpass",
                     "--share", "territory", "--client-id", "collector-2", "--user",
                     unit_user(), *extra)
    assert result.exit_code == 0, result.output
    unit = tmp_path / "collector-2.service"
    unit.write_text(result.stdout)
    verify = subprocess.run([str(SYSTEMD_ANALYZE), "verify", str(unit)], capture_output=True,
                            text=True, cwd=tmp_path)
    assert verify.returncode == 0 and "collector-2.service" not in verify.stderr, verify.stderr
    sec = subprocess.run([str(SYSTEMD_ANALYZE), "security", "--offline=true", str(unit)],
                         capture_output=True, text=True, cwd=tmp_path)
    score = re.search(r"Overall exposure level for collector-2.service: ([0-9.]+)", sec.stdout)
    assert score is not None, sec.stdout + sec.stderr
    assert float(score.group(1)) <= 2.0  # the gateway unit's band ("OK")


@pytest.mark.parametrize("args, key", [
    (["--db", f"postgresql://collector:{SECRET}@db.example.org/territory"], "--db: a password"),
    (["--db", f"postgresql://collector@db.example.org/territory?password={SECRET}"],
     "--db: a password"),
    (["--db", DSN, "--out", "/var/lib/frugalai-collector/events.sqlite"],
     "--db: --out (a SQLite file) and --db (PostgreSQL) are exclusive"),
    (["--db", "mysql://collector@db.example.org/territory"], "--db: a PostgreSQL connection"),
    # libpq's own parser; its message quotes the URI, password included: redacted
    (["--db", f"postgresql://collector:{SECRET}@db.example.org/t?sslmod=require"],
     "--db: libpq cannot parse"),
    (["--db", "postgresql://collector@db.example.org:54x/territory"], "--db: port '54x'"),
    (["--db", "postgresql://collector@db.example.org/terr itory"], "--db: "),
    (["--db", DSN, "--share", "a/b"], "--share: an MQTT 5 share group cannot hold '/'"),
    (["--db", DSN, "--share", "terr#"], "--share: an MQTT 5 share group cannot hold '#'"),
    (["--db", DSN, "--share", ""], "--share: an MQTT 5 share group needs at least one"),
    (["--db", DSN, "--pgpass", "collector.pgpass"], "--pgpass: must be an absolute path"),
    (["--db", DSN, "--pgpass", "/root/.pgpass"], "--pgpass: /root/.pgpass is under /root"),
    (["--db", DSN, "--metrics", "/tmp/collector.prom"], "--metrics: /tmp/collector.prom is "
                                                         "under /tmp"),
    (["--pgpass", "/etc/frugalai/c.pgpass"], "--pgpass: names libpq's password file: only "
                                             "with --db"),
    (["--migrate"], "--migrate: applies to a PostgreSQL schema"),
])
def test_what_cannot_go_in_the_unit_is_refused_naming_the_option(args: list[str],
                                                                 key: str) -> None:
    result = install("--broker", BROKER, *args, "--user", unit_user())
    assert result.exit_code == 2 and key in result.output, result.output
    assert SECRET not in result.output
    assert "ExecStart" not in result.output  # no unit printed


def test_the_collect_command_refuses_the_same_share_groups() -> None:
    got = CliRunner().invoke(cli, ["collect", "--broker", "mqtt://127.0.0.1:1", "--db", DSN,
                                   "--share", "a/b"])
    assert got.exit_code == 2 and "--share: an MQTT 5 share group cannot hold '/'" in \
        got.output, got.output


def _reaches_python(user: str) -> bool:
    from frugalai.errors import ConfigError
    from frugalai.service.install import check_interpreter

    try:
        check_interpreter(sys.executable, user)
    except (ConfigError, KeyError):
        return False
    return True


def test_a_pgpass_file_libpq_would_ignore_or_the_user_cannot_read_is_refused(
        outside_tmp: Path) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    pgpass = outside_tmp / "collector.pgpass"
    pgpass.write_text(f"db.example.org:5432:territory:collector:{SECRET}\n")
    pgpass.chmod(0o644)
    args = ["--broker", BROKER, "--db", DSN, "--pgpass", str(pgpass)]
    got = install(*args, "--user", me)
    assert got.exit_code == 2 and "--pgpass: " in got.output and "mode 0644" in got.output \
        and f"chmod 0600 {pgpass}" in got.output, got.output
    pgpass.chmod(0o600)
    ok = install(*args, "--user", me)  # owned by the service user, 0600: nothing to say
    assert ok.exit_code == 0 and f"Environment=PGPASSFILE={pgpass}" in ok.stdout, ok.output
    assert "warning" not in ok.output
    if os.geteuid() == 0 and _reaches_python("nobody"):  # a file of root's that another
        # (existing) user cannot read; in a 0700 clone "nobody" cannot even run frugalai
        other = install(*args, "--user", "nobody")
        assert other.exit_code == 2 and "--pgpass: " in other.output and \
            "chown nobody" in other.output, other.output
    assert SECRET not in got.output + ok.output


def test_two_collectors_install_side_by_side_and_only_the_metrics_dir_is_created(
        tmp_path: Path, outside_tmp: Path) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name  # an existing user: the installer creates none
    units = tmp_path / "units"
    metrics_dir = outside_tmp / "collectors"
    for k in (1, 2):
        got = CliRunner().invoke(cli, [
            "service", "install-collector", "--broker", BROKER, "--db", DSN, "--share",
            "territory", "--client-id", f"collector-{k}", "--name", f"collector-{k}",
            "--metrics", str(metrics_dir / f"collector-{k}.prom"), "--user", me,
            "--unit-dir", str(units)])
        assert got.exit_code == 0, got.output
        assert f"wrote {units / f'collector-{k}.service'}" in got.output
        assert ("created state dir" in got.output) == (k == 1), got.output
    assert metrics_dir.is_dir() and not any(metrics_dir.iterdir())
    for k in (1, 2):
        unit = (units / f"collector-{k}.service").read_text().splitlines()
        assert f"--client-id collector-{k} --share territory --metrics " \
            f"{metrics_dir}/collector-{k}.prom" in setting(unit, "ExecStart")[0]
        assert setting(unit, "ReadWritePaths") == [str(metrics_dir)]
    # without --metrics nothing is created on the host but the unit file
    got = CliRunner().invoke(cli, ["service", "install-collector", "--broker", BROKER, "--db",
                                   DSN, "--name", "collector-3", "--user", me, "--unit-dir",
                                   str(units)])
    assert got.exit_code == 0, got.output
    assert "created" not in got.output and (units / "collector-3.service").exists()
    assert sorted(p.name for p in units.iterdir()) == [
        "collector-1.service", "collector-2.service", "collector-3.service"]


def test_a_metrics_directory_the_service_user_cannot_write_is_said_in_one_line(
        outside_tmp: Path) -> None:
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")
    metrics = outside_tmp / "collector.prom"  # a directory of root's (or the tester's), 0755
    got = install("--broker", BROKER, "--db", DSN, "--metrics", str(metrics), "--user", "nobody")
    if got.exit_code == 2 and "ExecStart: user 'nobody' cannot reach" in got.output:
        pytest.skip("this checkout is out of reach of 'nobody' (a 0700 clone)")
    assert got.exit_code == 0, got.output
    warnings = [ln for ln in got.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == [f"warning: --metrics: user nobody cannot write {outside_tmp} (mode "
                        f"0755): the collector would stop at its first metrics file; make it "
                        f"writable for nobody or pick a directory of its own"], got.stderr
    outside_tmp.chmod(0o777)
    ok = install("--broker", BROKER, "--db", DSN, "--metrics", str(metrics), "--user", "nobody")
    assert ok.exit_code == 0 and "warning" not in ok.stderr, ok.output


# ----------------------------------------------------------------- the unit's command, for real


def unit_command(unit: list[str]) -> tuple[list[str], dict[str, str]]:
    """The unit's ExecStart as argv and its Environment= as a dict."""
    env = dict(e.split("=", 1) for line in setting(unit, "Environment") for e in
               shlex.split(line))
    return shlex.split(setting(unit, "ExecStart")[0]), env


def wait_for(cond: Any, timeout: float, what: str, proc: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the collector exited ({proc.returncode}) before {what}: "
                                 f"{proc.communicate()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_units_command_runs_frugalai_collect_into_postgresql_with_its_pgpass(
        mosquitto: Any, outside_tmp: Path) -> None:
    from frugalai.events.event import Event
    from frugalai.uplink.mqtt import MqttSink

    why = pg_server.missing_reason()
    if why:
        pytest.skip(why)
    with pg_server.PgServer() as pg:
        dsn = f"postgresql://frugalai@127.0.0.1:{pg.port}/postgres"  # no password: the unit's
        pgpass = outside_tmp / "collector.pgpass"
        pgpass.write_text(f"127.0.0.1:{pg.port}:postgres:frugalai:{pg_server.PASSWORD}\n")
        pgpass.chmod(0o600)
        metrics = outside_tmp / "metrics" / "collector.prom"
        me = pwd.getpwuid(os.geteuid()).pw_name
        result = install("--broker", mosquitto.url, "--db", dsn, "--pgpass", str(pgpass),
                         "--migrate", "--share", "territory", "--metrics", str(metrics),
                         "--client-id", "collector-1", "--name", "collector-1", "--user", me)
        assert result.exit_code == 0, result.output
        unit = result.stdout.splitlines()
        argv, unit_env = unit_command(unit)
        assert argv[argv.index("collect") + 1:] == [
            "--broker", mosquitto.url, "--db", dsn, "--client-id", "collector-1", "--migrate",
            "--share", "territory", "--metrics", str(metrics)]
        assert setting(unit, "ReadWritePaths") == [str(metrics.parent)]
        metrics.parent.mkdir()  # what the installer creates for the service user
        # no other way to the password than the unit's: no PGPASSWORD, no ~/.pgpass
        base = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        base["HOME"] = str(outside_tmp)
        without = subprocess.run([*argv, "--duration", "0"], capture_output=True, text=True,
                                 timeout=120, env=base)
        assert without.returncode != 0 and "password" in without.stderr, without.stderr
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**base, **unit_env})
        try:
            wait_for(lambda: metrics.exists()
                     and "frugalai_collector_connected 1" in metrics.read_text(),
                     120, "the collector's metrics saying connected", proc)
            events = [Event("alarm", "linky", 1_700_000_000.0 + i, score=5.0, value=2000.0 + i,
                            sensor_id=1, seq=i) for i in range(25)]
            with MqttSink.from_url(f"{mosquitto.url}?codec=json&timeout=10",
                                   gateway="gw-unit") as sink:
                assert sink.wait_connected(10)
                assert len(sink.send(events)) == 25

            def stored() -> list[tuple[Any, ...]]:
                with psycopg.connect(pg.dsn) as con:
                    return con.execute("SELECT gateway, collector, count(*) FROM events "
                                       "GROUP BY gateway, collector").fetchall()

            wait_for(lambda: stored() == [("gw-unit", "collector-1", 25)], 120,
                     "25 events stored by collector-1", proc)
            proc.send_signal(signal.SIGTERM)  # the unit's KillSignal
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, out + err
        assert re.search(r": 25 events; .* 25 stored, 0 duplicate", out), out
        assert 'frugalai_collector_messages_total{outcome="stored"} 25' in metrics.read_text()
        assert pg_server.PASSWORD not in out + err + without.stdout + without.stderr
