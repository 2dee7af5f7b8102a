"""A run asset's metadata is run_summary's row for the run, read the moment its rows land, rounded to what a person
reads (the mart keeps full precision) and still numeric, so the UI plots it."""

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from bench_assets.benchmarks.table_rows import BENCHMARK
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets.defs.metadata import readable
from bench_assets.store.marts import (
    DBT_PROJECT_DIR, LIVE_MARTS, create_live_marts, definitions_digest, ensure_live_marts, headline_metrics,
)
from bench_assets.store.schema import create_schema
from bench_assets_tests.conftest import materialize


def test_figures_are_rounded_to_four_significant_digits_and_stay_numbers():
    assert readable(11.21632071500062) == 11.22
    assert readable(1645.28515625) == 1645.0
    assert readable(0.000123456) == 0.0001235
    assert readable(23) == 23 and readable(True) is True and readable("shipped") == "shipped"


def test_a_run_on_a_new_file_shows_run_summarys_figures(bench_resources, query, tmp_path):
    # A file of its own, without the live marts: the run has dbt create them.
    resources = {**bench_resources, "duckdb": DuckDBResource(database=str(tmp_path / "new.duckdb"))}
    made = BenchmarkDefinitions.of(BENCHMARK)
    materialize([dataset_asset(BENCHMARK.dataset)], resources)
    result = materialize([made.weights, made.run], resources, partition_key="linear_regression")

    with duckdb.connect(resources["duckdb"].database, read_only=True) as conn:
        views = {name for (name,) in conn.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        table = conn.execute("SELECT * FROM run_summary")
        columns = [d[0] for d in table.description]
        (summary,) = [dict(zip(columns, row)) for row in table.fetchall()]
    assert set(LIVE_MARTS) <= views

    metadata = result.asset_materializations_for_node(BENCHMARK.run_asset_name)[0].metadata
    shown = [h.metric for h in headline_metrics() if summary[h.metric] is not None] + ["wall_seconds", "estimated_cost_usd"]
    assert "end_to_end_items_per_second" in shown and "peak_rss_mib" in shown
    for name in shown:
        assert isinstance(metadata[name], dg.FloatMetadataValue), name
        assert metadata[name].value == readable(summary[name]), name
        assert metadata[name].value == pytest.approx(summary[name], rel=1e-3)
    assert metadata["predictions"].value == summary["predictions"] == 23
    assert metadata["wall_seconds"].value != summary["wall_seconds"]  # the mart keeps full precision


def test_live_marts_made_from_older_definitions_are_made_again(bench_resources):
    # The fixture's file has the live marts from the current definitions: nothing to do.
    assert ensure_live_marts(bench_resources["duckdb"]) == []
    # A view from an older dbt project (a column the run's metadata now reads is missing) is replaced.
    with bench_resources["duckdb"].get_connection() as conn:
        conn.execute("CREATE OR REPLACE VIEW run_summary AS SELECT run_id FROM runs")
    assert ensure_live_marts(bench_resources["duckdb"]) == ["run_summary"]
    with bench_resources["duckdb"].get_connection() as conn:
        columns = {d[0] for d in conn.execute("SELECT * FROM run_summary").description}
        comments = dict(conn.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
    assert {"read_busy_seconds", "end_to_end_items_per_second"} <= columns
    assert {comments[name] for name in LIVE_MARTS} == {definitions_digest()}


def test_making_the_live_marts_leaves_the_code_locations_dbt_manifest_alone(tmp_path):
    """The code location reads dbt_metrics/target/manifest.json at import, in every process a run starts; a run
    making the live marts in its own file must not rewrite it under them (a test worker importing the definitions
    read it half written: JSONDecodeError)."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    before = manifest.read_bytes()
    database = tmp_path / "bench.duckdb"
    with duckdb.connect(str(database)) as conn:
        create_schema(conn)
    create_live_marts(str(database))
    assert manifest.read_bytes() == before
