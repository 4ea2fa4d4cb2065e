"""The ``frugalai`` command: a thin click group. Parse, build, call; no logic here.

Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage (with the key named).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
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
@click.option("--hours", type=click.FloatRange(min=1), default=None,
              help="Simulated hours in that time (default: 48, coastal: 168).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--corrupt-rate", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Fraction of frames corrupted on the wire.")
@click.option("--json", "as_json", is_flag=True, help="Print events and summary as JSON.")
@click.option("--scenario", type=click.Choice(["linky", "coastal"]), default="linky",
              show_default=True,
              help="linky: TIC meter on serial; coastal: tide node -> LoRa -> LoRaWAN.")
def demo(seconds: float, hours: Optional[float], seed: int, corrupt_rate: float, as_json: bool,
         scenario: str) -> None:
    """Emulated Linky meter on a pty -> anomaly model -> events, end to end."""
    from frugalai.demo import DemoOptions, run_demo
    from frugalai.events.codec import encode_binary, encode_json

    if scenario == "coastal":
        from frugalai.demo_coastal import main_coastal

        main_coastal(seconds=seconds, hours=hours or 168.0, seed=seed,
                     corrupt_rate=corrupt_rate, as_json=as_json, echo=click.echo)
        return
    hours = hours or 48.0

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
    """Run every configured flow until SIGTERM/SIGINT."""
    from frugalai.pipeline import Pipeline

    path, cfg = config
    try:
        pipeline = Pipeline.from_config(cfg)
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("frugalai").info("running %d flow(s) from %s", len(pipeline.flows), path)
    try:
        pipeline.run(stop, duration=duration)
    finally:
        summary = pipeline.summary()
        pipeline.close()
    logging.getLogger("frugalai").info("stopped: %s", json.dumps(summary, default=str))


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
