"""``frugalai demo`` and ``frugalai emulate``: emulated devices, no hardware needed."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any, Optional

import click

from frugalai.cli.core import (
    cli,
)

#: the line after the config ``emulate`` prints (a script reads up to it).
END_OF_CONFIG = "# end of config"


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
@click.argument("device", type=click.Choice(["tic", "modbus", "fb-node", "rak3172", "rn2483"]))
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=1.0,
              show_default=True, help="Simulated seconds per real second (tic: > 1 switches to "
              "standard mode, whose DATE the gateway uses as its clock).")
@click.option("--scenario", type=click.Choice(["normal", "anomalies"]), default="normal",
              show_default=True, help="anomalies: the demo's injected anomalies (energy meters).")
@click.option("--seed", type=int, default=1, show_default=True)
def emulate(device: str, speed: float, scenario: str, seed: int) -> None:
    """Start an emulated DEVICE on a pty; print its path and a whole config that reads it
    (save it between the two marker lines); run until Ctrl-C."""
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
    click.echo("# a whole config: save the lines up to '# end of config' as gateway.toml, then "
               "frugalai config check gateway.toml && frugalai run --config gateway.toml")
    click.echo(running.config.rstrip())
    click.echo(END_OF_CONFIG, nl=True)
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        running.close()
    click.echo(f"# stopped the emulated {device}")

