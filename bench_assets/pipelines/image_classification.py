"""Image classification with Beam's RunInference, after apache_beam/examples/inference/pytorch_image_classification.py.

Read the image list, decode each file to RGB, resize to 224 x 224 and normalise as the model expects, batch
(10 to 100 by default, as Beam's example), predict with a keyed PyTorch model handler, keep the image id, class
index and class name. Unlike the example, an item that cannot be decoded or predicted becomes a failure record
with its reason instead of stopping the run.
"""

from __future__ import annotations

import io
from pathlib import Path

import apache_beam as beam
import torch
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerTensor, default_tensor_inference_fn
from PIL import Image
from torchvision import transforms

from bench_assets.models import ModelSpec, imagenet_class_names
from bench_assets.pipelines.common import BATCHES, ReadInputLines, TimedInference, failure_row, write_run_outputs

IMAGE_SIZE = 224


def image_transform(spec: ModelSpec) -> transforms.Compose:
    # Beam's example resizes straight to 224 x 224 (no crop, aspect ratio not kept); we do the same.
    return transforms.Compose(
        [
            transforms.Resize((IMAGE_SIZE, IMAGE_SIZE)),
            transforms.ToTensor(),
            transforms.Normalize(mean=spec.normalize_mean, std=spec.normalize_std),
        ]
    )


def read_image(path: str) -> Image.Image:
    with FileSystems().open(path, "r") as f:
        return Image.open(io.BytesIO(f.read())).convert("RGB")


class DecodeImages(beam.DoFn):
    """Path -> (path, normalised tensor); a file that cannot be read or decoded goes to the `failed` output."""

    FAILED = "failed"

    def __init__(self, transform: transforms.Compose):
        self._transform = transform

    def process(self, path: str):
        try:
            yield path, self._transform(read_image(path))
        except Exception as error:  # any reason a file is not a usable image is the item's failure, not the run's
            yield beam.pvalue.TaggedOutput(self.FAILED, failure_row(path, "preprocess", error))


class ToPredictionRows(beam.DoFn):
    """(path, PredictionResult) -> prediction row, plus the record of the batch it was predicted in."""

    def setup(self):
        self._class_names = imagenet_class_names()

    def process(self, keyed_result):
        path, result = keyed_result
        logits, batch = result.inference
        probabilities = torch.softmax(logits, dim=0)
        score, index = torch.max(probabilities, dim=0)
        yield {
            "item_id": path,
            "predicted_index": int(index),
            "predicted_label": self._class_names[int(index)],
            "score": float(score),
            "batch_id": batch.batch_id,
        }
        yield beam.pvalue.TaggedOutput(BATCHES, tuple(batch))


def model_handler(spec: ModelSpec, state_dict_path: str, min_batch_size: int, max_batch_size: int, device: str):
    return KeyedModelHandler(
        PytorchModelHandlerTensor(
            state_dict_path=state_dict_path,
            model_class=spec.model_class,
            model_params=spec.model_params,
            device=device,
            inference_fn=TimedInference(default_tensor_inference_fn),
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
            load_model_args={"weights_only": True},
        )
    )


def build_pipeline(
    pipeline: beam.Pipeline,
    *,
    image_list: Path,
    spec: ModelSpec,
    state_dict_path: Path,
    run_dir: Path,
    min_batch_size: int,
    max_batch_size: int,
    device: str = "CPU",
) -> None:
    paths = (
        pipeline
        | "ReadImageNames" >> ReadInputLines(image_list)
        | "FilterEmptyLines" >> beam.Filter(lambda line: line.strip() != "")
    )
    decoded = paths | "DecodeAndPreprocess" >> beam.ParDo(DecodeImages(image_transform(spec))).with_outputs(
        DecodeImages.FAILED, main="images"
    )
    handler = model_handler(spec, str(state_dict_path), min_batch_size, max_batch_size, device)
    predicted, dead_letters = decoded.images | "PyTorchRunInference" >> RunInference(handler).with_exception_handling()
    rows = predicted | "ToPredictionRows" >> beam.ParDo(ToPredictionRows()).with_outputs(BATCHES, main="predictions")
    write_run_outputs(run_dir, rows, decoded[DecodeImages.FAILED], dead_letters)
