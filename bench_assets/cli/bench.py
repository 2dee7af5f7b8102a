"""`make bench`: materialize the datasets and every model partition, then print the headline figures.

Runs go into the Dagster instance under DAGSTER_HOME (by default `data/dagster_home`), so they show up in the
UI's run history and asset plots just like runs launched from the UI.

    python -m bench_assets.cli.bench [--profile quick|full] [--models resnet50 ...] [--config precision=bf16 ...]

Each run executes in a process of its own (`--execute`), whose output is captured: what is printed is one line
when a run starts, its progress (redrawn in place on a terminal, a line every 15 s otherwise), one result line,
and, for a run that fails, the end of its output (all of it for the metrics job, which runs dbt).
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil


from bench_assets.cli.console_logging import configure_logging
from bench_assets.run.configuration import configuration_label
from bench_assets.settings import PROFILES, default_data_dir
from bench_assets.store.connection import connect_waiting, default_duckdb_path, default_lock_timeout_s

# The tag naming the process that executes a run (see release_dead_bench_runs).
PROCESS_TAG = "bench/process"

# The headline figures of this invocation's runs, from the run_summary mart.
SUMMARY_SQL = """
SELECT s.benchmark, s.model, s.dataset_size AS items, s.predictions, s.failures, 100 * s.top1_accuracy AS top1_pct, s.mean_batch_size,
       s.mean_batch_latency_ms, s.batch_latency_p50_ms AS p50_batch_latency_ms,
       s.batch_latency_p99_ms AS p99_batch_latency_ms, s.load_model_latency_ms,
       s.end_to_end_items_per_second AS items_per_s, s.steady_inference_items_per_second AS steady_items_per_s,
       CASE WHEN s.is_above_measured_peak THEN 'above peak' ELSE printf('%.1f', 100 * s.utilization) END AS util_pct,
       s.cost_per_1000_inferences_usd AS usd_per_1000, s.peak_rss_mib,
       s.precision, s.memory_format, s.quantization, s.compile, s.backend, s.batching_mode
FROM run_summary s JOIN runs r USING (run_id)
WHERE list_contains(?, r.dagster_run_id)
ORDER BY s.benchmark, s.model
"""
# The configuration settings both queries end with, shown as one label (configuration_label: what differs from
# the defaults).
CONFIGURATION_SETTINGS = ("precision", "memory_format", "quantization", "compile", "backend", "batching_mode")


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
       b.precision, b.memory_format, b.quantization, b.compile, b.backend, b.batching_mode
FROM best_configuration b JOIN run_summary s USING (benchmark, model, machine_id, profile, dataset_sha256)
JOIN runs r ON r.run_id = s.run_id
WHERE list_contains(?, r.dagster_run_id)
ORDER BY b.model
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


# A line of Dagster's console logger: "<date> <time> <tz> - dagster - LEVEL - job - run id - step - message".
DAGSTER_LINE = re.compile(
    r"^\S+ \S+ \S+ - dagster - (?P<level>[A-Z]+) - \S+ - [0-9a-f-]{36} - (?:\S+ - )?(?P<message>.*)$"
)
# What the run's ProgressMonitor reports every 15 s, and once more when its pipeline is done.
PROGRESS = re.compile(r"^(?:[a-z ]+: )?[\d,]+/[\d,]+ items \(\d+%\), [\d.,]+ items/s, .*$")
PIPELINE_DONE = re.compile(
    r"^run (?P<run_id>\w+) pipeline done: (?P<items>[\d,]+/[\d,]+ items) .*?, (?P<rate>[\d.,]+ items/s)"
)
# dbt's closing line, e.g. "Done. PASS=17 WARN=0 ERROR=0 SKIP=0 NO-OP=0 TOTAL=17" (coloured on a terminal).
DBT_DONE = re.compile(r"^Done\. (?P<counts>(?:[A-Z-]+=\d+ ?)+)$")
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")
FAILED_RUN_TAIL_LINES = 60


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


def print_summary(dagster_run_ids: list[str]) -> None:
    with connect_waiting(default_duckdb_path(), default_lock_timeout_s(), read_only=True) as conn:
        table = conn.execute(SUMMARY_SQL, [dagster_run_ids])
        columns = [d[0] for d in table.description][: -len(CONFIGURATION_SETTINGS)] + ["configuration"]
        rows = [with_configuration_label(row) for row in table.fetchall()]
        best = [with_configuration_label(row) for row in conn.execute(BEST_SQL, [dagster_run_ids]).fetchall()]
        (warmup_seconds,) = conn.execute(WARMUP_SQL).fetchone()
    formatted = [[figure(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in formatted)) for i, c in enumerate(columns)]
    print()
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in formatted:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    print(
        "\ntop1_pct: accuracy where the right answer is known (masked words; the photos the generated images come "
        f"from), '-' where it is not.\nsteady_items_per_s: inference after the first {warmup_seconds or 0:g} s of "
        "batches; '-' when the whole run was warm-up, as quick-profile runs mostly are, so their figures are warm-up "
        "dominated."
    )
    for row in best:
        print(fastest_line(row))
    from bench_assets.benchmarks import MODELS

    for model in sorted({row[1] for row in rows}):
        if model in MODELS and MODELS[model].note:
            print(f"{model}: {MODELS[model].note}")
    from bench_assets.defs.report import REPORT_PATH

    print(f"\nresults: {default_duckdb_path()}\nreport: {Path(default_data_dir()) / REPORT_PATH}")


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


def execute(job_name: str, partition: str | None, profile: str, run_id: str, ops: dict | None = None) -> int:
    """Runs one job (one partition of it) in this process, under the instance in DAGSTER_HOME."""
    import dagster as dg

    from bench_assets.definitions import defs

    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(),
        partition_key=partition,
        run_config=run_config(profile, ops),
        run_id=run_id,
        tags=process_tags(),
        raise_on_error=False,
    )
    return 0 if result.success else 1


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
class JobOutput:
    """What a run's process printed, and what of it the bench shows."""

    lines: list[str] = field(default_factory=list)
    results_run_id: str | None = None  # the run's id in the results database (runs.run_id)
    items: str | None = None
    rate: str | None = None
    dbt_counts: dict[str, int] = field(default_factory=dict)
    dbt_builds: int = 0
    in_telemetry_notice: bool = False

    def read(self, line: str, label: str, console: Console) -> None:
        line = ANSI_CODE.sub("", line.rstrip("\n"))
        self.lines.append(line)
        # The notice Dagster prints once for a new DAGSTER_HOME, up to how to opt out: for the person to see.
        if line.strip() == "Telemetry:" or self.in_telemetry_notice:
            console.line(line)
            self.in_telemetry_notice = line.strip() != "enabled: false"
            return
        dbt_done = DBT_DONE.match(line)
        if dbt_done:
            self.dbt_builds += 1
            for name, count in re.findall(r"([A-Z-]+)=(\d+)", dbt_done["counts"]):
                self.dbt_counts[name] = self.dbt_counts.get(name, 0) + int(count)
            return
        dagster = DAGSTER_LINE.match(line)
        if not dagster:
            return
        message = dagster["message"]
        if dagster["level"] == "WARNING":
            console.line(f"{label}: warning: {message}")
        elif PROGRESS.match(message):
            console.progress(f"{label}: {message}")
        elif done := PIPELINE_DONE.match(message):
            self.results_run_id, self.items, self.rate = done["run_id"], done["items"], done["rate"]


