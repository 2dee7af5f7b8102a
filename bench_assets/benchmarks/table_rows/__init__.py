"""Table-row inference (Beam's `table_row_inference` benchmark): a fitted scikit-learn LinearRegression predicts
y = sum(features) for each JSON row of a seeded table, through Beam's sklearn model handler."""

from bench_assets.benchmarks.table_rows.models import TABLE_MODELS, TABLE_ROWS_BENCHMARK, fit_table_model
from bench_assets.benchmarks.table_rows.pipeline import TableRowsRunConfig, build_run
from bench_assets.datasets.table_rows import TABLE_ROWS
from bench_assets.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    name=TABLE_ROWS_BENCHMARK,
    description="Regression over JSON table rows with Beam RunInference and a fitted scikit-learn LinearRegression.",
    dataset=TABLE_ROWS,
    models=TABLE_MODELS,
    build_pipeline=build_run,
    run_config=TableRowsRunConfig,
    prepare_weights=fit_table_model,
    kinds=frozenset({"beam", "sklearn", "duckdb"}),
    beam_metrics_namespace="BeamML_Sklearn",
    configurations={"precision": ("fp32",), "memory_format": ("contiguous",)},  # scikit-learn: float64 on CPU
)
