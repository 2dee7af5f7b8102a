"""The tuner: a model's best configuration on this machine in one materialization. Its trials are ordinary runs;
the tuning_trials and tuned_configuration marts judge them by the accuracy guard and pick the best."""

import dataclasses
import json
from datetime import datetime, timezone

import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from bench_assets.analysis.tuning import (
    BUDGET_SPENT, COMBINATION, CONFIRMATION, REFINEMENT, SINGLE, Trial, Tuner, batching_change, chain_starts, refusal,
    single_changes,
)
from bench_assets.benchmarks import BENCHMARKS_BY_NAME
from bench_assets.benchmarks.table_rows import BENCHMARK as TABLE_ROWS
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets.report.page import render_report
from bench_assets.report.queries import TUNED_SQL
from bench_assets.run.run_settings import RUN_SETTINGS
from bench_assets.store import runs as results
from bench_assets.store.marts import fetch_rows
from bench_assets_tests.conftest import materialize
from bench_assets_tests.run_history import HandMadeRun, write_runs

# Ten items: the reference configuration is confident (0.9) about the first five, unsure (0.3) about the rest.
REFERENCE_PREDICTED = [(item, 0.9 if item < 5 else 0.3) for item in range(10)]
BOUNDS = {"min_batch_size": 1, "max_batch_size": 8, "device": "CPU"}


def flipped(items: list[int]) -> list[tuple[int, float]]:
    return [(index + 100, score) if item in items else (index, score) for item, (index, score) in enumerate(REFERENCE_PREDICTED)]


def trial_run(batching: dict, wall_seconds: float, load_ms: float, predicted, batch_ms: float, failures: int = 0):
    return HandMadeRun(
        "tuned", [(5, batch_ms), (5, batch_ms)], predicted=predicted, weights_source="shipped", batching=batching,
        wall_seconds=wall_seconds, beam_metrics={"mean_load_model_latency_milli_secs": load_ms}, failures=failures,
        failure_stage="inference",
    )


def record_tuning(database: str, trials: list[tuple]) -> None:
    """Tuning "t" of the hand-made runs, its trials in order as (phase, changes, run_id), each run, or as (phase,
    changes, None, outcome, reason)."""
    with duckdb.connect(database) as conn:
        results.start_tuning(conn, {
            "tuning_id": "t", "benchmark": "image_classification", "model": "tuned", "profile": "smoke",
            "sample_items": 10, "budget_seconds": 60.0, "dagster_run_id": None, "started_at": datetime.now(timezone.utc),
        })
        for trial, (phase, changes, run_id, *outcome) in enumerate(trials, start=1):
            results.record_trial(conn, "t", trial, phase, changes, run_id, *(outcome or ("ran", None)))
        results.finish_tuning(conn, "t")


