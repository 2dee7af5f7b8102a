"""Text embedding with Beam's MLTransform, after apache_beam/examples/ml_transform/mltransform_text_embedding.py
(Beam's `mltransform_text_embedding_benchmark`).

Read the sentences, embed each through MLTransform with Beam's own SentenceTransformerEmbeddings, as the example
does: its batch bounds (min 16, max 128) and `SentenceTransformer.encode(batch_size=32, convert_to_numpy=True)`
are the run config's defaults. The model is built from the installed package's folder (no hub), then the run's
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

from bench_assets.datasets.retrieval_sentences import query_pairs
from bench_assets.pipeline.embeddings import EmbeddingRunConfig, read_embed_write
from bench_assets.pipeline.input_lines import numbered_lines
from bench_assets.spec import PipelineRequest

# all-MiniLM-L6-v2 reads at most 256 word pieces (its max_seq_length); the corpus's sentences average 24.
TYPICAL_TOKENS = 24


def forward_example_sentences(model: torch.nn.Module, items: int = 1, device: str | torch.device = "cpu"):
    """`items` sentences of the corpus's typical length through the SentenceTransformer's modules: to count FLOPs."""
    input_ids = torch.full((items, TYPICAL_TOKENS), 1996, device=device)  # "the"
    input_ids[:, 0], input_ids[:, -1] = 101, 102
    features = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "token_type_ids": torch.zeros_like(input_ids)}
    return model(features)


def compile_sentences(items: int) -> list[str]:
    """`items` sentences to compile the encoder with at model loading."""
    return ["a sentence to compile the encoder with ."] * items


class TextEmbeddingRunConfig(EmbeddingRunConfig):
    """Beam's example's batching: BatchElements between 16 and 128 sentences, encode in batches of 32."""

    min_batch_size: int = 16
    max_batch_size: int = 128


def build_run(pipeline, run: PipelineRequest) -> None:
    # Which lines are altered copies of which (the quality figure's queries), read from the run's own input.
    texts = (raw.decode("utf-8", errors="replace") for _, raw in numbered_lines(run.input_file) if raw is not None)
    read_embed_write(
        pipeline, run, expected=query_pairs(texts), read_label="ReadSentences", compile_inputs=compile_sentences
    )
