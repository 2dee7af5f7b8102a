"""The report page: the marts' rows, arranged per model with their charts, rendered from templates/."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from itertools import groupby

import jinja2

from bench_assets.benchmarks import MODELS
from bench_assets.defs.regression_checks import ALERT_WINDOW_RUNS
from bench_assets.report import numbers
from bench_assets.report.charts import SERIES_COLORS, bar_chart, metric_chart, sweep_chart
from bench_assets.run.configuration import configuration_label
from bench_assets.store.marts import headline_metrics

# The overview's bar charts: (label, unit, better, run_summary column).
OVERVIEW_BARS = (
    ("Inference throughput", "items/s", "higher", "inference_items_per_second"),
    ("Batch latency p99", "ms", "lower", "batch_latency_p99_ms"),
    ("Cost per 1,000 inferences", "USD", "lower", "cost_per_1000_inferences_usd"),
)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench_assets.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=numbers.number, percent=numbers.percent, percent_text=numbers.percent_text,
        utilization_text=numbers.utilization_text, times=numbers.times, configuration=configuration_label,
    )
    return env


def model_key(row: dict) -> tuple[str, str]:
    return row["benchmark"], row["model"]


def model_view(latest: dict, trend: list[dict], regressions: list[dict]) -> dict:
    """One model's section: its latest run, a chart per headline metric (a line per comparable series, in the
    seed's order) and its recent regressions."""
    run_order = sorted({(p["started_at"], p["run_id"]) for p in trend})
    positions = {run_id: i for i, (_, run_id) in enumerate(run_order)}
    series = sorted({(p["comparison_key"], p["profile"], p["fingerprint_id"]) for p in trend}, key=lambda s: s[0])
    series_colors = {key: SERIES_COLORS[i % len(SERIES_COLORS)] for i, (key, _, _) in enumerate(series)}
    order = {headline.metric: position for position, headline in enumerate(headline_metrics())}
    charts = [
        metric_chart(label, unit, better, list(points), positions, len(run_order),
                     [r for r in regressions if r["metric"] == metric], series_colors)
        for (metric, label, unit, better), points in groupby(
            sorted(trend, key=lambda p: order[p["metric"]]), key=lambda p: (p["metric"], p["label"], p["unit"], p["better"])
        )
    ]
    spec = MODELS.get(latest["model"])
    return {
        "run": latest,
        "note": spec.note if spec is not None else "",
        "legend": [(series_colors[key], profile, fingerprint[:8]) for key, profile, fingerprint in series],
        "charts": charts,
        "recent": [r for r in regressions if r["runs_since_change"] <= ALERT_WINDOW_RUNS],
    }


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
    tuned: Sequence[dict] = (),
    machines: Sequence[dict] = (),
    latest_against_previous: Sequence[dict] = (),
) -> str:
    trend_by_model = {k: list(v) for k, v in groupby(sorted(trend, key=model_key), key=model_key)}
    regressions_by_model = {k: list(v) for k, v in groupby(sorted(regressions, key=model_key), key=model_key)}
    sweeps_by_model = [list(points) for _, points in groupby(sweeps, key=model_key)]
    return environment().get_template("report.html.j2").render(
        generated_at=generated_at,
        models=[
            model_view(row, trend_by_model.get(model_key(row), []), regressions_by_model.get(model_key(row), []))
            for row in latest
        ],
        series=series,
        bars=[bar_chart(label, unit, better, series, column) for label, unit, better, column in OVERVIEW_BARS],
        best=best,
        tuned=tuned,
        configurations=configurations,
        open_regressions=[r for r in regressions if r["runs_since_change"] <= ALERT_WINDOW_RUNS],
        sweep_charts=[sweep_chart(points) for points in sweeps_by_model],
        best_sweep_points=[p for points in sweeps_by_model for p in points if p["best_within_budget"]],
        incomplete=incomplete,
        machines=machines,
        latest_against_previous=latest_against_previous,
    )
