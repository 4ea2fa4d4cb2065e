"""Write docs/json-outputs.md: each JSON the CLI prints, with a real example made by running it.

``python scripts/json_outputs_doc.py [--data-dir ../shared/data]`` runs every documented
command as a user would (``python -m frugalai ...`` in a subprocess: stdout is the JSON,
stderr the progress and warnings), on the shared public data and the shipped bundles, in
``build/json-doc``, and writes the page. Long lists are cut to their first items (the page says
where), nothing else is edited. tests/test_json_outputs.py checks that the keys the page shows
are the keys the commands print.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "json-outputs.md"
WORK = Path("build/json-doc")
CUT = 3  # list items kept in an example

NAB = "{data}/generic/nab_subset/ambient_temperature_system_failure.csv"
NAB_LABELS = "{data}/generic/nab_subset/combined_windows.json"
GAUGE = "{data}/coastal/providence_8454000/providence_8454000_hourly_2000_2005.csv.gz"

#: (example id, title, command, what it says); commands run in this order (train first)
EXAMPLES: list[tuple[str, str, str, str]] = [
    ("models-list", "`frugalai models list --json`", "models list --json",
     "A list, one object per bundle a name can reach (installed, then shipped): `name`, "
     "`version` (`<card version>@<card sha256 prefix>`), `task`, `bytes`, `path`, and "
     "`backends`: each backend/precision with its `file`, `bytes`, `unavailable` (why it cannot "
     "run here, or null) and, for int8, `int8_decision_agreement` (the share of held-out rows "
     "where int8 takes the fp32 decision, measured on that backend) and `refused_by_default`."),
    ("train-anomaly", "`frugalai train anomaly`",
     f"train anomaly --data {NAB} --quantity temperature --until '2013-12-01 00:00' "
     f"--out {WORK}/ambient",
     "The run metadata (below) of the bundle written, then `out`, `rows`, `metrics` (fp32, when "
     "the data carry labels), `flow_defaults` and `sizes_bytes`. Progress goes to stderr."),
    ("train-coastal", "`frugalai train coastal`",
     f"train coastal --data {GAUGE} --tz -05:00 --threshold 1.987 --out {WORK}/gauge",
     "The run metadata, then `out`, `decision_default` and the validation figures of the model "
     "(fp32, int8) and of the rule, per hour and per episode."),
    ("evaluate-anomaly", "`frugalai evaluate` (anomaly bundle, labelled windows)",
     f"evaluate {WORK}/ambient --data {NAB} --labels {NAB_LABELS} --start '2013-12-01 00:00'",
     "The run metadata, `runtime` (the backend's details), then window recall, alarms outside the "
     "windows per month, AUC, lead times, alarm times."),
    ("evaluate-coastal", "`frugalai evaluate` (coastal bundle)",
     f"evaluate coastal-submersion --data {GAUGE} --tz -05:00 --start 2005-01-01",
     "The run metadata, `runtime`, then `rows`, `from_utc`/`to_utc` and, for the model and the "
     "rule, hourly and per-episode precision/recall/F1 and lead time."),
    ("evaluate-reference", "`frugalai evaluate --data-dir` (a shipped bundle on its own data)",
     "evaluate energy-anomaly --data-dir {data} --backend onnx --precision int8",
     "The run metadata, `runtime`, then `metrics` recomputed from the reference data beside "
     "the `card_metrics` the card claims for that precision."),
    ("score-coastal", "`frugalai score --json`",
     f"score coastal-submersion --data {GAUGE} --tz -05:00 --start 2005-01-01 "
     f"--out {WORK}/scores.csv --json",
     "The run metadata, then the CSV written (`out`, its `columns`), how many windows were "
     "read and scored, the `decision` used and the flood announcements (`raised`, "
     "`raised_utc`)."),
    ("tide", "`frugalai tide --json`",
     "tide coastal-submersion --start 2006-01-01 --end 2006-01-02 --json",
     "The run metadata (no backend: the tide is the card's harmonics), `card_time_zone` (the "
     "zone the card says the gauge's record was in), `datum`, `tide_source`, `step_s` and "
     "`points`, each `time_utc` and `tide_m`."),
]

CSV_EXAMPLES = [("score-coastal", f"{WORK}/scores.csv")]


def run(args: str, data: str) -> tuple[Any, str]:
    cmd = [sys.executable, "-m", "frugalai", *shlex.split(args.format(data=data))]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {res.returncode}\n{res.stderr}")
    return json.loads(res.stdout), res.stderr


def cut(value: Any, where: str, notes: list[str]) -> Any:
    """Lists longer than CUT items cut to their first CUT (noted), recursively; paths inside
    the checkout shown from its root."""
    if isinstance(value, str) and value.startswith(str(ROOT) + "/"):
        return "./" + value[len(str(ROOT)) + 1:]  # this checkout's path: the page is shared
    if isinstance(value, dict):
        return {k: cut(v, f"{where}.{k}", notes) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) > CUT and not where.endswith(".columns"):
            note = f"`{where}`: first {CUT} of {len(value)}"
            if note not in notes:
                notes.append(note)
            value = value[:CUT]
        return [cut(v, f"{where}[]", notes) for v in value]
    return value


def page(data: str) -> str:
    from frugalai.learn.run_meta import KEYS

    out = [
        "# JSON outputs", "",
        "Every command that prints figures prints JSON on stdout (progress and warnings on "
        "stderr), so a script can keep the figures with how they were made. This page is "
        "generated by `python scripts/json_outputs_doc.py --data-dir ../shared/data`, which "
        "runs each command below on the shared public data; tests/test_json_outputs.py checks "
        "that each command prints the keys shown here. Long lists are cut to their first "
        f"{CUT} items (noted under the example) and paths inside the checkout are shown from "
        "its root (`./models/...`).", "",
        "## The run metadata (first keys of every JSON but `models list`)", "",
        "| key | what |", "|---|---|",
        "| `command` | the command that made it |",
        "| `bundle`, `version` | the bundle's name and `<card version>@<first 12 hex of the card's "
        "sha256>` (the card hashes every file) |",
        "| `backend`, `precision` | what ran the net (`train`: the backends and precisions "
        "written; `tide`: null) |",
        "| `data` | `{file, sha256}` of the data file read (no path), or null |",
        "| `period` | `{first_utc, last_utc}`: the first and last time used |",
        "| `zone` | the zone naive times were read in |",
        "| `origins` | where settings came from: `{\"zone\": \"--tz\"}`, the card, a default |",
        "| `warnings` | every warning of the run (also one line each on stderr); empty when "
        "none |", "",
        f"In this order: {', '.join(f'`{k}`' for k in KEYS)}. Built by "
        "`frugalai.learn.run_meta.RunMeta`.", ""]
    for ident, title, args, about in EXAMPLES:
        doc, _ = run(args, data)
        notes: list[str] = []
        shown = cut(doc, ident, notes)
        out += [f"## {title}", "", f"<!-- example: {ident} -->", about, "", "```sh",
                f"frugalai {args.format(data='../shared/data')}", "```", "", "```json",
                json.dumps(shown, indent=2), "```", ""]
        if notes:
            out += ["Cut: " + "; ".join(notes) + ".", ""]
        for csv_id, path in CSV_EXAMPLES:
            if csv_id == ident:
                lines = (ROOT / path).read_text().splitlines()
                scored = [line for line in lines[1:] if line.split(",")[4]]
                out += ["The CSV it writes (the header, then the first scored rows): `class` is "
                        "the decision taken (`--decision`, else the card's default), "
                        "`model_class` and `model_probability` the net's, `rule_class` the "
                        "physical rule's, `tide_m` the predicted tide and `surge_m` the level "
                        "minus it; an anomaly bundle writes `time_utc,value,score,alarm_active,"
                        "raised,rule_alarm` (`rule_alarm`: the card's fixed thresholds, empty "
                        "when it has none).", "", "```", lines[0], *scored[:CUT], "```", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default="../shared/data")
    args = ap.parse_args(argv)
    (ROOT / WORK).mkdir(parents=True, exist_ok=True)
    DOC.write_text(page(str(Path(args.data_dir).resolve())))
    print(f"{DOC}: written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
