"""The HTML report: per model, each headline metric over its runs, the latest run's percentiles, regressions
marked. One self-contained file: charts are inline SVG drawn here, with no script and nothing to fetch."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from itertools import groupby

import dagster as dg
import duckdb as duckdb_module
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from bench_assets.store import runs as results
from bench_assets.benchmarks import MODELS
from bench_assets.analysis.compare import compare_runs
from bench_assets.defs.warehouse import AFTER_BENCHMARK_RUNS, DUCKDB_POOL, warehouse_dbt_assets
from bench_assets.defs.regression_checks import ALERT_WINDOW_RUNS, headline_metrics
from bench_assets.run.configuration import configuration_label
from bench_assets.settings import BenchmarkSettings

REPORT_PATH = "reports/benchmarks.html"  # under the data folder
SERIES_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
REGRESSION_COLOR = "#d62728"
# Charts in the order of the headline_metrics seed: the seed benchmark's three means first.
METRIC_ORDER = {headline.metric: position for position, headline in enumerate(headline_metrics())}
CHART_WIDTH, CHART_HEIGHT = 360, 200
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 62, CHART_WIDTH - 14, 30, CHART_HEIGHT - 30

LATEST_SQL = "SELECT * FROM latest_runs ORDER BY benchmark, model"
# Runs that lost items: kept and listed apart, never charted.
INCOMPLETE_SQL = """
SELECT benchmark, model, run_id, started_at, dataset_size, predictions, failures,
       dataset_size - predictions - failures AS unaccounted
