"""Is run B faster than run A, and is the difference real? (`python -m bench_assets.cli.compare RUN_A RUN_B`)

Each headline figure is computed from the runs' per-batch records (throughput: batched items over summed batch
latency, which is run_summary's figure for a run on one process, where batches never overlap, and one worker's
rate for parallel workers, as resampling batches needs; p50/p99: interpolated batch-latency percentiles, as
DuckDB's quantile_cont; mean item latency: summed batch latency over batched items). Beam's own benchmarks
(apache_beam/testing/benchmarks/inference/) report one number per run and leave the comparison to the
dashboards; here a single pair of runs gets an answer: a bootstrap over each run's batches (resampled with
replacement, independently per run) gives a 95% percentile interval of the relative change, and only an
interval that excludes 0 is called faster or slower.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from bench_assets.store.runs import COMPARISON

CONFIDENCE = 0.95
# Below this many batches a bootstrap interval is rough (and a p99 is about the slowest batch): say so.
FEW_BATCHES = 30
# Resampled values held at once, per array: bounds memory for runs of many batches.
CHUNK_VALUES = 2_000_000


class CompareError(ValueError):
    """A run that cannot be compared: missing, or with too few batches."""


@dataclass(frozen=True)
class Figure:
    name: str
    label: str
    unit: str
    better: str  # "higher" or "lower"
    # (batch sizes, batch latencies in ms), each of shape (resamples, batches) -> one value per resample.
    compute: Callable[[np.ndarray, np.ndarray], np.ndarray]


FIGURES = (
    Figure("inference_items_per_second", "Inference throughput", "items/s", "higher",
           lambda sizes, latency_ms: sizes.sum(axis=1) / (latency_ms.sum(axis=1) / 1000)),
    Figure("batch_latency_p50_ms", "Batch latency p50", "ms", "lower",
           lambda sizes, latency_ms: np.percentile(latency_ms, 50, axis=1)),
    Figure("batch_latency_p99_ms", "Batch latency p99", "ms", "lower",
           lambda sizes, latency_ms: np.percentile(latency_ms, 99, axis=1)),
    Figure("item_latency_mean_ms", "Mean item latency", "ms", "lower",
           lambda sizes, latency_ms: latency_ms.sum(axis=1) / sizes.sum(axis=1)),
)


@dataclass(frozen=True)
class Comparison:
    figure: Figure
    value_a: float
    value_b: float
    change_pct: float  # (B - A) / A
    ci_low_pct: float
    ci_high_pct: float

    @property
    def verdict(self) -> str:
        if self.ci_low_pct <= 0 <= self.ci_high_pct:
            return "no clear change"
        went_up = self.ci_low_pct > 0
        return "faster" if went_up == (self.figure.better == "higher") else "slower"


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    benchmark: str
    model: str
    profile: str
    started_at: datetime
    comparison_key: str | None
    compared: dict  # the COMPARISON fields, JSON columns parsed
    batch_sizes: np.ndarray
    latencies_ms: np.ndarray


def load_run(conn: duckdb.DuckDBPyConnection, run_id: str) -> RunInfo:
    row = conn.execute(
        f"SELECT benchmark, model, profile, started_at, status, comparison_key, {', '.join(COMPARISON)} "
        "FROM runs WHERE run_id = ?",
        [run_id],
    ).fetchone()
    if row is None:
        raise CompareError(f"run {run_id} does not exist in the runs table")
    benchmark, model, profile, started_at, status, comparison_key, *compared = row
    batches = conn.execute(
        "SELECT batch_size, latency_us / 1000.0 FROM batches WHERE run_id = ? ORDER BY started_at, batch_id",
        [run_id],
    ).fetchall()
    if len(batches) < 2:
        raise CompareError(
            f"run {run_id} ({model}, status {status}) has {len(batches)} batch(es); at least 2 are needed"
        )
    sizes, latencies = (np.array(column, dtype=float) for column in zip(*batches))
    return RunInfo(
        run_id=run_id, benchmark=benchmark, model=model, profile=profile, started_at=started_at,
        comparison_key=comparison_key,
        compared={name: parse_json(value) for name, value in zip(COMPARISON, compared)},
        batch_sizes=sizes, latencies_ms=latencies,
    )


def parse_json(value):
    """JSON columns come back as text, written without sorted keys: compare them as values."""
    if isinstance(value, str) and value[:1] in "{[":
        return json.loads(value)
    return value


def differences(a: RunInfo, b: RunInfo) -> list[str]:
    """The COMPARISON fields on which the two runs differ (empty when they form one series)."""
    return [name for name in COMPARISON if a.compared[name] != b.compared[name]]


def figure_values(sizes: np.ndarray, latencies_ms: np.ndarray) -> list[np.ndarray]:
    """Each figure (in FIGURES' order) of each row of batches."""
    return [figure.compute(sizes, latencies_ms) for figure in FIGURES]


def resampled(run: RunInfo, resamples: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Each figure over `resamples` resamples of the run's batches, drawn with replacement, in chunks."""
    n = len(run.latencies_ms)
    chunk = max(1, CHUNK_VALUES // n)
    parts = []
    for start in range(0, resamples, chunk):
        picks = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        parts.append(figure_values(run.batch_sizes[picks], run.latencies_ms[picks]))
    return [np.concatenate(values) for values in zip(*parts)]


def compare_loaded(a: RunInfo, b: RunInfo, resamples: int = 2000, seed: int | None = 0) -> list[Comparison]:
    rng = np.random.default_rng(seed)
    point_a = [v[0] for v in figure_values(a.batch_sizes[None, :], a.latencies_ms[None, :])]
    point_b = [v[0] for v in figure_values(b.batch_sizes[None, :], b.latencies_ms[None, :])]
    boot_a = resampled(a, resamples, rng)
    boot_b = resampled(b, resamples, rng)
    tail = 100 * (1 - CONFIDENCE) / 2
    comparisons = []
    for figure, value_a, value_b, sample_a, sample_b in zip(FIGURES, point_a, point_b, boot_a, boot_b):
        change = 100 * (sample_b - sample_a) / sample_a
        low, high = np.percentile(change, [tail, 100 - tail])
        comparisons.append(Comparison(
            figure=figure, value_a=float(value_a), value_b=float(value_b),
            change_pct=float(100 * (value_b - value_a) / value_a), ci_low_pct=float(low), ci_high_pct=float(high),
        ))
    return comparisons


def compare_runs(conn: duckdb.DuckDBPyConnection, run_a: str, run_b: str, resamples: int = 2000,
                 seed: int | None = 0) -> list[Comparison]:
    """B against A, per headline figure: values, change and its bootstrap interval, verdict."""
    return compare_loaded(load_run(conn, run_a), load_run(conn, run_b), resamples, seed)


def describe_run(letter: str, run: RunInfo) -> str:
    return (f"{letter}: {run.run_id}  {run.benchmark}/{run.model}, {run.profile} profile, "
            f"started {run.started_at:%Y-%m-%d %H:%M %Z}, "
            f"{len(run.latencies_ms):,} batches, {int(run.batch_sizes.sum()):,} items")


def series_line(a: RunInfo, b: RunInfo) -> str:
    if a.comparison_key is not None and a.comparison_key == b.comparison_key:
        return f"Same comparison_key ({a.comparison_key}): like for like."
    differ = differences(a, b)
    which = f"differing: {', '.join(differ)}" if differ else "the keys differ, though the compared fields agree"
    return (f"warning: the runs do not share a comparison_key ({a.comparison_key} vs {b.comparison_key}): {which}; "
            "the comparison may not be like for like.")


def format_table(comparisons: list[Comparison]) -> list[str]:
    header = ["figure", "A", "B", "change", f"{CONFIDENCE:.0%} CI", "verdict"]
    rows = [
        [f"{c.figure.label} ({c.figure.unit}, {c.figure.better} is better)", f"{c.value_a:,.2f}",
         f"{c.value_b:,.2f}", f"{c.change_pct:+.1f}%", f"[{c.ci_low_pct:+.1f}%, {c.ci_high_pct:+.1f}%]", c.verdict]
        for c in comparisons
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in [header, *rows]]
