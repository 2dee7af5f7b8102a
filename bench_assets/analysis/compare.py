"""Is run B faster than run A, and is the difference real? (`python -m bench_assets.cli.compare RUN_A RUN_B`)

Each headline figure is computed from the runs' per-batch records (throughput: batched items over summed batch
latency, which is run_summary's figure for a run on one process, where batches never overlap, and one worker's
rate for parallel workers, as resampling batches needs; p50/p99: interpolated batch-latency percentiles, as
DuckDB's quantile_cont; mean item latency: summed batch latency over batched items). Beam's own benchmarks
(apache_beam/testing/benchmarks/inference/) report one number per run and leave the comparison to the
dashboards; here a single pair of runs gets an answer: a bootstrap over each run's batches (resampled with
replacement, independently per run) gives a 95% percentile interval of the relative change, and only an
interval that excludes 0 is called faster or slower.

That interval is about the batches inside each run, and whole runs vary more than that: three quick runs of
efficientnet_lite0 in one configuration, nothing else running, gave 41.0, 28.6 and 39.0 items/s. So verdicts on
runs (`judge_runs`: a run against the previous one of its series, or a set of repeated runs against another)
set the change against the run-to-run spread: a t interval on log throughput, with the spread pooled from each
set of like runs (the series' own history where there is one); too few runs to estimate it says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
from scipy import stats

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


# Run-to-run verdicts: a 99% interval, so that among repeated runs of one configuration far fewer than 1 pairwise
# comparison in 20 is called faster or slower (on simulated histories: bench_assets_tests/test_compare.py).
RUNS_CONFIDENCE = 0.99
# The run-to-run spread needs at least this many degrees of freedom (three like runs) to be estimated at all.
MIN_SPREAD_DF = 2


@dataclass(frozen=True)
class RunsVerdict:
    """Set B of runs against set A on one per-run figure (geometric means), judged against run-to-run noise."""

    runs_a: int
    runs_b: int
    spread_df: int  # degrees of freedom of the run-to-run spread: like runs, less one per set
    value_a: float
    value_b: float
    change_pct: float
    ci_low_pct: float | None  # None: too few runs to estimate the spread
    ci_high_pct: float | None
    better: str

    @property
    def verdict(self) -> str:
        if self.ci_low_pct is None:
            return "too few runs to tell"
        if self.ci_low_pct <= 0 <= self.ci_high_pct:
            return "no clear change"
        went_up = self.ci_low_pct > 0
        return "faster" if went_up == (self.better == "higher") else "slower"


def judge_runs(values_a: Sequence[float], values_b: Sequence[float], better: str = "higher",
               like_runs: Sequence[Sequence[float]] = ()) -> RunsVerdict:
    """B's runs against A's on a per-run figure (run_summary's inference_items_per_second, say). The run-to-run
    spread is pooled from A, B and each set of `like_runs` (runs of one series that measure the same thing: its
    history), on log values, so the interval is of the relative change."""
    log_a, log_b = np.log(np.asarray(values_a, float)), np.log(np.asarray(values_b, float))
    groups = [np.log(np.asarray(g, float)) for g in (values_a, values_b, *like_runs) if len(g) >= 2]
    df = sum(len(g) - 1 for g in groups)
    difference = float(log_b.mean() - log_a.mean())
    low = high = None
    if df >= MIN_SPREAD_DF:
        spread = np.sqrt(sum(float(((g - g.mean()) ** 2).sum()) for g in groups) / df)
        half_width = stats.t.ppf(1 - (1 - RUNS_CONFIDENCE) / 2, df) * spread * np.sqrt(1 / len(log_a) + 1 / len(log_b))
        low, high = (100 * float(np.expm1(difference + sign * half_width)) for sign in (-1, 1))
    return RunsVerdict(
        runs_a=len(log_a), runs_b=len(log_b), spread_df=df, value_a=float(np.exp(log_a.mean())),
        value_b=float(np.exp(log_b.mean())), change_pct=100 * float(np.expm1(difference)), ci_low_pct=low,
        ci_high_pct=high, better=better,
    )


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


def judge_runs_in_marts(conn: duckdb.DuckDBPyConnection, runs_a: Sequence[str], runs_b: Sequence[str]) -> RunsVerdict:
    """Runs B against runs A on run_summary's inference throughput (busy time), the run-to-run spread pooled from
    the two sets and, where all of them belong to one series, from that series' other complete runs."""
    wanted = [*runs_a, *runs_b]
    rows = dict(
        (run_id, (value, key)) for run_id, value, key in conn.execute(
            "SELECT run_id, inference_items_per_second, comparison_key FROM run_summary WHERE list_contains(?, run_id)",
            [wanted],
        ).fetchall()
    )
    missing = [run_id for run_id in wanted if run_id not in rows or rows[run_id][0] is None]
    if missing:
        raise CompareError(f"no inference throughput in run_summary for run(s) {', '.join(missing)}")
    keys = {rows[run_id][1] for run_id in wanted}
    like_runs = []
    if len(keys) == 1:
        like_runs = [[value for (value,) in conn.execute(
            "SELECT inference_items_per_second FROM run_summary WHERE comparison_key = ? AND is_complete "
            "AND inference_items_per_second > 0 AND NOT list_contains(?, run_id)",
            [keys.pop(), wanted],
        ).fetchall()]]
    return judge_runs([rows[r][0] for r in runs_a], [rows[r][0] for r in runs_b], like_runs=like_runs)


def describe_runs_verdict(verdict: RunsVerdict) -> str:
    interval = (f"{RUNS_CONFIDENCE:.0%} interval [{verdict.ci_low_pct:+.1f}%, {verdict.ci_high_pct:+.1f}%]"
                if verdict.ci_low_pct is not None else "no interval: fewer than three like runs")
    return (f"Run to run (inference items/s, run_summary's busy-time figure; {verdict.runs_a} run(s) A, "
            f"{verdict.runs_b} run(s) B, spread on {verdict.spread_df} degree(s) of freedom): "
            f"{verdict.value_a:,.2f} -> {verdict.value_b:,.2f}, {verdict.change_pct:+.1f}%, {interval}: {verdict.verdict}")
