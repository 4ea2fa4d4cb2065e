"""The signable edition: a one-page summary, then the life cycle, the measured impact, the coast,
the need for AI flow by flow, the factors and references; in French or English.

Every sentence comes from :mod:`frugalai.report.i18n`, every figure from the report's data
(the JSON edition) through :mod:`frugalai.report.fmt`; :func:`summary_rows` is kept in the JSON
too (``summary``), so each number of the first page is a field a reader can find there. The
Markdown carries two markers the HTML page turns into layout: ``<!-- chart: NAME -->`` and
``<!-- pagebreak -->`` (the PDF starts a page there).
"""

from __future__ import annotations

from typing import Any, Optional

from frugalai.report import fmt, svgchart
from frugalai.report.i18n import strings

PARTS = {"manufacture": "part_manufacture", "board": "part_board",
         "inference": "part_inference", "encoding": "part_encoding", "network": "part_network",
         "storage": "part_storage"}


_MD_SPECIAL = "\\`*_<>&|[]"


def _e(text: Any) -> str:
    """A name from the config or a card, as text (never markup) in the Markdown: its
    Markdown and HTML characters backslash-escaped (CommonMark), which
    :func:`frugalai.report.html.to_html` turns back into the characters, escaped.

    >>> _e("<b>x|y</b>")
    '\\\\<b\\\\>x\\\\|y\\\\</b\\\\>'
    """
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in str(text))


def flow_decision(f: dict[str, Any]) -> str:
    """The key of the decision sentence of a flow (``decision_*``)."""
    if f["model"] == "profile":
        return "decision_profile"
    if f.get("decision") == "baseline":
        return "decision_rule"
    rows = f.get("comparison") or []
    if not rows:
        return "decision_unknown"
    wins = [r for r in rows if r["delta"] > 0.01]
    losses = [r for r in rows if r["delta"] < -0.01]
    return "decision_model" if wins and not losses else "decision_model_even"


