"""The DuckDB tables that keep every benchmark run, and the only code that writes them.

`runs` has one row per pipeline run; `predictions`, `failures` (the dead-letter table), `batches` (one row per
inference batch) and `metrics` (long: run, metric, value, unit, in the spirit of Beam's metrics table) hang off
it by `run_id`. A run's rows are loaded in one transaction together with its change to `finished`, so a reader
never sees a finished run with half its rows.

A run's status is `running`, then `finished` or `failed`; a run whose process ended without saying (killed,
out of memory) is marked `abandoned` by the next run started on the same host. Each prediction and failure
carries `line`, the item's line number in the run's input, which tells equal lines apart: every line of the
input is exactly one prediction or one failure.

Every statement takes its values as parameters; the only names spliced into SQL are the fixed table and column
names of OUTPUT_COLUMNS, checked against SQL_NAME.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import psutil

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    benchmark VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    profile VARCHAR NOT NULL,
    runner VARCHAR NOT NULL,
    runner_options JSON,
    batching JSON,
    dataset_size INTEGER NOT NULL,
    weights_source VARCHAR NOT NULL,
    weights_sha256 VARCHAR NOT NULL,
    fingerprint JSON NOT NULL,
    fingerprint_id VARCHAR NOT NULL,
    dagster_run_id VARCHAR,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    error VARCHAR,
    pid INTEGER,
    host VARCHAR,
    process_started_at DOUBLE
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    predicted_index INTEGER NOT NULL,
    predicted_label VARCHAR NOT NULL,
    score DOUBLE,
    expected_label VARCHAR,
    batch_id VARCHAR NOT NULL,
    line INTEGER
);
CREATE TABLE IF NOT EXISTS failures (
    run_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    line INTEGER
);
CREATE TABLE IF NOT EXISTS batches (
    run_id VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    batch_size INTEGER NOT NULL,
    latency_us DOUBLE NOT NULL,
    started_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR NOT NULL,
    namespace VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    unit VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS batch_sweeps (
    sweep_id VARCHAR NOT NULL,
    benchmark VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    profile VARCHAR NOT NULL,
    fingerprint_id VARCHAR NOT NULL,
    batch_size INTEGER,
    items INTEGER NOT NULL,
    mean_batch_size DOUBLE NOT NULL,
    inference_items_per_second DOUBLE NOT NULL,
    batch_latency_p50_ms DOUBLE NOT NULL,
    batch_latency_p99_ms DOUBLE NOT NULL,
    latency_budget_ms DOUBLE NOT NULL,
    best_within_budget BOOLEAN NOT NULL,
    swept_at TIMESTAMPTZ NOT NULL
);
"""

# Columns added after the first release: a file written before gains them (NULL in its older rows).
ADDED_COLUMNS = (
    ("runs", "pid", "INTEGER"),
    ("runs", "host", "VARCHAR"),
    ("runs", "process_started_at", "DOUBLE"),
    ("predictions", "line", "INTEGER"),
    ("failures", "line", "INTEGER"),
    ("predictions", "detail", "VARCHAR"),
    ("failures", "traceback", "VARCHAR"),
    ("runs", "dataset", "JSON"),
    ("runs", "comparison_key", "VARCHAR"),
)

# Column types of each pipeline output, for reading its JSON lines.
OUTPUT_COLUMNS = {
    "predictions": {
        "line": "INTEGER",
        "item_id": "VARCHAR",
        "predicted_index": "INTEGER",
        "predicted_label": "VARCHAR",
        "score": "DOUBLE",
        "expected_label": "VARCHAR",
        "batch_id": "VARCHAR",
        # JSON text of what a benchmark's prediction holds beyond its top answer (top-5 classes, detections).
        "detail": "VARCHAR",
    },
    "failures": {
        "line": "INTEGER",
        "item_id": "VARCHAR",
        "stage": "VARCHAR",
        "reason": "VARCHAR",
        # The formatted traceback of an inference failure; NULL for read and preprocess failures.
        "traceback": "VARCHAR",
    },
    "batches": {"batch_id": "VARCHAR", "batch_size": "INTEGER", "latency_us": "DOUBLE", "started_at": "DOUBLE"},
}


def now() -> datetime:
    return datetime.now(timezone.utc)


SQL_NAME = re.compile(r"[a-z_][a-z0-9_]*")
SQL_TYPES = frozenset({"INTEGER", "VARCHAR", "DOUBLE", "JSON"})


def checked_name(name: str) -> str:
    """A table or column name that may be spliced into SQL: lower-case letters, digits and underscores only."""
    if not SQL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain SQL name")
    return name


def create_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(SCHEMA)
    for table, column, sql_type in ADDED_COLUMNS:
        if sql_type not in SQL_TYPES:
            raise ValueError(f"unexpected column type {sql_type!r}")
        conn.execute(f"ALTER TABLE {checked_name(table)} ADD COLUMN IF NOT EXISTS {checked_name(column)} {sql_type}")


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    benchmark: str
    model: str
    profile: str
    runner: str
    runner_options: dict
    batching: dict
    dataset_size: int
    weights_source: str
    weights_sha256: str
    fingerprint: dict
    fingerprint_id: str
    dagster_run_id: str | None
    # Which input it read: name, source, size, seed and the sha256 of its snapshot.
    dataset: dict = field(default_factory=dict)

    @property
    def comparison_key(self) -> str:
        """Runs form one series (and are compared for regressions) only when everything in COMPARISON agrees."""
        measured = {name: getattr(self, name) for name in COMPARISON}
        return hashlib.sha256(json.dumps(measured, sort_keys=True).encode()).hexdigest()[:16]


