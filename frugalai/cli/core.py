"""The ``frugalai`` group itself, its parameter types, its error handling and the helpers
its command modules share. Parse, build, call; no logic here.

Exit codes: 0 ok, 1 runtime failure, 2 invalid configuration or usage (with the key named), a
model card that breaks its schema (with the field named) or a missing optional extra (with the
extra to install), 3 (``frugalai run``) events were lost (the
outbox took no writes: disk full), 130 a demo stopped by Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any, NoReturn, Optional

import click

from frugalai import __version__
from frugalai.errors import CardError, ConfigError, FrugalError
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


def models_dir_of(value: Optional[str], config: Any = None) -> Optional[str]:
    """The installed-bundles directory: ``--models-dir``, else the config's (absolute,
    default ``<state_dir>/models``), else none; the shipped bundles come after it."""
    if value:
        return value
    if config is not None:
        from frugalai.plan import models_dir

        return str(models_dir(config[1])[0])
    return None


class Steps:
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

    def __enter__(self) -> Steps:
        """Also holds back third-party warnings (convergence, deprecations) while it runs."""
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc: object) -> None:
        self._warnings.__exit__(None, None, None)
        self.close()


@contextlib.contextmanager
def user_input_errors() -> Iterator[None]:
    """A FrugalError from the user's data or arguments: one line, exit 2 (a ConfigError goes
    on to FrugalGroup, which names the key)."""
    try:
        yield
    except ConfigError:
        raise
    except FrugalError as err:
        bad_input(err)


def bad_input(err: Exception) -> NoReturn:
    """Bad data or arguments from the user: one line, exit 2, no traceback."""
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


def year_range(text: Optional[str], option: str) -> Optional[tuple[int, int]]:
    if text is None:
        return None
    try:
        a, _, b = text.partition("-")
        return int(a), int(b or a)
    except ValueError:
        raise click.BadParameter(f"expected YEAR-YEAR, got {text!r}", param_hint=option) from None


def file_info(path: str, **extra: Any) -> dict[str, Any]:
    from pathlib import Path

    from frugalai.runtime.bundle import sha256_file

    return {"file": Path(path).name, "sha256": sha256_file(Path(path)), **extra}


def command_line(args: list[str]) -> str:
    """The command as typed, absolute paths reduced to their names (none in a card)."""
    import os.path

    return " ".join(["frugalai", *(os.path.basename(a) if os.path.isabs(a) else a
                                   for a in args)])


def offline_options(f: Any) -> Any:
    for opt in reversed([
        click.option("--data", "data", type=click.Path(dir_okay=False), default=None,
                     help="Your CSV (any dialect train reads)."),
        click.option("--time-col", default=None), click.option("--value-col", default=None),
        click.option("--time-format", default=None),
        click.option("--tz", default=None,
                     help="Zone of naive times: ±HH:MM or a name (default: the bundle's)."),
        click.option("--start", default=None,
                     help="From this date or time (ISO, naive = in the zone): e.g. where "
                          "training stopped."),
        click.option("--end", default=None,
                     help="Before this date or time (ISO, naive = in the zone)."),
        click.option("--backend", type=RegistryName("backend"), default="reference",
                     show_default=True, help="A registered backend (frugalai plugins)."),
        click.option("--precision", type=click.Choice(PRECISIONS), default="fp32",
                     show_default=True),
        click.option("--models-dir", default=None),
        click.option("--allow-low-agreement", is_flag=True,
                     help="Run int8 on a backend the card records under its minimum "
                          "int8/fp32 decision agreement (refused by default)."),
        click.option("--allow-unsigned-native", is_flag=True,
                     help="Let --backend native compile a bundle that is neither signed nor "
                          "shipped with frugalai (it runs as code: only bundles you built)."),
    ]):
        f = opt(f)
    return f


def echo_resolved(provenance: dict[str, Any], warnings: list[str]) -> None:
    """On stderr: where each value in force came from, then one line per warning (the JSON
    outputs carry the same under ``provenance`` and ``warnings``)."""
    parts = []
    for key, item in provenance.items():
        value = item.get("value")
        if value is None and "value" in item:
            continue
        parts.append(f"{key}={value} ({item['from']})" if "value" in item
                     else f"{key} ({item['from']})")
    click.echo("using: " + "; ".join(parts), err=True)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)


def state_dir_of(config: Any, state_dir: Optional[str]) -> Optional[str]:
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


def main() -> None:
    """Console-script entry point (errors are turned into one line by :class:`FrugalGroup`)."""
    cli(standalone_mode=True)


def _fail(err: Exception) -> NoReturn:
    """FrugalError -> one line, exit 1 (2 for a ConfigError or a CardError: bad input, not a
    failure); a module of an optional extra missing -> one line naming the extra, exit 2;
    anything else is a bug: re-raised."""
    from frugalai.extras import missing_extra

    extra = missing_extra(err)
    if extra is not None:
        click.echo(f"error: {_command_name()} {extra}", err=True)
        sys.exit(2)
    if not isinstance(err, FrugalError):
        raise err
    click.echo(f"error: {err}", err=True)
    sys.exit(2 if isinstance(err, (ConfigError, CardError)) else 1)


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


def run_meta(command: str, model: Any = None, data: Optional[str] = None,
             tz: Optional[str] = None) -> Any:
    """A :class:`~frugalai.learn.run_meta.RunMeta` filled from what the command was given:
    the bundle (name, ``bundle_version``), backend, precision, the data file's name and
    sha256, and the zone naive times are read in (``--tz``, else UTC) with its origin."""
    from pathlib import Path

    from frugalai.learn.run_meta import RunMeta
    from frugalai.runtime.bundle import bundle_version, sha256_file

    meta = RunMeta(command=command)
    if model is not None:
        info = model.backend.info()
        meta.bundle, meta.version = model.name, bundle_version(model.bundle)
        meta.backend, meta.precision = str(info["backend"]), str(info["precision"])
    if data is not None:
        meta.data_file, meta.data_sha256 = Path(data).name, sha256_file(Path(data))
    if data is not None or tz is not None:
        from frugalai.learn.csvio import parse_tz, tz_label

        meta.zone = tz_label(parse_tz(tz))
        meta.origin("zone", "--tz" if tz is not None else "default (UTC)")
    return meta


def absorb(meta: Any, provenance: Optional[dict[str, Any]], warnings: list[str]) -> None:
    """Fold what the data reader resolved into the run's metadata: where each value in force
    came from (``origins``; the zone actually used, which may be the card's, not ``--tz``)
    and its warnings."""
    for key, item in (provenance or {}).items():
        meta.origin(key, str(item.get("from")))
    tz = (provenance or {}).get("tz")
    if tz and tz.get("value") is not None:
        meta.zone = str(tz["value"])
        meta.origin("zone", str(tz.get("from")))
    for w in warnings:
        meta.warn(w)


def emit(meta: Any, result: dict[str, Any], printed: tuple[str, ...] = ()) -> None:
    """The result as JSON on stdout, under the run's metadata; each warning also on stderr,
    one line each, so a person running it by hand sees them (but those in ``printed``,
    already said earlier in the run)."""
    import json

    for w in meta.warnings:
        if w not in printed:
            click.echo(f"warning: {w}", err=True)
    click.echo(json.dumps(meta.wrap(result), indent=2, default=str))
