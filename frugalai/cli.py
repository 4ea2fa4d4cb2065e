"""The ``frugalai`` command: a thin click group. Parse, build, call; no logic here.

Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage (with the key named) or a
missing optional extra (with the extra to install), 3 (``frugalai run``) events were lost (the
outbox took no writes: disk full), 130 a demo stopped by Ctrl-C.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any, NoReturn, Optional

import click

from frugalai import __version__
from frugalai.errors import ConfigError, FrugalError
from frugalai.registry import PRECISIONS


class ConfigPath(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """A TOML config file, loaded and validated while the arguments are parsed."""

    name = "config"

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> Any:
        from frugalai.config import load_config

        try:
            return value if not isinstance(value, str) else (value, load_config(value))
        except ConfigError as err:
            self.fail(str(err), param, ctx)


class RegistryName(click.ParamType):  # type: ignore[type-arg]
    """A name registered in one of :mod:`frugalai.registry`'s registries (plugins included),
    read when the argument is parsed: the CLI keeps no list of its own."""

    def __init__(self, kind: str, spec: bool = False) -> None:
        self.kind = kind
        self.name = kind
        self.spec = spec  # the value is NAME[:rest][?options] (a meter spec)

    def convert(self, value: Any, param: Optional[click.Parameter],
                ctx: Optional[click.Context]) -> Any:
        from frugalai import registry

        name = str(value).partition(":")[0].partition("?")[0] if self.spec else value
        try:
            registry.ALL[self.kind].check(name)
        except ConfigError as err:
            self.fail(err.reason, param, ctx)
        return value


def _setup_logging(verbose: bool) -> None:
    # journald stamps lines itself; elsewhere a timestamp helps.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt,
                        stream=sys.stderr)
    from frugalai.redact import RedactingFilter

    for handler in logging.getLogger().handlers:  # journald never sees a password
        handler.addFilter(RedactingFilter())


class FrugalGroup(click.Group):
    """The top-level group: a FrugalError or a missing extra raised by any command becomes one
    line and an exit code here, so the console script and CliRunner behave the same."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (FrugalError, ImportError) as err:
            _fail(err)


@click.group(cls=FrugalGroup)
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
    from frugalai.footprint import ratio_text

    if scenario == "coastal":
        from frugalai.demo_coastal import main_coastal

        main_coastal(seconds=seconds, hours=hours or 168.0, seed=seed,
                     corrupt_rate=corrupt_rate, as_json=as_json, echo=click.echo)
        return
    hours = hours or 48.0
    seen: list[Any] = []

    def show(event: Any) -> None:
        seen.append(event)
        if as_json:
            click.echo(encode_json(event).decode())
            return
        click.echo(f"  {event.kind.upper():6} {event.sensor} at {_utc(event.ts)}  "
                   f"score={event.score:5.1f}  value={event.value:7.0f} W  -> "
                   f"{len(encode_binary(event))} B [{encode_binary(event).hex()}]")

    if not as_json:
        click.echo(f"frugalai demo: emulated Linky (TIC historique) on a pty, {hours:.0f} "
                   f"simulated hours in {seconds:.0f} s; events as they happen:")
    try:
        summary = run_demo(DemoOptions(sim_hours=hours, seconds=seconds, seed=seed,
                                       corrupt_rate=corrupt_rate), show)
    except KeyboardInterrupt:  # during set-up, before the meter started: nothing to sum up
        click.echo("interrupted (Ctrl-C) while setting up: no reading yet", err=True)
        sys.exit(130)
    raw, up = summary["raw_bytes_read"], summary["upstream_bytes_binary"]
    assert isinstance(raw, int) and isinstance(up, int)
    if as_json:
        summary["upstream"] = ratio_text(raw, up)  # what `report --summary` prints too
        click.echo(json.dumps({"summary": summary}, default=str))
        return
    if summary.get("interrupted"):
        click.echo("interrupted (Ctrl-C): what ran until then")
    for line in _injected_vs_found(summary, seen):
        click.echo(line)
    click.echo("summary:")
    click.echo(f"  readings {summary['readings']}, frames rejected {summary['frames_rejected']}"
               f" (corrupted on the wire: {summary['frames_corrupted_on_wire']})")
    ob = summary["outbox"]
    assert isinstance(ob, dict)
    click.echo(f"  events {summary['events']}; outbox: {ob.get('stored', 0)} stored, "
               f"{ob.get('sent', 0)} delivered, {ob.get('pending', 0)} pending, "
               f"{ob.get('dropped', 0)} dropped")
    click.echo(f"  {ratio_text(raw, up)}")
    if summary.get("interrupted"):
        sys.exit(130)  # the shell's code for "stopped by Ctrl-C", after the summary


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%a %H:%M UTC")


#: what each injected anomaly looks like in the readings, for the demo's reader.
_INJECTED_TEXT = {"night_load": "unusual extra load", "spike": "a short power spike",
                  "dropout": "the meter reads no consumption: value=0 W",
                  "flatline": "a frozen reading"}


def _injected_vs_found(summary: dict[str, Any], events: list[Any]) -> list[str]:
    """The demo's injected anomalies, each beside the events that fell in it (or up to an hour
    after: a 15-min window must close, then the policy's debounce), then the others."""
    injected = summary.get("injected") or []
    if not injected:
        return []
    lines = ["injected by the emulator -> found by the gateway:"]
    matched: set[int] = set()
    flows = summary.get("flows") or {}
    last_ts = max([e.ts for e in events]
                  + [float(f.get("last_reading_ts") or 0.0) for f in flows.values()], default=0.0)
    for a in injected:
        hits = [e for e in events if a["start"] <= e.ts <= a["end"] + 3600]
        matched.update(id(e) for e in hits)
        found = ", ".join(f"{e.kind.upper()} at {_utc(e.ts)}" for e in hits) or (
            "not flagged" if last_ts >= a["end"] else "not reached (the run ended before)")
        what = _INJECTED_TEXT.get(a["kind"], a["kind"])
        lines.append(f"  {a['kind']:10} {_utc(a['start'])} - {_utc(a['end'])[4:]} ({what})"
                     f" -> {found}")
    others = [e for e in events if id(e) not in matched and e.kind in ("alarm", "clear")]
    lines.append(f"  events outside the injected anomalies: {len(others)}"
                 + (" (" + ", ".join(f"{e.kind.upper()} at {_utc(e.ts)}" for e in others) + ")"
                    if others else ""))
    return lines


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


