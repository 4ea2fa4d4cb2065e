"""``frugalai sensors report``: each sensor's field performance against its data sheet, from
the gateway's own records (the statistics files of :mod:`frugalai.health.store`), never from
raw readings.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Union

from frugalai.config import Config
from frugalai.health import store
from frugalai.health.stats import field_report


def spec_dict(spec: Any) -> dict[str, Any]:
    """The data sheet's figures a report compares with (the unset ones left out)."""
    out: dict[str, Any] = {}
    for key in ("accuracy", "drift_per_year", "period_s"):
        if getattr(spec, key) is not None:
            out[key] = getattr(spec, key)
    if spec.range:
        out["range"] = list(spec.range)
    return out


def reports(config: Config, state_dir: Union[str, Path, None] = None) -> list[dict[str, Any]]:
    """One report per flow of the config (``days`` = 0 when the gateway has no record yet)."""
    health_dir = Path(state_dir or config.gateway.state_dir) / "health"
    out = []
    for flow in config.flow:
        path = store.path_for(health_dir, flow.name)
        try:
            days, head = store.load(path)
        except store.StatsError as err:  # one bad file does not hide the other sensors
            out.append({"flow": flow.name, "file": str(path), "health": flow.health,
                        "spec": spec_dict(flow.spec), "days": 0, "lines": [],
                        "error": str(err)})
            continue
        period = head.get("period_s")
        rep = field_report(days, spec_dict(flow.spec),
                           float(period) if period else math.nan)
        out.append({"flow": flow.name, "file": str(path), "health": flow.health,
                    "spec": spec_dict(flow.spec), **rep})
    return out


def render(reps: list[dict[str, Any]]) -> str:
    """The reports as text: one block per sensor, one line per figure, kept / not kept."""
    lines: list[str] = []
    for r in reps:
        if r.get("error"):
            lines.append(f"{r['flow']}: unreadable record: {r['error']}")
            continue
        lines.append(f"{r['flow']}: " + (f"{r['days']} day(s) of record" if r["days"] else
                                        f"no record yet ({r['file']})"))
        if not r["days"]:
            continue
        width = max(len(x[0]) for x in r["lines"])
        for name, measured, promised, kept in r["lines"]:
            verdict = "-" if kept is None else "kept" if kept else "NOT KEPT"
            lines.append(f"  {name:<{width}}  {measured:<28} {promised:<16} {verdict}")
    return "\n".join(lines)


def jsonable(reps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """NaN as None, tuples as lists (for ``--json``)."""
    def clean(x: Any) -> Any:
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    return [clean(r) for r in reps]
