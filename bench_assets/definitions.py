"""The code location: every asset, check, job and resource, assembled in one place."""

import dagster as dg

from bench_assets import checks
from bench_assets.assets import datasets, inference, metrics, report, weights
from bench_assets.jobs import BENCHMARK_JOBS, datasets_job, metrics_job
from bench_assets.resources import BenchmarkSettings, duckdb_resource
from bench_assets.schedules import metrics_after_benchmark_runs, nightly_schedules

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([datasets, weights, inference, metrics, report]),
    asset_checks=[*dg.load_asset_checks_from_modules([datasets, weights, inference]), *checks.regression_checks],
    jobs=[datasets_job, *BENCHMARK_JOBS, metrics_job],
    schedules=nightly_schedules,
    sensors=[metrics_after_benchmark_runs],
    resources={
        "settings": BenchmarkSettings(),
        "duckdb": duckdb_resource(),
        "dbt": metrics.dbt_resource(),
    },
)
