"""Faults: a killed run never looks finished, re-runs never mix rows, a held DuckDB file and corrupt weights fail clearly."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import duckdb
import pytest
import torch
from dagster_duckdb import DuckDBResource

from bench_assets.store import runs as results
from bench_assets_tests.assets import IMAGE_LIST
from bench_assets_tests.assets import image_classification_run
from bench_assets_tests.assets import image_model_weights
from bench_assets.datasets.images import shipped_photo_path
from bench_assets.settings import BenchmarkSettings
from bench_assets.store.connection import BenchDuckDBResource, DatabaseLockedError, connect_waiting
from bench_assets_tests.conftest import materialize

MODEL = "efficientnet_lite0"
IMAGES = 6
RUN_CONFIG = {"ops": {"image_classification_run": {"config": {"min_batch_size": 2, "max_batch_size": 4}}}}

# Runs the image partition in a process of its own; the first image read touches `marker` and then waits for
# the kill, so the test kills it part-way however fast the machine is.
KILLABLE_RUN = textwrap.dedent(
    """
    import json, pathlib, sys, time
    import dagster as dg
    from dagster_duckdb import DuckDBResource
    from bench_assets_tests.assets import image_classification_run
    from bench_assets.vision import image_pipeline
    from bench_assets.settings import BenchmarkSettings

    data_dir, database, marker, run_config = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3]), json.loads(sys.argv[4])
    read_image = image_pipeline.read_image

    def read_image_until_killed(*args, **kwargs):
        marker.touch()
        time.sleep(3600)
        return read_image(*args, **kwargs)

    image_pipeline.read_image = read_image_until_killed
    dg.materialize(
        [image_classification_run],
        resources={"settings": BenchmarkSettings(profile="smoke", data_dir=data_dir), "duckdb": DuckDBResource(database=database)},
        partition_key="efficientnet_lite0",
        run_config=run_config,
    )
    """
)


@pytest.fixture(scope="module")
def prepared_data(tmp_path_factory) -> BenchmarkSettings:
    """A data folder with efficientnet_lite0's weights and a list of a few images, shared by this module's tests."""
    settings = BenchmarkSettings(profile="smoke", data_dir=str(tmp_path_factory.mktemp("faults") / "data"))
    materialize([image_model_weights], {"settings": settings}, partition_key=MODEL)
    images = settings.root / "inputs"
    images.mkdir(parents=True)
    from PIL import Image

    photo = Image.open(shipped_photo_path("chelsea.png")).convert("RGB")
    lines = []
    for index in range(IMAGES):
        path = images / f"photo_{index}.jpg"
        photo.crop((index * 20, 0, index * 20 + 160, 120)).save(path, quality=90)
        lines.append(f"{path}\n")
    image_list = settings.dataset_dir("openimage_sample") / IMAGE_LIST
    image_list.parent.mkdir(parents=True)
    image_list.write_text("".join(lines))
    return settings


def run_rows(database: str, sql: str, params=None) -> list[tuple]:
    with duckdb.connect(database, read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


@pytest.mark.slow
def test_a_killed_run_is_abandoned_and_reruns_give_separate_complete_runs(prepared_data, tmp_path):
    database = str(tmp_path / "bench.duckdb")
    marker = tmp_path / "pipeline-started"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_RUN, prepared_data.data_dir, database, str(marker), json.dumps(RUN_CONFIG)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the pipeline never started"
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL

    # Killed part-way: the run is still `running` and has no rows (rows only arrive with `finished`).
    (killed_id, status, pid), = run_rows(database, "SELECT run_id, status, pid FROM runs")
    assert (status, pid) == ("running", process.pid)
    for table in ("predictions", "failures", "batches", "metrics"):
        assert run_rows(database, f"SELECT count(*) FROM {table}") == [(0,)]

    resources = {"settings": prepared_data, "duckdb": DuckDBResource(database=database)}
    materialize([image_classification_run], resources, partition_key=MODEL, run_config=RUN_CONFIG)
    statuses = run_rows(database, "SELECT run_id, status, error FROM runs ORDER BY started_at")
    assert [(run_id, status) for run_id, status, _ in statuses][0] == (killed_id, "abandoned")
    assert f"pid {process.pid}" in statuses[0][2]
    assert [status for _, status, _ in statuses] == ["abandoned", "finished"]

    # The same partition again: a second run, its rows apart from the first's.
    materialize([image_classification_run], resources, partition_key=MODEL, run_config=RUN_CONFIG)
    finished = [run_id for run_id, in run_rows(database, "SELECT run_id FROM runs WHERE status = 'finished'")]
    assert len(finished) == 2
    for run_id in finished:
        lines = run_rows(database, "SELECT line FROM predictions WHERE run_id = ? ORDER BY line", [run_id])
        assert [line for line, in lines] == list(range(1, IMAGES + 1))
        assert run_rows(database, "SELECT sum(batch_size) FROM batches WHERE run_id = ?", [run_id]) == [(IMAGES,)]
    assert run_rows(database, "SELECT count(*) FROM predictions WHERE NOT list_contains(?, run_id)", [finished]) == [(0,)]
    shared_batches = run_rows(
        database,
        "SELECT count(*) FROM batches a JOIN batches b ON a.batch_id = b.batch_id AND a.run_id <> b.run_id",
    )
    assert shared_batches == [(0,)]
    assert run_rows(database, "SELECT count(DISTINCT run_id) FROM metrics") == [(2,)]


def hold_lock(database: str) -> subprocess.Popen:
    """Another process (a user's SQL session) that opens the DuckDB file for writing and keeps it open until a
    line arrives on its stdin, then closes it and prints "released"."""
    code = textwrap.dedent(
        """
        import duckdb, sys
        conn = duckdb.connect(sys.argv[1])
        print("holding", flush=True)
        sys.stdin.readline()
        conn.close()
        print("released", flush=True)
        sys.stdin.readline()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, database], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def seed_database(database: str) -> None:
    """A results file with one earlier run in it, to show the file survives."""
    record = results.RunRecord(
        run_id="earlier", benchmark="image_classification", model=MODEL, profile="smoke", runner="direct",
        runner_options={}, batching={}, dataset_size=1, weights_source="shipped", weights_sha256="0" * 64,
        fingerprint={}, fingerprint_id="0", dagster_run_id=None,
    )
    with duckdb.connect(database) as conn:
        results.start_run(conn, record)
        results.fail_run(conn, "earlier", "an earlier failure")


