"""What `make bench` prints: a few lines per run, none twice, and a failing run's output when it fails."""

import io
import re
import subprocess
import sys

import pytest

from bench_assets.cli.bench import Console, RunFollower, run_job, tuned_line
from bench_assets.pipeline.progress import ProgressMonitor, progress_line
from bench_assets_tests.conftest import SMOKE_BENCH_MODELS


def test_a_run_is_followed_through_its_events_and_progress_files(tmp_path):
    """Warnings, the run's progress files (named by its tags) and its materialization's figures, from the instance:
    no console text is parsed."""
    import dagster as dg

    from bench_assets.run.lifecycle import PROGRESS_FOLDER, RESULTS_DIR_TAG, RESULTS_ITEMS_TAG

    progress = tmp_path / "results-run" / PROGRESS_FOLDER
    progress.mkdir(parents=True)

    followers = []

    @dg.asset(check_specs=[dg.AssetCheckSpec("nothing_lost", asset="benchmark_run")])
    def benchmark_run(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        context.log.warning("marked run 12ab abandoned")
        context.log.info("120/300 items (40%), 8.00 items/s, 22 s left")  # text: not what the bench reads
        context.instance.add_run_tags(
            context.run_id, {RESULTS_DIR_TAG: str(tmp_path / "results-run"), RESULTS_ITEMS_TAG: "3"}
        )
        (progress / "a.count").write_text("2")
        followers[0].poll()  # as the bench's loop does while the run goes on
        return dg.MaterializeResult(
            metadata={"run_id": "4167abc", "dataset_size": 3, "predictions": 2, "failures": 1,
                      "end_to_end_items_per_second": 7.91},
            check_results=[dg.AssetCheckResult(check_name="nothing_lost", passed=True)],
        )

    printed = io.StringIO()  # not a terminal: progress comes as plain lines
    with dg.instance_for_test() as instance:
        run_id = "3e14b61b-bb0f-4032-80ae-d5aad90d06ab"
        follower = RunFollower(instance, run_id, "image_classification efficientnet_lite0", Console(printed))
        followers.append(follower)
        job = dg.Definitions(assets=[benchmark_run], jobs=[dg.define_asset_job("benchmark_job")]).resolve_job_def("benchmark_job")
        assert job.execute_in_process(instance=instance, run_id=run_id).success
        follower.poll()

    lines = printed.getvalue().splitlines()
    assert lines[0] == "image_classification efficientnet_lite0: warning: marked run 12ab abandoned"
    assert lines[1].startswith("image_classification efficientnet_lite0: 2/3 items (67%), ")
    assert len(lines) == 2
    assert follower.result() == "3/3 items, 7.91 items/s; results run_id 4167abc"


def test_root_logging_shows_neither_dagsters_relayed_records_nor_beams_apitools_warning():
    script = (
        "import logging; from bench_assets.cli.console_logging import configure_logging; configure_logging(); "
        "logging.warning('apitools not found, and bigquery client libraries are not available'); "
        "logging.getLogger('dagster.builtin').warning('relayed by dagster'); "
        "logging.getLogger('apache_beam.runners').warning('a real warning')"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.splitlines() == ["WARNING:apache_beam.runners:a real warning"]


@pytest.mark.slow  # a worker process imports the code location, then fails
def test_a_failing_run_prints_the_end_of_its_output(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()  # the bench's main makes it
    printed = io.StringIO()
    _, succeeded = run_job("smoke", "no_such_job", "", "no_such_job", Console(printed))

    assert not succeeded
    lines = printed.getvalue().splitlines()
    assert lines[0] == "no_such_job: started (smoke profile)"
    assert lines[1].startswith("no_such_job: FAILED after") and "exit code 1" in lines[1]
    assert any("no_such_job" in line for line in lines[2:])  # the child's error, naming the job
    assert "Traceback (most recent call last):" in lines


# A progress line's message: "<done>/<total> items (<percent>%), ..." after the run's label.
PROGRESS_MESSAGE = re.compile(r"^[\d,]+/[\d,]+ items \(\d+%\)")


@pytest.mark.slow
def test_a_smoke_bench_prints_a_few_lines_per_run_each_once(smoke_bench):
    lines = smoke_bench.lines
    runs = len(SMOKE_BENCH_MODELS)
    assert not any("elemetry" in line for line in lines)
    assert not (smoke_bench.data_dir / "dagster_home" / "logs" / "event.log").exists()  # where Dagster's telemetry writes
    table_start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    table_rows = lines[table_start:table_start + 1 + runs]
    assert all(len(line) <= 120 for line in table_rows)  # the width of a terminal
    shown = [line for line in lines if line.strip() and line not in table_rows]
    assert len(shown) == len(set(shown)), "\n".join(shown)
    # Progress comes at most every 15 s, so how many lines of it depends on the machine's speed; the rest is a few
    # lines per run.
    others = [line for line in shown if not PROGRESS_MESSAGE.match(line.split(": ", 1)[-1])]
    assert len(others) < 6 * runs + 10, "\n".join(others)
    assert not any("apitools" in line or "dagster.builtin" in line for line in lines)
    for benchmark, model in SMOKE_BENCH_MODELS.items():
        label, items = f"{benchmark} {model}", 6 if benchmark == "object_detection" else 23
        assert f"{label}: started (smoke profile)" in lines
        assert any(line.startswith(f"{label}: done in ") and f"{items}/{items} items" in line for line in lines), label
    assert any(line.startswith("metrics (dbt marts, change points, report): done in ") and " assets materialized; checks "
               in line and " 0 failed" in line for line in lines)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_line_is_redrawn_in_place():
    terminal = Terminal()
    console = Console(terminal)
    console.progress("m: 1/3 items (33%), 1.00 items/s, 2 s left")
    console.progress("m: 2/3 items (67%), 1.00 items/s, 1 s left")
    console.line("m: done in 3 s")

    assert terminal.getvalue() == (
        "\r\x1b[Km: 1/3 items (33%), 1.00 items/s, 2 s left\r\x1b[Km: 2/3 items (67%), 1.00 items/s, 1 s left"
        "\r\x1b[Km: done in 3 s\n"
    )


def test_time_left_follows_the_items_after_the_first_not_the_model_load(tmp_path):
    """A 30 s compilation, then 10 items/s: from the start the rate says 9,000 s are left; from the first items on,
    25 s. Until items follow the first ones, nothing says how fast they come."""
    assert progress_line(1, 301, 30.0).endswith("9,000 s left")
    assert progress_line(51, 301, 35.0, since_first=(5.0, 50)) == "51/301 items (17%), 1.46 items/s, 25 s left"
    assert progress_line(1, 301, 30.0, since_first=(0.0, 0)).endswith("time left unknown")

    monitor = ProgressMonitor(tmp_path, 10, print)
    assert monitor.done() == 0 and monitor.since_first(0) is None
    (tmp_path / "a.count").write_text("3")
    assert monitor.done() == 3 and monitor.since_first(3)[1] == 0
    (tmp_path / "b.count").write_text("4")
    assert monitor.done() == 7 and monitor.since_first(7)[1] == 4


def test_a_tunings_result_line_says_whether_the_guard_was_confirmed_over_the_whole_input():
    metadata = {"trials_run": 12, "elapsed_seconds": 300.0, "tuning_id": "t", "best_configuration": "backend=openvino",
                "ranking_speedup_over_beam_default": 3.2, "accuracy_guard": "passes",
                "guard_confirmed_over_whole_input": True}
    assert tuned_line(metadata) == ("12 trials in 300 s; tuned: backend=openvino (3.20x after the load over Beam's "
                                    "default); accuracy guard confirmed over the whole input; tuning_id t")
    assert "; accuracy guard judged on the sample only;" in tuned_line({**metadata, "guard_confirmed_over_whole_input": False})
    # Beam's default, and a configuration the guard cannot fail (random weights, a batching change), need none.
    assert "accuracy guard" not in tuned_line({**metadata, "best_configuration": "Beam default", "accuracy_guard": "reference"})
    assert "accuracy guard" not in tuned_line({**metadata, "accuracy_guard": "not applied: random weights"})
