"""``frugalai config``: check a gateway config, print the schema."""

from __future__ import annotations

from typing import Any

import click

from frugalai.cli.core import (
    ConfigPath,
    cli,
)
from frugalai.errors import ConfigError


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


