"""The detection models: torchvision's Faster R-CNN and RetinaNet with ResNet-50 FPN backbones (Beam's two).

Beam's example loads trained COCO weights from a state dict it is given; none ship with an installed package, so
runs use seeded random weights by default (a configured file replaces them): speed is real, detections are not.
"""

from __future__ import annotations

from torch import nn

from bench_assets.spec import ModelSpec, models_by_name

OBJECT_DETECTION = "object_detection"
# COCO's 80 classes under their original 91 ids (background and unused ids included), as torchvision numbers them.
COCO_NUM_CLASSES = 91


def with_frozen_batch_norm(module: nn.Module) -> nn.Module:
    """The module with each BatchNorm2d replaced by torchvision's FrozenBatchNorm2d of the same statistics."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for buffer in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, buffer).copy_(getattr(child, buffer).detach())
            setattr(module, name, frozen)
        else:
            with_frozen_batch_norm(child)
    return module


def build_torchvision_detector(model_name: str) -> nn.Module:
    """Beam's example builds the detector with weights=None, which leaves the ImageNet backbone weights on: the
    backbone is then built with FrozenBatchNorm2d, and its state dict has that layout. The backbone weights would
    be downloaded (and are overwritten by the state dict anyway), so here they are not, and the batch norm is
    frozen as in Beam's model."""
    import torchvision

    model = torchvision.models.get_model(model_name, weights=None, weights_backbone=None, num_classes=COCO_NUM_CLASSES)
    return with_frozen_batch_norm(model)


def coco_category_names() -> list[str]:
    """COCO's names by torchvision's label id ("__background__" at 0, "N/A" for unused ids), shipped offline."""
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights

    return list(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"])


DETECTION_MODELS = models_by_name(
    ModelSpec(
        "fasterrcnn_resnet50_fpn",
        OBJECT_DETECTION,
        build_torchvision_detector,
        {"model_name": "fasterrcnn_resnet50_fpn"},
        note="Seeded random weights: speed is real; the random head reports many confident, meaningless boxes.",
    ),
    ModelSpec(
        "retinanet_resnet50_fpn",
        OBJECT_DETECTION,
        build_torchvision_detector,
        {"model_name": "retinanet_resnet50_fpn"},
        # torchvision starts RetinaNet's class scores at a prior of 0.01, so a random head scores near it.
        note="Seeded random weights: speed is real; the random head finds no detections above the 0.5 threshold.",
    ),
)
