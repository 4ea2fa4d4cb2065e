"""The deployment's frugality report: the whole gateway's energy, three scenarios side by side,
what the anomalies were worth, bytes and airtime, and the AFNOR Spec 2314 "IA frugale"
comparison of each model with its simple non-AI baseline.

Inputs: the TOML config (flows, ``[energy]`` settings with the prices and the carbon factor),
the benchmark results (found from any directory: ``<state_dir>/results`` first), and the
counts of a real run: a run summary (what ``frugalai demo --json`` prints) or the service's
``status.json``; otherwise configured rates are used and the report says so. Every byte, ratio
and energy figure is computed by :mod:`frugalai.footprint`, the same code ``demo`` and
``status`` print from. Model accuracy and baseline metrics come from the bundles' cards; keys
that are absent are reported as absent, never invented.

Output: Markdown, JSON and one self-contained HTML page whose charts are inline SVG (no
matplotlib needed, no external asset).
"""

from __future__ import annotations

import json
import time
import unicodedata
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

from frugalai.config import Config, FlowConfig
from frugalai.energy.base import MeterError
from frugalai.energy.bench import results_dir, shipped_results_dir
from frugalai.energy.estimate import get_profile
from frugalai.energy.radio import uplink_uj
from frugalai.errors import ConfigError, FrugalError
from frugalai.footprint import (
    DAYS_PER_YEAR,
    EVENT_BYTES,
    Board,
    Costs,
    FlowCounts,
    Prices,
    alarm_excess,
    co2_kg,
    electricity_eur,
    gateway_day,
    kwh,
    ratio_text,
    scenarios,
    summary_bytes,
    upstream_ratio,
)
from frugalai.health import report as sensor_reports
from frugalai.protocols.lorawan import lorawan_time_on_air
from frugalai.report import fmt, svgchart
from frugalai.report.html import to_html
from frugalai.report.i18n import strings
from frugalai.report.lifecycle import SET_BOARD, life_cycle

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
        return f"{r['metric']} {fmt.num(r['model'])} vs {fmt.num(r['baseline'])}"

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
        return fmt.num(v, digits=4)
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
                    n_flows: int) -> Optional[tuple[float, float, float]]:
    """(events, raw bytes, readings) of ``flow`` in a run summary or a service status; totals
    only if it is the only flow."""
    if not summary:
        return None
    per_flow = summary.get("flows", {}).get(flow)
    if isinstance(per_flow, dict) and "events" in per_flow:
        return (float(per_flow["events"]), float(per_flow.get("bytes_read", 0)),
                float(per_flow.get("readings", 0)))
    if n_flows == 1 and "events" in summary:
        return (float(summary["events"]), float(summary.get("raw_bytes_read", 0)),
                float(summary.get("readings", 0)))
    return None


def flow_counts(flow: FlowConfig, events_per_day: float, summary: Optional[dict[str, Any]],
                hours: Optional[float], n_flows: int, source: str) -> FlowCounts:
    """What ``flow`` read and sent: counted by a run when there is one, else configured."""
    counts = _summary_counts(summary, flow.name, n_flows)
    if counts is not None and hours:
        events, raw, readings = counts
        return FlowCounts(raw, readings, events, float(hours), True, source)
    capacity = raw_bytes_per_day(flow)
    return FlowCounts(capacity if capacity is not None else -1.0, 0.0, events_per_day, 24.0,
                      False, "configured rates")


def board_figures(e: Any, bench: dict[str, Any]) -> tuple[Optional[Board], str]:
    """The board's power: the benchmark's idle reading when a board meter took it, else the
    profile's idle and full-load figures with their source; None when neither is known."""
    meter = bench.get("meter", {})
    if not meter.get("estimated") and str(meter.get("scope", "")).startswith("board") \
            and isinstance(bench.get("idle_w"), (int, float)):
        idle = float(bench["idle_w"])
        return Board(meter.get("meter", "meter"), idle, idle, True,
                     f"measured: idle power read by {meter.get('label') or meter.get('meter')} "
                     f"during the benchmark of {bench.get('created')}"), ""
    try:
        p = get_profile(e.board if e.board != "auto" else None)
    except MeterError as err:
        return None, str(err)
    if p.idle_w <= 0:
        return None, (f"the {p.name} profile has no board power figure: set [energy] board "
                      f"(pi-4b, pi-5...) or a board meter to count the gateway itself")
    return Board(p.name, p.idle_w, p.idle_w + p.cores * p.active_w_per_core, False,
                 f"estimated ({p.name} profile): {p.source}"), ""