def run_job(profile: str, job_name: str, partition: str, label: str, console: Console,
            whole_output_on_failure: bool = False, ops: dict | None = None) -> tuple[str, bool]:
    """Runs one job in a process of its own, as the UI launches them (a run's peak memory is then its own)."""
    run_id = str(uuid.uuid4())
    command = [sys.executable, "-m", "bench_assets.cli.bench", "--profile", profile, "--execute", job_name, partition, run_id]
    if ops:
        command += ["--ops-config", json.dumps(ops)]
    console.line(f"{label}: started ({profile} profile)")
    started = time.monotonic()
    output = JobOutput()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # its lines as they happen, in order
    ) as child:
        for line in child.stdout:
            output.read(line, label, console)
    elapsed = f"{time.monotonic() - started:,.0f} s"
    if output.dbt_builds:
        counts = " ".join(f"{name}={count}" for name, count in output.dbt_counts.items())
        console.line(f"{label}: dbt build x{output.dbt_builds}: {counts}")
    if child.returncode != 0:
        shown = output.lines if whole_output_on_failure else output.lines[-FAILED_RUN_TAIL_LINES:]
        console.line(f"{label}: FAILED after {elapsed} (exit code {child.returncode}); its output"
                     + ("" if len(shown) == len(output.lines) else f", last {len(shown)} lines") + ":")
        console.line("\n".join(shown))
        return run_id, False
    figures = f": {output.items}, {output.rate}; results run_id {output.results_run_id}" if output.items else ""
    console.line(f"{label}: done in {elapsed}{figures}")
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
    parser.add_argument("--execute", nargs=3, metavar=("JOB", "PARTITION", "RUN_ID"), help=argparse.SUPPRESS)
    parser.add_argument("--ops-config", type=json.loads, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(Path(default_data_dir()) / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    if args.execute:
        job_name, partition, run_id = args.execute
        return execute(job_name, partition or None, args.profile, run_id, args.ops_config)

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
    if not run_job(args.profile, datasets_job.name, "", "datasets", console)[1]:
        return 1
    dagster_run_ids, failed = [], []
    for model in models:
        benchmark = known[model]
        ops = {benchmark.run_asset_name: {"config": overrides}} if overrides else None
        run_id, succeeded = run_job(args.profile, benchmark.job_name, model, f"{benchmark.name} {model}", console, ops=ops)
        dagster_run_ids.append(run_id)
        if not succeeded:
            failed.append(model)
    metrics_label = "metrics (dbt marts, change points, report)"
    if not run_job(args.profile, warehouse_job.name, "", metrics_label, console, whole_output_on_failure=True)[1]:
        failed.append("metrics")
    print_summary(dagster_run_ids)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
