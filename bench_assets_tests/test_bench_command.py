"""`make bench` end to end on the smoke profile: datasets, one partition, marts, report and the table."""

import os
import socket
import subprocess
import sys

import duckdb
import pytest


@pytest.mark.slow
def test_bench_runs_a_partition_builds_the_marts_and_prints_the_table(tmp_path):
    env = {**os.environ, "BENCH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    completed = subprocess.run(
        [sys.executable, "-m", "bench_assets.cli.bench", "--profile", "smoke", "--models", "efficientnet_lite0"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    table = lines[max(i for i, line in enumerate(lines) if line.startswith("model ")):]
    assert table[0].split()[:5] == ["model", "configuration", "items", "failed", "top1_%"]
    assert "items/s" in table[0] and "p99_ms" in table[0]
    assert table[1].split()[:4] == ["efficientnet_lite0", "fp32", "23", "0"]

    with duckdb.connect(str(tmp_path / "benchmarks.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM run_summary").fetchone() == (1,)
        assert conn.execute("SELECT model FROM latest_runs").fetchall() == [("efficientnet_lite0",)]
    assert (tmp_path / "reports" / "benchmarks.html").stat().st_size > 0
    # The run shows up in the Dagster instance, as if launched from the UI.
    assert any((tmp_path / "dagster_home").rglob("*.db"))


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


@pytest.mark.slow
def test_bench_runs_beams_other_benchmarks_into_the_marts_and_the_report(tmp_path):
    """One model of each benchmark added after the first two, at smoke size (detection: its items limit)."""
    models = {
        "sentiment": "distilbert-base-uncased-finetuned-sst-2-english",
        "object_detection": "retinanet_resnet50_fpn",
        "imagenet_rightfit": "efficientnet_b0",
        "table_rows": "linear_regression",
    }
    env = {**os.environ, "BENCH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    completed = subprocess.run(
        [sys.executable, "-m", "bench_assets.cli.bench", "--profile", "smoke", "--models", *models.values()],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    for benchmark, model in models.items():
        assert any(line.split()[:1] == [model] for line in completed.stdout.splitlines()), model

    with duckdb.connect(str(tmp_path / "benchmarks.duckdb"), read_only=True) as conn:
        summary = conn.execute(
            "SELECT benchmark, model, dataset_size, predictions + failures, is_complete, inference_items_per_second > 0, "
            "cost_per_1000_inferences_usd > 0 FROM run_summary ORDER BY benchmark"
        ).fetchall()
    assert summary == [
        ("imagenet_rightfit", "efficientnet_b0", 23, 23, True, True, True),
        ("object_detection", "retinanet_resnet50_fpn", 6, 6, True, True, True),
        ("sentiment", "distilbert-base-uncased-finetuned-sst-2-english", 23, 23, True, True, True),
        ("table_rows", "linear_regression", 23, 23, True, True, True),
    ]
    report = (tmp_path / "reports" / "benchmarks.html").read_text()
    assert all(f'id="{model}"' in report for model in models.values())