def test_a_held_database_file_fails_after_the_configured_wait_naming_the_holder(prepared_data, tmp_path):
    database = str(tmp_path / "bench.duckdb")
    seed_database(database)
    run_dirs_before = set((prepared_data.root / "runs").glob("*"))
    holder = hold_lock(database)
    try:
        resources = {"settings": prepared_data, "duckdb": BenchDuckDBResource(database=database, lock_timeout_s=1.5)}
        started = time.monotonic()
        result = materialize(
            [image_classification_run], resources, partition_key=MODEL, run_config=RUN_CONFIG, raise_on_error=False
        )
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert not result.success
    message = "\n".join(str(event.step_failure_data.error) for event in result.get_step_failure_events())
    assert f"DuckDB file {database} is locked by process {holder.pid}" in message
    assert "waited 1.5 s (the duckdb resource's lock_timeout_s, or BENCH_DUCKDB_LOCK_TIMEOUT_S)" in message
    assert waited >= 1.5
    # Nothing started and nothing was left behind; the file is intact and usable.
    assert set((prepared_data.root / "runs").glob("*")) == run_dirs_before
    assert run_rows(database, "SELECT run_id, status, error FROM runs") == [("earlier", "failed", "an earlier failure")]
    with duckdb.connect(database) as conn:
        conn.execute("CHECKPOINT")


def test_a_database_file_released_within_the_wait_is_used(tmp_path):
    database = str(tmp_path / "bench.duckdb")
    seed_database(database)
    holder = hold_lock(database)
    connected = []
    try:
        with pytest.raises(DatabaseLockedError):
            connect_waiting(database, timeout_s=0.2)
        waiter = threading.Thread(target=lambda: connected.append(connect_waiting(database, timeout_s=600)), daemon=True)
        waiter.start()
        waiter.join(1.0)
        assert waiter.is_alive() and not connected  # still waiting while the file is held
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        waiter.join(600)
        (conn,) = connected
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
        conn.close()
    finally:
        holder.kill()
        holder.wait()


def test_a_truncated_weights_file_is_named_before_the_pipeline_starts(prepared_data, tmp_path):
    settings = BenchmarkSettings(profile="smoke", data_dir=str(tmp_path / "data"))
    shutil.copytree(prepared_data.root / "models", settings.root / "models")
    shutil.copytree(prepared_data.dataset_dir("openimage_sample"), settings.dataset_dir("openimage_sample"))
    weights = settings.weights_path(MODEL)
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    database = tmp_path / "bench.duckdb"

    result = materialize(
        [image_classification_run], {"settings": settings, "duckdb": DuckDBResource(database=str(database))},
        partition_key=MODEL, run_config=RUN_CONFIG, raise_on_error=False,
    )
    assert not result.success
    message = "\n".join(str(event.step_failure_data.error) for event in result.get_step_failure_events())
    assert f"weights file {weights} is corrupt or was changed" in message
    assert not database.exists() and not (settings.root / "runs").exists()  # no run was started


def test_a_truncated_configured_weights_file_is_named_by_the_weights_asset(tmp_path):
    configured = tmp_path / "pretrained"
    configured.mkdir()
    path = configured / "resnet50.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:4096])
    settings = BenchmarkSettings(profile="smoke", data_dir=str(tmp_path / "data"), weights_dir=str(configured))

    result = materialize([image_model_weights], {"settings": settings}, partition_key="resnet50", raise_on_error=False)
    assert not result.success
    message = "\n".join(str(event.step_failure_data.error) for event in result.get_step_failure_events())
    assert f"weights file {path} cannot be loaded as a state dict" in message


def test_definitions_wait_for_a_held_database_file():
    from bench_assets.definitions import defs

    resource = defs.resources["duckdb"]
    assert isinstance(resource, BenchDuckDBResource) and resource.lock_timeout_s > 0


def test_a_results_file_written_before_line_numbers_gains_the_new_columns(tmp_path):
    database = str(tmp_path / "old.duckdb")
    with duckdb.connect(database) as conn:  # the first release's tables, with a row
        conn.execute(
            "CREATE TABLE predictions (run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, predicted_index INTEGER NOT NULL, "
            "predicted_label VARCHAR NOT NULL, score DOUBLE, expected_label VARCHAR, batch_id VARCHAR NOT NULL)"
        )
        conn.execute("INSERT INTO predictions VALUES ('old', 'a.jpg', 1, 'tabby', 0.9, NULL, 'b')")
        conn.execute("CREATE TABLE failures (run_id VARCHAR NOT NULL, item_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, reason VARCHAR NOT NULL)")
    seed_database(database)  # start_run upgrades the schema
    with duckdb.connect(database, read_only=True) as conn:
        assert conn.execute("SELECT item_id, line FROM predictions").fetchall() == [("a.jpg", None)]
        columns = {row[0] for row in conn.execute("DESCRIBE failures").fetchall()}
        assert "line" in columns
        assert conn.execute("SELECT pid, host IS NOT NULL FROM runs").fetchall() == [(os.getpid(), True)]