@cli.command()
@click.argument("device", type=click.Choice(["tic", "modbus", "fb-node", "rak3172", "rn2483"]))
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Simulated seconds per real second (tic: > 1 switches to "
              "standard mode, whose DATE the gateway uses as its clock).")
@click.option("--scenario", type=click.Choice(["normal", "anomalies"]), default="normal",
              show_default=True, help="anomalies: the demo's injected anomalies (energy meters).")
@click.option("--seed", type=int, default=1, show_default=True)
def emulate(device: str, speed: float, scenario: str, seed: int) -> None:
    """Start an emulated DEVICE on a pty; print its path and a config block; run until Ctrl-C."""
    import signal
    import threading

    from frugalai.sim.launch import launch

    running = launch(device, speed=speed, scenario=scenario, seed=seed)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C or kill: stop and say so
        signal.signal(signum, lambda *_: stop.set())
    click.echo(running.path)
    click.echo(f"# emulated {device} on {running.path} (speed {speed:g}, scenario {scenario}); "
               "Ctrl-C stops it")
    for note in running.notes:
        click.echo(f"# {note}")
    click.echo("# put this in your config (frugalai config check FILE, then frugalai run "
               "--config FILE):")
    click.echo(running.config.rstrip())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        running.close()
    click.echo(f"# stopped the emulated {device}")


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
    """Model bundles: list, show, install (verified, atomic) and roll back."""


@models_group.command("install")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--config", "config", type=ConfigPath(), default="/etc/frugalai/gateway.toml",
              show_default=True, help="TOML file (models_dir, public key, state dir).")
@click.option("--name", default=None, help="Install under this name (default: the card's).")
@click.option("--no-reload", is_flag=True, help="Do not ask the running service to reload.")
@click.option("--allow-downgrade", is_flag=True,
              help="Accept a signed bundle older than the installed version.")
@click.option("--unit", default="frugalai", show_default=True,
              help="systemd unit to reload when systemd runs the service.")
def models_install(bundle: str, config: Any, name: Optional[str], no_reload: bool,
                   allow_downgrade: bool, unit: str) -> None:
    """Verify BUNDLE, swap it in atomically, roll back if it fails to load or self-test."""
    from frugalai.service.models import install, parse_public_key
    from frugalai.service.reload import reload_service

    path, cfg = config
    done = install(bundle, _models_dir(None, config) or "", name=name,
                   public_key=parse_public_key(cfg.models.public_key),
                   allow_downgrade=allow_downgrade, warn=lambda m: click.echo(m, err=True))
    verb = "installed" if done.changed else "already installed"
    click.echo(f"{done.name}: {verb} {done.version} ({done.path})")
    if done.changed and not no_reload:
        click.echo(reload_service(cfg.gateway.state_dir, path, unit))


@models_group.command("rollback")
@click.argument("name")
@click.option("--config", "config", type=ConfigPath(), default="/etc/frugalai/gateway.toml",
              show_default=True, help="TOML file (models_dir, public key, state dir).")
@click.option("--unit", default="frugalai", show_default=True,
              help="systemd unit to reload when systemd runs the service.")
def models_rollback(name: str, config: Any, unit: str) -> None:
    """Put the previous version of model NAME back."""
    from frugalai.service.models import parse_public_key, rollback
    from frugalai.service.reload import reload_service

    path, cfg = config
    done = rollback(_models_dir(None, config) or "", name,
                    public_key=parse_public_key(cfg.models.public_key))
    click.echo(f"{done.name}: rolled back to {done.version} ({done.path})")
    click.echo(reload_service(cfg.gateway.state_dir, path, unit))


@cli.group("config")
def config_group() -> None:
    """Check or describe configuration files."""


@config_group.command("check")
@click.argument("file", type=ConfigPath())
@click.option("--explain", is_flag=True,
              help="Print every resolved value with its origin (config, card, default).")
def config_check(file: Any, explain: bool) -> None:
    """Validate FILE as ``run`` would (models resolved and verified, every name checked);
    exit 2 naming the bad key."""
    from frugalai.plan import build_plans

    path, cfg = file
    try:
        plans = build_plans(cfg)
    except ConfigError as err:
        raise click.UsageError(str(err)) from None
    if explain:
        from frugalai.plan import explain as explain_plan
        from frugalai.service.health.status import redact

        sources = {f"flow.{p.name}.source": repr(redact(p.config.source)) for p in plans.flows}
        rows = [(k, sources.get(k, v), o) for k, v, o in explain_plan(plans)]
        rows += [(f"uplink[{i}].url", repr(redact(uc.url)), "config")
                 for i, uc in enumerate(cfg.uplink)]
        width = max(len(k) for k, _, _ in rows)
        for key, value, origin in rows:
            click.echo(f"{origin:8} {key:{width}} {value}")
    click.echo(f"{path}: OK ({len(cfg.flow)} flow(s), {len(cfg.uplink)} uplink(s))")


@config_group.command("schema")
def config_schema() -> None:
    """Every key with its default and meaning."""
    from frugalai.config import describe_schema

    for key, default, text in describe_schema():
        click.echo(f"{key:32} {default:20} {text}")


# --- models: list, show, train, evaluate -------------------------------------------------------

def _models_dir(value: Optional[str], config: Any = None) -> Optional[str]:
    """The installed-bundles directory: ``--models-dir``, else the config's (absolute,
    default ``<state_dir>/models``), else none; the shipped bundles come after it."""
    if value:
        return value
    if config is not None:
        from frugalai.plan import models_dir

        return str(models_dir(config[1])[0])
    return None


