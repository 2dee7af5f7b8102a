"""ImageNet right-fitting (Beam's `pytorch_imagenet_rightfit` example): EfficientNet-B0 over the image sample, each
adaptive batch (1 to 10,000 items) run in chunks of 64, as Beam's benchmark's `--inference_batch_size=auto` picks,
top-5 ImageNet classes per image."""

from bench_assets.datasets.images import OPENIMAGE_SAMPLE
from bench_assets.benchmarks.imagenet_rightfit.models import IMAGENET_RIGHTFIT, RIGHTFIT_MODELS
from bench_assets.vision.image_pipeline import forward_example_images
from bench_assets.benchmarks.imagenet_rightfit.pipeline import RightfitRunConfig, build_run
from bench_assets.run.configuration import BACKENDS, COMPILERS, DECODES, MEMORY_FORMATS, PREFETCHES, PRECISIONS
from bench_assets.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    name=IMAGENET_RIGHTFIT,
    description=(
        "Top-5 ImageNet classes of the image sample with timm's EfficientNet-B0 (seeded random weights), Beam "
        "RunInference batching adaptively and each batch inferred in chunks of 64, as Beam's right-fitting benchmark."
    ),
    dataset=OPENIMAGE_SAMPLE,
    models=RIGHTFIT_MODELS,
    example_forward=forward_example_images,  # 224 x 224, as image classification
    build_pipeline=build_run,
    run_config=RightfitRunConfig,
    # Items are single tensors: the model exports as it is (backends onnxruntime and openvino).
    configurations={
        "precision": PRECISIONS, "memory_format": MEMORY_FORMATS, "compile": COMPILERS, "backend": BACKENDS,
        "quantization": ("none", "static_int8"), "decode": DECODES, "prefetch": PREFETCHES,
    },
)
