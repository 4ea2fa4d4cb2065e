"""Horizontal bar charts as inline SVG: the report's pictures without matplotlib.

A chart is a string to paste into an HTML page. It scales to its container (``viewBox``, width
100 %), so it is never wider than the page; labels sit in a left column, values at the bar's
end. Log scale for figures that span orders of magnitude (a board's idle joules beside an
inference's), with the scale named in the title by the caller.
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable, Optional

WIDTH = 720
ROW = 26
CHAR_W = 7.0  # mean glyph width of the 13 px sans-serif labels
MAX_LABEL_W = 340
VALUE_W = 90
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.3g}"


TITLE_CHARS = int(WIDTH / 8.0)  # bold 13 px glyphs a line holds, with a margin


def wrap(title: str, width: int = TITLE_CHARS) -> list[str]:
    """The title's lines, cut between words, so no title runs off the chart.

    >>> wrap("a " * 5, 4)
    ['a a', 'a a', 'a']
    """
    lines: list[str] = []
    for word in title.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines or [""]


def hbar(labels: list[str], values: list[float], unit: str, title: str,
         log: bool = False, chart_id: str = "",
         fmt_value: Optional[Callable[[float], str]] = None, min_px: float = 0.0) -> str:
    """One bar per label; ``log`` for a log10 axis (values <= 0 drawn as empty);
    ``fmt_value`` writes each bar's value (the report's table formatting, so the chart's
    numbers are the table's); ``min_px`` keeps a positive value visible as a sliver on a
    linear axis (its number is written beside it either way)."""
    show = fmt_value or _fmt
    title_lines = wrap(title)
    top = 34 + 17 * (len(title_lines) - 1)
    height = top + ROW * len(labels) + 28
    label_w = min(MAX_LABEL_W, max(120.0, CHAR_W * max((len(t) for t in labels), default=0) + 12))
    fits = int((label_w - 12) / CHAR_W)
    plot_w = WIDTH - label_w - VALUE_W
    positive = [v for v in values if v > 0]
    if log and positive:
        lo = math.floor(math.log10(min(positive)))
        hi = math.ceil(math.log10(max(positive)))
        hi = hi if hi > lo else lo + 1

        def scale(v: float) -> float:
            return 0.0 if v <= 0 else (math.log10(v) - lo + 0.3) / (hi - lo + 0.3) * plot_w
    else:
        peak = max(positive) if positive else 1.0

        def scale(v: float) -> float:
            return max(v, 0.0) / peak * plot_w
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
           f'width="100%" role="img" aria-label="{escape(title)}" class="chart"'
           + (f' id="{escape(chart_id)}"' if chart_id else "") + ' style="max-width:'
           f'{WIDTH}px;font-family:sans-serif;font-size:13px">',
           f"<title>{escape(title)}</title>",
           f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
           f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-weight="bold">'
           + "".join(f'<tspan x="{WIDTH / 2}" dy="{0 if i == 0 else 17}">{escape(line)}</tspan>'
                     for i, line in enumerate(title_lines)) + "</text>"]
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * ROW
        w = scale(value)
        if value > 0 and not log:
            w = max(w, min_px)
        short = label if len(label) <= fits else label[:fits - 1] + "…"
        out.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
                   f"{escape(short)}</text>")
        out.append(f'<rect x="{label_w}" y="{y + 4}" width="{max(w, 0.0):.1f}" height="{ROW - 8}"'
                   f' fill="{COLORS[i % len(COLORS)]}"><title>{escape(label)}: {escape(show(value))} '
                   f"{escape(unit)}</title></rect>")
        out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 17}" class="value">'
                   f"{escape(show(value))}</text>")
    axis_y = top + ROW * len(labels) + 4
    out.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" '
               f'stroke="#999"/>')
    out.append(f'<text x="{label_w + plot_w / 2}" y="{axis_y + 18}" text-anchor="middle" '
               f'fill="#555">{escape(unit)}{" (log scale)" if log else ""}</text>')
    out.append("</svg>")
    return "".join(out)
