"""The schema of the DuckDB results file: the raw tables every run writes (see bench_assets/store/runs.py for
what each holds), the columns added since the first release, and the pipeline outputs' column types.

The only names spliced into SQL are the fixed table and column names here, checked against SQL_NAME."""

from __future__ import annotations

import re

import duckdb

from bench_assets.run.run_settings import RUN_SETTINGS

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
CREATE TABLE IF NOT EXISTS stages (
    run_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    step VARCHAR NOT NULL,
    items INTEGER NOT NULL,
    busy_us DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    run_id VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    vector FLOAT[] NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id VARCHAR NOT NULL,
    namespace VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    unit VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id VARCHAR PRIMARY KEY,
    benchmark VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    profile VARCHAR NOT NULL,
    fingerprint_id VARCHAR NOT NULL,
    items INTEGER NOT NULL,
    latency_budget_ms DOUBLE NOT NULL,
    swept_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_batches (
    sweep_id VARCHAR NOT NULL,
    fixed_batch_size INTEGER,
    batch_id VARCHAR NOT NULL,
    batch_size INTEGER NOT NULL,
    latency_us DOUBLE NOT NULL,
    started_at DOUBLE NOT NULL
);
CREATE TABLE IF NOT EXISTS tunings (
    tuning_id VARCHAR PRIMARY KEY,
    benchmark VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    profile VARCHAR NOT NULL,
    sample_items INTEGER NOT NULL,
    budget_seconds DOUBLE NOT NULL,
    dagster_run_id VARCHAR,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS trials (
    tuning_id VARCHAR NOT NULL,
    trial INTEGER NOT NULL,
    phase VARCHAR NOT NULL,
    changes JSON NOT NULL,
    run_id VARCHAR,
    outcome VARCHAR NOT NULL,
    reason VARCHAR
);
"""

# Columns added after the first release: a file written before gains them (NULL in its older rows).
ADDED_COLUMNS = {
    "runs": (
        "pid INTEGER", "host VARCHAR", "process_started_at DOUBLE", "dataset JSON", "comparison_key VARCHAR",
        "machine_id VARCHAR", "machine_label VARCHAR", "torch_threads INTEGER", "weights_identity VARCHAR",
    ),
    "predictions": ("line INTEGER", "detail VARCHAR"),
    "failures": ("line INTEGER", "traceback VARCHAR"),
}

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
    # The busy time of a stage's step (a DoFn) over one bundle (bench_assets/pipeline/stage_timing.py).
    "stages": {"stage": "VARCHAR", "step": "VARCHAR", "items": "INTEGER", "busy_us": "DOUBLE"},
    # An embedding benchmark's vectors, by input line (the embedding benchmarks only).
    "embeddings": {"line": "INTEGER", "vector": "FLOAT[]"},
}


SQL_NAME = re.compile(r"[a-z_][a-z0-9_]*")
SQL_TYPES = frozenset({"INTEGER", "VARCHAR", "DOUBLE", "JSON"})


def checked_name(name: str) -> str:
    """A table or column name that may be spliced into SQL: lower-case letters, digits and underscores only."""
    if not SQL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain SQL name")
    return name


def write_run_settings(conn: duckdb.DuckDBPyConnection) -> None:
    """The run settings table (bench_assets/run/run_settings.py) as dbt reads it: the defaults of runs recorded
    before a setting existed, and the setting columns of the marts. Rewritten whole, so an added setting lands."""
    conn.execute(
        "CREATE OR REPLACE TABLE run_settings (position INTEGER, setting VARCHAR, default_value VARCHAR, "
        "accepted_values VARCHAR[], configures_model BOOLEAN, description VARCHAR)"
    )
    conn.executemany(
        "INSERT INTO run_settings VALUES (?, ?, ?, ?, ?, ?)",
        [
            (position, checked_name(setting.name), setting.default, list(setting.values), setting.configures_model,
             setting.description)
            for position, setting in enumerate(RUN_SETTINGS)
        ],
    )


def create_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(SCHEMA)
    write_run_settings(conn)
    for table, columns in ADDED_COLUMNS.items():
        for column, sql_type in (definition.split() for definition in columns):
            if sql_type not in SQL_TYPES:
                raise ValueError(f"unexpected column type {sql_type!r}")
            conn.execute(f"ALTER TABLE {checked_name(table)} ADD COLUMN IF NOT EXISTS {checked_name(column)} {sql_type}")