FROM run_summary WHERE NOT is_complete ORDER BY started_at DESC
"""
# The latest complete run of every series (model, configuration, batching, dataset, weights, machine).
SERIES_SQL = """
SELECT * FROM run_summary WHERE is_complete
QUALIFY row_number() OVER (PARTITION BY comparison_key ORDER BY started_at DESC, run_id DESC) = 1
ORDER BY benchmark, model, precision, memory_format, quantization, compile, backend, started_at
"""
# Per model and machine: the fastest configuration that passes the accuracy guard, and its speed-up.
BEST_SQL = "SELECT * FROM best_configuration ORDER BY benchmark, model, profile"
# The latest batch-size sweep of each model (bench_assets/analysis/batch_sweep.py).
SWEEPS_SQL = """
SELECT * FROM batch_sweep
QUALIFY sweep_id = last_value(sweep_id) OVER (
    PARTITION BY benchmark, model ORDER BY swept_at ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
ORDER BY benchmark, model, batch_size NULLS LAST
"""
# Each model's latest complete run and the comparable run before it, for "is this run faster than that one?".
LAST_TWO_SQL = """
SELECT latest.benchmark, latest.model, previous.run_id AS previous_run_id, latest.run_id
FROM latest_runs latest
JOIN run_summary previous
  ON previous.comparison_key = latest.comparison_key AND previous.run_number = latest.run_number - 1
WHERE latest.batches >= 2 AND previous.batches >= 2
ORDER BY latest.benchmark, latest.model
"""
# Each configured run beside its fp32 baseline: speed-up and agreement (the accuracy guard).
CONFIGURATIONS_SQL = """
SELECT s.benchmark, s.model, s.precision, s.memory_format, s.quantization, s.compile, s.backend, a.run_id,
       a.top1_agreement, a.confident_agreement,
       a.top1_in_fp32_top5, a.passes, a.guard_applies,
       s.inference_items_per_second / nullif(b.inference_items_per_second, 0) AS inference_speedup,
       s.end_to_end_items_per_second / nullif(b.end_to_end_items_per_second, 0) AS end_to_end_speedup
FROM configuration_agreement a
JOIN run_summary s USING (run_id)
JOIN run_summary b ON b.run_id = a.baseline_run_id
QUALIFY row_number() OVER (PARTITION BY s.comparison_key ORDER BY s.started_at DESC) = 1
ORDER BY s.benchmark, s.model, s.precision, s.memory_format, s.quantization, s.compile, s.backend
"""
TREND_SQL = """
SELECT benchmark, model, metric, label, unit, better, comparison_key, profile, fingerprint_id, run_id, started_at, value
FROM model_trend ORDER BY benchmark, model, started_at, run_id
"""
REGRESSIONS_SQL = """
SELECT benchmark, model, metric, label, unit, run_id, changed_at, value_before, value_after, change_pct,
       runs_since_change
FROM regressions ORDER BY benchmark, model, changed_at
"""

CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 40px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, 360px); gap: 12px; }
.legend span { display: inline-block; margin-right: 16px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: middle; }
.note { color: #666; font-size: 13px; }
.regression { color: #d62728; }
.bar-charts svg { display: block; margin: 12px 0; }
.model-note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 4px 8px; }
"""


def fetch_rows(conn: duckdb_module.DuckDBPyConnection, sql: str) -> list[dict]:
    table = conn.execute(sql)
    columns = [d[0] for d in table.description]
    return [dict(zip(columns, row)) for row in table.fetchall()]


def percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def percent_text(share: float | None) -> str:
    return "–" if share is None else f"{100 * share:.1f}%"


def utilization_text(run: dict) -> str:
    """A run's share of the measured peak, or that it went above the measured ceiling (no share over 100%)."""
    return "above measured peak" if run["is_above_measured_peak"] else percent_text(run["utilization"])


def number(value: float | None) -> str:
    return "–" if value is None else f"{value:,.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


def model_key(row: dict) -> tuple[str, str]:
    return row["benchmark"], row["model"]


def metric_chart(
    label: str, unit: str, better: str, points: list[dict], positions: dict[str, int], runs: int,
    regressions: list[dict], series_colors: dict[str, str],
) -> str:
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
            f"{number(regression['value_after'])} {unit} ({regression['change_pct']:+.1f}%)"
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
    return "".join(parts)


def latest_table(latest: dict) -> str:
    rows = [
        ("Batch latency (ms)", latest["batch_latency_p50_ms"], latest["batch_latency_p90_ms"],
         latest["batch_latency_p99_ms"], latest["mean_batch_latency_ms"]),
        ("Item latency (ms)", latest["item_latency_p50_ms"], latest["item_latency_p90_ms"],
         latest["item_latency_p99_ms"], latest["item_latency_mean_ms"]),
    ]
    body = "".join(
        f"<tr><td>{name}</td>{''.join(f'<td>{number(v)}</td>' for v in values)}</tr>" for name, *values in rows
    )
    warmup = (
        f"after {latest['warmup_batches']} warm-up batches (ended {latest['warmup_ended_at']:%H:%M:%S})"
        if latest["warmup_ended_at"]
        else f"the whole run ({latest['warmup_batches']} batches) was warm-up"
    )
    failures = (
        f"read {latest['failures_read']}, preprocess {latest['failures_preprocess']}, "
        f"inference {latest['failures_inference']}"
    )
    # (figure, value, unit, a note shown whether or not there is a value)
    figures = [
        ("Top-1 accuracy", percent(latest["top1_accuracy"]), "%", f"of {latest['labelled_predictions']} labelled items"),
        ("Top-5 accuracy", percent(latest["top5_accuracy"]), "%", ""),
        ("Inference throughput", latest["inference_items_per_second"], "items/s", "whole run"),
        ("Steady-state inference throughput", latest["steady_inference_items_per_second"], "items/s", warmup),
        ("Steady-state batch latency p50", latest["steady_batch_latency_p50_ms"], "ms", ""),
        ("Steady-state batch latency p99", latest["steady_batch_latency_p99_ms"], "ms", ""),
        ("Hardware utilization", percent(latest["utilization"]), "%",
         f"{number(latest['flops_per_item'] and latest['flops_per_item'] / 1e9)} GFLOP an item; of the machine's "
         f"{number(latest['peak_flops_per_second'] and latest['peak_flops_per_second'] / 1e9)} GFLOP/s measured "
         "matmul peak" + (": this run went above it" if latest["is_above_measured_peak"] else "")
         + f" (theoretical peak {number(latest['theoretical_peak_flops_per_second'] and latest['theoretical_peak_flops_per_second'] / 1e9)} "
         f"GFLOP/s, {percent_text(latest['theoretical_utilization'])} of it)"),
        ("End-to-end throughput", latest["end_to_end_items_per_second"], "items/s", ""),
        ("Pipeline wall time", latest["wall_seconds"], "s", ""),
        ("Model load latency", latest["load_model_latency_ms"], "ms", ""),
        ("Peak resident memory", latest["peak_rss_mib"], "MiB", ""),
        ("Estimated cost", latest["estimated_cost_usd"], "USD",
         f"{number(latest['cost_per_1000_inferences_usd'])} USD per 1,000 inferences, at Beam's Dataflow prices"),
        ("Mean batch size", latest["mean_batch_size"], "items", ""),
        ("Failures", latest["failures"], "items", failures),
    ]
    return (
        '<table class="percentiles"><tr><th></th><th>p50</th><th>p90</th><th>p99</th><th>mean</th></tr>'
        f"{body}</table>"
        "<table>"
        + "".join(
            f"<tr><td>{name}</td><td>{number(v)}{'' if v is None else ' ' + unit}</td>"
            f'<td class="note">{html.escape(note)}</td></tr>'
            for name, v, unit, note in figures
        )
        + "</table>"
    )


def bar_chart(label: str, unit: str, better: str, rows: Sequence[dict], column: str) -> str:
    """One figure across series, a bar each, side by side (values printed: models differ by orders of magnitude)."""
    measured = [r for r in rows if r[column] is not None]
    if not measured:
        return ""
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
    return "".join(parts)


def sweep_chart(points: list[dict]) -> str:
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
    return "".join(parts)


def sweeps_section(sweeps: Sequence[dict]) -> str:
    if not sweeps:
        return ""
    by_model = [list(points) for _, points in groupby(sweeps, key=model_key)]
    best = [
        f"<li>{html.escape(p['model'])}: batch size {p['batch_size']}, {number(p['inference_items_per_second'])} items/s "
        f"within {number(p['latency_budget_ms'])} ms p99</li>"
        for points in by_model for p in points if p["best_within_budget"]
    ]
    return (
        '<section id="batch-sweeps"><h2>Batch size</h2><p class="note">Each model\'s latest sweep: throughput against '
        "p99 batch latency at fixed batch sizes (the line), Beam's adaptive batching (the diamond), the best size "
        "within the latency budget ringed.</p>"
        f"<ul>{''.join(best) or '<li>no batch size within the budget</li>'}</ul>"
        f'<div class="charts">{"".join(sweep_chart(points) for points in by_model)}</div></section>'
    )


def comparisons_section(comparisons: Sequence[tuple[dict, list]]) -> str:
    """Per model, its latest run against the comparable run before it: both values, the change, a 95% bootstrap
    interval from the batch records and a verdict (bench_assets/analysis/compare.py)."""
    if not comparisons:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(pair['model'])}</td><td>{html.escape(c.figure.label)} ({html.escape(c.figure.unit)})</td>"
        f"<td>{number(c.value_a)}</td><td>{number(c.value_b)}</td><td>{c.change_pct:+.1f}%</td>"
        f"<td>[{c.ci_low_pct:+.1f}%, {c.ci_high_pct:+.1f}%]</td><td>{html.escape(c.verdict)}</td></tr>"
        for pair, found in comparisons
        for c in found
    )
    return (
        '<section id="latest-against-previous"><h2>Latest run against the one before</h2><p class="note">Each '
        "model's latest run (B) against the comparable run before it (A); the interval is a 95% bootstrap over "
        "each run's batches, and a change counts only when it excludes 0 (python -m bench_assets.cli.compare A B).</p>"
        "<table><tr><th>model</th><th>figure</th><th>A</th><th>B</th><th>change</th><th>95% interval</th>"
        f"<th>verdict</th></tr>{rows}</table></section>"
    )


