"""``frugalai collect`` and ``frugalai fleet``: events, health and signed rollouts over MQTT.

The logic lives in :mod:`frugalai.fleet`; these commands parse, call and print."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

import click

from frugalai.cli.core import (
    ConfigPath,
    cli,
    models_dir_of,
)


@cli.command()
@click.option("--broker", required=True, help="mqtt[s]://[user[:password]@]host[:port][?...]")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="SQLite database the events go to (created if missing, appended to).")
@click.option("--db", default=None,
              help="postgresql://user@host[:port]/db (password in ~/.pgpass or PGPASSWORD, "
                   "not here: a command line is visible to every user), or a SQLite file.")
@click.option("--migrate", is_flag=True,
              help="PostgreSQL: create or upgrade the schema first (needed once per version).")
@click.option("--share", default=None, metavar="GROUP",
              help="MQTT 5 shared subscription: collectors with the same GROUP (each its own "
                   "--client-id) split the events between them.")
@click.option("--metrics", "metrics_path", type=click.Path(dir_okay=False), default=None,
              help="Write the collector's health (queue, lag, last commit, counts) to this "
                   "node_exporter textfile every second.")
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
def collect(broker: str, out: Optional[str], db: Optional[str], migrate: bool,
            share: Optional[str], metrics_path: Optional[str], client_id: str,
            duration: Optional[float], export: Optional[str], chirpstack: bool) -> None:
    """Collect every gateway's events (deduplicated) into SQLite (--out) or PostgreSQL (--db)."""
    import signal
    import threading
    from pathlib import Path

    from frugalai.errors import ConfigError
    from frugalai.fleet import collector, topics
    from frugalai.fleet.link import parse_broker

    if (out is None) == (db is None):
        raise ConfigError("give one of --out FILE.sqlite or --db postgresql://...", key="--db")
    problem = None if share is None else topics.share_problem(share)
    if problem:  # before connecting to the store: the unit installer checks the same way
        raise ConfigError(problem, key="--share")
    target = db if db is not None else str(out)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    intake: list[collector.Intake] = []
    try:
        store = collector.run(parse_broker(broker), target, client_id=client_id,
                              duration=duration, stop=stop, chirpstack=chirpstack,
                              intake=intake, share=share, migrate=migrate,
                              metrics_path=metrics_path)
    except collector.StoreError:
        if intake:  # what this run did before the store failed; then the one-line error
            click.echo(intake[0].summary(), err=True)
        raise
    try:
        c = store.counters()
        click.echo(f"{store.path}: {store.count()} events; {intake[0].summary()}; this "
                   f"database: {c['received']} received, {c['stored']} stored, "
                   f"{c['duplicates']} duplicate(s), {c['quarantined']} quarantined")
        for line in collector.gap_lines(store.gaps()):
            click.echo(f"  {line}")
        if export == "csv":
            path = Path(out if out is not None else "events").with_suffix(".csv")
            click.echo(f"exported {store.export_csv(path)} rows to {path}")
    finally:
        store.close()


@cli.group()
def fleet() -> None:
    """A fleet of gateways on one MQTT broker: health, signed model rollout (docs/fleet.md)."""


@fleet.command("status")
@click.option("--broker", default=None,
              help="mqtt[s]://[user[:password]@]host[:port][?...]: the retained statuses.")
@click.option("--db", default=None,
              help="postgresql://...: the statuses the collector stored (no wait on the "
                   "broker), and the collectors' own health.")
@click.option("--json", "as_json", is_flag=True, help="Print the statuses and verdicts as JSON.")
@click.option("--stale-s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Flag a gateway whose status is older than this (default: 3 of its status "
                   "intervals, at least 30 s).")
@click.option("--wait", "wait_s", type=click.FloatRange(min=0.1), default=3.0,
              show_default=True, help="Seconds to wait for the retained statuses.")