def test_the_best_trial_passes_the_guard_had_no_inference_failure_and_is_fastest_after_the_load(bench_resources, query, tmp_path):
    database = bench_resources["duckdb"].database
    # Beam's default: 10 items in 4.5 s of which 0.5 s load (2.5 items/s after the load).
    # bf16: 20 items/s after the load, but three of the five confident items flipped: it fails the guard.
    # channels_last: as fast, agrees, but one item failed in inference.
    # torch.compile: agrees (only unsure items flipped), 20 items/s after a 10 s load: slower end to end over ten
    # items, the best once the load is set apart.
    run_ids = write_runs(database, [
        trial_run({**BOUNDS, "beam_default": True}, 4.5, 500, REFERENCE_PREDICTED, 40.0),
        trial_run({**BOUNDS, "precision": "bf16"}, 1.0, 500, flipped([0, 1, 2]), 10.0),
        trial_run({**BOUNDS, "memory_format": "channels_last"}, 1.0, 500, REFERENCE_PREDICTED, 10.0, failures=1),
        trial_run({**BOUNDS, "compile": "torch.compile"}, 10.5, 10_000, flipped([7, 8]), 20.0),
    ], tmp_path / "runs")
    record_tuning(database, [
        ("beam_default", {}, run_ids[0]), ("single", {"precision": "bf16"}, run_ids[1]),
        ("single", {"memory_format": "channels_last"}, run_ids[2]), ("single", {"compile": "torch.compile"}, run_ids[3]),
        ("single", {"precision": "fp16"}, None, "refused", "fp16 needs device 'GPU'"),
    ])

    trials = query("SELECT trial, accuracy_guard, is_eligible, is_best, is_on_front FROM tuning_trials ORDER BY trial")
    assert trials == [
        (1, "reference", True, False, False),
        (2, "fails", False, False, False),
        (3, "passes", False, False, False),
        (4, "passes", True, True, True),
        (5, None, False, False, False),  # refused: no run
    ]
    ((trial, run_id, compile_setting, load, default_load, after_load, speedup, break_even, run, refused),) = query(
        "SELECT trial, run_id, compile, load_seconds, beam_default_load_seconds, items_per_second_after_load, "
        "ranking_speedup_over_beam_default, break_even_items, trials_run, trials_refused FROM tuned_configuration"
    )
    assert (trial, run_id, compile_setting, load, default_load) == (4, run_ids[3], "torch.compile", 10.0, 0.5)
    assert after_load == pytest.approx(20.0) and speedup == pytest.approx(8.0)
    # 0.5 + n / 2.5 = 10 + n / 20 at n = 9.5 / (1 / 2.5 - 1 / 20) = 27.1: it pays off from the 28th item.
    assert break_even == 28 and (run, refused) == (4, 1)


def test_the_tuner_tries_every_accepted_value_of_every_setting_from_the_spec():
    classification = BENCHMARKS_BY_NAME["image_classification"]
    changes = single_changes(classification)
    for setting in RUN_SETTINGS:
        accepted = classification.configurations.get(setting.name, (setting.default,)) if setting.configures_model else setting.values
        assert [c[setting.name] for c in changes if setting.name in c] == [v for v in accepted if v != setting.default]
    assert refusal(classification, {"precision": "fp16"}, cuda_available=False).startswith("precision 'fp16' needs")
    assert refusal(classification, {"device": "GPU"}, cuda_available=False) == "device 'GPU': no CUDA GPU on this machine"
    assert refusal(classification, {"precision": "bf16"}, cuda_available=False) is None
    assert "does not apply" in refusal(TABLE_ROWS, {"precision": "bf16"}, cuda_available=False)
    # The batch sweep's best batching, with the settings the benchmark sweeps in.
    language = BENCHMARKS_BY_NAME["language_modeling"]
    assert batching_change(language, 16) == {"batching_mode": "length_bucketed", "min_batch_size": 16, "max_batch_size": 16}
    assert batching_change(TABLE_ROWS, None) is None


def test_combinations_start_from_each_winner_the_faster_ones_shut_out():
    """As measured on efficientnet_lite0 here: ONNX Runtime fastest after the load, then OpenVINO, reduced decoding,
    torch.compile and bf16. Neither runtime takes the other or torch.compile; reduced decoding and bf16 join one."""
    classification = BENCHMARKS_BY_NAME["image_classification"]
    tuner = Tuner(classification, 60, run_trial=None, record=None, judged=None, log=print, cuda_available=False)
    winners = [Trial(changes, True, rate) for changes, rate in (
        ({"backend": "onnxruntime"}, 43.9), ({"backend": "openvino"}, 41.9), ({"decode": "reduced"}, 28.4),
        ({"compile": "torch.compile"}, 12.5), ({"precision": "bf16"}, 9.6),
    )]
    starts = chain_starts(winners, tuner.combinable)
    assert [start.changes for start in starts] == [
        {"backend": "onnxruntime"}, {"backend": "openvino"}, {"compile": "torch.compile"}
    ]
    assert tuner.combinable({"compile": "torch.compile"}, {"precision": "bf16"})
    assert not tuner.combinable({"backend": "onnxruntime"}, {"precision": "bf16"})


