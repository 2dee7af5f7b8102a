"""Sentiment classification with Beam's RunInference, after apache_beam/examples/inference/pytorch_sentiment.py.

Read the sentences, tokenize each as Beam's example does (the BERT uncased WordPiece vocabulary, which DistilBERT
uncased shares; padding="max_length", truncation=True, max_length=128), classify with
DistilBertForSequenceClassification through a keyed PyTorch model handler, keep the label the softmax ranks first
(NEGATIVE or POSITIVE) and its probability as the score. Beam's example reads a file or Pub/Sub and writes
BigQuery; here the input is the platform's numbered lines and the outputs its prediction, failure and batch rows.

Batching: Beam's example gives its handler no batch bounds, so RunInference uses BatchElements' adaptive defaults
(min_batch_size=1, max_batch_size=10,000, batches grown towards about 10 s of work each), and so does the run
config here by default (BeamAdaptiveRunConfig; set other bounds per run). Every item is padded to 128 tokens, as in
the example, so a batch is always (batch size x 128) and an item's logits do not depend on its batch.

Every line becomes a prediction or a failure row: a blank or non-UTF-8 line fails at `read`; a line that
tokenizes to nothing usable fails at `preprocess`: nothing left after the tokenizer drops control, format and
replacement characters, or only [UNK] and special tokens (a line of emoji, say). Sentences longer than 128
tokens are truncated, as in Beam's example, and predicted.
"""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam
import torch
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerKeyedTensor

from bench_assets.datasets.bert_vocabulary import load_bert_tokenizer
from bench_assets.benchmarks.sentiment.models import ID2LABEL
from bench_assets.pipeline.model_handlers import CalibrationSample, keyed_model_handler, sentence_inputs
from bench_assets.pipeline.prepare_items import PrepareItems
from bench_assets.pipeline.prediction_rows import RowFields
from bench_assets.pipeline.read_predict_write import read_predict_write
from bench_assets.spec import ModelSpec, PipelineRequest

# Beam's example: tokenizer(text, padding="max_length", truncation=True, max_length=128).
MAX_LENGTH = 128
# What DistilBERT reads (its tokenizer's model_input_names); BERT's tokenizer would add token_type_ids.
MODEL_INPUTS = ("input_ids", "attention_mask")


def forward_example_sentences(model: torch.nn.Module, items: int = 1, device: str | torch.device = "cpu"):
    """`items` sentences padded to MAX_LENGTH, as every item is: one to count FLOPs, more to compile."""
    input_ids = torch.zeros((items, MAX_LENGTH), dtype=torch.long, device=device)
    return model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))


def tokenize(tokenizer, sentence: str) -> dict[str, torch.Tensor]:
    """The sentence's model inputs, each of MAX_LENGTH; a ValueError says why the line has nothing to classify."""
    encoded = tokenizer(
        sentence,
        padding="max_length",
        truncation=True,
        max_length=MAX_LENGTH,
        return_tensors="pt",
        return_token_type_ids=False,
    )
    example = {name: encoded[name].squeeze(0) for name in MODEL_INPUTS}
    attended = example["input_ids"][example["attention_mask"].bool()].tolist()
    special = set(tokenizer.all_special_ids)  # [CLS], [SEP], [PAD], [MASK] and [UNK]
    if not any(token not in special for token in attended):
        content = tokenizer.convert_ids_to_tokens(attended)[1:-1]  # without [CLS] and [SEP]
        if not content:
            raise ValueError(
                "the tokenizer keeps nothing of the line (it drops control, format and replacement characters)"
            )
        truncated = len(attended) == MAX_LENGTH
        kept = f"its first {MAX_LENGTH} tokens (the rest is truncated) hold" if truncated else "it tokenizes to"
        raise ValueError(f"no vocabulary word: {kept} only {sorted(set(content))}, nothing to classify")
    return example


class SequenceClassificationInference:
    """Stacks a batch of keyed tensors, runs the classifier without gradients and keeps each item's logits.

    Beam's default keyed-tensor inference function does the same stacking and forward pass, then hands each item
    the model's whole output; keeping only the logits (two numbers an item) is what postprocessing reads.
    """

    def __call__(self, batch, model, device, inference_args=None, model_id=None) -> list[PredictionResult]:
        with torch.no_grad():
            inputs = {name: torch.stack([example[name] for example in batch]).to(device) for name in MODEL_INPUTS}
            logits = model(**inputs, **(inference_args or {})).logits.cpu()
        return [PredictionResult(example, row, model_id) for example, row in zip(batch, logits)]


class SentimentLabel(RowFields):
    """As Beam's SentimentPostProcessor: softmax, then the most probable class, its label and probability."""

    def __call__(self, sentence: str, logits: torch.Tensor) -> dict:
        score, index = torch.max(torch.softmax(logits, dim=-1), dim=-1)
        return {"predicted_index": int(index), "predicted_label": ID2LABEL[int(index)], "score": float(score)}


def model_handler(
    spec: ModelSpec, state_dict_path: str, min_batch_size: int, max_batch_size: int, device: str,
    example_forward: Callable | None = None, calibration: CalibrationSample | None = None,
):
    """On the run's backend (see keyed_model_handler). `example_forward`: the benchmark's, to compile the model with;
    `calibration`: the run's own sentences, for OpenVINO's calibrated int8."""
    return keyed_model_handler(
        PytorchModelHandlerKeyedTensor,
        spec,
        state_dict_path,
        SequenceClassificationInference(),
        device,
        sentence_inputs(MODEL_INPUTS, MAX_LENGTH),
        example_forward,
        calibration,
        min_batch_size=min_batch_size,
        max_batch_size=max_batch_size,
    )


def build_run(pipeline: beam.Pipeline, run: PipelineRequest) -> None:
    prepare = PrepareItems(tokenize, load_bert_tokenizer)
    read_predict_write(
        pipeline,
        input_file=run.input_file,
        run_dir=run.run_dir,
        prepare=prepare,
        handler=model_handler(
            run.model, str(run.state_dict_path), run.run_settings["min_batch_size"], run.run_settings["max_batch_size"],
            run.run_settings["device"], run.example_forward, CalibrationSample(str(run.input_file), prepare),
        ),
        fields=SentimentLabel(),
        read_label="ReadSentences",
        prepare_label="Tokenize",
    )