@models_group.command("list")
@click.option("--models-dir", default=None,
              help="Installed bundles (default: the config's models_dir, if --config).")
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file (its gateway.models_dir).")
def models_list(models_dir: Optional[str], config: Any) -> None:
    """One line per bundle a name can reach (installed, then shipped): name, task,
    backends/precisions, total size, where."""
    from frugalai.runtime.model import available, list_search_path

    for b in list_search_path(_models_dir(models_dir, config)):
        kinds = ", ".join(f"{a['backend']}/{a['precision']}" for a in available(b))
        size = sum(f["bytes"] for f in b.card["files"].values())
        click.echo(f"{b.name:22} {b.card.get('task', '?'):15} {size:7d} B  {kinds}  "
                   f"({b.path})")


@models_group.command("show")
@click.argument("bundle")
@click.option("--models-dir", default=None, help="Where names are looked up first.")
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file (its gateway.models_dir).")
def models_show(bundle: str, models_dir: Optional[str], config: Any) -> None:
    """The card of BUNDLE (a name or a path), verified, with what can run here."""
    from frugalai.runtime import available, resolve_bundle, verify_bundle

    b = verify_bundle(resolve_bundle(bundle, _models_dir(models_dir, config)))
    card = {k: v for k, v in b.card.items() if k not in ("self_test",)}
    card["runnable_here"] = available(b)
    click.echo(json.dumps(card, indent=2, default=str))


class _Steps:
    """A progress bar over the named steps of a training run. While it runs, third-party
    log warnings (onnxruntime's quantizer advice) are held back: the user acts on none."""

    def __init__(self, steps: list[str]) -> None:
        self.bar = click.progressbar(length=len(steps), label="training", file=sys.stderr,
                                     show_eta=False, item_show_func=lambda s: s)
        self.bar.__enter__()
        self._level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)

    def __call__(self, step: str) -> None:
        self.bar.current_item = step
        self.bar.update(1)

    def close(self) -> None:
        self.bar.__exit__(None, None, None)
        logging.getLogger().setLevel(self._level)

    def __enter__(self) -> _Steps:
        """Also holds back third-party warnings (convergence, deprecations) while it runs."""
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc: object) -> None:
        self._warnings.__exit__(None, None, None)
        self.close()


@contextlib.contextmanager
def _user_input_errors() -> Iterator[None]:
    """A FrugalError from the user's data or arguments: one line, exit 2 (a ConfigError goes
    on to FrugalGroup, which names the key)."""
    try:
        yield
    except ConfigError:
        raise
    except FrugalError as err:
        _bad_input(err)


@cli.group("train")
def train_group() -> None:
    """Train a model and write its bundle (needs the 'train' extra)."""


@train_group.command("anomaly")
@click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
              help="Your series (CSV or .csv.gz; , ; or tab; UTF-8 or Latin-1). Without it: "
                   "the reference data (--data-dir).")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The shared data folder (rebuilds the shipped bundle from Dutch 1997).")
@click.option("--time-col", default=None, help="Time column (default: the first that parses).")
@click.option("--value-col", default=None, help="Value column (default: the first numeric).")
@click.option("--time-format", default=None, help="strptime format (default: ISO 8601 or UNIX s).")
@click.option("--tz", default=None,
              help="Time zone of naive times and of the site's day: ±HH:MM or a name like "
                   "Europe/Paris (its standard offset sets the day slots).")
@click.option("--utc-offset", type=float, default=None,
              help="Hours to add to UTC for naive timestamps (older spelling of --tz).")
@click.option("--aggregate", type=click.Choice(["mean", "rate"]), default="mean",
              show_default=True, help="mean of the values, or rate of an energy counter.")
@click.option("--quantity", default="power", show_default=True,
              help="'power' keeps the power floors; anything else (temperature, flow...) uses "
                   "the series' own noise as the floor and one day type.")
@click.option("--window", "window_s", type=click.IntRange(60, 3600), default=None,
              help="Window seconds, dividing a day (default: 900 for power, else 3600).")
@click.option("--until", default=None,
              help="Train on rows before this time (ISO, same zone as the data); score the "
                   "rest with frugalai evaluate/score --start.")
@click.option("--tz-offset", type=float, default=None,
              help="Site local time offset for day slots, hours (default: from --tz, else 1).")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Bundle directory to write.")
@click.option("--name", default="energy-anomaly", show_default=True)
def train_anomaly(data: Optional[str], data_dir: Optional[str], time_col: Optional[str],
                  value_col: Optional[str], time_format: Optional[str], tz: Optional[str],
                  utc_offset: Optional[float], aggregate: str, quantity: str,
                  window_s: Optional[int], until: Optional[str], tz_offset: Optional[float],
                  out: str, name: str) -> None:
    """Fit the anomaly model on a series' history (a meter, or any sensor)."""
    from datetime import datetime as _dt
    from pathlib import Path

    from frugalai.extras import require

    require("train")
    from frugalai.learn.csvio import DataError, _parse_times, parse_tz, tz_label
    from frugalai.learn.data import Series, load_dutch, read_user_csv
    from frugalai.learn.energy import train_energy

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your CSV) or --data-dir")
    with _user_input_errors():
        if data is not None:
            zone_text = tz if tz is not None else (
                f"{utc_offset:+03.0f}:00" if utc_offset is not None else None)
            zone = parse_tz(zone_text)
            delta = zone.utcoffset(_dt(2001, 1, 15))
            site_h = tz_offset if tz_offset is not None else (
                delta.total_seconds() / 3600 if zone_text is not None and delta is not None
                else 1.0)
            win = window_s or (900 if quantity == "power" else 3600)
            if 86400 % win:
                raise DataError(f"--window {win} s does not divide a day")
            series = read_user_csv(data, time_col, value_col, time_format, 0.0,  # type: ignore[arg-type]
                                   win, aggregate, tz=zone_text or "UTC")
            info = _file_info(data)
            if until is not None:
                cut = float(_parse_times([until], None, zone)[0])
                if cut != cut:
                    raise DataError(f"--until {until!r} is not a time")
                keep = series.ts < cut
                if keep.sum() < 2:
                    raise DataError(f"no data before --until {until}")
                series = Series(series.ts[keep], series.values[keep], None, series.source)
                info["until"] = until
            with _Steps(["features", "fit", "export"]) as steps:
                card = train_energy(series, Path(out), {"tz_offset_h": site_h,
                                                        "slot_s": win},
                                    name=name, progress=steps, quantity=quantity,
                                    data_info=info,
                                    time_zone=tz_label(zone) if zone_text else None)
        else:
            assert data_dir is not None
            with _Steps(["features", "fit", "evaluate", "nab check", "compare", "export"]) as steps:
                card = train_energy(load_dutch(data_dir), Path(out), {"tz_offset_h": 0.0},
                                    warm_start_days=21, name=name, data_dir=Path(data_dir),
                                    compare=True, progress=steps)
    click.echo(json.dumps({"bundle": out, "rows": card["data"]["rows"],
                           "metrics": card.get("metrics", {}).get("fp32"),
                           "flow_defaults": card.get("flow_defaults"),
                           "sizes_bytes": card["sizes_bytes"]}, indent=2))


