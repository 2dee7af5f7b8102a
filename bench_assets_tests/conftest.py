"""Shared fixtures: a temporary data folder and DuckDB file, and the `smoke` profile (23 items)."""

import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from bench_assets.settings import BenchmarkSettings
from bench_assets.store.marts import create_live_marts
from bench_assets.store.schema import create_schema

# Like `make test`: nothing may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def with_settings(resources: dict, **changes) -> dict:
    """The same resources with some benchmark settings changed."""
    settings = BenchmarkSettings(**{**resources["settings"].model_dump(), **changes})
    return {**resources, "settings": settings}


@pytest.fixture(scope="session")
def live_marts_file(tmp_path_factory):
    """An empty DuckDB file with the raw tables and the live marts (dbt views, bench_assets/store/marts.py), made
    once: each test's file starts as a copy, so that a run does not wait for dbt to create them."""
    path = tmp_path_factory.mktemp("live_marts") / "bench.duckdb"
    with duckdb.connect(str(path)) as conn:
        create_schema(conn)
    create_live_marts(str(path))
    return path


@pytest.fixture
def bench_resources(tmp_path, live_marts_file) -> dict:
    database = tmp_path / "bench.duckdb"
    shutil.copyfile(live_marts_file, database)
    return {
        "settings": BenchmarkSettings(profile="smoke", data_dir=str(tmp_path / "data")),
        "duckdb": DuckDBResource(database=str(database)),
    }


@pytest.fixture
def query(bench_resources):
    """Runs SQL against the test's DuckDB file, read-only, and returns the rows."""

    def run(sql: str, params=None) -> list[tuple]:
        with duckdb.connect(bench_resources["duckdb"].database, read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()

    return run


@pytest.fixture
def no_network(monkeypatch):
    """Fails any connection to an address that is not on this machine, as if there were no route out."""
    original_connect = socket.socket.connect
    attempts = []

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
            return original_connect(sock, address)
        attempts.append(address)
        raise OSError(f"test forbids network access to {address}")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    return attempts


def materialize(assets, resources, partition_key=None, run_config=None, raise_on_error=True):
    return dg.materialize(
        assets, resources=resources, partition_key=partition_key, run_config=run_config, raise_on_error=raise_on_error
    )


# One model of each of the six Beam benchmarks, at smoke size (detection: its items limit). `make bench` over them runs once per
# session (smoke_bench); the tests of what it prints, stores and reports read that one run.
SMOKE_BENCH_MODELS = {
    "image_classification": "efficientnet_lite0",
    "language_modeling": "all-minilm-l6-v2",
    "sentiment": "distilbert-base-uncased-finetuned-sst-2-english",
    "object_detection": "retinanet_resnet50_fpn",
    "imagenet_rightfit": "efficientnet_b0",
    "table_rows": "linear_regression",
}


@dataclass(frozen=True)
class SmokeBench:
    """`make bench --profile smoke` over SMOKE_BENCH_MODELS, finished: its output and its data folder."""

    completed: subprocess.CompletedProcess
    data_dir: Path

    @property
    def lines(self) -> list[str]:
        return (self.completed.stderr + self.completed.stdout).splitlines()

    def query(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.data_dir / "benchmarks.duckdb"), read_only=True) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture(scope="session")
def smoke_bench(tmp_path_factory) -> SmokeBench:
    data_dir = tmp_path_factory.mktemp("smoke_bench")
    dagster_home = data_dir / "dagster_home"  # new: the bench gives it the project's dagster.yaml
    completed = subprocess.run(
        [sys.executable, "-m", "bench_assets.cli.bench", "--profile", "smoke", "--models", *SMOKE_BENCH_MODELS.values()],
        env={**os.environ, "BENCH_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(dagster_home)},
        capture_output=True, text=True, timeout=1800,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return SmokeBench(completed, data_dir)