def fleet_status(broker: Optional[str], db: Optional[str], as_json: bool,
                 stale_s: Optional[float], wait_s: float) -> None:
    """Every gateway's status; exit 1 when any is stale, degraded or offline."""
    import time

    from frugalai.errors import ConfigError
    from frugalai.fleet import status as fstatus
    from frugalai.fleet.health import read_statuses
    from frugalai.fleet.link import parse_broker

    if (broker is None) == (db is None):
        raise ConfigError("give one of --broker mqtt://... or --db postgresql://...",
                          key="--broker")
    now = time.time()
    collectors: list[dict[str, Any]] = []
    if db is not None:
        from frugalai.fleet.pgstore import PgEventStore

        store = PgEventStore(db, collector="fleet-status")
        try:
            found = store.latest_statuses()
            collectors = store.collectors()
        finally:
            store.close()
        where = "in the database"
    else:
        found = read_statuses(parse_broker(str(broker)), wait_s=wait_s)
        where = "on the broker"
    verdicts = [fstatus.judge(gw, payload, now, stale_s) for gw, payload in sorted(found.items())]
    if as_json:
        doc: Any = [{"gateway": v.gateway, "verdict": v.verdict, "why": v.why,
                     "status": v.status} for v in verdicts]
        if db is not None:
            doc = {"gateways": doc, "collectors": collectors}
        click.echo(json.dumps(doc, indent=1, default=str))
    else:
        for line in fstatus.table(verdicts, now):
            click.echo(line)
        flagged = sum(v.flagged for v in verdicts)
        click.echo(f"{len(verdicts)} gateway(s), {flagged} flagged")
        for c in collectors:
            since = "-" if c["since_commit_s"] is None else f"{c['since_commit_s']:.1f} s ago"
            lag = "-" if c["lag_s"] is None else f"{c['lag_s']:.2f} s"
            click.echo(f"collector {c['collector']}: last commit {since}, lag {lag}, queue "
                       f"{c['queue']}, stored {c['stored']}, duplicates {c['duplicates']}, "
                       f"quarantined {c['quarantined']}")
    if not verdicts:
        click.echo(f"no gateway status found {where}", err=True)
    if not verdicts or any(v.flagged for v in verdicts):
        sys.exit(1)


@fleet.command("acl")
@click.option("--operator", default="operator", show_default=True,
              help="The operator's broker user (rollouts, fleet status): the whole tree.")
@click.option("--collector", default="collector", show_default=True,
              help="The collector's broker user: reads the events ('' for none).")
@click.option("--chirpstack", is_flag=True,
              help="The collector also reads ChirpStack's uplinks (collect --chirpstack).")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the file here (mode 0640) instead of printing it.")
def fleet_acl(operator: str, collector: str, chirpstack: bool, out: Optional[str]) -> None:
    """The Mosquitto acl_file of the fleet, generated from its topic tree: each gateway (user
    name = gateway id) writes only its own topics and reads only the rollout's."""
    from frugalai.fileio import atomic_write
    from frugalai.fleet.acl import acl_text

    try:
        text = acl_text(operator, collector or None, chirpstack)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write(out, text, mode=0o640)
        click.echo(f"wrote {out}: give it to Mosquitto as acl_file (with a password_file whose "
                   f"gateway users are named by their gateway ids)")


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
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The operator's key, the one `fleet rollout` will use: the card is signed "
                   "in the blob as the rollout signs it (else the blob holds the bundle as it "
                   "is on disk, and its hash will not match a rollout's).")
def fleet_pack(bundle: str, out: str, key_path: Optional[str]) -> None:
    """Write BUNDLE's files as the one blob a rollout's manifest hashes (for --url)."""
    from pathlib import Path

    from frugalai.fleet import manifest, rollout

    key = manifest.load_private_key(key_path) if key_path else None
    name, version, files = rollout.bundle_files(Path(bundle), key)
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
    from frugalai.fleet.topics import identity_problem
    from frugalai.service.models import parse_public_key

    cfg = config[1] if config else None
    gw = gateway or (cfg.gateway.id if cfg else None)
    mdir = models_dir or (models_dir_of(None, config) if cfg else None)  # run's search path
    sdir = state_dir or (cfg.gateway.state_dir if cfg else None)
    key_text = public_key or (cfg.models.public_key if cfg else "")
    if not gw or not mdir or not sdir:
        raise click.UsageError("give --config, or --gateway, --models-dir and --state-dir")
    problem = identity_problem(gw)
    if problem is not None:  # the config's id is checked at load; --gateway here
        raise click.BadParameter(f"{problem}, got {gw!r}", param_hint="--gateway")
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

