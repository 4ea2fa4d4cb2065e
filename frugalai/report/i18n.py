"""Every sentence of the signable edition, one table per language (French and English).

A string is a :meth:`str.format` template; its fields are filled by
:mod:`frugalai.report.edition` with figures already formatted by :mod:`frugalai.report.fmt`.
Both tables have the same keys (a test checks it), so an edition can never print a key instead
of a sentence. Technical words kept as they are in French too (kWh, CO2e, LoRaWAN).
"""

from __future__ import annotations

LANGS = ("fr", "en")

EN: dict[str, str] = {
    "title": "Evaluation of the gateway {gateway}",
    "subtitle": "Energy, carbon and usefulness of the system, {created}",
    "summary": "Summary",
    "key_figures": "Key figures",
    "figure": "figure",
    "value": "value",
    "basis": "basis",
    "kwh_year": "Electricity of the whole gateway",
    "eur_year": "Cost of that electricity",
    "co2_year": "Carbon, whole life cycle (manufacture + use)",
    "co2_use_year": "Carbon of the electricity (use only)",
    "ai_share": "Share of the AI (inference) in the electricity",
    "bytes": "Data sent upstream",
    "bytes_value": "{ratio} times less than the raw readings",
    "not_total": "not computed",
    "set_energy.board": "To complete: set the board in the [energy] table (board = \"pi-4b\", "
                        "or pi-3b+, pi-5, pi-zero-2w), or measure it with a board meter "
                        "([energy] meter).",
    "set_energy.board_embodied_kg_co2e": "To complete: set the board's manufacture footprint in "
                                         "the [energy] table (board_embodied_kg_co2e, with "
                                         "board_embodied_source: the manufacturer's product "
                                         "carbon footprint or an LCA).",
    "per_year": "/year",
    "measured_run": "counted over the run ({hours} h)",
    "configured": "configured rates (no run counted)",
    "board_measured": "board measured by {meter}",
    "board_estimated": "board estimated ({profile} profile)",
    "price_basis": "{price} €/kWh, {date}",
    "co2_basis": "{g} g CO2e/kWh, {source}, {year}; {scope}",
    "mv_line": "Energy avoided, reporting period",
    "mv_value": "{avoided} ± {unc} ({pct} of the adjusted baseline), {eur}",
    "mv_basis": "IPMVP, baseline {baseline}, reporting {reporting}; adjustment: {adjustment}",
    "adjust_none": "none (no temperature series)",
    "adjust_dd": "degree-days, base {base} °C",
    "mv_adjust_dd": "Adjustment: degree-days (base {base} °C). The baseline days' energy rises by "
                    "{slope} per degree-day (fitted on {days} whole baseline days); the "
                    "reporting period averaged {hdd_r} degree-days a day against {hdd_b} on "
                    "baseline weekdays: the adjusted baseline is what the site would have used "
                    "in the reporting period's weather.",
    "alerts_line": "Alerts of the reporting period",
    "alerts_value": "{n} alerts: {excess} above the baseline, {deficit} below",
    "coast_line": "Floods warned (validation data)",
    "coast_value": "rule: {rule_warned} of {floods} warned, {rule_false} false; model: "
                   "{model_warned} warned, {model_false} false",
    "decision_line": "Decision, flow {flow}",
    "decision_model": "the model is used: it beats the non-AI rule",
    "decision_rule": "the rule is used: the model did not beat it",
    "decision_model_even": "the model is used, but the non-AI method does as well on the "
                           "recorded metrics: prefer it unless another criterion favours the "
                           "model",
    "decision_profile": "a statistical profile (not a trained AI) is used",
    "decision_unknown": "no comparison recorded: the need for AI is not shown",
    "reading_guide": "How to read: every figure is per year unless stated, rounded to three "
                     "digits; each one comes with its basis, and each is a row of the JSON "
                     "edition (frugality_report.json).",
    # life cycle
    "lc_title": "The whole life cycle of the gateway",
    "lc_intro": "What one gateway costs in a year, part by part. Manufacture is the board's "
                "carbon footprint spread over its years of use; the other parts are electricity.",
    "part": "part", "kwh": "kWh/year", "kgco2": "kg CO2e/year", "eur": "€/year",
    "source": "source",
    "part_manufacture": "manufacture of the board",
    "part_board": "the board, powered all day",
    "part_inference": "the AI (inference)",
    "part_encoding": "encoding the events",
    "part_network": "network (radio time on air)",
    "part_storage": "storage (outbox writes)",
    "total": "total",
    "unknown": "unknown",
    "lc_chart": "Electricity per part, kWh/year",
    "manufacture_source": "{kg} kg CO2e over {years} years; {source} (an order of magnitude)",
    "factors_title": "Factors, their source, scope and date",
    "factor": "factor", "scope": "scope", "date": "date",
    "f_co2": "carbon intensity of electricity",
    "f_price": "electricity price",
    "f_manufacture": "board manufacture",
    "scope_direct": "direct (power plants' emissions)",
    "scope_life_cycle": "life cycle",
    "price_note": "The default price is the regulated tariff as configured, with its date: "
                  "set [energy] electricity_eur_per_kwh to your contract's price.",
    # impact
    "mv_title": "Before and after: the impact, measured as energy managers do (IPMVP)",
    "mv_intro": "A baseline period before, a reporting period after. The same model (the "
                "meter's own weekday and weekend profile, per 15 minutes) is fitted on the "
                "baseline and projected over the reporting period: the difference is the "
                "energy avoided (positive) or in excess (negative).",
    "mv_periods": "Baseline {baseline} ({bwin} quarter-hours); reporting {reporting} "
                  "({rwin} quarter-hours).",
    "mv_fit": "Quality of the baseline model: CV(RMSE) {cv} (ASHRAE Guideline 14 asks for "
              "less than 30 % on hourly data).",
    "mv_result": "Reporting period: {actual} measured against {adjusted} expected: **{avoided} "
                 "avoided ({pct})**, {eur}.",
    "mv_unc": "Uncertainty at 90 % confidence: ± {unc} (fractional savings uncertainty "
              "{fsu}, ASHRAE Guideline 14-2014, on {n} whole baseline days whose daily "
              "CV(RMSE) is {cv}). {significant}",
    "mv_significant": "The result is larger than its uncertainty.",
    "mv_not_significant": "The result is not larger than its uncertainty: no saving is "
                          "shown.",
    "mv_adjust_none": "Adjustment: none. No temperature series was given, so the weather "
                      "difference between the two periods is not removed (a winter baseline "
                      "against a summer reporting period shows the season, not the system).",
    "mv_alerts": "Each alert of the reporting period, its energy against the baseline",
    "start": "start", "end": "end", "hours": "hours", "excess_kwh": "kWh (+ above, - below)",
    "excess_eur": "€",
    "mv_none": "No before/after measurement in this report: give the meter's data with "
               "--impact-data and the two periods with --baseline and --reporting.",
    # coast
    "coast_title": "The coast: flood warnings per season, against the rule",
    "coast_intro": "On the gauge's record ({period}), hour by hour, each season: the floods "
                   "(observed level above {threshold} m), the alerts issued, how early, the "
                   "missed and the false ones, for the physical rule and for the learned "
                   "model, on the same data.",
    "season": "season", "method": "method", "floods": "floods", "alerts": "alerts issued",
    "warned": "warned", "missed": "missed", "false": "false alerts",
    "lead": "median lead, h",
    "rule": "rule", "model": "model",
    "DJF": "winter", "MAM": "spring", "JJA": "summer", "SON": "autumn",
    "coast_decision": "Decision: {decision}. The card's reason: {why}",
    "coast_none": "No coastal evaluation in this report: give the gauge's record with "
                  "--coast-data.",
    # need for AI
    "need_title": "Need for AI, flow by flow (AFNOR Spec 2314, frugal AI)",
    "need_intro": "The frugal-AI framework (AFNOR Spec 2314, June 2024) asks three things of "
                  "each use of AI: the need, the less consuming alternative, and the whole "
                  "life cycle. Here each flow's model is set against the non-AI method shipped "
                  "with it, on the same data.",
    "need_need": "Need", "need_alt": "Alternative without AI", "need_energy": "Energy",
    "need_decision": "Decision",
    "need_flow": "Flow {flow} ({model})",
    "need_need_energy": "detect an abnormal consumption day (holidays, drift) from the meter",
    "need_need_coast": "warn of a coastal flood before the water reaches the quay",
    "need_need_generic": "detect what the flow's model was trained for",
    "need_energy_text": "model {model_uj} µJ per inference, {model_wh} per year; the rule: "
                        "no measurable energy (a comparison)",
    "need_energy_unknown": "model not benchmarked",
    "need_compare": "{metric}: model {model}, rule {rule}",
    "need_lc": "Whole life cycle: see the first section (the board dominates; the AI is "
               "{share} of the electricity).",
    "annex_title": "Technical annex",
    "annex_intro": "The engineers' tables (in English): every figure above comes from these "
                   "rows and from the JSON edition.",
    "sources_title": "References",
    "ref_afnor": "AFNOR Spec 2314, Référentiel général pour l'IA frugale (AFNOR, 2024).",
    "ref_ipmvp": "IPMVP Core Concepts (Efficiency Valuation Organization, 2022).",
    "ref_ashrae": "ASHRAE Guideline 14-2014, Measurement of Energy, Demand, and Water "
                  "Savings (Annex B, savings uncertainty).",
}

