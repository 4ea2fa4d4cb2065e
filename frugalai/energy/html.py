"""Markdown (the subset the reports write) to one self-contained HTML page, charts inline.

Used by the frugality report (:mod:`frugalai.energy.report`) and the benchmark's own page
(:mod:`frugalai.energy.bench`); on its own so that neither of those imports the other.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Optional

__all__ = ["STYLE", "to_html"]


def _inline(text: str) -> str:
    # the Markdown may carry entities (names escaped by the report): read them back, then
    # escape once, so that "&lt;b&gt;" shows as "<b>", never as markup nor as "&lt;b&gt;"
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>",
                 html.escape(html.unescape(text), quote=False))
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


_NUMBER = re.compile(r"^\**[<>~]?-?[\d.,]+(e[-+]?\d+)?\s*(x|%| %)?\**$")


def _cell(text: str) -> str:
    """A table cell; numbers right-aligned, text left-aligned."""
    cls = ' class="n"' if _NUMBER.match(text) else ""
    return f"<td{cls}>{_inline(text)}</td>"


STYLE = ("body{font-family:sans-serif;max-width:62em;margin:1.5em auto;padding:0 1em;"
         "color:#222;line-height:1.4}.scroll{overflow-x:auto;max-width:100%}"
         "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;"
         "padding:.25em .5em;text-align:left;vertical-align:top}td.n{text-align:right;"
         "white-space:nowrap}th{background:#eee}img,svg{max-width:100%;height:auto}"
         "figure{margin:1em 0}figcaption{font-size:.85em;color:#555}")


def to_html(markdown: str, charts: Optional[dict[str, str]] = None,
            images: Optional[list[Path]] = None, title: str = "frugalai report") -> str:
    """A self-contained page: the Markdown's headings, paragraphs, lists and tables; each
    ``<!-- chart: name -->`` line replaced by ``charts[name]`` (inline SVG); PNGs embedded."""
    charts = charts or {}
    body: list[str] = []
    table: list[list[str]] = []
    items: list[str] = []

    def flush() -> None:
        if items:
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()
        if not table:
            return
        head, rows = table[0], table[2:]
        body.append('<div class="scroll"><table><tr>'
                    + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"
                    + "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>"
                              for r in rows) + "</table></div>")
        table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        chart = re.fullmatch(r"<!-- chart: (\S+) -->", line.strip())
        if chart:
            if chart.group(1) in charts:
                body.append(f"<figure>{charts[chart.group(1)]}</figure>")
        elif line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    for img in images or []:
        if img.is_file():
            data = base64.b64encode(img.read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(img.name)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(img.name)}</figcaption></figure>")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
