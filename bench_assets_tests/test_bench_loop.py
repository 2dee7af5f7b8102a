"""The loop a person repeats while trying a setting: what a repeated invocation does not do again."""

import io
import os
import subprocess
import sys

import dagster as dg
import pytest

from bench_assets.defs import benchmarks as benchmark_defs
from bench_assets.settings import BenchmarkSettings
from bench_assets_tests.assets import image_model_weights
from bench_assets_tests.conftest import materialize

MODEL = "efficientnet_lite0"


def test_weights_prepared_from_the_same_inputs_are_not_prepared_again(tmp_path, monkeypatch):
    prepared = []

    def counting_prepare(spec, out_path, configured, seed):
        prepared.append(seed)
        return real_prepare(spec, out_path, configured, seed)

    real_prepare = benchmark_defs.prepare_weights
    monkeypatch.setattr(benchmark_defs, "prepare_weights", counting_prepare)

    def weights_metadata(settings: BenchmarkSettings) -> dict:
        result = materialize([image_model_weights], {"settings": settings}, partition_key=MODEL)
        (materialization,) = result.asset_materializations_for_node(image_model_weights.op.name)
        return {key: value.value for key, value in materialization.metadata.items()}

    settings = BenchmarkSettings(profile="smoke", data_dir=str(tmp_path))
    first = weights_metadata(settings)
    written = settings.weights_path(MODEL).stat().st_mtime_ns
    again = weights_metadata(settings)
    assert prepared == [settings.seed]
    assert (first["reused"], again["reused"]) == (False, True)
    assert again["sha256"] == first["sha256"] and again["gflops_per_item"] == first["gflops_per_item"] > 0
    assert settings.weights_path(MODEL).stat().st_mtime_ns == written

    # Another seed is another input: prepared again.
    reseeded = weights_metadata(BenchmarkSettings(profile="smoke", data_dir=str(tmp_path), seed=settings.seed + 1))
    assert prepared == [settings.seed, settings.seed + 1] and reseeded["reused"] is False
    # A file changed since it was prepared is prepared again, whatever its record says.
    settings.weights_path(MODEL).write_bytes(b"changed")
    assert weights_metadata(BenchmarkSettings(profile="smoke", data_dir=str(tmp_path), seed=settings.seed + 1))["reused"] is False
    assert len(prepared) == 3


@pytest.mark.slow  # starts two worker processes
def test_the_first_job_runs_in_the_worker_started_ahead_and_an_unused_worker_is_ended(tmp_path, monkeypatch):
    from bench_assets.cli.bench import PROCESS_TAG, Console, Worker, run_job

    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    ahead = Worker()
    run_id, succeeded = run_job("smoke", "datasets_job", "", "datasets", Console(io.StringIO()), assets=["table_rows"],
                                worker=ahead)
    assert succeeded and ahead.process.returncode == 0
    run = dg.DagsterInstance.get().get_run_by_id(run_id)
    assert run.tags[PROCESS_TAG].split(":")[1] == str(ahead.process.pid)

    unused = Worker()
    unused.close()
    assert unused.process.returncode is not None


@pytest.mark.slow
def test_a_repeated_invocation_with_no_warehouse_reuses_datasets_and_weights_and_reads_the_view(tmp_path):
    """The loop of trying a setting, twice, on the cheapest model: the second run prepares nothing again."""
    env = {**os.environ, "BENCH_DATA_DIR": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dagster_home")}
    command = [sys.executable, "-m", "bench_assets.cli.bench", "--profile", "smoke", "--models", "linear_regression",
               "--no-warehouse"]
    for invocation in ("first", "second"):
        completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        assert completed.returncode == 0, invocation + completed.stdout[-3000:] + completed.stderr[-3000:]
    lines = completed.stdout.splitlines()
    assert "datasets: already written for the smoke profile and its seed" in lines
    table_start = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[table_start + 1].split()[:4] == ["linear_regression", "fp32", "23", "0"]
    assert "metrics (dbt marts, change points, report): not rebuilt (--no-warehouse); the table below reads the " \
           "run_summary view" in lines
    assert any(line.startswith("not rebuilt (--no-warehouse): the marts") for line in lines)
    assert not any(line.startswith("fastest so far") for line in lines)  # best_configuration was not built
    assert lines[-1].endswith("benchmarks.html (as last built)")
    assert not (tmp_path / "reports" / "benchmarks.html").exists()

    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        runs = instance.get_runs()  # newest first
        weights = instance.fetch_materializations(dg.AssetKey("table_rows_model_weights"), limit=10).records
    assert [run.job_name for run in runs] == ["table_rows_job", "table_rows_job", "datasets_job"]
    reused = {record.run_id: record.asset_materialization.metadata["reused"].value for record in weights}
    assert reused == {runs[1].run_id: False, runs[0].run_id: True}
