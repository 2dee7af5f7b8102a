"""Run-wide settings: where data lives, which profile runs, and the DuckDB file results go to."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

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


def beam_prices():
    """Beam's Dataflow price list (imported when a price is needed: importing Beam logs and takes seconds)."""
    from apache_beam.testing.load_tests import dataflow_cost_consts

    return dataflow_cost_consts


def default_data_dir() -> str:
    return os.environ.get("BENCH_DATA_DIR", str(DEFAULT_DATA_DIR))


def existing_path(setting: str, value: str | None) -> Path | None:
    """A configured path, which must exist: a wrong path is an error, never a silent fallback."""
    if not value:
        return None
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"{setting}: configured path {path} does not exist")
    return path


# The `openimages_source` that names no path: the generated set with some photos at several megapixels.
LARGE_IMAGES = "large"


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
        description=(
            "A folder of real OpenImages JPEGs, or a text file listing them; sampled instead of generating. "
            f"'{LARGE_IMAGES}': generated as by default, half the photos at 3 to 12 megapixels as OpenImages originals."
        ),
    )
    weights_dir: str | None = Field(
        default=None,
        description="A folder of pretrained state dicts named <model>.pth, used when a model's file is present.",
    )
    # What a run would cost (bench_assets/run/cost.py): Beam's Dataflow batch prices by default.
    vcpu_usd_per_hour: float = Field(default_factory=lambda: beam_prices().VCPU_PER_HR_BATCH, description="Price of a vCPU hour.")
    memory_usd_per_gb_hour: float = Field(
        default_factory=lambda: beam_prices().MEM_PER_GB_HR_BATCH, description="Price of a GB-hour of memory."
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

    def image_source(self) -> Path | None:
        """The configured folder or list of images to sample; None when the set is generated (large or not)."""
        if self.openimages_source == LARGE_IMAGES:
            return None
        return existing_path("openimages_source", self.openimages_source)

    def image_roots(self) -> list[Path]:
        """The folders a run may read images from: the data folder, and the configured image source's folder."""
        roots = [self.root]
        source = self.image_source()
        if source is not None:
            roots.append(source if source.is_dir() else source.parent)
        return roots
