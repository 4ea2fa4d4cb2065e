"""The deployment's frugality report: energy, carbon, bytes and airtime per day, and the AFNOR
Spec 2314 "IA frugale" comparison of each model with its simple non-AI baseline.

Inputs: the TOML config (flows, ``[energy]`` settings), the benchmark results
(``energy_per_inference.json``), optionally a run summary (``frugalai demo --json`` or the
pipeline's summary) to take real byte and event counts from; otherwise configured rates are used
and the report says so. Model accuracy and baseline metrics come from the bundles' cards; keys
that are absent are reported as absent, never invented.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

from frugalai.config import Config, FlowConfig
from frugalai.energy.base import MeterError
from frugalai.energy.estimate import get_profile
from frugalai.energy.radio import uplink_uj
from frugalai.errors import ConfigError
from frugalai.protocols.lorawan import lorawan_time_on_air

EVENT_BYTES = 11  # frugalai.events.codec.BINARY_SIZE (kept literal: the codec is pure anyway)
#: default line rates of serial protocols when the URL gives no baud (TIC historique 1200).
PROTOCOL_BAUD = {"tic": 1200}


def load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"{what} {path}: unreadable JSON: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a JSON object")
    return data


def raw_bytes_per_day(flow: FlowConfig) -> Optional[float]:
    """Upper bound of the raw stream: a serial line's byte rate (baud / 10) all day."""
    parts = urlsplit(flow.source)
    opts = dict(parse_qsl(parts.query))
    baud = opts.get("baud") or PROTOCOL_BAUD.get(opts.get("protocol", ""))
    if parts.scheme != "serial" or not baud:
        return None
    return int(baud) / 10 * 86400


#: words that mark a candidate in a card's metrics as a simple non-AI alternative.
BASELINE_WORDS = ("baseline", "no weights", "non-ai", "rule", "threshold", "physical")


