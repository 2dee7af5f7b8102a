"""`make bench` end to end on the smoke profile: datasets, one partition of each benchmark, marts, report and the
table."""

import socket
import sys

import pytest

from bench_assets_tests.conftest import SMOKE_BENCH_MODELS


@pytest.mark.slow
def test_bench_runs_each_benchmarks_partition_builds_the_marts_and_prints_the_table(smoke_bench):
    lines = smoke_bench.completed.stdout.splitlines()
    table = lines[max(i for i, line in enumerate(lines) if line.startswith("model ")):]
    assert table[0].split()[:5] == ["model", "configuration", "items", "failed", "top1_%"]
    assert "items/s" in table[0] and "p99_ms" in table[0]
    items = {model: 6 if benchmark == "object_detection" else 23 for benchmark, model in SMOKE_BENCH_MODELS.items()}
    rows = {line.split()[0]: line.split() for line in table[1:1 + len(SMOKE_BENCH_MODELS)]}
    assert set(rows) == set(items)
    assert rows["efficientnet_lite0"][:4] == ["efficientnet_lite0", "fp32", "23", "0"]

    assert smoke_bench.query("SELECT count(*) FROM runs WHERE status = 'finished'") == [(len(SMOKE_BENCH_MODELS),)]
    summary = smoke_bench.query(
        "SELECT benchmark, model, dataset_size, predictions + failures, is_complete, inference_items_per_second > 0, "
        "cost_per_1000_inferences_usd > 0 FROM run_summary ORDER BY benchmark"
    )
    assert summary == [
        (benchmark, model, items[model], items[model], True, True, True)
        for benchmark, model in sorted(SMOKE_BENCH_MODELS.items())
    ]
    assert sorted(smoke_bench.query("SELECT benchmark, model FROM latest_runs")) == sorted(SMOKE_BENCH_MODELS.items())
    report = (smoke_bench.data_dir / "reports" / "benchmarks.html").read_text()
    assert all(f'id="{model}"' in report for model in SMOKE_BENCH_MODELS.values())
    # The runs show up in the Dagster instance, as if launched from the UI.
    assert any((smoke_bench.data_dir / "dagster_home").rglob("*.db"))


def test_bench_releases_the_pool_slots_of_runs_whose_process_died():
    import dagster as dg
    import psutil
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from bench_assets.cli.bench import PROCESS_TAG, process_tags, release_dead_bench_runs

    ended = psutil.Popen([sys.executable, "-c", "pass"])
    ended_tag = f"{socket.gethostname()}:{ended.pid}:{ended.create_time()}"
    ended.wait()
    with dg.instance_for_test() as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("duckdb", 1)
        runs = {
            "dead": DagsterRun(job_name="warehouse_job", run_id="dead", status=DagsterRunStatus.STARTED, tags={PROCESS_TAG: ended_tag}),
            "alive": DagsterRun(job_name="warehouse_job", run_id="alive", status=DagsterRunStatus.STARTED, tags=process_tags()),
        }
        for run in runs.values():
            instance.add_run(run)
            storage.claim_concurrency_slot("duckdb", run.run_id, "step")

        assert release_dead_bench_runs(instance) == ["dead"]
        assert instance.get_run_by_id("dead").status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id("alive").status == DagsterRunStatus.STARTED
        assert storage.get_concurrency_run_ids() == {"alive"}