def _bad_input(err: Exception) -> NoReturn:
    """Bad data or arguments from the user: one line, exit 2, no traceback."""
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


def _years(text: Optional[str], option: str) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        a, _, b = text.partition("-")
        return int(a), int(b or a)
    except ValueError:
        raise click.BadParameter(f"expected YEAR-YEAR, got {text!r}", param_hint=option) from None


def _file_info(path: str, **extra: Any) -> dict[str, Any]:
    from pathlib import Path

    from frugalai.runtime.bundle import sha256_file

    return {"file": Path(path).name, "sha256": sha256_file(Path(path)), **extra}


def _command_line(args: list[str]) -> str:
    """The command as typed, absolute paths reduced to their names (none in a card)."""
    import os.path

    return " ".join(["frugalai", *(os.path.basename(a) if os.path.isabs(a) else a
                                   for a in args)])


@train_group.command("coastal")
@click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
              help="Your gauge's record: CSV (or .csv.gz), any of , ; tab, UTF-8 or Latin-1.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The shared data folder (Providence 8454000, the shipped bundle).")
@click.option("--time-col", default=None, help="Time column (default: the first that parses).")
@click.option("--level-col", default=None, help="Level column (default: the first numeric).")
@click.option("--time-format", default=None, help="strptime format (default: ISO 8601).")
@click.option("--tz", default=None,
              help="Time zone of naive times: ±HH:MM or a name (default UTC; Providence: -05:00).")
@click.option("--threshold", type=float, default=None,
              help="Flood threshold, m, same datum as the levels (Providence: HAT 1.987 m MLLW).")
@click.option("--tide", "tide_station", default=None,
              help="Use a station's published constants (e.g. noaa/8454000, "
                   "brest-3-fra-refmar) instead of fitting the tide.")
@click.option("--tide-table", type=click.Path(), default=None,
              help="stations.json.gz (default: <data-dir or ../shared/data>/coastal/"
                   "tide_constants).")
@click.option("--tide-years", default=None, help="YEAR-YEAR of the tide fit (default: training).")
@click.option("--train-until", type=int, default=None, help="Last training year.")
@click.option("--valid-years", default=None, help="YEAR-YEAR validated on.")
@click.option("--horizon", type=click.IntRange(1, 24), default=3, show_default=True,
              help="Hours ahead.")
@click.option("--hidden", type=click.IntRange(2, 256), default=16, show_default=True)
@click.option("--out", "out", type=click.Path(file_okay=False), required=True)
@click.option("--name", default="coastal-submersion", show_default=True)
def train_coastal_cmd(data: Optional[str], data_dir: Optional[str], time_col: Optional[str],
                      level_col: Optional[str], time_format: Optional[str], tz: Optional[str],
                      threshold: Optional[float], tide_station: Optional[str],
                      tide_table: Optional[str], tide_years: Optional[str],
                      train_until: Optional[int], valid_years: Optional[str], horizon: int,
                      hidden: int, out: str, name: str) -> None:
    """Fit the submersion nowcast (tide + MLP) on a gauge's record; compare it with the rule.

    \b
    Your gauge:  frugalai train coastal --data gauge.csv.gz --tz +01:00 --threshold 7.2 --out b
    Providence:  frugalai train coastal --data-dir ../shared/data --out models/coastal-submersion
    """
    from datetime import datetime as _dt
    from pathlib import Path

    from frugalai.extras import require

    require("train")
    from frugalai.learn.coastal import PROVIDENCE_HAT_M, train_coastal
    from frugalai.learn.csvio import DataError, parse_tz, tz_label
    from frugalai.learn.data import PROVIDENCE, load_providence, read_level_csv
    from frugalai.learn.tide_stations import find_station, load_table, station_tide

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your gauge's CSV) or --data-dir")
    command = _command_line(sys.argv[1:] if sys.argv and "frugalai" in sys.argv[0]
                            else ["train", "coastal"])
    with _user_input_errors():
        vy = _years(valid_years, "--valid-years")
        ty = _years(tide_years, "--tide-years")
        if data is not None:
            if threshold is None:
                raise DataError("give --threshold: the site's flood level, in the data's datum")
            zone = parse_tz(tz)
            delta = zone.utcoffset(_dt(2000, 1, 1))
            offset_h = delta.total_seconds() / 3600 if delta is not None else 0.0
            series = read_level_csv(data, time_col, level_col, time_format, tz)
            info = _file_info(data, time_col=time_col, level_col=level_col)
            if (train_until is None) != (vy is None):
                raise DataError("give both --train-until and --valid-years, or neither "
                                "(then the last quarter of the record validates)")
            split: dict[str, Any] = {"tide_years": ty, "train_until": train_until,
                                     "valid_years": vy}
            zone_text = tz_label(zone)
        else:
            assert data_dir is not None
            series = load_providence(data_dir)
            files = sorted((Path(data_dir) / PROVIDENCE).glob("providence_8454000_hourly_*.csv.gz"))
            info = {"source": series.source,
                    "files": [_file_info(str(f)) for f in files]}
            offset_h = -5.0
            threshold = PROVIDENCE_HAT_M if threshold is None else threshold
            split = {"tide_years": ty or (1971, 1990), "train_until": train_until or 1990,
                     "valid_years": vy or (1991, 2005)}
            zone_text = "UTC-05:00 (local standard time, no DST; read as such)"
        tide = None
        if tide_station is not None:
            table = tide_table or str(Path(data_dir or "../shared/data"))
            tide, skipped = station_tide(find_station(load_table(table), tide_station))
            if skipped:
                click.echo(f"note: constituents not used: {', '.join(skipped)}", err=True)
        with _Steps(["tide fit", "features", "fit", "evaluate", "export"]) as steps:
            card = train_coastal(series, Path(out), threshold, horizon, hidden=hidden,
                                 name=name, progress=steps, tide=tide, utc_offset_h=offset_h,
                                 time_zone=zone_text, data_info=info, command=command,
                                 **split)
    v = card["metrics"]["validation"]
    click.echo(json.dumps({"bundle": out, "decision_default": card["decision"]["default"],
                           "validation": {k: {"hourly": v[k]["flood"],
                                              "episodes": v[k]["flood_events"]}
                                          for k in ("model_fp32", "model_int8", "baseline")},
                           "sizes_bytes": card["sizes_bytes"]}, indent=2))


