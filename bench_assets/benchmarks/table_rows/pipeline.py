"""Table-row regression with Beam's RunInference, after apache_beam/examples/inference/table_row_inference.py.

Read the JSON Lines, take each row's features in Beam's benchmark's column order (feature1 to feature5) as a float
vector, batch within the run config's bounds (by default BatchElements' own, 1 to 10,000: Beam's handler is given
none), predict with Beam's SklearnModelHandlerNumpy (a pickled estimator) wrapped in KeyedModelHandler, keep the
predicted value beside the row's target.

What differs from the example, and why:
- A row Beam would fill in is a failure here, at `preprocess`, with its reason: Beam uses 0.0 for a missing
  feature and converts true/false to 1.0/0.0, which would score a made-up row. A line that is not JSON, not a
  JSON object, or has a feature that is not a finite number fails the same way (a NaN would fail its whole
  batch in scikit-learn).
- Each item is keyed by (line, line text), as in every benchmark here, not by the row's id: the row's target,
  which the prediction row records, comes from its line. The id is kept in the row's detail.
- Features are float64, the type the model was fitted on; Beam's handler subclass casts them to float32.
- Batches are timed like the PyTorch benchmarks' (TimedInference), around the handler's own run_inference.
"""

from __future__ import annotations

import json
import math

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler
from apache_beam.ml.inference.sklearn_inference import ModelFileType, SklearnModelHandlerNumpy

from bench_assets.datasets.table_rows import FEATURE_COLUMNS
from bench_assets.pipeline.batch_timing import TimedInference
from bench_assets.pipeline.prediction_rows import RowFields
from bench_assets.pipeline.prepare_items import PrepareItems
from bench_assets.pipeline.read_predict_write import read_predict_write
from bench_assets.run.run_config import BeamAdaptiveRunConfig
from bench_assets.spec import PipelineRequest

# Regression predicts a value, not a class: every prediction row has class index 0.
REGRESSION_INDEX = 0
LABEL_FORMAT = ".6f"  # the file's precision


def finite_number(value) -> float | None:
    """A JSON number as a float; None for anything else (true/false, text, null, NaN, infinities, overflow)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_row(text: str) -> dict:
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"line is not JSON: {error}") from None
    if not isinstance(row, dict):
        raise ValueError(f"line is a JSON {type(row).__name__}, not an object")
    return row


def row_features(row: dict) -> np.ndarray:
    """The row's features in Beam's column order; a ValueError names a missing or non-numeric one."""
    features = []
    for column in FEATURE_COLUMNS:
        if column not in row:
            raise ValueError(f"feature {column!r} is missing (Beam's example would use 0.0)")
        number = finite_number(row[column])
        if number is None:
            raise ValueError(f"feature {column!r} is {json.dumps(row[column])}, not a finite number")
        features.append(number)
    return np.array(features, dtype=np.float64)


def table_row_features(_, text: str) -> np.ndarray:
    """A line's feature vector (PrepareItems' signature: this needs no loaded resource)."""
    return row_features(parse_row(text))


class TimedSklearnModelHandlerNumpy(SklearnModelHandlerNumpy):
    """Beam's scikit-learn numpy handler with each batch's record attached to its results.

    Beam's sklearn inference_fn takes (model, batch, inference_args) and returns bare predictions, so the timing
    wraps the handler's run_inference instead: stacking, predict and pairing predictions with their examples.
    """

    def run_inference(self, batch, model, inference_args=None):
        return TimedInference(super().run_inference)(batch, model, inference_args)


class RegressionRow(RowFields):
    """The predicted value (as label and score), with the row's target in its detail. The expected label stays
    empty: it holds a class to match exactly (accuracy), which a regression has none of."""

    def __call__(self, text: str, prediction) -> dict:
        row = parse_row(text)
        value = float(prediction)
        target = finite_number(row.get("target"))
        return {
            "predicted_index": REGRESSION_INDEX,
            "predicted_label": format(value, LABEL_FORMAT),
            "score": value,
            "detail": json.dumps({"row_id": row.get("id"), "prediction": value, "target": target}),
        }


def model_handler(model_path: str, min_batch_size: int, max_batch_size: int) -> KeyedModelHandler:
    return KeyedModelHandler(
        TimedSklearnModelHandlerNumpy(
            model_uri=model_path,
            model_file_type=ModelFileType.PICKLE,
            min_batch_size=min_batch_size,
            max_batch_size=max_batch_size,
        )
    )


class TableRowsRunConfig(BeamAdaptiveRunConfig):
    """Beam's batching (no bounds given: 1 to 10,000); scikit-learn predicts on the CPU only, so a GPU run is
    refused."""

    def run_settings(self) -> dict:
        bounds = super().run_settings()
        if self.device != "CPU":
            raise ValueError(f"device {str(self.device)!r}: scikit-learn's LinearRegression runs on the CPU only")
        return bounds


def build_run(pipeline: beam.Pipeline, run: PipelineRequest) -> None:
    read_predict_write(
        pipeline,
        input_file=run.input_file,
        run_dir=run.run_dir,
        prepare=PrepareItems(table_row_features),
        handler=model_handler(str(run.state_dict_path), run.run_settings["min_batch_size"], run.run_settings["max_batch_size"]),
        fields=RegressionRow(),
        read_label="ReadTableRows",
        prepare_label="ParseTableRows",
        inference_label="SklearnRunInference",
    )
