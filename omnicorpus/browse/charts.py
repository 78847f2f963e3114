"""Charts as inline SVG, drawn on the server: horizontal stacked bars with a legend and hover titles.

No script and nothing fetched: the page's CSP forbids both. Colours come from CSS classes (`style.css`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from omnicorpus.browse.markup import Markup, html, join

ROW_HEIGHT = 22  # px per bar
LABEL_WIDTH = 200  # px for the row labels on the left
BAR_WIDTH = 300  # px for the longest bar
VALUE_WIDTH = 100  # px for the number on the right of each bar
LEGEND_HEIGHT = 22


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str  # e.g. "kept", "rejected": the fill colour in style.css


KEPT_REJECTED = (Series("kept", "kept"), Series("rejected", "rejected"))


def total(values: list[int]) -> str:
    return f"{sum(values):,}"


def bar_chart(title: str, rows: list[tuple[str, list[int]]], series: tuple[Series, ...] = KEPT_REJECTED,
              value_text: Callable[[list[int]], str] = total) -> Markup:
    """One horizontal bar per row, its segments stacked in `series` order; empty rows still get a line.

    `value_text` writes the number at the end of each bar (default: the row's total).
    """
    largest = max((sum(values) for _, values in rows), default=0) or 1
    height = LEGEND_HEIGHT + ROW_HEIGHT * max(len(rows), 1) + 4
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    parts: list[Markup] = []
    for index, one in enumerate(series):
        x = LABEL_WIDTH + index * 110
        parts.append(html('<rect class="{}" x="{}" y="4" width="12" height="12"/>'
                          '<text class="legend" x="{}" y="15">{}</text>', one.css_class, x, x + 16, one.name))
    for row_index, (label, values) in enumerate(rows):
        y = LEGEND_HEIGHT + row_index * ROW_HEIGHT
        shown = label if len(label) <= 30 else label[:29] + "…"
        parts.append(html('<text class="label" x="{}" y="{}" text-anchor="end"><title>{}</title>{}</text>',
                          LABEL_WIDTH - 6, y + 15, label, shown))
        x = float(LABEL_WIDTH)
        for one, value in zip(series, values):
            if value <= 0:
                continue
            bar = BAR_WIDTH * value / largest
            parts.append(html('<rect class="bar {}" x="{:.1f}" y="{}" width="{:.1f}" height="{}">'
                              '<title>{}: {} {}</title></rect>',
                              one.css_class, x, y + 3, max(bar, 1.0), ROW_HEIGHT - 6, label, value, one.name))
            x += bar
        parts.append(html('<text class="value" x="{:.1f}" y="{}">{}</text>', x + 6, y + 15, value_text(values)))
    if not rows:
        parts.append(html('<text class="label" x="{}" y="{}">no documents</text>', LABEL_WIDTH, LEGEND_HEIGHT + 15))
    return html('<figure class="chart"><figcaption>{}</figcaption>'
                '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{}" width="{}" height="{}" '
                'viewBox="0 0 {} {}">{}</svg></figure>',
                title, title, width, height, width, height, join(parts))