def _offline_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
                     help="Your CSV (any dialect train reads)."),
        click.option("--time-col", default=None), click.option("--value-col", default=None),
        click.option("--time-format", default=None),
        click.option("--tz", default=None, help="Zone of naive times: ±HH:MM or a name."),
        click.option("--start", default=None,
                     help="Score from this time (ISO, same zone): e.g. where training stopped."),
        click.option("--backend", type=RegistryName("backend"), default="reference",
                     show_default=True, help="A registered backend (frugalai plugins)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32",
                     show_default=True),
        click.option("--models-dir", default=None),
    ]):
        f = opt(f)
    return f


@cli.command("evaluate")
@click.argument("bundle")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="The shared data folder: recompute the card's own metrics.")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="Labelled windows: JSON [[start, end], ...] (or NAB's {file: [...]}) or CSV.")
@_offline_options
def evaluate_cmd(bundle: str, data_dir: Optional[str], labels: Optional[str],
                 data: Optional[str], time_col: Optional[str], value_col: Optional[str],
                 time_format: Optional[str], tz: Optional[str], start: Optional[str],
                 backend: str, precision: str, models_dir: Optional[str]) -> None:
    """Metrics of BUNDLE: on the reference data (--data-dir), or on your CSV (--data), scored
    through the gateway's own code: window recall, alarms outside windows per month, AUC and
    lead time (anomaly, with --labels); hourly and per-episode P/R/F1 of model and rule
    (coastal: the labels come from your levels and the card's threshold)."""
    from pathlib import Path

    from frugalai.extras import require

    require("train", modules=("sklearn",))  # the metrics; before minutes of data loading
    from frugalai.learn.evaluate import evaluate_bundle
    from frugalai.runtime import load_model

    if (data is None) == (data_dir is None):
        raise click.UsageError("give exactly one of --data (your CSV) or --data-dir")
    model = load_model(bundle, backend, precision, models_dir=_models_dir(models_dir))
    if data_dir is not None:
        click.echo(json.dumps(evaluate_bundle(model, Path(data_dir)), indent=2, default=str))
        return
    from frugalai.learn import offline
    from frugalai.learn.csvio import _parse_times, parse_tz

    assert data is not None
    with _user_input_errors():
        series = offline.read_for_bundle(model, data, time_col, value_col, time_format, tz)
        t0 = float(_parse_times([start], None, parse_tz(tz))[0]) if start else None
        if offline.is_coastal(model):
            result = offline.evaluate_coastal(model, series, t0)
        else:
            if labels is None:
                raise click.UsageError("an anomaly bundle needs --labels (windows to find)")
            windows = offline.read_windows(labels, data, tz)
            result = offline.evaluate_windows(offline.score_series(model, series, t0), windows)
    click.echo(json.dumps({"model": model.info(), "data": Path(data).name, **result},
                          indent=2, default=str))


@cli.command("score")
@click.argument("bundle")
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="CSV of per-window scores (or classes) and alarms.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG: series, score, thresholds, alarms, labelled windows (matplotlib).")
@click.option("--labels", type=click.Path(dir_okay=False), default=None,
              help="Windows to shade on the plot.")
@click.option("--decision", type=click.Choice(["model", "baseline"]), default=None,
              help="Coastal: the card's default unless given.")
@_offline_options
def score_cmd(bundle: str, out: str, plot: Optional[str], labels: Optional[str],
              decision: Optional[str], data: Optional[str], time_col: Optional[str],
              value_col: Optional[str], time_format: Optional[str], tz: Optional[str],
              start: Optional[str], backend: str, precision: str,
              models_dir: Optional[str]) -> None:
    """Score your CSV offline with BUNDLE, through the same streaming code as the gateway."""
    from pathlib import Path

    from frugalai.learn import offline
    from frugalai.learn.csvio import _parse_times, parse_tz
    from frugalai.runtime import load_model

    if data is None:
        raise click.UsageError("give --data (your CSV)")
    model = load_model(bundle, backend, precision, models_dir=_models_dir(models_dir))
    with _user_input_errors():
        series = offline.read_for_bundle(model, data, time_col, value_col, time_format, tz)
        t0 = float(_parse_times([start], None, parse_tz(tz))[0]) if start else None
        sc = offline.score_series(model, series, t0, decision)
        windows = offline.read_windows(labels, data, tz) if labels else []
    coastal = offline.is_coastal(model)
    offline.write_scores(sc, out, coastal)
    click.echo(f"{out}: {len(sc.ts)} windows, {len(sc.raised)} "
               f"{'flood announcements' if coastal else 'alarms'}")
    if plot:
        pol = model.card.get("policy") or {}
        why = offline.plot_scores(sc, windows, plot, f"{model.name} on {Path(data).name}",
                                  None if coastal else pol.get("on"),
                                  None if coastal else pol.get("off"))
        click.echo(f"{plot}: written" if why is None else f"plot skipped: {why}")


