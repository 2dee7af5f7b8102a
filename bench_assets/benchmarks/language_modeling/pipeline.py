"""Masked-word prediction with Beam's RunInference, after apache_beam/examples/inference/pytorch_language_modeling.py.

Read the sentences, mask the last word (the token before the final " ."), tokenize with the real BERT uncased
WordPiece vocabulary, predict with BertForMaskedLM, keep the sentence, the masked word and the predicted word.

Two batching modes:
- `beam_example`: as Beam's example, each sentence encoded on its own and inferred alone (batch size 1).
- `length_bucketed`: each window of SORT_WINDOW tokenized sentences goes on shortest first, so the consecutive
  sentences Beam's BatchElements batches (min_batch_size to max_batch_size) have similar token counts; each batch
  is right-padded with an attention mask, so every sentence sees exactly its own tokens.

Beam 2.77's model handlers take `batch_length_fn` and `batch_bucket_boundaries`, but BatchElements applies them
only on its stateful path (with `max_batch_duration_secs`), which the Dask runner cannot run; otherwise they are
ignored. Passed alone, they left batches mixing sentences of 8 to 77 tokens, all padded to the longest, and
batching gained 1.2 times over one sentence a batch where a plain loop gains 2.

Every line becomes a prediction or a failure row: a blank or non-UTF-8 line fails at `read`; a line with one
token (nothing to mask), whose token to mask holds no letter or digit (only punctuation, symbols or emoji), or of
more than BERT's 512 tokens fails at `preprocess`. A one-word line ending in " ." ("Hello .") is predicted.
"""

from __future__ import annotations

from collections.abc import Callable

import apache_beam as beam
import torch
from apache_beam.transforms.window import GlobalWindows
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.ml.inference.pytorch_inference import PytorchModelHandlerKeyedTensor
from torch.nn.utils.rnn import pad_sequence

from bench_assets.datasets.bert_vocabulary import load_bert_tokenizer
from bench_assets.datasets.sentences import mask_last_word
from bench_assets.pipeline.model_handlers import CalibrationSample, keyed_model_handler, sentence_inputs
from bench_assets.pipeline.prepare_items import PrepareItems
from bench_assets.pipeline.prediction_rows import RowFields
from bench_assets.pipeline.read_predict_write import read_predict_write
from bench_assets.run.run_config import InferenceRunConfig
from bench_assets.spec import ModelSpec, PipelineRequest

BEAM_EXAMPLE = "beam_example"
LENGTH_BUCKETED = "length_bucketed"
BATCHING_MODES = (BEAM_EXAMPLE, LENGTH_BUCKETED)
# BERT's learned position embeddings stop at 512 tokens.
MAX_TOKENS = 512
# How many tokenized sentences length_bucketed holds to sort: enough for dozens of batches of similar lengths,
# few enough that the first batch starts after a fraction of a second of tokenizing.
SORT_WINDOW = 512
# The corpus's mean sentence length in BERT tokens (23.6 over 50,000 sentences): the shape FLOPs are counted at.
TYPICAL_TOKENS = 24
# The tensors MaskedWordInference gives the model, each padded to the batch's longest sentence.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def forward_example_sentences(model: torch.nn.Module, items: int = 1, device: str | torch.device = "cpu"):
    """`items` sentences of the corpus's typical length, their last word masked ([CLS] ... [MASK] . [SEP]), with the
    inputs MaskedWordInference gives the model: one to count FLOPs, more to compile."""
    input_ids = torch.full((items, TYPICAL_TOKENS), 1996, device=device)  # "the"
    input_ids[:, 0], input_ids[:, -3], input_ids[:, -2], input_ids[:, -1] = 101, 103, 1012, 102
    return model(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids), token_type_ids=torch.zeros_like(input_ids)
    )


def token_count(keyed_example) -> int:
    """Length of a keyed tokenized sentence."""
    _, example = keyed_example
    return int(example["input_ids"].shape[0])


class ShortestFirst(beam.DoFn):
    """Hands on each window of `window` keyed tokenized sentences (and a bundle's last, smaller one) shortest first."""

    def __init__(self, window: int = SORT_WINDOW):
        self._window = window

    def start_bundle(self):
        self._held = []

    def process(self, keyed_example):
        self._held.append(keyed_example)
        if len(self._held) >= self._window:
            yield from self._sorted()

    def finish_bundle(self):
        for keyed_example in self._sorted():
            yield GlobalWindows.windowed_value(keyed_example)

    def _sorted(self) -> list:
        held, self._held = sorted(self._held, key=token_count), []
        return held


def check_maskable(sentence: str) -> str:
    """The sentence's masked text; a ValueError says why a line has no word to mask.

    A line needs a word and a final token ("word ."); the masked word needs a letter or digit, so a line of only
    punctuation, symbols or emoji is refused (nothing a masked-LM benchmark can score). Emoji elsewhere in a
    sentence are fine: BERT reads them as [UNK].
    """
    masked_text, word = mask_last_word(sentence)
    if not any(character.isalnum() for character in word):
        raise ValueError(f"the token to mask, {word!r}, holds no letter or digit")
    return masked_text


