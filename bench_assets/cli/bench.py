"""`make bench`: materialize the datasets and every model partition, then print the headline figures.

Runs go into the Dagster instance under DAGSTER_HOME (by default `data/dagster_home`), so they show up in the
UI's run history and asset plots just like runs launched from the UI.

    python -m bench_assets.cli.bench [--profile quick|full] [--models resnet50 ...] [--config precision=bf16 ...]
                                     [--no-warehouse] [--tune [--tune-budget SECONDS] [--tune-items N]]

Each run executes in a process of its own (a worker, see Worker), whose output is captured; the first worker
starts with the bench, so that its imports overlap the bench's own. The bench follows the run through its
structured events in the Dagster instance (warnings, materializations with their metadata, asset check results)
and its progress files: what is printed is one line when a run starts, its progress (redrawn in place on a
terminal, a line every 15 s otherwise), one result line, and, for a run that fails, the end of its output (all of
it for the metrics job, which runs dbt). `--no-warehouse` leaves the marts, change points, checks and report as
they were, for the loop of trying a setting: the table reads the run_summary view. `--tune` materializes each
model's tuning asset instead of one run (docs/tuning.md): the table then has a row per trial, and the result line
names the tuned configuration.
"""

import argparse
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil


from bench_assets.cli.console_logging import configure_logging
from bench_assets.run.configuration import configuration_label
from bench_assets.run.run_settings import MODEL_SETTINGS
from bench_assets.settings import PROFILES, default_data_dir
from bench_assets.store.connection import connect_waiting, default_duckdb_path, default_lock_timeout_s

# The tag naming the process that executes a run (see release_dead_bench_runs).
PROCESS_TAG = "bench/process"

# The figures a person compares first, per run of this invocation, from the run_summary mart: the table is cut to
# the terminal's width from the right (the report has every figure: latency percentiles, load time, cost...).
SUMMARY_SQL = """
SELECT s.benchmark, s.model, s.dataset_size AS items, s.failures AS failed, 100 * s.top1_accuracy AS "top1_%",
       s.end_to_end_items_per_second AS "items/s", s.steady_inference_items_per_second AS "steady/s",
       s.batch_latency_p99_ms AS p99_ms,
       CASE WHEN s.is_above_measured_peak THEN 'above peak' ELSE printf('%.1f', 100 * s.utilization) END AS "util_%",
       s.peak_rss_mib AS mib, s.cost_per_1000_inferences_usd AS "usd/1k", {configuration_settings}
FROM run_summary s JOIN runs r USING (run_id)
WHERE list_contains(?, r.dagster_run_id)
ORDER BY s.benchmark, s.model
"""
# The configuration settings both queries end with, shown as one label (configuration_label: what differs from
# the defaults): the settings that configure the model, and the batching mode.
CONFIGURATION_SETTINGS = (*(setting.name for setting in MODEL_SETTINGS), "batching_mode")
# The summary's columns in the order printed: the configuration beside the model it configures.
SHOWN_COLUMNS = ("model", "configuration", "items", "failed", "top1_%", "items/s", "steady/s", "p99_ms", "util_%",
                 "mib", "usd/1k")
# The table's width where the output is not a terminal (a file, a pipe): an ordinary terminal's.
DEFAULT_WIDTH = 120


def with_configuration_label(row: tuple) -> tuple:
    """The row with its trailing configuration settings replaced by their label."""
    settings = dict(zip(CONFIGURATION_SETTINGS, row[-len(CONFIGURATION_SETTINGS):]))
    return (*row[: -len(CONFIGURATION_SETTINGS)], configuration_label(settings))


# Per model and input of this invocation: the fastest configuration measured so far on this machine (the answer
# people came for), from the best_configuration mart.
BEST_SQL = """
SELECT DISTINCT b.model, b.runs, b.beam_default_runs, b.load_seconds,
       b.end_to_end_items_per_second, b.end_to_end_speedup_over_beam_default,
       b.items_per_second_after_load, b.after_load_speedup_over_beam_default,
       b.inference_items_per_second, b.inference_speedup_over_beam_default, b.min_batch_size, b.max_batch_size,
       {configuration_settings}
FROM best_configuration b JOIN run_summary s USING (benchmark, model, machine_id, profile, dataset_sha256)
JOIN runs r ON r.run_id = s.run_id
WHERE list_contains(?, r.dagster_run_id)
ORDER BY b.model
"""
# Where each run's time went: its bound and each stage's busy seconds (run_summary; stage_timing.py).
STAGES_SQL = """
SELECT s.model, s.bound, s.read_busy_seconds, s.preprocess_busy_seconds, s.inference_busy_seconds, s.write_busy_seconds
FROM run_summary s JOIN runs r USING (run_id)
WHERE list_contains(?, r.dagster_run_id) AND s.bound IS NOT NULL
ORDER BY s.benchmark, s.model
"""
# The warm-up window run_summary's steady figures leave out (dbt var warmup_seconds), as it was last built.
WARMUP_SQL = "SELECT max(warmup_seconds) FROM run_summary"


