"""The resources every asset shares: settings, the DuckDB file, and dbt."""

import dagster as dg

from bench_assets.defs.warehouse import dbt_resource
from bench_assets.settings import BenchmarkSettings
from bench_assets.store.connection import duckdb_resource


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        resources={"settings": BenchmarkSettings(), "duckdb": duckdb_resource(), "dbt": dbt_resource()}
    )
