"""The table-row model: scikit-learn's LinearRegression, fitted by the platform as Beam's helper fits it.

Beam's benchmark loads a pickled estimator that `table_row_inference_utils.create_sample_model` fitted on 100
rows of y = sum(features) + 0.1 noise. Here the weights asset fits the same model on a seeded training table of
1,000 such rows (a draw separate from the rows the runs predict) and pickles it, as Beam's
SklearnModelHandlerNumpy loads it (ModelFileType.PICKLE). The lifecycle verifies the file's sha256 before each
run. A configured file is refused: unpickling a file from elsewhere would run whatever code it holds.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from sklearn.linear_model import LinearRegression

from bench_assets.datasets.table_rows import TRAINING_STREAM, sample_table
from bench_assets.spec import ModelSpec, models_by_name
from bench_assets.run.weights import PreparedWeights, file_sha256
from bench_assets.store.runs import FITTED_WEIGHTS

TABLE_ROWS_BENCHMARK = "table_rows"
TRAINING_ROWS = 1_000


def linear_regression() -> LinearRegression:
    """The unfitted estimator that the weights asset fits (Beam's handler unpickles the fitted one)."""
    return LinearRegression()


def fit_table_model(spec: ModelSpec, out_path: Path, configured: Path | None, seed: int) -> PreparedWeights:
    """Fits `spec`'s estimator on the seeded training table and pickles it to `out_path`, atomically."""
    if configured is not None:
        raise ValueError(
            f"weights file {configured} is refused: {spec.name} is fitted by the platform, and loading a pickled "
            f"model from elsewhere would run whatever code it holds; remove {configured.name} from weights_dir"
        )
    features, targets = sample_table(TRAINING_ROWS, seed, TRAINING_STREAM)
    model = spec.build().fit(features, targets)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_suffix(".partial")
    with partial.open("wb") as f:
        pickle.dump(model, f)
    partial.replace(out_path)
    return PreparedWeights(out_path, FITTED_WEIGHTS, file_sha256(out_path))


TABLE_MODELS = models_by_name(
    ModelSpec(
        "linear_regression",
        TABLE_ROWS_BENCHMARK,
        linear_regression,
        note=f"fitted by the platform on {TRAINING_ROWS:,} seeded rows of y = sum(features) + 0.1 noise",
    ),
)