# Everything that changes what a run measures, in one list. `batching` is the run config's batching(): every run
# setting that changes the work (mode, bounds, device, and any added later) belongs there; `fingerprint_id`
# covers the machine, threads, library versions, the runner and its options.
COMPARISON = ("benchmark", "model", "profile", "dataset", "batching", "weights_sha256", "fingerprint_id")

RUN_COLUMNS = (
    "run_id, benchmark, model, profile, runner, runner_options, batching, dataset_size, weights_source, "
    "weights_sha256, fingerprint, fingerprint_id, dagster_run_id, dataset, comparison_key, started_at, status, "
    "pid, host, process_started_at"
)


def this_process() -> tuple[int, str, float]:
    """(pid, host, process start time): what identifies the process that runs a pipeline."""
    return os.getpid(), socket.gethostname(), psutil.Process().create_time()


def process_is_running(pid: int, started_at: float | None) -> bool:
    """Whether the process that started a run still runs on this host (a reused pid has a later start time)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or abs(process.create_time() - started_at) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # it exists; assume it is ours
        return True


def start_run(conn: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    create_schema(conn)
    pid, host, process_started_at = this_process()
    conn.execute(
        f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
        [
            run.run_id,
            run.benchmark,
            run.model,
            run.profile,
            run.runner,
            json.dumps(run.runner_options),
            json.dumps(run.batching),
            run.dataset_size,
            run.weights_source,
            run.weights_sha256,
            json.dumps(run.fingerprint),
            run.fingerprint_id,
            run.dagster_run_id,
            json.dumps(run.dataset),
            run.comparison_key,
            now(),
            pid,
            host,
            process_started_at,
        ],
    )


def mark_abandoned_runs(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, int]]:
    """Marks `abandoned` every `running` run on this host whose process has ended, and returns them.

    Such a run's process was killed or crashed before it could record `finished` or `failed`; it loaded no rows
    (rows only arrive with `finished`), and its run directory keeps what the pipeline wrote. Runs started on
    another host, or before processes were recorded, are left alone: nothing here can tell whether they live.
    Returns (run_id, benchmark, model, pid) of each run marked.
    """
    create_schema(conn)
    _, host, _ = this_process()
    running = conn.execute(
        "SELECT run_id, benchmark, model, pid, process_started_at FROM runs "
        "WHERE status = 'running' AND host = ? AND pid IS NOT NULL",
        [host],
    ).fetchall()
    marked = []
    for run_id, benchmark, model, pid, process_started_at in running:
        if process_is_running(pid, process_started_at):
            continue
        error = f"abandoned: its process (pid {pid} on {host}) ended before the run finished"
        conn.execute(
            "UPDATE runs SET status = 'abandoned', ended_at = ?, error = ? WHERE run_id = ? AND status = 'running'",
            [now(), error, run_id],
        )
        marked.append((run_id, benchmark, model, pid))
    return marked


def finish_run(
    conn: duckdb.DuckDBPyConnection, run_id: str, run_dir: Path, metric_rows: list[dict]
) -> dict[str, int]:
    """Loads the pipeline's outputs and metrics and marks the run finished, all or nothing.

    Returns the number of rows loaded per table.
    """
    counts = {}
    conn.execute("BEGIN TRANSACTION")
    try:
        for table, columns in OUTPUT_COLUMNS.items():
            # One file per bundle that produced rows; an output with no rows has no file.
            files = sorted(str(p) for p in run_dir.glob(f"{table}-*.jsonl"))
            table = checked_name(table)
            names = ", ".join(checked_name(column) for column in columns)
            if files:
                conn.execute(
                    f"INSERT INTO {table} (run_id, {names}) SELECT ?, {names} "
                    "FROM read_json(?, format = 'newline_delimited', columns = ?)",
                    [run_id, files, columns],
                )
            counts[table] = conn.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]
        if metric_rows:
            conn.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)",
                [[run_id, r["namespace"], r["metric"], r["value"], r["unit"]] for r in metric_rows],
            )
        # Distinct input lines among the rows: with the row counts, shows a line delivered twice or never.
        counts["lines_accounted"] = conn.execute(
            "SELECT count(DISTINCT line) FROM (SELECT line FROM predictions WHERE run_id = ? "
            "UNION ALL SELECT line FROM failures WHERE run_id = ?)",
            [run_id, run_id],
        ).fetchone()[0]
        conn.execute("UPDATE runs SET status = 'finished', ended_at = ? WHERE run_id = ?", [now(), run_id])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return counts


def record_sweep(conn: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    """One batch-size sweep's points (bench_assets/batch_sweep.py), in one transaction; `batch_size` NULL is the
    benchmark's adaptive batching."""
    create_schema(conn)
    conn.executemany("INSERT INTO batch_sweeps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def fail_run(conn: duckdb.DuckDBPyConnection, run_id: str, error: str) -> None:
    conn.execute(
        "UPDATE runs SET status = 'failed', ended_at = ?, error = ? WHERE run_id = ?", [now(), error, run_id]
    )
