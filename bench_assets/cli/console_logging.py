"""Console logging of the command-line entry points (`make bench`, `python -m bench_assets.cli.compare`): one
handler on the root logger, set before any library logs. Import this module and call configure_logging() before
importing anything that imports Beam."""

import logging


def show_on_root(record: logging.LogRecord) -> bool:
    """Whether the root logger's handler prints a record.

    Not `dagster.builtin`'s: Dagster relays those (dbt's output among them) through its own console logger,
    so printing them here too showed each line twice. Not Beam's "apitools not found" warning either: it is
    logged on import and only says that Beam's BigQuery client, which no benchmark uses, is not installed.
    """
    if record.name == "dagster.builtin" or record.name.startswith("dagster.builtin."):
        return False
    return not (record.name == "root" and record.getMessage().startswith("apitools not found"))


def configure_logging() -> None:
    """Gives the root logger a handler before any library logs.

    Beam logs its apitools warning with `logging.warning()` at import time, which, on a root logger without a
    handler, calls `logging.basicConfig()`: from then on every record that propagates to the root, Dagster's
    included, was printed a second time as `LEVEL:name:message`.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(logging.BASIC_FORMAT))
    handler.addFilter(show_on_root)
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
