"""The sentiment model: DistilBERT base uncased fine-tuned on SST-2 (Beam's benchmark model), architecture only."""

from __future__ import annotations

from torch import nn

from bench_assets.spec import ModelSpec, models_by_name

SENTIMENT = "sentiment"
SST2_MODEL = "distilbert-base-uncased-finetuned-sst-2-english"
# The labels of distilbert-base-uncased-finetuned-sst-2-english's config, by output index.
ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
LABEL2ID = {label: index for index, label in ID2LABEL.items()}


def distilbert_sst2_config():
    """distilbert-base-uncased-finetuned-sst-2-english's configuration: DistilBERT base's default sizes (6 layers,
    768 hidden, 12 heads, the 30,522-entry BERT uncased vocabulary, 512 positions) with a two-label head."""
    from transformers import DistilBertConfig

    return DistilBertConfig(num_labels=len(ID2LABEL), id2label=dict(ID2LABEL), label2id=dict(LABEL2ID))


def build_distilbert_for_sequence_classification(config) -> nn.Module:
    from transformers import DistilBertForSequenceClassification

    return DistilBertForSequenceClassification(config)


def build_sequence_classifier_from_folder(model_name: str) -> nn.Module:
    """A person's two-label sequence classifier from a Hugging Face folder's config.json (its weights load apart),
    such as the real distilbert-base-uncased-finetuned-sst-2-english.

    The pipeline tokenizes with the BERT uncased WordPiece vocabulary and names output 0 NEGATIVE and 1 POSITIVE,
    so the model must use that vocabulary and have two labels in that order.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from bench_assets.datasets.bert_vocabulary import VOCAB_SIZE

    config = AutoConfig.from_pretrained(model_name)
    if getattr(config, "vocab_size", None) != VOCAB_SIZE:
        raise ValueError(
            f"{model_name}/config.json: vocab_size {getattr(config, 'vocab_size', None)}; the benchmark tokenizes "
            f"with BERT's uncased WordPiece vocabulary of {VOCAB_SIZE} entries"
        )
    if config.num_labels != len(ID2LABEL):
        raise ValueError(
            f"{model_name}/config.json: {config.num_labels} labels; the benchmark classifies into "
            f"{len(ID2LABEL)}: {ID2LABEL}"
        )
    return AutoModelForSequenceClassification.from_config(config)


SENTIMENT_MODELS = models_by_name(
    ModelSpec(
        SST2_MODEL,
        SENTIMENT,
        build_distilbert_for_sequence_classification,
        {"config": distilbert_sst2_config()},
        # No installed package ships the fine-tuned weights; a configured <model>.pth in weights_dir replaces these.
        note="weights are seeded random: speed is real, sentiment labels are meaningless",
    ),
)