def answer_table(best: Sequence[dict]) -> str:
    """Per model: its fastest configuration so far, end to end and with the model load set apart, against Beam's
    default, and how many runs each figure rests on."""
    if not best:
        return ""

    def times(value) -> str:
        return "–" if value is None else number(value) + "x"

    rows = "".join(
        f"<tr><td>{html.escape(b['model'])}</td><td>{html.escape(b['profile'])}</td>"
        f"<td>{html.escape(configuration_label(b))}, batches {b['min_batch_size']}-{b['max_batch_size']}</td>"
        f"<td>{b['runs']} / {'–' if b['beam_default_runs'] is None else b['beam_default_runs']}</td>"
        f"<td>{number(b['end_to_end_items_per_second'])}</td><td>{times(b['end_to_end_speedup_over_beam_default'])}</td>"
        f"<td>{number(b['items_per_second_after_load'])}</td><td>{times(b['after_load_speedup_over_beam_default'])}</td>"
        f"<td>{number(b['inference_items_per_second'])}</td><td>{times(b['inference_speedup_over_beam_default'])}</td>"
        f"<td>{html.escape(b['cpu_model'] or '')}{' + ' + html.escape(b['gpu']) if b['gpu'] else ''}</td></tr>"
        for b in best
    )
    return (
        "<h3>The answer: fastest so far</h3><p class=\"note\">Per model, machine and input, the configuration "
        "fastest once its one-time model load is set apart (what a much larger input sees), among those with no "
        "inference failure that pass the accuracy guard, against Beam's default on the same machine and input. "
        "Each figure is the median over the configuration's complete runs; runs: the configuration's / Beam's "
        "default's. End to end is what the run took at its size: a load (a compilation, an ONNX export) can "
        "outweigh a faster inference stage over a small input.</p><table><tr><th>model</th><th>profile</th>"
        "<th>configuration</th><th>runs</th><th>end-to-end items/s</th><th>over Beam's default</th>"
        "<th>after-load items/s</th><th>over Beam's default</th><th>inference items/s</th>"
        f"<th>over Beam's default</th><th>machine</th></tr>{rows}</table>"
    )


