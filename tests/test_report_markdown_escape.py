"""Names from the config reach the report as text, never as markup (issue 24).

The Markdown edition kept raw HTML from gateway and flow names (a Markdown renderer passes it
through); the HTML edition escaped it. Both editions are written by the real report code from a
config whose names carry HTML and a table separator.
"""

from __future__ import annotations

import json
from pathlib import Path

from frugalai.config import loads_config
from frugalai.report.build import write_report

GATEWAY = "<b>mairie"
FLOW = "<img>linky|x<script>"


def test_html_and_pipes_in_names_are_escaped_in_both_editions(tmp_path: Path) -> None:
    cfg = loads_config({
        "gateway": {"id": GATEWAY, "state_dir": str(tmp_path / "state")},
        "flow": [{"name": FLOW, "source": "serial:///dev/ttyUSB0?protocol=tic",
                  "model": "energy-anomaly", "window_s": 900}],
        "energy": {"board": "pi-4b"}})
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({
        "created": "2026-01-01", "meter": {"meter": "estimate:pi-4b", "estimated": True},
        "results": [{"model": "energy-anomaly", "backend": "reference", "precision": "fp32",
                     "batch": 1, "uj_per_inference": 60.0, "model_bytes": 2054}]}))
    paths = write_report(cfg, bench, tmp_path / "out")
    md = paths["md"].read_text()
    page = paths["html"].read_text()
    for raw in ("<b>", "<img>", "<script>"):
        assert raw not in md and raw not in page, raw
    # the signable edition escapes names the CommonMark way, the technical annex as entities
    assert "gateway \\<b\\>mairie" in md.splitlines()[0]
    assert "&lt;img&gt;linky&#124;x&lt;script&gt;" in md
    # the flow's rows keep their columns: the '|' of the name did not split a cell
    header = next(ln for ln in md.splitlines() if ln.startswith("| flow | model | backend"))
    row = next(ln for ln in md.splitlines() if ln.startswith("| &lt;img&gt;linky")
               and "reference" in ln)
    assert row.count("|") == header.count("|")
    # the HTML edition shows the names as written, escaped once
    assert "gateway &lt;b&gt;mairie" in page and "&lt;img&gt;linky|x&lt;script&gt;" in page
    assert "&amp;lt;" not in page
