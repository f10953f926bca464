"""Small self-contained SVG charts (no JavaScript, no external files) for the dashboard and the report.

Every label is XML-escaped: metric names and intents come from data. A day without data is a
gap in a line, not a zero.
"""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT = 560, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 34
COLOURS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c")


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{100 * value:.0f}%"
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}"


def _frame(title: str, body: list[str], legend: list[str] | None = None) -> str:
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        *body,
    ]
    for i, name in enumerate(legend or []):
        x = WIDTH - RIGHT - 120 * (len(legend or []) - i)
        parts.append(f'<rect x="{x}" y="7" width="10" height="10" fill="{COLOURS[i % len(COLOURS)]}"/>'
                     f'<text x="{x + 14}" y="16">{escape(name)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def line_chart(title: str, days: list[str], series: dict[str, list[float | None]], *, percent: bool = False) -> str:
    """One line per series over ``days`` (the x axis); ``None`` values leave gaps."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not values:
        return _frame(title, [f'<text x="{LEFT}" y="{HEIGHT // 2}" fill="#666">no data in this period</text>'])
    top = max(values) if not percent else max(max(values), 0.05)
    top = top * 1.1 if top > 0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (len(days) - 1) if len(days) > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    body = [f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#999"/>']
    for frac in (0.0, 0.5, 1.0):
        tick = top / 1.1 * frac
        body.append(
            f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" fill="#555">{_fmt(tick, percent)}</text>'
        )
    for i in sorted({0, len(days) // 2, len(days) - 1}):
        body.append(
            f'<text x="{x(i):.1f}" y="{HEIGHT - 12}" text-anchor="middle" fill="#555">{escape(days[i][5:])}</text>'
        )
    for n, (name, vs) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for i, v in enumerate(vs):
            if v is None:
                runs.append([])
                continue
            runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            body.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                        f"<title>{escape(name)} {escape(days[i])}: {_fmt(v, percent)}</title></circle>")  # fmt: skip
        for run in runs:
            if len(run) > 1:
                body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(run)}"/>')
    return _frame(title, body, list(series) if len(series) > 1 else None)


def bar_chart(title: str, bars: list[tuple[str, float]], *, percent: bool = False) -> str:
    """Horizontal bars, one per (label, value), in the given order."""
    if not bars:
        return _frame(title, [f'<text x="{LEFT}" y="{HEIGHT // 2}" fill="#666">no data in this period</text>'])
    label_w, row = 150, (HEIGHT - TOP - 8) / len(bars)
    top = max(v for _, v in bars) or 1.0
    body = []
    for i, (label, v) in enumerate(bars):
        y = TOP + i * row
        w = (WIDTH - label_w - RIGHT - 50) * v / top
        body.append(f'<text x="{label_w - 6}" y="{y + row * 0.7:.1f}" text-anchor="end">{escape(label[:24])}</text>'
                    f'<rect x="{label_w}" y="{y + row * 0.15:.1f}" width="{w:.1f}" height="{row * 0.7:.1f}" '
                    f'fill="{COLOURS[0]}"><title>{escape(label)}: {_fmt(v, percent)}</title></rect>'
                    f'<text x="{label_w + w + 4:.1f}" y="{y + row * 0.7:.1f}">{_fmt(v, percent)}</text>')  # fmt: skip
    return _frame(title, body)
