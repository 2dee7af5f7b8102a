"""ImageNet, shared by the image benchmarks: its class names, its normalisation, and the model libraries
(torchvision, timm) the image models are built from."""

from __future__ import annotations

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_timm_model(model_name: str) -> nn.Module:
    import timm

    return timm.create_model(model_name, pretrained=False)


def build_torchvision_model(model_name: str) -> nn.Module:
    import torchvision

    return torchvision.models.get_model(model_name, weights=None, num_classes=1000)


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names, shipped inside torchvision (no download)."""
    import torchvision

    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
