"""Every significant change in each comparable series of each headline metric (bench_assets/analysis/regressions.py),
found anew over the whole history on every build: one node of the one dbt build, between model_trend and the
regressions mart."""

import pandas as pd

from bench_assets.analysis import regressions

COLUMNS = {
    "comparison_key": "string", "metric": "string", "run_id": "string", "previous_run_id": "string",
    "value_before": "float64", "value_after": "float64", "change_pct": "float64",
    "runs_before": "int64", "runs_after": "int64", "is_regression": "bool",
}


def model(dbt, session):
    dbt.config(materialized="table")
    rows = (
        dbt.ref("model_trend")
        .order("comparison_key, metric, run_number")
        .project("comparison_key, metric, better, run_id, value")
        .fetchall()
    )
    changes = regressions.find_changes(regressions.HistoryPoint(*row) for row in rows)
    found = pd.DataFrame(
        [
            (c.comparison_key, c.metric, c.run_id, c.previous_run_id, c.point.before, c.point.after,
             c.point.change_pct, c.point.runs_before, c.point.runs_after, c.is_regression)
            for c in changes
        ],
        columns=list(COLUMNS),
    )
    return found.astype(COLUMNS)