def overview_section(
    series: Sequence[dict], configurations: Sequence[dict], regressions: Sequence[dict], best: Sequence[dict] = ()
) -> str:
    """Across every benchmark and model: the latest run of each series, figures side by side, configurations
    beside fp32, and the open regressions."""
    if not series:
        return ""
    header = (
        "<tr><th>benchmark</th><th>model</th><th>configuration</th><th>profile</th><th>runs</th><th>items</th>"
        "<th>top-1</th><th>inference items/s</th><th>steady items/s</th><th>utilization</th><th>p99 batch ms</th>"
        "<th>USD / 1,000</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{html.escape(r['benchmark'])}</td><td><a href=\"#{html.escape(r['model'])}\">{html.escape(r['model'])}"
        f"</a></td><td>{html.escape(configuration_label(r))}</td><td>{html.escape(r['profile'])}</td>"
        f"<td>{r['comparable_runs']}</td><td>{r['dataset_size']}</td>"
        f"<td>{percent_text(r['top1_accuracy'])}</td>"
        f"<td>{number(r['inference_items_per_second'])}</td><td>{number(r['steady_inference_items_per_second'])}</td>"
        f"<td>{utilization_text(r)}</td>"
        f"<td>{number(r['batch_latency_p99_ms'])}</td><td>{number(r['cost_per_1000_inferences_usd'])}</td></tr>"
        for r in series
    )
    charts = "".join(
        bar_chart(label, unit, better, series, column)
        for label, unit, better, column in (
            ("Inference throughput", "items/s", "higher", "inference_items_per_second"),
            ("Batch latency p99", "ms", "lower", "batch_latency_p99_ms"),
            ("Cost per 1,000 inferences", "USD", "lower", "cost_per_1000_inferences_usd"),
        )
    )
    configured = "".join(
        f"<tr><td>{html.escape(c['model'])}</td><td>{html.escape(configuration_label(c))}</td>"
        f"<td>{number(c['inference_speedup'])}x</td><td>{number(c['end_to_end_speedup'])}x</td>"
        f"<td>{percent_text(c['top1_agreement'])}</td><td>{percent_text(c['confident_agreement'])}</td>"
        f"<td>{percent_text(c['top1_in_fp32_top5'])}</td>"
        f"<td>{'passes' if c['passes'] else 'fails'}{'' if c['guard_applies'] else ' (random weights: informational)'}</td></tr>"
        for c in configurations
    )
    open_regressions = "".join(
        f'<li class="regression">{html.escape(r["model"])}: {html.escape(r["label"])} {number(r["value_before"])} → '
        f"{number(r['value_after'])} {html.escape(r['unit'])} ({r['change_pct']:+.1f}%)</li>"
        for r in regressions
        if r["runs_since_change"] <= ALERT_WINDOW_RUNS
    )
    return (
        '<section id="overview"><h2>Overview</h2><p class="note">The latest complete run of each series (one '
        "model in one configuration, batching, dataset and machine).</p>"
        f"<table>{header}{rows}</table>{answer_table(best)}<div class=\"bar-charts\">{charts}</div>"
        + (
            "<h3>Configurations beside fp32</h3><table><tr><th>model</th><th>configuration</th><th>inference "
            "speed-up</th><th>end-to-end speed-up</th><th>top-1 agreement</th><th>agreement where fp32 is sure"
            "</th><th>top-1 in fp32's top 5</th><th>accuracy guard</th></tr>"
            f"{configured}</table>"
            if configured
            else ""
        )
        + f"<h3>Open regressions</h3><ul>{open_regressions or '<li>none</li>'}</ul></section>"
    )


