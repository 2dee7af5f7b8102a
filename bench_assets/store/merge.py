"""Merging another machine's results file into this one: one warehouse for results from several machines.

Every run (and every sweep and tuning) is copied with all its rows, once: a run already here, by `run_id` (a
sweep by `sweep_id`, a tuning by `tuning_id`), is left as it is, so merging the same file twice adds nothing and
files merged in either order give the same tables. A file written by an older schema is migrated as it is read (the columns it lacks are
NULL, as create_schema adds them to an old file); one with columns this checkout does not know (a newer schema)
is refused, before anything is written. All of it lands in one transaction.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from bench_assets.store.schema import checked_name, create_schema

OTHER = "other_results"
# Each merged table and the parent whose key decides whether its rows are new: a run's rows come with its run.
MERGED_TABLES = {
    "runs": ("runs", "run_id"),
    "predictions": ("runs", "run_id"),
    "failures": ("runs", "run_id"),
    "batches": ("runs", "run_id"),
    "embeddings": ("runs", "run_id"),
    "stages": ("runs", "run_id"),
    "metrics": ("runs", "run_id"),
    "sweeps": ("sweeps", "sweep_id"),
    "sweep_batches": ("sweeps", "sweep_id"),
    "tunings": ("tunings", "tuning_id"),
    "trials": ("tunings", "tuning_id"),
}


class MergeError(ValueError):
    """A file that cannot be merged: missing, this file itself, not a results file, or of a newer schema."""


def table_columns(conn: duckdb.DuckDBPyConnection, database: str, table: str) -> list[str]:
    return [
        name for (name,) in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = ? AND schema_name = 'main' "
            "AND table_name = ? ORDER BY column_index",
            [database, table],
        ).fetchall()
    ]


def row_counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {table: conn.execute(f"SELECT count(*) FROM {checked_name(table)}").fetchone()[0] for table in MERGED_TABLES}


def merge_results(conn: duckdb.DuckDBPyConnection, other: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Copies the runs and sweeps of `other` that this file lacks, with their rows; returns the row counts per
    table before and after."""
    other = Path(other).resolve()
    if not other.is_file():
        raise MergeError(f"results file {other} does not exist")
    this_database, this_path = conn.execute(
        "SELECT database_name, path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    if this_path and Path(this_path).resolve() == other:
        raise MergeError(f"{other} is the file being merged into")
    create_schema(conn)
    quoted = str(other).replace("'", "''")
    conn.execute(f"ATTACH '{quoted}' AS {OTHER} (READ_ONLY)")
    try:
        columns = {}
        for table in MERGED_TABLES:
            theirs, ours = table_columns(conn, OTHER, table), table_columns(conn, this_database, table)
            unknown = [c for c in theirs if c not in ours]
            if unknown:
                raise MergeError(
                    f"{other} was written by a newer schema: its table {table} has columns this checkout does not "
                    f"know ({', '.join(unknown)}); update this checkout, then merge"
                )
            columns[table] = theirs  # empty: a table the other file does not have yet (an older schema)
        if not columns["runs"]:
            raise MergeError(f"{other} is not a benchmark results file: it has no runs table")
        before = row_counts(conn)
        conn.execute("BEGIN TRANSACTION")
        try:
            for parent, key in set(MERGED_TABLES.values()):
                if columns[parent]:
                    conn.execute(
                        f"CREATE OR REPLACE TEMP TABLE new_{parent} AS SELECT {key} FROM {OTHER}.{parent} "
                        f"EXCEPT SELECT {key} FROM {parent}"
                    )
            for table, (parent, key) in MERGED_TABLES.items():
                if not columns[table]:
                    continue
                names = ", ".join(checked_name(c) for c in columns[table])
                conn.execute(
                    f"INSERT INTO {table} ({names}) SELECT {names} FROM {OTHER}.{table} "
                    f"WHERE {key} IN (SELECT {key} FROM new_{parent})"
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return before, row_counts(conn)
    finally:
        conn.execute(f"DETACH {OTHER}")
