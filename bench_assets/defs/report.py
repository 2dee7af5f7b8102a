"""The report asset: the HTML page of bench_assets/report (per model, each headline metric over its runs, the latest
run's figures, regressions marked), over the marts, written under the data folder."""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from bench_assets.defs.regression_checks import ALERT_WINDOW_RUNS
from bench_assets.defs.warehouse import AFTER_BENCHMARK_RUNS, DUCKDB_POOL, warehouse_dbt_assets
from bench_assets.report.page import render_report
from bench_assets.report.queries import report_rows
from bench_assets.settings import BenchmarkSettings

REPORT_PATH = "reports/benchmarks.html"  # under the data folder
REPORT_MARTS = (
    "latest_runs", "model_trend", "regressions", "configuration_agreement", "best_configuration", "batch_sweep",
    "machine_comparison", "latest_against_previous", "tuned_configuration",
)


@dg.asset(
    group_name="warehouse",
    deps=[get_asset_key_for_model([warehouse_dbt_assets], mart) for mart in REPORT_MARTS],
    pool=DUCKDB_POOL,
    kinds={"html"},
    automation_condition=AFTER_BENCHMARK_RUNS,
)
def benchmark_report(settings: BenchmarkSettings, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """A self-contained HTML page of every model's benchmark history, under the data folder."""
    with duckdb.get_connection() as conn:
        rows = report_rows(conn)
    page = render_report(generated_at=datetime.now(timezone.utc), **rows)
    path = settings.root / REPORT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "models": len(rows["latest"]),
            "runs": len({p["run_id"] for p in rows["trend"]}),
            "recent_regressions": sum(r["runs_since_change"] <= ALERT_WINDOW_RUNS for r in rows["regressions"]),
            "incomplete_runs": len(rows["incomplete"]),
            "bytes": len(page.encode()),
        }
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[benchmark_report])
