"""Hand-made benchmark runs, written with the platform's own writer (bench_assets.store.runs) into a DuckDB file."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from bench_assets.machine.fingerprint import fingerprint_id
from bench_assets.store import runs as results
from bench_assets.defs.warehouse import dbt_resource, warehouse_dbt_assets
from bench_assets.defs.regression_checks import regression_checks
from bench_assets.defs.report import REPORT_PATH, benchmark_report
from bench_assets.settings import BenchmarkSettings

FIRST_DAY = datetime(2026, 11, 1, 3, 50, tzinfo=timezone.utc)
MACHINE = {
    "architecture": "x86_64", "cpu_vendor": "GenuineIntel", "cpu_family": "6", "cpu_model_number": "167",
    "cpu_stepping": "1", "cpu_model": "Test CPU", "instruction_sets": ["avx2", "fma", "avx512f", "avx512_bf16"],
    "torch_cpu_capability": "AVX512", "logical_cores": 2, "memory_gib": 24, "gpu": None,
}
FINGERPRINT = {
    "machine": MACHINE, "cpu_model": "Test CPU", "usable_cores": 2, "torch_threads": 2, "gpu": None,
    "packages": {"torch": "2.14.1", "apache-beam": "2.77.0"}, "commit": "a1b2c3d4e5f6",
}


def fingerprint_with(packages: dict | None = None, machine: dict | None = None, **fields) -> dict:
    """FINGERPRINT with some package versions, machine fields or top-level fields changed."""
    return {
        **FINGERPRINT,
        "machine": {**MACHINE, **(machine or {})},
        "packages": {**FINGERPRINT["packages"], **(packages or {})},
        **fields,
    }


@dataclass
class HandMadeRun:
    """A run's batches as (batch size, latency in ms); every batched item becomes a prediction."""

    model: str
    batches: list[tuple[int, float]]
    beam_metrics: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 10.0
    peak_rss_bytes: float = 512 * 2**20
    failures: int = 0
    profile: str = "smoke"
    benchmark: str = "image_classification"
    fingerprint: dict = field(default_factory=lambda: FINGERPRINT)
    status: str = "finished"
    batching: dict = field(default_factory=lambda: {"min_batch_size": 1, "max_batch_size": 8, "device": "CPU"})
    weights_sha256: str = "0" * 64
    dataset: dict = field(default_factory=lambda: {"name": "openimage_sample", "seed": 2026, "sha256": "d" * 64})
    lost: int = 0  # input lines that ended as neither a prediction nor a failure
    expected_label: str | None = None  # every prediction's; predictions say "tench"
    # Per batched item, in order, (class index, score) instead of "tench" (index 0) at 0.5.
    predicted: list[tuple[int, float]] | None = None
    weights_source: str = "seeded_random"
    failure_stage: str = "decode"  # the stage every failure is recorded at
    harness_metrics: dict[str, float] = field(default_factory=dict)  # beside the wall time and peak memory
    dagster_run_id: str | None = None
    # Recorded as before machines were identified: no machine part, commit or machine columns; the old key.
    legacy_key: str | None = None


def write_runs(database: Path, runs: list[HandMadeRun], work_dir: Path) -> list[str]:
    """Writes the runs one day apart, in order, and returns their run ids."""
    run_ids = []
    with duckdb.connect(str(database)) as conn:
        for day, run in enumerate(runs):
            run_id = uuid.uuid4().hex
            items = sum(size for size, _ in run.batches)
            results.start_run(
                conn,
                results.RunRecord(
                    run_id=run_id,
                    benchmark=run.benchmark,
                    model=run.model,
                    profile=run.profile,
                    runner="direct",
                    runner_options={},
                    batching=run.batching,
                    dataset_size=items + run.failures + run.lost,
                    weights_source=run.weights_source,
                    weights_sha256=run.weights_sha256,
                    fingerprint=run.fingerprint,
                    fingerprint_id=fingerprint_id(run.fingerprint),
                    dagster_run_id=run.dagster_run_id,
                    dataset=run.dataset,
                ),
            )
            if run.status == "finished":
                run_dir = work_dir / run_id
                write_outputs(run_dir, run)
                metric_rows = [
                    {"namespace": "BeamML_PyTorch", "metric": name, "value": value, "unit": ""}
                    for name, value in run.beam_metrics.items()
                ] + [
                    {"namespace": "harness", "metric": "pipeline_wall_seconds", "value": run.wall_seconds, "unit": "s"},
                    {"namespace": "harness", "metric": "peak_rss_bytes", "value": run.peak_rss_bytes, "unit": "bytes"},
                ] + [
                    {"namespace": "harness", "metric": name, "value": value, "unit": ""}
                    for name, value in run.harness_metrics.items()
                ]
                results.finish_run(conn, run_id, run_dir, metric_rows)
            else:
                results.fail_run(conn, run_id, "RuntimeError: hand-made failure")
            conn.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", [FIRST_DAY + timedelta(days=day), run_id])
            if run.legacy_key:
                old_fingerprint = {k: v for k, v in run.fingerprint.items() if k not in ("machine", "commit")}
                conn.execute(
                    "UPDATE runs SET machine_id = NULL, machine_label = NULL, torch_threads = NULL, "
                    "comparison_key = ?, fingerprint = ? WHERE run_id = ?",
                    [run.legacy_key, json.dumps(old_fingerprint), run_id],
                )
            run_ids.append(run_id)
    return run_ids


