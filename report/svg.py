"""Small inline SVG charts for the segment report: horizontal bars, lines over runs, columns, intervals.

Each function takes values and labels that are already formatted and returns one `<svg>` element as a
string: no JavaScript, no external fonts or styles (the text inherits the page's system font), so the
page opens offline from a file. Every text is escaped here; coordinates are rounded to one decimal so
that the same input gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Tableau 10: distinguishable, print- and colour-blind-friendlier than a rainbow.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#17becf",
)
FALLBACK_COLOR = "#b8b8b8"  # fallback segments (not profiled, too little history): grey, listed last
AXIS_COLOR = "#888"
GRID_COLOR = "#e3e3e3"
TEXT_COLOR = "#222"
FONT_SIZE = 12
CHAR_WIDTH = 6.6  # average width of a character at FONT_SIZE, to size label columns
MAX_LABEL_CHARS = 34


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the value as shown beside the bar, e.g. "379 (18.7%)"
    color: str = PALETTE[0]


@dataclass(frozen=True)
class Series:
    label: str
    values: tuple[float | None, ...]  # one per x position; None: no point
    color: str
    texts: tuple[str, ...] = ()  # the values as shown in tooltips


@dataclass(frozen=True)
class Interval:
    label: str
    estimate: float | None
    low: float | None
    high: float | None
    text: str  # the estimate and interval as shown, or why there is none
    color: str = PALETTE[0]


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _n(x: float) -> str:
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _short(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "\u2026"


def _label_width(labels: Sequence[str], limit: int = MAX_LABEL_CHARS) -> float:
    longest = max((len(_short(label, limit)) for label in labels), default=4)
    return min(limit, longest) * CHAR_WIDTH + 12


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = FONT_SIZE) -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" text-anchor="{anchor}" fill="{TEXT_COLOR}">'
        f"{escape(text)}</text>"
    )


def _svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """0 and round steps (1, 2, 2.5, 5 x 10^k) up to at least `maximum`."""
    if not maximum or maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(math.ceil(maximum / step - 1e-9) + 1)]


def hbar_chart(bars: Sequence[Bar], *, title: str, width: float = 720) -> str:
    """One horizontal bar per item, its label on the left and its text on the right."""
    row, top = 22, 6
    label_w = _label_width([b.label for b in bars])
    text_w = max((len(b.text) for b in bars), default=4) * CHAR_WIDTH + 12
    plot_w = max(80.0, width - label_w - text_w)
    peak = max((b.value for b in bars), default=0) or 1
    body = []
    for i, b in enumerate(bars):
        y = top + i * row
        w = max(0.0, b.value) / peak * plot_w
        body.append(
            f"<g><title>{escape(b.label)}: {escape(b.text)}</title>"
            + _text(label_w - 8, y + 15, _short(b.label), anchor="end")
            + f'<rect x="{_n(label_w)}" y="{_n(y + 3)}" width="{_n(w)}" height="{row - 6}" fill="{b.color}"/>'
            + _text(label_w + w + 6, y + 15, b.text)
            + "</g>"
        )
    return _svg(width, top * 2 + row * len(bars), title, body)


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    y_format: Callable[[float], str] = lambda v: f"{v:,.0f}",
    width: float = 720,
    height: float = 240,
) -> str:
    """Lines over evenly spaced x positions (one per run), y from 0, a legend on the right."""
    legend_w = _label_width([s.label for s in series], 28) + 22
    left, right, top, bottom = 52.0, legend_w + 12, 10.0, 34.0
    height = max(height, top + 16 * len(series) + 10)
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(max(values, default=0))
    y_max = ticks[-1] or 1
    n = len(x_labels)

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else i * plot_w / (n - 1))

    def y_at(v: float) -> float:
        return top + plot_h - v / y_max * plot_h

    body = []
    for t in ticks:
        y = y_at(t)
        body.append(f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID_COLOR}"/>')
        body.append(_text(left - 6, y + 4, y_format(t), anchor="end", size=11))
    room = max(2, int(plot_w // (max((len(x) for x in x_labels), default=4) * 6.2 + 14)))
    every = max(1, math.ceil(n / room))
    for i, label in enumerate(x_labels):
        if (n - 1 - i) % every == 0:  # the latest run always labelled
            body.append(_text(x_at(i), top + plot_h + 16, label, anchor="middle", size=11))
    body.append(
        f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(top + plot_h)}" y2="{_n(top + plot_h)}" '
        f'stroke="{AXIS_COLOR}"/>'
    )
    for s in series:
        points = [(x_at(i), y_at(v), i) for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{_n(x)},{_n(y)}" for x, y, _ in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"/>')
        for x, y, i in points:
            shown = s.texts[i] if i < len(s.texts) else y_format(s.values[i] or 0)
            body.append(
                f'<circle cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{s.color}">'
                f"<title>{escape(s.label)}, {escape(x_labels[i])}: {escape(shown)}</title></circle>"
            )
    lx = width - legend_w
    for j, s in enumerate(series):
        y = top + 4 + j * 16
        body.append(
            f"<g><title>{escape(s.label)}</title>"
            f'<rect x="{_n(lx)}" y="{_n(y)}" width="12" height="3" fill="{s.color}"/>'
            + _text(lx + 18, y + 6, _short(s.label, 28), size=11)
            + "</g>"
        )
    return _svg(width, height, title, body)


def column_chart(bars: Sequence[Bar], *, title: str, width: float = 720, height: float = 200, x_title: str = "") -> str:
    """Vertical bars (a histogram): labels under the bars, values above them."""
    left, top, bottom = 8.0, 18.0, 40.0 if x_title else 24.0
    plot_w, plot_h = width - 2 * left, height - top - bottom
    peak = max((b.value for b in bars), default=0) or 1
    slot = plot_w / max(1, len(bars))
    body = []
    for i, b in enumerate(bars):
        h = max(0.0, b.value) / peak * plot_h
        x = left + i * slot
        body.append(
            f"<g><title>{escape(b.label)}: {escape(b.text)}</title>"
            f'<rect x="{_n(x + 2)}" y="{_n(top + plot_h - h)}" width="{_n(slot - 4)}" height="{_n(h)}" '
            f'fill="{b.color}"/>'
            + _text(x + slot / 2, top + plot_h - h - 4, b.text, anchor="middle", size=11)
            + _text(x + slot / 2, top + plot_h + 15, b.label, anchor="middle", size=11)
            + "</g>"
        )
    body.append(
        f'<line x1="{_n(left)}" x2="{_n(left + plot_w)}" y1="{_n(top + plot_h)}" y2="{_n(top + plot_h)}" '
        f'stroke="{AXIS_COLOR}"/>'
    )
    if x_title:
        body.append(_text(width / 2, height - 6, x_title, anchor="middle", size=11))
    return _svg(width, height, title, body)


def interval_chart(
    items: Sequence[Interval],
    *,
    title: str,
    x_format: Callable[[float], str] = lambda v: f"{v:+,.1f}",
    width: float = 720,
) -> str:
    """A forest plot: per item its estimate (dot) and 95% interval (line) around a zero line; an item
    without an estimate shows its text only."""
    row, top, bottom = 24, 8, 24
    label_w = _label_width([i.label for i in items])
    text_w = min(300.0, max((len(i.text) for i in items), default=4) * CHAR_WIDTH + 12)
    plot_w = max(120.0, width - label_w - text_w)
    bounds = [v for i in items for v in (i.low, i.high, i.estimate) if v is not None and math.isfinite(v)]
    low, high = min([0.0, *bounds]), max([0.0, *bounds])
    pad = (high - low) * 0.05 or 1.0
    low, high = low - pad, high + pad

    def x_at(v: float) -> float:
        return label_w + (v - low) / (high - low) * plot_w

    height = top + row * len(items) + bottom
    body = [
        f'<line x1="{_n(x_at(0))}" x2="{_n(x_at(0))}" y1="{top}" y2="{_n(height - bottom)}" '
        f'stroke="{AXIS_COLOR}" stroke-dasharray="3,3"/>',
        _text(x_at(0), height - 8, x_format(0), anchor="middle", size=11),
        _text(label_w, height - 8, x_format(low), anchor="start", size=11),
        _text(label_w + plot_w, height - 8, x_format(high), anchor="end", size=11),
    ]
    for k, item in enumerate(items):
        y = top + k * row + row / 2
        parts = [_text(label_w - 8, y + 4, _short(item.label), anchor="end")]
        if item.low is not None and item.high is not None:
            parts.append(
                f'<line x1="{_n(x_at(item.low))}" x2="{_n(x_at(item.high))}" y1="{_n(y)}" y2="{_n(y)}" '
                f'stroke="{item.color}" stroke-width="3"/>'
            )
        if item.estimate is not None:
            parts.append(f'<circle cx="{_n(x_at(item.estimate))}" cy="{_n(y)}" r="5" fill="{item.color}"/>')
        parts.append(_text(label_w + plot_w + 8, y + 4, item.text, size=11))
        body.append(f"<g><title>{escape(item.label)}: {escape(item.text)}</title>{''.join(parts)}</g>")
    return _svg(width, height, title, body)
