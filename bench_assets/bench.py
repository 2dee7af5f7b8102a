"""`make bench`: materialize the datasets and every model partition, then print the headline figures.

Runs go into the Dagster instance under DAGSTER_HOME (by default `data/dagster_home`), so they show up in the
UI's run history and asset plots just like runs launched from the UI.

    python -m bench_assets.bench [--profile quick|full] [--models resnet50 ...]
"""

import argparse
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import psutil

from bench_assets.resources import PROFILES, connect_waiting, default_data_dir, default_duckdb_path, default_lock_timeout_s

# The tag naming the process that executes a run (see release_dead_bench_runs).
PROCESS_TAG = "bench/process"

# The headline figures of this invocation's runs, from the run_summary mart.
SUMMARY_SQL = """
SELECT s.benchmark, s.model, s.dataset_size AS items, s.predictions, s.failures,
       s.mean_batch_size, s.mean_batch_latency_ms, s.batch_latency_p99_ms AS p99_batch_latency_ms,
       s.load_model_latency_ms, s.end_to_end_items_per_second AS items_per_s, s.peak_rss_mib
FROM run_summary s JOIN runs r USING (run_id)
WHERE list_contains(?, r.dagster_run_id)
ORDER BY s.benchmark, s.model
"""


def run_config(profile: str) -> dict:
    return {
        "resources": {"settings": {"config": {"profile": profile}}},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }


def print_summary(dagster_run_ids: list[str]) -> None:
    with connect_waiting(default_duckdb_path(), default_lock_timeout_s(), read_only=True) as conn:
        table = conn.execute(SUMMARY_SQL, [dagster_run_ids])
        columns = [d[0] for d in table.description]
        rows = table.fetchall()
    formatted = [[f"{v:,.1f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in formatted)) for i, c in enumerate(columns)]
    print()
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in formatted:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
    print(f"\nresults: {default_duckdb_path()}")


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


def execute(job_name: str, partition: str | None, profile: str, run_id: str) -> int:
    """Runs one job (one partition of it) in this process, under the instance in DAGSTER_HOME."""
    import dagster as dg

    from bench_assets.definitions import defs

    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(),
        partition_key=partition,
        run_config=run_config(profile),
        run_id=run_id,
        tags=process_tags(),
        raise_on_error=False,
    )
    return 0 if result.success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--models", nargs="*", help="partitions to run (default: all)")
    parser.add_argument("--execute", nargs=3, metavar=("JOB", "PARTITION", "RUN_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(Path(default_data_dir()) / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    if args.execute:
        job_name, partition, run_id = args.execute
        return execute(job_name, partition or None, args.profile, run_id)

    import dagster as dg

    from bench_assets.benchmarks import BENCHMARKS
    from bench_assets.defs.datasets import datasets_job
    from bench_assets.defs.metrics import metrics_job

    for run_id in release_dead_bench_runs(dg.DagsterInstance.get()):
        print(f"released run {run_id}: its bench process had died", file=sys.stderr)

    known = {model: benchmark.job_name for benchmark in BENCHMARKS for model in benchmark.models}
    unknown = sorted(set(args.models or []) - set(known))
    if unknown:
        parser.error(f"unknown models {unknown}; accepted values: {sorted(known)}")
    models = [key for key in known if not args.models or key in args.models]

    def run(job_name: str, partition: str = "") -> tuple[str, bool]:
        # Each run in a process of its own, as the UI launches them: a run's peak memory is then its own.
        run_id = str(uuid.uuid4())
        command = [sys.executable, "-m", "bench_assets.bench", "--profile", args.profile, "--execute", job_name, partition, run_id]
        return run_id, subprocess.run(command).returncode == 0

    if not run(datasets_job.name)[1]:
        return 1
    dagster_run_ids, failed = [], []
    for model in models:
        print(f"\n=== {known[model]}: {model} ({args.profile} profile) ===", flush=True)
        run_id, succeeded = run(known[model], model)
        dagster_run_ids.append(run_id)
        if not succeeded:
            failed.append(model)
    print("\n=== metrics: marts, change points, report ===", flush=True)
    if not run(metrics_job.name)[1]:
        failed.append("metrics")
    print_summary(dagster_run_ids)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