def fastest_line(best: tuple) -> str:
    """One best_configuration row (with its configuration label) as the line a person acts on: end to end at the
    size that ran, with the model load set apart, and the inference stage alone, each against Beam's default."""
    (model, runs, default_runs, load_seconds, end_to_end, end_to_end_speedup, after_load, after_load_speedup,
     inference, inference_speedup, low, high, configuration) = best

    def rate(items_per_second, speedup) -> str:
        over = f" ({speedup:.2f}x Beam's default)" if speedup is not None else ""
        return f"{items_per_second:,.1f} items/s{over}"

    rests_on = f"median of {runs} run{'s' * (runs != 1)}" + (
        f"; Beam's default: {default_runs} run{'s' * (default_runs != 1)}" if default_runs else "; no Beam default run yet"
    )
    parts = [f"{rate(end_to_end, end_to_end_speedup)} end to end"]
    if after_load is not None:
        parts.append(f"{rate(after_load, after_load_speedup)} with the {load_seconds:,.1f} s model load set apart")
    parts.append(f"{rate(inference, inference_speedup)} inference stage")
    return f"fastest so far: {model} in {configuration}, batches {low}-{high} ({rests_on}): {', '.join(parts)}"


FAILED_RUN_TAIL_LINES = 60
# How often the bench reads a run's events and progress files, and how often a progress line is printed when the
# output is not a terminal (a terminal's line is redrawn at every read).
POLL_S = 0.5
PROGRESS_LINE_EVERY_S = 15.0
# The instance settings shipped with the project (pools, run limits, telemetry off), for an instance without its own.
SHIPPED_INSTANCE_SETTINGS = Path(__file__).parents[2] / "dagster.yaml"


def run_config(profile: str, ops: dict | None = None) -> dict:
    return {
        "resources": {"settings": {"config": {"profile": profile}}},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
        **({"ops": ops} if ops else {}),
    }


def run_settings(pairs: list[str]) -> dict:
    """`--config precision=bf16 max_batch_size=32` as a run config: values read as JSON where they are JSON."""
    settings = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"--config takes KEY=VALUE pairs, got {pair!r}")
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            settings[key] = value
    return settings


def figure(value) -> str:
    """A table cell: one decimal, or three significant digits for small figures (a cost per 1,000 items)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if 0 < abs(value) < 1 else f"{value:,.1f}"
    return str(value)


def fitted_table(columns: list[str], rows: list[list[str]], width: int) -> list[str]:
    """The table's lines with as many of its columns, from the left, as fit in `width` characters."""
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    shown, used = 0, -2
    while shown < len(columns) and (shown < 1 or used + 2 + widths[shown] <= width):
        used += 2 + widths[shown]
        shown += 1
    return ["  ".join(v.ljust(w) for v, w in zip(line[:shown], widths)).rstrip() for line in [columns, *rows]]


