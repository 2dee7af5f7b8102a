"""Results you can trust: series join only runs that measure the same thing, a run that lost items stays out of
every trend, a run that predicted nothing builds through dbt, and accuracy is measured where answers are known.

One small DuckDB file of hand-made runs, with every metrics asset and check materialized once."""

import dagster as dg
import duckdb
import pytest

from bench_assets_tests.run_history import FINGERPRINT, HandMadeRun, build_metrics, fingerprint_with

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
DEFAULT = {**BF16, "beam_default": True}
BF16_RUN = {**BF16, "precision": "bf16"}
BENCH_DAGSTER_RUN_ID = "00000000-0000-0000-0000-00000000be9c"


def load_ms(milliseconds: float) -> dict:
    return {"mean_load_model_latency_milli_secs": milliseconds}


HISTORY = {
    "batching-mode": step_history(
        "batching-mode",
        {"batching": {**BERT_BATCHING, "mode": "beam_example"}},
        {"batching": {**BERT_BATCHING, "mode": "length_bucketed"}},
    ),
    # A person's own weights file, changed: other work.
    "weights": step_history(
        "weights", {"weights_source": "configured", "weights_sha256": "a" * 64},
        {"weights_source": "configured", "weights_sha256": "b" * 64},
    ),
    # Two machines alike but for one instruction set (AVX-512 BF16): never one series.
    "machine": step_history(
        "machine",
        {"fingerprint": fingerprint_with(machine={"instruction_sets": ["avx2", "fma", "avx512f", "avx512_bf16"]})},
        {"fingerprint": fingerprint_with(machine={"instruction_sets": ["avx2", "fma", "avx512f"]})},
    ),
    "dataset": step_history(
        "dataset",
        {"dataset": {"name": "openimage_sample", "source": "generated", "seed": 1, "sha256": "c" * 64}},
        {"dataset": {"name": "openimage_sample", "source": "/data/openimages", "seed": 1, "sha256": "d" * 64}},
    ),
    # Two runs recorded before machines were identified (under their old key), then one after: two series.
    "legacy": [HandMadeRun("legacy", [(4, 40.0)], legacy_key="old-key") for _ in range(2)]
    + [HandMadeRun("legacy", [(4, 40.0)])],
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
    # The answer (best_configuration). Beam's default run twice on one machine, at 11 then 10 items/s, the second
    # from a newer commit: it is the answer, at 1x.
    "default-twice": [
        HandMadeRun("default-twice", [(size, 1000.0)], wall_seconds=2.0, batching=DEFAULT, fingerprint=fingerprint)
        for size, fingerprint in ((11, FINGERPRINT), (10, fingerprint_with(commit="f" * 12)))
    ],
    # ONNX Runtime: four times fp32's inference stage, but a 10 s export at load: slower end to end over 30
    # items, faster once the load is set apart. fp32 ran twice.
    "export": [
        HandMadeRun("export", [(10, 1000.0)] * 3, wall_seconds=4.0, beam_metrics=load_ms(500), batching=DEFAULT,
                    weights_source="shipped")
        for _ in range(2)
    ] + [
        HandMadeRun("export", [(10, 250.0)] * 3, wall_seconds=12.0, beam_metrics=load_ms(10_000),
                    batching={**DEFAULT, "beam_default": False, "backend": "onnxruntime"}, weights_source="shipped")
    ],
    # bf16 is faster but one of its items failed in inference: it never wins.
    "inference-failure": [
        HandMadeRun("inference-failure", [(10, 1000.0)], batching=DEFAULT),
        HandMadeRun("inference-failure", [(10, 100.0)], failures=1, failure_stage="inference", batching=BF16_RUN),
    ],
    # Real weights, but fp32 was confident about nothing: nothing shows that bf16 predicts as well.
    "unconfident": [
        HandMadeRun("unconfident", [(10, 1000.0)], predicted=[(0, 0.3)] * 10, weights_source="shipped", batching=DEFAULT),
        HandMadeRun("unconfident", [(10, 100.0)], predicted=[(0, 0.3)] * 10, weights_source="shipped", batching=BF16_RUN),
    ],
    # Random weights: nothing to agree on, so the guard is not applied and the faster configuration wins.
    "random-weights": [
        HandMadeRun("random-weights", [(10, 1000.0)], predicted=FP32_PREDICTED, batching=DEFAULT),
        HandMadeRun("random-weights", [(10, 100.0)], predicted=flipped(FP32_PREDICTED, [0, 1, 2]), batching=BF16_RUN),
    ],
    # 1 GFLOP an item at 10 items/s: above a measured 5 GFLOP/s peak, half of a theoretical 20.
    "above-peak": [
        HandMadeRun("above-peak", [(10, 1000.0)], harness_metrics={
            "flops_per_item": 1e9, "peak_flops_per_second": 5e9, "theoretical_peak_flops_per_second": 2e10})
    ],
    # One model over two inputs; make bench's run (the second) read one of them.
    "two-inputs": [
        HandMadeRun("two-inputs", [(4, 40.0)], dataset={"name": "openimage_sample", "seed": 1, "sha256": sha * 64},
                    dagster_run_id=dagster_run_id)
        for sha, dagster_run_id in (("1", None), ("2", BENCH_DAGSTER_RUN_ID))
    ],
    "labelled": [
        HandMadeRun("labelled", [(4, 40.0)], expected_label="Tabby|TENCH"),
        HandMadeRun("labelled", [(2, 40.0)], expected_label="tabby"),
    ],
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    metrics = build_metrics(
        tmp_path_factory.mktemp("trust"), [run for history in HISTORY.values() for run in history], dbt_tests=(GUARD_CHECK,)
    )
    return {
        "result": metrics.result, "query": metrics.query, "ids": metrics.ids_by_model(HISTORY),
        "report": metrics.report.read_text(),
        "database": metrics.database,
    }


@pytest.mark.parametrize("model", ["batching-mode", "weights", "dataset", "machine"])
def test_runs_that_differ_in_batching_weights_dataset_or_machine_never_share_a_series(built, model):
    query = built["query"]
    keys = query("SELECT DISTINCT comparison_key FROM run_summary WHERE model = ?", [model])
    assert len(keys) == 2
    assert query(
        "SELECT comparable_runs, count(*) FROM run_summary WHERE model = ? GROUP BY ALL", [model]
    ) == [(RUNS_EACH_SIDE, 2 * RUNS_EACH_SIDE)]
    # Under one key the step from 40 to 60 ms would be a regression; as two flat series it is none.
    assert query("SELECT count(*) FROM regressions WHERE model = ?", [model]) == [(0,)]
    assert query("SELECT count(*) FROM change_points") == [(0,)]


def test_each_run_names_its_machine_by_cpu_and_instruction_sets(built):
    assert built["query"]("SELECT DISTINCT machine_label FROM run_summary WHERE model = 'machine' ORDER BY 1") == [
        ("Test CPU (fam 6 model 167) AVX-512 BF16, 2 cores",), ("Test CPU (fam 6 model 167) AVX-512, 2 cores",)
    ]


def test_runs_recorded_before_machines_were_identified_load_and_keep_their_own_series(built):
    rows = built["query"](
        "SELECT comparison_key, machine_id LIKE 'legacy-%', machine_label, project_commit, torch_threads, run_number "
        "FROM run_summary WHERE model = 'legacy' ORDER BY started_at"
    )
    old_label = "Test CPU, 2 cores (instruction sets not recorded)"
    assert rows[:2] == [("old-key", True, old_label, "unknown", 2, 1), ("old-key", True, old_label, "unknown", 2, 2)]
    assert rows[2][0] != "old-key" and rows[2][1:] == (False, "Test CPU (fam 6 model 167) AVX-512 BF16, 2 cores",
                                                       "a1b2c3d4e5f6", 2, 1)


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
        "guard_applies, passes FROM configuration_agreement WHERE run_id IN (?, ?) ORDER BY top1_agreement DESC",
        [bf16, broken],
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
        "SELECT run_id, precision, memory_format, accuracy_guard, runs, beam_default_runs, "
        "round(inference_items_per_second, 1), round(inference_speedup_over_beam_default, 3) "
        "FROM best_configuration WHERE model = 'agreement'"
    ) == [(bf16, "bf16", "contiguous", "passes", 1, 1, 166.7, 1.333)]
    assert "The answer" in built["report"]