def _scalars(d: Any, prefix: str = "", depth: int = 0) -> dict[str, Any]:
    """Numeric scalars of a metrics dict, nested dicts flattened with dots (lists left out)."""
    if not isinstance(d, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[prefix + str(k)] = v
        elif isinstance(v, dict) and depth < 2 and k not in ("policy", "candidates"):
            out.update(_scalars(v, f"{prefix}{k}.", depth + 1))
    return out


_MODEL_KEYS = (("fp32", "fp32"), ("int8", "int8"), ("model_fp32", "fp32"),
               ("model_int8", "int8"), ("model", "fp32"))


def card_metrics(card: Optional[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model metrics, baseline metrics) from whatever keys a card has.

    Looks in ``metrics`` and in each of its sections (``metrics.validation``...) for model
    results (``fp32``/``int8``/``model_fp32``/``model_int8``) and a ``baseline`` beside them;
    else ``metrics.baseline_*`` keys, a top-level ``baseline`` table, or the
    ``metrics.candidates`` entry whose name marks a non-AI method (``"... (no weights)"``).
    A top-level ``baseline`` string is kept as the baseline's description.
    """
    if not card:
        return {}, {}
    metrics: dict[str, Any] = card["metrics"] if isinstance(card.get("metrics"), dict) else {}
    # held-out results first: a training score flatters the model
    order = {"test": 0, "validation": 1, "holdout": 1, "eval": 2, "training": 9, "train": 9}
    named = sorted((order.get(k, 5), k) for k, v in metrics.items() if isinstance(v, dict))
    sections = [metrics] + [metrics[k] for _, k in named]
    model: dict[str, Any] = {}
    baseline: dict[str, Any] = {}
    for sec in sections:
        found = {tag: sec[k] for k, tag in reversed(_MODEL_KEYS) if isinstance(sec.get(k), dict)}
        if not found:
            continue
        for tag, vals in found.items():
            model.update(_scalars(vals, f"{tag} "))
        if isinstance(sec.get("baseline"), dict):
            baseline.update(_scalars(sec["baseline"]))
        break
    model.update({k: v for k, v in _scalars(metrics).items()
                  if "." not in k and not k.startswith("baseline_")})
    if not baseline and isinstance(metrics.get("baseline"), dict):
        baseline.update(_scalars(metrics["baseline"]))
        if isinstance(metrics["baseline"].get("method"), str):
            baseline["method"] = metrics["baseline"]["method"]
    top = card.get("baseline")
    if isinstance(top, dict):
        baseline.update(_scalars(top.get("metrics", top)))
        if isinstance(top.get("name") or top.get("method"), str):
            baseline["method"] = top.get("name") or top.get("method")
    elif isinstance(top, str):
        baseline["method"] = top
    for k, v in _scalars(metrics).items():
        if k.startswith("baseline_"):
            baseline.setdefault(k[len("baseline_"):], v)
    if not any(k != "method" for k in baseline) and isinstance(metrics.get("candidates"), dict):
        for name, values in metrics["candidates"].items():
            if any(w in name.lower() for w in BASELINE_WORDS):
                baseline = {"method": name, **_scalars(values)}
                break
    return model, baseline


def _rate(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0


def compare(model: dict[str, Any], baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """Score-like metrics (in [0, 1]: AUC, precision, recall...) the model and its baseline
    share, as (metric, model, baseline, model - baseline). Counts are left out: their
    direction (more is better or worse) is not known."""
    out = []
    for k, b in baseline.items():
        if not _rate(b):
            continue
        for key in (k, f"fp32 {k}", f"int8 {k}"):
            if _rate(model.get(key)):
                out.append({"metric": key, "model": model[key], "baseline": b,
                            "delta": model[key] - b})
    return out


def verdict(rows: list[dict[str, Any]], tolerance: float = 0.01) -> str:
    """One honest sentence on the shared metrics: wins and losses both, no cherry-picking."""
    if not rows:
        return "no shared metric with a baseline: the need for AI is not shown"
    wins = [r for r in rows if r["delta"] > tolerance]
    losses = [r for r in rows if r["delta"] < -tolerance]

    def show(r: dict[str, Any]) -> str:
        return f"{r['metric']} {r['model']:.3g} vs {r['baseline']:.3g}"

    if wins and losses:
        best = max(wins, key=lambda r: r["delta"])
        worst = min(losses, key=lambda r: r["delta"])
        return (f"mixed: the model is better on {len(wins)} and worse on {len(losses)} of "
                f"{len(rows)} shared metrics (best {show(best)}; worst {show(worst)}): the "
                f"need for AI depends on which error costs more")
    if wins:
        best = max(wins, key=lambda r: r["delta"])
        return (f"the model beats its baseline on {len(wins)} of {len(rows)} shared metrics and "
                f"loses on none (best {show(best)}): the need is shown on these metrics")
    best = max(rows, key=lambda r: r["delta"])
    return (f"the baseline does as well or better on every shared metric ({show(best)}): "
            f"prefer the simpler method unless another criterion favours the model")


def _short(metrics: dict[str, Any], limit: int = 8) -> dict[str, Any]:
    """The score-like metrics first, at most ``limit``, for a table cell."""
    rates = {k: v for k, v in metrics.items() if _rate(v)}
    head = {"method": metrics["method"]} if "method" in metrics else {}
    return {**head, **dict(list((rates or metrics).items())[:limit])}


def bench_row(bench: dict[str, Any], model: str, backend: Optional[str] = None,
              precision: Optional[str] = None) -> Optional[dict[str, Any]]:
    """The batch-1 result of ``model`` on the flow's ``backend`` and ``precision`` (what the
    gateway runs); without one, the cheapest batch-1 result (the deployable choice)."""
    name = Path(model).name
    rows = [r for r in bench.get("results", []) if r.get("model") == name and r.get("batch") == 1]
    same = [r for r in rows if r.get("backend") == backend and r.get("precision") == precision]
    return same[0] if same else min(rows, key=lambda r: r["uj_per_inference"]) if rows else None


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_num(x)}" for k, x in v.items())
    return str(v)


def _target_board(board: str, meter: dict[str, Any]) -> Optional[str]:
    """The board to re-scale an estimate to, when the benchmark ran on another profile."""
    profile = (meter.get("profile") or {}).get("name")
    if not meter.get("estimated") or board in ("auto", "") or board == profile:
        return None
    return board


def _profile_dict(name: Optional[str]) -> Optional[dict[str, Any]]:
    from dataclasses import asdict

    return asdict(get_profile(name)) if name else None


def _summary_counts(summary: Optional[dict[str, Any]], flow: str,
                    n_flows: int) -> Optional[tuple[float, float]]:
    """(events, raw bytes) of ``flow`` in a run summary; totals only if it is the only flow."""
    if not summary:
        return None
    per_flow = summary.get("flows", {}).get(flow)
    if isinstance(per_flow, dict) and "events" in per_flow:
        return float(per_flow["events"]), float(per_flow.get("bytes_read", 0))
    if n_flows == 1 and "events" in summary:
        return float(summary["events"]), float(summary.get("raw_bytes_read", 0))
    return None


def build_report(config: Config, bench: dict[str, Any], summary: Optional[dict[str, Any]] = None,
                 summary_hours: Optional[float] = None,
                 models_dir: Optional[Path] = None) -> dict[str, Any]:
    """Every figure of the report as data (the Markdown and HTML are views of it)."""
    e = config.energy
    from frugalai.plan import build_plans

    # The flows as ``run`` would run them: windows, decisions and cards resolved by the plan.
    plans = build_plans(config, check_uplinks=False, models_dir_override=models_dir)
    meter = bench.get("meter", {})
    encode = next((r for r in bench.get("results", []) if r.get("model") == "encode-binary"), None)
    hours = summary_hours or (summary or {}).get("simulated_hours")
    scale = 24.0 / float(hours) if summary and hours else None
    flows: list[dict[str, Any]] = []
    for plan in plans.flows:
        flow = plan.config
        row = bench_row(bench, flow.model, flow.backend, flow.precision)
        card = plan.bundle.card if plan.bundle is not None else None
        inferences = 86400 / plan.window_s
        metrics, baseline = card_metrics(card)
        counts = _summary_counts(summary, flow.name, len(config.flow))
        if scale is not None and counts is not None:
            events, raw = counts[0] * scale, counts[1] * scale
            up_src = "run summary"
            raw_opt: Optional[float] = raw
        else:
            events = e.events_per_day
            raw_opt = raw_bytes_per_day(flow)
            up_src = "configured rates"
        up = events * EVENT_BYTES
        airtime = events * lorawan_time_on_air(EVENT_BYTES, e.lora_dr)
        uj = row["uj_per_inference"] if row else None
        target = _target_board(e.board, meter)
        if row and target and target in row.get("rescaled", {}):
            uj = row["rescaled"][target]["with_assumed_slowdown_uj"]
        enc_uj = encode["uj_per_inference"] if encode else 0.0
        if encode and target and target in encode.get("rescaled", {}):
            enc_uj = encode["rescaled"][target]["with_assumed_slowdown_uj"]
        radio = uplink_uj(EVENT_BYTES, e.lora_dr, e.radio_tx_w)
        j_inf = (uj or 0.0) * inferences / 1e6
        j_ev = events * (enc_uj + radio) / 1e6
        flows.append({
            "flow": flow.name, "model": flow.model, "decision": flow.decision,
            "inferences_per_day": inferences,
            "uj_per_inference": uj,
            "backend": row and f"{row['backend']} {row['precision']}",
            "j_per_day_inference": j_inf, "events_per_day": events,
            "uj_per_event_radio": radio, "uj_per_event_encode": enc_uj,
            "j_per_day_events": j_ev, "j_per_day": j_inf + j_ev,
            "raw_bytes_per_day": raw_opt, "upstream_bytes_per_day": up, "bytes_source": up_src,
            "airtime_s_per_day": airtime,
            "metrics": metrics, "baseline": baseline, "has_card": card is not None,
            "comparison": compare(metrics, baseline),
            "model_bytes": row["model_bytes"] if row else None,
        })
    j_day = sum(f["j_per_day"] for f in flows)
    wh_day = j_day / 3600
    airtime = sum(f["airtime_s_per_day"] for f in flows)
    profile_name = e.board if e.board != "auto" else None
    try:
        board = get_profile(profile_name)
        idle = {"profile": board.name, "idle_w": board.idle_w,
                "wh_per_day": board.idle_w * 24, "source": board.source}
    except MeterError:  # the board context is informative only
        idle = None
    return {
        "gateway": config.gateway.id,
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "meter": meter, "bench_created": bench.get("created"),
        "bench_quick": bool(bench.get("method", {}).get("quick")),
        "flows": flows,
        "rescaled_to": (_profile_dict(_target_board(e.board, meter))
                        if _target_board(e.board, meter) else None),
        "j_per_day": j_day, "wh_per_day": wh_day, "wh_per_year": wh_day * 365,
        "co2": {"g_per_kwh": e.co2_g_per_kwh, "source": e.co2_source, "year": e.co2_year,
                "basis": e.co2_basis, "g_per_day": wh_day / 1000 * e.co2_g_per_kwh,
                "g_per_year": wh_day * 365 / 1000 * e.co2_g_per_kwh},
        "lora": {"dr": e.lora_dr, "airtime_s_per_day": airtime,
                 "fair_use_s_per_day": e.fair_use_s_per_day,
                 "share": airtime / e.fair_use_s_per_day if e.fair_use_s_per_day else None,
                 "tx_w": e.radio_tx_w},
        "board": idle,
    }


def to_markdown(rep: dict[str, Any]) -> str:
    m = rep["meter"]
    label = m.get("label") or m.get("meter", "unknown meter")
    if rep.get("rescaled_to"):
        p = rep["rescaled_to"]
        label += (f", re-scaled to the {p['name']} profile: CPU time measured on "
                  f"{m.get('profile', {}).get('name', 'the bench host')} x {p['slowdown_vs_x86']}"
                  f" (assumed slowdown) x {p['active_w_per_core']} W per busy core")
    out = [f"# Frugality report: gateway {rep['gateway']}", "",
           f"Generated {rep['created']}. Inference energy: **{label}**"
           f" (benchmark of {rep['bench_created']}"
           + (", quick mode: indicative only" if rep["bench_quick"] else "") + ").", "",
           "## Energy per day", "",
           "| flow | model | backend | inferences/day | µJ/inference | J/day inference | "
           "events/day | µJ/event (encode + radio) | J/day events | J/day total |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f in rep["flows"]:
        uj = "not benchmarked" if f["uj_per_inference"] is None else f"{f['uj_per_inference']:.3g}"
        out.append(f"| {f['flow']} | {f['model']} | {f['backend'] or '-'} | "
                   f"{f['inferences_per_day']:.0f} | {uj} | {f['j_per_day_inference']:.3g} | "
                   f"{f['events_per_day']:.3g} | "
                   f"{f['uj_per_event_encode'] + f['uj_per_event_radio']:,.0f} | "
                   f"{f['j_per_day_events']:.3g} | {f['j_per_day']:.3g} |")
    c = rep["co2"]
    out += ["", f"Total: **{rep['j_per_day']:.3g} J/day = {rep['wh_per_day']:.3g} Wh/day "
            f"({rep['wh_per_year']:.3g} Wh/year)** for inference, encoding and radio.", "",
            f"CO2e: **{c['g_per_day']:.3g} g/day, {c['g_per_year']:.3g} g/year** with "
            f"{c['g_per_kwh']:g} gCO2eq/kWh ({c['source']}, {c['year']}, {c['basis']}-based)."]
    if rep["board"] and rep["board"]["idle_w"] > 0:
        b = rep["board"]
        share = rep["wh_per_day"] / b["wh_per_day"] if b["wh_per_day"] else 0.0
        out += ["", f"For scale: the board itself ({b['profile']}, ~{b['idle_w']:g} W idle: "
                f"{b['source']}) uses ~{b['wh_per_day']:.3g} Wh/day whatever runs on it; the "
                f"work above adds {share * 100:.2g} % to it."]
    out += ["", "## Bytes upstream", "",
            "| flow | raw stream bytes/day | upstream bytes/day | reduction | from |",
            "|---|---:|---:|---:|---|"]
    for f in rep["flows"]:
        raw = f["raw_bytes_per_day"]
        red = ("unknown" if raw is None else f"{raw / f['upstream_bytes_per_day']:,.0f}x"
               if f["upstream_bytes_per_day"] else "nothing sent")
        raw_cell = "unknown (not a serial line)" if raw is None else f"{raw:,.0f}"
        out.append(f"| {f['flow']} | {raw_cell} | "
                   f"{f['upstream_bytes_per_day']:,.0f} | {red} | {f['bytes_source']} |")
    lo = rep["lora"]
    share = f"{lo['share']:.1%}" if lo["share"] is not None else "n/a"
    out += ["", "## LoRa airtime", "",
            f"{lo['airtime_s_per_day']:.3g} s/day at DR{lo['dr']} ({EVENT_BYTES}-byte events) "
            f"vs a fair-use budget of {lo['fair_use_s_per_day']:g} s/day: **{share}** of it.",
            "", "## Models against their non-AI baseline (AFNOR Spec 2314 \"IA frugale\")", "",
            "| flow | model | model bytes | model metrics (card) | baseline (card) | verdict |",
            "|---|---|---:|---|---|---|"]
    for f in rep["flows"]:
        if f["model"] == "profile":
            mm, bb = "online daily profile (robust z-score)", "-"
            vv = "it is itself a simple statistical (non-AI) method"
        else:
            mm = _num(_short(f["metrics"])) if f["metrics"] else (
                "no metrics in the card" if f["has_card"] else "no card found")
            bb = _num(_short(f["baseline"], 9)) if f["baseline"] else "no baseline recorded: the need " \
                "for AI is not shown"
            vv = verdict(f["comparison"])
            if f.get("decision") == "baseline":
                vv = ("this flow runs the baseline rule (`decision = \"baseline\"`), not the "
                      f"model; the card's comparison: {vv}")
        size = f"{f['model_bytes']:,}" if f["model_bytes"] is not None else "-"
        out.append(f"| {f['flow']} | {f['model']} | {size} | {mm} | {bb} | {vv} |")
    out += ["", "The spec asks that the need for AI be shown against a less consuming "
            "alternative, that direct impacts be measured, and that claims avoid greenwashing: "
            "the figures above state their meter (estimated or measured), their factor and its "
            "source."]
    return "\n".join(out) + "\n"


def _inline(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(text, quote=False))


def to_html(markdown: str, images: list[Path]) -> str:
    """A self-contained page: the Markdown's headings, paragraphs and tables, PNGs embedded."""
    body: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if not table:
            return
        head, rows = table[0], table[2:]
        body.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                              for r in rows) + "</table>")
        table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        flush()
        if line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    for img in images:
        if img.is_file():
            data = base64.b64encode(img.read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(img.name)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(img.name)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:.25em .5em;text-align:right}th{background:#eee}img{max-width:100%}")
    return ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>frugalai report"
            f"</title><style>{style}</style><body>" + "\n".join(body) + "</body></html>\n")