def print_summary(dagster_run_ids: list[str], marts_rebuilt: bool = True) -> None:
    """The table from the run_summary view; the fastest configurations (a mart table) only once the marts were
    rebuilt with these runs."""
    def settings_of(relation: str) -> str:
        return ", ".join(f"{relation}.{name}" for name in CONFIGURATION_SETTINGS)

    with connect_waiting(default_duckdb_path(), default_lock_timeout_s(), read_only=True) as conn:
        table = conn.execute(SUMMARY_SQL.format(configuration_settings=settings_of("s")), [dagster_run_ids])
        columns = [d[0] for d in table.description][: -len(CONFIGURATION_SETTINGS)] + ["configuration"]
        rows = [dict(zip(columns, with_configuration_label(row))) for row in table.fetchall()]
        best_rows = (
            conn.execute(BEST_SQL.format(configuration_settings=settings_of("b")), [dagster_run_ids]).fetchall()
            if marts_rebuilt else []
        )
        best = [with_configuration_label(row) for row in best_rows]
        stages = conn.execute(STAGES_SQL, [dagster_run_ids]).fetchall()
        (warmup_seconds,) = conn.execute(WARMUP_SQL).fetchone()
    formatted = [[figure(row[column]) for column in SHOWN_COLUMNS] for row in rows]
    print()
    for line in fitted_table(list(SHOWN_COLUMNS), formatted, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns):
        print(line)
    print(
        "\ntop1_%: accuracy where the right answer is known (masked words; the photos the generated images come "
        "from; text embedding: altered sentences whose nearest neighbour is their original), '-' where it is not. "
        "items/s: end to end; p99_ms: batch latency; mib: peak memory; the report has "
        f"the rest.\nsteady/s: inference after the first {warmup_seconds or 0:g} s of batches; '-' when the whole run "
        "was warm-up, as quick-profile runs mostly are, so their figures are warm-up dominated."
    )
    for model, bound, read, preprocess, inference, write in stages:
        print(f"{model}: {bound} (busy s: read {read:.2f}, preprocess {preprocess:.2f}, inference {inference:.2f}, write {write:.2f})")
    for row in best:
        print(fastest_line(row))
    from bench_assets.benchmarks import MODELS

    for model in sorted({row["model"] for row in rows}):
        if model in MODELS and MODELS[model].note:
            print(f"{model}: {MODELS[model].note}")
    from bench_assets.defs.report import REPORT_PATH

    report = Path(default_data_dir()) / REPORT_PATH
    if not marts_rebuilt:
        print("\nnot rebuilt (--no-warehouse): the marts, change points, checks, the fastest configuration so far and "
              "the report; a make bench without --no-warehouse rebuilds them over every run so far")
    print(f"\nresults: {default_duckdb_path()}\nreport: {report}" + ("" if marts_rebuilt else " (as last built)"))


def process_tags() -> dict[str, str]:
    """Who runs a run: host, pid and the process's start time (a pid alone can be reused)."""
    me = psutil.Process()
    return {PROCESS_TAG: f"{socket.gethostname()}:{me.pid}:{me.create_time()}"}


def process_is_alive(tag: str) -> bool:
    host, pid, started = tag.rsplit(":", 2)
    if host != socket.gethostname():
        return True  # another machine's run: not ours to judge
    try:
        return psutil.Process(int(pid)).create_time() == float(started)
    except psutil.NoSuchProcess:
        return False


def release_dead_bench_runs(instance) -> list[str]:
    """Fails the runs of a bench process that was killed, and frees the pool slots they hold.

    No daemon runs under `make bench` to notice a run whose process died: it would stay started and keep its
    `duckdb` pool slot, and every later run needing that pool would wait for it forever.
    """
    released = []
    for run_id in instance.event_log_storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        tag = run.tags.get(PROCESS_TAG) if run else None
        if tag is None or process_is_alive(tag):
            continue
        if not run.is_finished:
            instance.report_run_failed(run, "the bench process running it ended before the run did")
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)
        released.append(run_id)
    return released


def execute(job_name: str, partition: str | None, profile: str, run_id: str, ops: dict | None = None,
            assets: list[str] | None = None) -> int:
    """Runs one job (one partition of it; only `assets` of it when given) in this process, under the instance in
    DAGSTER_HOME."""
    import dagster as dg

    from bench_assets.definitions import defs

    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(),
        partition_key=partition,
        run_config=run_config(profile, ops),
        run_id=run_id,
        tags=process_tags(),
        raise_on_error=False,
        asset_selection=[dg.AssetKey(name) for name in assets] if assets else None,
    )
    return 0 if result.success else 1


def datasets_to_build(datasets: list, profile: str) -> list[str]:
    """The datasets (DatasetSpec) whose input file for this profile and seed is missing, or that sample a configured
    source (which may have changed since): a generated dataset is a function of its profile and seed, so one already
    written is reused rather than written again."""
    from bench_assets.run.lifecycle import dataset_file
    from bench_assets.settings import BenchmarkSettings

    settings = BenchmarkSettings(profile=profile)
    return sorted(
        dataset.name for dataset in datasets
        if not dataset_file(settings, dataset).is_file()
        or (dataset.source_setting and getattr(settings, dataset.source_setting))
    )


class Console:
    """Prints the bench's own lines; a progress line is redrawn in place when stdout is a terminal."""

    def __init__(self, stream=None):
        self.stream = sys.stdout if stream is None else stream
        self.live = self.stream.isatty()
        self.drawn = False  # a progress line awaits being overwritten

    def line(self, text: str) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def progress(self, text: str) -> None:
        if not self.live:
            self.line(text)
            return
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self.drawn = True


