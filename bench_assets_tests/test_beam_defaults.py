"""Beam's default means what Beam's benchmark runs: each benchmark's shipped run config (what `is_beam_default`
marks) batches, chunks, reads and builds its model as Beam 2.77's benchmark does (docs/beam-differences.md)."""

import inspect

import apache_beam as beam
import pytest
import torch

from bench_assets.benchmarks import imagenet_rightfit, object_detection, sentiment, table_rows
from bench_assets.benchmarks.object_detection.models import build_torchvision_detector
from bench_assets.datasets.table_rows import FEATURE_COLUMNS


def batch_elements_default(name: str) -> int:
    return inspect.signature(beam.BatchElements.__init__).parameters[name].default


@pytest.mark.parametrize("benchmark", [sentiment.BENCHMARK, imagenet_rightfit.BENCHMARK, table_rows.BENCHMARK])
def test_a_benchmark_whose_beam_handler_has_no_batch_bounds_batches_between_batch_elements_own(benchmark):
    batching = benchmark.run_config().run_settings()
    assert (batching["min_batch_size"], batching["max_batch_size"]) == (
        batch_elements_default("min_batch_size"), batch_elements_default("max_batch_size")
    ) == (1, 10_000)


def test_right_fitting_infers_in_the_chunks_beams_auto_batch_size_picks():
    # --inference_batch_size=auto tries 64, 32, 16, 8 and keeps the first whose forward pass fits: 64 on a CPU.
    assert imagenet_rightfit.BENCHMARK.run_config().run_settings()["chunk_size"] == 64


def test_table_rows_read_the_five_feature_columns_of_beams_benchmark():
    assert FEATURE_COLUMNS == ("feature1", "feature2", "feature3", "feature4", "feature5")


@pytest.mark.parametrize("model", sorted(object_detection.BENCHMARK.models))
def test_detectors_have_the_frozen_batch_norm_of_beams_model(model):
    from torchvision.ops.misc import FrozenBatchNorm2d

    detector = build_torchvision_detector(model)
    modules = list(detector.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in modules)
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in modules) == 53  # every one of ResNet-50's
    assert not any(key.endswith("num_batches_tracked") for key in detector.state_dict())  # Beam's state-dict layout
