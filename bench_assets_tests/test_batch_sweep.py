"""Batch size as a curve: a fixed sample at batch sizes 1, 2, 4, ... and adaptively; the batch_sweep mart derives
each point's figures and the best size within a latency budget (its dbt unit test covers the choice), and the
report draws throughput against p99 latency."""

from datetime import datetime, timezone

import duckdb

from bench_assets.analysis.batch_sweep import batch_sizes
from bench_assets.benchmarks.table_rows import BENCHMARK
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets.report.page import render_report
from bench_assets.report.queries import SWEEPS_SQL
from bench_assets.store.marts import fetch_rows
from bench_assets_tests.conftest import materialize


def test_sizes_double_up_to_the_largest():
    assert batch_sizes(32) == [1, 2, 4, 8, 16, 32] and batch_sizes(6) == [1, 2, 4]


def test_a_sweep_runs_each_size_over_the_same_sample_and_the_report_draws_it(bench_resources, query):
    made = BenchmarkDefinitions.of(BENCHMARK)
    materialize([dataset_asset(BENCHMARK.dataset)], bench_resources)
    materialize([made.weights], bench_resources, partition_key="linear_regression")
    config = {"ops": {"table_rows_batch_sweep": {"config": {"largest_batch_size": 8, "sample_items": 16}}}}
    result = materialize([made.sweep], bench_resources, partition_key="linear_regression", run_config=config)

    # Each point's batches are stored; its figures come from the mart.
    assert query("SELECT fixed_batch_size, sum(batch_size) FROM sweep_batches GROUP BY ALL ORDER BY 1 NULLS LAST") == [
        (1, 16), (2, 16), (4, 16), (8, 16), (None, 16)
    ]
    rows = query("SELECT batch_size, items, mean_batch_size, best_within_budget FROM batch_sweep ORDER BY batch_size NULLS LAST")
    assert [(size, items) for size, items, _, _ in rows] == [(1, 16), (2, 16), (4, 16), (8, 16), (None, 16)]
    assert [mean for size, _, mean, _ in rows if size] == [1.0, 2.0, 4.0, 8.0]  # min = max = the size
    assert sum(best for *_, best in rows) == 1
    metadata = result.asset_materializations_for_node("table_rows_batch_sweep")[0].metadata
    (best_size,) = [size for size, *_, best in rows if best]
    assert metadata["best_batch_size"].value == best_size

    with duckdb.connect(bench_resources["duckdb"].database, read_only=True) as conn:
        sweeps = fetch_rows(conn, SWEEPS_SQL)
    page = render_report([], [], [], datetime.now(timezone.utc), sweeps=sweeps)
    assert 'id="batch-sweeps"' in page and 'class="adaptive"' in page and 'class="best"' in page
