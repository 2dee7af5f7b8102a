"""The dbt marts (dbt_metrics/) as Python reads them: where the project is, its one list of headline metrics, and
the live marts a run, a sweep or a tuning reads right after its rows land.

`run_summary`, `batch_sweep`, `configuration_agreement` (the accuracy guard) and the tuning marts are views: DuckDB
derives their figures from the raw rows whenever they are read, so an asset's metadata shows the marts' own
figures without a dbt build per run, and a tuning judges each trial as the marts do. A file that has no such views
yet (a new one), or has them from other definitions than the project's current ones (the dbt project changed
since), gets them from one `dbt run` of those views and their staging. Each view carries, as its comment, the digest of
the definitions it was made from (a dbt post-hook, also in the warehouse job's `dbt build`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource

from bench_assets.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_metrics"
# The dbt beside this Python: `make` runs the virtual environment's programs without activating it.
DBT_EXECUTABLE = shutil.which("dbt", path=str(Path(sys.executable).parent)) or "dbt"
LIVE_MARTS = ("run_summary", "batch_sweep", "configuration_agreement", "tuning_trials", "tuned_configuration")
DEFINITION_SUFFIXES = (".sql", ".py", ".yml", ".csv")


@dataclass(frozen=True)
class HeadlineMetric:
    metric: str
    label: str
    unit: str
    better: str


def headline_metrics() -> list[HeadlineMetric]:
    """The metrics the dbt seed `headline_metrics` lists (run_summary columns), in its order: the ones charted,
    searched for regressions and shown on a run's asset page."""
    with (DBT_PROJECT_DIR / "seeds" / "headline_metrics.csv").open(encoding="utf-8", newline="") as f:
        return [HeadlineMetric(**row) for row in csv.DictReader(f)]


def definitions_digest() -> str:
    """A digest of the dbt project's definitions (models, macros, seeds, project file): views made from other
    definitions are stale."""
    files = sorted(
        path for folder in ("models", "macros", "seeds") for path in (DBT_PROJECT_DIR / folder).rglob("*")
        if path.suffix in DEFINITION_SUFFIXES  # not the bytecode a test's import of a Python model leaves
    ) + [DBT_PROJECT_DIR / "dbt_project.yml"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(DBT_PROJECT_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_live_marts(database: DuckDBResource) -> list[str]:
    """Creates the live marts where the file lacks them, or has them from other definitions than the project's
    current ones; returns the names it (re)created."""
    with database.get_connection() as conn:
        made_from = dict(conn.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
    digest = definitions_digest()
    stale = [name for name in LIVE_MARTS if made_from.get(name, "") != digest]
    if stale:
        create_live_marts(database.database)
    return stale


def dbt_vars(duckdb_path: str) -> dict:
    """What every dbt invocation of the platform passes: the file it writes, and the digest the live marts keep."""
    return {"duckdb_path": duckdb_path, "definitions_digest": definitions_digest()}


def create_live_marts(database: str) -> None:
    """Creates the live marts and the staging views they read, with dbt, in a DuckDB file no connection holds."""
    run_models(database, LIVE_MARTS)


def run_models(database: str, models: tuple[str, ...]) -> None:
    """Builds `models` and what they read (`dbt run`) in the DuckDB file `database`, which no connection holds."""
    path = str(Path(database).expanduser().resolve())
    # dbt's artifacts go to a folder of this invocation's own, as dagster-dbt's do: in the project's target/ they
    # would overwrite the manifest.json that the code location reads at import, under another process reading it.
    with tempfile.TemporaryDirectory(prefix="dbt-run-") as target:
        command = [
            DBT_EXECUTABLE, "run", "--quiet", "--select", *(f"+{name}" for name in models),
            "--vars", json.dumps(dbt_vars(path)), "--target-path", target,
            "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
        ]
        done = subprocess.run(command, cwd=DBT_PROJECT_DIR, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dbt could not build {', '.join(models)} in {path}:\n{done.stdout}{done.stderr}")


def fetch_rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    table = conn.execute(sql, params or [])
    columns = [d[0] for d in table.description]
    return [dict(zip(columns, row)) for row in table.fetchall()]
