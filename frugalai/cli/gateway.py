"""The gateway's own commands: ``run``, ``status``, ``doctor``, ``service install``."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import click

from frugalai.cli.core import (
    ConfigPath,
    cli,
)
from frugalai.errors import ConfigError


@cli.command()
@click.option("--config", "config", type=ConfigPath(), required=True, help="TOML file.")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds (default: run until SIGTERM).")
def run(config: Any, duration: Optional[float]) -> None:
    """Run every configured flow, supervised, until SIGTERM (SIGHUP reloads the config)."""
    from frugalai.service.daemon import run_service

    path, cfg = config
    try:
        code = run_service(path, cfg, duration)
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    sys.exit(code)


@cli.command()
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file (its gateway.state_dir is read).")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="State dir to read (instead of --config).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
def status(config: Any, state_dir: Optional[str], as_json: bool) -> None:
    """Health of the service: flows, outbox, uplinks, models (reads the state dir).

    Exit 1 when the service is not running (dead, stale or never started), when a flow is
    degraded (device down, a port that fails to reopen, a model failing: it retries by
    itself, the reason is shown) or when events were lost.
    """
    from frugalai.service.health.status import format_status, problems, read_status

    if state_dir is None:
        if config is None:
            raise click.UsageError("give --config or --state-dir")
        state_dir = config[1].gateway.state_dir
    report = read_status(state_dir)
    click.echo(json.dumps(report, indent=1, default=str) if as_json else format_status(report))
    if problems(report):
        sys.exit(1)



@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              default="/etc/frugalai/gateway.toml", show_default=True, help="TOML file to check.")
@click.option("--user", default="frugalai", show_default=True,
              help="The service user whose access to devices is checked.")
@click.option("--unit-dir", type=click.Path(file_okay=False), default="/etc/systemd/system",
              show_default=True)
@click.option("--name", "unit_name", default="frugalai", show_default=True, help="Unit name.")
def doctor(config_path: str, user: str, unit_dir: str, unit_name: str) -> None:
    """Is this gateway ready? One line per check (✓ / ✗ with a fix / ? unknown).

    Exit 0 when every check passes, 1 when one fails, 2 when the config is invalid.
    """
    from frugalai.service.doctor import report, run_checks

    if not os.path.exists(config_path):
        click.echo(f"✗ config: {config_path} not found — write one (README: Run it on a "
                   "gateway) or give --config")
        sys.exit(2)
    text, code = report(run_checks(config_path, user=user,
                                   unit_path=os.path.join(unit_dir, f"{unit_name}.service")))
    click.echo(text)
    sys.exit(code)


@cli.group("service")
def service_group() -> None:
    """Install frugalai as a systemd service."""


@service_group.command("install")
@click.option("--config", "config", type=ConfigPath(), default="/etc/frugalai/gateway.toml",
              show_default=True, help="TOML file the service runs.")
@click.option("--user", default="frugalai", show_default=True,
              help="Dedicated system user (created, in group dialout, when missing).")
@click.option("--unit-dir", type=click.Path(file_okay=False), default="/etc/systemd/system",
              show_default=True)
@click.option("--name", "unit_name", default="frugalai", show_default=True, help="Unit name.")
@click.option("--dry-run", is_flag=True, help="Print the unit; change nothing.")
def service_install(config: Any, user: str, unit_dir: str, unit_name: str,
                    dry_run: bool) -> None:
    """Write the systemd unit for CONFIG (hardened; Type=notify with watchdog)."""
    from frugalai.service.install import install_unit, private_tmp_paths, render_unit

    path, cfg = config
    try:
        text = render_unit(path, cfg, user=user)
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    for what, where in private_tmp_paths(path, cfg):
        click.echo(f"warning: {what} is under /tmp ({where}): the unit runs with PrivateTmp=yes "
                   "and sees an empty /tmp of its own; move it (a venv under /opt, the config "
                   "under /etc/frugalai, the state under /var/lib/frugalai)", err=True)
    if dry_run:
        click.echo(text, nl=False)
        return
    for line in install_unit(text, cfg, user=user, unit_dir=unit_dir, unit_name=unit_name):
        click.echo(line)


@service_group.command("install-collector")
@click.option("--broker", required=True,
              help="mqtt[s]://[user@]host[:port][?ca=&password_file=...] (no password in the "
                   "URL: it would be in the unit).")
@click.option("--out", default=None,
              help="The SQLite database; its directory is the only one the unit may write. "
                   "[default: /var/lib/frugalai-collector/events.sqlite, unless --db]")
@click.option("--db", default=None,
              help="postgresql://user@host[:port]/db instead of --out (no password: it would be "
                   "in the unit; see --pgpass).")
@click.option("--pgpass", default=None,
              help="libpq password file for --db (owned by --user, mode 0600): "
                   "Environment=PGPASSFILE= in the unit.")
@click.option("--migrate", is_flag=True,
              help="--db: the collector creates or upgrades the schema at each start.")
@click.option("--share", default=None, metavar="GROUP",
              help="MQTT 5 shared subscription: collectors with the same GROUP (each its own "
                   "--client-id and --name) split the events.")
@click.option("--metrics", default=None,
              help="Prometheus textfile the collector rewrites every second; its directory "
                   "becomes writable.")
@click.option("--user", default="frugalai-collector", show_default=True,
              help="Dedicated system user (created when missing).")
@click.option("--client-id", default="frugalai-collector", show_default=True,
              help="Fixed MQTT client id: the broker queues events while the collector is down.")
@click.option("--chirpstack", is_flag=True, help="Also collect ChirpStack v4 uplinks.")
@click.option("--unit-dir", type=click.Path(file_okay=False), default="/etc/systemd/system",
              show_default=True)
@click.option("--name", "unit_name", default="frugalai-collect", show_default=True,
              help="Unit name (collector-1, collector-2: two collectors on one host).")
@click.option("--dry-run", is_flag=True, help="Print the unit; change nothing.")
def service_install_collector(broker: str, out: Optional[str], db: Optional[str],
                              pgpass: Optional[str], migrate: bool, share: Optional[str],
                              metrics: Optional[str], user: str, client_id: str,
                              chirpstack: bool, unit_dir: str, unit_name: str,
                              dry_run: bool) -> None:
    """Write the systemd unit running `frugalai collect` (the central side, into SQLite or
    PostgreSQL), hardened like the gateway's."""
    from frugalai.service.collector_db import check_pgpass, metrics_dir_problem
    from frugalai.service.collector_unit import render_collector_unit, state_dir_of
    from frugalai.service.install import install_files

    try:
        text = render_collector_unit(broker, out, user=user, client_id=client_id,
                                     chirpstack=chirpstack, db=db, pgpass=pgpass, share=share,
                                     metrics=metrics, migrate=migrate)
        unchecked = [check_pgpass(pgpass, user) if pgpass is not None else None]
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    state = state_dir_of(out, db, metrics)
    if metrics is not None:
        where = os.path.dirname(os.path.abspath(metrics))
        unchecked.append(metrics_dir_problem(where, user))
        if state is not None and where != str(state) and not os.path.isdir(where):
            unchecked.append(f"--metrics: {where} does not exist: create it, writable by "
                             f"{user}, before the service starts")
    for line in filter(None, unchecked):
        click.echo(f"warning: {line}", err=True)
    if dry_run:
        click.echo(text, nl=False)
        return
    for line in install_files(text, None if state is None else str(state), user=user,
                              unit_dir=unit_dir, unit_name=unit_name, groups=()):
        click.echo(line)

