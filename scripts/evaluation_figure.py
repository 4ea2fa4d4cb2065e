#!/usr/bin/env python3
"""The picture of docs/evaluation.md: page 1 of the French PDF report of the demo's run.

Runs what a reader would run (``frugalai demo --json``, then ``frugalai report --lang fr --pdf``
on a Raspberry Pi 4 site config, with the before/after measured on the Dutch demand series when
the shared data is there), turns the PDF's first page into a small PNG with ``pdftoppm``
(poppler-utils) and reduces it to 16 greys so the committed file stays small::

    .venv/bin/python scripts/evaluation_figure.py --data-dir ../shared/data

Writes docs/img/evaluation-fr-page1.png (and prints its size). Needs chromium and pdftoppm
(``scripts/install-sysdeps``) and Pillow (the dev extra).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "evaluation-fr-page1.png"
DUTCH = "energy/dutch_power_demand_1997/power_demand_1997_labeled.csv"


def frugalai(*args: str, cwd: Path) -> str:
    exe = Path(sys.executable).with_name("frugalai")
    cmd = [str(exe) if exe.exists() else "frugalai", *args]
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--width", type=int, default=700, help="PNG width in pixels")
    args = ap.parse_args()
    if shutil.which("pdftoppm") is None:
        print("pdftoppm not found: scripts/install-sysdeps installs poppler-utils",
              file=sys.stderr)
        return 2
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="frugalai-figure-") as tmp:
        work = Path(tmp)
        (work / "run.jsonl").write_text(frugalai("demo", "--json", cwd=work))
        (work / "site.toml").write_text(
            f'[gateway]\nid = "mairie-annexe"\nstate_dir = "{work / "state"}"\n\n[[flow]]\n'
            'name = "linky"\nsource = "serial:///dev/ttyUSB0?protocol=tic"\n'
            'model = "energy-anomaly"\n\n[energy]\nboard = "pi-4b"\n')
        extra: list[str] = []
        dutch = Path(args.data_dir) / DUTCH
        if dutch.is_file():
            extra = ["--impact-data", str(dutch), "--value-col", "value", "--power-unit", "kW",
                     "--baseline", "1997-01/1997-03", "--reporting", "1997-04/1997-12"]
        frugalai("report", "--config", str(work / "site.toml"), "--summary",
                 str(work / "run.jsonl"), "--lang", "fr", "--pdf", "--out", str(work / "out"),
                 *extra, cwd=work)
        subprocess.run(["pdftoppm", "-f", "1", "-l", "1", "-png", "-scale-to-x",
                        str(args.width), "-scale-to-y", "-1", str(work / "out" /
                                                                  "frugality_report.pdf"),
                        str(work / "page")], check=True)
        (page,) = sorted(work.glob("page*.png"))
        image = Image.open(page).convert("L").quantize(16)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        image.save(OUT, optimize=True)
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
