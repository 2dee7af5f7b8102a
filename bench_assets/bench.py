"""`make bench`: materialize the datasets and every model partition, then print the headline figures.

Runs go into the Dagster instance under DAGSTER_HOME (by default `data/dagster_home`), so they show up in the
UI's run history and asset plots just like runs launched from the UI.

    python -m bench_assets.bench [--profile quick|full] [--models resnet50 ...]
"""

import argparse
import os
import sys
from pathlib import Path

import duckdb

from bench_assets.resources import PROFILES, default_data_dir, default_duckdb_path

SUMMARY_SQL = """
WITH figures AS (
    SELECT run_id,
           max(value) FILTER (metric = 'mean_inference_request_batch_size') AS mean_batch_size,
           max(value) FILTER (metric = 'mean_inference_batch_latency_micro_secs') / 1000 AS mean_batch_latency_ms,
           max(value) FILTER (metric = 'mean_load_model_latency_milli_secs') AS mean_load_model_ms,
           max(value) FILTER (metric = 'pipeline_wall_seconds') AS wall_s
    FROM metrics GROUP BY run_id
),
outcomes AS (
    SELECT run_id, count(*) FILTER (kind = 'prediction') AS predictions, count(*) FILTER (kind = 'failure') AS failures
    FROM (SELECT run_id, 'prediction' AS kind FROM predictions UNION ALL SELECT run_id, 'failure' FROM failures)
    GROUP BY run_id
)
SELECT r.benchmark, r.model, r.status, r.dataset_size AS items,
       coalesce(o.predictions, 0) AS predictions, coalesce(o.failures, 0) AS failures,
       f.mean_batch_size, f.mean_batch_latency_ms, f.mean_load_model_ms, o.predictions / f.wall_s AS items_per_s
FROM runs r LEFT JOIN figures f USING (run_id) LEFT JOIN outcomes o USING (run_id)
WHERE list_contains(?, r.dagster_run_id)
ORDER BY r.benchmark, r.model
"""


def run_config(profile: str) -> dict:
    return {
        "resources": {"settings": {"config": {"profile": profile}}},
        "loggers": {"console": {"config": {"log_level": "INFO"}}},
    }


def print_summary(dagster_run_ids: list[str]) -> None:
    with duckdb.connect(default_duckdb_path(), read_only=True) as conn:
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
    print_summary(dagster_run_ids)
    if failed:
        print(f"failed partitions: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
