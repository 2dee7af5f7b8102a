"""Shared fixtures: a temporary data folder and DuckDB file, and the `smoke` profile (23 items)."""

import os
import shutil
import socket

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