@dataclass
class RunFollower:
    """Follows one Dagster run through its structured events in the instance and, for a benchmark run, the
    progress files of its results run (named by the run's tags), printing what a person watches for."""

    instance: object
    run_id: str
    label: str
    console: Console
    results_run_id: str | None = None
    items_done: int | None = None
    items_total: int | None = None
    items_per_second: float | None = None
    materializations: int = 0
    tuned: str | None = None  # a tuning's answer, from its materialization's metadata
    trial: str | None = None  # the configuration a tuning is running now (its run's tag)
    checks: dict[bool, int] = field(default_factory=lambda: {True: 0, False: 0})
    cursor: str | None = None
    monitor: object = None  # the results run's ProgressMonitor, once the run's tags name its folder
    progress_total: int = 0
    progress_started: float = 0.0
    last_progress: tuple[float, int] = (0.0, -1)  # when a progress line was last printed, and its count

    def poll(self) -> None:
        from dagster import DagsterEventType

        while True:
            connection = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=1000)
            for record in connection.records:
                self.read(record.event_log_entry, DagsterEventType)
            self.cursor = connection.cursor
            if not connection.has_more:
                break
        self.follow_progress()

    def read(self, entry, event_types) -> None:
        event = entry.dagster_event
        if event is None:
            if entry.level >= logging.WARNING:
                self.console.line(f"{self.label}: warning: {entry.user_message}")
        elif event.event_type == event_types.ASSET_MATERIALIZATION:
            self.materializations += 1
            metadata = {key: value.value for key, value in entry.asset_materialization.metadata.items()}
            if "tuning_id" in metadata:
                self.tuned = tuned_line(metadata)
            if "run_id" in metadata and "dataset_size" in metadata:
                self.results_run_id = metadata["run_id"]
                self.items_done = metadata["predictions"] + metadata["failures"]
                self.items_total = metadata["dataset_size"]
                self.items_per_second = metadata.get("end_to_end_items_per_second")
        elif event.event_type == event_types.ASSET_CHECK_EVALUATION:
            self.checks[bool(event.event_specific_data.passed)] += 1

    def follow_progress(self) -> None:
        """Items done, rate and time left, from the results run's progress files once the run names them."""
        from bench_assets.pipeline.progress import ProgressMonitor, progress_line
        from bench_assets.run.lifecycle import (
            INPUT_SNAPSHOT, PROGRESS_FOLDER, RESULTS_DIR_TAG, RESULTS_ITEMS_TAG, TUNING_TRIAL_TAG,
        )

        if self.results_run_id is not None or self.tuned is not None:
            return  # materialized: the result line says the rest
        run = self.instance.get_run_by_id(self.run_id)
        if run is None or RESULTS_DIR_TAG not in run.tags:
            return
        run_dir = Path(run.tags[RESULTS_DIR_TAG])
        if self.monitor is None or self.monitor.progress_dir != run_dir / PROGRESS_FOLDER:  # a tuning's next trial
            self.trial = run.tags.get(TUNING_TRIAL_TAG)
            self.progress_total = int(run.tags[RESULTS_ITEMS_TAG])
            self.monitor = ProgressMonitor(run_dir / PROGRESS_FOLDER, self.progress_total, print)
            # Timed from when the run snapshotted its input: a run first seen late (a tuning's short trial, say)
            # still shows its own rate.
            snapshot = run_dir / INPUT_SNAPSHOT
            since_snapshot = time.time() - snapshot.stat().st_mtime if snapshot.exists() else 0.0
            self.progress_started = time.monotonic() - max(0.0, since_snapshot)
            self.last_progress = (0.0, -1)
        now, done = time.monotonic(), self.monitor.done()
        printed_at, printed_done = self.last_progress
        # A line only when the count moved: a slow model load repeats no identical line.
        if done != printed_done and (self.console.live or now - printed_at >= PROGRESS_LINE_EVERY_S):
            line = progress_line(done, self.progress_total, now - self.progress_started, self.monitor.since_first(done))
            trial = f" ({self.trial})" if self.trial else ""
            self.console.progress(f"{self.label}{trial}: {line}")
            self.last_progress = (now, done)

    def result(self) -> str:
        if self.tuned is not None:
            return self.tuned
        if self.results_run_id is not None:
            rate = f", {self.items_per_second:,.2f} items/s" if self.items_per_second is not None else ""
            return f"{self.items_done:,}/{self.items_total:,} items{rate}; results run_id {self.results_run_id}"
        if self.materializations:
            checks = f"; checks {self.checks[True]} passed, {self.checks[False]} failed" if any(self.checks.values()) else ""
            return f"{self.materializations} assets materialized{checks}"
        return ""


