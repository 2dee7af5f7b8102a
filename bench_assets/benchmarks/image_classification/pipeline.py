"""Image classification with Beam's RunInference, after apache_beam/examples/inference/pytorch_image_classification.py:
the shared image pipeline (bench_assets/vision/image_pipeline.py) with ImageNet's top-1 class per image."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.ml.inference.pytorch_inference import default_tensor_inference_fn

from bench_assets.spec import PipelineRequest
from bench_assets.vision.image_pipeline import (
    ImageNetClasses,
    build_image_run,
    image_labels,
    image_transform,
)


def build_run(pipeline: beam.Pipeline, run: PipelineRequest) -> None:
    build_image_run(
        pipeline,
        run,
        transform=image_transform(run.model),
        inference_fn=default_tensor_inference_fn,
        fields=ImageNetClasses(image_labels(run)),
    )
