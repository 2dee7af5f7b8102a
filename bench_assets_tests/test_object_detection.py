"""The object-detection benchmark: the shared image sample (its first images), seeded Faster R-CNN weights and
a Beam RunInference run in fixed batches of 8, into a temporary DuckDB; and the detections' postprocessing."""

import json

import pytest
import torch
from PIL import Image

from bench_assets.datasets.images import OPENIMAGE_SAMPLE
from bench_assets.benchmarks.object_detection import BENCHMARK
from bench_assets.benchmarks.object_detection.models import coco_category_names
from bench_assets.benchmarks.object_detection.pipeline import (
    MAX_DETECTIONS,
    LetterboxSquare,
    TopDetection,
    confident_detections,
    detection_transform,
)
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets_tests.conftest import materialize

DEFINITIONS = BenchmarkDefinitions.of(BENCHMARK)


@pytest.mark.slow
def test_detection_partition_records_the_detections_of_each_of_its_first_images(bench_resources, query, no_network):
    assert BENCHMARK.dataset is OPENIMAGE_SAMPLE
    materialize([dataset_asset(BENCHMARK.dataset)], bench_resources)

    result = materialize(
        [DEFINITIONS.weights, DEFINITIONS.run], bench_resources, partition_key="fasterrcnn_resnet50_fpn"
    )

    (run_id, status, size, batching), = query("SELECT run_id, status, dataset_size, batching FROM runs")
    limit = BENCHMARK.items_limit["smoke"]
    assert (status, size) == ("finished", limit)
    assert json.loads(batching)["min_batch_size"] == json.loads(batching)["max_batch_size"] == 8
    assert query("SELECT count(*), count(DISTINCT line), max(line) FROM predictions") == [(limit, limit, limit)]
    assert query("SELECT count(*) FROM failures") == [(0,)]

    names = coco_category_names()
    rows = query("SELECT predicted_index, predicted_label, score, detail FROM predictions WHERE run_id = ?", [run_id])
    for index, label, score, detail in rows:
        detail = json.loads(detail)
        detections = detail["detections"]
        assert detail["num_detections"] == len(detections) <= MAX_DETECTIONS
        assert all(d["score"] >= 0.5 and d["label"] == names[d["label_id"]] and len(d["box"]) == 4 for d in detections)
        assert [d["score"] for d in detections] == sorted((d["score"] for d in detections), reverse=True)
        if detections:
            assert (index, label, score) == (detections[0]["label_id"], detections[0]["label"], detections[0]["score"])
        else:
            assert (index, label, score) == (-1, "", None)

    metrics = dict(query("SELECT metric, value FROM metrics WHERE run_id = ?", [run_id]))
    assert metrics["num_inferences"] == limit
    # One bundle of fewer than 8 images: its single batch is flushed at the bundle's end.
    assert query("SELECT count(*), sum(batch_size) FROM batches") == [(1, limit)]
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "nothing_lost" and check.passed
    assert no_network == []


def detector_output(scores: list[float]) -> dict[str, torch.Tensor]:
    """A torchvision detector's output for one image: detection i has label i + 1 and box [i, i, i + 10, i + 10]."""
    count = len(scores)
    return {
        "boxes": torch.tensor([[i, i, i + 10, i + 10] for i in range(count)], dtype=torch.float32).reshape(count, 4),
        "labels": torch.arange(1, count + 1, dtype=torch.int64),
        "scores": torch.tensor(scores, dtype=torch.float32),
    }


def test_detections_below_the_threshold_are_dropped_and_the_rest_sorted_by_score():
    detections = confident_detections(detector_output([0.3, 0.9, 0.5, 0.49, 0.7]))

    assert [d["label_id"] for d in detections] == [2, 5, 3]
    assert [d["score"] for d in detections] == [torch.tensor(s).item() for s in (0.9, 0.7, 0.5)]
    assert detections[0]["box"] == [1.0, 1.0, 11.0, 11.0]


def test_at_most_50_detections_are_kept_the_most_confident():
    scores = [0.5 + i / 200 for i in range(80)]  # rising: the last 50 are the most confident
    detections = confident_detections(detector_output(scores))

    assert len(detections) == MAX_DETECTIONS
    assert [d["label_id"] for d in detections] == list(range(80, 30, -1))


def test_an_image_without_confident_detections_has_no_top_label_and_no_score():
    fields = TopDetection()
    fields.setup()

    for output in (detector_output([]), detector_output([0.2, 0.1])):
        row = fields("image.jpg", confident_detections(output))
        assert row == {
            "predicted_index": -1,
            "predicted_label": "",
            "score": None,
            "detail": json.dumps({"num_detections": 0, "detections": []}),
        }

    row = fields("image.jpg", confident_detections(detector_output([0.6, 0.8])))
    assert (row["predicted_index"], row["predicted_label"]) == (2, "bicycle")
    assert [d["label"] for d in json.loads(row["detail"])["detections"]] == ["bicycle", "person"]


def test_images_are_scaled_to_fit_800_and_centred_on_black():
    landscape = Image.new("RGB", (1000, 500), (255, 255, 255))

    boxed = LetterboxSquare()(landscape)
    tensor = detection_transform()(landscape)

    assert boxed.size == (800, 800)
    assert boxed.getbbox() == (0, 200, 800, 600)  # the non-black part: 800 x 400, centred
    assert tensor.shape == (3, 800, 800) and tensor.dtype == torch.float32
    assert tensor.max() == 1.0 and tensor.min() == 0.0
