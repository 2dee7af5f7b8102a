"""The resources every asset shares: settings, the DuckDB file, and dbt."""

import dagster as dg

from bench_assets.defs.metrics import dbt_resource
from bench_assets.resources import BenchmarkSettings, duckdb_resource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={"settings": BenchmarkSettings(), "duckdb": duckdb_resource(), "dbt": dbt_resource()}
    )
