"""The nightly schedules request every model partition of every benchmark, and the metric assets follow runs."""

from datetime import datetime, timezone

import dagster as dg

from bench_assets.definitions import defs
from bench_assets.benchmarks import BENCHMARKS
from bench_assets.defs.benchmarks import BENCHMARK_DEFINITIONS, NIGHTLY_RUN_TAG

METRIC_ASSETS = {"stg_runs", "run_summary", "latest_runs", "model_trend", "change_points", "regressions",
                 "benchmark_report"}


def test_each_benchmark_job_runs_every_partition_nightly_and_is_on():
    night = datetime(2026, 11, 30, 3, 50, tzinfo=timezone.utc)
    repository = defs.get_repository_def()
    jobs = [d.job for d in BENCHMARK_DEFINITIONS.values()]
    assert len(jobs) == len(BENCHMARKS) >= 2
    for job in jobs:
        schedule = repository.get_schedule_def(f"{job.name}_nightly")
        assert (schedule.cron_schedule, schedule.execution_timezone) == ("50 3 * * *", "UTC")
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
        assert schedule.job_name == job.name

        with dg.build_schedule_context(repository_def=repository, scheduled_execution_time=night) as context:
            requests = list(schedule.evaluate_tick(context).run_requests)

        partitions = job.partitions_def.get_partition_keys()
        assert [r.partition_key for r in requests] == partitions
        assert [r.run_key for r in requests] == [f"2026-11-30/{key}" for key in partitions]
        assert all(r.tags[NIGHTLY_RUN_TAG] == "2026-11-30" for r in requests)


def test_metrics_rebuild_once_after_a_benchmark_run_lands_and_not_before():
    sensor = defs.get_repository_def().get_sensor_def("warehouse_after_benchmark_runs")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    instance = dg.DagsterInstance.ephemeral()

    idle = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert idle.total_requested == 0

    instance.report_runless_asset_event(dg.AssetMaterialization("image_classification_run", partition="resnet50"))
    after_run = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=idle.cursor)
    requested = {key for key in METRIC_ASSETS if after_run.get_num_requested(dg.AssetKey(key)) == 1}
    assert requested == METRIC_ASSETS

    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after_run.cursor)
    assert settled.total_requested == 0
