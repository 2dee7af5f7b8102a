"""The table-row benchmark: seeded JSON rows, a LinearRegression the platform fits, and Beam RunInference runs
through Beam's scikit-learn model handler."""

import json
import pickle

import pytest

from bench_assets.benchmarks.table_rows import BENCHMARK
from bench_assets.benchmarks.table_rows.pipeline import TableRowsRunConfig
from bench_assets.datasets.table_rows import FEATURE_COLUMNS
from bench_assets.defs.benchmarks import BenchmarkDefinitions
from bench_assets.defs.datasets import dataset_asset
from bench_assets.run.lifecycle import dataset_file
from bench_assets.run.weights import file_sha256
from bench_assets_tests.conftest import materialize, with_settings

MODEL = "linear_regression"
table_rows = dataset_asset(BENCHMARK.dataset)
DEFINITIONS = BenchmarkDefinitions.of(BENCHMARK)
RUN_ASSETS = [DEFINITIONS.weights, DEFINITIONS.run]
# Lines no table row can be made of, appended to the generated rows: each must fail at preprocess, with its reason.
BAD_LINES = {
    '{"id": "broken", "feature1": 0.5,': "line is not JSON",
    '{"id": "short", "feature1": 0.5, "feature3": 1.0}': "feature 'feature2' is missing",
    '{"id": "text", "feature1": 0.5, "feature2": "1.5", "feature3": 1.0}': "feature 'feature2' is \"1.5\", not a",
    '{"id": "flag", "feature1": true, "feature2": 1.5, "feature3": 1.0}': "feature 'feature1' is true, not a",
    '{"id": "nan", "feature1": NaN, "feature2": 1.5, "feature3": 1.0}': "feature 'feature1' is NaN, not a",
    "[0.5, 1.5, 1.0]": "line is a JSON list, not an object",
}


def run_config(**config) -> dict:
    return {"ops": {BENCHMARK.run_asset_name: {"config": config}}}


def test_table_rows_partition_predicts_every_row_with_the_fitted_model(bench_resources, query, no_network):
    dataset = materialize([table_rows], bench_resources)
    metadata = dataset.asset_materializations_for_node(BENCHMARK.dataset.name)[0].metadata
    assert metadata["count"].value == 23
    assert all(abs(metadata[f"{column}_mean"].value) < 1 for column in FEATURE_COLUMNS)
    input_file = dataset_file(bench_resources["settings"], BENCHMARK.dataset)
    good_lines = input_file.read_text().splitlines()
    with input_file.open("a") as f:
        f.writelines(f"{line}\n" for line in BAD_LINES)

    result = materialize(
        RUN_ASSETS, bench_resources, partition_key=MODEL, run_config=run_config(min_batch_size=2, max_batch_size=5)
    )

    (run_id, status, source, sha256, size), = query(
        "SELECT run_id, status, weights_source, weights_sha256, dataset_size FROM runs"
    )
    weights_path = bench_resources["settings"].weights_path(MODEL)
    assert status == "finished" and source == "fitted" and sha256 == file_sha256(weights_path)
    assert size == 23 + len(BAD_LINES)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed

    # Every line is exactly one prediction or one failure; the good rows are predicted, the bad ones fail.
    predictions = query(
        "SELECT line, item_id, predicted_index, predicted_label, score, expected_label, detail FROM predictions"
    )
    failures = query("SELECT line, item_id, stage, reason FROM failures")
    assert sorted(row[0] for row in predictions + failures) == list(range(1, size + 1))
    assert sorted(row[0] for row in predictions) == list(range(1, 24))
    assert sorted(item for _, item, _, _ in failures) == sorted(BAD_LINES)
    assert all(
        stage == "preprocess" and reason.startswith(f"ValueError: {BAD_LINES[item]}")
        for _, item, stage, reason in failures
    )

    errors = []
    for line, item, index, label, score, expected, detail in predictions:
        row = json.loads(good_lines[line - 1])
        assert item == good_lines[line - 1]
        assert index == 0 and label == f"{score:.6f}" and expected is None
        assert json.loads(detail) == {"row_id": row["id"], "prediction": score, "target": row["target"]}
        errors.append(abs(score - row["target"]))
    # A real fit of y = sum(features) + 0.1 noise: off by about the noise (mean |noise| is 0.08).
    assert sum(errors) / len(errors) < 0.15
    model = pickle.loads(weights_path.read_bytes())  # written by this test's weights asset
    assert all(abs(coefficient - 1.0) < 0.05 for coefficient in model.coef_)
    assert abs(model.intercept_) < 0.05

    batch_sizes = [batch_size for (batch_size,) in query("SELECT batch_size FROM batches WHERE run_id = ?", [run_id])]
    assert sum(batch_sizes) == 23 and max(batch_sizes) <= 5
    metrics = {
        (namespace, metric): value
        for namespace, metric, value in query("SELECT namespace, metric, value FROM metrics WHERE run_id = ?", [run_id])
    }
    assert metrics["BeamML_Sklearn", "num_inferences"] == 23
    assert metrics["BeamML_Sklearn", "max_inference_request_batch_size"] <= 5
    assert no_network == []


def test_a_configured_weights_file_is_refused_naming_it(bench_resources, tmp_path):
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    foreign = weights_dir / f"{MODEL}.pth"
    foreign.write_bytes(pickle.dumps({"not": "a model"}))
    resources = with_settings(bench_resources, weights_dir=str(weights_dir))

    result = materialize([DEFINITIONS.weights], resources, partition_key=MODEL, raise_on_error=False)

    assert not result.success
    message = "\n".join(str(e.step_failure_data.error) for e in result.get_step_failure_events())
    assert f"weights file {foreign} is refused" in message
    assert not resources["settings"].weights_path(MODEL).exists()


def test_a_gpu_run_is_refused():
    with pytest.raises(ValueError, match="runs on the CPU only"):
        TableRowsRunConfig(device="GPU").run_settings()
