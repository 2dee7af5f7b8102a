"""The code location loads the dbt project's assets, its tests as checks, the regression checks and the report,
wired downstream of every benchmark's run asset and sharing one pool for writing DuckDB."""

import os
import sys
from pathlib import Path

import dagster as dg

from bench_assets.benchmarks import BENCHMARKS
from bench_assets.defs.warehouse import DBT_EXECUTABLE, DBT_PROJECT_DIR, DUCKDB_POOL, dbt_project
from bench_assets.defs.regression_checks import headline_metrics
from bench_assets.definitions import defs

GRAPH = defs.get_repository_def().asset_graph


def parents(name: str) -> set[str]:
    return {key.to_user_string() for key in GRAPH.get(dg.AssetKey(name)).parent_keys}


def test_staging_models_read_what_both_benchmarks_run_assets_write():
    run_assets = {benchmark.run_asset_name for benchmark in BENCHMARKS}
    assert {"image_classification_run", "language_modeling_run"} <= run_assets
    assert parents("stg_runs") == parents("stg_batches") == run_assets
    # run_summary reads every staged table, and the run settings table (its defaults) that runs write.
    assert {"stg_runs", "stg_batches", "stg_metrics", "stg_predictions", "stg_failures"} <= parents("run_summary")
    assert run_assets <= parents("run_summary")
    assert parents("change_points") == {"model_trend"}
    assert {"change_points", "run_summary"} <= parents("regressions")
    assert GRAPH.get(dg.AssetKey("image_classification_run")).is_materializable


def test_dbt_tests_and_regression_checks_are_asset_checks():
    checks = {(key.asset_key.to_user_string(), key.name) for key in GRAPH.asset_check_keys}
    assert ("run_summary", "unique_run_summary_run_id") in checks
    assert ("stg_runs", "accepted_values_stg_runs_status__running__finished__failed__abandoned") in checks
    assert ("stg_batches", "relationships_stg_batches_run_id__run_id__ref_stg_runs_") in checks
    regression_checks = {name for asset, name in checks if asset == "regressions" and name.startswith("no_recent")}
    assert regression_checks == {f"no_recent_regression_in_{h.metric}" for h in headline_metrics()}


def test_a_job_over_the_metrics_group_runs_dbt_in_one_step_with_the_analysis_in_it_all_in_the_duckdb_pool():
    job = dg.define_asset_job("metrics", selection=dg.AssetSelection.groups("warehouse")).resolve(asset_graph=GRAPH)
    steps = job.graph.node_dict
    assert {"warehouse_dbt_assets", "benchmark_report"} <= set(steps) and "warehouse_dbt_assets_2" not in steps
    assert {node.definition.pool for name, node in steps.items()} == {DUCKDB_POOL}


def test_the_manifest_is_current_and_dbt_runs_from_the_virtual_environment():
    # `make` parses the project before tests and bench; `dagster dev` re-parses it (prepare_if_dev).
    manifest = dbt_project.manifest_path
    project_files = [p for folder in ("models", "seeds", "tests") for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file()]
    assert manifest.exists()
    assert all(p.stat().st_mtime <= manifest.stat().st_mtime for p in project_files)
    # The dbt installed beside the Python that runs Dagster, found without that environment on PATH.
    assert Path(DBT_EXECUTABLE) == Path(sys.executable).parent / "dbt"
    assert os.access(DBT_EXECUTABLE, os.X_OK)