def day_chart(rep: dict[str, Any], path: Path) -> Path:
    """Stacked bars of J/day per flow: inference vs events (encoding + radio)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f["flow"] for f in rep["flows"]]
    inf = [f["j_per_day_inference"] for f in rep["flows"]]
    ev = [f["j_per_day_events"] for f in rep["flows"]]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    ax.barh(names, inf, label="inference", color="#4c72b0")
    ax.barh(names, ev, left=inf, label="encoding + LoRa uplink", color="#dd8452")
    ax.set_xlabel("J per day")
    ax.legend(fontsize=8)
    ax.set_title("Energy per day by part", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(config: Config, bench_path: Path, out_dir: Path,
                 summary_path: Optional[Path] = None, summary_hours: Optional[float] = None,
                 html_out: bool = True) -> dict[str, Path]:
    """Write ``frugality_report.md`` (and ``.html`` with charts) into ``out_dir``."""
    bench = load_json(bench_path, "benchmark results")
    summary = None
    if summary_path is not None:
        summary = load_json(summary_path, "run summary")
        summary = summary.get("summary", summary)
        if not (summary_hours or summary.get("simulated_hours")):
            raise ConfigError("the run summary has no 'simulated_hours': give --summary-hours",
                              key="summary")
    rep = build_report(config, bench, summary, summary_hours)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = to_markdown(rep)
    paths = {"md": out_dir / "frugality_report.md", "json": out_dir / "frugality_report.json"}
    paths["md"].write_text(md)
    paths["json"].write_text(json.dumps(rep, indent=1, default=str) + "\n")
    if html_out:
        chart = day_chart(rep, out_dir / "frugality_energy_per_day.png")
        images = [chart, bench_path.with_suffix(".png")]
        paths["html"] = out_dir / "frugality_report.html"
        paths["html"].write_text(to_html(md, images))
    return paths
