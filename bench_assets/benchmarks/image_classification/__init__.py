"""Image classification (Beam's `pytorch_image_classification` benchmark): ResNets and EfficientNet-Lite0 over
an OpenImages-like image set, top-1 ImageNet class per image."""

from bench_assets.datasets.images import OPENIMAGE_SAMPLE
from bench_assets.benchmarks.image_classification.models import IMAGE_CLASSIFICATION, IMAGE_MODELS
from bench_assets.benchmarks.image_classification.pipeline import build_run
from bench_assets.vision.image_pipeline import forward_example_images
from bench_assets.vision.imagenet import build_timm_model, build_torchvision_model
from bench_assets.run.configuration import BACKENDS, COMPILERS, DECODES, MEMORY_FORMATS, PREFETCHES, PRECISIONS
from bench_assets.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    name=IMAGE_CLASSIFICATION,
    description="ImageNet classification of the image sample with Beam RunInference and a PyTorch model handler.",
    dataset=OPENIMAGE_SAMPLE,
    models=IMAGE_MODELS,
    build_pipeline=build_run,
    weights_asset="image_model_weights",
    example_forward=forward_example_images,
    user_model_builders={"torchvision": build_torchvision_model, "timm": build_timm_model},
    # Items are single tensors: the model exports as it is (backends onnxruntime and openvino).
    configurations={
        "precision": PRECISIONS, "memory_format": MEMORY_FORMATS, "compile": COMPILERS, "backend": BACKENDS,
        "quantization": ("none", "static_int8"), "decode": DECODES, "prefetch": PREFETCHES,
    },
)
