"""The table of rows for the table-row regression benchmark, after apache_beam/examples/inference/
table_row_inference_utils.py.

Beam's helper writes JSON Lines of {"id": "row_<i>", "feature1": f, ...} with standard normal features, and fits
its LinearRegression on y = sum(features) + 0.1 * standard normal noise; Beam's benchmark reads five feature
columns (`--feature_columns=feature1,...,feature5` in its option file), which the rows here carry. Our rows are
drawn the same way, deterministically for a seed, and also carry that y as "target" (never a feature), so a run's
predictions can be scored. The model is fitted on a separate draw of the same kind (see models.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench_assets.spec import DatasetSpec

# Beam's benchmark's --feature_columns, in the order the model reads them.
FEATURE_COLUMNS = ("feature1", "feature2", "feature3", "feature4", "feature5")
NOISE_SCALE = 0.1
# Decimals written to the file; the target is computed from the rounded features, so the file is exact.
DECIMALS = 6
# Independent random streams of one seed: the rows a run predicts, and the rows the model is fitted on.
EVALUATION_STREAM = 0
TRAINING_STREAM = 1


def sample_table(count: int, seed: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
    """(features [count, 5], targets [count]): standard normal features, target = their sum + 0.1 noise."""
    rng = np.random.default_rng([stream, seed])
    features = np.round(rng.standard_normal((count, len(FEATURE_COLUMNS))), DECIMALS)
    targets = np.round(features.sum(axis=1) + NOISE_SCALE * rng.standard_normal(count), DECIMALS)
    return features, targets


def write_rows(features: np.ndarray, targets: np.ndarray, path: Path) -> None:
    """One JSON object per line, as Beam's example reads them, plus the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, (row, target) in enumerate(zip(features.tolist(), targets.tolist(), strict=True)):
            record = {"id": f"row_{i}", **dict(zip(FEATURE_COLUMNS, row, strict=True)), "target": target}
            f.write(json.dumps(record) + "\n")


def table_stats(features: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    columns = {**{name: features[:, i] for i, name in enumerate(FEATURE_COLUMNS)}, "target": targets}
    return {
        f"{name}_{stat}": float(getattr(values, stat)())
        for name, values in columns.items()
        for stat in ("mean", "std", "min", "max")
    }


def materialize_table_rows(context, settings, folder: Path) -> dict:
    """The `table_rows` asset's work: the rows of the settings' profile, and their statistics."""
    import dagster as dg

    # Profiles size every benchmark's items alike; the sentence count is that size.
    count = settings.selected_profile().sentences
    features, targets = sample_table(count, settings.seed, EVALUATION_STREAM)
    path = folder / TABLE_ROWS.file_name
    write_rows(features, targets, path)
    context.log.info(f"wrote {count:,} table rows to {path}")
    return {"count": count, **table_stats(features, targets), "path": dg.MetadataValue.path(str(path))}


TABLE_ROWS = DatasetSpec(
    name="table_rows",
    file_name="rows.jsonl",
    description="""Table rows as JSON Lines, like Beam's table-row example: an id, five standard normal features,
    and the target y = sum of the features + 0.1 * normal noise; deterministic for a given seed.""",
    build=materialize_table_rows,
)
