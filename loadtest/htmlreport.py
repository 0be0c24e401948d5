"""A run's report as one self-contained HTML file: inline CSS and inline SVG charts, no script
and nothing fetched, so it opens anywhere (a CI artifact, a mail attachment) as it was made.

Charts: throughput per second by outcome; latency per second (p50 dashed, p99 solid) by
outcome, on a log scale when it spans more than two decades; one chart per gauge. Then the
checks, each PASS or FAIL, and the text report as the terminal showed it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from loadtest.record import Recorder

WIDTH, HEIGHT = 920, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 200, 34, 40
COLORS = (
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f",
)  # fmt: skip

Series = tuple[str, Sequence[tuple[float, float]], str, str]
"""(label, points, dash pattern ("" for a solid line), colour key: series with one key, such
as an outcome's p50 and p99, share a colour)."""


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` ticks over `span`."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    for mult in (1, 2, 5, 10):
        if raw <= mult * power:
            return mult * power
    return 10 * power  # pragma: no cover - the loop always returns


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def _grid(x1: float, x2: float, y1: float, y2: float) -> str:
    return f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" class="grid"/>'


def _text(x: float, y: float, text: str, kind: str, anchor: str) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="{kind}" text-anchor="{anchor}">'
        f"{html.escape(text)}</text>"
    )


PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass(frozen=True, slots=True)
class Axes:
    """The ranges of one chart and how a value maps to a pixel."""

    x0: float
    x1: float
    y0: float
    y1: float
    log: bool

    @classmethod
    def fit(cls, points: Sequence[tuple[float, float]]) -> Axes:
        """Ranges that hold every point; a log y axis when the values span more than 100 x."""
        xs = [x for x, _ in points]
        ys = [y for _, y in points]
        x0, x1 = min(xs), max(xs)
        x1 = x1 if x1 > x0 else x0 + 1
        low, high = min(ys), max(ys)
        if low > 0 and high / low > 100:
            y0 = 10 ** math.floor(math.log10(low))
            y1 = 10 ** math.ceil(math.log10(high))
            return cls(x0, x1, y0, y1 if y1 > y0 else y0 * 10, True)
        return cls(x0, x1, 0.0, high * 1.08 if high > 0 else 1.0, False)

    def sx(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * PLOT_W

    def sy(self, y: float) -> float:
        if self.log:
            low, high = math.log10(self.y0), math.log10(self.y1)
            frac = (math.log10(max(y, self.y0)) - low) / (high - low)
        else:
            frac = (y - self.y0) / (self.y1 - self.y0)
        return TOP + PLOT_H - frac * PLOT_H

    def y_ticks(self) -> list[float]:
        if self.log:
            first, last = round(math.log10(self.y0)), round(math.log10(self.y1))
            return [10.0**e for e in range(first, last + 1)]
        step = nice_step(self.y1 - self.y0)
        return [step * i for i in range(int(self.y1 / step) + 1)]

    def x_ticks(self) -> list[float]:
        step = nice_step(self.x1 - self.x0, 8)
        first = math.ceil(self.x0 / step)
        return [n * step for n in range(first, int(self.x1 / step + 1e-9) + 1)]


def line_chart(title: str, series: Sequence[Series], x_label: str, y_label: str) -> str:
    """One SVG line chart of `series` (points with a NaN value are left out)."""
    points = [p for _, pts, _, _ in series for p in pts if math.isfinite(p[1])]
    if not points:
        return f'<p class="empty">{html.escape(title)}: no samples</p>'
    axes = Axes.fit(points)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}">',
        f'<text x="{LEFT}" y="20" class="title">{html.escape(title)}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" class="frame"/>',
        *_frame(axes, x_label, y_label),
        *_lines(axes, series),
        "</svg>",
    ]
    return "\n".join(out)


def _frame(axes: Axes, x_label: str, y_label: str) -> list[str]:
    """The grid, the ticks and the axis labels."""
    out: list[str] = []
    for t in axes.y_ticks():
        y = axes.sy(t)
        out += [_grid(LEFT, LEFT + PLOT_W, y, y), _text(LEFT - 6, y + 4, _fmt(t), "tick", "end")]
    for t in axes.x_ticks():
        x = axes.sx(t)
        out += [
            _grid(x, x, TOP, TOP + PLOT_H),
            _text(x, TOP + PLOT_H + 16, _fmt(t), "tick", "middle"),
        ]
    out.append(_text(LEFT + PLOT_W / 2, HEIGHT - 6, x_label, "axis", "middle"))
    middle = TOP + PLOT_H / 2
    out.append(
        f'<text x="16" y="{middle}" class="axis" text-anchor="middle" '
        f'transform="rotate(-90 16 {middle})">{html.escape(y_label)}'
        f"{' (log)' if axes.log else ''}</text>"
    )
    return out


def _lines(axes: Axes, series: Sequence[Series]) -> list[str]:
    """Each series as a polyline (a dot when it has one point), and the legend."""
    out: list[str] = []
    colors: dict[str, str] = {}
    for n, (label, pts, dash, key) in enumerate(series):
        color = colors.setdefault(key, COLORS[len(colors) % len(COLORS)])
        good = [(axes.sx(x), axes.sy(y)) for x, y in pts if math.isfinite(y)]
        if not good:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in good)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"{style}>'
            f"<title>{html.escape(label)}</title></polyline>"
        )
        if len(good) == 1:
            out.append(
                f'<circle cx="{good[0][0]:.1f}" cy="{good[0][1]:.1f}" r="3" fill="{color}"/>'
            )
        ly, lx = TOP + 12 + n * 16, LEFT + PLOT_W + 12
        if ly < HEIGHT - 10:
            out.append(
                f'<line x1="{lx}" x2="{lx + 22}" y1="{ly - 4}" y2="{ly - 4}" stroke="{color}" '
                f'stroke-width="2"{style}/>'
                f'<text x="{lx + 28}" y="{ly}" class="legend">{html.escape(label[:24])}</text>'
            )
    return out


def throughput_series(rows: list[dict[str, Any]]) -> list[Series]:
    outcomes = sorted({o for row in rows for o in row["outcomes"]})
    return [
        (o, [(row["t"], float(row["outcomes"].get(o, {}).get("count", 0))) for row in rows], "", o)
        for o in outcomes
    ]


def latency_series(rows: list[dict[str, Any]]) -> list[Series]:
    outcomes = sorted(
        {o for row in rows for o, v in row["outcomes"].items() if v["p99Ms"] is not None}
    )
    series: list[Series] = []
    for o in outcomes:
        for key, dash in (("p99Ms", ""), ("p50Ms", "5 4")):
            pts = [
                (float(row["t"]), float(row["outcomes"][o][key]))
                for row in rows
                if o in row["outcomes"] and row["outcomes"][o][key] is not None
            ]
            series.append((f"{o} {key[:3]}", pts, dash, o))
    return series


CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 960px;
       color: #222; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 26px 0 8px; }
.meta { color: #555; margin: 0 0 12px; } code { font-size: 13px; }
.verdict { display: inline-block; padding: 4px 12px; border-radius: 4px; font-weight: 600;
           color: #fff; }
.verdict.pass { background: #2a7d2e; } .verdict.fail { background: #b3261e; }
ul.checks { list-style: none; padding: 0; } ul.checks li { margin: 3px 0; }
.ok, .bad { display: inline-block; width: 44px; font-weight: 700; }
.ok { color: #2a7d2e; } .bad { color: #b3261e; }
pre { background: #f5f5f5; padding: 10px; overflow-x: auto; font-size: 12px; }
svg.chart { display: block; margin: 6px 0 14px; }
svg .title { font-size: 14px; font-weight: 600; } svg .tick, svg .legend { font-size: 11px; }
svg .axis { font-size: 12px; fill: #444; } svg .frame { fill: none; stroke: #999; }
svg .grid { stroke: #e4e4e4; } .empty { color: #777; font-style: italic; }
"""


def render(rec: Recorder) -> str:
    rows = rec.per_second()
    verdict = "pass" if rec.passed else "fail"
    checks = "\n".join(
        f'<li><span class="{"ok" if ok else "bad"}">{"PASS" if ok else "FAIL"}</span> '
        f"{html.escape(text.strip().removeprefix('[PASS] ').removeprefix('[FAIL] '))}</li>"
        for ok, text in rec.checks
    )
    charts = [
        line_chart(
            "Throughput per second, by outcome",
            throughput_series(rows),
            "seconds since the run started",
            "answers / s",
        ),
        line_chart(
            "Latency per second, by outcome (p99 solid, p50 dashed)",
            latency_series(rows),
            "seconds since the run started",
            "ms",
        ),
    ]
    for name, gauge in rec.gauges.items():
        charts.append(
            line_chart(name, [(name, gauge.points, "", name)], "seconds since the run started",
                       gauge.unit or name)
        )  # fmt: skip
    started = html.escape(rec.to_json()["startedAt"])
    passed = sum(ok for ok, _ in rec.checks)
    verdict_text = f"{verdict.upper()}: {passed} of {len(rec.checks)} checks pass"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>loadtest {html.escape(rec.scenario)}: {verdict.upper()}</title>
<style>{CSS}</style></head>
<body>
<h1>loadtest {html.escape(rec.scenario)}</h1>
<p class="meta">started {started} &middot; <code>python -m loadtest
{html.escape(" ".join(rec.argv))}</code></p>
<p><span class="verdict {verdict}">{verdict_text}</span></p>
<h2>Checks</h2>
<ul class="checks">
{checks or "<li>no checks</li>"}
</ul>
<h2>Over time</h2>
{"".join(charts)}
<h2>Report</h2>
<pre>{html.escape(chr(10).join(rec.lines))}</pre>
</body></html>
"""
