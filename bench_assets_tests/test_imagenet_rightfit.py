"""The ImageNet right-fitting benchmark: the shared image sample, seeded EfficientNet-B0 weights and a Beam
RunInference run whose batches are inferred in chunks, into a temporary DuckDB."""

import json

import pytest
import torch
from apache_beam.ml.inference.base import PredictionResult
from PIL import Image
from torch import nn

from bench_assets.datasets.images import OPENIMAGE_SAMPLE
from bench_assets.vision.imagenet import imagenet_class_names
from bench_assets.benchmarks.imagenet_rightfit import BENCHMARK
from bench_assets.benchmarks.imagenet_rightfit.pipeline import ChunkedInference, rightfit_transform
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets_tests.conftest import materialize

DEFINITIONS = BenchmarkDefinitions.of(BENCHMARK)


@pytest.mark.slow
def test_rightfit_partition_predicts_the_top_5_classes_of_every_image(bench_resources, query, no_network):
    assert BENCHMARK.dataset is OPENIMAGE_SAMPLE
    materialize([dataset_asset(BENCHMARK.dataset)], bench_resources)

    result = materialize([DEFINITIONS.weights, DEFINITIONS.run], bench_resources, partition_key="efficientnet_b0")

    weights = result.asset_materializations_for_node(BENCHMARK.weights_asset_name)[0].metadata
    assert weights["source"].value == "seeded_random" and "meaningless" in weights["note"].value
    (run_id, status, size, benchmark), = query("SELECT run_id, status, dataset_size, benchmark FROM runs")
    assert (status, size, benchmark) == ("finished", 23, "imagenet_rightfit")
    assert query("SELECT count(*), count(DISTINCT line) FROM predictions WHERE run_id = ?", [run_id]) == [(23, 23)]
    assert query("SELECT count(*) FROM failures") == [(0,)]

    names = imagenet_class_names()
    rows = query("SELECT predicted_index, predicted_label, score, detail FROM predictions WHERE run_id = ?", [run_id])
    for index, label, score, detail in rows:
        top5 = json.loads(detail)["top5"]
        assert len(top5) == 5
        assert all(entry["label"] == names[entry["class_id"]] for entry in top5)
        assert [entry["score"] for entry in top5] == sorted((entry["score"] for entry in top5), reverse=True)
        assert (top5[0]["class_id"], top5[0]["label"], top5[0]["score"]) == (index, label, score)
        assert 0 < score <= 1

    metrics = dict(query("SELECT metric, value FROM metrics WHERE run_id = ?", [run_id]))
    assert metrics["num_inferences"] == 23
    assert query("SELECT sum(batch_size) FROM batches") == [(23,)]
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "nothing_lost" and check.passed
    assert no_network == []


class RecordingModel(nn.Module):
    """Doubles its input and records the size of each forward pass."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def forward(self, images):
        self.sizes.append(len(images))
        return images * 2


def test_chunked_inference_runs_a_batch_in_its_chunks_and_keeps_its_order():
    batch = [torch.full((2,), float(index)) for index in range(37)]
    model = RecordingModel()

    results = ChunkedInference(16)(batch, model, "cpu", {}, model_id="m")

    assert model.sizes == [16, 16, 5]
    assert all(isinstance(result, PredictionResult) for result in results)
    assert [float(result.inference[0]) for result in results] == [2.0 * index for index in range(37)]
    assert all(result.example is example for result, example in zip(results, batch))


def test_transform_resizes_the_shorter_side_to_256_and_crops_the_centre_224():
    # A portrait image, white but for a black top and bottom that the 224 x 224 centre crop must leave out.
    image = Image.new("RGB", (300, 600), (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, 300, 100))
    image.paste((0, 0, 0), (0, 500, 300, 600))

    tensor = rightfit_transform()(image)

    assert tensor.shape == (3, 224, 224) and tensor.dtype == torch.float32
    white = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(tensor.mean(dim=(1, 2)), white, atol=1e-3)
