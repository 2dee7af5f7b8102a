"""What the report shows, read from the dbt marts only (run_summary, latest_runs, model_trend, regressions,
configuration_agreement, best_configuration, batch_sweep, tuned_configuration): no raw table, no figure derived here."""

from __future__ import annotations

import duckdb

from bench_assets.store.marts import fetch_rows

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
# The latest tuning of each model on each machine that found a configuration (bench_assets/analysis/tuning.py).
TUNED_SQL = """
SELECT * FROM tuned_configuration WHERE run_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY benchmark, model, machine_id ORDER BY started_at DESC) = 1
ORDER BY benchmark, model, machine_label
"""
# The latest batch-size sweep of each model (bench_assets/analysis/batch_sweep.py).
SWEEPS_SQL = """
SELECT * FROM batch_sweep
QUALIFY sweep_id = last_value(sweep_id) OVER (
    PARTITION BY benchmark, model ORDER BY swept_at ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
ORDER BY benchmark, model, batch_size NULLS LAST
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
       runs_since_change, what_changed
FROM regressions ORDER BY benchmark, model, changed_at
"""

# Each model across machines, where more than one machine ran the same thing (results merged from other files).
MACHINES_SQL = """
SELECT benchmark, model, profile, precision, memory_format, quantization, compile, backend, torch_threads, runner,
       machine_label, runs, inference_items_per_second, end_to_end_items_per_second, relative_to_fastest
FROM machine_comparison WHERE machines > 1
ORDER BY benchmark, model, profile, precision, memory_format, quantization, compile, backend, torch_threads, runner,
         inference_items_per_second DESC
"""

LATEST_AGAINST_PREVIOUS_SQL = """
SELECT benchmark, model, profile, machine_label, previous_run_id, run_id, previous_value, value, change_pct,
       ci_low_pct, ci_high_pct, runs_before, verdict
FROM latest_against_previous ORDER BY benchmark, model, profile, machine_label
"""

# render_report's arguments, each from its query.
QUERIES = {
    "latest": LATEST_SQL,
    "trend": TREND_SQL,
    "regressions": REGRESSIONS_SQL,
    "incomplete": INCOMPLETE_SQL,
    "series": SERIES_SQL,
    "configurations": CONFIGURATIONS_SQL,
    "best": BEST_SQL,
    "sweeps": SWEEPS_SQL,
    "tuned": TUNED_SQL,
    "machines": MACHINES_SQL,
    "latest_against_previous": LATEST_AGAINST_PREVIOUS_SQL,
}


def report_rows(conn: duckdb.DuckDBPyConnection) -> dict[str, list[dict]]:
    return {name: fetch_rows(conn, sql) for name, sql in QUERIES.items()}
