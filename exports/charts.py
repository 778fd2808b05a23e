"""Static inline SVG charts for report.html: no script, no font or image from anywhere else.

Each function returns one ``<svg>`` element as a string. A value of ``None`` is a cell that
cannot be shown; when it was withheld under the disclosure rules the chart marks it
"onderdrukt" (a dashed, empty box) instead of drawing a bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

OWN = "#0f6e8c"
PEER = "#e8913a"
POPULATION = "#9aa5b1"
GRID = "#e3e7eb"
AXIS = "#7b8794"
TEXT = "#1f2933"
MUTED = "#616e7c"
SERIES_COLOURS = ("#0f6e8c", "#e8913a", "#6a4c93", "#2a9d8f", "#c0392b", "#7b8794", "#b8860b")
FONT = "font-family=\"'Segoe UI', Helvetica, Arial, sans-serif\""


@dataclass
class Series:
    name: str
    colour: str
    values: Sequence[float | None]
    suppressed: Sequence[bool] = field(default_factory=list)

    def is_suppressed(self, i: int) -> bool:
        return bool(self.suppressed) and i < len(self.suppressed) and bool(self.suppressed[i])


def _t(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 12,
    anchor: str = "start",
    colour: str = TEXT,
    weight: str = "normal",
    extra: str = "",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{colour}" font-weight="{weight}" {extra}>{escape(text)}</text>'
    )


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _nice_max(value: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^n) >= value."""
    if value <= 0:
        return 1.0
    base = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * base * (1 + 1e-9):
            return step * base
    return value


def _legend(series: Sequence[Series], x: float, y: float, suppressed_note: bool) -> list[str]:
    out = []
    for s in series:
        out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{s.colour}"/>')
        out.append(_t(x + 17, y, s.name))
        x += 30 + 6.6 * len(s.name)
    if suppressed_note:
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="none" '
            f'stroke="{AXIS}" stroke-dasharray="3 2"/>'
        )
        out.append(_t(x + 17, y, "onderdrukt (te weinig personen)", colour=MUTED))
    return out