def tuned_line(metadata: dict) -> str:
    """A tuning's result line: its best configuration and speed-ups over Beam's default, from its metadata."""
    trials = f"{metadata['trials_run']} trials in {metadata['elapsed_seconds']:,.0f} s"
    if "best_configuration" not in metadata:
        return f"{trials}; no eligible configuration; tuning_id {metadata['tuning_id']}"
    speedups = ", ".join(
        f"{metadata[name]:.2f}x {label}" for name, label in (
            ("end_to_end_speedup_over_beam_default", "end to end"),
            ("ranking_speedup_over_beam_default", "after the load"),
        ) if name in metadata
    )
    confirmed = ""
    if metadata["accuracy_guard"] == "passes":  # a configuration that changes answers
        confirmed = ("; accuracy guard confirmed over the whole input" if metadata["guard_confirmed_over_whole_input"]
                     else "; accuracy guard judged on the sample only")
    return (f"{trials}; tuned: {metadata['best_configuration']}" + (f" ({speedups} over Beam's default)" if speedups else "")
            + f"{confirmed}; tuning_id {metadata['tuning_id']}")


class Worker:
    """A Python process of its own that imports the code location, then runs the one job the bench sends it.

    It starts before the bench knows which job it will run, so that its imports (torch, Beam, the definitions:
    seconds) overlap the bench's own. A fresh process per job, as the UI launches runs: a run's peak memory (its
    process's resident memory, sampled) is then its own and comparable with runs launched from the UI.
    """

    def __init__(self):
        self.output = tempfile.TemporaryFile("w+", errors="replace")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench_assets.cli.bench", "--worker"],
            stdin=subprocess.PIPE, stdout=self.output, stderr=subprocess.STDOUT, text=True,
        )

    def send(self, job: dict) -> None:
        try:
            self.process.stdin.write(json.dumps(job) + "\n")
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # the worker ended before reading it: its exit code and output say why

    def lines(self) -> list[str]:
        self.output.seek(0)
        return self.output.read().splitlines()

    def close(self) -> None:
        """Ends a worker that was sent no job (the bench stopped early), and lets go of its output."""
        if self.process.poll() is None and not self.process.stdin.closed:
            self.process.kill()
        self.process.wait()
        self.output.close()


def work() -> int:
    """The worker's side: imports the code location, then runs the job read from stdin (none: the bench ended)."""
    import bench_assets.definitions  # noqa: F401  while the bench decides what to run

    request = sys.stdin.readline()
    if not request:
        return 0
    return execute(**json.loads(request))


