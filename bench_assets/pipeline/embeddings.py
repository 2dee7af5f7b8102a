"""The shape of an embedding pipeline, as Beam's MLTransform examples run it: read numbered lines, turn each into
a record, MLTransform with an embeddings config, write one row per item (its vector's size and norm), its vector,
and the batch records.

MLTransform is not RunInference with a handler of ours: it builds its own RunInference around the model handler
that the embeddings config's `get_model_handler` gives, wrapped in Beam's text or image embedding handler. So
the batch timing sits in that model handler (TimedEmbeddingBatches): each embedding comes back with its batch's
record, and Beam's dict adapter puts the pair into the record's embedded column. MLTransform's exception
handling sends a failed batch to its error output as rows of (batch of records, message, traceback): each record
of it becomes an inference failure with that reason, so every line still ends as one embedding or one failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.ml.transforms.base import MLTransform

from bench_assets.pipeline.batch_timing import timed_batch
from bench_assets.pipeline.failures import FAILED, INFERENCE, PREPROCESS, failure_row
from bench_assets.pipeline.input_lines import read_items
from bench_assets.pipeline.outputs import write_run_outputs
from bench_assets.pipeline.prediction_rows import BATCHES, EMBEDDINGS

# The record's columns: its line, its text (the item), and the column MLTransform embeds (Beam's example: "text").
LINE = "line"
ITEM = "item"
EMBEDDED = "embedded"
# What an embedding's prediction row names it; the row's index is the vector's size, its score the vector's norm.
EMBEDDING_LABEL = "embedding"


class TimedEmbeddingBatches:
    """Mixin for the model handler an embeddings config gives MLTransform: each batch's embeddings come back as
    (vector, the batch's BatchRecord), the span timed being the handler's own run_inference (Beam's too)."""

    def run_inference(self, batch, model, inference_args=None):
        vectors, record = timed_batch(super().run_inference, batch, model, inference_args)
        return [(vector, record) for vector in vectors]


class ToEmbeddingRecord(beam.DoFn):
    """(line, text) -> the record MLTransform embeds: {line, item, embedded: prepare(resource, text)}; a line
    `prepare` refuses (it raises, saying why) goes to `failed` as a preprocess failure. `load` makes what
    `prepare` needs once per worker (None: the text is embedded as it is)."""

    def __init__(self, prepare=None, load=None):
        self._prepare = prepare
        self._load = load

    def setup(self):
        self._resource = self._load() if self._load is not None else None

    def process(self, item: tuple[int, str]):
        line, text = item
        if self._prepare is None:
            yield {LINE: line, ITEM: text, EMBEDDED: text}
            return
        try:
            yield {LINE: line, ITEM: text, EMBEDDED: self._prepare(self._resource, text)}
        except Exception as error:  # the line's failure, not the run's
            yield beam.pvalue.TaggedOutput(FAILED, failure_row(item, PREPROCESS, error))


class ToEmbeddingRows(beam.DoFn):
    """An embedded record -> its prediction row (vector size and norm; `expected` gives the text a query item
    should find as its nearest neighbour), its {line, vector} row, and its batch's record."""

    def __init__(self, expected: Mapping[str, str] | None = None):
        self._expected = dict(expected or {})

    def process(self, record):
        vector, batch = record[EMBEDDED]
        vector = np.asarray(vector, dtype=np.float32)
        line, item = record[LINE], record[ITEM]
        yield {
            "line": line,
            "item_id": item,
            "predicted_index": int(vector.size),
            "predicted_label": EMBEDDING_LABEL,
            "score": float(np.linalg.norm(vector)),
            "expected_label": self._expected.get(item),
            "batch_id": batch.batch_id,
        }
        yield beam.pvalue.TaggedOutput(BATCHES, tuple(batch))
        yield beam.pvalue.TaggedOutput(EMBEDDINGS, {"line": line, "vector": vector.tolist()})


def embedding_failure_rows(error_row) -> list[dict]:
    """One inference failure per record of a batch MLTransform's exception handling caught (its error row:
    element = the batch, msg = the exception's repr, stack = its formatted traceback)."""
    return [failure_row((record[LINE], record[ITEM]), INFERENCE, error_row.msg, error_row.stack) for record in error_row.element]


def read_embed_write(
    pipeline: beam.Pipeline,
    *,
    input_file: Path,
    run_dir: Path,
    embeddings_config,
    prepare: ToEmbeddingRecord | None = None,
    expected: Mapping[str, str] | None = None,
    read_label: str = "ReadItems",
) -> None:
    """Reads the numbered lines, embeds each with MLTransform(`embeddings_config`) (its artifacts in the run
    directory), and writes the rows, vectors, batch records and failures."""
    items, unreadable_lines = read_items(pipeline, input_file, read_label)
    records = items | "ToEmbeddingRecords" >> beam.ParDo(prepare or ToEmbeddingRecord()).with_outputs(FAILED, main="records")
    embedded, errors = records.records | "MLTransformEmbeddings" >> MLTransform(
        write_artifact_location=str(run_dir / "mltransform")
    ).with_transform(embeddings_config).with_exception_handling()
    rows = embedded | "ToEmbeddingRows" >> beam.ParDo(ToEmbeddingRows(expected)).with_outputs(
        BATCHES, EMBEDDINGS, main="predictions"
    )
    inference_failures = errors | "InferenceFailures" >> beam.FlatMap(embedding_failure_rows)
    failures = (unreadable_lines, records[FAILED], inference_failures) | "AllFailures" >> beam.Flatten()
    write_run_outputs(run_dir, rows, failures, rows[EMBEDDINGS])
