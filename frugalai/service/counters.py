"""Lifetime counters of the service, kept in the state dir: they survive reloads and restarts.

A source's counters (readings, bytes read, rejected frames...) live in its ``SourceStats`` and
start again at zero with every new source object: a restart of the process, a reload that
changes the source, a source restarted by the supervisor. ``status``, the Prometheus file and
the upstream-ratio report want the lifetime figures (a Prometheus counter that drops to zero at
every rollout reads as a reset; a ratio of bytes in to bytes out computed over the minutes
since the last reload says little). So the service keeps, per flow, a *base*: what earlier
sources and earlier runs counted, added to what the live objects count now.

The base is written to ``<state_dir>/counters.json`` with the health files (atomic replace),
so a clean stop loses nothing and a SIGKILL at most one status interval.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frugalai.fileio import atomic_write

log = logging.getLogger("frugalai.service")

COUNTERS_FILE = "counters.json"
#: SourceStats fields counted over the gateway's life
SOURCE_COUNTS = ("readings", "bytes_read", "frames_ok", "frames_bad", "parity_errors",
                 "implausible", "outages")
#: FlowStats fields counted over the gateway's life (status names: events, model_errors)
FLOW_COUNTS = {"events": "events", "errors": "model_errors"}
VERSION = 1


def source_counts(stats: Any) -> Counter[str]:
    """The counted fields of a source's stats (a plugin's may lack some: 0)."""
    return Counter({name: int(getattr(stats, name, 0) or 0) for name in SOURCE_COUNTS})


def flow_counts(flow: Any) -> Counter[str]:
    """What a live flow counts now: its source's counters and its own."""
    counts = source_counts(flow.source.stats)
    for attr, name in FLOW_COUNTS.items():
        counts[name] = int(getattr(flow.stats, attr, 0) or 0)
    return counts


class LifetimeCounters:
    """The per-flow base and the gateway totals, loaded from and saved to the state dir."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / COUNTERS_FILE
        self.flows: dict[str, Counter[str]] = {}
        self.gateway: Counter[str] = Counter()  # upstream_bytes, delivered
        self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            if data.get("v") != VERSION:
                raise ValueError(f"version {data.get('v')!r}, expected {VERSION}")
            self.flows = {str(k): Counter({n: int(x) for n, x in v.items()})
                          for k, v in data.get("flows", {}).items()}
            self.gateway = Counter({n: int(x) for n, x in data.get("gateway", {}).items()})
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, AttributeError) as err:
            # counters are not worth refusing to start for: say so, start again from zero
            log.warning("cannot read %s (%s): lifetime counters start again from zero",
                        self.path, err)
            self.flows, self.gateway = {}, Counter()

    def fold(self, name: str, counts: Mapping[str, int]) -> None:
        """Add what a retired flow or source counted to the flow's base."""
        self.flows.setdefault(name, Counter()).update(counts)

    def total(self, name: str, live: Mapping[str, int]) -> Counter[str]:
        """The flow's lifetime counts: its base plus what the live objects count."""
        out = Counter(self.flows.get(name, Counter()))
        out.update(live)
        return out

    def snapshot(self, live: Mapping[str, Mapping[str, int]],
                 gateway_live: Mapping[str, int]) -> dict[str, Any]:
        """What :meth:`save` writes: every flow's total (flows gone from the config too)."""
        flows = {name: dict(self.total(name, live.get(name, {})))
                 for name in sorted(set(self.flows) | set(live))}
        gw = Counter(self.gateway)
        gw.update(gateway_live)
        return {"v": VERSION, "flows": flows, "gateway": dict(gw)}

    def save(self, live: Mapping[str, Mapping[str, int]], gateway_live: Mapping[str, int],
             state_dir: Path) -> None:
        """Write the totals (OSError to the caller: the health writer logs it)."""
        self.path = Path(state_dir) / COUNTERS_FILE
        atomic_write(self.path, json.dumps(self.snapshot(live, gateway_live), indent=1))
