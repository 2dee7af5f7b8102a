"""When things run: every model partition of every benchmark nightly, as Beam runs its benchmarks, and the
metric marts, regression checks and report once runs have landed."""

import dagster as dg

from bench_assets.jobs import BENCHMARK_JOBS

# Beam's inference benchmarks run daily at 03:50 UTC.
NIGHTLY_CRON = "50 3 * * *"
# dagster.yaml runs one run with this tag at a time: benchmarks sharing the machine would time each other.
NIGHTLY_RUN_TAG = "bench/nightly"


def nightly_schedule(job) -> dg.ScheduleDefinition:
    """A schedule that requests every partition of a partitioned asset job, once a night."""

    @dg.schedule(
        name=f"{job.name}_nightly",
        cron_schedule=NIGHTLY_CRON,
        execution_timezone="UTC",
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def run_every_partition(context: dg.ScheduleEvaluationContext):
        night = context.scheduled_execution_time.strftime("%Y-%m-%d")
        for partition_key in job.partitions_def.get_partition_keys():
            yield dg.RunRequest(
                run_key=f"{night}/{partition_key}", partition_key=partition_key, tags={NIGHTLY_RUN_TAG: night}
            )

    return run_every_partition


# Each benchmark job in bench_assets.jobs.BENCHMARK_JOBS runs every one of its partitions nightly.
nightly_schedules = [nightly_schedule(job) for job in BENCHMARK_JOBS]

metrics_after_benchmark_runs = dg.AutomationConditionSensorDefinition(
    "metrics_after_benchmark_runs",
    target=dg.AssetSelection.groups("metrics"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rebuilds the metric marts, the change-point analysis and the report after benchmark runs.",
)