ANSWER_SQL = (
    "SELECT backend, precision, accuracy_guard, runs, beam_default_runs, round(end_to_end_speedup_over_beam_default, 3), "
    "round(after_load_speedup_over_beam_default, 3), round(inference_speedup_over_beam_default, 3) "
    "FROM best_configuration WHERE model = ?"
)


def test_beams_default_run_twice_is_not_faster_than_itself(built):
    # Medians over each configuration's runs: the default is the answer at 1x, resting on both runs.
    assert built["query"](ANSWER_SQL, ["default-twice"]) == [("pytorch", "fp32", "reference", 2, 2, 1.0, None, 1.0)]
    assert built["query"](
        "SELECT inference_items_per_second FROM best_configuration WHERE model = 'default-twice'"
    ) == [(10.5,)]


def test_the_answer_names_the_end_to_end_speed_up_beside_the_one_with_the_load_set_apart(built):
    # fp32: 30 items in 4 s with a 0.5 s load (8.57 items/s after it); ONNX Runtime: 12 s with a 10 s load.
    assert built["query"](ANSWER_SQL, ["export"]) == [
        ("onnxruntime", "fp32", "passes", 1, 2, round(2.5 / 7.5, 3), round(15 / (30 / 3.5), 3), 4.0)
    ]
    assert built["query"](
        "SELECT round(load_seconds, 1), round(end_to_end_items_per_second, 2), round(items_per_second_after_load, 2) "
        "FROM best_configuration WHERE model = 'export'"
    ) == [(10.0, 2.5, 15.0)]