def _state_dir_of(config: Any, state_dir: Optional[str]) -> Optional[str]:
    """The state dir named by --state-dir, else by --config, else the default config's."""
    if state_dir:
        return state_dir
    if config is not None:
        return str(config[1].gateway.state_dir)
    from frugalai.config import load_config

    default = "/etc/frugalai/gateway.toml"
    if os.path.isfile(default):
        try:
            return str(load_config(default).gateway.state_dir)
        except ConfigError:
            return None
    return None


@cli.command()
@click.option("--quick", is_flag=True, help="Short windows: a smoke run, not for publication.")
@click.option("--meter", type=RegistryName("meter", spec=True), default=None,
              help="NAME[:rest][?options], NAME a registered meter (frugalai plugins): "
                   "estimate[:board], rapl[:domains], hwmon[:name], ina219:/dev/i2c-N, pmic, "
                   "um25c:/dev/rfcommN (default: [energy] meter of --config, else estimate). "
                   "A board meter also measures the board's idle power for the report.")
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file: results go to <state_dir>/results.")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="Write to <state-dir>/results (instead of --config).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write here instead (default: <state_dir>/results).")
@click.option("--publish", is_flag=True, hidden=True,
              help="Refused: a checkout publishes with benchmarks/energy_per_inference.py.")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None,
              help="Bundles to measure (default: the shipped ones).")
@click.option("--batches", default="1,32", show_default=True, help="Comma-separated batch sizes.")
def bench(quick: bool, meter: Optional[str], config: Any, state_dir: Optional[str], out: Optional[str],
          publish: bool, models_dir: Optional[str], batches: str) -> None:
    """Energy per inference of every shipped model x backend x precision x batch.

    Results (JSON, Markdown, HTML; PNG when matplotlib is installed) go to the state dir's
    results directory, never over the shipped ones (benchmarks/energy_per_inference.py
    --publish writes those, with the run's provenance)."""
    from pathlib import Path

    from frugalai.energy.bench import results_dir, run_bench

    try:
        sizes = tuple(int(b) for b in batches.split(","))
    except ValueError:
        raise click.BadParameter(f"expected integers like 1,32, got {batches!r}",
                                 param_hint="--batches") from None
    if publish:  # the published figures carry the run's provenance: the script writes them
        raise click.UsageError("the published results of a checkout are written by "
                               "`python benchmarks/energy_per_inference.py --publish` (with the "
                               "run's date, commit and machine); give --out DIR here")
    if out:
        target = Path(out)
    else:
        sd = _state_dir_of(config, state_dir)
        if sd is None:
            from frugalai.config import GatewayConfig

            sd = GatewayConfig().state_dir
        target = results_dir(sd)
    if meter is None:
        meter = config[1].energy.meter if config is not None else "estimate"
    from frugalai.runtime.model import shipped_models_dir

    doc = run_bench(target, meter, quick=quick,
                    models_dir=Path(_models_dir(models_dir) or shipped_models_dir()),
                    batches=sizes)
    if doc.get("chart_skipped"):
        click.echo(doc["chart_skipped"], err=True)
    click.echo(f"{len(doc['results'])} configurations -> {target}/energy_per_inference.json "
               "(.md, .html)")


@cli.command()
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file (default: the one the service in --state-dir runs).")
@click.option("--state-dir", type=click.Path(file_okay=False), default=None,
              help="State dir to read status.json and bench results from (default: the "
                   "config's).")
@click.option("--bench", "bench_path", type=click.Path(dir_okay=False), default=None,
              help="energy_per_inference.json (default: [energy] bench_results, then "
                   "<state_dir>/results, then the checkout's).")
@click.option("--summary", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A run summary to take byte and event counts from: what `frugalai demo "
                   "--json` prints (default: the service's status.json).")
@click.option("--summary-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Hours the summary covers (default: its simulated_hours).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output directory (default: <state_dir>/report).")
@click.option("--no-html", is_flag=True, help="Markdown and JSON only.")
def report(config: Any, state_dir: Optional[str], bench_path: Optional[str],
           summary: Optional[str], summary_hours: Optional[float], out: Optional[str],
           no_html: bool) -> None:
    """The deployment's frugality report (Markdown, JSON and HTML with inline charts)."""
    from pathlib import Path

    from frugalai.config import load_config
    from frugalai.energy.report import find_bench, write_report
    from frugalai.service.health.status import read_status

    status = read_status(state_dir) if state_dir else None
    if config is None:
        cfg_path = (status or {}).get("config")
        if not isinstance(cfg_path, str):
            raise click.UsageError("give --config (or --state-dir of a service that has run)")
        try:
            config = (cfg_path, load_config(cfg_path))
        except ConfigError as err:
            raise click.UsageError(f"{cfg_path}: {err}") from None
    path, cfg = config
    sd = state_dir or str(cfg.gateway.state_dir)
    if status is None and summary is None and Path(sd, "status.json").is_file():
        status = read_status(sd)
    bench_file = find_bench(cfg, bench_path, path)  # ConfigError: exit 2 with the message
    paths = write_report(cfg, bench_file, Path(out) if out else Path(sd) / "report",
                         Path(summary) if summary else None, summary_hours,
                         html_out=not no_html, status=status)
    rep = json.loads(paths["json"].read_text())
    click.echo(f"bench results: {bench_file}")
    if rep.get("measured_bytes"):
        click.echo(f"  {rep['measured_bytes']['text']}")
    g = rep["gateway_energy"]
    click.echo(f"  whole gateway: {g['kwh_per_year']:.3g} kWh/year, of which the AI "
               f"(inference) {g['ai_share'] * 100:.2g} %")
    for kind, p in paths.items():
        click.echo(f"{kind}: {p}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON.")
@click.option("--check", is_flag=True, help="Import every entry; exit 1 if one cannot load.")
def plugins(as_json: bool, check: bool) -> None:
    """List every registered name per kind and where it comes from (built-in or plugin)."""
    from frugalai.registry import format_listing, listing

    found = listing(load=check)
    click.echo(json.dumps(found, indent=2) if as_json else format_listing(found))
    if any(row.get("error") for rows in found.values() for row in rows):
        sys.exit(1)


# ----------------------------------------------------------------------------------------
# Fleet (issue 19): event collection, fleet health and signed model rollout over MQTT.
# The logic lives in frugalai.fleet; these commands parse, call and print.


@cli.command()
@click.option("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port][?...]")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="SQLite database the events go to (created if missing, appended to).")
@click.option("--client-id", default="frugalai-collector", show_default=True,
              help="Fixed MQTT client id: the broker keeps the session (and queues events) "
                   "while the collector is down.")
@click.option("--duration", type=click.FloatRange(min=0), default=None,
              help="Stop after this many seconds (default: until SIGTERM / Ctrl-C).")
@click.option("--export", type=click.Choice(["csv"]), default=None,
              help="At the end, also write the table as <out without .sqlite>.csv.")
@click.option("--chirpstack", is_flag=True,
              help="Also collect ChirpStack v4 uplinks (application/+/device/+/event/up) of "
                   "frugalai nodes on LoRaWAN.")
def collect(broker: str, out: str, client_id: str, duration: Optional[float],
            export: Optional[str], chirpstack: bool) -> None:
    """Collect every gateway's events (deduplicated by id) into one SQLite table."""
    import signal
    import threading
    from pathlib import Path

    from frugalai.fleet import collector
    from frugalai.fleet.link import parse_broker

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    store = collector.run(parse_broker(broker), out, client_id=client_id, duration=duration,
                          stop=stop, chirpstack=chirpstack)
    try:
        c = store.counters()
        click.echo(f"{out}: {store.count()} events; this database has stored {c['stored']}, "
                   f"dropped {c['duplicates']} duplicate(s), rejected {c['rejected']}")
        for line in collector.gap_lines(store.gaps()):
            click.echo(f"  {line}")
        if export == "csv":
            path = Path(out).with_suffix(".csv")
            click.echo(f"exported {store.export_csv(path)} rows to {path}")
    finally:
        store.close()


@cli.group()
def fleet() -> None:
    """A fleet of gateways on one MQTT broker: health, signed model rollout (docs/fleet.md)."""


@fleet.command("status")
@click.option("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port][?...]")
@click.option("--json", "as_json", is_flag=True, help="Print the statuses and verdicts as JSON.")
@click.option("--stale-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Flag a gateway whose status is older than this (default: 3 of its status "
                   "intervals, at least 30 s).")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0.1), default=3.0,
              show_default=True, help="Seconds to wait for the retained statuses.")
