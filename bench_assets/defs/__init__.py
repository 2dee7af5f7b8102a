"""The code location's definitions, one module per concern, each exposing `@dg.definitions`; Dagster loads the
folder (`bench_assets/definitions.py`)."""
