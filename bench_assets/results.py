"""The DuckDB tables that keep every benchmark run, and the only code that writes them.

`runs` has one row per pipeline run; `predictions`, `failures` (the dead-letter table), `batches` (one row per
inference batch) and `metrics` (long: run, metric, value, unit, in the spirit of Beam's metrics table) hang off
it by `run_id`. A run's rows are loaded in one transaction together with its change to `finished`, so a reader
never sees a finished run with half its rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

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
    error VARCHAR
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    predicted_index INTEGER NOT NULL,
    predicted_label VARCHAR NOT NULL,
    score DOUBLE,
    expected_label VARCHAR,
    batch_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    run_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
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
"""

# Column types of each pipeline output, for reading its JSON lines.
OUTPUT_COLUMNS = {
    "predictions": {
        "item_id": "VARCHAR",
        "predicted_index": "INTEGER",
        "predicted_label": "VARCHAR",
        "score": "DOUBLE",
        "expected_label": "VARCHAR",
        "batch_id": "VARCHAR",
    },
    "failures": {"item_id": "VARCHAR", "stage": "VARCHAR", "reason": "VARCHAR"},
    "batches": {"batch_id": "VARCHAR", "batch_size": "INTEGER", "latency_us": "DOUBLE", "started_at": "DOUBLE"},
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def create_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(SCHEMA)


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


def start_run(conn: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    create_schema(conn)
    conn.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 'running', NULL)",
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
            now(),
        ],
    )


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
            names = ", ".join(columns)
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
        conn.execute("UPDATE runs SET status = 'finished', ended_at = ? WHERE run_id = ?", [now(), run_id])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return counts


def fail_run(conn: duckdb.DuckDBPyConnection, run_id: str, error: str) -> None:
    conn.execute(
        "UPDATE runs SET status = 'failed', ended_at = ?, error = ? WHERE run_id = ?", [now(), error, run_id]
    )