def summary_rows(rep: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The key figures of the first page: (label, value text, basis text, the numbers shown)."""
    t = strings(lang)
    lc = rep["life_cycle"]
    fac = lc["factors"]
    per = t["per_year"]
    rows: list[dict[str, Any]] = []

    def add(key: str, value: str, basis: str, numbers: dict[str, Optional[float]]) -> None:
        rows.append({"key": key, "label": t[key], "value": value, "basis": basis,
                     "numbers": numbers})

    b = rep.get("board")
    board_basis = "" if not b else (t["board_measured"].format(meter=_e(b["profile"]))
                                    if b["measured"] else
                                    t["board_estimated"].format(profile=_e(b["profile"])))
    hours = rep.get("counts_hours")
    counts = (t["measured_run"].format(hours=fmt.num(hours, lang)) if hours else t["configured"])
    k = lc["kwh_per_year"]
    add("kwh_year", fmt.energy(k * 1000, lang, per) if k is not None else t["not_total"],
        f"{board_basis}; {counts}" if board_basis else counts, {"kwh_per_year": k})
    eur = lc["eur_per_year"]
    add("eur_year", f"{fmt.money(eur, lang)}{per}" if eur is not None else t["not_total"],
        t["price_basis"].format(price=fmt.num(fac["electricity"]["eur_per_kwh"], lang, 4),
                                date=fac["electricity"]["date"]),
        {"eur_per_year": eur, "eur_per_kwh": fac["electricity"]["eur_per_kwh"]})
    co2 = fac["co2"]
    scope = t["scope_direct"] if co2["scope"] == "direct" else t["scope_life_cycle"]
    co2_basis = t["co2_basis"].format(g=fmt.num(co2["g_per_kwh"], lang), scope=scope,
                                      source=_e(co2["source"]), year=co2["year"])
    total = lc["kg_co2e_per_year"]
    if total is not None:
        add("co2_year", fmt.mass_kg(total, lang, per), co2_basis,
            {"kg_co2e_per_year": total, "g_per_kwh": co2["g_per_kwh"], "year": co2["year"]})
    else:
        use = lc["kg_co2e_per_year_use"]
        add("co2_use_year", fmt.mass_kg(use, lang, per) if use is not None else t["not_total"],
            co2_basis, {"kg_co2e_per_year_use": use, "g_per_kwh": co2["g_per_kwh"],
                        "year": co2["year"]})
    ai = rep["gateway_energy"].get("ai_share")
    add("ai_share", fmt.pct(ai, lang) if ai is not None else t["not_total"], "",
        {"ai_share_pct": None if ai is None else ai * 100})
    mb = rep.get("measured_bytes")
    if mb and mb.get("ratio"):
        add("bytes", t["bytes_value"].format(ratio=fmt.num(mb["ratio"], lang)), counts,
            {"ratio": mb["ratio"], "hours": hours})
    im = rep.get("impact")
    if im:
        u = im["uncertainty"]
        add("mv_line", t["mv_value"].format(
            avoided=fmt.energy(im["avoided_wh"], lang), unc=fmt.energy(u["wh"], lang),
            pct=fmt.pct(im["avoided_fraction"], lang), eur=fmt.money(im["avoided_eur"], lang)),
            t["mv_basis"].format(baseline=im["baseline"]["period"],
                                 reporting=im["reporting"]["period"],
                                 adjustment=_adjustment(im, t)),
            {"avoided_wh": im["avoided_wh"], "uncertainty_wh": u["wh"],
             "avoided_fraction_pct": im["avoided_fraction"] * 100,
             "avoided_eur": im["avoided_eur"]})
        add("alerts_line", t["alerts_value"].format(
            n=len(im["alerts"]), excess=fmt.energy(im["alerts_excess_wh"], lang),
            deficit=fmt.energy(-im["alerts_deficit_wh"], lang)), "",
            {"alerts": len(im["alerts"]), "alerts_excess_wh": im["alerts_excess_wh"],
             "alerts_deficit_wh": -im["alerts_deficit_wh"]})
    co = rep.get("coast")
    if co:
        tot = {m: {k2: sum(s[k2] for s in co["seasons"][m].values())
                   for k2 in ("floods", "warned", "false")} for m in ("rule", "model")}
        add("coast_line", t["coast_value"].format(
            rule_warned=tot["rule"]["warned"], floods=tot["rule"]["floods"],
            rule_false=tot["rule"]["false"], model_warned=tot["model"]["warned"],
            model_false=tot["model"]["false"]), co["period"],
            {"floods": tot["rule"]["floods"], "rule_warned": tot["rule"]["warned"],
             "rule_false": tot["rule"]["false"], "model_warned": tot["model"]["warned"],
             "model_false": tot["model"]["false"]})
    for f in rep["flows"]:
        rows.append({"key": "decision_line", "label": t["decision_line"].format(
            flow=_e(f["flow"])), "value": t[flow_decision(f)], "basis": _e(f["model"]),
            "numbers": {}})
    return rows


def _adjustment(im: dict[str, Any], t: dict[str, str]) -> str:
    adj = im["adjustment"]
    if adj == "none":
        return t["adjust_none"]
    return t["adjust_dd"].format(base=fmt.num(adj["base_c"]))


def _adjustment_text(im: dict[str, Any], lang: str) -> str:
    t = strings(lang)
    adj = im["adjustment"]
    if adj == "none":
        return t["mv_adjust_none"]
    return t["mv_adjust_dd"].format(
        base=fmt.num(adj["base_c"], lang), slope=fmt.energy(adj["wh_per_degree_day"], lang),
        days=adj["baseline_days"], hdd_r=fmt.optional(adj["reporting_mean_hdd"], lang),
        hdd_b=fmt.num(adj["baseline_mean_hdd"], lang))


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def lifecycle_rows(rep: dict[str, Any], lang: str) -> list[list[str]]:
    """The life-cycle table as shown (also what the chart's labels must equal)."""
    t = strings(lang)
    rows = []
    for p in rep["life_cycle"]["parts"]:
        cells = []
        for key, kind in (("kwh_per_year", "num"), ("kg_co2e_per_year", "num"),
                          ("eur_per_year", "eur")):
            v = p.get(key)
            if v is None:  # manufacture has no electricity: "-", not "unknown"
                no_power = p["part"] == "manufacture" and key != "kg_co2e_per_year"
                cells.append("-" if no_power else t["unknown"])
            else:
                cells.append(fmt.money(v, lang) if kind == "eur" else fmt.num(v, lang))
        src = p["source"]
        if p["part"] == "manufacture" and p.get("kg_co2e") is not None:
            src = t["manufacture_source"].format(kg=fmt.num(p["kg_co2e"], lang),
                                                 years=fmt.num(p["lifetime_years"], lang),
                                                 source=src)
        elif p["set"]:
            src = t["set_" + p["set"]]
        rows.append([t[PARTS[p["part"]]], *cells, _e(src)])
    lc = rep["life_cycle"]

    def tot(v: Optional[float], kind: str) -> str:
        if v is None:
            return t["not_total"]
        return f"**{fmt.money(v, lang) if kind == 'eur' else fmt.num(v, lang)}**"
    rows.append([f"**{t['total']}**", tot(lc["kwh_per_year"], "num"),
                 tot(lc["kg_co2e_per_year"], "num"), tot(lc["eur_per_year"], "eur"), ""])
    return rows


def chart_values(rep: dict[str, Any], lang: str) -> list[tuple[str, float]]:
    """(label, kWh/year) of the electricity parts the chart draws: the table's figures."""
    t = strings(lang)
    return [(t[PARTS[p["part"]]], p["kwh_per_year"]) for p in rep["life_cycle"]["parts"]
            if p["kwh_per_year"] is not None]


def charts(rep: dict[str, Any], lang: str) -> dict[str, str]:
    """Linear charts whose labels are the table's numbers (same formatting)."""
    vals = chart_values(rep, lang)
    if not vals:
        return {}
    return {"lifecycle": svgchart.hbar([v[0] for v in vals], [v[1] for v in vals],
                                       strings(lang)["kwh"], strings(lang)["lc_chart"],
                                       log=False, fmt_value=lambda x: fmt.num(x, lang))}


def _mv(rep: dict[str, Any], lang: str) -> list[str]:
    t = strings(lang)
    im = rep.get("impact")
    out = ["## " + t["mv_title"], ""]
    if not im:
        return [*out, t["mv_none"], ""]
    u = im["uncertainty"]
    out += [t["mv_intro"], "",
            t["mv_periods"].format(baseline=im["baseline"]["period"],
                                   bwin=fmt.num(im["baseline"]["windows"], lang),
                                   reporting=im["reporting"]["period"],
                                   rwin=fmt.num(im["reporting"]["windows"], lang)), "",
            t["mv_fit"].format(cv=fmt.pct(im["baseline"]["cv_rmse"], lang)), "",
            t["mv_result"].format(actual=fmt.energy(im["reporting"]["actual_wh"], lang),
                                  adjusted=fmt.energy(im["reporting"]["adjusted_baseline_wh"],
                                                      lang),
                                  avoided=fmt.energy(im["avoided_wh"], lang),
                                  pct=fmt.pct(im["avoided_fraction"], lang),
                                  eur=fmt.money(im["avoided_eur"], lang)), "",
            t["mv_unc"].format(unc=fmt.energy(u["wh"], lang), fsu=fmt.pct(u["fractional"], lang),
                               n=u["n"], cv=fmt.pct(u["cv_rmse"], lang),
                               significant=t["mv_significant" if u["significant"]
                                             else "mv_not_significant"]), "",
            _adjustment_text(im, lang), "", "### " + t["mv_alerts"], ""]
    out += _table([t["start"], t["end"], t["hours"], t["excess_kwh"], t["excess_eur"]],
                  [[a["start"], a["end"], fmt.num(a["windows"] * im["slot_s"] / 3600, lang),
                    fmt.num(a["excess_wh"] / 1000, lang), fmt.money(a["excess_eur"], lang)]
                   for a in im["alerts"]])
    return [*out, ""]


def _coast(rep: dict[str, Any], lang: str) -> list[str]:
    t = strings(lang)
    co = rep.get("coast")
    if not co:
        return []
    out = ["## " + t["coast_title"], "",
           t["coast_intro"].format(period=co["period"],
                                   threshold=fmt.num(co["threshold_m"], lang)), ""]
    rows = []
    for season in ("DJF", "MAM", "JJA", "SON"):
        for m in ("rule", "model"):
            s = co["seasons"][m][season]
            rows.append([t[season], t[m], str(s["floods"]), str(s["alerts"]), str(s["warned"]),
                         str(s["missed"]), str(s["false"]),
                         fmt.optional(s["median_lead_h"], lang)])
    out += _table([t["season"], t["method"], t["floods"], t["alerts"], t["warned"],
                   t["missed"], t["false"], t["lead"]], rows)
    decision = t["decision_rule"] if co["decision"] == "baseline" else t["decision_model"]
    return [*out, "", t["coast_decision"].format(decision=decision, why=_e(co["why"])), ""]


def _need(rep: dict[str, Any], lang: str) -> list[str]:
    t = strings(lang)
    out = ["## " + t["need_title"], "", t["need_intro"], ""]
    share = rep["gateway_energy"].get("ai_share")
    for f in rep["flows"]:
        kind = "need_need_coast" if f.get("alarms", {}).get("model", {}).get("unit", "") \
            .startswith("flood") else "need_need_energy" if f["model"] in (
                "energy-anomaly", "profile") else "need_need_generic"
        alt = f["baseline"].get("method") if f.get("baseline") else None
        rows = f.get("comparison") or []
        compared = "; ".join(t["need_compare"].format(
            metric=_e(r["metric"]), model=fmt.num(r["model"], lang),
            rule=fmt.num(r["baseline"], lang)) for r in rows[:3])
        if f["uj_per_inference"] is None:
            energy = t["need_energy_unknown"]
        else:
            wh = f["uj_per_inference"] * f["inferences_per_day"] * 365 / 3.6e9
            energy = t["need_energy_text"].format(model_uj=fmt.num(f["uj_per_inference"], lang),
                                                  model_wh=fmt.energy(wh, lang))
        out += ["### " + t["need_flow"].format(flow=_e(f["flow"]), model=_e(f["model"])), "",
                f"- **{t['need_need']}**: {t[kind]}",
                f"- **{t['need_alt']}**: {_e(alt) if alt else t['decision_unknown']}"
                + (f" ({compared})" if compared else ""),
                f"- **{t['need_energy']}**: {energy}",
                f"- **{t['need_decision']}**: {t[flow_decision(f)]}",
                "- " + t["need_lc"].format(share=fmt.pct(share, lang) if share is not None
                                           else t["unknown"]), ""]
    return out


def _factors(rep: dict[str, Any], lang: str) -> list[str]:
    t = strings(lang)
    fac = rep["life_cycle"]["factors"]
    co2, el, man = fac["co2"], fac["electricity"], fac["manufacture"]
    scope = t["scope_direct"] if co2["scope"] == "direct" else t["scope_life_cycle"]
    rows = [[t["f_co2"], f"{fmt.num(co2['g_per_kwh'], lang)} g CO2e/kWh",
             f"{_e(co2['source'])} ({co2['basis']})", scope, str(co2["year"])],
            [t["f_price"], f"{fmt.num(el['eur_per_kwh'], lang, 4)} €/kWh", _e(el["source"]),
             _e(el["scope"]), el["date"]],
            [t["f_manufacture"], t["unknown"] if man["kg_co2e"] is None else
             f"{fmt.num(man['kg_co2e'], lang)} kg CO2e / {fmt.num(man['lifetime_years'], lang)}",
             _e(man["source"]) or t["set_energy.board_embodied_kg_co2e"],
             t["scope_life_cycle"], "-"]]
    return ["## " + t["factors_title"], "",
            *_table([t["factor"], t["value"], t["source"], t["scope"], t["date"]], rows), "",
            t["price_note"], ""]


def to_markdown(rep: dict[str, Any], lang: str = "en", annex: str = "") -> str:
    """The edition in ``lang``; ``annex`` (the engineers' tables) appended after a page break."""
    t = strings(lang)
    out = [f"# {t['title'].format(gateway=_e(rep['gateway']))}", "",
           t["subtitle"].format(created=rep["created"]), "", "## " + t["summary"], ""]
    rows = summary_rows(rep, lang)
    out += _table([t["figure"], t["value"], t["basis"]],
                  [[r["label"], f"**{r['value']}**", r["basis"]] for r in rows])
    out += [""] + [t["set_" + k] for k in rep["life_cycle"]["missing"]]
    out += ["", t["reading_guide"], "", "<!-- pagebreak -->", "",
            "## " + t["lc_title"], "", t["lc_intro"], ""]
    out += _table([t["part"], t["kwh"], t["kgco2"], t["eur"], t["source"]],
                  lifecycle_rows(rep, lang))
    out += ["", "<!-- chart: lifecycle -->", ""]
    out += _mv(rep, lang) + _coast(rep, lang) + _need(rep, lang) + _factors(rep, lang)
    out += ["## " + t["sources_title"], "", f"- {t['ref_afnor']}", f"- {t['ref_ipmvp']}",
            f"- {t['ref_ashrae']}", ""]
    if annex:
        out += ["<!-- pagebreak -->", "", "## " + t["annex_title"], "", t["annex_intro"], "",
                annex.split("\n", 1)[1].replace("\n## ", "\n### ") if annex.startswith("# ")
                else annex]
    return "\n".join(out) + "\n"
