"""`python -m bench_assets.cli.compare RUN_A RUN_B`: is run B faster than run A, and is the difference real?

    python -m bench_assets.cli.compare RUN_A RUN_B [--database PATH] [--resamples 2000] [--seed 0]

RUN_A and RUN_B may each be a comma-separated set of repeated runs (`make bench REPEATS=5`). The verdict on runs
sets the change against the run-to-run spread (from the sets and their series' other runs, in run_summary);
the table below it bootstraps the batches of the first run of each set.

See bench_assets/analysis/compare.py for how the verdict is reached.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb

from bench_assets.analysis.compare import (
    CONFIDENCE,
    FEW_BATCHES,
    CompareError,
    compare_loaded,
    describe_run,
    describe_runs_verdict,
    format_table,
    judge_runs_in_marts,
    load_run,
    series_line,
)
from bench_assets.cli.console_logging import configure_logging
from bench_assets.store.connection import connect_waiting, default_duckdb_path, default_lock_timeout_s


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = argparse.ArgumentParser(prog="python -m bench_assets.cli.compare", description=__doc__.splitlines()[0])
    parser.add_argument("run_a", metavar="RUN_A", help="the baseline run's run_id, or a comma-separated set of them")
    parser.add_argument("run_b", metavar="RUN_B", help="the run (or comma-separated runs) compared with it")
    parser.add_argument("--database", default=default_duckdb_path(), help="DuckDB results file")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error("--resamples must be at least 1")

    try:
        if not Path(args.database).exists():
            raise CompareError(f"results file {args.database} does not exist")
        runs_a, runs_b = args.run_a.split(","), args.run_b.split(",")
        with connect_waiting(args.database, default_lock_timeout_s(), read_only=True) as conn:
            a, b = load_run(conn, runs_a[0]), load_run(conn, runs_b[0])
            try:
                run_to_run = describe_runs_verdict(judge_runs_in_marts(conn, runs_a, runs_b))
            except duckdb.CatalogException:
                run_to_run = ("Run to run: this file has no run_summary yet "
                              "(build the warehouse: make bench, or the warehouse job).")
    except (CompareError, duckdb.CatalogException) as error:
        print(f"compare: error: {error}", file=sys.stderr)
        return 2
    comparisons = compare_loaded(a, b, args.resamples, args.seed)

    print(describe_run("A", a))
    print(describe_run("B", b))
    print(series_line(a, b))
    print(run_to_run)
    few = [f"{letter} has {len(run.latencies_ms)}" for letter, run in (("A", a), ("B", b))
           if len(run.latencies_ms) < FEW_BATCHES]
    if few:
        print(f"note: {' and '.join(few)} batches: the intervals are rough, p99's most (about the slowest batch).")
    print()
    print("\n".join(format_table(comparisons)))
    print(f"\nWithin one run (the first of each set). Change: (B - A) / A. CI: bootstrap over each run's batches, "
          f"{args.resamples:,} resamples, seed "
          f"{args.seed}; a verdict needs the interval to exclude 0.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