def incomplete_section(incomplete: Sequence[dict]) -> str:
    """Runs that lost items: listed with their counts, and never part of a series or chart."""
    if not incomplete:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(r['model'])} <small>({html.escape(r['benchmark'])})</small></td>"
        f"<td>{html.escape(r['run_id'])}</td><td>{r['started_at']:%Y-%m-%d %H:%M}</td><td>{r['dataset_size']}</td>"
        f"<td>{r['predictions']}</td><td>{r['failures']}</td><td>{r['unaccounted']}</td></tr>"
        for r in incomplete
    )
    return (
        '<section id="incomplete-runs"><h2>Incomplete runs</h2><p class="note">These runs finished without '
        "accounting for every input line (their nothing_lost check failed). They keep what they wrote, but are "
        "left out of every series, chart and regression check.</p><table><tr><th>model</th><th>run</th>"
        "<th>started</th><th>items</th><th>predictions</th><th>failures</th><th>unaccounted</th></tr>"
        f"{rows}</table></section>"
    )


def model_note(model: str) -> str:
    """What the model's spec says a reader must know (random weights, a head that predicts nothing)."""
    spec = MODELS.get(model)
    return spec.note if spec is not None else ""


def model_section(latest: dict, trend: list[dict], regressions: list[dict]) -> str:
    run_order = sorted({(p["started_at"], p["run_id"]) for p in trend})
    positions = {run_id: i for i, (_, run_id) in enumerate(run_order)}
    series = sorted({(p["comparison_key"], p["profile"], p["fingerprint_id"]) for p in trend}, key=lambda s: s[0])
    series_colors = {key: SERIES_COLORS[i % len(SERIES_COLORS)] for i, (key, _, _) in enumerate(series)}
    legend = "".join(
        f'<span><span class="swatch" style="background:{series_colors[key]}"></span>'
        f"{html.escape(profile)} profile · fingerprint {html.escape(fingerprint[:8])}</span>"
        for key, profile, fingerprint in series
    )
    charts = []
    by_metric = sorted(trend, key=lambda p: METRIC_ORDER[p["metric"]])
    for (metric, label, unit, better), points in groupby(
        by_metric, key=lambda p: (p["metric"], p["label"], p["unit"], p["better"])
    ):
        marked = [r for r in regressions if r["metric"] == metric]
        charts.append(metric_chart(label, unit, better, list(points), positions, len(run_order), marked, series_colors))
    recent = [r for r in regressions if r["runs_since_change"] <= ALERT_WINDOW_RUNS]
    regression_list = "".join(
        f'<li class="regression">{html.escape(r["label"])}: {number(r["value_before"])} → '
        f"{number(r['value_after'])} {html.escape(r['unit'])} ({r['change_pct']:+.1f}%) "
        f"from run {html.escape(r['run_id'])}, {r['changed_at']:%Y-%m-%d}</li>"
        for r in recent
    )
    where = ", ".join(
        html.escape(str(v))
        for v in (latest["cpu_model"], f"{latest['usable_cores']} cores", f"{latest['torch_threads']} torch threads",
                  latest["gpu"] or "no GPU", f"torch {latest['torch_version']}", f"Beam {latest['beam_version']}")
    )
    return (
        f'<section class="model" id="{html.escape(latest["model"])}">'
        f"<h2>{html.escape(latest['model'])} <small>({html.escape(latest['benchmark'])})</small></h2>"
        f'<p class="note">Latest of {latest["finished_runs"]} finished runs: {html.escape(latest["run_id"])} on '
        f"{latest['started_at']:%Y-%m-%d %H:%M %Z}, {html.escape(latest['profile'])} profile, "
        f"{html.escape(latest['runner'])} runner on {where}; {latest['comparable_runs'] or 0} comparable runs, "
        f"{html.escape(latest['weights_source'])} weights.</p>"
        + (f'<p class="model-note">{html.escape(model_note(latest["model"]))}</p>' if model_note(latest["model"]) else "")
        + f"{latest_table(latest)}"
        + (f"<h3>Recent regressions</h3><ul>{regression_list}</ul>" if recent else "")
        + f'<div class="legend">{legend}</div><div class="charts">{"".join(charts)}</div></section>'
    )


