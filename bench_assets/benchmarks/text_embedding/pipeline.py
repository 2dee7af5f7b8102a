"""Text embedding with Beam's MLTransform, after apache_beam/examples/ml_transform/mltransform_text_embedding.py
(Beam's `mltransform_text_embedding_benchmark`).

Read the sentences, embed each through MLTransform with Beam's own SentenceTransformerEmbeddings, as the example
does: its batch bounds (min 16, max 128) and `SentenceTransformer.encode(batch_size=32, convert_to_numpy=True)`
are the run config's defaults. The model is loaded from the installed package's folder (no hub), then the run's
weights file (the shipped weights, or a configured or seeded random state dict) is loaded into it.

What differs from the example, and why:
- The example drops a blank line silently; here it is a read failure, as every unusable line.
- Each batch is timed (TimedEmbeddingBatches) and MLTransform runs with exception handling: a failed batch's
  lines are inference failures with the exception's message.
- The example writes each embedding as a JSON line; here the vectors go to the run's `embeddings` output
  (and DuckDB's embeddings table), and each line's row holds the vector's size and norm.
- The run's configuration applies to the encoder: bf16 autocast around encode, dynamic int8 Linear layers, or
  torch.compile of the transformer (compiled at model loading on 1, 2 and max-batch sentences).
"""

from __future__ import annotations

import torch
from apache_beam.ml.transforms.embeddings.huggingface import (
    SentenceTransformerEmbeddings,
    _SentenceTransformerModelHandler,
)

from bench_assets.datasets.retrieval_sentences import query_pairs
from bench_assets.pipeline.embeddings import TimedEmbeddingBatches, read_embed_write
from bench_assets.pipeline.input_lines import numbered_lines
from bench_assets.pipeline.model_handlers import configure_model, precision_autocast
from bench_assets.run.run_config import InferenceRunConfig
from bench_assets.spec import ModelSpec, PipelineRequest

# The column MLTransform embeds (bench_assets/pipeline/embeddings.py's records).
TEXT_COLUMN = "embedded"
# all-MiniLM-L6-v2 reads at most 256 word pieces (its max_seq_length); the corpus's sentences average 24.
TYPICAL_TOKENS = 24


def forward_example_sentences(model: torch.nn.Module, items: int = 1, device: str | torch.device = "cpu"):
    """`items` sentences of the corpus's typical length through the SentenceTransformer's modules: to count FLOPs."""
    input_ids = torch.full((items, TYPICAL_TOKENS), 1996, device=device)  # "the"
    input_ids[:, 0], input_ids[:, -1] = 101, 102
    features = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "token_type_ids": torch.zeros_like(input_ids)}
    return model(features)


class ConfiguredSentenceTransformerHandler(TimedEmbeddingBatches, _SentenceTransformerModelHandler):
    """Beam's SentenceTransformer model handler (the one SentenceTransformerEmbeddings gives MLTransform), with
    the run's weights loaded into the model and the run's configuration applied to its encoder; its batches
    timed."""

    def __init__(self, *, spec: ModelSpec, state_dict_path: str, encode_batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self._spec = spec
        self._state_dict_path = state_dict_path
        self._encode_batch_size = encode_batch_size

    def load_model(self):
        model = super().load_model()
        model.load_state_dict(torch.load(self._state_dict_path, map_location="cpu", weights_only=True))
        configuration = self._spec.configuration
        model[0].auto_model = configure_model(model[0].auto_model, configuration)
        if configuration.compile != "none":
            # Compile now (Beam's load-model latency), not in the first batches: encode's own batches are at
            # most encode_batch_size sentences, of any length.
            for items in sorted({1, 2, self._encode_batch_size}):
                self._encode(model, ["a sentence to compile the encoder with ."] * items)
        return model

    def _encode(self, model, batch, inference_args=None):
        device = model.device.type
        with torch.no_grad(), precision_autocast(device, self._spec.configuration.precision):
            return super().run_inference(batch, model, inference_args)

    def run_inference(self, batch, model, inference_args=None):
        # TimedEmbeddingBatches times this call (its super()); the autocast belongs inside the timed span.
        return self._encode(model, batch, inference_args)


class ConfiguredSentenceTransformerEmbeddings(SentenceTransformerEmbeddings):
    """Beam's SentenceTransformerEmbeddings, its model handler the configured, timed one."""

    def __init__(self, *, spec: ModelSpec, state_dict_path: str, encode_batch_size: int, **kwargs):
        super().__init__(**kwargs)
        self._handler_args = {"spec": spec, "state_dict_path": state_dict_path, "encode_batch_size": encode_batch_size}

    def get_model_handler(self):
        return ConfiguredSentenceTransformerHandler(
            **self._handler_args,
            model_class=self._model_class(),
            max_seq_length=self.max_seq_length,
            model_name=self.model_name,
            load_model_args=self.load_model_args,
            min_batch_size=self.min_batch_size,
            max_batch_size=self.max_batch_size,
            large_model=self.large_model,
        )

    @staticmethod
    def _model_class():
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer


def embeddings_config(spec: ModelSpec, state_dict_path: str, batching: dict) -> ConfiguredSentenceTransformerEmbeddings:
    """SentenceTransformerEmbeddings as Beam's example configures it, from the run's batching."""
    device = "cuda" if batching["device"] == "GPU" else "cpu"
    return ConfiguredSentenceTransformerEmbeddings(
        spec=spec,
        state_dict_path=state_dict_path,
        encode_batch_size=batching["encode_batch_size"],
        model_name=spec.model_params["folder"],
        columns=[TEXT_COLUMN],
        min_batch_size=batching["min_batch_size"],
        max_batch_size=batching["max_batch_size"],
        load_model_args={"device": device},
        inference_args={"batch_size": batching["encode_batch_size"], "convert_to_numpy": True, "show_progress_bar": False},
    )


class TextEmbeddingRunConfig(InferenceRunConfig):
    """Beam's example's batching: BatchElements between 16 and 128 sentences, encode in batches of 32."""

    min_batch_size: int = 16
    max_batch_size: int = 128
    encode_batch_size: int = 32

    def run_settings(self) -> dict:
        if self.encode_batch_size < 1:
            raise ValueError(f"encode_batch_size must be at least 1, got {self.encode_batch_size}")
        return {**super().run_settings(), "encode_batch_size": self.encode_batch_size}


def build_run(pipeline, run: PipelineRequest) -> None:
    # Which lines are altered copies of which (the quality figure's queries), read from the run's own input.
    texts = (raw.decode("utf-8", errors="replace") for _, raw in numbered_lines(run.input_file) if raw is not None)
    read_embed_write(
        pipeline,
        input_file=run.input_file,
        run_dir=run.run_dir,
        embeddings_config=embeddings_config(run.model, str(run.state_dict_path), run.run_settings),
        expected=query_pairs(texts),
        read_label="ReadSentences",
    )
