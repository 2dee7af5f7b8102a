"""`make bench`: materialize the datasets and every model partition, then print the headline figures.

Runs go into the Dagster instance under DAGSTER_HOME (by default `data/dagster_home`), so they show up in the
UI's run history and asset plots just like runs launched from the UI.

    python -m bench_assets.bench [--profile quick|full] [--models resnet50 ...]
"""

import argparse
import os
import sys
from pathlib import Path

from bench_assets.resources import PROFILES, connect_waiting, default_data_dir, default_duckdb_path, default_lock_timeout_s

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick", choices=sorted(PROFILES))
    parser.add_argument("--models", nargs="*", help="partitions to run (default: all)")
    args = parser.parse_args(argv)

    os.environ.setdefault("DAGSTER_HOME", str(Path(default_data_dir()) / "dagster_home"))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    # Imported after DAGSTER_HOME is set: the instance is read from it.
    import dagster as dg

    from bench_assets.definitions import defs
    from bench_assets.jobs import BENCHMARK_JOBS

    jobs = {job.name: defs.resolve_job_def(job.name) for job in BENCHMARK_JOBS}
    known = {key for job in jobs.values() for key in job.partitions_def.get_partition_keys()}
    unknown = sorted(set(args.models or []) - known)
    if unknown:
        parser.error(f"unknown models {unknown}; accepted values: {sorted(known)}")

    instance = dg.DagsterInstance.get()
    config = run_config(args.profile)
    if not defs.resolve_job_def("datasets_job").execute_in_process(instance=instance, run_config=config).success:
        return 1

    dagster_run_ids, failed = [], []
    for job_name, job in jobs.items():
        for model in job.partitions_def.get_partition_keys():
            if args.models and model not in args.models:
                continue
            print(f"\n=== {job_name}: {model} ({args.profile} profile) ===", flush=True)
            result = job.execute_in_process(
                instance=instance, partition_key=model, run_config=config, raise_on_error=False
            )
            dagster_run_ids.append(result.run_id)
            if not result.success:
                failed.append(model)
    if not defs.resolve_job_def("metrics_job").execute_in_process(instance=instance, run_config=config).success:
        failed.append("metrics")
    print_summary(dagster_run_ids)
    if failed:
        print(f"failed partitions: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
