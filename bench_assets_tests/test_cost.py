"""A run's estimated cost: Beam's Dataflow prices (or the settings' own) times its wall time, cores, peak
memory and GPU, recorded with the run and per 1,000 inferences."""

import pytest

from bench_assets.run import cost
from bench_assets.benchmarks.table_rows import BENCHMARK
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets_tests.conftest import materialize, with_settings


def test_cost_is_priced_like_beams_cost_benchmarks():
    # An hour on 2 vCPUs holding 1 GB: 2 x 0.056 + 0.003557 USD at Beam's batch prices.
    assert cost.estimated_cost_usd(3600, 2, 1e9, 0.056, 0.003557) == pytest.approx(0.115557)
    assert cost.estimated_cost_usd(1800, 4, 2e9, 0.056, 0.003557, gpu_usd_per_hour=0.42) == pytest.approx(
        0.5 * (4 * 0.056 + 2 * 0.003557 + 0.42)
    )
    assert cost.beam_gpu_price("Tesla T4") == 0.42
    assert cost.beam_gpu_price("NVIDIA A100-SXM4-80GB") == pytest.approx(4.7137)
    assert cost.beam_gpu_price("NVIDIA A100-SXM4-40GB") == pytest.approx(3.72)
    assert cost.beam_gpu_price("NVIDIA A100 80GB PCIe") == pytest.approx(4.7137)
    assert cost.beam_gpu_price("NVIDIA H200") is None  # Beam has no price for it: set gpu_usd_per_hour


@pytest.mark.parametrize(
    "gpu, price", [("NVIDIA L4", 0.672), ("NVIDIA L40S", None), ("Tesla P4", 0.72), ("Tesla P40", None),
                   ("Tesla V100-SXM2-16GB", 2.976), ("Tesla P100-PCIE-16GB", 1.752)],
)
def test_a_gpu_is_priced_by_its_exact_model_not_a_name_that_contains_another(gpu, price):
    assert cost.beam_gpu_price(gpu) == price


@pytest.mark.parametrize("prices", [{}, {"vcpu_usd_per_hour": 1.0, "memory_usd_per_gb_hour": 0.5}])
def test_every_run_records_its_cost_and_cost_per_thousand_inferences(bench_resources, query, prices):
    resources = with_settings(bench_resources, **prices)
    made = BenchmarkDefinitions.of(BENCHMARK)
    materialize([dataset_asset(BENCHMARK.dataset)], resources)
    result = materialize([made.weights, made.run], resources, partition_key="linear_regression")

    metrics = dict(query("SELECT metric, value FROM metrics WHERE namespace = 'harness'"))
    (cores,) = query("SELECT cast(fingerprint ->> 'usable_cores' AS INTEGER) FROM runs")[0]
    settings = resources["settings"]
    expected = metrics["pipeline_wall_seconds"] / 3600 * (
        cores * settings.vcpu_usd_per_hour + metrics["peak_rss_bytes"] / 1e9 * settings.memory_usd_per_gb_hour
    )
    assert metrics["estimated_cost_usd"] == pytest.approx(expected)
    metadata = result.asset_materializations_for_node(BENCHMARK.run_asset_name)[0].metadata
    # The asset page shows them to 4 significant digits.
    assert metadata["estimated_cost_usd"].value == pytest.approx(expected, rel=1e-3)
    assert metadata["cost_per_1000_inferences_usd"].value == pytest.approx(1000 * expected / 23, rel=1e-3)
