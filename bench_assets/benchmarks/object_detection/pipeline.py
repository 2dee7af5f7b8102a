"""Object detection with Beam's RunInference, after apache_beam/examples/inference/pytorch_image_object_detection.py.

Read the image list, decode each file to RGB, scale it to fit 800 x 800 (aspect ratio kept) and paste it centred
on a black 800 x 800 canvas, as a CHW float tensor in [0, 1] (no mean/std: the detectors normalise inside).
Batch exactly 8 images (Beam's fixed `--inference_batch_size`; no right-fitting), run the detector on the list of
tensors, and keep the detections scoring at least 0.5, at most 50 per image, each with its COCO class name.

As Beam's example, the threshold and the cap are applied in score order; unlike it, we sort by score first (the
torchvision detectors already return them sorted), so the first detection kept is always the most confident.
Decoding is the image-classification pipeline's: a path outside the allowed roots, or a file that is not a
usable image, becomes a failure row with its reason where Beam's example logs it and drops the item.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import apache_beam as beam
import torch
from apache_beam.ml.inference.base import PredictionResult
from PIL import Image
from torchvision import transforms

from bench_assets.vision.image_pipeline import build_image_run
from bench_assets.benchmarks.object_detection.models import coco_category_names
from bench_assets.pipeline.prediction_rows import RowFields
from bench_assets.run.run_config import InferenceRunConfig
from bench_assets.spec import PipelineRequest

IMAGE_SIZE = 800
# Beam's example defaults: `--inference_batch_size 8`, `--score_threshold 0.5`, `--max_detections 50`.
BATCH_SIZE = 8
SCORE_THRESHOLD = 0.5
MAX_DETECTIONS = 50


class LetterboxSquare:
    """Scales an RGB image to fit a size x size square and pastes it centred on black, as Beam's example does."""

    def __init__(self, size: int = IMAGE_SIZE):
        self._size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        scale = min(self._size / image.width, self._size / image.height)
        width, height = max(1, round(image.width * scale)), max(1, round(image.height * scale))
        canvas = Image.new("RGB", (self._size, self._size), (0, 0, 0))
        # Pillow's default resampling (bicubic), as the example's img.resize.
        canvas.paste(image.resize((width, height)), ((self._size - width) // 2, (self._size - height) // 2))
        return canvas


def detection_transform() -> transforms.Compose:
    return transforms.Compose([LetterboxSquare(IMAGE_SIZE), transforms.ToTensor()])


def confident_detections(
    output: dict[str, torch.Tensor], score_threshold: float = SCORE_THRESHOLD, max_detections: int = MAX_DETECTIONS
) -> list[dict]:
    """A torchvision detector's output for one image ({boxes, labels, scores}) as its detections scoring at least
    `score_threshold`, most confident first, at most `max_detections`: {label_id, score, box [x1, y1, x2, y2]}."""
    scores = output["scores"].detach().cpu()
    order = torch.argsort(scores, descending=True, stable=True)
    kept = order[scores[order] >= score_threshold][:max_detections]
    labels, boxes = output["labels"].detach().cpu()[kept], output["boxes"].detach().cpu()[kept]
    return [
        {"label_id": int(label), "score": float(score), "box": [float(value) for value in box]}
        for label, score, box in zip(labels, scores[kept], boxes)
    ]


def detect_objects(
    batch: Sequence[torch.Tensor], model, device, inference_args=None, model_id=None
) -> list[PredictionResult]:
    """Runs the detector on the batch as a list of images (as torchvision takes them) and keeps confident detections."""
    with torch.no_grad():
        outputs = model([image.to(device) for image in batch], **(inference_args or {}))
    return [PredictionResult(image, confident_detections(output), model_id) for image, output in zip(batch, outputs)]


class TopDetection(RowFields):
    """The most confident detection (label id, COCO name, score; -1, "" and no score when there is none) and every
    detection kept, named, as JSON."""

    def setup(self):
        self._class_names = coco_category_names()

    def __call__(self, item: str, detections: list[dict]) -> dict:
        named = [
            {"label_id": d["label_id"], "label": self._class_names[d["label_id"]], "score": d["score"], "box": d["box"]}
            for d in detections
        ]
        top = named[0] if named else {"label_id": -1, "label": "", "score": None}
        return {
            "predicted_index": top["label_id"],
            "predicted_label": top["label"],
            "score": top["score"],
            "detail": json.dumps({"num_detections": len(named), "detections": named}),
        }


class ObjectDetectionRunConfig(InferenceRunConfig):
    """Beam's example infers fixed batches of 8 images."""

    min_batch_size: int = BATCH_SIZE
    max_batch_size: int = BATCH_SIZE


def build_run(pipeline: beam.Pipeline, run: PipelineRequest) -> None:
    # No example forward: a detector's work depends on the image, and detection offers no compilation.
    build_image_run(
        pipeline, run, transform=detection_transform(), inference_fn=detect_objects, fields=TopDetection(),
        input_size=IMAGE_SIZE,
    )
