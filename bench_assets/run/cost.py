"""What a run would cost, priced as Beam's cost benchmarks price a Dataflow job.

Beam's newer benchmarks (`apache_beam/testing/load_tests/dataflow_cost_benchmark.py`) multiply a job's vCPU
hours, memory GB-hours and GPU hours by Dataflow's batch prices (`dataflow_cost_consts.py`, read here from the
installed wheel). A run here is priced the same way from its own wall time, the cores its work ran on, its peak
resident memory and its GPU, if any: an estimate of what the same work costs on rented machines of that shape,
not a bill. The prices are settings (BenchmarkSettings), Beam's by default.
"""

from __future__ import annotations

import re

from apache_beam.testing.load_tests import dataflow_cost_consts as beam_prices

SECONDS_PER_HOUR = 3600.0
BYTES_PER_GB = 1e9  # Dataflow prices memory per GB

# The vendor's prefix torch puts before a GPU's model ("NVIDIA L4", "Tesla T4", "NVIDIA A100-SXM4-80GB").
GPU_VENDOR_PREFIXES = ("NVIDIA ", "Tesla ")


def beam_accelerator(gpu_name: str) -> beam_prices.Accelerator | None:
    """Beam's accelerator for a GPU name as torch reports it, by its exact model: the first word after the vendor
    (an L40S is not an L4, nor a P40 a P4); an A100 is the 80 GB one when its name says 80GB."""
    name = gpu_name.strip()
    for prefix in GPU_VENDOR_PREFIXES:
        name = name.removeprefix(prefix)
    words = re.split(r"[-\s]+", name.upper())
    model = words[0]
    if model == "A100":
        model = "A100_80GB" if "80GB" in words else "A100_40GB"
    return beam_prices.Accelerator.__members__.get(model)


def beam_gpu_price(gpu_name: str | None) -> float | None:
    """Beam's hourly price of a GPU by its exact model; None for a GPU Beam does not price (an H200, an L40S)."""
    accelerator = beam_accelerator(gpu_name) if gpu_name else None
    return None if accelerator is None else beam_prices.ACCELERATOR_TO_COST[accelerator]


def estimated_cost_usd(
    wall_seconds: float,
    cores: int,
    peak_rss_bytes: float,
    vcpu_usd_per_hour: float,
    memory_usd_per_gb_hour: float,
    gpu_usd_per_hour: float = 0.0,
) -> float:
    hours = wall_seconds / SECONDS_PER_HOUR
    return hours * (cores * vcpu_usd_per_hour + peak_rss_bytes / BYTES_PER_GB * memory_usd_per_gb_hour + gpu_usd_per_hour)
