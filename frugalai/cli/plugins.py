"""``frugalai plugins``: what is registered, and where each name comes from."""

from __future__ import annotations

import json
import sys

import click

from frugalai.cli.core import (
    cli,
)


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


