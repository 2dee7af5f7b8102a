"""Batch size as a curve: a fixed sample at batch sizes 1, 2, 4, ... and adaptively, the best size within a
latency budget, stored for the report, which draws throughput against p99 latency."""

from datetime import datetime, timezone

import duckdb

from bench_assets.analysis.batch_sweep import SweepPoint, batch_sizes, best_within_budget
from bench_assets.benchmarks.table_rows import BENCHMARK
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets.defs.report import SWEEPS_SQL, fetch_rows, render_report
from bench_assets_tests.conftest import materialize


def test_sizes_double_and_the_best_is_the_fastest_fixed_size_within_the_budget():
    assert batch_sizes(32) == [1, 2, 4, 8, 16, 32] and batch_sizes(6) == [1, 2, 4]
    points = [
        SweepPoint(1, 64, 1.0, 10.0, 90.0, 100.0),
        SweepPoint(8, 64, 8.0, 40.0, 300.0, 400.0),
        SweepPoint(32, 64, 32.0, 60.0, 900.0, 1200.0),  # fastest, but over a 500 ms budget
        SweepPoint(None, 64, 20.0, 80.0, 200.0, 250.0),  # adaptive: shown, never "the best batch size"
    ]
    assert best_within_budget(points, 500.0).batch_size == 8
    assert best_within_budget(points, 50.0) is None


def test_a_sweep_runs_each_size_over_the_same_sample_and_the_report_draws_it(bench_resources, query):
    made = BenchmarkDefinitions.of(BENCHMARK)
    materialize([dataset_asset(BENCHMARK.dataset)], bench_resources)
    materialize([made.weights], bench_resources, partition_key="linear_regression")
    config = {"ops": {"table_rows_batch_sweep": {"config": {"largest_batch_size": 8, "sample_items": 16}}}}
    result = materialize([made.sweep], bench_resources, partition_key="linear_regression", run_config=config)

    rows = query("SELECT batch_size, items, mean_batch_size, best_within_budget FROM batch_sweeps ORDER BY batch_size NULLS LAST")
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
