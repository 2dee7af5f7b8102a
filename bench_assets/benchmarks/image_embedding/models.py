"""The image-embedding model: CLIP ViT-B/32 (Beam's example's `clip-ViT-B-32`), as a SentenceTransformer whose one
module is transformers' CLIPModel, built from its configuration offline.

No CLIP weights ship with an installed package, so runs use seeded random weights by default (a configured file
replaces them): the speed is real, the vectors are meaningless (no two images are near for what they show).
"""

from __future__ import annotations

import tempfile

from torch import nn

from bench_assets.spec import ModelSpec, models_by_name

IMAGE_EMBEDDING = "image_embedding"
CLIP_VIT_B_32 = "clip-vit-b-32"


def build_clip_sentence_transformer(config: dict | None = None) -> nn.Module:
    """A SentenceTransformer of transformers' CLIPModel(CLIPConfig(**config)), weights initialised as transformers
    initialises a new model (seeded by the caller's torch seed), with CLIP's image processor for the vision
    tower's image size (resize the short side, centre crop, CLIP's mean and std). CLIPConfig's defaults are
    ViT-B/32's: a 224 x 224 image in 32 x 32 patches, 12 layers of width 768, 512-d embeddings."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.transformer import Transformer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    class ClipFromConfig(Transformer):
        """sentence-transformers' multimodal Transformer module, its model made from the folder's config alone."""

        def _load_model(self, model_name_or_path, transformer_task, config, *args, **kwargs):
            return CLIPModel(config)

    clip_config = CLIPConfig(**(config or {}))
    size = clip_config.vision_config.image_size
    # The module reads a folder (config and processor files): written and read here, then removed.
    with tempfile.TemporaryDirectory(prefix="clip_config_") as folder:
        clip_config.save_pretrained(folder)
        CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(folder)
        module = ClipFromConfig(folder)
    return SentenceTransformer(modules=[module], device="cpu")


IMAGE_EMBEDDING_MODELS = models_by_name(
    ModelSpec(
        CLIP_VIT_B_32,
        IMAGE_EMBEDDING,
        build_clip_sentence_transformer,
        note="Seeded random weights (no CLIP weights ship): speed is real; the 512-d vectors mean nothing.",
    ),
)
