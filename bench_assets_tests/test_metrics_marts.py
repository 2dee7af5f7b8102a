"""The dbt marts, the change-point analysis, the regression checks and the report, built once on a small
DuckDB file of hand-made runs: one run whose percentiles are worked out by hand, a model whose batch latency
steps up 30% from its eighth run, a steady model on a runner without Beam metrics, and a failed run."""

import re

import pytest

from bench_assets.settings import REPO_ROOT
from bench_assets_tests.run_history import HandMadeRun, build_metrics

BEAM_MEANS = ("mean_batch_size", "mean_batch_latency_ms", "load_model_latency_ms")
STEP_RUN = 7  # resnet50's batches take 30% longer from its eighth run on


def jitter(run: int, batch: int) -> float:
    """A fixed ±1% wobble, so that series are not perfectly flat."""
    return 1 + 0.01 * (((run * 7 + batch * 3) % 5) - 2) / 2


def resnet50_run(run: int) -> HandMadeRun:
    latency = 40.0 * (1.3 if run >= STEP_RUN else 1.0)
    batches = [(4, latency * jitter(run, b)) for b in range(3)]
    return HandMadeRun(
        "resnet50",
        batches,
        beam_metrics={
            "mean_inference_request_batch_size": 4.0,
            "mean_inference_batch_latency_micro_secs": 1000 * sum(ms for _, ms in batches) / 3,
            "mean_load_model_latency_milli_secs": 900.0 * jitter(run, 9),
        },
        wall_seconds=20.0,
    )


