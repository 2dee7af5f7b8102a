"""Regression checks on the `regressions` mart: one per headline metric, failing while a change for the worse
is recent, with the model, the run where it changed, the values before and after and what changed under test
(library versions, the project's commit) in its metadata."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from dagster_duckdb import DuckDBResource

from bench_assets.defs.metadata import readable_metadata
from bench_assets.defs.warehouse import DUCKDB_POOL, warehouse_dbt_assets
from bench_assets.store.marts import HeadlineMetric, headline_metrics

REGRESSIONS = get_asset_key_for_model([warehouse_dbt_assets], "regressions")
# Like Beam's perf alerts: a change is news for the 14 runs that follow it, then it is the new normal.
ALERT_WINDOW_RUNS = 14


def recent_regressions(duckdb: DuckDBResource, metric: str) -> list[dict]:
    with duckdb.get_connection() as conn:
        table = conn.execute(
            "SELECT model, profile, run_id, changed_at, value_before, value_after, change_pct, runs_since_change, "
            "what_changed "
            "FROM regressions WHERE metric = ? AND runs_since_change <= ? ORDER BY changed_at DESC, model",
            [metric, ALERT_WINDOW_RUNS],
        )
        columns = [d[0] for d in table.description]
        return [dict(zip(columns, row)) for row in table.fetchall()]


def regression_check(headline: HeadlineMetric) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=REGRESSIONS,
        name=f"no_recent_regression_in_{headline.metric}",
        description=f"{headline.label} ({headline.better} is better) has not changed for the worse in the "
        f"last {ALERT_WINDOW_RUNS} comparable runs of any model.",
        pool=DUCKDB_POOL,
    )
    def check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        found = recent_regressions(duckdb, headline.metric)
        metadata: dict = {"regressions": len(found), "unit": headline.unit}
        if found:
            latest = found[0]
            metadata |= {
                "model": latest["model"],
                "run_id": latest["run_id"],
                "changed_at": latest["changed_at"].isoformat(),
                "value_before": latest["value_before"],
                "value_after": latest["value_after"],
                "change_pct": latest["change_pct"],
                "what_changed": latest["what_changed"],
                "all_recent": dg.MetadataValue.md(regressions_table(found, headline.unit)),
            }
        return dg.AssetCheckResult(passed=not found, metadata=readable_metadata(metadata))

    return check


def regressions_table(found: list[dict], unit: str) -> str:
    lines = [
        f"| model | profile | run where it changed | before ({unit}) | after ({unit}) | change | runs since | what changed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['model']} | {r['profile']} | {r['run_id']} ({r['changed_at']:%Y-%m-%d %H:%M}) | {r['value_before']:.4g} "
        f"| {r['value_after']:.4g} | {r['change_pct']:+.1f}% | {r['runs_since_change']} | {r['what_changed']} |"
        for r in found
    ]
    return "\n".join(lines)


regression_checks = [regression_check(headline) for headline in headline_metrics()]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(asset_checks=regression_checks)