def fleet_status(broker: str, as_json: bool, stale_s: Optional[float], wait_s: float) -> None:
    """Every gateway's retained status; exit 1 when any is stale, degraded or offline."""
    import time

    from frugalai.fleet import status as fstatus
    from frugalai.fleet.health import read_statuses
    from frugalai.fleet.link import parse_broker

    now = time.time()
    found = read_statuses(parse_broker(broker), wait_s=wait_s)
    verdicts = [fstatus.judge(gw, payload, now, stale_s) for gw, payload in sorted(found.items())]
    if as_json:
        click.echo(json.dumps([{"gateway": v.gateway, "verdict": v.verdict, "why": v.why,
                                "status": v.status} for v in verdicts], indent=1))
    else:
        for line in fstatus.table(verdicts, now):
            click.echo(line)
        flagged = sum(v.flagged for v in verdicts)
        click.echo(f"{len(verdicts)} gateway(s), {flagged} flagged")
    if not verdicts:
        click.echo("no gateway status found on the broker", err=True)
    if not verdicts or any(v.flagged for v in verdicts):
        sys.exit(1)



@fleet.command("keygen")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Private key file to create (PEM, mode 0600); the public key goes to "
                   "<out>.pub as hex (what gateways configure).")
def fleet_keygen(out: str) -> None:
    """Create the operator's Ed25519 signing key pair for rollouts."""
    from pathlib import Path

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    path = Path(out)
    if path.exists():
        raise click.UsageError(f"{out} exists; not overwriting a signing key")
    key = Ed25519PrivateKey.generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    Path(f"{out}.pub").write_text(pub + "\n")
    click.echo(f"private key: {out} (keep it off the gateways)\npublic key:  {pub}")


def _stage_lines(stage: Any) -> None:
    d = stage.as_dict()
    click.echo(f"{d['name']}: {len(d['targets'])} gateway(s), {d['seconds']:.1f} s, "
               f"{'ok' if d['ok'] else 'FAILED'}")
    for gw, r in d["outcomes"].items():
        click.echo(f"  {gw}: {r['outcome']}{' - ' + r['reason'] if r['reason'] else ''}")
    for gw in d["missing"]:
        click.echo(f"  {gw}: no report")


@fleet.command("rollout")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port][?...]")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The operator's Ed25519 private key (fleet keygen).")
@click.option("--canary", default="10%", show_default=True,
              help="Share of the online gateways that get the bundle first (e.g. 10%).")
@click.option("--gateway", "gateways", multiple=True,
              help="Roll out to these gateways (default: every gateway whose status is online).")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for the reports of each stage.")
@click.option("--watch-s", type=click.IntRange(1, 7 * 86400), default=None,
              help="After the switch each gateway counts its alarms for this long and rolls "
                   "back by itself past --max-alarms; a stage ends when its gateways are "
                   "past the window.")
@click.option("--max-alarms", type=click.IntRange(min=0), default=None,
              help="The alarm bound for --watch-s.")
@click.option("--url", default=None,
              help="https:// URL where you host the bundle (the file `fleet pack` writes): "
                   "gateways fetch it there instead of from MQTT chunks.")