@pytest.mark.parametrize("model", ["inference-failure", "unconfident"])
def test_a_configuration_with_inference_failures_or_nothing_to_check_its_accuracy_by_never_wins(built, model):
    assert built["query"](ANSWER_SQL, [model])[0][:3] == ("pytorch", "fp32", "reference")


def test_with_random_weights_the_guard_is_not_applied_and_the_faster_configuration_wins(built):
    (random_bf16,) = built["query"](
        "SELECT passes, guard_applies FROM configuration_agreement a JOIN run_summary s USING (run_id) "
        "WHERE s.model = 'random-weights'"
    )
    assert random_bf16 == (False, False)
    assert built["query"](ANSWER_SQL, ["random-weights"])[0][:3] == ("pytorch", "bf16", "not applied: random weights")


def test_a_run_above_the_measured_peak_says_so_rather_than_a_share_over_100_percent(built):
    assert built["query"](
        "SELECT is_above_measured_peak, utilization, theoretical_utilization FROM run_summary WHERE model = 'above-peak'"
    ) == [(True, None, 0.5)]
    above_peak = built["report"].split('id="above-peak"', 1)[1]
    assert "this run went above it" in above_peak.split("</section>", 1)[0]


def test_make_bench_prints_one_fastest_line_per_model_and_input_and_the_configured_warm_up(built, monkeypatch, capsys):
    from bench_assets.cli.bench import print_summary

    # As if built with --vars '{warmup_seconds: 30}': the view run_summary, over the one dbt built.
    with duckdb.connect(str(built["database"])) as conn:
        conn.execute("ALTER VIEW run_summary RENAME TO run_summary_built")
        conn.execute("CREATE VIEW run_summary AS SELECT * REPLACE (30 AS warmup_seconds) FROM run_summary_built")
    monkeypatch.setenv("BENCH_DUCKDB_PATH", str(built["database"]))
    try:
        print_summary([BENCH_DAGSTER_RUN_ID])
    finally:
        with duckdb.connect(str(built["database"])) as conn:
            conn.execute("DROP VIEW run_summary")
            conn.execute("ALTER VIEW run_summary_built RENAME TO run_summary")
    printed = capsys.readouterr().out
    assert "inference after the first 30 s of batches" in printed
    (line,) = [line for line in printed.splitlines() if line.startswith("fastest so far")]
    assert line.startswith("fastest so far: two-inputs in fp32, batches 1-8 (median of 1 run; no Beam default run yet): ")
    assert "end to end" in line and "inference stage" in line


def test_inference_throughput_over_parallel_workers_counts_shared_time_once(built):
    assert built["query"]("SELECT round(inference_items_per_second, 4) FROM run_summary WHERE model = 'parallel'") == [
        (round(8 / 3.0, 4),)
    ]
    # But each item waited its share of a two-second batch of four: 500 ms, not the inverse throughput's 375.
    assert built["query"]("SELECT item_latency_mean_ms FROM run_summary WHERE model = 'parallel'") == [(500.0,)]
    assert built["query"](
        "SELECT batches - warmup_batches, round(steady_inference_items_per_second, 4), round(inference_items_per_second, 4) "
        "FROM run_summary WHERE model = 'parallel-steady'"
    ) == [(4, round(16 / 5.0, 4), round(256 / 65.0, 4))]
