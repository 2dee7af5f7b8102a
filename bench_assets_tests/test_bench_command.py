"""`make bench` end to end on the smoke profile: datasets, one partition, marts, report and the table."""

import os
import subprocess
import sys

import duckdb


def test_bench_runs_a_partition_builds_the_marts_and_prints_the_table(tmp_path):
    env = {**os.environ, "BENCH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    completed = subprocess.run(
        [sys.executable, "-m", "bench_assets.bench", "--profile", "smoke", "--models", "efficientnet_lite0"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    table = lines[max(i for i, line in enumerate(lines) if line.startswith("benchmark ")):]
    assert table[0].split()[:3] == ["benchmark", "model", "items"]
    assert "mean_batch_latency_ms" in table[0] and "p99_batch_latency_ms" in table[0]
    assert table[1].split()[:5] == ["image_classification", "efficientnet_lite0", "23", "23", "0"]

    with duckdb.connect(str(tmp_path / "benchmarks.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM run_summary").fetchone() == (1,)
        assert conn.execute("SELECT model FROM latest_runs").fetchall() == [("efficientnet_lite0",)]
    assert (tmp_path / "reports" / "benchmarks.html").stat().st_size > 0
    # The run shows up in the Dagster instance, as if launched from the UI.
    assert any((tmp_path / "dagster_home").rglob("*.db"))
