"""The metric marts (the dbt project in dbt_metrics/) and the change-point analysis between them.

dbt builds staging views and marts from the raw tables the benchmark runs write; `change_points` searches the
`model_trend` mart for changes and writes the `change_points` table, which dbt stages into the `regressions`
mart. Dagster runs that loop as two dbt steps around the analysis. Everything here writes the one DuckDB file,
so every step takes the `duckdb` pool (one at a time, see dagster.yaml) and waits out a benchmark run's write.
"""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets, get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from bench_assets.analysis import regressions
from bench_assets.store import runs as results
from bench_assets.store import schema
from bench_assets.store.marts import DBT_EXECUTABLE, DBT_PROJECT_DIR
from bench_assets.benchmarks import BENCHMARKS

DUCKDB_POOL = "duckdb"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


# Under `dagster dev` (make ui), parse the project when it changed; `make` parses before bench and test.
dbt_project.prepare_if_dev()

CHANGE_POINTS_SCHEMA = """
CREATE TABLE IF NOT EXISTS change_points (
    comparison_key VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    value_before DOUBLE NOT NULL,
    value_after DOUBLE NOT NULL,
    change_pct DOUBLE NOT NULL,
    runs_before INTEGER NOT NULL,
    runs_after INTEGER NOT NULL,
    is_regression BOOLEAN NOT NULL,
    detected_at TIMESTAMPTZ NOT NULL
);
"""

# Rebuild once benchmark runs have landed and none is still running or queued; unlike `eager`, do not wait
# for every model partition to exist.
AFTER_BENCHMARK_RUNS = dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())


class MetricsDbtTranslator(DagsterDbtTranslator):
    """Places the dbt project in the Dagster graph, rebuilt after benchmark runs.

    Each raw table is written by every benchmark's run asset, which a dbt source (one asset key) cannot say:
    models that read a source marked `meta.written_by_benchmark_runs` depend on every benchmark's run asset.
    """

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        parents = self.get_resource_props(manifest, unique_id).get("depends_on", {}).get("nodes", [])
        raw_sources = [
            p for p in parents if manifest["sources"].get(p, {}).get("meta", {}).get("written_by_benchmark_runs")
        ]
        if not raw_sources:
            return spec
        raw_keys = {self.get_asset_spec(manifest, source, project).key for source in raw_sources}
        writers = [benchmark.run_asset_name for benchmark in BENCHMARKS]
        deps = [dep for dep in spec.deps if dep.asset_key not in raw_keys] + [dg.AssetDep(w) for w in writers]
        return spec.replace_attributes(deps=deps)

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition:
        return AFTER_BENCHMARK_RUNS


def create_raw_tables(database: DuckDBResource) -> None:
    """The tables dbt reads, so that the marts build (empty) before the first run or analysis."""
    with database.get_connection() as conn:
        schema.create_schema(conn)
        conn.execute(CHANGE_POINTS_SCHEMA)


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
    yield from dbt.cli(["build", "--vars", json.dumps({"duckdb_path": duckdb_path})], context=context).stream()


MODEL_TREND = get_asset_key_for_model([warehouse_dbt_assets], "model_trend")


@dg.asset(
    group_name="warehouse",
    deps=[MODEL_TREND],
    pool=DUCKDB_POOL,
    kinds={"python", "duckdb"},
    automation_condition=AFTER_BENCHMARK_RUNS,
)
def change_points(duckdb: DuckDBResource) -> dg.MaterializeResult:
    """Significant changes in each comparable series of each headline metric (bench_assets/analysis/regressions.py),
    found anew over the whole history on every run; the regressions mart keeps those for the worse."""
    with duckdb.get_connection() as conn:
        rows = conn.execute(
            "SELECT comparison_key, metric, better, run_id, value FROM model_trend "
            "ORDER BY comparison_key, metric, run_number"
        ).fetchall()
        history = [regressions.HistoryPoint(*row) for row in rows]
        changes = regressions.find_changes(history)
        detected_at = results.now()
        conn.execute(CHANGE_POINTS_SCHEMA)
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute("DELETE FROM change_points")
            if changes:
                conn.executemany(
                    "INSERT INTO change_points VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        [c.comparison_key, c.metric, c.run_id, c.point.before, c.point.after, c.point.change_pct,
                         c.point.runs_before, c.point.runs_after, c.is_regression, detected_at]
                        for c in changes
                    ],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return dg.MaterializeResult(
        metadata={
            "series": len({(p.comparison_key, p.metric) for p in history}),
            "runs_searched": len({p.run_id for p in history}),
            "change_points": len(changes),
            "regressions": sum(c.is_regression for c in changes),
        }
    )


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
        assets=[warehouse_dbt_assets, change_points], jobs=[warehouse_job], sensors=[warehouse_after_benchmark_runs]
    )
