"""ImageNet classification in chunks, after apache_beam/examples/inference/pytorch_imagenet_rightfit.py.

Read the image list, decode each file to RGB, resize its shorter side to 256, centre-crop 224 x 224 and
normalise with ImageNet's mean and std, batch adaptively (BatchElements' own bounds, 1 to 10,000: Beam's handler
is given none), and run each batch through EfficientNet-B0 in chunks, keeping the top-5 classes of each image.

Beam's benchmark passes `--inference_batch_size=auto` (its option file under
.github/workflows/load-tests-pipeline-options/): the right-fitting handler tries chunks of 64, 32, 16 and 8 with
a dummy batch at model load and keeps the first that does not run out of memory, which is 64 wherever a 64-image
forward pass fits (any CPU here; EfficientNet-B0 needs well under 2 GiB for it on a GPU). The chunk size here is a
run setting, 64 by default (`chunk_size`; Beam's example's own default, without `auto`, is 16); each batch's
latency covers all its chunks.

Decoding is the image-classification pipeline's: a path outside the allowed roots, or a file that is not a
usable image, becomes a failure row with its reason where Beam's example logs it and drops the item.
Resizing is bicubic, as Pillow's default that Beam's example uses; torchvision's centre crop rounds the offset
where Beam's floors it, at most one pixel apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam
import torch
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.ml.inference.pytorch_inference import default_tensor_inference_fn
from torchvision import transforms

from bench_assets.vision.imagenet import IMAGENET_MEAN, IMAGENET_STD
from bench_assets.vision.image_pipeline import (
    ImageNetClasses,
    build_image_run,
    image_labels,
)
from bench_assets.run.run_config import BeamAdaptiveRunConfig
from bench_assets.spec import PipelineRequest

RESIZE_SHORTER_SIDE = 256
CROP_SIZE = 224
# What Beam's benchmark's `--inference_batch_size=auto` selects wherever a 64-image forward pass fits.
CHUNK_SIZE = 64


def rightfit_transform() -> transforms.Compose:
    return transforms.Compose(
        [
            transforms.Resize(RESIZE_SHORTER_SIDE, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(CROP_SIZE),
            transforms.ToTensor(),
            transforms.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
        ]
    )


class ChunkedInference:
    """Beam's default tensor inference over consecutive chunks of a batch, results concatenated in order (the model
    a PyTorch module, or under the onnxruntime and openvino backends the runtime's model called as one)."""

    def __init__(self, chunk_size: int):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
        self._chunk_size = chunk_size

    def __call__(
        self, batch: Sequence[torch.Tensor], model, device, inference_args=None, model_id=None
    ) -> list[PredictionResult]:
        results = []
        for start in range(0, len(batch), self._chunk_size):
            chunk = batch[start : start + self._chunk_size]
            results.extend(default_tensor_inference_fn(chunk, model, device, inference_args or {}, model_id))
        return results


class RightfitRunConfig(BeamAdaptiveRunConfig):
    """Beam's batching (no bounds given) and the chunk each batch is inferred in."""

    chunk_size: int = CHUNK_SIZE

    def run_settings(self) -> dict:
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {self.chunk_size}")
        return {**super().run_settings(), "chunk_size": self.chunk_size}


def build_run(pipeline: beam.Pipeline, run: PipelineRequest) -> None:
    build_image_run(
        pipeline,
        run,
        transform=rightfit_transform(),
        inference_fn=ChunkedInference(run.run_settings["chunk_size"]),
        fields=ImageNetClasses(image_labels(run)),
    )
