"""The DuckDB file every run writes, opened so that a second process waits a bounded time for it and then fails
naming who holds it (DuckDB lets one process write a file at a time)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psutil
from dagster_duckdb import DuckDBResource
from pydantic import Field

from bench_assets.settings import default_data_dir


def default_lock_timeout_s() -> float:
    return float(os.environ.get("BENCH_DUCKDB_LOCK_TIMEOUT_S", "60"))


def default_duckdb_path() -> str:
    return os.environ.get("BENCH_DUCKDB_PATH", str(Path(default_data_dir()) / "benchmarks.duckdb"))


class DatabaseLockedError(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than the configured wait."""


def lock_holder(error: BaseException) -> str:
    """Who holds a DuckDB file, from DuckDB's lock error (it names the program and PID) and the process table."""
    message = str(error)
    match = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", message)
    if match is None:
        return "another process"
    program, pid = match.group(1), int(match.group(2))
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        command = ""
    described = f"process {pid} ({program})"
    if command:
        described += f", command line: {command[:300]}"
    return described


def connect_waiting(database: str, timeout_s: float, read_only: bool = False, config: dict | None = None):
    """Connects to a DuckDB file, waiting up to `timeout_s` while another process holds its lock.

    DuckDB lets one process write a file at a time (a user's SQL session, a concurrent run): this waits with
    growing pauses, then fails naming the holder. Other errors (a corrupt file, no permission) fail at once.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    while True:
        try:
            return duckdb.connect(database, read_only=read_only, config=config or {})
        except duckdb.IOException as error:
            if "could not set lock" not in str(error).lower():
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseLockedError(
                    f"DuckDB file {database} is locked by {lock_holder(error)}; waited {timeout_s:g} s "
                    "(the duckdb resource's lock_timeout_s, or BENCH_DUCKDB_LOCK_TIMEOUT_S). Close that session "
                    f"or wait for that run, then retry. DuckDB said: {error}"
                ) from error
            time.sleep(min(pause, left))
            pause = min(pause * 2, 2.0)


class BenchDuckDBResource(DuckDBResource):
    """DuckDBResource that waits a bounded, configurable time for a file another process holds, then fails clearly."""

    lock_timeout_s: float = Field(
        default_factory=default_lock_timeout_s,
        description="Seconds to wait while another process (a SQL session, a concurrent run) holds the DuckDB file.",
    )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = connect_waiting(
            self.database, self.lock_timeout_s, config={"custom_user_agent": "dagster", **self.connection_config}
        )
        try:
            yield conn
        finally:
            conn.close()


def duckdb_resource() -> DuckDBResource:
    return BenchDuckDBResource(database=default_duckdb_path())