def test_a_change_that_lost_alone_is_tried_again_on_the_best_configuration():
    """Decoding ahead of inference, no faster than Beam's default while inference takes nearly all the time, is
    tried again once bf16 has made inference three times faster, and kept when it then helps (made-up rates)."""
    classification = BENCHMARKS_BY_NAME["image_classification"]

    def rate(changes: dict) -> float:
        fast = changes.get("precision") == "bf16"
        return 10.0 * (3 if fast else 1) * ((1.3 if fast else 0.98) if changes.get("prefetch") == "threads" else 1)

    ran: list[tuple[str, dict]] = []
    tuner = Tuner(
        classification, 600, run_trial=lambda changes, run_id, whole_input: None,
        record=lambda trial, phase, changes, run_id, outcome, reason: ran.append((phase, changes)) if outcome == "ran" else None,
        judged=lambda trial: {"is_eligible": True, "ranking_items_per_second": rate(ran[-1][1]),
                              "accuracy_guard": "passes", "is_measured": True, "load_seconds": 0.0},
        log=lambda message: None, cuda_available=False,
    )
    tuner.tune(None)
    assert (SINGLE, {"prefetch": "threads"}) in ran and (SINGLE, {"precision": "bf16"}) in ran
    assert (COMBINATION, {"precision": "bf16", "prefetch": "threads"}) not in ran  # prefetch lost alone
    assert (REFINEMENT, {"precision": "bf16", "prefetch": "threads"}) in ran
    assert tuner.best.changes == {"precision": "bf16", "prefetch": "threads"}


def confirmed_tuning(
    confirm_items: int, sample_guard: str = "passes"
) -> tuple[Tuner, list[tuple[str, dict, str, str | None]]]:
    """A tuning with made-up rates: bf16 3x Beam's default, channels_last 2x, both 6x, every other change 0.9x.
    bf16 passes the accuracy guard on the sample (`sample_guard` says what the guard says of every change there)
    and fails it over the whole input."""
    classification = BENCHMARKS_BY_NAME["image_classification"]

    def rate(changes: dict) -> float:
        speed = 10.0 * (3 if changes.get("precision") == "bf16" else 1) * (2 if changes.get("memory_format") else 1)
        return speed * 0.9 ** len(changes.keys() - {"precision", "memory_format"})

    trials: list[tuple[str, dict, str, str | None]] = []
    tuner = Tuner(
        classification, 600, run_trial=lambda changes, run_id, whole_input: None,
        record=lambda trial, phase, changes, run_id, outcome, reason: trials.append((phase, changes, outcome, reason)),
        judged=lambda trial: {
            "is_eligible": trials[-1][0] != CONFIRMATION,
            "ranking_items_per_second": rate(trials[-1][1]),
            "accuracy_guard": "reference" if not trials[-1][1] else (
                "fails" if "precision" in trials[-1][1] else "passes") if trials[-1][0] == CONFIRMATION else sample_guard,
            "is_measured": True,
            "load_seconds": 0.0,
        },
        log=lambda message: None, cuda_available=False, confirm_items=confirm_items,
    )
    tuner.tune(None)
    return tuner, trials


def test_the_best_over_the_sample_is_confirmed_over_the_whole_input_and_set_aside_where_the_guard_fails_it():
    tuner, trials = confirmed_tuning(confirm_items=300)
    confirmations = [changes for phase, changes, outcome, _ in trials if phase == CONFIRMATION and outcome == "ran"]
    # Beam's default first (the guard's reference over the whole input), then the best over the sample and, while
    # the guard fails it there, the next best: the bf16 ones (with channels_last, then with it and each change that
    # lost alone, then alone), until channels_last alone passes.
    assert confirmations[:2] == [{}, {"precision": "bf16", "memory_format": "channels_last"}]
    assert all(changes["precision"] == "bf16" for changes in confirmations[1:-1]) and {"precision": "bf16"} in confirmations
    assert confirmations[-1] == {"memory_format": "channels_last"} == tuner.best.changes


