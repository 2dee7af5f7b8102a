"""What a run would cost, priced as Beam's cost benchmarks price a Dataflow job.

Beam's newer benchmarks (`apache_beam/testing/load_tests/dataflow_cost_benchmark.py`) multiply a job's vCPU
hours, memory GB-hours and GPU hours by Dataflow's batch prices (`dataflow_cost_consts.py`, read here from the
installed wheel). A run here is priced the same way from its own wall time, the cores it could use, its peak
resident memory and its GPU, if any: an estimate of what the same work costs on rented machines of that shape,
not a bill. The prices are settings (BenchmarkSettings), Beam's by default.
"""

from __future__ import annotations

from apache_beam.testing.load_tests import dataflow_cost_consts as beam_prices

SECONDS_PER_HOUR = 3600.0
BYTES_PER_GB = 1e9  # Dataflow prices memory per GB

# Beam's GPU prices by the accelerator's name as torch reports it (first match wins: A100 80GB before A100).
GPU_USD_PER_HOUR = (
    ("A100-SXM4-80GB", beam_prices.A100_80GB_PER_GPU_PER_HOUR),
    ("A100 80GB", beam_prices.A100_80GB_PER_GPU_PER_HOUR),
    ("A100", beam_prices.A100_40GB_PER_GPU_PER_HOUR),
    ("V100", beam_prices.V100_PER_GPU_PER_HOUR),
    ("P100", beam_prices.P100_PER_GPU_PER_HOUR),
    ("T4", beam_prices.T4_PER_GPU_PER_HOUR),
    ("L4", beam_prices.L4_PER_GPU_PER_HOUR),
    ("P4", beam_prices.P4_PER_GPU_PER_HOUR),
)


def beam_gpu_price(gpu_name: str | None) -> float | None:
    """Beam's hourly price of a GPU by its name; None for a GPU Beam does not price (an H200, say)."""
    if not gpu_name:
        return None
    return next((price for name, price in GPU_USD_PER_HOUR if name in gpu_name), None)


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
