"""Charts drawn on the server as inline SVG: nothing to download, nothing from a CDN.

Each chart is an ``<svg role="img">`` with a ``<title>`` naming it; the numbers themselves are
also in a table next to it (with a caption), which is what a screen reader reads. Colours and
sizes come from presentation attributes and CSS classes, never inline ``style`` (the console's
Content-Security-Policy forbids inline styles).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH = 640
BAR_HEIGHT, GAP = 22, 6
LABEL_WIDTH = 150


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"


def bars(title: str, labels: Sequence[str], values: Sequence[float],
         fmt: Callable[[float], str] = _num, full: float | None = None) -> Markup:
    """Horizontal bars, one per label, scaled to ``full`` (default: the largest value)."""
    top = full or max((v for v in values if math.isfinite(v)), default=0.0) or 1.0
    labels = [str(label).replace("_", " ") for label in labels]
    # room for the longest label (about 7.5 px a character at 13 px), within limits
    label_width = int(min(max(LABEL_WIDTH, 7.5 * max(map(len, labels), default=0) + 12), 280))
    span = WIDTH - label_width - 70
    height = len(labels) * (BAR_HEIGHT + GAP) + GAP
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = GAP + i * (BAR_HEIGHT + GAP)
        width = max(span * max(value, 0) / top, 1) if math.isfinite(value) else 0
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end" class="label">'
            f'{escape(label)}</text><rect x="{label_width}" y="{y}" width="{width:.1f}" '
            f'height="{BAR_HEIGHT}" class="bar"/><text x="{label_width + width + 6:.1f}" '
            f'y="{y + 16}" class="value">{escape(fmt(value)) if math.isfinite(value) else "n/a"}'
            '</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def lines(title: str, x_labels: Sequence[str], series: dict[str, Sequence[float]],
          fmt: Callable[[float], str] = _num) -> Markup:
    """One polyline per series over shared x labels (NaN leaves a gap), y from 0."""
    height, left, bottom, top_pad = 240, 56, 40, 14
    finite = [v for s in series.values() for v in s if math.isfinite(v)]
    top = max(finite, default=1.0) or 1.0
    n = len(x_labels)
    step = (WIDTH - left - 20) / max(n - 1, 1)

    def xy(i: int, v: float) -> str:
        y = height - bottom - (height - bottom - top_pad) * v / top
        return f"{left + i * step:.1f},{y:.1f}"

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{WIDTH - 10}" '
             f'y2="{height - bottom}" class="axis"/>',
             f'<text x="{left - 6}" y="{top_pad + 4}" text-anchor="end" class="label">'
             f'{escape(fmt(top))}</text>',
             f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" class="label">0</text>']
    every = max(1, math.ceil(n / 8))  # at most ~8 x labels stay readable on a phone
    for i, label in enumerate(x_labels):
        if i % every == 0:
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - bottom + 18}" '
                         f'text-anchor="middle" class="label">{escape(label)}</text>')
    for k, (name, values) in enumerate(series.items()):
        runs: list[list[str]] = [[]]
        for i, v in enumerate(values):
            if math.isfinite(v):
                runs[-1].append(xy(i, v))
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline points="{" ".join(run)}" class="line s{k}"/>')
            elif run:
                parts.append(f'<circle cx="{run[0].split(",")[0]}" cy="{run[0].split(",")[1]}" '
                             f'r="3" class="dot s{k}"/>')
        parts.append(f'<text x="{left + 10 + 170 * k}" y="{height - 6}" class="legend s{k}">'
                     f'&#9632; {escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_class(share: float) -> str:
    """CSS class of a cohort-retention cell: ``heat-0`` (0 %) to ``heat-9`` (90 %+)."""
    if not math.isfinite(share):
        return "heat-na"
    return f"heat-{min(int(share * 10), 9)}"


__all__ = ["bars", "lines", "heat_class"]
