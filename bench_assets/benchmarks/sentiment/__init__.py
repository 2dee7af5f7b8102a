"""Sentiment (Beam's `pytorch_sentiment` benchmark): DistilBERT fine-tuned on SST-2 classifies each sentence of
the language-modeling benchmark's sentence corpus as NEGATIVE or POSITIVE."""

from bench_assets.datasets.sentences import SENTENCE_CORPUS
from bench_assets.benchmarks.sentiment.models import (
    SENTIMENT,
    SENTIMENT_MODELS,
    build_sequence_classifier_from_folder,
)
from bench_assets.benchmarks.sentiment.pipeline import build_run, forward_example_sentences
from bench_assets.run.configuration import BACKENDS, COMPILERS, PRECISIONS, QUANTIZATIONS
from bench_assets.run.run_config import BeamAdaptiveRunConfig
from bench_assets.spec import BenchmarkSpec

BENCHMARK = BenchmarkSpec(
    name=SENTIMENT,
    description=(
        "Sentiment classification of the sentence corpus with Beam RunInference and "
        "DistilBertForSequenceClassification (tokenized to 128 tokens, as Beam's example)."
    ),
    dataset=SENTENCE_CORPUS,  # the same asset as language modeling: one sentence_corpus for both
    models=SENTIMENT_MODELS,
    build_pipeline=build_run,
    run_config=BeamAdaptiveRunConfig,  # Beam's sentiment handler is given no batch bounds
    example_forward=forward_example_sentences,
    # e.g. the real distilbert-base-uncased-finetuned-sst-2-english, from a folder (bench_assets/benchmarks/user_models.py)
    user_model_builders={"huggingface": build_sequence_classifier_from_folder},
    # Linear layers: int8 pays off. The inputs (token ids, attention mask) export with their batch size and sentence
    # length dynamic (backends onnxruntime and openvino).
    configurations={"precision": PRECISIONS, "quantization": QUANTIZATIONS, "compile": COMPILERS, "backend": BACKENDS},
)
