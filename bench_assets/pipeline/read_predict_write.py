"""The shape of every benchmark pipeline: read numbered lines, prepare each item, RunInference, write rows.

Each step that can fail an item sends it to a failure row with its stage and reason, so every input line ends
as exactly one prediction or one failure. Each step's busy time counts as its stage's (stage_timing.py).
"""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from bench_assets.pipeline.failures import FAILED, PREPROCESS, inference_failure_rows
from bench_assets.pipeline.input_lines import read_items
from bench_assets.pipeline.outputs import write_run_outputs
from bench_assets.pipeline.prediction_rows import BATCHES, RowFields, ToPredictionRows
from bench_assets.pipeline.stage_timing import WRITE, timed


def read_predict_write(
    pipeline: beam.Pipeline,
    *,
    input_file: Path,
    run_dir: Path,
    prepare: beam.DoFn,
    handler: ModelHandler,
    fields: RowFields,
    reorder: beam.DoFn | None = None,
    read_label: str = "ReadItems",
    prepare_label: str = "Preprocess",
    inference_label: str = "PyTorchRunInference",
) -> None:
    """`prepare` maps (line, text) to ((line, text), model input), or a failure row on its `failed` output;
    `reorder`, where given, changes the order prepared items reach RunInference's batching in (never drops one)."""
    items, unreadable_lines = read_items(pipeline, input_file, run_dir, read_label)
    prepared = items | prepare_label >> timed(PREPROCESS, prepare, run_dir).with_outputs(FAILED, main="prepared")
    to_infer = prepared.prepared if reorder is None else prepared.prepared | "Reorder" >> timed(PREPROCESS, reorder, run_dir)
    predicted, dead_letters = to_infer | inference_label >> RunInference(handler).with_exception_handling()
    rows = predicted | "ToPredictionRows" >> timed(WRITE, ToPredictionRows(fields), run_dir).with_outputs(
        BATCHES, main="predictions"
    )
    inference_failures = dead_letters.failed_inferences | "InferenceFailures" >> beam.FlatMap(inference_failure_rows)
    failures = (unreadable_lines, prepared[FAILED], inference_failures) | "AllFailures" >> beam.Flatten()
    write_run_outputs(run_dir, rows, failures)
