"""Each series' latest complete run against the one before it, on inference throughput (run_summary's busy-time
figure), judged against the series' own run-to-run spread (bench_assets/analysis/compare.py judge_runs): the
runs before the latest are the like runs the spread is estimated from, so a series of fewer than three runs
before its latest says "too few runs to tell"."""

from itertools import groupby

import pandas as pd

from bench_assets.analysis.compare import judge_runs

COLUMNS = {
    "comparison_key": "string", "benchmark": "string", "model": "string", "profile": "string",
    "machine_label": "string", "previous_run_id": "string", "run_id": "string",
    "previous_value": "float64", "value": "float64", "change_pct": "float64", "ci_low_pct": "float64",
    "ci_high_pct": "float64", "runs_before": "int64", "verdict": "string",
}


def model(dbt, session):
    dbt.config(materialized="table")
    rows = (
        dbt.ref("run_summary")
        .filter("is_complete and inference_items_per_second > 0")
        .order("comparison_key, run_number")
        .project("comparison_key, benchmark, model, profile, machine_label, run_id, inference_items_per_second")
        .fetchall()
    )
    judged = []
    for key, runs in groupby(rows, key=lambda row: row[0]):
        runs = list(runs)
        if len(runs) < 2:
            continue
        previous, latest = runs[-2], runs[-1]
        verdict = judge_runs([previous[6]], [latest[6]], like_runs=[[run[6] for run in runs[:-1]]])
        judged.append((
            key, *latest[1:5], previous[5], latest[5], previous[6], latest[6], verdict.change_pct,
            verdict.ci_low_pct, verdict.ci_high_pct, len(runs) - 1, verdict.verdict,
        ))
    return pd.DataFrame(judged, columns=list(COLUMNS)).astype(COLUMNS)