def render_report(
    latest: Sequence[dict],
    trend: Sequence[dict],
    regressions: Sequence[dict],
    generated_at: datetime,
    incomplete: Sequence[dict] = (),
    series: Sequence[dict] = (),
    configurations: Sequence[dict] = (),
    best: Sequence[dict] = (),
    sweeps: Sequence[dict] = (),
    comparisons: Sequence[tuple[dict, list]] = (),
) -> str:
    trend_by_model = {k: list(v) for k, v in groupby(sorted(trend, key=model_key), key=model_key)}
    regressions_by_model = {k: list(v) for k, v in groupby(sorted(regressions, key=model_key), key=model_key)}
    sections = [
        model_section(row, trend_by_model.get(model_key(row), []), regressions_by_model.get(model_key(row), []))
        for row in latest
    ]
    body = "".join(sections) or "<p>No finished runs yet: materialize a benchmark partition first.</p>"
    body = (
        overview_section(series, configurations, regressions, best)
        + comparisons_section(comparisons)
        + sweeps_section(sweeps)
        + body
    ) + incomplete_section(incomplete)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Benchmark report</title>'
        f"<style>{CSS}</style></head><body><h1>RunInference benchmarks</h1>"
        f'<p class="note">Generated {generated_at:%Y-%m-%d %H:%M %Z} from the dbt marts. Each line is a series of '
        "comparable runs (same model, profile, dataset, batching, weights and environment fingerprint); red marks "
        "where a change for the worse began. Hover a point for its run. Quick-profile runs are short: their "
        "figures are dominated by warm-up, which the steady-state figures leave out.</p>"
        f"{body}</body></html>"
    )


@dg.asset(
    group_name="warehouse",
    deps=[
        get_asset_key_for_model([warehouse_dbt_assets], m)
        for m in ("latest_runs", "model_trend", "regressions", "configuration_agreement", "best_configuration",
                  "batch_sweep")
    ],
    pool=DUCKDB_POOL,
    kinds={"html"},
    automation_condition=AFTER_BENCHMARK_RUNS,
)
def benchmark_report(settings: BenchmarkSettings, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """A self-contained HTML page of every model's benchmark history, under the data folder."""
    with duckdb.get_connection() as conn:
        latest = fetch_rows(conn, LATEST_SQL)
        trend = fetch_rows(conn, TREND_SQL)
        regressions = fetch_rows(conn, REGRESSIONS_SQL)
        incomplete = fetch_rows(conn, INCOMPLETE_SQL)
        series = fetch_rows(conn, SERIES_SQL)
        configurations = fetch_rows(conn, CONFIGURATIONS_SQL)
        best = fetch_rows(conn, BEST_SQL)
        sweeps = fetch_rows(conn, SWEEPS_SQL)
        comparisons = [
            (pair, compare_runs(conn, pair["previous_run_id"], pair["run_id"], resamples=1000))
            for pair in fetch_rows(conn, LAST_TWO_SQL)
        ]
    page = render_report(
        latest, trend, regressions, datetime.now(timezone.utc), incomplete, series, configurations, best, sweeps,
        comparisons,
    )
    path = settings.root / REPORT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "models": len(latest),
            "runs": len({p["run_id"] for p in trend}),
            "recent_regressions": sum(r["runs_since_change"] <= ALERT_WINDOW_RUNS for r in regressions),
            "incomplete_runs": len(incomplete),
            "bytes": len(page.encode()),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[benchmark_report])
