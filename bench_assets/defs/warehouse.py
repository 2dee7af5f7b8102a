"""The metric marts (the dbt project in dbt_metrics/), built in one dbt build.

dbt builds staging views and marts from the raw tables the benchmark runs write; the change-point analysis is
one node of that build (the Python model dbt_metrics/models/marts/change_points.py calls
bench_assets/analysis/regressions.py over the `model_trend` mart), which the `regressions` mart reads.
Everything here writes the one DuckDB file, so the build takes the `duckdb` pool (one at a time, see
dagster.yaml) and waits out a benchmark run's write.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_duckdb import DuckDBResource

from bench_assets.store import schema
from bench_assets.store import marts
from bench_assets.store.marts import DBT_EXECUTABLE, DBT_PROJECT_DIR
from bench_assets.benchmarks import BENCHMARKS

DUCKDB_POOL = "duckdb"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


# Under `dagster dev` (make ui), parse the project when it changed; `make` parses before bench and test.
dbt_project.prepare_if_dev()

# Rebuild once benchmark runs have landed and none is still running or queued; unlike `eager`, do not wait
# for every model partition to exist.
AFTER_BENCHMARK_RUNS = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


# The assets that write the raw tables of a dbt source marked with the meta key.
RAW_TABLE_WRITERS = {
    "written_by_benchmark_runs": [benchmark.run_asset_name for benchmark in BENCHMARKS],
    "written_by_tunings": [benchmark.tuning_asset_name for benchmark in BENCHMARKS],
}


class MetricsDbtTranslator(DagsterDbtTranslator):
    """Places the dbt project in the Dagster graph, rebuilt after benchmark runs.

    Each raw table is written by every benchmark's run asset (or tuning asset), which a dbt source (one asset key)
    cannot say: models that read a source marked `meta.written_by_benchmark_runs` (`meta.written_by_tunings`)
    depend on every benchmark's run asset (tuning asset).
    """

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        parents = self.get_resource_props(manifest, unique_id).get("depends_on", {}).get("nodes", [])
        raw_keys, writers = set(), []
        for meta_key, writer_names in RAW_TABLE_WRITERS.items():
            raw_sources = [p for p in parents if manifest["sources"].get(p, {}).get("meta", {}).get(meta_key)]
            if raw_sources:
                raw_keys |= {self.get_asset_spec(manifest, source, project).key for source in raw_sources}
                writers += writer_names
        if not raw_keys:
            return spec
        deps = [dep for dep in spec.deps if dep.asset_key not in raw_keys] + [dg.AssetDep(w) for w in writers]
        return spec.replace_attributes(deps=deps)

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition:
        return AFTER_BENCHMARK_RUNS


def create_raw_tables(database: DuckDBResource) -> None:
    """The tables dbt reads, so that the marts build (empty) before the first run."""
    with database.get_connection() as conn:
        schema.create_schema(conn)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=MetricsDbtTranslator(),
    pool=DUCKDB_POOL,
)
def warehouse_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, duckdb: DuckDBResource):
    """Staging views and marts over the benchmark runs; dbt's tests run as asset checks."""
    create_raw_tables(duckdb)
    # dbt writes the file the DuckDB resource names, whatever profiles.yml's default.
    duckdb_path = str(Path(duckdb.database).expanduser().resolve())
    yield from dbt.cli(["build", "--vars", json.dumps(marts.dbt_vars(duckdb_path))], context=context).stream()


# The marts, the change-point analysis and the report, over every run so far.
warehouse_job = dg.define_asset_job("warehouse_job", selection=dg.AssetSelection.groups("warehouse"))

warehouse_after_benchmark_runs = dg.AutomationConditionSensorDefinition(
    "warehouse_after_benchmark_runs",
    target=dg.AssetSelection.groups("warehouse"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds the metric marts, the change-point analysis and the report after benchmark runs.",
)


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[warehouse_dbt_assets], jobs=[warehouse_job], sensors=[warehouse_after_benchmark_runs]
    )
