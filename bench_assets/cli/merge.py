"""`python -m bench_assets.cli.merge OTHER.duckdb [--into PATH]`: merge another machine's results into this file.

Each run of OTHER that this file lacks (by run_id) is copied with all its rows, each sweep by sweep_id and each
tuning by tuning_id; merging twice adds nothing. Row counts per table are printed before and after. The warehouse
(`make bench`, or the warehouse job) then shows each model across machines: the `machine_comparison` mart and the
report.
See bench_assets/store/merge.py.
"""

from __future__ import annotations

import argparse
import sys

import duckdb

from bench_assets.store.connection import connect_waiting, default_duckdb_path, default_lock_timeout_s
from bench_assets.store.merge import MergeError, merge_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench_assets.cli.merge", description=__doc__.splitlines()[0])
    parser.add_argument("other", metavar="OTHER", help="the other machine's DuckDB results file (read only)")
    parser.add_argument("--into", default=default_duckdb_path(), help="the results file merged into")
    args = parser.parse_args(argv)
    try:
        with connect_waiting(args.into, default_lock_timeout_s()) as conn:
            before, after = merge_results(conn, args.other)
    except (MergeError, duckdb.Error) as error:
        print(f"merge: error: {error}", file=sys.stderr)
        return 2
    width = max(len(table) for table in before)
    print(f"merged {args.other} into {args.into}")
    print(f"{'table'.ljust(width)}  {'before':>10}  {'after':>10}  {'added':>10}")
    for table in before:
        print(f"{table.ljust(width)}  {before[table]:>10,}  {after[table]:>10,}  {after[table] - before[table]:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