def bar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    *,
    title: str,
    width: int = 640,
    height: int = 260,
    y_max: float | None = None,
) -> str:
    """Vertical bars, grouped per category, with the value above each bar."""
    top, bottom, left, right = 34, 40, 12, 12
    plot_h = height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    vmax = y_max if y_max is not None else _nice_max(max(values, default=0) * 1.08)
    group_w = (width - left - right) / max(len(categories), 1)
    bar_w = min(46.0, (group_w - 14) / max(len(series), 1))
    any_suppressed = any(s.is_suppressed(i) for s in series for i in range(len(categories)))
    body = _legend(series, left, 16, any_suppressed)
    base = top + plot_h
    body.append(f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="{AXIS}"/>')
    for i, category in enumerate(categories):
        gx = left + i * group_w + (group_w - bar_w * len(series)) / 2
        for j, s in enumerate(series):
            x = gx + j * bar_w
            value = s.values[i] if i < len(s.values) else None
            if value is None:
                if s.is_suppressed(i):
                    body.append(
                        f'<rect x="{x + 2:.1f}" y="{base - 44:.1f}" width="{bar_w - 4:.1f}" '
                        f'height="44" fill="none" stroke="{AXIS}" stroke-dasharray="3 2"/>'
                    )
                    body.append(
                        _t(
                            x + bar_w / 2 + 4,
                            base - 22,
                            "onderdrukt",
                            size=10,
                            colour=MUTED,
                            anchor="middle",
                            extra=f'transform="rotate(-90 {x + bar_w / 2:.1f} {base - 22:.1f})"',
                        )
                    )
                continue
            h = plot_h * min(value / vmax, 1.0) if vmax else 0
            body.append(
                f'<rect x="{x + 2:.1f}" y="{base - h:.1f}" width="{bar_w - 4:.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="{s.colour}"><title>{escape(s.name)}, '
                f"{escape(category)}: {escape(fmt(value))}</title></rect>"
            )
            body.append(_t(x + bar_w / 2, base - h - 4, fmt(value), size=11, anchor="middle"))
        body.append(_t(left + i * group_w + group_w / 2, base + 18, category, anchor="middle"))
    return _svg(width, height, body, title)


def hbar_chart(
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    *,
    title: str,
    width: int = 640,
    label_width: int = 170,
    x_max: float | None = None,
) -> str:
    """Horizontal bars, one group per category (row), the value right of each bar."""
    bar_h = 16 if len(series) > 1 else 20
    row_h = bar_h * len(series) + 10
    top = 30
    height = top + row_h * len(categories) + 8
    values = [v for s in series for v in s.values if v is not None]
    vmax = x_max if x_max is not None else _nice_max(max(values, default=0) * 1.05)
    plot_w = width - label_width - 90
    any_suppressed = any(s.is_suppressed(i) for s in series for i in range(len(categories)))
    body = _legend(series, 8, 16, any_suppressed)
    x0 = label_width
    body.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{height - 6}" stroke="{AXIS}"/>')
    for i, category in enumerate(categories):
        y = top + i * row_h
        body.append(_t(x0 - 8, y + row_h / 2 + 1, category, anchor="end"))
        for j, s in enumerate(series):
            by = y + 3 + j * bar_h
            value = s.values[i] if i < len(s.values) else None
            if value is None:
                label = "onderdrukt" if s.is_suppressed(i) else "niet beschikbaar"
                if s.is_suppressed(i):
                    body.append(
                        f'<rect x="{x0 + 1}" y="{by + 1:.1f}" width="70" height="{bar_h - 3}" '
                        f'fill="none" stroke="{AXIS}" stroke-dasharray="3 2"/>'
                    )
                body.append(
                    _t(
                        x0 + 6,
                        by + bar_h - 5,
                        label,
                        size=10,
                        colour=MUTED,
                        extra='font-style="italic"',
                    )
                )
                continue
            w = plot_w * min(value / vmax, 1.0) if vmax else 0
            body.append(
                f'<rect x="{x0 + 1}" y="{by:.1f}" width="{max(w, 0.5):.1f}" '
                f'height="{bar_h - 2}" fill="{s.colour}"><title>{escape(s.name)}, '
                f"{escape(category)}: {escape(fmt(value))}</title></rect>"
            )
            body.append(_t(x0 + w + 6, by + bar_h - 5, fmt(value), size=11))
    return _svg(width, height, body, title)


def bullet(
    own: float | None,
    mean: float | None,
    p25: float | None,
    p75: float | None,
    *,
    title: str,
    width: int = 240,
) -> str:
    """One benchmark row: the middle half of the peers (grey band), their mean (orange tick) and
    the institution's own value (blue bar)."""
    height = 26
    values = [v for v in (own, mean, p25, p75) if v is not None]
    vmax = _nice_max(max(values, default=0) * 1.1)
    pad = 4
    scale = (width - 2 * pad) / vmax

    def x(v: float) -> float:
        return pad + max(0.0, min(v, vmax)) * scale

    body = [f'<rect x="{pad}" y="4" width="{width - 2 * pad}" height="18" fill="#f3f5f7"/>']
    if p25 is not None and p75 is not None:
        body.append(
            f'<rect x="{x(p25):.1f}" y="4" width="{max(x(p75) - x(p25), 1):.1f}" height="18" '
            f'fill="#d5dbe1"/>'
        )
    if own is not None:
        body.append(
            f'<rect x="{pad}" y="9" width="{max(x(own) - pad, 1):.1f}" height="8" fill="{OWN}"/>'
        )
    if mean is not None:
        body.append(f'<rect x="{x(mean) - 1.5:.1f}" y="2" width="3" height="22" fill="{PEER}"/>')
    return _svg(width, height, body, title)


def line_chart(
    x_values: Sequence[int],
    series: Sequence[Series],
    fmt: Callable[[float], str],
    *,
    title: str,
    x_label: Callable[[int], str] = str,
    width: int = 640,
    height: int = 280,
    y_max: float = 1.0,
) -> str:
    """Lines over x_values (one Series value per x; None leaves a gap), labelled at their end."""
    top, bottom, left, right = 40, 40, 52, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(x_values) - 1, 1)
    any_suppressed = any(s.is_suppressed(i) for s in series for i in range(len(x_values)))
    body = _legend(series, left, 16, any_suppressed)

    def px(i: int) -> float:
        return left + plot_w * i / n

    def py(v: float) -> float:
        return top + plot_h * (1 - min(v, y_max) / y_max)

    for k in range(5):
        v = y_max * k / 4
        body.append(
            f'<line x1="{left}" y1="{py(v):.1f}" x2="{left + plot_w}" y2="{py(v):.1f}" '
            f'stroke="{GRID}"/>'
        )
        body.append(_t(left - 6, py(v) + 4, fmt(v), size=11, anchor="end", colour=MUTED))
    for i, xv in enumerate(x_values):
        body.append(_t(px(i), top + plot_h + 18, x_label(xv), anchor="middle"))
    for s in series:
        segments: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                segments.append([])
            else:
                segments[-1].append((px(i), py(v)))
        for seg in segments:
            if len(seg) > 1:
                d = " ".join(f"{a:.1f},{b:.1f}" for a, b in seg)
                body.append(
                    f'<polyline points="{d}" fill="none" stroke="{s.colour}" stroke-width="2.5"/>'
                )
        for i, v in enumerate(s.values):
            if v is not None:
                body.append(
                    f'<circle cx="{px(i):.1f}" cy="{py(v):.1f}" r="4" fill="{s.colour}">'
                    f"<title>{escape(s.name)}, {escape(x_label(x_values[i]))}: "
                    f"{escape(fmt(v))}</title></circle>"
                )
            elif s.is_suppressed(i):
                body.append(
                    f'<circle cx="{px(i):.1f}" cy="{top + plot_h - 6:.1f}" r="4" fill="none" '
                    f'stroke="{s.colour}" stroke-dasharray="2 2"/>'
                )
    return _svg(width, height, body, title)