def run_job(profile: str, job_name: str, partition: str, label: str, console: Console,
            whole_output_on_failure: bool = False, ops: dict | None = None,
            assets: list[str] | None = None, worker: Worker | None = None) -> tuple[str, bool]:
    """Runs one job in a worker (a process of its own; `worker` when one was started ahead), and follows it
    through its events."""
    import dagster as dg

    run_id = str(uuid.uuid4())
    worker = worker or Worker()
    console.line(f"{label}: started ({profile} profile)")
    started = time.monotonic()
    follower = RunFollower(dg.DagsterInstance.get(), run_id, label, console)
    try:
        worker.send({"job_name": job_name, "partition": partition or None, "profile": profile, "run_id": run_id,
                     "ops": ops, "assets": assets})
        while worker.process.poll() is None:
            time.sleep(POLL_S)
            follower.poll()
        follower.poll()  # what landed between the last read and the end
        lines = worker.lines()
    finally:
        worker.close()
    returncode = worker.process.returncode
    elapsed = f"{time.monotonic() - started:,.0f} s"
    if returncode != 0:
        shown = lines if whole_output_on_failure else lines[-FAILED_RUN_TAIL_LINES:]
        console.line(f"{label}: FAILED after {elapsed} (exit code {returncode}); its output"
                     + ("" if len(shown) == len(lines) else f", last {len(shown)} lines") + ":")
        console.line("\n".join(shown))
        return run_id, False
    result = follower.result()
    console.line(f"{label}: done in {elapsed}" + (f": {result}" if result else ""))
    return run_id, True


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--models", nargs="*", help="partitions to run (default: all)")
    parser.add_argument(
        "--config", nargs="*", default=[], metavar="KEY=VALUE",
        help="run settings for every benchmark run, e.g. precision=bf16 memory_format=channels_last",
    )
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="runs of each model, one after another: their spread is what compare and the report judge a change by",
    )
    parser.add_argument(
        "--no-warehouse", action="store_true",
        help="skip the warehouse job (dbt marts, change points, checks, report) while trying a setting: the table "
        "comes from the run_summary view, which reads the runs' rows as they land",
    )
    parser.add_argument(
        "--tune", action="store_true",
        help="tune each model instead of one run: its best configuration on this machine (docs/tuning.md)",
    )
    parser.add_argument("--tune-budget", type=float, metavar="SECONDS", help="each tuning's time budget")
    parser.add_argument(
        "--tune-items", type=int, metavar="N",
        help="each tuning's sample: the dataset's first N items (default: the smoke size, 23)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.tune and (args.config or args.repeats > 1):
        parser.error("--tune tries the configurations itself, once per model: no --config or --repeats with it")
    if args.tune_budget is not None and (not args.tune or args.tune_budget <= 0):
        parser.error("--tune-budget takes a number of seconds above 0, with --tune")
    if args.tune_items is not None and (not args.tune or args.tune_items < 1):
        parser.error("--tune-items takes a number of items of at least 1, with --tune")

    os.environ.setdefault("DAGSTER_HOME", str(Path(default_data_dir()) / "dagster_home"))
    instance_settings = Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml"
    if not instance_settings.exists():
        instance_settings.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHIPPED_INSTANCE_SETTINGS, instance_settings)
    if args.worker:
        return work()
    first_worker = Worker()  # importing while this process does
    try:
        return bench(parser, args, first_worker)
    finally:
        first_worker.close()


def bench(parser: argparse.ArgumentParser, args: argparse.Namespace, first_worker: Worker) -> int:
    import dagster as dg

    from bench_assets.benchmarks import BENCHMARKS
    from bench_assets.defs.datasets import datasets_job
    from bench_assets.defs.warehouse import warehouse_job

    for run_id in release_dead_bench_runs(dg.DagsterInstance.get()):
        print(f"released run {run_id}: its bench process had died", file=sys.stderr)

    known = {model: benchmark for benchmark in BENCHMARKS for model in benchmark.models}
    unknown = sorted(set(args.models or []) - set(known))
    if unknown:
        parser.error(f"unknown models {unknown}; accepted values: {sorted(known)}")
    models = [key for key in known if not args.models or key in args.models]
    try:
        overrides = run_settings(args.config)
    except ValueError as error:
        parser.error(str(error))

    console = Console()
    workers = iter([first_worker])
    datasets = {known[model].dataset.name: known[model].dataset for model in models}
    stale = datasets_to_build(list(datasets.values()), args.profile)
    if not stale:
        console.line(f"datasets: already written for the {args.profile} profile and its seed")
    elif not run_job(args.profile, datasets_job.name, "", f"datasets ({', '.join(stale)})", console, assets=stale,
                     worker=next(workers, None))[1]:
        return 1
    dagster_run_ids, failed = [], []
    for model in models:
        benchmark = known[model]
        if args.tune:
            tuning = {name: value for name, value in (("budget_seconds", args.tune_budget),
                                                      ("sample_items", args.tune_items)) if value is not None}
            job_name, ops = benchmark.tuning_job_name, {benchmark.tuning_asset_name: {"config": tuning}}
        else:
            job_name, ops = benchmark.job_name, {benchmark.run_asset_name: {"config": overrides}} if overrides else None
        for repeat in range(1, args.repeats + 1):
            label = f"{benchmark.name} {model}" + (" tuning" if args.tune else "") + (
                f" (run {repeat} of {args.repeats})" if args.repeats > 1 else "")
            run_id, succeeded = run_job(args.profile, job_name, model, label, console, ops=ops,
                                        worker=next(workers, None))
            dagster_run_ids.append(run_id)
            if not succeeded:
                failed.append(model)
    metrics_label = "metrics (dbt marts, change points, report)"
    if args.no_warehouse:
        console.line(f"{metrics_label}: not rebuilt (--no-warehouse); the table below reads the run_summary view")
    elif not run_job(args.profile, warehouse_job.name, "", metrics_label, console, whole_output_on_failure=True)[1]:
        failed.append("metrics")
    print_summary(dagster_run_ids, marts_rebuilt=not args.no_warehouse)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
