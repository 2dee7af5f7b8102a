"""The right-fitting benchmark's model: timm's EfficientNet-B0 (Beam's default `--pretrained_model_name`)."""

from __future__ import annotations

from bench_assets.vision.imagenet import build_timm_model
from bench_assets.spec import SEEDED_RANDOM, ModelSpec, models_by_name

IMAGENET_RIGHTFIT = "imagenet_rightfit"

RIGHTFIT_MODELS = models_by_name(
    # timm's efficientnet_b0 has 1,000 ImageNet classes by default, as Beam builds it (num_classes=1000).
    ModelSpec(
        "efficientnet_b0",
        IMAGENET_RIGHTFIT,
        build_timm_model,
        {"model_name": "efficientnet_b0"},
        # Beam's example loads timm's pretrained weights, a download; none ship with an installed package.
        note=SEEDED_RANDOM,
    ),
)