def card_alarms(card: Optional[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Missed and false alarms of the model and of its non-AI baseline, as the card records
    them (held-out period); a side the card does not record is absent."""
    if not card or not isinstance(card.get("metrics"), dict):
        return {}
    m = card["metrics"]
    out: dict[str, dict[str, Any]] = {}
    val = m.get("validation")
    if isinstance(val, dict):  # classifier: flood episodes over the validation years
        years = str(val.get("years", ""))
        rows = (val.get("baseline") or {}).get("rows")
        for side, key in (("model", "model_fp32"), ("baseline", "baseline")):
            ep = (val.get(key) or {}).get("flood_events")
            if not isinstance(ep, dict):
                continue
            predicted = ep["predicted_episodes"]
            false = round(predicted * (1 - ep["episode_precision"]))
            out[side] = {"unit": "flood episodes", "period": f"validation {years}",
                         "years": (rows / 8766) if isinstance(rows, (int, float)) else None,
                         "events": ep["episodes"], "missed": ep["episodes"] - ep[
                             "episodes_detected"], "false": false, "alarms": predicted}
        if "baseline" in out:
            out["baseline"]["method"] = card.get("baseline") or "baseline rule"
        return out
    fp32 = m.get("fp32")
    if isinstance(fp32, dict) and "labelled_days" in fp32:
        missed = fp32.get("labelled_days_missed", [])
        days = fp32.get("days_scored")
        out["model"] = {"unit": "labelled anomalous days",
                        "period": f"{days} days scored" if days else "training data",
                        "years": days / 365 if isinstance(days, (int, float)) else None,
                        "events": fp32["labelled_days"],
                        "missed": len(missed) if isinstance(missed, list) else missed,
                        "false": fp32.get("false_alarm_days_total"),
                        "alarms": len(fp32.get("labelled_days_alarmed", []))
                        + int(fp32.get("false_alarm_days_total") or 0)}
    rule = m.get("fixed_thresholds_rule")
    if isinstance(rule, dict) and "labelled_days" in rule:
        days = rule.get("days_scored")
        out["baseline"] = {"unit": "labelled anomalous days",
                           "period": f"{days} days scored" if days else "training data",
                           "years": days / 365 if isinstance(days, (int, float)) else None,
                           "events": rule["labelled_days"],
                           "missed": rule["labelled_days_missed"],
                           "false": rule["false_alarm_days_total"],
                           "alarms": rule["labelled_days"] - rule["labelled_days_missed"]
                           + rule["false_alarm_days_total"],
                           "method": rule.get("method", "fixed thresholds")}
    return out


def build_report(config: Config, bench: dict[str, Any], summary: Optional[dict[str, Any]] = None,
                 summary_hours: Optional[float] = None,
                 models_dir: Optional[Path] = None, summary_source: str = "run summary",
                 ) -> dict[str, Any]:
    """Every figure of the report as data (the Markdown and HTML are views of it)."""
    e = config.energy
    from frugalai.plan import build_plans

    # The flows as ``run`` would run them: windows, decisions and cards resolved by the plan.
    plans = build_plans(config, check_uplinks=False, models_dir_override=models_dir)
    meter = bench.get("meter", {})
    encode = next((r for r in bench.get("results", []) if r.get("model") == "encode-binary"), None)
    hours = summary_hours or run_hours(summary)
    flows: list[dict[str, Any]] = []
    costed: list[tuple[FlowCounts, float, float]] = []
    alarms: dict[str, dict[str, Any]] = {}
    target = _target_board(e.board, meter)
    enc_uj = encode["uj_per_inference"] if encode else 0.0
    if encode and target and target in encode.get("rescaled", {}):
        enc_uj = encode["rescaled"][target]["with_assumed_slowdown_uj"]
    radio = uplink_uj(EVENT_BYTES, e.lora_dr, e.radio_tx_w)
    for plan in plans.flows:
        flow = plan.config
        row = bench_row(bench, flow.model, flow.backend, flow.precision)
        card = plan.bundle.card if plan.bundle is not None else None
        inferences = 86400 / plan.window_s
        metrics, baseline = card_metrics(card)
        counts = flow_counts(flow, e.events_per_day, summary, hours, len(config.flow),
                             summary_source)
        events = counts.events_per_day
        up = events * EVENT_BYTES
        uj = row["uj_per_inference"] if row else None
        if row and target and target in row.get("rescaled", {}):
            uj = row["rescaled"][target]["with_assumed_slowdown_uj"]
        j_inf = (uj or 0.0) * inferences / 1e6
        j_ev = events * (enc_uj + radio) / 1e6
        raw_day = counts.raw_bytes_per_day if counts.raw_bytes >= 0 else None
        costed.append((FlowCounts(max(counts.raw_bytes, 0.0), counts.readings, counts.events,
                                  counts.hours, counts.measured, counts.source),
                       inferences, uj or 0.0))
        flow_alarms = card_alarms(card)
        if flow_alarms and not alarms:
            alarms = {side: {**v, "flow": flow.name} for side, v in flow_alarms.items()}
        flows.append({
            "flow": flow.name, "model": flow.model, "decision": flow.decision,
            "inferences_per_day": inferences,
            "uj_per_inference": uj,
            "backend": row and f"{row['backend']} {row['precision']}",
            "j_per_day_inference": j_inf, "events_per_day": events,
            "uj_per_event_radio": radio, "uj_per_event_encode": enc_uj,
            "j_per_day_events": j_ev, "j_per_day": j_inf + j_ev,
            "raw_bytes_per_day": raw_day, "upstream_bytes_per_day": up,
            "bytes_source": counts.source, "bytes_measured": counts.measured,
            "upstream_ratio": upstream_ratio(raw_day, up) if raw_day is not None else None,
            "airtime_s_per_day": events * lorawan_time_on_air(EVENT_BYTES, e.lora_dr),
            "metrics": metrics, "baseline": baseline, "has_card": card is not None,
            "comparison": compare(metrics, baseline), "alarms": flow_alarms,
            "model_bytes": row["model_bytes"] if row else None,
        })
    j_day = sum(f["j_per_day"] for f in flows)
    wh_day = j_day / 3600
    airtime = sum(f["airtime_s_per_day"] for f in flows)
    prices = Prices(e.co2_g_per_kwh, e.electricity_eur_per_kwh, e.cellular_eur_per_mb)
    board, board_note = board_figures(e, bench)
    costs = Costs(enc_uj, e.storage_uj_per_write, e.radio_tx_w, e.lora_dr)
    gw_board = board or Board("unknown", 0.0, 0.0, False, board_note)
    day = gateway_day(gw_board, costed, costs)
    base_rate = _baseline_event_factor(alarms)
    events_day = sum(c.events_per_day for c, _, _ in costed)
    scen = scenarios(gw_board, costed, costs, e.fair_use_s_per_day,
                     None if base_rate is None else events_day * base_rate, alarms)
    unknown = [f["flow"] for f in flows if f["raw_bytes_per_day"] is None]
    scen_rows = [sc.as_dict(prices) for sc in scen]
    if unknown:
        scen_rows[1]["notes"].append(f"raw bytes unknown (not counted) for: {', '.join(unknown)}"
                                     ": a lower bound")
    raw_total, up_total = summary_bytes(summary) if summary else (0.0, 0.0)
    k_year = kwh(day.total) * DAYS_PER_YEAR
    cycle = life_cycle(day.as_dict(), board is not None,
                       board.source if board is not None else board_note, e)
    if board is None:  # a total with an unknown part is not a total
        for row in scen_rows:
            row["per_year"].update({"kwh": None, "co2_kg": None, "electricity_eur": None,
                                    "total_eur": None})
    return {
        "gateway": config.gateway.id,
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "meter": meter, "bench_created": bench.get("created"),
        "bench_quick": bool(bench.get("method", {}).get("quick")),
        "flows": flows,
        "rescaled_to": _profile_dict(target) if target else None,
        "j_per_day": j_day, "wh_per_day": wh_day, "wh_per_year": wh_day * 365,
        "co2": {"g_per_kwh": e.co2_g_per_kwh, "source": e.co2_source, "year": e.co2_year,
                "basis": e.co2_basis, "g_per_day": wh_day / 1000 * e.co2_g_per_kwh,
                "g_per_year": wh_day * 365 / 1000 * e.co2_g_per_kwh},
        "prices": {"electricity_eur_per_kwh": e.electricity_eur_per_kwh,
                   "electricity_source": e.electricity_price_source,
                   "cellular_eur_per_mb": e.cellular_eur_per_mb,
                   "cellular_source": e.cellular_price_source,
                   "storage_uj_per_write": e.storage_uj_per_write,
                   "storage_source": e.storage_source},
        "lora": {"dr": e.lora_dr, "airtime_s_per_day": airtime,
                 "fair_use_s_per_day": e.fair_use_s_per_day,
                 "share": airtime / e.fair_use_s_per_day if e.fair_use_s_per_day else None,
                 "tx_w": e.radio_tx_w},
        "board": None if board is None else {
            "profile": board.name, "idle_w": board.idle_w, "active_w": board.active_w,
            "measured": board.measured, "wh_per_day": board.idle_w * 24,
            "source": board.source},
        "board_note": board_note,
        "gateway_energy": {**day.as_dict(),
                           **({"kwh_per_day": kwh(day.total), "kwh_per_year": k_year,
                               "co2_kg_per_year": co2_kg(k_year, prices),
                               "eur_per_year": electricity_eur(k_year, prices)}
                              if board is not None else
                              {"kwh_per_day": None, "kwh_per_year": None,
                               "co2_kg_per_year": None, "eur_per_year": None,
                               "ai_share": None})},
        "life_cycle": cycle,
        "scenarios": scen_rows,
        "measured_bytes": None if not summary else {
            "source": summary_source, "raw_bytes_read": raw_total,
            "upstream_bytes": up_total, "ratio": upstream_ratio(raw_total, up_total),
            "text": ratio_text(raw_total, up_total)},
        "anomaly_worth": _worth(summary, prices),
        "counts_hours": float(hours) if summary and hours else None,
        "bench_rows": len(bench.get("results", [])),
        # each sensor against its data sheet, from the gateway's statistics files
        "sensors": sensor_reports.jsonable(sensor_reports.reports(config)),
    }


def run_hours(summary: Optional[dict[str, Any]]) -> Optional[float]:
    """Hours a run summary covers: the Linky demo's ``simulated_hours``, the coastal demo's
    ``simulated_days``, a service status's ``hours``."""
    s = summary or {}
    if s.get("simulated_hours"):
        return float(s["simulated_hours"])
    if s.get("simulated_days"):
        return float(s["simulated_days"]) * 24
    return float(s["hours"]) if s.get("hours") else None


def _baseline_event_factor(alarms: dict[str, dict[str, Any]]) -> Optional[float]:
    """Alarms the baseline raises per alarm of the model, when the card records both."""
    m, b = alarms.get("model", {}), alarms.get("baseline", {})
    if m.get("alarms") and b.get("alarms") is not None:
        return float(b["alarms"]) / float(m["alarms"])
    return None


def _worth(summary: Optional[dict[str, Any]], prices: Prices) -> Optional[dict[str, Any]]:
    """Energy of the alarmed windows above the learned profile, when the run recorded them."""
    windows = (summary or {}).get("alarm_windows")
    if not isinstance(windows, list) or not windows:
        return None
    w = alarm_excess([(float(s), float(o), float(x)) for s, o, x in windows])
    return {**w, "windows": len(windows),
            "excess_eur": w["excess_kwh"] * prices.electricity_eur_per_kwh,
            "deficit_eur": w["deficit_kwh"] * prices.electricity_eur_per_kwh}


def _md(text: object) -> str:
    """A name from a config or a card as Markdown text: its HTML characters as entities (a
    Markdown renderer passes raw HTML through), ``|`` as an entity (it would split a table
    cell), control characters as spaces (one line). The HTML edition reads the entities back.

    >>> _md("<img src=x onerror=alert(1)>|x")
    '&lt;img src=x onerror=alert(1)&gt;&#124;x'
    """
    out = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in str(text))
    return (out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("|", "&#124;"))


def _g(x: Optional[float], digits: int = 3) -> str:
    """A figure in plain notation (:func:`frugalai.report.fmt.num`), ``-`` when unknown."""
    return "-" if x is None else fmt.num(x, digits=digits, tiny=1e-9)


def _eur(x: Optional[float]) -> str:
    return "-" if x is None else f"{x:.2f}"


def _pct(share: float) -> str:
    """A share as a percentage, readable from 100 % down to a millionth of a percent."""
    pct = share * 100
    return f"{fmt.num(pct)} %"


def _alarm_cell(a: dict[str, Any]) -> str:
    if not a:
        return "not recorded in the card"
    years = a.get("years")
    per = f" ({_g(a['false'] / years)} false/year)" if years and a.get("false") is not None \
        else ""
    return (f"{a['missed']} missed of {a['events']} {a['unit']}, {a['false']} false "
            f"alarms{per} ({a['period']})")


def to_markdown(rep: dict[str, Any]) -> str:
    m = rep["meter"]
    label = m.get("label") or m.get("meter", "unknown meter")
    if rep.get("rescaled_to"):
        p = rep["rescaled_to"]
        label += (f", re-scaled to the {p['name']} profile: CPU time measured on "
                  f"{m.get('profile', {}).get('name', 'the bench host')} x {p['slowdown_vs_x86']}"
                  f" (assumed slowdown) x {p['active_w_per_core']} W per busy core")
    g = rep["gateway_energy"]
    c = rep["co2"]
    pr = rep["prices"]
    out = [f"# Frugality report: gateway {_md(rep['gateway'])}", "",
           f"Generated {rep['created']}. Inference energy: **{label}**"
           f" (benchmark of {rep['bench_created']}"
           + (", quick mode: indicative only" if rep["bench_quick"] else "") + ").", "",
           "## The whole gateway", ""]
    b = rep["board"]
    if b:
        out.append(f"Board: **{b['profile']}**, {b['idle_w']:g} W idle"
                   + ("" if b["measured"] else f", {_g(b['active_w'], 3)} W with every core busy")
                   + f" ({b['source']}).")
    else:
        out.append(f"Board power unknown: {rep['board_note']}.")
    known = g["kwh_per_year"] is not None
    out += ["", "| part | J/day | kWh/year | share |", "|---|---:|---:|---:|"]
    for part, key in (("board (idle, all day)", "board_j"), ("inference", "inference_j"),
                      ("encoding", "encode_j"), ("radio (LoRa time on air)", "radio_j"),
                      ("storage writes (outbox)", "storage_j")):
        share = _pct(g[key] / g["total_j"]) if known and g["total_j"] else "-"
        value = _g(g[key]) if known or key != "board_j" else "unknown"
        year = _g(g[key] / 3.6e6 * 365) if known or key != "board_j" else "unknown"
        out.append(f"| {part} | {value} | {year} | {share} |")
    if known:
        out += [f"| **total** | **{_g(g['total_j'])}** | **{_g(g['kwh_per_year'])}** | 100% |",
                "", f"Total: **{_g(g['kwh_per_day'])} kWh/day, {_g(g['kwh_per_year'])} "
                f"kWh/year**, {_g(g['co2_kg_per_year'])} kg CO2e/year, "
                f"{g['eur_per_year']:.2f} EUR/year of electricity. The AI (inference) is "
                f"**{_pct(g['ai_share'])}** of it; the board itself is "
                f"{_pct(g['board_j'] / g['total_j'] if g['total_j'] else 0.0)}.", ""]
    else:
        out += ["", f"No total: the board's power is unknown. {strings('en')['set_' + SET_BOARD]}",
                ""]
    out += [
            "<!-- chart: gateway -->", "",
            f"Conversions: {c['g_per_kwh']:g} gCO2eq/kWh ({c['source']}, {c['year']}, "
            f"{c['basis']}-based); electricity {pr['electricity_eur_per_kwh']:g} EUR/kWh "
            f"({pr['electricity_source']}); cellular data {pr['cellular_eur_per_mb']:g} EUR/MB "
            f"({pr['cellular_source']}); storage {pr['storage_uj_per_write']:g} µJ per write "
            f"({pr['storage_source']}).", "",
            "## Three scenarios from the same flows", "",
            "| scenario | upstream bytes/day | LoRaWAN airtime s/day | LoRaWAN | cellular MB/month"
            " | kWh/year | kg CO2e/year | EUR/year electricity | EUR/year cellular data | "
            "alarms (cards) |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---|"]
    for s in rep["scenarios"]:
        y = s["per_year"]
        out.append(f"| ({s['key']}) {s['name']} | {_g(s['upstream_bytes_per_day'])} | "
                   f"{_g(s['airtime_s_per_day'])} | {s['airtime_verdict']} | "
                   f"{_g(y['cellular_mb_per_month'])} | {_g(y['kwh'])} | {_g(y['co2_kg'])} | "
                   f"{_eur(y['electricity_eur'])} | {_eur(y['cellular_eur'])} | "
                   f"{_alarm_cell(s['alarms']) if s['key'] != 'b' else '-'} |")
    out += [""] + [f"- ({s['key']}): {n}" for s in rep["scenarios"] for n in s["notes"]]
    out += ["", "<!-- chart: scenarios -->", ""]
    mb = rep.get("measured_bytes")
    out += ["## Bytes upstream", ""]
    if mb:
        out += [f"Measured ({mb['source']}): {mb['text']}.", ""]
    out += ["| flow | raw stream bytes/day | upstream bytes/day | reduction | from |",
            "|---|---:|---:|---:|---|"]
    for f in rep["flows"]:
        raw = f["raw_bytes_per_day"]
        if raw is None:
            red = "unknown"
        elif not f["upstream_bytes_per_day"]:
            red = "nothing sent"
        elif f["bytes_measured"]:
            red = f"{f['upstream_ratio']:,.0f}x"
        else:
            red = f"at most {f['upstream_ratio']:,.0f}x (line capacity)"
        raw_cell = "unknown (not a serial line)" if raw is None else f"{raw:,.0f}"
        src = f["bytes_source"] + ("" if f["bytes_measured"] or raw is None else
                                   ": raw = the line's full capacity, an upper bound")
        out.append(f"| {_md(f['flow'])} | {raw_cell} | "
                   f"{f['upstream_bytes_per_day']:,.0f} | {red} | {src} |")
    lo = rep["lora"]
    share = f"{lo['share']:.1%}" if lo["share"] is not None else "n/a"
    out += ["", "## LoRa airtime", "",
            f"{_g(lo['airtime_s_per_day'], 3)} s/day at DR{lo['dr']} ({EVENT_BYTES}-byte events) "
            f"vs a fair-use budget of {lo['fair_use_s_per_day']:g} s/day: **{share}** of it.",
            "", "## Energy of the work, per flow", "",
            "| flow | model | backend | inferences/day | µJ/inference | J/day inference | "
            "events/day | µJ/event (encode + radio) | J/day events | J/day total |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for f in rep["flows"]:
        uj = "not benchmarked" if f["uj_per_inference"] is None else f"{_g(f['uj_per_inference'], 3)}"
        out.append(f"| {_md(f['flow'])} | {_md(f['model'])} | {_md(f['backend'] or '-')} | "
                   f"{f['inferences_per_day']:.0f} | {uj} | {_g(f['j_per_day_inference'], 3)} | "
                   f"{_g(f['events_per_day'], 3)} | "
                   f"{f['uj_per_event_encode'] + f['uj_per_event_radio']:,.0f} | "
                   f"{_g(f['j_per_day_events'], 3)} | {_g(f['j_per_day'], 3)} |")
    out += ["", f"The work (inference, encoding, radio) adds {_g(rep['j_per_day'], 3)} J/day = "
            f"{_g(rep['wh_per_day'], 3)} Wh/day ({_g(rep['wh_per_year'], 3)} Wh/year, CO2e "
            f"{_g(c['g_per_day'], 3)} g/day, {_g(c['g_per_year'], 3)} g/year with "
            f"{c['g_per_kwh']:g} gCO2eq/kWh ({c['source']}, {c['year']}, {c['basis']}-based))."]
    if b and b["idle_w"] > 0:
        share_b = rep["wh_per_day"] / b["wh_per_day"] if b["wh_per_day"] else 0.0
        out += ["", f"For scale: the board itself ({b['profile']}, ~{b['idle_w']:g} W idle: "
                f"{b['source']}) uses ~{_g(b['wh_per_day'], 3)} Wh/day whatever runs on it; the "
                f"work above adds {_g(share_b * 100, 2)} % to it."]
    w = rep.get("anomaly_worth")
    out += ["", "## What the anomalies were worth", ""]
    if w:
        run = f" over the run's {_g(rep['counts_hours'], 3)} h" if rep.get("counts_hours") else ""
        out.append(f"{w['windows']} alarmed windows ({_g(w['hours'], 3)} h){run}: "
                   f"**{_g(w['excess_kwh'], 3)} kWh above the learned profile "
                   f"({w['excess_eur']:.2f} EUR)**, {_g(w['deficit_kwh'], 3)} kWh below it "
                   f"({w['deficit_eur']:.2f} EUR).")
    else:
        out.append("Not recorded by this run: give a run summary with alarmed windows "
                   "(`frugalai demo --json` records them) to price the energy of the alarmed "
                   "periods above the learned profile.")
    out += ["", "## Models against their non-AI baseline (AFNOR Spec 2314 \"IA frugale\")", "",
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
        out.append(f"| {_md(f['flow'])} | {_md(f['model'])} | {size} | {_md(mm)} | {_md(bb)} | {vv} |")
    if rep.get("bench_rows"):
        out += ["", "## Energy per inference (the benchmark read)", "",
                f"From {rep.get('bench_path', 'the benchmark results')}; meter: {label}.", "",
                "<!-- chart: bench -->"]
    recorded = [r for r in rep.get("sensors") or [] if r.get("days")]
    if recorded:
        out += ["", "## Sensors against their data sheets (frugalai sensors report)", "",
                "| sensor | figure | measured | data sheet | |", "|---|---|---|---|---|"]
        for r in recorded:
            for name, measured, promised, kept in r["lines"]:
                verdict_ = "-" if kept is None else "kept" if kept else "**not kept**"
                out.append(f"| {r['flow']} | {name} | {measured} | {promised} | {verdict_} |")
        out += ["", "What each figure means for a technician: docs/sensors.md."]
    out += ["", "The spec asks that the need for AI be shown against a less consuming "
            "alternative, that direct impacts be measured, and that claims avoid greenwashing: "
            "the figures above state their meter (estimated or measured), their factor and its "
            "source. How to measure before and after on a site: docs/evaluation.md."]
    return "\n".join(out) + "\n"


SHORT = {"a": "frugalai, events only", "b": "raw readings streamed", "c": "no AI (rule)"}


def report_charts(rep: dict[str, Any]) -> dict[str, str]:
    """The report's charts as inline SVG (no matplotlib)."""
    g = rep["gateway_energy"]
    parts = [("board (idle)", g["board_j"]), ("inference", g["inference_j"]),
             ("encoding", g["encode_j"]), ("radio", g["radio_j"]),
             ("storage", g["storage_j"])]
    gateway = svgchart.hbar([p for p, _ in parts], [v for _, v in parts], "J per day",
                            "The whole gateway, J per day by part", fmt_value=_g, min_px=2)
    names = [f"({s['key']}) {SHORT.get(s['key'], s['name'])}" for s in rep["scenarios"]]
    totals = sorted({_g(s['per_year']['kwh']) for s in rep["scenarios"]})
    kwh_year = svgchart.hbar(
        names, [s["energy_per_day"]["marginal_j"] for s in rep["scenarios"]], "J per day",
        f"Energy above the board's idle, J per day (whole gateway: "
        f"{' / '.join(totals)} kWh/year)", fmt_value=_g, min_px=2)
    up = svgchart.hbar(names, [s["upstream_bytes_per_day"] for s in rep["scenarios"]],
                       "bytes per day", "Bytes upstream per day by scenario", fmt_value=_g,
                       min_px=2)
    return {"gateway": gateway, "scenarios": kwh_year + up}


def _charts(rep: dict[str, Any], bench: dict[str, Any]) -> dict[str, str]:
    """The annex's charts; the benchmark's is linear and says on which board its µJ were
    measured (the per-flow table above it may be re-scaled to another board)."""
    charts = report_charts(rep)
    rows = bench.get("results") or []
    if rows:
        where = (bench.get("meter", {}).get("profile") or {}).get("name") or "the bench host"
        note = (f" (the table above is re-scaled to {rep['rescaled_to']['name']})"
                if rep.get("rescaled_to") else "")
        charts["bench"] = svgchart.hbar(
            [f"{r['model']} {r['backend']} {r['precision']} b{r['batch']}" for r in rows],
            [r["uj_per_inference"] for r in rows], "µJ per inference",
            f"Energy per inference as measured on {where}{note}", fmt_value=_g, min_px=2)
    return charts


def load_summary(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run summary: a JSON object (``{"summary": ...}`` or the summary itself), or what
    ``frugalai demo --json`` prints (one event per line, then the summary line).
    Returns (summary, events)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"run summary not found: {path}", key="summary") from None
    except OSError as err:
        raise ConfigError(f"run summary {path}: {err}", key="summary") from None
    try:
        docs = [json.loads(text)]
    except ValueError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as err:
            raise ConfigError(f"run summary {path}: neither JSON nor JSON lines: {err}",
                              key="summary") from None
    found = [d["summary"] for d in docs if isinstance(d, dict) and isinstance(d.get("summary"),
                                                                              dict)]
    events = [d for d in docs if isinstance(d, dict) and "kind" in d and "ts" in d]
    if found:
        return found[-1], events
    if len(docs) == 1 and isinstance(docs[0], dict):
        return docs[0], events
    raise ConfigError(f"run summary {path}: no summary object (expected the output of "
                      f"`frugalai demo --json`)", key="summary")


def status_summary(status: dict[str, Any]) -> Optional[dict[str, Any]]:
    """A run summary from the service's ``status.json``: per-flow counts since it started."""
    started, updated = status.get("started"), status.get("updated")
    if not isinstance(started, (int, float)) or not isinstance(updated, (int, float)) \
            or updated <= started or not status.get("flows"):
        return None
    raw, up = summary_bytes(status)
    return {"flows": status["flows"], "hours": (updated - started) / 3600,
            "raw_bytes_read": raw, "upstream_bytes_binary": up,
            "events": sum(int(f.get("events", 0)) for f in status["flows"].values())}


def model_for(config: Config, kind: str, default: str,
              models_dir: Optional[Path] = None) -> Any:
    """The bundle of the first flow whose card's features are ``kind`` (what this gateway
    runs), else the shipped ``default`` bundle."""
    from frugalai.runtime.model import load_model

    for flow in config.flow:
        if flow.model in ("", "profile"):
            continue
        try:
            m = load_model(flow.model, models_dir=models_dir)
        except (FrugalError, OSError):  # a flow whose bundle is missing: the plan says so
            continue
        if m.card.get("features", {}).get("kind") == kind:
            return m
    return load_model(default, models_dir=models_dir)


def write_report(config: Config, bench_path: Path, out_dir: Path,
                 summary_path: Optional[Path] = None, summary_hours: Optional[float] = None,
                 html_out: bool = True, status: Optional[dict[str, Any]] = None,
                 models_dir: Optional[Path] = None, lang: str = "en", pdf: bool = False,
                 impact: Optional[dict[str, Any]] = None,
                 coast: Optional[dict[str, Any]] = None) -> dict[str, Path]:
    """Write ``frugality_report.{md,json,html}`` (and ``.pdf``) into ``out_dir``.

    Counts come from ``summary_path`` (a run summary), else from the service's ``status``,
    else from configured rates (and the report says which). ``impact`` and ``coast`` are the
    measured sections (:mod:`frugalai.report.impact`); ``lang`` the edition's language."""
    from frugalai.report import edition

    bench = load_json(bench_path, "benchmark results")
    summary = None
    source = "run summary"
    if summary_path is not None:
        summary, _ = load_summary(summary_path)
        if not (summary_hours or run_hours(summary)):
            raise ConfigError("the run summary has no 'simulated_hours': give --summary-hours",
                              key="summary")
    elif status is not None:
        summary = status_summary(status)
        source = "service status (counts since it started)"
    rep = build_report(config, bench, summary, summary_hours, models_dir=models_dir,
                       summary_source=source)
    rep["bench_path"] = str(bench_path)
    rep["lang"] = lang
    rep["impact"] = impact
    rep["coast"] = coast
    rep["summary"] = edition.summary_rows(rep, lang)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = edition.to_markdown(rep, lang, annex=to_markdown(rep))
    paths = {"md": out_dir / "frugality_report.md", "json": out_dir / "frugality_report.json"}
    paths["md"].write_text(md)
    paths["json"].write_text(json.dumps(rep, indent=1, default=str) + "\n")
    if html_out or pdf:
        paths["html"] = out_dir / "frugality_report.html"
        paths["html"].write_text(to_html(md, {**_charts(rep, bench), **edition.charts(rep, lang)},
                                         title=f"frugalai report: {rep['gateway']}", lang=lang))
    if pdf:
        from frugalai.report.pdf import print_pdf

        paths["pdf"] = print_pdf(paths["html"], out_dir / "frugality_report.pdf")
    return paths


def find_bench(config: Config, explicit: Optional[str] = None,
               config_path: Optional[str] = None) -> Path:
    """The benchmark results to read, from any directory: ``--bench``, then ``[energy]
    bench_results`` (relative to the config file), then ``<state_dir>/results``, then the
    results shipped in a checkout."""
    if explicit:
        return Path(explicit)
    tried: list[Path] = []
    name = "energy_per_inference.json"
    if config.energy.bench_results:
        p = Path(config.energy.bench_results)
        if not p.is_absolute() and config_path:
            p = Path(config_path).resolve().parent / p
        return p
    for p in (results_dir(config.gateway.state_dir) / name, shipped_results_dir() / name):
        tried.append(p)
        if p.is_file():
            return p
    raise ConfigError("no benchmark results found (tried "
                      + ", ".join(str(t) for t in tried)
                      + "): run `frugalai bench --config ...` or give --bench", key="bench")
