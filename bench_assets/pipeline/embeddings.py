"""The shape of an embedding pipeline, as Beam's MLTransform examples run it: read numbered lines, turn each into
a record, MLTransform with an embeddings config, write one row per item (its vector's size and norm), its vector,
and the batch records.

MLTransform is not RunInference with a handler of ours: it builds its own RunInference around the model handler
that the embeddings config's `get_model_handler` gives, wrapped in Beam's text or image embedding handler. So
the batch timing sits in that model handler (TimedEmbeddingBatches): each embedding comes back with its batch's
record, and Beam's dict adapter puts the pair into the record's embedded column. MLTransform's exception
handling sends a failed batch to its error output as rows of (batch of records, message, traceback): each record
of it becomes an inference failure with that reason, so every line still ends as one embedding or one failure.

Both embedding benchmarks give MLTransform Beam's own SentenceTransformerEmbeddings (text or image model), its
model handler the configured, timed one below: the model is built by the run's model spec (the architecture,
offline), the run's weights file is loaded into it, and the run's configuration applied to its encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import apache_beam as beam
import numpy as np
import torch
from apache_beam.ml.transforms.base import MLTransform
from apache_beam.ml.transforms.embeddings.huggingface import (
    SentenceTransformerEmbeddings,
    _SentenceTransformerModelHandler,
)

from bench_assets.pipeline.batch_timing import timed_batch
from bench_assets.pipeline.failures import FAILED, INFERENCE, PREPROCESS, failure_row
from bench_assets.pipeline.input_lines import read_items
from bench_assets.pipeline.model_handlers import configure_model, precision_autocast
from bench_assets.pipeline.outputs import write_run_outputs
from bench_assets.pipeline.prediction_rows import BATCHES, EMBEDDINGS
from bench_assets.run.run_config import InferenceRunConfig
from bench_assets.spec import ModelSpec, PipelineRequest
from bench_assets.pipeline.stage_timing import WRITE, timed

# The record's columns: its line, its text (the item), and the column MLTransform embeds (Beam's example: "text").
LINE = "line"
ITEM = "item"
EMBEDDED = "embedded"
# What an embedding's prediction row names it; the row's index is the vector's size, its score the vector's norm.
EMBEDDING_LABEL = "embedding"
# Beam's SentenceTransformerEmbeddings handler reports under its model handler's namespace: a plain ModelHandler's.
EMBEDDING_METRICS_NAMESPACE = "RunInference"


class TimedEmbeddingBatches:
    """Mixin for the model handler an embeddings config gives MLTransform: each batch's embeddings come back as
    (vector, the batch's BatchRecord), the span timed being the handler's own run_inference (Beam's too)."""

    def run_inference(self, batch, model, inference_args=None):
        vectors, record = timed_batch(super().run_inference, batch, model, inference_args)
        return [(vector, record) for vector in vectors]


class ConfiguredSentenceTransformerHandler(TimedEmbeddingBatches, _SentenceTransformerModelHandler):
    """Beam's SentenceTransformer model handler (the one SentenceTransformerEmbeddings gives MLTransform), the model
    the run's spec builds with the run's weights loaded into it and the run's configuration applied to its encoder;
    its batches timed. `compile_inputs(n)`: n typical inputs, which compile the encoder at model loading (None
    where the benchmark offers no compilation)."""

    def __init__(
        self, *, spec: ModelSpec, state_dict_path: str, encode_batch_size: int, compile_inputs: Callable | None, **kwargs
    ):
        super().__init__(**kwargs)
        self._spec = spec
        self._state_dict_path = state_dict_path
        self._encode_batch_size = encode_batch_size
        self._compile_inputs = compile_inputs

    def load_model(self):
        model = self._spec.build().to(self._load_model_args["device"])
        model.load_state_dict(torch.load(self._state_dict_path, map_location="cpu", weights_only=True))
        configuration = self._spec.configuration
        model[0].auto_model = configure_model(model[0].auto_model, configuration)
        if configuration.compile != "none":
            # Compile now (Beam's load-model latency), not in the first batches: encode's own batches are at
            # most encode_batch_size inputs.
            for items in sorted({1, 2, self._encode_batch_size}):
                self._encode(model, self._compile_inputs(items))
        return model

    def _encode(self, model, batch, inference_args=None):
        with torch.no_grad(), precision_autocast(model.device.type, self._spec.configuration.precision):
            return super().run_inference(batch, model, inference_args)

    def run_inference(self, batch, model, inference_args=None):
        # TimedEmbeddingBatches times this call (its super()); the autocast belongs inside the timed span.
        return self._encode(model, batch, inference_args)


class ConfiguredSentenceTransformerEmbeddings(SentenceTransformerEmbeddings):
    """Beam's SentenceTransformerEmbeddings, its model handler the configured, timed one."""

    def __init__(self, *, handler_args: dict, **kwargs):
        super().__init__(**kwargs)
        self._handler_args = handler_args

    def get_model_handler(self):
        return ConfiguredSentenceTransformerHandler(
            **self._handler_args,
            model_class=None,  # load_model builds the model from the run's spec
            max_seq_length=self.max_seq_length,
            model_name=self.model_name,
            load_model_args=self.load_model_args,
            min_batch_size=self.min_batch_size,
            max_batch_size=self.max_batch_size,
            large_model=self.large_model,
        )


def sentence_transformer_embeddings(
    spec: ModelSpec,
    state_dict_path: str,
    run_settings: dict,
    *,
    compile_inputs: Callable | None = None,
    image_model: bool = False,
) -> ConfiguredSentenceTransformerEmbeddings:
    """SentenceTransformerEmbeddings of the records' embedded column, as Beam's examples configure it, from the
    run's settings (batch bounds, device, encode batch size)."""
    return ConfiguredSentenceTransformerEmbeddings(
        handler_args={
            "spec": spec,
            "state_dict_path": state_dict_path,
            "encode_batch_size": run_settings["encode_batch_size"],
            "compile_inputs": compile_inputs,
        },
        model_name=spec.name,
        columns=[EMBEDDED],
        image_model=image_model,
        min_batch_size=run_settings["min_batch_size"],
        max_batch_size=run_settings["max_batch_size"],
        load_model_args={"device": "cuda" if run_settings["device"] == "GPU" else "cpu"},
        inference_args={"batch_size": run_settings["encode_batch_size"], "convert_to_numpy": True, "show_progress_bar": False},
    )


class EmbeddingRunConfig(InferenceRunConfig):
    """An embedding benchmark's batching: Beam's BatchElements bounds (each benchmark's own), and how many inputs
    each `SentenceTransformer.encode` call takes at once (its default, 32)."""

    encode_batch_size: int = 32

    def run_settings(self) -> dict:
        if self.encode_batch_size < 1:
            raise ValueError(f"encode_batch_size must be at least 1, got {self.encode_batch_size}")
        return {**super().run_settings(), "encode_batch_size": self.encode_batch_size}


def embedding_record(line: int, item: str, embedded) -> dict:
    """The record MLTransform embeds: its line, its item (as listed), and what is embedded (its text, its image)."""
    return {LINE: line, ITEM: item, EMBEDDED: embedded}


class ToEmbeddingRecord(beam.DoFn):
    """(line, text) -> the record embedding the text as it is. A benchmark whose items need preparing (an image
    decoded) gives read_embed_write its own DoFn, which yields embedding_record()s and its items' failures to `failed`."""

    def process(self, item: tuple[int, str]):
        yield embedding_record(*item, item[1])


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
    run: PipelineRequest,
    *,
    prepare: beam.DoFn | None = None,
    expected: Mapping[str, str] | None = None,
    read_label: str = "ReadItems",
    compile_inputs: Callable | None = None,
    image_model: bool = False,
) -> None:
    """Reads the run's numbered lines, makes each a record (`prepare`, a DoFn; default: the line's text as it is),
    embeds them with MLTransform and the run's SentenceTransformerEmbeddings (sentence_transformer_embeddings: its
    artifacts in the run directory), and writes the rows, vectors, batch records and failures."""
    input_file, run_dir = run.input_file, run.run_dir
    embeddings_config = sentence_transformer_embeddings(
        run.model, str(run.state_dict_path), run.run_settings, compile_inputs=compile_inputs, image_model=image_model
    )
    items, unreadable_lines = read_items(pipeline, input_file, run_dir, read_label)
    records = items | "ToEmbeddingRecords" >> timed(PREPROCESS, prepare or ToEmbeddingRecord(), run_dir).with_outputs(
        FAILED, main="records"
    )
    embedded, errors = records.records | "MLTransformEmbeddings" >> MLTransform(
        write_artifact_location=str(run_dir / "mltransform")
    ).with_transform(embeddings_config).with_exception_handling()
    rows = embedded | "ToEmbeddingRows" >> timed(WRITE, ToEmbeddingRows(expected), run_dir).with_outputs(
        BATCHES, EMBEDDINGS, main="predictions"
    )
    inference_failures = errors | "InferenceFailures" >> beam.FlatMap(embedding_failure_rows)
    failures = (unreadable_lines, records[FAILED], inference_failures) | "AllFailures" >> beam.Flatten()
    write_run_outputs(run_dir, rows, failures, rows[EMBEDDINGS])
