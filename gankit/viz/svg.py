"""Line charts as inline SVG text: no plotting library and no script in the report."""
from __future__ import annotations

import math
from html import escape

# colour-blind-safe qualitative palette (Okabe and Ito, 2008)
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
WIDTH, HEIGHT = 480, 260
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 28, 36


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) inside [lo, hi];
    ``integer`` keeps the step at 1 or more (training steps)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    # the round step whose number of intervals comes closest to the count asked for
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda st: abs((hi - lo) / st - (count - 1)))
    step = max(step, 1) if integer else step
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + 1e-9 * step:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def tick_labels(ticks: list[float]) -> list[str]:
    """The labels of one axis, all in one style: plain numbers with the decimals the tick
    step needs (``5000``, ``10000``; ``0.25``, ``0.50``), or, for very large or very small
    values, powers of ten with a shared number of digits (``2e6``, ``4e6``)."""
    if not ticks:
        return []
    step = min((b - a for a, b in zip(ticks, ticks[1:])), default=abs(ticks[0]) or 1.0)
    top = max(abs(t) for t in ticks)
    if top == 0 or 1e-3 <= top < 1e6:
        # the fewest decimals that write every tick exactly
        decimals = next((d for d in range(13) if all(abs(round(t, d) - t) <= 1e-9 * (step or 1)
                                                     for t in ticks)), 12)
        return [f"{t:.{decimals}f}" for t in ticks]
    digits = next((d for d in range(13) if all(abs(float(f"{t:.{d}e}") - t) <= 1e-9 * (step or top)
                                               for t in ticks)), 12)
    return [f"{t:.{digits}e}".replace("e+0", "e").replace("e-0", "e-").replace("e+", "e") if t else "0"
            for t in ticks]


def line_chart(title: str, series: list[tuple[str, str, list[tuple[float, float]]]]) -> str:
    """An SVG chart of ``(label, colour, [(x, y), ...])`` lines on shared axes.

    A series with one point is drawn as a dot. Each line carries ``data-label`` so a browser
    test can tell which series it is."""
    points = [p for _, _, pts in series for p in pts]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.1 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return TOP + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-label="{escape(title)}">',
             f'<text x="{LEFT}" y="18" class="ct">{escape(title)}</text>']
    y_ticks = nice_ticks(y0, y1)
    for t, text in zip(y_ticks, tick_labels(y_ticks)):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">{text}</text>')
    x_ticks = nice_ticks(x0, x1, integer=True)
    for t, text in zip(x_ticks, tick_labels(x_ticks)):
        parts.append(f'<text x="{sx(t):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{text}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 4}" text-anchor="end">step</text>')
    for label, colour, pts in series:
        if len(pts) == 1:
            parts.append(f'<circle cx="{sx(pts[0][0]):.1f}" cy="{sy(pts[0][1]):.1f}" r="3" '
                         f'fill="{colour}" data-label="{escape(label)}"/>')
        elif pts:
            coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                         f'stroke-width="1.6" data-label="{escape(label)}"/>')
    parts.append("</svg>")
    return "".join(parts)