@click.option("--json", "as_json", is_flag=True, help="Print the stages as JSON.")
def fleet_rollout(bundle: str, broker: str, key_path: str, canary: str,
                  gateways: tuple[str, ...], timeout: float, watch_s: Optional[int],
                  max_alarms: Optional[int], url: Optional[str], as_json: bool) -> None:
    """Signed rollout of model BUNDLE: canary first, then all; exit 1 if any stage fails."""
    from pathlib import Path

    from frugalai.fleet import manifest, rollout
    from frugalai.fleet.link import parse_broker

    try:
        percent = float(canary.rstrip("%"))
    except ValueError:
        raise click.BadParameter(f"expected a percentage such as 10%, got {canary!r}",
                                 param_hint="--canary") from None
    if not 0 < percent <= 100:
        raise click.BadParameter("must be in (0, 100]%", param_hint="--canary")
    if (watch_s is None) != (max_alarms is None):
        raise click.UsageError("give --watch-s and --max-alarms together")
    watch = (watch_s, max_alarms) if watch_s is not None and max_alarms is not None else None
    stages = rollout.rollout(parse_broker(broker), Path(bundle),
                             manifest.load_private_key(key_path), canary_percent=percent,
                             gateways=list(gateways) or None, timeout=timeout, watch=watch,
                             url=url)
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in stages], indent=1))
    else:
        for stage in stages:
            _stage_lines(stage)
    if not stages[-1].ok or stages[-1].name != "all":
        sys.exit(1)


@fleet.command("pack")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="File to write: the bytes to host for `fleet rollout --url`.")
def fleet_pack(bundle: str, out: str) -> None:
    """Write BUNDLE's files as the one blob a rollout's manifest hashes (for --url)."""
    from pathlib import Path

    from frugalai.fleet import manifest, rollout

    name, version, files = rollout.bundle_files(Path(bundle))
    _, blob = manifest.pack(files)
    Path(out).write_bytes(blob)
    import hashlib

    click.echo(f"{out}: {name} {version}, {len(blob)} bytes, sha256 "
               f"{hashlib.sha256(blob).hexdigest()}")


@fleet.command("rollback")
@click.option("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port][?...]")
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The operator's Ed25519 private key.")
@click.option("--model", required=True, help="Model name.")
@click.option("--version", "version", required=True,
              help="The version to revert: gateways running it go back to their previous one.")
@click.option("--timeout", type=click.FloatRange(min=1), default=120.0, show_default=True)
def fleet_rollback(broker: str, key_path: str, model: str, version: str, timeout: float
                   ) -> None:
    """Signed rollback: every gateway running MODEL VERSION reverts to its previous version."""
    from frugalai.fleet import manifest, rollout
    from frugalai.fleet.link import parse_broker

    stage = rollout.rollback(parse_broker(broker), manifest.load_private_key(key_path), model,
                             version, timeout=timeout)
    _stage_lines(stage)
    if not stage.ok:
        sys.exit(1)


@fleet.command("agent")
@click.option("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port][?...]")
@click.option("--gateway", default=None, help="Gateway id (default: the config's).")
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file: gateway id, models_dir, models.public_key, state_dir.")
@click.option("--models-dir", type=click.Path(file_okay=False), default=None)
@click.option("--state-dir", type=click.Path(file_okay=False), default=None)
@click.option("--public-key", default=None,
              help="The operator's Ed25519 public key (hex, base64 or file); default: the "
                   "config's models.public_key.")
@click.option("--status-interval", type=click.FloatRange(min=0), default=0.0,
              show_default=True, help="Also publish a fleet status every N s (for a gateway "
                                      "whose service does not: fleet=1 on its uplink).")
@click.option("--unit", default="frugalai", show_default=True,
              help="systemd unit to reload after a model changed (with --config).")
@click.option("--https-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA file for bundle servers of https rollouts (default: the system store).")
@click.option("--duration", type=click.FloatRange(min=0), default=None)
def fleet_agent(broker: str, gateway: Optional[str], config: Any, models_dir: Optional[str],
                state_dir: Optional[str], public_key: Optional[str], status_interval: float,
                unit: str, https_ca: Optional[str], duration: Optional[float]) -> None:
    """The gateway's rollout agent: verify, install, report, roll back by itself."""
    import signal
    import threading

    from frugalai.fleet.agent import Agent
    from frugalai.fleet.link import parse_broker
    from frugalai.service.models import parse_public_key

    cfg = config[1] if config else None
    gw = gateway or (cfg.gateway.id if cfg else None)
    mdir = models_dir or (_models_dir(None, config) if cfg else None)  # run's search path
    sdir = state_dir or (cfg.gateway.state_dir if cfg else None)
    key_text = public_key or (cfg.models.public_key if cfg else "")
    if not gw or not mdir or not sdir:
        raise click.UsageError("give --config, or --gateway, --models-dir and --state-dir")
    key = parse_public_key(key_text or "", key="--public-key")
    if key is None:
        raise click.UsageError("the agent needs the operator's public key (--public-key or "
                               "models.public_key): unsigned rollouts are never accepted")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    def reload() -> None:
        if config is None:
            click.echo("model changed; no --config given, so no service to ask for a reload: "
                       "it loads the model at its next start")
            return
        from frugalai.service.reload import reload_service

        click.echo(reload_service(sdir, config[0], unit))

    agent = Agent(parse_broker(broker), gw, mdir, key, sdir, status_interval=status_interval,
                  on_change=reload, https_ca=https_ca)
    try:
        agent.link.wait_connected(30)
        click.echo(f"fleet agent {gw}: waiting for rollouts on {agent.link.broker.name}")
        agent.run(stop, duration)
    finally:
        agent.close()


def main() -> None:
    """Console-script entry point (errors are turned into one line by :class:`FrugalGroup`)."""
    cli(standalone_mode=True)


def _fail(err: Exception) -> NoReturn:
    """FrugalError -> one line, exit 1 (2 for a ConfigError); a module of an optional extra
    missing -> one line naming the extra, exit 2; anything else is a bug: re-raised."""
    from frugalai.extras import missing_extra

    extra = missing_extra(err)
    if extra is not None:
        click.echo(f"error: {_command_name()} {extra}", err=True)
        sys.exit(2)
    if not isinstance(err, FrugalError):
        raise err
    click.echo(f"error: {err}", err=True)
    sys.exit(2 if isinstance(err, ConfigError) else 1)


def _command_name() -> str:
    """``frugalai evaluate``: the command words of this invocation, for one-line errors."""
    words = ["frugalai"]
    group: Any = cli
    for arg in sys.argv[1:]:
        sub = group.commands.get(arg) if isinstance(group, click.Group) else None
        if sub is None:
            if arg.startswith("-"):
                continue
            break
        words.append(arg)
        group = sub
    return " ".join(words)


if __name__ == "__main__":
    main()
