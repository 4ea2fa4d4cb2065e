"""``frugalai models``: install, roll back, list and show model bundles."""

from __future__ import annotations

import json
from typing import Any, Optional

import click

from frugalai.cli.core import (
    ConfigPath,
    cli,
    models_dir_of,
)
from frugalai.cli.train import BundleVersion


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
    done = install(bundle, models_dir_of(None, config) or "", name=name,
                   public_key=parse_public_key(cfg.models.public_key),
                   allow_downgrade=allow_downgrade, warn=lambda m: click.echo(m, err=True))
    verb = "installed" if done.changed else "already installed"
    click.echo(f"{done.name}: {verb} {done.version} ({done.path})")
    if done.changed and not no_reload:
        click.echo(reload_service(cfg.gateway.state_dir, path, unit))


@models_group.command("sign")
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="The operator's Ed25519 private key (frugalai fleet keygen).")
@click.option("--version", "version", type=BundleVersion(), default=None,
              help="Set the card's version first (needed when it has none; removes an older "
                   "signature).")
def models_sign(bundle: str, key_path: str, version: Optional[str]) -> None:
    """Sign BUNDLE's card (card.json.sig) so that gateways with [models] public_key take it."""
    from frugalai.extras import require

    require("sign")
    from frugalai.fleet.manifest import load_private_key
    from frugalai.runtime.stamp import sign_own_bundle

    key = load_private_key(key_path)
    card, sig, public = sign_own_bundle(bundle, key, version)
    click.echo(f"{bundle}: {card.get('name')} version {card['version']} signed ({sig.name}); "
               f"gateways take it with [models] public_key = \"{public}\"")


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
    done = rollback(models_dir_of(None, config) or "", name,
                    public_key=parse_public_key(cfg.models.public_key))
    click.echo(f"{done.name}: rolled back to {done.version} ({done.path})")
    click.echo(reload_service(cfg.gateway.state_dir, path, unit))



@models_group.command("list")
@click.option("--models-dir", default=None,
              help="Installed bundles (default: the config's models_dir, if --config).")
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file (its gateway.models_dir).")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON list: name, version, task, bytes, path, and each backend/precision "
                   "with its file, why it cannot run here, and its int8 decision agreement.")
def models_list(models_dir: Optional[str], config: Any, as_json: bool) -> None:
    """One line per bundle a name can reach (installed, then shipped): name, task, total size,
    the backends/precisions that run here (int8 with the agreement with fp32 its card records
    for that backend), where; then each backend that does not run here, and why."""
    from frugalai.runtime.bundle import bundle_version
    from frugalai.runtime.model import available, list_search_path, listing

    bundles = list_search_path(models_dir_of(models_dir, config))
    if as_json:
        click.echo(json.dumps([
            {"name": b.name, "version": bundle_version(b), "task": b.card.get("task"),
             "bytes": sum(f["bytes"] for f in b.card["files"].values()), "path": str(b.path),
             "backends": available(b)} for b in bundles], indent=2))
        return
    for line in listing(bundles):
        click.echo(line)


@models_group.command("show")
@click.argument("bundle")
@click.option("--models-dir", default=None, help="Where names are looked up first.")
@click.option("--config", "config", type=ConfigPath(), default=None,
              help="TOML file (its gateway.models_dir).")
def models_show(bundle: str, models_dir: Optional[str], config: Any) -> None:
    """The card of BUNDLE (a name or a path), verified, with what can run here."""
    from frugalai.runtime import available, resolve_bundle, verify_bundle

    b = verify_bundle(resolve_bundle(bundle, models_dir_of(models_dir, config)))
    card = {k: v for k, v in b.card.items() if k not in ("self_test",)}
    card["runnable_here"] = available(b)
    click.echo(json.dumps(card, indent=2, default=str))

