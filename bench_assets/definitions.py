"""The code location: Dagster loads `bench_assets/defs/`, one module per concern, each exposing `@dg.definitions`."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
