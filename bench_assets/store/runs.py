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
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import psutil

from bench_assets.machine import fingerprint as fingerprints
from bench_assets.store.schema import OUTPUT_COLUMNS, checked_name, create_schema

# Where a run's weights come from (`runs.weights_source`): a configured or shipped file, or made by the platform from
# the settings' seed, whose identity is that recipe, not the bytes (RunRecord.weights_identity).
SEEDED_RANDOM_WEIGHTS = "seeded_random"
FITTED_WEIGHTS = "fitted"  # fitted on a seeded table (the table-row benchmark's model)
MADE_FROM_SEED = (SEEDED_RANDOM_WEIGHTS, FITTED_WEIGHTS)


def now() -> datetime:
    return datetime.now(timezone.utc)


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
    def machine_id(self) -> str:
        return fingerprints.machine_id(self.fingerprint)

    @property
    def machine_label(self) -> str:
        return fingerprints.machine_label(self.fingerprint)

    @property
    def torch_threads(self) -> int | None:
        return self.fingerprint.get("torch_threads")

    @property
    def weights_identity(self) -> str:
        """What the run's weights are, as a series tells them apart: a file's sha256, but for weights the platform
        makes from the settings' seed (in `dataset`) the word for how (seeded random, or fitted on a seeded table).
        Those are made again when a library they come from changes, and their bytes change with it (transformers 5
        initializes DistilBERT otherwise than 4.57; a scikit-learn pickle records its version): the work is the
        same, and the upgrade must stay a step in its series."""
        return self.weights_source if self.weights_source in MADE_FROM_SEED else self.weights_sha256

    @property
    def comparison_key(self) -> str:
        """Runs form one series (and are compared for regressions) only when everything in COMPARISON agrees."""
        measured = {name: getattr(self, name) for name in COMPARISON}
        return hashlib.sha256(json.dumps(measured, sort_keys=True).encode()).hexdigest()[:16]


# The same work on the same machine in the same configuration, in one list. `batching` is the run config's
# run_settings(): every run setting that changes the work (mode, bounds, device, and any added later) belongs there.
# What changes under test (library versions, the project's commit: the rest of the fingerprint) is recorded with
# each run and left out, so that an upgrade shows as a change point within its series. Each name is a column of
# `runs` (and a field of RunRecord), so that compare can tell which of them two runs differ in.
COMPARISON = (
    "benchmark", "model", "profile", "dataset", "batching", "weights_identity", "machine_id", "torch_threads", "runner",
    "runner_options",
)

RUN_COLUMNS = (
    "run_id, benchmark, model, profile, runner, runner_options, batching, dataset_size, weights_source, "
    "weights_sha256, weights_identity, fingerprint, fingerprint_id, machine_id, machine_label, torch_threads, "
    "dagster_run_id, dataset, comparison_key, started_at, status, pid, host, process_started_at"
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
        f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
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
            run.weights_identity,
            json.dumps(run.fingerprint),
            run.fingerprint_id,
            run.machine_id,
            run.machine_label,
            run.torch_threads,
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


def record_sweep(conn: duckdb.DuckDBPyConnection, sweep: dict, points: list[tuple[int | None, Path]]) -> None:
    """One batch-size sweep (bench_assets/analysis/batch_sweep.py) and the batches of each of its points, read from
    each point's run directory, in one transaction. A point's `fixed_batch_size` None is the benchmark's adaptive
    batching. The batch_sweep mart derives each point's figures."""
    create_schema(conn)
    columns = OUTPUT_COLUMNS["batches"]
    names = ", ".join(checked_name(column) for column in columns)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            "INSERT INTO sweeps (sweep_id, benchmark, model, profile, fingerprint_id, items, latency_budget_ms, "
            "swept_at) VALUES ($sweep_id, $benchmark, $model, $profile, $fingerprint_id, $items, "
            "$latency_budget_ms, $swept_at)",
            sweep,
        )
        for fixed_batch_size, run_dir in points:
            files = sorted(str(p) for p in run_dir.glob("batches-*.jsonl"))
            if files:
                conn.execute(
                    f"INSERT INTO sweep_batches (sweep_id, fixed_batch_size, {names}) SELECT ?, ?, {names} "
                    "FROM read_json(?, format = 'newline_delimited', columns = ?)",
                    [sweep["sweep_id"], fixed_batch_size, files, columns],
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def start_tuning(conn: duckdb.DuckDBPyConnection, tuning: dict) -> None:
    """One tuning of a model (bench_assets/analysis/tuning.py): its sample size and time budget. Its trials are
    runs like any other, listed in `trials`; the tuning_trials and tuned_configuration marts derive its
    figures."""
    create_schema(conn)
    conn.execute(
        "INSERT INTO tunings (tuning_id, benchmark, model, profile, sample_items, budget_seconds, dagster_run_id, "
        "started_at) VALUES ($tuning_id, $benchmark, $model, $profile, $sample_items, $budget_seconds, "
        "$dagster_run_id, $started_at)",
        tuning,
    )


def record_trial(
    conn: duckdb.DuckDBPyConnection, tuning_id: str, trial: int, phase: str, changes: dict, run_id: str | None,
    outcome: str, reason: str | None,
) -> None:
    """A tuning's trial (a row of `trials`): the run config fields it changes from Beam's default, and its run (None: it did not run,
    `reason` says why)."""
    conn.execute(
        "INSERT INTO trials VALUES (?, ?, ?, ?, ?, ?, ?)",
        [tuning_id, trial, phase, json.dumps(changes, sort_keys=True), run_id, outcome, reason],
    )


def finish_tuning(conn: duckdb.DuckDBPyConnection, tuning_id: str) -> None:
    conn.execute("UPDATE tunings SET ended_at = ? WHERE tuning_id = ?", [now(), tuning_id])


def fail_run(conn: duckdb.DuckDBPyConnection, run_id: str, error: str) -> None:
    conn.execute(
        "UPDATE runs SET status = 'failed', ended_at = ?, error = ? WHERE run_id = ?", [now(), error, run_id]
    )
