"""The ``frugalai`` command: a thin click group. Parse, build, call; no logic here.

Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage (with the key named).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from datetime import datetime, timezone
from typing import Any, Optional

import click

from frugalai import __version__
from frugalai.errors import ConfigError, FrugalError


class ConfigPath(click.ParamType):
    """A TOML config file, loaded and validated while the arguments are parsed."""

    name = "config"

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> Any:
        from frugalai.config import load_config

        try:
            return value if not isinstance(value, str) else (value, load_config(value))
        except ConfigError as err:
            self.fail(str(err), param, ctx)


def _setup_logging(verbose: bool) -> None:
    # journald stamps lines itself; elsewhere a timestamp helps.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt,
                        stream=sys.stderr)


@click.group()
@click.version_option(__version__, prog_name="frugalai")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """frugalai: frugal edge AI for IoT gateways."""
    _setup_logging(verbose)


@cli.command()
@click.option("--seconds", type=click.FloatRange(min=2), default=25.0, show_default=True,
              help="Real seconds to run.")
@click.option("--hours", type=click.FloatRange(min=1), default=48.0, show_default=True,
              help="Simulated hours in that time.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--corrupt-rate", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Fraction of frames corrupted on the wire.")
@click.option("--json", "as_json", is_flag=True, help="Print events and summary as JSON.")
def demo(seconds: float, hours: float, seed: int, corrupt_rate: float, as_json: bool) -> None:
    """Emulated Linky meter on a pty -> anomaly model -> events, end to end."""
    from frugalai.demo import DemoOptions, run_demo
    from frugalai.events.codec import encode_binary, encode_json

    def show(event: Any) -> None:
        if as_json:
            click.echo(encode_json(event).decode())
            return
        when = datetime.fromtimestamp(event.ts, tz=timezone.utc).strftime("%a %H:%M UTC")
        click.echo(f"  {event.kind.upper():6} {event.sensor} at {when}  score={event.score:5.1f}"
                   f"  value={event.value:7.0f} W  -> {len(encode_binary(event))} B "
                   f"[{encode_binary(event).hex()}]")

    if not as_json:
        click.echo(f"frugalai demo: emulated Linky (TIC historique) on a pty, {hours:.0f} "
                   f"simulated hours in {seconds:.0f} s; events as they happen:")
    summary = run_demo(DemoOptions(sim_hours=hours, seconds=seconds, seed=seed,
                                   corrupt_rate=corrupt_rate), show)
    if as_json:
        click.echo(json.dumps({"summary": summary}, default=str))
        return
    raw, up = summary["raw_bytes_read"], summary["upstream_bytes_binary"]
    click.echo("summary:")
    click.echo(f"  readings {summary['readings']}, frames rejected {summary['frames_rejected']}"
               f" (corrupted on the wire: {summary['frames_corrupted_on_wire']})")
    click.echo(f"  events {summary['events']}, outbox {summary['outbox']}")
    ratio = f"{raw / up:.0f}x less" if up else "nothing sent"
    click.echo(f"  bytes upstream {up} (binary) vs raw bytes read {raw}: {ratio}")


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

    Exit 1 when the service is not running (dead, stale or never started).
    """
    from frugalai.service.health.status import format_status, read_status

    if state_dir is None:
        if config is None:
            raise click.UsageError("give --config or --state-dir")
        state_dir = config[1].gateway.state_dir
    report = read_status(state_dir)
    click.echo(json.dumps(report, indent=1, default=str) if as_json else format_status(report))
    if not str(report.get("state", "")).startswith("running"):
        sys.exit(1)


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
    from frugalai.service.install import install_unit, render_unit

    path, cfg = config
    try:
        text = render_unit(path, cfg, user=user)
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    if dry_run:
        click.echo(text, nl=False)
        return
    for line in install_unit(text, cfg, user=user, unit_dir=unit_dir, unit_name=unit_name):
        click.echo(line)


@cli.group("models")
def models_group() -> None:
    """Install and roll back model bundles."""


@models_group.command("install")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--config", "config", type=ConfigPath(), default="/etc/frugalai/gateway.toml",
              show_default=True, help="TOML file (models_dir, public key, state dir).")
@click.option("--name", default=None, help="Install under this name (default: the card's).")
@click.option("--no-reload", is_flag=True, help="Do not ask the running service to reload.")
def models_install(bundle: str, config: Any, name: Optional[str], no_reload: bool) -> None:
    """Verify BUNDLE, swap it in atomically, roll back if it fails to load or self-test."""
    from frugalai.service.models import install, parse_public_key

    _, cfg = config
    done = install(bundle, cfg.gateway.models_dir, name=name,
                   public_key=parse_public_key(cfg.models.public_key))
    verb = "installed" if done.changed else "already installed"
    click.echo(f"{done.name}: {verb} {done.version} ({done.path})")
    if done.changed and not no_reload:
        click.echo(_reload_service(cfg.gateway.state_dir))


@models_group.command("rollback")
@click.argument("name")
@click.option("--config", "config", type=ConfigPath(), default="/etc/frugalai/gateway.toml",
              show_default=True, help="TOML file (models_dir, public key, state dir).")
def models_rollback(name: str, config: Any) -> None:
    """Put the previous version of model NAME back."""
    from frugalai.service.models import parse_public_key, rollback

    _, cfg = config
    done = rollback(cfg.gateway.models_dir, name,
                    public_key=parse_public_key(cfg.models.public_key))
    click.echo(f"{done.name}: rolled back to {done.version} ({done.path})")
    click.echo(_reload_service(cfg.gateway.state_dir))


def _reload_service(state_dir: str) -> str:
    from frugalai.service.health.status import read_status

    report = read_status(state_dir)
    pid = report.get("pid")
    if report.get("state") != "running" or not isinstance(pid, int):
        return "no running service found; it will load the model at its next start"
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as err:
        return f"could not signal the service (pid {pid}): {err}; run: systemctl reload frugalai"
    return f"asked the running service (pid {pid}) to reload"


@cli.group("config")
def config_group() -> None:
    """Check or describe configuration files."""


@config_group.command("check")
@click.argument("file", type=ConfigPath())
def config_check(file: Any) -> None:
    """Validate FILE; exit 2 naming the bad key."""
    path, cfg = file
    click.echo(f"{path}: OK ({len(cfg.flow)} flow(s), {len(cfg.uplink)} uplink(s))")


@config_group.command("schema")
def config_schema() -> None:
    """Every key with its default and meaning."""
    from frugalai.config import describe_schema

    for key, default, text in describe_schema():
        click.echo(f"{key:32} {default:20} {text}")


def main() -> None:
    """Console-script entry point: FrugalError -> exit 1 with its message, not a traceback."""
    try:
        cli(standalone_mode=True)
    except FrugalError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2 if isinstance(err, ConfigError) else 1)


if __name__ == "__main__":
    main()
