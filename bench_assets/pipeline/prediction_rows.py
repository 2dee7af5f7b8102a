"""Prediction rows: the fields every row has (line, item, batch), and what the benchmark says about the item."""

from __future__ import annotations

import apache_beam as beam

# The tagged output of ToPredictionRows that carries each item's batch record.
BATCHES = "batches"
# The tagged output of an embedding pipeline's rows that carries each item's vector (bench_assets/pipeline/embeddings.py).
EMBEDDINGS = "embeddings"


class RowFields:
    """What a benchmark records about one prediction: its model output turned into the row's own fields.

    Subclasses hold what they need to name a prediction (class names, a tokenizer), loaded in `setup` on the
    worker, and must pickle by reference.
    """

    def setup(self) -> None:
        pass

    def __call__(self, item: str, output) -> dict:
        raise NotImplementedError


class ToPredictionRows(beam.DoFn):
    """((line, item), PredictionResult) -> prediction row, plus the record of the batch it was predicted in."""

    def __init__(self, fields: RowFields):
        self._fields = fields

    def setup(self):
        self._fields.setup()

    def process(self, keyed_result):
        (line, item), result = keyed_result
        output, batch = result.inference
        yield {"line": line, "item_id": item, **self._fields(item, output), "batch_id": batch.batch_id}
        yield beam.pvalue.TaggedOutput(BATCHES, tuple(batch))