# Each item's share of its batch: 5, 5, 4 and 8 ms.
PERCENTILE_RUN = HandMadeRun(
    "resnet101",
    batches=[(2, 10.0), (1, 4.0), (1, 8.0)],
    beam_metrics={
        "mean_inference_request_batch_size": 4 / 3,
        "mean_inference_batch_latency_micro_secs": 22_000 / 3,
        "mean_load_model_latency_milli_secs": 1500.0,
    },
    wall_seconds=8.0,
    peak_rss_bytes=3 * 2**30,
    failures=1,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The history written, then every metrics asset and check materialized, as after a nightly run."""
    history = (
        [PERCENTILE_RUN]
        + [resnet50_run(run) for run in range(12)]
        + [HandMadeRun("efficientnet_lite0", [(8, 30.0 * jitter(run, b)) for b in range(2)]) for run in range(12)]
        + [HandMadeRun("resnet50", [(4, 40.0)], status="failed")]
    )
    metrics = build_metrics(tmp_path_factory.mktemp("metrics"), history, dbt_tests=True)
    run_ids, result, query = metrics.run_ids, metrics.result, metrics.query
    return {
        "result": result,
        "query": query,
        "percentile_run": run_ids[0],
        "resnet50": run_ids[1:13],
        "efficientnet_lite0": run_ids[13:25],
        "failed": run_ids[25],
        "report": metrics.report,
    }


def test_percentiles_and_throughput_are_computed_from_the_batch_records(built):
    columns = (
        "batches, batch_latency_p50_ms, batch_latency_p90_ms, batch_latency_p99_ms, item_latency_p50_ms, "
        "item_latency_p90_ms, item_latency_p99_ms, item_latency_mean_ms, inference_items_per_second, "
        "end_to_end_items_per_second, predictions, failures, wall_seconds, peak_rss_mib, "
        "mean_batch_size, mean_batch_latency_ms, load_model_latency_ms"
    )
    (row,) = built["query"](f"SELECT {columns} FROM run_summary WHERE run_id = ?", [built["percentile_run"]])
    # Batch latencies 4, 8, 10 ms; linear interpolation between closest ranks: p90 = 8 + 0.8 * (10 - 8).
    # Items (one row each) 4, 5, 5, 8 ms: p90 = 5 + 0.7 * (8 - 5). Inference: 4 items in 22 ms.
    expected = (3, 8.0, 9.6, 9.96, 5.0, 7.1, 7.91, 5.5, 4 / 0.022, 4 / 8.0, 4, 1, 8.0, 3072.0, 4 / 3, 22 / 3, 1500.0)
    assert row == pytest.approx(expected)


def test_marts_hold_each_finished_run_once_and_the_latest_per_model(built):
    query = built["query"]
    summarized = {run_id for (run_id,) in query("SELECT run_id FROM run_summary")}
    assert summarized == {built["percentile_run"], *built["resnet50"], *built["efficientnet_lite0"]}
    assert query("SELECT count(*) FROM runs WHERE status = 'failed'") == [(1,)]

    latest = query("SELECT model, run_id, finished_runs, comparable_runs FROM latest_runs ORDER BY model")
    assert latest == [
        ("efficientnet_lite0", built["efficientnet_lite0"][-1], 12, 12),
        ("resnet101", built["percentile_run"], 1, 1),
        ("resnet50", built["resnet50"][-1], 12, 12),
    ]
    # Beam's three means are missing for the runner without metrics; the platform's own five are everywhere.
    trend = dict(query("SELECT model, count(*) FROM model_trend GROUP BY model"))
    assert trend == {"resnet50": 12 * 8, "efficientnet_lite0": 12 * 5, "resnet101": 8}
    assert query(
        "SELECT count(*) FROM model_trend WHERE model = 'efficientnet_lite0' AND metric IN ?", [list(BEAM_MEANS)]
    ) == [(0,)]
    numbers = query("SELECT list(run_number ORDER BY started_at) FROM run_summary WHERE model = 'resnet50'")
    assert numbers == [(list(range(1, 13)),)]


def test_the_latency_step_is_a_regression_at_the_run_where_it_began(built):
    rows = built["query"](
        "SELECT metric, run_id, value_before, value_after, runs_before, runs_after, runs_since_change "
        "FROM regressions WHERE model = 'resnet50' ORDER BY metric"
    )
    step_run = built["resnet50"][STEP_RUN]
    assert [(metric, run_id) for metric, run_id, *_ in rows] == [
        ("batch_latency_p50_ms", step_run),
        ("batch_latency_p99_ms", step_run),
        ("inference_items_per_second", step_run),
        ("mean_batch_latency_ms", step_run),
    ]
    values = {metric: (before, after) for metric, _, before, after, *_ in rows}
    assert values["batch_latency_p50_ms"] == pytest.approx((40.0, 52.0), rel=0.02)
    assert values["inference_items_per_second"] == pytest.approx((100.0, 100 / 1.3), rel=0.02)
    assert {tuple(row[4:]) for row in rows} == {(7, 5, 5)}
    assert built["query"]("SELECT count(*) FROM regressions WHERE model <> 'resnet50'") == [(0,)]


def test_regression_checks_fail_for_the_stepped_metrics_naming_the_run_and_values(built):
    evaluations = {
        e.check_name: e for e in built["result"].get_asset_check_evaluations() if e.check_name.startswith("no_recent")
    }
    failed = {name for name, e in evaluations.items() if not e.passed}
    assert failed == {
        "no_recent_regression_in_batch_latency_p50_ms",
        "no_recent_regression_in_batch_latency_p99_ms",
        "no_recent_regression_in_inference_items_per_second",
        "no_recent_regression_in_mean_batch_latency_ms",
    }
    assert len(evaluations) == 8
    metadata = evaluations["no_recent_regression_in_batch_latency_p99_ms"].metadata
    assert metadata["model"].value == "resnet50"
    assert metadata["run_id"].value == built["resnet50"][STEP_RUN]
    assert metadata["value_before"].value == pytest.approx(40.0, rel=0.02)
    assert metadata["value_after"].value == pytest.approx(52.0, rel=0.02)


def test_dbt_tests_run_as_asset_checks_and_pass(built):
    dbt_checks = [e for e in built["result"].get_asset_check_evaluations() if not e.check_name.startswith("no_recent")]
    by_name = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in dbt_checks}
    assert by_name[("run_summary", "unique_run_summary_run_id")]
    assert by_name[("regressions", "relationships_regressions_run_id__run_id__ref_run_summary_")]
    assert len(by_name) > 40 and all(by_name.values())


def test_the_report_has_a_section_per_model_with_charts_and_the_regressions_marked(built):
    page = built["report"].read_text()
    sections = dict(re.findall(r'<section class="model" id="([^"]+)">(.*?)</section>', page, re.S))
    assert set(sections) == {"resnet50", "resnet101", "efficientnet_lite0"}
    charts = re.findall(r'<svg class="chart"[^>]*data-points="(\d+)"', sections["resnet50"])
    assert [int(points) for points in charts] == [12] * 8
    assert sections["resnet50"].count('<g class="regression">') == 4
    assert '<g class="regression">' not in sections["efficientnet_lite0"]
    materialization = built["result"].asset_materializations_for_node("benchmark_report")[0]
    assert materialization.metadata["recent_regressions"].value == 4


def test_the_documented_queries_run_as_written(built):
    queries = re.findall(r"```sql\n(.*?)```", (REPO_ROOT / "docs" / "results.md").read_text(), re.S)
    assert len(queries) == 5
    for sql in queries:
        assert built["query"](sql), sql
