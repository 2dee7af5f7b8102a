"""The code location: every asset, check, job and resource, assembled in one place."""

import dagster as dg

from bench_assets.assets import datasets, inference, weights
from bench_assets.jobs import BENCHMARK_JOBS, datasets_job
from bench_assets.resources import BenchmarkSettings, duckdb_resource

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([datasets, weights, inference]),
    asset_checks=dg.load_asset_checks_from_modules([datasets, weights, inference]),
    jobs=[datasets_job, *BENCHMARK_JOBS],
    resources={"settings": BenchmarkSettings(), "duckdb": duckdb_resource()},
)
