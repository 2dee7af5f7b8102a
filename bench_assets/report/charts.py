"""The report's charts as inline SVG: a metric over a model's runs, a figure across series, a batch-size sweep.
Nothing to fetch and no script: the page stays one self-contained file."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from itertools import groupby

from markupsafe import Markup

from bench_assets.report.numbers import number
from bench_assets.run.configuration import configuration_label

SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
REGRESSION_COLOR = "#d62728"
CHART_WIDTH, CHART_HEIGHT = 360, 200
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 62, CHART_WIDTH - 14, 30, CHART_HEIGHT - 30


def metric_chart(
    label: str, unit: str, better: str, points: list[dict], positions: dict[str, int], runs: int,
    regressions: list[dict], series_colors: dict[str, str],
) -> Markup:
    """One metric's values over a model's runs: a line per comparable series, regressions in red."""
    values = [p["value"] for p in points]
    # The axis spans at least 20% of the values' middle, so that noise of a few percent looks like it.
    middle = (min(values) + max(values)) / 2
    half_span = max((max(values) - min(values)) / 2 * 1.2, abs(middle) * 0.1) or 1.0
    low, high = middle - half_span, middle + half_span

    def x(run_id: str) -> float:
        step = (PLOT_RIGHT - PLOT_LEFT) / max(runs - 1, 1)
        return PLOT_LEFT + positions[run_id] * step if runs > 1 else (PLOT_LEFT + PLOT_RIGHT) / 2

    def y(value: float) -> float:
        return PLOT_BOTTOM - (value - low) / (high - low) * (PLOT_BOTTOM - PLOT_TOP)

    parts = [
        f'<svg class="chart" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'role="img" aria-label="{html.escape(label)}" data-points="{len(points)}">',
        f'<rect width="{CHART_WIDTH}" height="{CHART_HEIGHT}" fill="#fff" stroke="#ddd"/>',
        f'<text x="8" y="18" font-size="13" font-weight="600">{html.escape(label)} ({html.escape(unit)})</text>',
        f'<text x="{CHART_WIDTH - 8}" y="18" font-size="11" fill="#666" text-anchor="end">{better} is better</text>',
    ]
    if runs == 1:  # no trend to draw yet: say so rather than draw one dot on an empty axis
        parts.append(
            f'<text class="one-run" x="{CHART_WIDTH / 2}" y="{CHART_HEIGHT - 12}" font-size="11" fill="#666" '
            f'text-anchor="middle">one run so far: {number(values[0])} {html.escape(unit)}</text>'
        )
    labelled: list[float] = []
    for value in sorted({min(values), middle, max(values)}):
        if any(abs(y(value) - y(other)) < 14 for other in labelled):
            continue  # too close to a label already drawn to be read
        labelled.append(value)
        parts.append(
            f'<line x1="{PLOT_LEFT}" x2="{PLOT_RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{PLOT_LEFT - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">{number(value)}</text>'
        )
    first, last = min(p["started_at"] for p in points), max(p["started_at"] for p in points)
    parts.append(f'<text x="{PLOT_LEFT}" y="{CHART_HEIGHT - 10}" font-size="11">{first:%Y-%m-%d}</text>')
    parts.append(
        f'<text x="{PLOT_RIGHT}" y="{CHART_HEIGHT - 10}" font-size="11" text-anchor="end">{last:%Y-%m-%d}</text>'
    )
    by_series = sorted(points, key=lambda p: (p["comparison_key"], positions[p["run_id"]]))
    for key, series in groupby(by_series, key=lambda p: p["comparison_key"]):
        series = list(series)
        color = series_colors[key]
        coordinates = " ".join(f"{x(p['run_id']):.1f},{y(p['value']):.1f}" for p in series)
        parts.append(
            f'<polyline class="series" points="{coordinates}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
        for p in series:
            tooltip = f"{p['started_at']:%Y-%m-%d %H:%M} · run {p['run_id']} · {number(p['value'])} {unit}"
            parts.append(
                f'<circle cx="{x(p["run_id"]):.1f}" cy="{y(p["value"]):.1f}" r="3" fill="{color}">'
                f"<title>{html.escape(tooltip)}</title></circle>"
            )
    by_run = {p["run_id"]: p for p in points}
    for regression in regressions:
        point = by_run.get(regression["run_id"])
        if point is None:
            continue
        cx, cy = x(point["run_id"]), y(point["value"])
        tooltip = (
            f"Regression at run {regression['run_id']}: {number(regression['value_before'])} → "
            f"{number(regression['value_after'])} {unit} ({regression['change_pct']:+.1f}%); {regression['what_changed']}"
        )
        parts.append(
            f'<g class="regression"><title>{html.escape(tooltip)}</title>'
            f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{PLOT_TOP}" y2="{PLOT_BOTTOM}" stroke="{REGRESSION_COLOR}" '
            f'stroke-width="2" stroke-dasharray="4 3"/>'
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="none" stroke="{REGRESSION_COLOR}" stroke-width="2.5"/>'
            f'<text x="{cx + 4:.1f}" y="{PLOT_TOP + 10}" font-size="11" fill="{REGRESSION_COLOR}">'
            f"{regression['change_pct']:+.0f}%</text></g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(label: str, unit: str, better: str, rows: Sequence[dict], column: str) -> Markup:
    """One figure across series, a bar each, side by side (values printed: models differ by orders of magnitude)."""
    measured = [r for r in rows if r[column] is not None]
    if not measured:
        return Markup("")
    bar_height, left, width = 18, 330, 660
    height = 30 + bar_height * len(measured)
    values = [r[column] for r in measured]
    top, bottom = max(values) or 1.0, min(v for v in values if v > 0) if any(v > 0 for v in values) else 1.0
    # Benchmarks differ by orders of magnitude (a linear regression against a detector): past a 100-fold spread
    # the bars are drawn on a log scale, so that every model's bar can be read.
    logarithmic = top / bottom > 100

    def bar(value: float) -> float:
        if logarithmic:
            return (width - left) * math.log10(max(value, bottom) / bottom * 10) / math.log10(top / bottom * 10)
        return (width - left) * value / top

    parts = [
        f'<svg class="bars" width="{width + 120}" height="{height}" role="img" aria-label="{html.escape(label)}">',
        f'<text x="0" y="16" font-size="13" font-weight="600">{html.escape(label)} ({html.escape(unit)}), '
        f"{better} is better{', log scale' if logarithmic else ''}</text>",
    ]
    for i, r in enumerate(measured):
        y = 26 + i * bar_height
        length = max(1.0, bar(r[column]))
        name = f"{r['model']} · {configuration_label(r)}"
        parts.append(f'<text x="{left - 6}" y="{y + 12}" font-size="11" text-anchor="end">{html.escape(name)}</text>')
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{length:.1f}" height="{bar_height - 5}" fill="#1f77b4"/>')
        parts.append(f'<text x="{left + length + 4:.1f}" y="{y + 12}" font-size="11">{number(r[column])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def sweep_chart(points: list[dict]) -> Markup:
    """Throughput against p99 batch latency at each batch size of one sweep; Beam's adaptive batching marked, the
    best size within the latency budget ringed, the budget drawn."""
    width, height, left, right, top, bottom = 420, 240, 56, 400, 34, 204
    budget = points[0]["latency_budget_ms"]
    x_max = max(max(p["batch_latency_p99_ms"] for p in points), budget) * 1.1
    y_max = max(p["inference_items_per_second"] for p in points) * 1.15

    def x(ms: float) -> float:
        return left + ms / x_max * (right - left)

    def y(rate: float) -> float:
        return bottom - rate / y_max * (bottom - top)

    first = points[0]
    parts = [
        f'<svg class="sweep" width="{width}" height="{height}" role="img" aria-label="batch sweep of {html.escape(first["model"])}">',
        f'<rect width="{width}" height="{height}" fill="#fff" stroke="#ddd"/>',
        f'<text x="8" y="18" font-size="13" font-weight="600">{html.escape(first["model"])}: items/s against p99 ms</text>',
        f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#999"/>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{bottom}" stroke="#999"/>',
        f'<text x="{right}" y="{bottom + 16}" font-size="11" text-anchor="end">p99 batch latency, ms (max {number(x_max)})</text>',
        f'<text x="{left - 4}" y="{top + 4}" font-size="11" text-anchor="end">{number(y_max)}</text>',
        f'<line class="budget" x1="{x(budget):.1f}" x2="{x(budget):.1f}" y1="{top}" y2="{bottom}" stroke="{REGRESSION_COLOR}" '
        f'stroke-dasharray="4 3"/><text x="{x(budget) + 3:.1f}" y="{top + 10}" font-size="10" fill="{REGRESSION_COLOR}">'
        f"budget {number(budget)} ms</text>",
    ]
    fixed = [p for p in points if p["batch_size"] is not None]
    parts.append(
        '<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="'
        + " ".join(f"{x(p['batch_latency_p99_ms']):.1f},{y(p['inference_items_per_second']):.1f}" for p in fixed)
        + '"/>'
    )
    for p in points:
        cx, cy = x(p["batch_latency_p99_ms"]), y(p["inference_items_per_second"])
        tip = f"{p['batch_size'] or 'adaptive'}: {number(p['inference_items_per_second'])} items/s, p99 {number(p['batch_latency_p99_ms'])} ms"
        if p["batch_size"] is None:  # Beam's adaptive BatchElements
            parts.append(f'<g class="adaptive"><title>{html.escape(tip)}</title><rect x="{cx - 5:.1f}" y="{cy - 5:.1f}" '
                         f'width="10" height="10" fill="#ff7f0e" transform="rotate(45 {cx:.1f} {cy:.1f})"/>'
                         f'<text x="{cx + 8:.1f}" y="{cy + 4:.1f}" font-size="10">adaptive</text></g>')
            continue
        parts.append(f'<g><title>{html.escape(tip)}</title><circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="#1f77b4"/>'
                     f'<text x="{cx + 6:.1f}" y="{cy - 6:.1f}" font-size="10">{p["batch_size"]}</text></g>')
        if p["best_within_budget"]:
            parts.append(f'<circle class="best" cx="{cx:.1f}" cy="{cy:.1f}" r="8" fill="none" stroke="#2ca02c" stroke-width="2"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