def tokenize_masked(tokenizer, sentence: str) -> dict[str, torch.Tensor]:
    """The tensors of a sentence with its last word masked; a ValueError says why a line cannot be."""
    encoded = tokenizer(check_maskable(sentence), return_tensors="pt")
    length = encoded["input_ids"].shape[1]
    if length > MAX_TOKENS:
        raise ValueError(f"{length} tokens, more than BERT's {MAX_TOKENS}")
    return {name: tensor.squeeze(0) for name, tensor in encoded.items()}


class MaskedWordInference:
    """Pads a batch of tokenized sentences, runs the masked-LM and keeps each sentence's logits at its [MASK].

    Keeping only the masked position's logits (one vocabulary-sized vector) instead of every position's keeps
    what crosses into postprocessing small; with a batch of one this is exactly Beam's example's computation.
    """

    def __init__(self, mask_token_id: int, pad_token_id: int):
        self._mask_token_id = mask_token_id
        self._pad_token_id = pad_token_id

    def __call__(self, batch, model, device, inference_args=None, model_id=None) -> list[PredictionResult]:
        with torch.no_grad():
            padding = {"input_ids": self._pad_token_id, "attention_mask": 0, "token_type_ids": 0}
            inputs = {
                name: pad_sequence([example[name] for example in batch], batch_first=True, padding_value=value).to(device)
                for name, value in padding.items()
            }
            logits = model(**inputs, **(inference_args or {})).logits
            # The last [MASK] of each row is the one we placed; a literal "[MASK]" in the text comes before it.
            is_mask = inputs["input_ids"] == self._mask_token_id
            positions = is_mask.shape[1] - 1 - is_mask.flip(dims=[1]).int().argmax(dim=1)
            masked_logits = logits[torch.arange(len(batch), device=logits.device), positions].cpu()
        return [PredictionResult(example, row, model_id) for example, row in zip(batch, masked_logits)]


class MaskedWord(RowFields):
    """The word the masked-LM ranks first at the [MASK], its probability, and the word that was masked."""

    def setup(self):
        self._tokenizer = load_bert_tokenizer()

    def __call__(self, sentence: str, logits: torch.Tensor) -> dict:
        score, token_id = torch.max(torch.softmax(logits, dim=0), dim=0)
        return {
            "predicted_index": int(token_id),
            "predicted_label": self._tokenizer.decode([int(token_id)]).strip(),
            "score": float(score),
            "expected_label": mask_last_word(sentence)[1],
        }


def model_handler(
    spec: ModelSpec, state_dict_path: str, batching_mode: str, min_batch_size: int, max_batch_size: int, device: str,
    example_forward: Callable | None = None, calibration: CalibrationSample | None = None,
):
    """On the run's backend (see keyed_model_handler). `example_forward`: the benchmark's, to compile the model with;
    `calibration`: the run's own sentences, for OpenVINO's calibrated int8."""
    tokenizer = load_bert_tokenizer()
    if batching_mode == BEAM_EXAMPLE:
        batching = {"min_batch_size": 1, "max_batch_size": 1}
    else:
        batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
    return keyed_model_handler(
        PytorchModelHandlerKeyedTensor,
        spec,
        state_dict_path,
        MaskedWordInference(tokenizer.mask_token_id, tokenizer.pad_token_id),
        device,
        sentence_inputs(MODEL_INPUTS, TYPICAL_TOKENS),
        example_forward,
        calibration,
        **batching,
    )


class LanguageModelingRunConfig(InferenceRunConfig):
    """Adds the batching mode: Beam's example (one sentence per batch) or length-bucketed padded batches."""

    batching_mode: str = BEAM_EXAMPLE

    def run_settings(self) -> dict:
        if self.batching_mode not in BATCHING_MODES:
            raise ValueError(f"batching_mode {self.batching_mode!r} is unknown; accepted values: {list(BATCHING_MODES)}")
        bounds = super().run_settings()  # checked in every mode: a wrong value is an error even where it is unused
        if self.batching_mode == BEAM_EXAMPLE:
            # Beam's example infers each sentence alone; the batch bounds do not apply.
            return {"mode": self.batching_mode, **bounds, "min_batch_size": 1, "max_batch_size": 1}
        return {"mode": self.batching_mode, **bounds, "sort_window": SORT_WINDOW}


def build_run(pipeline: beam.Pipeline, run: PipelineRequest) -> None:
    prepare = PrepareItems(tokenize_masked, load_bert_tokenizer)
    batching_mode = run.run_settings["mode"]
    read_predict_write(
        pipeline,
        input_file=run.input_file,
        run_dir=run.run_dir,
        prepare=prepare,
        reorder=ShortestFirst() if batching_mode == LENGTH_BUCKETED else None,
        handler=model_handler(
            run.model, str(run.state_dict_path), batching_mode, run.run_settings["min_batch_size"],
            run.run_settings["max_batch_size"], run.run_settings["device"], run.example_forward,
            CalibrationSample(str(run.input_file), prepare),
        ),
        fields=MaskedWord(),
        read_label="ReadSentences",
        prepare_label="MaskAndTokenize",
    )
