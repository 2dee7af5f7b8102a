"""Object detection (Beam's `pytorch_image_object_detection` example): Faster R-CNN and RetinaNet over the image
sample, 800 x 800 letterboxed images in fixed batches of 8, COCO detections scoring at least 0.5 per image."""

from bench_assets.datasets.images import OPENIMAGE_SAMPLE
from bench_assets.benchmarks.object_detection.models import DETECTION_MODELS, OBJECT_DETECTION
from bench_assets.benchmarks.object_detection.pipeline import ObjectDetectionRunConfig, build_run
from bench_assets.run.configuration import DECODES, MEMORY_FORMATS, PREFETCHES
from bench_assets.spec import BenchmarkSpec

# A forward pass takes 2 to 3 s per 800 x 800 image on a 2-core CPU: smoke finishes in about 20 s, quick in
# about 2 minutes per model.
ITEMS_LIMIT = {"smoke": 6, "quick": 40}

BENCHMARK = BenchmarkSpec(
    name=OBJECT_DETECTION,
    description=(
        "COCO object detection of the image sample with torchvision's Faster R-CNN and RetinaNet (ResNet-50 FPN, "
        "seeded random weights), Beam RunInference in fixed batches of 8. Runs the first "
        f"{ITEMS_LIMIT['smoke']} images at the smoke profile and {ITEMS_LIMIT['quick']} at quick (2 to 3 s per "
        "image on a 2-core CPU); the whole sample at full."
    ),
    dataset=OPENIMAGE_SAMPLE,
    models=DETECTION_MODELS,
    build_pipeline=build_run,
    run_config=ObjectDetectionRunConfig,
    items_limit=ITEMS_LIMIT,
    # Boxes and the 0.5 score threshold are kept in fp32: low-precision detection heads shift both.
    configurations={"precision": ("fp32",), "memory_format": MEMORY_FORMATS, "decode": DECODES, "prefetch": PREFETCHES},
)
