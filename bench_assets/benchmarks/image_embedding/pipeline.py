"""Image embedding with Beam's MLTransform, after apache_beam/examples/ml_transform/mltransform_image_embedding.py
(Beam's `mltransform_image_embedding_benchmark`).

Read the image list, decode each file to RGB, embed the images through MLTransform with Beam's own
SentenceTransformerEmbeddings(image_model=True), as the example does: its batch bounds (min 8, max 64) are the run
config's defaults, and `SentenceTransformer.encode` takes them 32 at a time (its default, which the example keeps).
CLIP's image processor resizes and crops each image inside encode, as in the example.

What differs from the example, and why:
- Decoding is the image benchmarks' (bench_assets/vision/image_pipeline.py): a path outside the allowed image
  roots, or a file that is not a usable image, is a failure row with its reason where the example logs a warning
  and drops the image. Any image mode is converted to 8-bit RGB as there (the example's convert("RGB") clips
  16-bit samples).
- The example reshuffles before reading the images, to spread them over Dataflow's workers; here the runner's
  own parallelism is used (the direct runner's, or Dask's partitions).
- Each batch is timed, MLTransform runs with exception handling (a failed batch's images are inference failures
  with the exception's message), and the vectors go to the run's `embeddings` output, not BigQuery; each image's
  row holds its vector's size and norm.
- The model is built from CLIP ViT-B/32's configuration (no hub), and the run's weights file loaded into it.
"""

from __future__ import annotations

import apache_beam as beam
import torch

from bench_assets.pipeline.embeddings import EmbeddingRunConfig, embedding_record, read_embed_write
from bench_assets.spec import PipelineRequest
from bench_assets.vision.image_pipeline import DecodeImages


def forward_example_images(model: torch.nn.Module, items: int = 1, device: str | torch.device = "cpu"):
    """`items` blank images at the vision tower's size through the SentenceTransformer: to count FLOPs."""
    size = model[0].auto_model.config.vision_config.image_size
    return model({"pixel_values": torch.zeros(items, 3, size, size, device=device), "modality": "image"})


class DecodeImageRecords(DecodeImages):
    """(line, path) -> the record MLTransform embeds, its image decoded to RGB (as it is: CLIP's processor resizes
    it); an unusable image goes to `failed` with its reason, as in every image benchmark."""

    def process(self, item: tuple[int, str]):
        for output in super().process(item):
            if isinstance(output, beam.pvalue.TaggedOutput):
                yield output
            else:
                (line, path), image = output
                yield embedding_record(line, path, image)


class ImageEmbeddingRunConfig(EmbeddingRunConfig):
    """Beam's example's batching: BatchElements between 8 and 64 images, encode in batches of 32."""

    min_batch_size: int = 8
    max_batch_size: int = 64


def build_run(pipeline: beam.Pipeline, run: PipelineRequest) -> None:
    read_embed_write(
        pipeline,
        run,
        prepare=DecodeImageRecords(transform=None, allowed_roots=run.settings.image_roots()),
        read_label="ReadImageNames",
        image_model=True,
    )