def test_a_confirmation_that_would_overrun_the_budget_is_skipped_and_says_so():
    tuner, trials = confirmed_tuning(confirm_items=10**9)
    ((changes, outcome, reason),) = [(changes, outcome, reason) for phase, changes, outcome, reason in trials
                                     if phase == CONFIRMATION]
    # Beam's default and the best, each over the whole input: 10**9 items at 10 and at 60 items/s.
    assert (changes, outcome) == ({}, "skipped") and reason.startswith("about 116,666,667 s over the whole input")
    assert tuner.best.changes == {"precision": "bf16", "memory_format": "channels_last"}  # on the sample's evidence


def test_a_best_the_guard_cannot_fail_is_not_confirmed():
    tuner, trials = confirmed_tuning(confirm_items=300, sample_guard="not applied: random weights")
    assert not [phase for phase, *_ in trials if phase == CONFIRMATION]
    assert tuner.best.changes == {"precision": "bf16", "memory_format": "channels_last"}


@pytest.mark.parametrize("over_whole_input, holds", [
    ({"predicted": flipped([0, 1, 2])}, False),  # three confident items flipped: the guard fails
    ({"predicted": flipped([7])}, True),  # an unsure item flipped: the guard passes
    ({"predicted": flipped([7]), "failures": 1}, False),  # an inference failure: not measured
])
def test_a_trial_that_fails_over_the_whole_input_is_not_eligible(over_whole_input, holds, bench_resources, query, tmp_path):
    """bf16 passes over the sample (only unsure items flipped); the tuner ran it again over the whole input beside
    Beam's default. Where it fails there, Beam's default is the best; where it holds, bf16 is, confirmed."""
    database = bench_resources["duckdb"].database
    whole = {"name": "openimage_sample", "seed": 2026, "sha256": "e" * 64}
    bf16 = {**BOUNDS, "precision": "bf16"}
    confirmed = {"predicted": flipped([7, 8]), "failures": 0, **over_whole_input}
    run_ids = write_runs(database, [
        trial_run({**BOUNDS, "beam_default": True}, 4.5, 500, REFERENCE_PREDICTED, 40.0),
        trial_run(bf16, 1.0, 500, flipped([7, 8]), 10.0),
        dataclasses.replace(trial_run({**BOUNDS, "beam_default": True}, 4.5, 500, REFERENCE_PREDICTED, 40.0), dataset=whole),
        dataclasses.replace(trial_run(bf16, 1.0, 500, confirmed["predicted"], 10.0, confirmed["failures"]), dataset=whole),
    ], tmp_path / "runs")
    record_tuning(database, [
        ("beam_default", {}, run_ids[0]), ("single", {"precision": "bf16"}, run_ids[1]),
        (CONFIRMATION, {}, run_ids[2]), (CONFIRMATION, {"precision": "bf16"}, run_ids[3]),
    ])

    assert query(
        "SELECT trial, fails_on_whole_input, is_eligible, is_best FROM tuning_trials ORDER BY trial"
    ) == [
        (1, False, True, not holds),
        (2, not holds, holds, holds),
        (3, False, False, False),  # judged, never ranked
        (4, not holds, False, False),
    ]
    best = (2, run_ids[1], True) if holds else (1, run_ids[0], False)  # Beam's default needs no confirmation
    assert query("SELECT trial, run_id, guard_confirmed_over_whole_input FROM tuned_configuration") == [best]


