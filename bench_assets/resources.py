"""Run-wide settings: where data lives, which profile runs, and the DuckDB file results go to."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import psutil
from apache_beam.testing.load_tests import dataflow_cost_consts as beam_prices
from pydantic import Field
from dagster_duckdb import DuckDBResource

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT / "data"


@dataclass(frozen=True)
class Profile:
    images: int
    sentences: int


# `smoke` checks a set-up in seconds (an odd size, so batches come out uneven); `quick` finishes every
# partition within minutes on a 2-core laptop; `full` is the seed benchmark's size.
PROFILES = {
    "smoke": Profile(images=23, sentences=23),
    "quick": Profile(images=300, sentences=300),
    "full": Profile(images=50_000, sentences=50_000),
}


def default_data_dir() -> str:
    return os.environ.get("BENCH_DATA_DIR", str(DEFAULT_DATA_DIR))


def default_duckdb_path() -> str:
    return os.environ.get("BENCH_DUCKDB_PATH", str(Path(default_data_dir()) / "benchmarks.duckdb"))


def default_lock_timeout_s() -> float:
    return float(os.environ.get("BENCH_DUCKDB_LOCK_TIMEOUT_S", "60"))


def existing_path(setting: str, value: str | None) -> Path | None:
    """A configured path, which must exist: a wrong path is an error, never a silent fallback."""
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"{setting}: configured path {path} does not exist")
    return path


class BenchmarkSettings(dg.ConfigurableResource):
    """Settings every benchmark asset shares, editable per run in the launchpad."""

    profile: str = Field(
        default="quick",
        description=f"Dataset size: one of {sorted(PROFILES)} (smoke: 23 items, quick: 300, full: 50,000).",
    )
    data_dir: str = Field(
        default_factory=default_data_dir,
        description="Home of generated datasets, model weights and per-run outputs.",
    )
    seed: int = Field(default=2026, description="Seed of the generated datasets and random weights.")
    openimages_source: str | None = Field(
        default=None,
        description="A folder of real OpenImages JPEGs, or a text file listing them; sampled instead of generating.",
    )
    weights_dir: str | None = Field(
        default=None,
        description="A folder of pretrained state dicts named <model>.pth, used when a model's file is present.",
    )
    # What a run would cost (bench_assets/cost.py): Beam's Dataflow batch prices by default.
    vcpu_usd_per_hour: float = Field(default=beam_prices.VCPU_PER_HR_BATCH, description="Price of a vCPU hour.")
    memory_usd_per_gb_hour: float = Field(
        default=beam_prices.MEM_PER_GB_HR_BATCH, description="Price of a GB-hour of memory."
    )
    gpu_usd_per_hour: float | None = Field(
        default=None,
        description="Price of a GPU hour; by default Beam's price of the run's GPU (T4, L4, P4, P100, V100, A100).",
    )

    def selected_profile(self) -> Profile:
        if self.profile not in PROFILES:
            raise ValueError(f"profile {self.profile!r} is unknown; accepted values: {sorted(PROFILES)}")
        return PROFILES[self.profile]

    @property
    def root(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def dataset_dir(self, dataset: str) -> Path:
        return self.root / "datasets" / dataset / f"{self.profile}-seed{self.seed}"

    def weights_path(self, model: str) -> Path:
        return self.root / "models" / f"{model}.pt"

    def configured_weights(self, model: str) -> Path | None:
        folder = existing_path("weights_dir", self.weights_dir)
        if folder is None:
            return None
        candidate = folder / f"{model}.pth"
        return candidate if candidate.is_file() else None

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def image_roots(self) -> list[Path]:
        """The folders a run may read images from: the data folder, and the configured image source's folder."""
        roots = [self.root]
        source = existing_path("openimages_source", self.openimages_source)
        if source is not None:
            roots.append(source if source.is_dir() else source.parent)
        return roots


class DatabaseLockedError(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than the configured wait."""


def lock_holder(error: BaseException) -> str:
    """Who holds a DuckDB file, from DuckDB's lock error (it names the program and PID) and the process table."""
    message = str(error)
    match = re.search(r"Conflicting lock is held in (.*?) \(PID (\d+)\)", message)
    if match is None:
        return "another process"
    program, pid = match.group(1), int(match.group(2))
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        command = ""
    described = f"process {pid} ({program})"
    if command:
        described += f", command line: {command[:300]}"
    return described


def connect_waiting(database: str, timeout_s: float, read_only: bool = False, config: dict | None = None):
    """Connects to a DuckDB file, waiting up to `timeout_s` while another process holds its lock.

    DuckDB lets one process write a file at a time (a user's SQL session, a concurrent run): this waits with
    growing pauses, then fails naming the holder. Other errors (a corrupt file, no permission) fail at once.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.05
    while True:
        try:
            return duckdb.connect(database, read_only=read_only, config=config or {})
        except duckdb.IOException as error:
            if "could not set lock" not in str(error).lower():
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseLockedError(
                    f"DuckDB file {database} is locked by {lock_holder(error)}; waited {timeout_s:g} s "
                    "(the duckdb resource's lock_timeout_s, or BENCH_DUCKDB_LOCK_TIMEOUT_S). Close that session "
                    f"or wait for that run, then retry. DuckDB said: {error}"
                ) from error
            time.sleep(min(pause, left))
            pause = min(pause * 2, 2.0)


class BenchDuckDBResource(DuckDBResource):
    """DuckDBResource that waits a bounded, configurable time for a file another process holds, then fails clearly."""

    lock_timeout_s: float = Field(
        default_factory=default_lock_timeout_s,
        description="Seconds to wait while another process (a SQL session, a concurrent run) holds the DuckDB file.",
    )

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = connect_waiting(
            self.database, self.lock_timeout_s, config={"custom_user_agent": "dagster", **self.connection_config}
        )
        try:
            yield conn
        finally:
            conn.close()


def duckdb_resource() -> DuckDBResource:
    return BenchDuckDBResource(database=default_duckdb_path())
