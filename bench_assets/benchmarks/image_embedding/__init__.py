"""Image embedding (Beam's `mltransform_image_embedding_benchmark`): MLTransform with SentenceTransformerEmbeddings
and the CLIP ViT-B/32 architecture (seeded random weights: no CLIP weights ship) turns each image of the image
sample into a 512-d vector. Speed is real; the vectors mean nothing, so there is no quality figure."""

from bench_assets.benchmarks.image_embedding.models import IMAGE_EMBEDDING, IMAGE_EMBEDDING_MODELS
from bench_assets.benchmarks.image_embedding.pipeline import (
    ImageEmbeddingRunConfig,
    build_run,
    forward_example_images,
)
from bench_assets.datasets.images import OPENIMAGE_SAMPLE
from bench_assets.pipeline.embeddings import EMBEDDING_METRICS_NAMESPACE
from bench_assets.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    name=IMAGE_EMBEDDING,
    description=(
        "Image embeddings with Beam's MLTransform and SentenceTransformerEmbeddings (the CLIP ViT-B/32 "
        "architecture, seeded random weights: speed is real, vectors are not), as Beam's "
        "mltransform_image_embedding example, over the image sample."
    ),
    dataset=OPENIMAGE_SAMPLE,
    models=IMAGE_EMBEDDING_MODELS,
    build_pipeline=build_run,
    run_config=ImageEmbeddingRunConfig,
    example_forward=forward_example_images,
    beam_metrics_namespace=EMBEDDING_METRICS_NAMESPACE,
    # autocast and int8 Linear layers apply to CLIP; torch.compile would compile CLIPModel's forward, which
    # sentence-transformers does not call (it calls get_image_features), so it is not offered.
    configurations={"precision": ("fp32", "bf16"), "quantization": ("none", "dynamic_int8")},
)