def tune_table_rows(bench_resources, budget_seconds: float, swept: bool = True):
    """The table rows benchmark swept (its best batch size becomes a trial), then tuned over 16 items."""
    made = BenchmarkDefinitions.of(TABLE_ROWS)
    materialize([dataset_asset(TABLE_ROWS.dataset)], bench_resources)
    materialize([made.weights], bench_resources, partition_key="linear_regression")
    if swept:
        sweep = {"ops": {"table_rows_batch_sweep": {"config": {"largest_batch_size": 4, "sample_items": 16}}}}
        materialize([made.sweep], bench_resources, partition_key="linear_regression", run_config=sweep)
    config = {"ops": {"table_rows_tuning": {"config": {"sample_items": 16, "budget_seconds": budget_seconds}}}}
    result = materialize([made.tuning], bench_resources, partition_key="linear_regression", run_config=config)
    return result.asset_materializations_for_node("table_rows_tuning")[0].metadata


@pytest.mark.slow
def test_a_tuning_records_every_trial_as_a_run_over_its_sample(bench_resources, query):
    metadata = tune_table_rows(bench_resources, budget_seconds=600)
    trials = query("SELECT phase, changes, outcome, run_id FROM trials ORDER BY trial")
    # Beam's default, the GPU (scikit-learn runs on the CPU only: refused), the sweep's best batch size. No
    # confirmation over the whole input: a batch size keeps the reference configuration, the guard cannot fail it.
    assert [(phase, outcome) for phase, _, outcome, _ in trials] == [
        ("beam_default", "ran"), ("single", "refused"), ("batching", "ran")
    ]
    assert json.loads(trials[1][1]) == {"device": "GPU"}
    ran = [run_id for *_, outcome, run_id in trials if outcome == "ran"]
    assert query(
        "SELECT count(*) FROM runs WHERE run_id IN (SELECT unnest(?)) AND status = 'finished' AND dataset_size = 16", [ran]
    ) == [(2,)]
    ((best_run, best_trial),) = query("SELECT run_id, trial FROM tuned_configuration")
    assert best_run in ran and metadata["best_run_id"].value == best_run and metadata["trials_run"].value == 2
    assert len(metadata["trials"].value.splitlines()) == 2 + len(trials)  # header, rule, a row per trial

    # The report's tuned configurations: the model's latest tuning, against Beam's default.
    with duckdb.connect(bench_resources["duckdb"].database, read_only=True) as conn:
        tuned = fetch_rows(conn, TUNED_SQL)
    assert [(row["model"], row["run_id"]) for row in tuned] == [("linear_regression", best_run)]
    page = render_report([], [], [], datetime.now(timezone.utc), tuned=tuned)
    assert 'id="tuned"' in page and "linear_regression (16 items)" in page
    assert ("the reference" if best_trial == 1 else "<td>reference</td>") in page  # Beam's default, or a batch size


@pytest.mark.slow
def test_a_tuning_starts_no_trial_once_its_budget_is_spent(bench_resources, query):
    metadata = tune_table_rows(bench_resources, budget_seconds=0.1)  # less than any Beam pipeline takes
    trials = query("SELECT phase, outcome, reason FROM trials ORDER BY trial")
    assert [(phase, outcome) for phase, outcome, _ in trials] == [
        ("beam_default", "ran"), ("single", "refused"), ("batching", "skipped")
    ]
    assert trials[1][2] == "device 'GPU': scikit-learn's LinearRegression runs on the CPU only"
    assert trials[2][2] == BUDGET_SPENT
    assert metadata["trials_run"].value == 1 and metadata["trials_skipped"].value == 1


@pytest.mark.slow
def test_a_tuning_is_the_first_thing_a_new_results_file_holds(bench_resources, tmp_path):
    new_file = tmp_path / "new.duckdb"  # no raw tables, no marts yet
    metadata = tune_table_rows({**bench_resources, "duckdb": DuckDBResource(database=str(new_file))}, 600, swept=False)
    with duckdb.connect(str(new_file), read_only=True) as conn:
        assert conn.execute("SELECT phase, outcome FROM trials ORDER BY trial").fetchall() == [
            ("beam_default", "ran"), ("single", "refused")
        ]
    assert metadata["best_configuration"].value == "Beam default"
