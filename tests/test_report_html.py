"""The HTML report in a real headless Chromium (issue 18): a screenshot is taken, the charts are
there and drawn, and nothing is cut off.

Chromium is installed by ``scripts/install-sysdeps`` (Debian package ``chromium``), which
``make test`` runs first. The page is measured by the browser itself: a copy of the report
with a probe script appended is loaded with ``--dump-dom``; the probe writes the viewport
width, the document's scroll width, each chart's box and each table's width against its
container into an attribute of ``<body>``. The screenshot is read back and the charts' boxes
must hold the bars' colours, not a blank area.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from frugalai.config import loads_config
from frugalai.report.build import write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1000, 6000  # tall enough for the edition and the annex charts
BAR_BLUE = (0x4C, 0x72, 0xB0)  # svgchart.COLORS[0]

PROBE = """<script>
(function () {
  var r = function (e) { var b = e.getBoundingClientRect();
    return {left: b.left, top: b.top + window.scrollY, right: b.right, width: b.width,
            height: b.height}; };
  var out = {inner: window.innerWidth, scroll: document.documentElement.scrollWidth,
    svgs: Array.prototype.map.call(document.querySelectorAll('svg'), function (s) {
      return Object.assign(r(s), {bars: s.querySelectorAll('rect').length - 1}); }),
    tables: Array.prototype.map.call(document.querySelectorAll('table'), function (t) {
      return {width: t.scrollWidth, room: t.parentElement.clientWidth}; })};
  document.body.setAttribute('data-probe', JSON.stringify(out));
})();
</script></body>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium not installed: scripts/install-sysdeps installs it (make test "
                    "does)")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}",
           f"--window-size={WIDTH},{HEIGHT}", "--virtual-time-budget=3000", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _report(tmp_path: Path) -> Path:
    cfg = loads_config({
        "gateway": {"id": "mairie", "state_dir": str(tmp_path / "state")},
        "flow": [{"name": "linky", "source": "serial:///dev/ttyUSB0?protocol=tic",
                  "model": "energy-anomaly", "window_s": 900}],
        "energy": {"board": "pi-4b"}})
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({
        "created": "2026-01-01", "meter": {"meter": "estimate:pi-4b", "estimated": True},
        "results": [{"model": "energy-anomaly", "backend": "reference", "precision": "fp32",
                     "batch": 1, "uj_per_inference": 60.0, "model_bytes": 2054},
                    {"model": "encode-binary", "backend": "python", "precision": "-",
                     "batch": 1, "uj_per_inference": 10.0, "model_bytes": 0}]}))
    summary = tmp_path / "demo.jsonl"
    summary.write_text(json.dumps({"kind": "alarm", "ts": 1.0}) + "\n" + json.dumps(
        {"summary": {"simulated_hours": 48, "events": 8, "raw_bytes_read": 437_000,
                     "upstream_bytes_binary": 88, "alarm_windows": [[900, 2400.0, 270.0]],
                     "flows": {"linky": {"events": 8, "bytes_read": 437_000}}}}) + "\n")
    paths = write_report(cfg, bench, tmp_path / "out", summary)
    return paths["html"]


def _probe(tmp_path: Path, page: Path) -> dict[str, Any]:
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("</body>", PROBE, 1))
    dom = _chromium(tmp_path, "--dump-dom", probed.as_uri()).stdout
    found = re.search(r"data-probe=\"([^\"]*)\"", dom)
    assert found, dom[:2000]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_report_is_self_contained(tmp_path: Path) -> None:
    text = _report(tmp_path).read_text()
    assert text.count("<svg") == 5  # the life cycle, the gateway, two scenarios, the bench
    for external in ("src=\"http", "href=\"http", "<link", "<script", "url("):
        assert external not in text, external


def test_report_in_chromium_charts_drawn_nothing_cut_off(tmp_path: Path) -> None:
    from PIL import Image  # Pillow: in the dev extra (reads the screenshot back)

    page = _report(tmp_path)
    probe = _probe(tmp_path, page)
    assert probe["inner"] == WIDTH
    assert probe["scroll"] <= probe["inner"], probe  # no horizontal scrolling: nothing cut off
    assert len(probe["svgs"]) == 5
    for svg in probe["svgs"]:
        assert svg["width"] > 300 and svg["height"] > 80, svg
        assert svg["left"] >= 0 and svg["right"] <= probe["inner"], svg
        assert svg["bars"] >= 2, svg
    for table in probe["tables"]:
        assert table["width"] <= table["room"], table  # no table hidden behind a scrollbar
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    image = Image.open(shot).convert("RGB")
    assert image.size == (WIDTH, HEIGHT)
    for svg in probe["svgs"]:
        top = int(svg["top"])
        if top + svg["height"] > HEIGHT:
            continue  # below the screenshot's fold; its box was checked above
        box = image.crop((int(svg["left"]), top, int(svg["right"]), int(top + svg["height"])))
        colours = box.getcolors(maxcolors=1 << 16) or []
        non_white = sum(n for n, c in colours if c != (255, 255, 255))
        assert non_white > 0.02 * box.size[0] * box.size[1], svg  # not a blank area
        assert any(c == BAR_BLUE for _, c in colours), svg  # the first bar is drawn
    drawn = [s for s in probe["svgs"] if s["top"] + s["height"] <= HEIGHT]
    assert len(drawn) >= 2, probe["svgs"]


def test_bench_page_in_chromium(tmp_path: Path) -> None:
    from frugalai.energy.bench import run_bench

    run_bench(tmp_path, "estimate:pi-4b", quick=True, chart=False,
              specs=[{"kind": "encode"}, {"kind": "profile", "batch": 1}])
    probe = _probe(tmp_path, tmp_path / "energy_per_inference.html")
    assert len(probe["svgs"]) == 1 and probe["svgs"][0]["bars"] == 2
    assert probe["scroll"] <= probe["inner"], probe
