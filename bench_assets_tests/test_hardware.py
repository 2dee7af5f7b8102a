"""How close to the machine's limit a run gets: FLOPs of an item counted once with the weights, the machine's
matmul peak per precision measured once per fingerprint, and each run's achieved FLOP/s and utilization."""

import json

import pytest
import torch

from bench_assets.machine import peak
from bench_assets.machine.fingerprint import usable_cores
from bench_assets.machine.peak import forward_flops, machine_peak
from bench_assets_tests.assets import image_classification_run, image_model_weights, openimage_sample
from bench_assets_tests.conftest import materialize


def test_flops_are_counted_as_torch_counts_them_and_the_peak_is_cached_per_machine_until_asked_again(tmp_path):
    assert forward_flops(torch.nn.Linear(10, 20), lambda model: model(torch.zeros(1, 10))) == 2 * 10 * 20
    fingerprint = {"cpu_model": "Test CPU"}
    first = machine_peak(tmp_path, fingerprint, "fp32")
    assert first.measured_flops_per_second > 0
    assert first.shape in peak.CPU_SHAPES
    assert machine_peak(tmp_path, fingerprint, "fp32") == first  # cached, not measured again
    (cache,) = tmp_path.glob("*.json")
    cached = json.loads(cache.read_text())
    assert list(cached) == ["cpu/fp32"] and cached["cpu/fp32"]["measured_flops_per_second"] == first.measured_flops_per_second
    # Asked again, it measures again; a bare number (the single-size probe of before) is measured again too.
    cache.write_text(json.dumps({"cpu/fp32": 1.0, "cpu/bf16": {**cached["cpu/fp32"], "measured_flops_per_second": 2.0}}))
    assert machine_peak(tmp_path, fingerprint, "fp32").measured_flops_per_second > 1.0
    assert machine_peak(tmp_path, fingerprint, "bf16").measured_flops_per_second == 2.0
    assert machine_peak(tmp_path, fingerprint, "bf16", again=True).measured_flops_per_second > 2.0


def test_the_probe_keeps_the_best_shape_and_skips_one_that_would_overrun_it(monkeypatch):
    rates = {(1024, 1024, 1024): 5e10, (256, 2304, 3136): 9e10, (512, 4096, 4096): 12e10, (2048, 2048, 2048): 1e11}
    tried = []

    def fastest_product(shape, precision, device, seconds):
        tried.append(shape)
        return rates[shape]

    monkeypatch.setattr(peak, "fastest_product", fastest_product)
    # 4096^3 takes 1.1 s a product at the best rate: with its warm-up, more than the 1 s probe leaves.
    assert peak.measured_peak("fp32", probe_seconds=1.0) == (12e10, (512, 4096, 4096))
    assert tried == list(rates)


@pytest.mark.parametrize("precision, flags, per_cycle", [
    ("fp32", {"avx2", "fma", "avx512f", "amx_tile", "amx_bf16", "avx512_bf16"}, 64.0),
    ("bf16", {"avx2", "fma", "avx512f", "amx_tile", "amx_bf16", "avx512_bf16"}, 1024.0),
    ("fp32", {"avx2", "fma", "avx512f"}, None),  # one or two FMA units: the flags do not say
    ("fp32", {"avx2", "fma"}, 32.0),
    ("bf16", {"avx2", "fma"}, None),
])
def test_the_theoretical_peak_comes_from_the_instruction_set_or_is_unknown(precision, flags, per_cycle):
    flops, basis = peak.cpu_flops_per_cycle(precision, flags)
    assert flops == per_cycle and basis
    theoretical, basis = peak.theoretical_peak(precision, "cpu", flags)
    clock, _ = peak.cpu_clock_ghz()
    if per_cycle is None or clock is None:
        assert theoretical is None and basis
    else:
        assert theoretical == pytest.approx(usable_cores() * clock * 1e9 * per_cycle)
        assert f"{usable_cores()} cores x" in basis
    assert peak.theoretical_peak(precision, "cuda", flags)[0] is None


def test_peaks_are_printed_and_measured_again_on_request(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(peak, "PROBE_SECONDS", 0.3)
    assert peak.main(["--precisions", "fp32"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("cpu fp32: measured ") and "theoretical" in first
    (cache,) = (tmp_path / peak.CACHE_FOLDER).glob("*.json")
    cache.write_text(json.dumps({"cpu/fp32": {**json.loads(cache.read_text())["cpu/fp32"], "measured_flops_per_second": 1e9}}))
    peak.main(["--precisions", "fp32"])
    assert "measured 1.0 GFLOP/s" in capsys.readouterr().out  # cached
    peak.main(["--precisions", "fp32", "--again"])
    assert "measured 1.0 GFLOP/s" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_run_records_its_achieved_flops_and_utilization(bench_resources, query):
    materialize([openimage_sample], bench_resources)
    result = materialize([image_model_weights, image_classification_run], bench_resources, partition_key="efficientnet_lite0")

    weights = result.asset_materializations_for_node("image_model_weights")[0].metadata
    assert weights["gflops_per_item"].value == pytest.approx(0.77, abs=0.01)  # EfficientNet-Lite0 at 224 x 224
    # Stored: what utilization is derived from; run_summary derives it, and the metadata shows run_summary's.
    metrics = dict(query("SELECT metric, value FROM metrics WHERE namespace = 'harness'"))
    assert "utilization" not in metrics and "achieved_flops_per_second" not in metrics
    batches = query("SELECT sum(batch_size), sum(latency_us) / 1e6 FROM batches")[0]  # one process: no overlap
    achieved = metrics["flops_per_item"] * batches[0] / batches[1]
    run = result.asset_materializations_for_node("image_classification_run")[0].metadata
    assert run["achieved_flops_per_second"].value == pytest.approx(achieved, rel=1e-3)  # 4 significant digits
    if achieved <= metrics["peak_flops_per_second"]:
        assert run["utilization"].value == pytest.approx(achieved / metrics["peak_flops_per_second"], rel=1e-3)
    else:  # above the measured ceiling: said, never a share over 1
        assert run["above_measured_peak"].value and "utilization" not in run
    assert list((bench_resources["settings"].root / "hardware").glob("*.json"))