def write_outputs(run_dir: Path, run: HandMadeRun) -> None:
    run_dir.mkdir(parents=True)
    batches, predictions = [], []
    for number, (size, latency_ms) in enumerate(run.batches):
        batch_id = f"{run_dir.name}-b{number}"
        batches.append(
            {"batch_id": batch_id, "batch_size": size, "latency_us": latency_ms * 1000, "started_at": 1.7e9 + number}
        )
        for i in range(size):
            index, score = run.predicted[len(predictions)] if run.predicted else (0, 0.5)
            predictions.append(
                {"line": len(predictions), "item_id": f"item-{len(predictions)}", "predicted_index": index,
                 "predicted_label": "tench" if index == 0 else f"class {index}", "score": score,
                 "expected_label": run.expected_label, "batch_id": batch_id}
            )
    failures = [
        {"line": len(predictions) + i, "item_id": f"failed-{i}", "stage": run.failure_stage, "reason": "OSError: truncated"}
        for i in range(run.failures)
    ]
    for name, rows in (("batches", batches), ("predictions", predictions), ("failures", failures)):
        (run_dir / f"{name}-00000-of-00001.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


@dataclass
class BuiltMetrics:
    """A history written, then every metrics asset and check materialized over it, as after a nightly run."""

    run_ids: list[str]
    result: dg.ExecuteInProcessResult
    database: Path
    report: Path

    def query(self, sql: str, params=None) -> list[tuple]:
        with duckdb.connect(str(self.database), read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()

    def ids_by_model(self, histories: dict[str, list[HandMadeRun]]) -> dict[str, list[str]]:
        """The run ids of each model's history, for a build over the histories one after another."""
        ids, start = {}, 0
        for model, history in histories.items():
            ids[model] = self.run_ids[start:start + len(history)]
            start += len(history)
        return ids


def build_metrics(root: Path, runs: list[HandMadeRun], dbt_tests: bool | tuple[str, ...] = False) -> BuiltMetrics:
    database = root / "bench.duckdb"
    run_ids = write_runs(database, runs, root / "runs")
    return build_warehouse(root, database, run_ids, dbt_tests)


def build_warehouse(
    root: Path, database: Path, run_ids: list[str], dbt_tests: bool | tuple[str, ...] = False
) -> BuiltMetrics:
    """Every metrics asset and regression check materialized over the runs already in `database`, with all of dbt's
    data tests (True), those named, or none: the 146 tests take two thirds of a build's dbt time, and
    test_metrics_marts runs them all over its history."""
    selection = dg.AssetSelection.all()
    if dbt_tests is not True:
        selection = selection.without_checks() | dg.AssetSelection.checks(*regression_checks) | dg.AssetSelection.checks(
            *(key for key in warehouse_dbt_assets.check_keys if key.name in (dbt_tests or ()))
        )
    settings = BenchmarkSettings(profile="smoke", data_dir=str(root / "data"))
    result = dg.materialize(
        [warehouse_dbt_assets, benchmark_report, *regression_checks], selection=selection,
        resources={"duckdb": DuckDBResource(database=str(database)), "dbt": dbt_resource(), "settings": settings},
    )
    return BuiltMetrics(run_ids, result, database, settings.root / REPORT_PATH)
