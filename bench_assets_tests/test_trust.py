"""Results you can trust: series join only runs that measure the same thing, a run that lost items stays out of
every trend, a run that predicted nothing builds through dbt, and accuracy is measured where answers are known.

One small DuckDB file of hand-made runs, with every metrics asset and check materialized once."""

import dagster as dg
import pytest

from bench_assets_tests.run_history import HandMadeRun, build_metrics

RUNS_EACH_SIDE = 6  # six runs one way, then six the other: under one key, a +50% step (a regression)


def step_history(model: str, before: dict, after: dict) -> list[HandMadeRun]:
    """Runs whose batches take 40 ms with one setting, then 60 ms with another: a step if they shared a series."""
    return [HandMadeRun(model, [(4, 40.0)], **before) for _ in range(RUNS_EACH_SIDE)] + [
        HandMadeRun(model, [(4, 60.0)], **after) for _ in range(RUNS_EACH_SIDE)
    ]


def flipped(predicted: list[tuple[int, float]], items: list[int]) -> list[tuple[int, float]]:
    return [(index + 100, score) if item in items else (index, score) for item, (index, score) in enumerate(predicted)]


# Ten items: fp32 is confident (0.9) about the first five, unsure (0.3) about the rest.
FP32_PREDICTED = [(item, 0.9 if item < 5 else 0.3) for item in range(10)]
BF16 = {"min_batch_size": 1, "max_batch_size": 8, "device": "CPU"}
GUARD_CHECK = "expression_is_true_configuration_agreement_passes_or_not_guard_applies"
BERT_BATCHING = {"min_batch_size": 1, "max_batch_size": 1, "device": "CPU"}
HISTORY = {
    "batching-mode": step_history(
        "batching-mode",
        {"batching": {**BERT_BATCHING, "mode": "beam_example"}},
        {"batching": {**BERT_BATCHING, "mode": "length_bucketed"}},
    ),
    "weights": step_history("weights", {"weights_sha256": "a" * 64}, {"weights_sha256": "b" * 64}),
    "dataset": step_history(
        "dataset",
        {"dataset": {"name": "openimage_sample", "source": "generated", "seed": 1, "sha256": "c" * 64}},
        {"dataset": {"name": "openimage_sample", "source": "/data/openimages", "seed": 1, "sha256": "d" * 64}},
    ),
    # Four complete runs, then one that lost a line (and whose figures are off): visible, in no series.
    "lossy": [HandMadeRun("lossy", [(2, 40.0), (2, 40.0)]) for _ in range(4)]
    + [HandMadeRun("lossy", [(2, 400.0), (2, 400.0)], lost=1)],
    # Every line failed before inference: no batch at all.
    "all-bad": [HandMadeRun("all-bad", [], failures=5)],
    # The accuracy guard: fp32, then bf16 flipping two unsure items (passes), then a configuration flipping three
    # of the five items fp32 was confident about (fails). Real weights, so the guard applies.
    "agreement": [
        HandMadeRun(
            "agreement", [(5, 40.0), (5, 40.0)], predicted=FP32_PREDICTED, weights_source="shipped",
            batching={**BF16, "beam_default": True},
        ),
        HandMadeRun(
            "agreement", [(5, 30.0), (5, 30.0)], predicted=flipped(FP32_PREDICTED, [7, 8]), weights_source="shipped",
            batching={**BF16, "precision": "bf16"},
        ),
        HandMadeRun(
            "agreement", [(5, 20.0), (5, 20.0)], predicted=flipped(FP32_PREDICTED, [0, 1, 2]), weights_source="shipped",
            batching={**BF16, "precision": "bf16", "memory_format": "channels_last"},
        ),
    ],
    # Two batches a second apart that take two seconds each: on two workers at once, busy 3 s, not 4.
    "parallel": [HandMadeRun("parallel", [(4, 2000.0), (4, 2000.0)])],
    # 64 such batches, a second apart: the four after the 60 s warm-up (at 60-63 s) are busy 60-65 s.
    "parallel-steady": [HandMadeRun("parallel-steady", [(4, 2000.0)] * 64)],
    "labelled": [
        HandMadeRun("labelled", [(4, 40.0)], expected_label="Tabby|TENCH"),
        HandMadeRun("labelled", [(2, 40.0)], expected_label="tabby"),
    ],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    metrics = build_metrics(tmp_path_factory.mktemp("trust"), [run for history in HISTORY.values() for run in history])
    ids, start = {}, 0
    for model, history in HISTORY.items():
        ids[model] = metrics.run_ids[start:start + len(history)]
        start += len(history)
    return {"result": metrics.result, "query": metrics.query, "ids": ids, "report": metrics.report.read_text()}


@pytest.mark.parametrize("model", ["batching-mode", "weights", "dataset"])
def test_runs_that_differ_in_batching_weights_or_dataset_never_share_a_series(built, model):
    query = built["query"]
    keys = query("SELECT DISTINCT comparison_key FROM run_summary WHERE model = ?", [model])
    assert len(keys) == 2
    assert query(
        "SELECT comparable_runs, count(*) FROM run_summary WHERE model = ? GROUP BY ALL", [model]
    ) == [(RUNS_EACH_SIDE, 2 * RUNS_EACH_SIDE)]
    # Under one key the step from 40 to 60 ms would be a regression; as two flat series it is none.
    assert query("SELECT count(*) FROM regressions WHERE model = ?", [model]) == [(0,)]
    assert query("SELECT count(*) FROM change_points") == [(0,)]


def test_a_run_that_lost_an_item_is_visible_but_in_no_series(built):
    query = built["query"]
    lossy = built["ids"]["lossy"]
    assert query(
        "SELECT is_complete, run_number, comparable_runs, dataset_size, predictions, failures FROM run_summary "
        "WHERE run_id = ?", [lossy[-1]]
    ) == [(False, None, None, 5, 4, 0)]
    assert query("SELECT count(*) FROM model_trend WHERE run_id = ?", [lossy[-1]]) == [(0,)]
    assert query("SELECT max(run_number), max(comparable_runs) FROM run_summary WHERE model = 'lossy'") == [(4, 4)]
    assert query("SELECT run_id, finished_runs FROM latest_runs WHERE model = 'lossy'") == [(lossy[-2], 5)]
    assert 'id="incomplete-runs"' in built["report"] and lossy[-1] in built["report"]
    # The report sets each model's latest run against the comparable one before it, with a verdict.
    latest_against_previous = built["report"].split('id="latest-against-previous"', 1)[1].split("</section>", 1)[0]
    assert "lossy" in latest_against_previous and "no clear change" in latest_against_previous


def test_a_run_that_predicted_nothing_builds_green_with_its_failures_by_stage(built):
    result = built["result"]
    assert result.success
    failed_checks = [c.check_name for c in result.get_asset_check_evaluations() if not c.passed]
    assert failed_checks == [GUARD_CHECK]  # the broken configuration's, a warning (see the guard's test)
    (row,) = built["query"](
        "SELECT predictions, failures, batches, is_complete, batch_latency_p50_ms, inference_items_per_second "
        "FROM run_summary WHERE model = 'all-bad'"
    )
    assert row == (0, 5, 0, True, None, None)
    assert 'id="all-bad"' in built["report"]


def test_accuracy_counts_a_prediction_right_when_it_is_one_of_the_accepted_answers(built):
    rows = built["query"](
        "SELECT labelled_predictions, top1_accuracy FROM run_summary WHERE model = 'labelled' ORDER BY started_at"
    )
    assert rows == [(4, 1.0), (2, 0.0)]  # predictions say "tench"
    assert built["query"]("SELECT top1_accuracy FROM run_summary WHERE model = 'weights' LIMIT 1") == [(None,)]


def test_the_accuracy_guard_passes_a_configuration_that_agrees_where_fp32_was_sure_and_fails_one_that_does_not(built):
    fp32, bf16, broken = built["ids"]["agreement"]
    rows = built["query"](
        "SELECT run_id, baseline_run_id, compared_items, top1_agreement, confident_items, confident_agreement, "
        "guard_applies, passes FROM configuration_agreement ORDER BY top1_agreement DESC"
    )
    assert rows == [(bf16, fp32, 10, 0.8, 5, 1.0, True, True), (broken, fp32, 10, 0.7, 5, 0.4, True, False)]
    (guard,) = [c for c in built["result"].get_asset_check_evaluations() if c.check_name == GUARD_CHECK]
    assert not guard.passed and guard.severity == dg.AssetCheckSeverity.WARN
    assert built["query"](
        "SELECT precision, memory_format FROM run_summary WHERE run_id IN (?, ?, ?) ORDER BY started_at", [fp32, bf16, broken]
    ) == [("fp32", "contiguous"), ("bf16", "contiguous"), ("bf16", "channels_last")]
    # The report's overview sets each configuration beside fp32, with its speed-up and the guard's verdict.
    overview = built["report"].split('<section id="overview">', 1)[1].split("</section>", 1)[0]
    assert "Configurations beside fp32" in overview
    assert "bf16 channels_last" in overview and "fails" in overview and "passes" in overview


def test_the_answer_is_the_fastest_configuration_that_passes_the_guard_and_its_speed_up_over_beams_default(built):
    fp32, bf16, broken = built["ids"]["agreement"]
    # The broken configuration is faster (250 items/s) but fails the guard; bf16 (166.7) passes; fp32 is 125.
    assert built["query"](
        "SELECT run_id, precision, memory_format, round(inference_items_per_second, 1), "
        "round(speedup_over_beam_default, 3) FROM best_configuration WHERE model = 'agreement'"
    ) == [(bf16, "bf16", "contiguous", 166.7, 1.333)]
    assert "The answer" in built["report"]


def test_inference_throughput_over_parallel_workers_counts_shared_time_once(built):
    assert built["query"]("SELECT round(inference_items_per_second, 4) FROM run_summary WHERE model = 'parallel'") == [
        (round(8 / 3.0, 4),)
    ]
    assert built["query"](
        "SELECT batches - warmup_batches, round(steady_inference_items_per_second, 4), round(inference_items_per_second, 4) "
        "FROM run_summary WHERE model = 'parallel-steady'"
    ) == [(4, round(16 / 5.0, 4), round(256 / 65.0, 4))]
