"""Markdown (the subset the reports write) to one self-contained HTML page, charts inline.

Used by the frugality report (:mod:`frugalai.report.build`) and the benchmark's own page
(:mod:`frugalai.energy.bench`); on its own so that neither of those imports the other.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Optional

__all__ = ["STYLE", "to_html"]


#: a backslash-escaped character of the Markdown (CommonMark), once HTML-escaped
_ESCAPED = re.compile(r"\\(&lt;|&gt;|&amp;|[\\`*_|\[\]])")


def _inline(text: str) -> str:
    """Bold and code spans; a backslash-escaped character stays that character, as text, and
    so does an entity (names the technical annex escapes as entities): both are read back,
    then escaped once, so "&lt;b&gt;" and "\\<b\\>" show as "<b>", never as markup.

    >>> _inline("**a** \\\\<b\\\\> \\\\*x\\\\* &lt;i&gt;")
    '<strong>a</strong> &lt;b&gt; *x* &lt;i&gt;'
    """
    out = html.escape(html.unescape(text), quote=False)
    held: list[str] = []

    def hold(m: re.Match[str]) -> str:
        held.append(m.group(1))
        return f"\x00{len(held) - 1}\x00"

    out = _ESCAPED.sub(hold, out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"`(.+?)`", r"<code>\1</code>", out)
    return re.sub("\x00(\\d+)\x00", lambda m: held[int(m.group(1))], out)


def _cells(line: str) -> list[str]:
    """The cells of a table row; an escaped pipe (``\\|``) is part of a cell."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


_NUMBER = re.compile(r"^\**[<>~]? ?-?\d[\d.,\u202f ]*(e[-+]?\d+)?\s*(x|%|€)?\**$")


def _cell(text: str) -> str:
    """A table cell; numbers right-aligned, text left-aligned."""
    cls = ' class="n"' if _NUMBER.match(text) else ""
    return f"<td{cls}>{_inline(text)}</td>"


STYLE = ("body{font-family:sans-serif;max-width:62em;margin:1.5em auto;padding:0 1em;"
         "color:#222;line-height:1.4}.scroll{overflow-x:auto;max-width:100%}"
         "table{border-collapse:collapse;margin:1em 0;font-size:.9em}td,th{border:1px solid #ccc;"
         "padding:.25em .5em;text-align:left;vertical-align:top}td.n{text-align:right;"
         "white-space:nowrap}th{background:#eee}img,svg{max-width:100%;height:auto}"
         "figure{margin:1em 0}figcaption{font-size:.85em;color:#555}"
         "h1,h2,h3{break-after:avoid}tr,figure{break-inside:avoid}"
         "@page{size:A4;margin:14mm 12mm}"
         "@media print{body{max-width:none;margin:0;padding:0;font-size:10.5pt}"
         ".pagebreak{break-after:page}.scroll{overflow:visible}"
         "table{font-size:8.5pt}}")


def to_html(markdown: str, charts: Optional[dict[str, str]] = None,
            images: Optional[list[Path]] = None, title: str = "frugalai report",
            lang: str = "en") -> str:
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
            table.append(_cells(line))
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
        elif line.startswith("### "):
            body.append(f"<h3>{_inline(line[4:])}</h3>")
        elif line.strip() == "<!-- pagebreak -->":
            body.append('<div class="pagebreak"></div>')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    for img in images or []:
        if img.is_file():
            data = base64.b64encode(img.read_bytes()).decode()
            body.append(f'<figure><img alt="{html.escape(img.name)}" '
                        f'src="data:image/png;base64,{data}"><figcaption>'
                        f"{html.escape(img.name)}</figcaption></figure>")
    return (f"<!doctype html><html lang=\"{html.escape(lang)}\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")