FR: dict[str, str] = {
    "title": "Évaluation de la passerelle {gateway}",
    "subtitle": "Énergie, carbone et utilité du système, {created}",
    "summary": "Synthèse",
    "key_figures": "Chiffres clés",
    "figure": "indicateur",
    "value": "valeur",
    "basis": "base",
    "kwh_year": "Électricité de la passerelle entière",
    "eur_year": "Coût de cette électricité",
    "co2_year": "Carbone, cycle de vie complet (fabrication + usage)",
    "co2_use_year": "Carbone de l'électricité (usage seul)",
    "ai_share": "Part de l'IA (inférence) dans l'électricité",
    "bytes": "Données envoyées",
    "bytes_value": "{ratio} fois moins que les relevés bruts",
    "not_total": "non calculé",
    "set_energy.board": "Pour compléter : indiquer la carte dans la table [energy] (board = "
                        "\"pi-4b\", ou pi-3b+, pi-5, pi-zero-2w), ou la mesurer avec un "
                        "wattmètre de carte ([energy] meter).",
    "set_energy.board_embodied_kg_co2e": "Pour compléter : indiquer l'empreinte de fabrication "
                                         "de la carte dans la table [energy] "
                                         "(board_embodied_kg_co2e, avec board_embodied_source : "
                                         "l'empreinte carbone publiée par le fabricant ou une "
                                         "ACV).",
    "per_year": "/an",
    "measured_run": "compté sur l'exécution ({hours} h)",
    "configured": "débits configurés (aucune exécution comptée)",
    "board_measured": "carte mesurée par {meter}",
    "board_estimated": "carte estimée (profil {profile})",
    "price_basis": "{price} €/kWh, {date}",
    "co2_basis": "{g} g CO2e/kWh, {source}, {year}; {scope}",
    "mv_line": "Énergie évitée, période de suivi",
    "mv_value": "{avoided} ± {unc} ({pct} de la référence ajustée), {eur}",
    "mv_basis": "IPMVP, référence {baseline}, suivi {reporting} ; ajustement : {adjustment}",
    "adjust_none": "aucun (pas de série de températures)",
    "adjust_dd": "degrés-jours, base {base} °C",
    "mv_adjust_dd": "Ajustement : degrés-jours (base {base} °C). L'énergie des jours de "
                    "référence augmente de {slope} par degré-jour (ajusté sur {days} jours "
                    "complets de référence) ; la période de suivi a compté en moyenne {hdd_r} "
                    "degrés-jours par jour contre {hdd_b} en semaine pendant la référence : la "
                    "référence ajustée est ce que le site aurait consommé avec la météo de la "
                    "période de suivi.",
    "alerts_line": "Alertes de la période de suivi",
    "alerts_value": "{n} alertes : {excess} au-dessus de la référence, {deficit} en dessous",
    "coast_line": "Submersions annoncées (données de validation)",
    "coast_value": "règle : {rule_warned} sur {floods} annoncées, {rule_false} fausses ; "
                   "modèle : {model_warned} annoncées, {model_false} fausses",
    "decision_line": "Décision, flux {flow}",
    "decision_model": "le modèle est utilisé : il fait mieux que la règle sans IA",
    "decision_rule": "la règle est utilisée : le modèle n'a pas fait mieux",
    "decision_model_even": "le modèle est utilisé, mais la méthode sans IA fait aussi bien sur "
                           "les mesures enregistrées : la préférer sauf si un autre critère "
                           "favorise le modèle",
    "decision_profile": "un profil statistique (pas une IA entraînée) est utilisé",
    "decision_unknown": "aucune comparaison enregistrée : le besoin d'IA n'est pas démontré",
    "reading_guide": "Lecture : chaque chiffre est annuel sauf mention contraire, arrondi à "
                     "trois chiffres ; chacun est donné avec sa base et figure dans l'édition "
                     "JSON (frugality_report.json).",
    "lc_title": "Le cycle de vie complet de la passerelle",
    "lc_intro": "Ce que coûte une passerelle en un an, poste par poste. La fabrication est "
                "l'empreinte carbone de la carte répartie sur ses années d'usage ; les autres "
                "postes sont de l'électricité.",
    "part": "poste", "kwh": "kWh/an", "kgco2": "kg CO2e/an", "eur": "€/an",
    "source": "source",
    "part_manufacture": "fabrication de la carte",
    "part_board": "la carte, alimentée toute la journée",
    "part_inference": "l'IA (inférence)",
    "part_encoding": "codage des événements",
    "part_network": "réseau (temps d'émission radio)",
    "part_storage": "stockage (écritures de la file d'envoi)",
    "total": "total",
    "unknown": "inconnu",
    "lc_chart": "Électricité par poste, kWh/an",
    "manufacture_source": "{kg} kg CO2e sur {years} ans ; {source} (un ordre de grandeur)",
    "factors_title": "Facteurs : source, périmètre et date",
    "factor": "facteur", "scope": "périmètre", "date": "date",
    "f_co2": "intensité carbone de l'électricité",
    "f_price": "prix de l'électricité",
    "f_manufacture": "fabrication de la carte",
    "scope_direct": "direct (émissions des centrales)",
    "scope_life_cycle": "cycle de vie",
    "price_note": "Le prix par défaut est le tarif réglementé tel que configuré, avec sa date : "
                  "renseigner [energy] electricity_eur_per_kwh avec le prix de votre contrat.",
    "mv_title": "Avant et après : l'impact, mesuré comme le font les gestionnaires d'énergie "
                "(IPMVP)",
    "mv_intro": "Une période de référence avant, une période de suivi après. Le même modèle "
                "(le profil propre du compteur, semaine et week-end, par quart d'heure) est "
                "ajusté sur la référence puis projeté sur la période de suivi : l'écart est "
                "l'énergie évitée (positive) ou en excès (négative).",
    "mv_periods": "Référence {baseline} ({bwin} quarts d'heure) ; suivi {reporting} "
                  "({rwin} quarts d'heure).",
    "mv_fit": "Qualité du modèle de référence : CV(RMSE) {cv} (l'ASHRAE Guideline 14 "
              "demande moins de 30 % sur des données horaires).",
    "mv_result": "Période de suivi : {actual} mesurés pour {adjusted} attendus : **{avoided} "
                 "évités ({pct})**, {eur}.",
    "mv_unc": "Incertitude à 90 % de confiance : ± {unc} (incertitude relative des économies "
              "{fsu}, ASHRAE Guideline 14-2014, sur {n} jours complets de référence dont le "
              "CV(RMSE) journalier est {cv}). {significant}",
    "mv_significant": "Le résultat dépasse son incertitude.",
    "mv_not_significant": "Le résultat ne dépasse pas son incertitude : aucune économie "
                          "n'est démontrée.",
    "mv_adjust_none": "Ajustement : aucun. Aucune série de températures n'a été fournie : "
                      "l'écart de météo entre les deux périodes n'est pas retiré (une "
                      "référence d'hiver face à un suivi d'été montre la saison, pas le "
                      "système).",
    "mv_alerts": "Chaque alerte de la période de suivi et son énergie face à la référence",
    "start": "début", "end": "fin", "hours": "heures",
    "excess_kwh": "kWh (+ au-dessus, - en dessous)", "excess_eur": "€",
    "mv_none": "Pas de mesure avant/après dans ce rapport : fournir les données du compteur "
               "avec --impact-data et les deux périodes avec --baseline et --reporting.",
    "coast_title": "Le littoral : alertes de submersion par saison, face à la règle",
    "coast_intro": "Sur l'enregistrement du marégraphe ({period}), heure par heure, chaque "
                   "saison : les submersions (niveau observé au-dessus de {threshold} m), les "
                   "alertes émises, leur avance, les manquées et les fausses, pour la règle "
                   "physique et pour le modèle appris, sur les mêmes données.",
    "season": "saison", "method": "méthode", "floods": "submersions",
    "alerts": "alertes émises", "warned": "annoncées", "missed": "manquées",
    "false": "fausses alertes", "lead": "avance médiane, h",
    "rule": "règle", "model": "modèle",
    "DJF": "hiver", "MAM": "printemps", "JJA": "été", "SON": "automne",
    "coast_decision": "Décision : {decision}. Raison donnée par la fiche du modèle : {why}",
    "coast_none": "Pas d'évaluation littorale dans ce rapport : fournir l'enregistrement du "
                  "marégraphe avec --coast-data.",
    "need_title": "Besoin d'IA, flux par flux (AFNOR Spec 2314, IA frugale)",
    "need_intro": "Le référentiel de l'IA frugale (AFNOR Spec 2314, juin 2024) demande trois "
                  "choses pour chaque usage d'IA : le besoin, l'alternative moins "
                  "consommatrice, et le cycle de vie complet. Ici le modèle de chaque flux est "
                  "comparé à la méthode sans IA livrée avec lui, sur les mêmes données.",
    "need_need": "Besoin", "need_alt": "Alternative sans IA", "need_energy": "Énergie",
    "need_decision": "Décision",
    "need_flow": "Flux {flow} ({model})",
    "need_need_energy": "détecter une journée de consommation anormale (jour férié, dérive) "
                        "à partir du compteur",
    "need_need_coast": "annoncer une submersion avant que l'eau n'atteigne le quai",
    "need_need_generic": "détecter ce pour quoi le modèle du flux a été entraîné",
    "need_energy_text": "modèle {model_uj} µJ par inférence, {model_wh} par an ; la règle : "
                        "aucune énergie mesurable (une comparaison)",
    "need_energy_unknown": "modèle non mesuré",
    "need_compare": "{metric} : modèle {model}, règle {rule}",
    "need_lc": "Cycle de vie complet : voir la première partie (la carte domine ; l'IA fait "
               "{share} de l'électricité).",
    "annex_title": "Annexe technique",
    "annex_intro": "Les tableaux des ingénieurs (en anglais) : chaque chiffre ci-dessus vient "
                   "de ces lignes et de l'édition JSON.",
    "sources_title": "Références",
    "ref_afnor": "AFNOR Spec 2314, Référentiel général pour l'IA frugale (AFNOR, 2024).",
    "ref_ipmvp": "IPMVP Core Concepts (Efficiency Valuation Organization, 2022).",
    "ref_ashrae": "ASHRAE Guideline 14-2014, Measurement of Energy, Demand, and Water "
                  "Savings (annexe B, incertitude des économies).",
}

TABLES = {"en": EN, "fr": FR}


def strings(lang: str) -> dict[str, str]:
    """The table of ``lang`` (``fr`` or ``en``)."""
    return TABLES[lang]
